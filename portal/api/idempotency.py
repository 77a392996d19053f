"""Idempotency-Key for creating requests: a retry with the same key and body gets the first answer.

The key row is inserted as the first write of the creating transaction and completed in it, so two
concurrent requests with one key serialise on the unique (token, key) index: the second waits for
the first to commit, then replays its answer (or, if the first failed and rolled back, goes ahead).
"""

from __future__ import annotations

import hashlib
import json
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from portal.api.models import IdempotencyKey
from portal.api.problems import ApiProblem

MAX_KEY_LENGTH = 255


def fingerprint(metadata: Any, files: list[tuple[str, bytes]]) -> str:
    digest = hashlib.sha256(json.dumps(metadata, sort_keys=True, ensure_ascii=False).encode())
    for name, data in files:
        digest.update(b"\0" + name.encode() + b"\0" + hashlib.sha256(data).digest())
    return digest.hexdigest()


def check_key(key: str) -> str:
    key = key.strip()
    if not key or len(key) > MAX_KEY_LENGTH or not all(33 <= ord(c) <= 126 for c in key):
        raise ApiProblem(f"Idempotency-Key は {MAX_KEY_LENGTH} 文字以内の英数字・記号（空白なし）で指定してください。",
                         400, "invalid_idempotency_key")
    return key


def claim(session: Session, *, token_id: int, key: str, fingerprint: str, method: str, path: str,
          now: datetime) -> IdempotencyKey | None:
    """Reserve `key` for this request, or return the stored answer of an earlier one with the same body.

    Call at the start of a transaction (nothing else written yet): on a duplicate the transaction is
    rolled back. Raises ApiProblem 422 when the key was used with a different body or another URL.
    """
    row = IdempotencyKey(token_id=token_id, key=key, fingerprint=fingerprint, method=method, path=path,
                         response_status=0, response_body={}, created_at=now)
    session.add(row)
    try:
        session.flush()
    except IntegrityError:
        session.rollback()
    else:
        return None
    earlier = session.scalar(select(IdempotencyKey).where(IdempotencyKey.token_id == token_id,
                                                          IdempotencyKey.key == key))
    if earlier is None:  # the earlier request rolled back between our insert and this read
        raise ApiProblem("同じ Idempotency-Key のリクエストを処理中です。しばらくしてから再送してください。",
                         409, "idempotency_key_in_use")
    if earlier.fingerprint != fingerprint or earlier.method != method or earlier.path != path:
        raise ApiProblem("この Idempotency-Key は別の内容のリクエストに使われています。新しいキーを指定してください。",
                         422, "idempotency_key_reused")
    return earlier


def complete(session: Session, key: str, token_id: int, *, status: int, body: dict[str, Any],
             contract_id: int | None) -> None:
    row = session.scalar(select(IdempotencyKey).where(IdempotencyKey.token_id == token_id,
                                                      IdempotencyKey.key == key))
    assert row is not None, "complete() without claim()"
    row.response_status, row.response_body, row.contract_id = status, body, contract_id


def purge_expired(session: Session, *, now: datetime, keep_hours: int) -> int:
    """Forget keys older than `keep_hours` (a retry after that creates a new contract)."""
    cutoff = now - timedelta(hours=keep_hours)
    result = session.execute(delete(IdempotencyKey).where(IdempotencyKey.created_at < cutoff))
    return int(result.rowcount or 0)  # type: ignore[attr-defined]
