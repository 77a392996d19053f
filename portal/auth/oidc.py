"""Single sign-on with the agency's OpenID Connect provider (authorization code flow with PKCE).

Authlib does the protocol: the provider's endpoints and keys come from its discovery document, the
`state` and `nonce` are kept in the session and checked on return, the ID token's signature, issuer,
audience and expiry are verified. This module decides who that person is here: an existing, active
staff account with the same *verified* e-mail address. Accounts are created only when
PORTAL_OIDC_CREATE_USERS is on, and then with the least role (担当者) in the configured department.
Unless the provider asserts a second factor (`amr` / `acr`, configurable), the portal's own TOTP step
follows, exactly as after a password.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from authlib.integrations.flask_client import OAuth
from flask import Flask, current_app
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from portal.audit.actions import AuditAction
from portal.audit.service import Actor, RequestInfo, record
from portal.auth.models import Department, Role, StaffUser
from portal.errors import DomainError

PROVIDER = "agency"


class SsoRefused(DomainError):
    status_code = 403


@dataclass(frozen=True)
class SsoLogin:
    user: StaffUser
    mfa_asserted: bool


def is_configured(config: Mapping[str, Any]) -> bool:
    return bool(config.get("OIDC_ISSUER") and config.get("OIDC_CLIENT_ID"))


def init_app(app: Flask) -> None:
    """One Authlib registry per app: the provider's metadata and keys are cached with it."""
    oauth = OAuth(app)
    app.extensions["portal.oauth"] = oauth
    if not is_configured(app.config):
        return
    issuer = str(app.config["OIDC_ISSUER"]).rstrip("/")
    oauth.register(
        PROVIDER,
        client_id=app.config["OIDC_CLIENT_ID"],
        client_secret=app.config.get("OIDC_CLIENT_SECRET") or None,
        server_metadata_url=f"{issuer}/.well-known/openid-configuration",
        client_kwargs={"scope": app.config["OIDC_SCOPES"], "code_challenge_method": "S256",
                       "timeout": float(app.config["OIDC_TIMEOUT_SECONDS"])},
    )


def client() -> Any:
    return current_app.extensions["portal.oauth"].create_client(PROVIDER)


def _words(value: str | Iterable[str]) -> set[str]:
    return set(value.replace(",", " ").split()) if isinstance(value, str) else set(value)


def mfa_asserted(claims: Mapping[str, Any], *, amr_values: str | Iterable[str],
                 acr_values: str | Iterable[str]) -> bool:
    """Whether the ID token says the person used a second factor at the provider."""
    amr = claims.get("amr") or []
    if isinstance(amr, str):
        amr = [amr]
    if _words(amr_values) & {str(value) for value in amr}:
        return True
    return bool(claims.get("acr")) and str(claims["acr"]) in _words(acr_values)


def resolve_user(session: Session, claims: Mapping[str, Any], *, config: Mapping[str, Any], now: datetime,
                 request: RequestInfo) -> SsoLogin:
    """The staff account for verified claims from the provider.

    :raise SsoRefused: no verified e-mail, no matching account (and creation off), or a disabled account.
    """
    email = str(claims.get("email") or "").strip().lower()
    actor = Actor("sso", email[:254] or str(claims.get("sub", ""))[:254])
    if not email or claims.get("email_verified") is not True:
        _refuse(session, actor, now, request, "email-not-verified")
        raise SsoRefused("組織のアカウントのメールアドレスが確認済みではないため、ログインできません。"
                         "システム管理者にお問い合わせください。")
    user = session.scalar(select(StaffUser).where(func.lower(StaffUser.email) == email))
    if user is None:
        if not config.get("OIDC_CREATE_USERS"):
            _refuse(session, actor, now, request, "unknown-user")
            raise SsoRefused(f"{email} はこのポータルに登録されていません。"
                             "システム管理者に利用登録を依頼してください。")
        user = _create_user(session, claims, email, config=config, now=now)
    if not user.is_active:
        _refuse(session, actor, now, request, "disabled")
        raise SsoRefused("このアカウントは無効になっています。管理者にお問い合わせください。")
    asserted = mfa_asserted(claims, amr_values=config["OIDC_MFA_AMR"], acr_values=config["OIDC_MFA_ACR"])
    record(session, actor=Actor.staff(user), action=AuditAction.SSO_SUCCEEDED, subject=user, ip=request.ip,
           user_agent=request.user_agent, now=now, sub=str(claims.get("sub", ""))[:255], mfa_asserted=asserted,
           amr=[str(v)[:40] for v in (claims.get("amr") or [])][:10], acr=str(claims.get("acr") or "")[:100])
    return SsoLogin(user=user, mfa_asserted=asserted)


def record_failure(session: Session, *, reason: str, now: datetime, request: RequestInfo) -> None:
    _refuse(session, Actor("anonymous"), now, request, reason)


def _refuse(session: Session, actor: Actor, now: datetime, request: RequestInfo, reason: str) -> None:
    record(session, actor=actor, action=AuditAction.SSO_FAILED, ip=request.ip, user_agent=request.user_agent,
           now=now, reason=reason[:200])


def _create_user(session: Session, claims: Mapping[str, Any], email: str, *, config: Mapping[str, Any],
                 now: datetime) -> StaffUser:
    code = str(config.get("OIDC_DEFAULT_DEPARTMENT") or "")
    department = session.scalar(select(Department).where(Department.code == code, Department.is_active))
    if department is None:
        raise SsoRefused("自動登録先の所属（PORTAL_OIDC_DEFAULT_DEPARTMENT）が設定されていません。システム管理者に"
                         "お問い合わせください。")
    name = "".join(ch for ch in str(claims.get("name") or email) if ch.isprintable())[:100]
    user = StaffUser(email=email, name=name, role=Role.STAFF, department=department, title="", password_hash=None,
                     created_at=now)
    session.add(user)
    session.flush()
    record(session, actor=Actor("sso", email), action=AuditAction.USER_CREATED, subject=user, now=now,
           via="sso", role=Role.STAFF.value)
    return user


def password_login_allowed(email: str, config: Mapping[str, Any]) -> bool:
    """With PORTAL_PASSWORD_LOGIN off, only the break-glass administrators may use a password."""
    if config.get("PASSWORD_LOGIN", True):
        return True
    return email.strip().lower() in {e.lower() for e in _words(config.get("BREAK_GLASS_ADMINS") or "")}
