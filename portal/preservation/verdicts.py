"""The verdict of 一括検証 on one document: from its stored bytes (verify_bytes) or from why they could not be read.

Kept apart from verification.py (runs, results, the database) so that a verifying child process
(verifier_pool.py) imports only pyHanko and the signing context.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from portal.signing.context import SigningContext
from portal.signing.errors import InvalidPdf
from portal.storage import StorageError, TamperedFile


@dataclass(frozen=True)
class Verdict:
    is_valid: bool
    signature_count: int = 0
    level: str = ""
    timestamp_at: datetime | None = None
    problems: tuple[str, ...] = ()


def read_or_verdict(read: Callable[[], bytes]) -> bytes | Verdict:
    """The stored bytes, or the failed Verdict when the store cannot give them."""
    try:
        return read()
    except TamperedFile:
        return Verdict(False, problems=(
            "保存データの整合性検査に失敗しました。保存後に改ざんされた可能性があります。",))
    except StorageError:
        return Verdict(False, problems=("保存データが見つかりません。",))


def verify_bytes(data: bytes, sha256: str, *, context: SigningContext) -> Verdict:
    """Compare the bytes with their recorded SHA-256 and validate them. Problems are returned, never raised."""
    from portal.signing import pades

    if hashlib.sha256(data).hexdigest() != sha256:
        return Verdict(False, problems=("保存データの SHA-256 が記録と一致しません。",))
    try:
        report = pades.verify(data, context=context)
    except InvalidPdf as exc:
        return Verdict(False, problems=(f"PDF として読み取れません: {exc}",))
    problems = list(report.problems)
    if not report.signatures:
        problems.append("電子署名がありません。")
    for signature in report.signatures:
        label = "文書タイムスタンプ" if signature.is_document_timestamp else f"署名 {signature.signer_name}"
        problems.extend(f"{label}: {p}" for p in signature.problems)
        if not signature.is_valid and not signature.problems:
            problems.append(f"{label}: 検証に失敗しました。")
    times = [s.timestamp_time for s in report.signatures if s.timestamp_time]
    return Verdict(is_valid=report.is_valid and not problems, signature_count=len(report.signatures),
                   level=report.level or "", timestamp_at=max(times) if times else None, problems=tuple(problems))
