"""Per-user API tokens: printed once, stored as SHA-256, acting with the user's role."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from portal.audit.actions import AuditAction
from portal.audit.service import SYSTEM, record
from portal.auth.models import StaffUser
from portal.contracts.models import ApiToken
from portal.errors import DomainError
from portal.tokens import hash_token, new_token


class InvalidApiToken(DomainError):
    status_code = 401


def create_token(session: Session, *, email: str, label: str, now: datetime) -> tuple[ApiToken, str]:
    """Returns (row, token). Raises DomainError for an unknown or inactive user."""
    user = session.scalar(select(StaffUser).where(func.lower(StaffUser.email) == email.strip().lower()))
    if user is None or not user.is_active:
        raise DomainError(f"有効な職員アカウント {email} が見つかりません。")
    token, token_hash = new_token()
    row = ApiToken(user=user, token_hash=token_hash, label=label, created_at=now)
    session.add(row)
    session.flush()
    record(session, actor=SYSTEM, action=AuditAction.API_TOKEN_CREATED, subject=user, now=now, label=label,
           token_id=row.id)
    return row, token


def authenticate(session: Session, token: str, *, now: datetime) -> StaffUser:
    """The active user behind a bearer token. Raises InvalidApiToken."""
    row = session.scalar(select(ApiToken).where(ApiToken.token_hash == hash_token(token)))
    if row is None or row.revoked_at is not None or not row.user.is_active:
        raise InvalidApiToken("API トークンが無効です。")
    row.last_used_at = now
    return row.user
