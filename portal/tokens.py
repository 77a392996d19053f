"""Unguessable link tokens (256 bits); only their SHA-256 is ever stored.

The link a token opens is its owner's alone, so wherever text about it is kept for others (the
stored copy of a mail, log lines with request paths and referrers) the token is masked:
`https://portal/s/abcd…(マスク済み)`.
"""

from __future__ import annotations

import hashlib
import logging
import re
import secrets
from typing import Any

MASK = "…(マスク済み)"
# A token of new_token() is 43 URL-safe characters after a "/" (path) or "=" (query). Any such run
# of 32 or more is masked: a longer harmless segment only gets shortened where people read it.
_TOKEN = re.compile(r"(?<=[/=])(?P<head>[A-Za-z0-9_-]{4})[A-Za-z0-9_-]{28,}(?![A-Za-z0-9_-])")


def new_token() -> tuple[str, str]:
    """Return (token for the link, hash for the database)."""
    token = secrets.token_urlsafe(32)
    return token, hash_token(token)


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def first_token_hash(text: str) -> str:
    """hash_token() of the first link token in `text`; "" when it carries none."""
    match = _TOKEN.search(text)
    return hash_token(match.group(0)) if match else ""


def mask_tokens(text: str) -> str:
    """`text` with every link token cut to its first four characters and marked as masked."""
    return _TOKEN.sub(lambda match: match["head"] + MASK, text)


def mask_tokens_in_logs() -> None:
    """Mask tokens in every log record of this process (gunicorn's access log with request paths and
    referrers, Flask's exception log with the path, the portal's own warnings)."""
    factory = logging.getLogRecordFactory()
    if getattr(factory, "masks_tokens", False):
        return

    def masked_record(*args: Any, **kwargs: Any) -> logging.LogRecord:
        record = factory(*args, **kwargs)
        try:
            message = record.getMessage()
        except (TypeError, ValueError):
            return record  # a malformed record is logging's to report, unchanged
        masked = mask_tokens(message)
        if masked != message:
            record.msg, record.args = masked, None
        return record

    masked_record.masks_tokens = True  # type: ignore[attr-defined]
    logging.setLogRecordFactory(masked_record)
