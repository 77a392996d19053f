"""Per-user API tokens: shown once, stored as SHA-256, acting with the user's role within their scope."""

from __future__ import annotations

from datetime import datetime, timedelta

from flask import current_app
from sqlalchemy import func, or_, select, update
from sqlalchemy.orm import Session

from portal.audit.actions import AuditAction
from portal.audit.service import SYSTEM, Actor, record
from portal.auth.models import ApiToken, ApiTokenScope, StaffUser
from portal.errors import DomainError, NotFound
from portal.tokens import hash_token, new_token

MAX_LABEL = 100


class InvalidApiToken(DomainError):
    status_code = 401


def create_token(session: Session, *, email: str, label: str, now: datetime,
                 scope: ApiTokenScope = ApiTokenScope.WRITE, expires_at: datetime | None = None,
                 actor: StaffUser | None = None) -> tuple[ApiToken, str]:
    """Returns (row, token); the token is not kept anywhere. Raises DomainError for an unknown or
    inactive user, a label too long or with control characters, or an expiry in the past."""
    user = session.scalar(select(StaffUser).where(func.lower(StaffUser.email) == email.strip().lower()))
    if user is None or not user.is_active:
        raise DomainError(f"有効な職員アカウント {email.strip()[:254]} が見つかりません。")
    label = label.strip()
    if len(label) > MAX_LABEL:
        raise DomainError(f"用途は{MAX_LABEL}文字以内で入力してください。")
    if any(ord(c) < 32 or ord(c) == 127 for c in label):
        raise DomainError("用途に制御文字は使えません。")
    expires_at = expires_at or now + timedelta(days=int(current_app.config["API_TOKEN_DAYS"]))
    if expires_at <= now:
        raise DomainError("有効期限には未来の日時を指定してください。")
    token, token_hash = new_token()
    row = ApiToken(user=user, token_hash=token_hash, label=label, scope=scope, created_at=now,
                   expires_at=expires_at, created_by_id=actor.id if actor else None)
    session.add(row)
    session.flush()
    record(session, actor=Actor.staff(actor) if actor else SYSTEM, action=AuditAction.API_TOKEN_CREATED,
           subject=user, now=now, label=label, token_id=row.id, scope=scope.value,
           expires_at=expires_at.isoformat())
    return row, token


def authenticate(session: Session, token: str, *, now: datetime) -> ApiToken:
    """The usable token row behind a bearer token, with `last_used_at` set to `now`. Raises InvalidApiToken.

    The caller commits: last_used_at is written for reads as well as writes. The UPDATE comes first
    so that on SQLite the transaction starts as a writer (waits for the lock instead of failing).
    """
    token_hash = hash_token(token)
    session.execute(update(ApiToken)
                    .where(ApiToken.token_hash == token_hash, ApiToken.revoked_at.is_(None),
                           or_(ApiToken.expires_at.is_(None), ApiToken.expires_at > now))
                    .values(last_used_at=now).execution_options(synchronize_session=False))
    row = session.scalar(select(ApiToken).where(ApiToken.token_hash == token_hash))
    if row is None or not row.user.is_active:
        raise InvalidApiToken("API トークンが無効です。")
    if row.revoked_at is not None:
        raise InvalidApiToken("この API トークンは失効しています。")
    if not row.is_usable(now):
        raise InvalidApiToken("この API トークンは有効期限が切れています。")
    return row


def list_tokens(session: Session) -> list[ApiToken]:
    return list(session.scalars(select(ApiToken).order_by(ApiToken.revoked_at.is_not(None),
                                                          ApiToken.created_at.desc(), ApiToken.id.desc())))


def get_token(session: Session, token_id: int) -> ApiToken:
    row = session.get(ApiToken, token_id)
    if row is None:
        raise NotFound("API トークンが見つかりません。")
    return row


def revoke(session: Session, row: ApiToken, *, actor: StaffUser | None, now: datetime) -> bool:
    """Revoke at once (a request already past authentication finishes). False if it already was."""
    result = session.execute(update(ApiToken).where(ApiToken.id == row.id, ApiToken.revoked_at.is_(None))
                             .values(revoked_at=now, revoked_by_id=actor.id if actor else None))
    if result.rowcount != 1:  # type: ignore[attr-defined]
        return False
    session.refresh(row)
    record(session, actor=Actor.staff(actor) if actor else SYSTEM, action=AuditAction.API_TOKEN_REVOKED,
           subject=row.user, now=now, token_id=row.id, label=row.label)
    return True
