"""TOTP (RFC 6238) with replay protection; secrets sealed under the master key at rest."""

from __future__ import annotations

import hmac
from datetime import datetime

import pyotp
import segno
from flask import current_app

from portal.storage import crypto

STEP_SECONDS = 30
CONTEXT = b"totp-secret"


def new_secret() -> str:
    return pyotp.random_base32()


def seal_secret(secret: str) -> str:
    key = crypto.master_key_from_hex(current_app.config["MASTER_KEY"])
    return crypto.seal(key, secret.encode(), CONTEXT).hex()


def unseal_secret(sealed: str) -> str:
    key = crypto.master_key_from_hex(current_app.config["MASTER_KEY"])
    return crypto.open_sealed(key, bytes.fromhex(sealed), CONTEXT).decode()


def matching_counter(secret: str, code: str, now: datetime) -> int | None:
    """The time step (±1 for clock drift) whose code equals `code`, or None."""
    code = code.strip().replace(" ", "")
    if not (code.isdigit() and len(code) == 6):
        return None
    totp = pyotp.TOTP(secret)
    current = int(now.timestamp()) // STEP_SECONDS
    for counter in (current - 1, current, current + 1):
        if hmac.compare_digest(totp.at(counter * STEP_SECONDS), code):
            return counter
    return None


def provisioning_uri(secret: str, email: str) -> str:
    issuer = f"{current_app.config['AGENCY_NAME']} {current_app.config['SERVICE_NAME']}"
    return pyotp.TOTP(secret).provisioning_uri(name=email, issuer_name=issuer)


def qr_data_uri(uri: str) -> str:
    """An SVG QR code rendered on the server (no third-party service ever sees the secret)."""
    return segno.make(uri, error="m").svg_data_uri(scale=5, border=2)
