"""/healthz: the process answers. /readyz: everything a signature needs works, each check named in the JSON.

/readyz answers 503 when one check fails: the database (reachable, migrated to the head this installation
carries), the document store (a probe object written, read back and removed), the signing key (signs, and
the signature verifies with its certificate) and the TSA (issues a timestamp; at most once per
READY_TSA_CHECK_SECONDS per process, since an accredited TSA may charge per timestamp). The answer names
each check and says what failed in a few words; the details go to the log, not to the public. Since each
answer signs and writes, one client address gets 120 a minute (then 429).
"""

from __future__ import annotations

import hashlib
import logging
import secrets
import threading
import time
from collections.abc import Callable
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from flask import Blueprint, current_app, jsonify
from flask.typing import ResponseReturnValue

from portal import db, migrate
from portal.extensions import limiter

log = logging.getLogger(__name__)
bp = Blueprint("health", __name__)


class CheckFailed(Exception):
    """A readiness check found a problem; the message is what /readyz shows."""


@bp.get("/healthz")
def healthz() -> ResponseReturnValue:
    return _no_store(jsonify(status="ok"), 200)


@bp.get("/readyz")
@limiter.limit("120/minute")  # each answer signs and writes: a probe every half second per address at most
def readyz() -> ResponseReturnValue:
    checks = {name: _run(name, check) for name, check in CHECKS.items()}
    ready = all(result["ok"] for result in checks.values())
    return _no_store(jsonify(status="ready" if ready else "not ready", checks=checks), 200 if ready else 503)


def _no_store(response: Any, status: int) -> ResponseReturnValue:
    response.headers["Cache-Control"] = "no-store"
    return response, status


def _run(name: str, check: Callable[[], None]) -> dict[str, Any]:
    started = time.perf_counter()
    result: dict[str, Any] = {"ok": True}
    try:
        check()
    except CheckFailed as exc:
        result = {"ok": False, "error": str(exc)}
        log.warning("readiness check %s failed: %s", name, exc, exc_info=exc.__cause__ is not None)
    except Exception as exc:  # a check must answer, whatever broke
        result = {"ok": False, "error": f"確認できませんでした（{type(exc).__name__}）"}
        log.warning("readiness check %s failed", name, exc_info=True)
    result["ms"] = round((time.perf_counter() - started) * 1000, 1)
    return result


def check_database() -> None:
    try:
        with db.engine().connect() as connection:
            current = migrate.current(connection)
    except Exception as exc:
        raise CheckFailed("データベースに接続できません") from exc
    heads = migrate.heads()
    if current != heads:
        raise CheckFailed(f"データベースが最新ではありません（現在 {', '.join(sorted(current)) or 'なし'}、"
                          f"最新 {', '.join(sorted(heads))}）。flask init を実行してください")


def check_storage() -> None:
    from portal.storage.service import get_store

    try:
        get_store().probe()
    except Exception as exc:
        raise CheckFailed("文書の保存先に書き込めないか、読み出せません") from exc


def check_signing_key() -> None:
    from portal.signing import aio
    from portal.signing.service import get_context

    try:
        signer = get_context().signer
        data = secrets.token_bytes(32)
        signature = aio.run(signer.pyhanko_signer().async_sign_raw(data, "sha256"))
        _verify(x509.load_der_x509_certificate(signer.certificate.dump()), signature, data)
    except Exception as exc:
        raise CheckFailed("署名鍵で署名できません") from exc


def _verify(certificate: x509.Certificate, signature: bytes, data: bytes) -> None:
    key = certificate.public_key()
    if isinstance(key, rsa.RSAPublicKey):
        key.verify(signature, data, padding.PKCS1v15(), hashes.SHA256())
    elif isinstance(key, ec.EllipticCurvePublicKey):
        key.verify(signature, data, ec.ECDSA(hashes.SHA256()))


_tsa_lock = threading.Lock()
_tsa_checked: dict[str, float] = {}  # TSA description → when it last issued a timestamp here


def check_tsa() -> None:
    from portal.signing import aio
    from portal.signing.service import get_context

    tsa = get_context().tsa
    interval = float(current_app.config["READY_TSA_CHECK_SECONDS"])
    with _tsa_lock:
        last = _tsa_checked.get(tsa.description)
        if last is not None and time.monotonic() - last < interval:
            return
        try:
            aio.run(tsa.timestamper.async_timestamp(hashlib.sha256(secrets.token_bytes(32)).digest(), "sha256"))
        except Exception as exc:
            _tsa_checked.pop(tsa.description, None)
            raise CheckFailed("タイムスタンプ局が応答しません") from exc
        _tsa_checked[tsa.description] = time.monotonic()


CHECKS: dict[str, Callable[[], None]] = {
    "database": check_database,
    "storage": check_storage,
    "signing_key": check_signing_key,
    "tsa": check_tsa,
}
