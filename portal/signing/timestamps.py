"""RFC 3161 timestamps of a bare SHA-256 digest from the configured TSA, and their check.

The operation log's checkpoints use these (portal.audit.checkpoints): the token's message
imprint is the chain head's hash, so the token proves the head existed at its time.
"""

from __future__ import annotations

import datetime as dt

from asn1crypto import cms
from pyhanko.sign.validation.generic_cms import validate_tst_signed_data
from pyhanko_certvalidator import ValidationContext

from . import aio
from .context import SigningContext
from .errors import TimestampUnavailable
from .pades import _is_timestamp_failure
from .service import get_context


def timestamp_digest(digest: bytes, *, context: SigningContext | None = None) -> bytes:
    """A DER timestamp token (CMS ContentInfo) over `digest` (SHA-256) from the configured TSA.

    Raises TimestampUnavailable when the TSA cannot be reached, refuses, or answers for another digest.
    """
    ctx = context or get_context()
    try:
        token = aio.run(ctx.tsa.timestamper.async_timestamp(digest, "sha256"))
    except Exception as exc:
        if _is_timestamp_failure(exc):
            raise TimestampUnavailable() from exc
        raise
    if token_info(token.dump())["message_imprint"]["hashed_message"].native != digest:
        raise TimestampUnavailable("タイムスタンプ局の応答が依頼した内容と一致しませんでした。")
    return bytes(token.dump())


def token_info(token: bytes) -> cms.ContentInfo:
    """The TSTInfo inside a DER token. Raises ValueError for anything that is not one."""
    try:
        info = cms.ContentInfo.load(token)["content"]["encap_content_info"]["content"].parsed
        info.native  # noqa: B018  (parse it all here)
    except (ValueError, TypeError, KeyError, AttributeError) as exc:
        raise ValueError("not an RFC 3161 timestamp token") from exc
    return info


def token_time(token: bytes) -> dt.datetime:
    """The genTime of a DER token (aware UTC)."""
    return token_info(token)["gen_time"].native.astimezone(dt.UTC)


def check_token(token: bytes, digest: bytes, *, context: SigningContext | None = None) -> str | None:
    """What is wrong with `token` as a timestamp of `digest` (in Japanese), or None when it is sound:
    it covers `digest`, its signature is intact and valid, and the TSA certificate chains to a
    trusted root at the token's time."""
    ctx = context or get_context()
    try:
        gen_time = token_time(token)
        signed_data = cms.ContentInfo.load(token)["content"]
    except ValueError:
        return "タイムスタンプトークンを読み取れません。"
    if token_info(token)["message_imprint"]["hashed_message"].native != digest:
        return "タイムスタンプが記録されたハッシュに対応していません。"
    validation = ValidationContext(trust_roots=ctx.trust_roots, moment=gen_time, allow_fetching=False,
                                   revocation_mode="soft-fail")
    try:
        status = aio.run(validate_tst_signed_data(signed_data, validation, lambda _algorithm: digest))
    except Exception as exc:  # pyhanko raises several kinds for a broken or foreign token
        return f"タイムスタンプの署名を検証できません（{type(exc).__name__}）。"
    if not status.get("intact"):
        return "タイムスタンプの内容が改ざんされています。"
    if not status.get("valid"):
        return "タイムスタンプの署名が正しくありません。"
    if status.get("trust_problem_indic") is not None or status.get("validation_path") is None:
        return "タイムスタンプ局の証明書を信頼できません。"
    return None
