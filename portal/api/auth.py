"""The one bearer-token check of /api/v1: who is calling, with which role and scope."""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from typing import Any, TypeVar

from flask import g, request

from portal import clock
from portal.api.problems import ApiProblem
from portal.audit.actions import AuditAction
from portal.audit.service import ANONYMOUS, Actor, record
from portal.auth import api_tokens
from portal.auth.models import ApiToken, ApiTokenScope, Role, StaffUser
from portal.db import db
from portal.security import request_info

F = TypeVar("F", bound=Callable[..., Any])
READERS = (Role.STAFF, Role.APPROVER, Role.AUDITOR)
WRITERS = (Role.STAFF, Role.APPROVER)
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
CHALLENGE = 'Bearer realm="keiyaku-portal"'


def token_required(*roles: Role) -> Callable[[F], F]:
    """Authenticate the bearer token (recording last_used_at, committed at once), then check the
    user's role (admin always passes) and the token's scope (read-only tokens: GET only)."""

    def decorator(view: F) -> F:
        @wraps(view)
        def wrapped(*args: Any, **kwargs: Any) -> Any:
            token = _authenticate()
            if roles and not token.user.has_role(*roles):
                raise ApiProblem("このトークンの職員の役割では、この操作はできません。", 403, "forbidden")
            if token.scope is ApiTokenScope.READ and request.method not in SAFE_METHODS:
                raise ApiProblem("読み取り専用のトークンでは変更の操作はできません。", 403, "read_only_token")
            return view(*args, **kwargs)

        return wrapped  # type: ignore[return-value]

    return decorator


def _authenticate() -> ApiToken:
    scheme, _, value = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not value.strip():
        raise ApiProblem("Authorization: Bearer <トークン> ヘッダーが必要です。", 401, "unauthorized",
                         headers={"WWW-Authenticate": CHALLENGE})
    session = db()
    info = request_info()
    try:
        token = api_tokens.authenticate(session, value.strip(), now=clock.now())
    except api_tokens.InvalidApiToken as exc:
        session.rollback()
        record(session, actor=ANONYMOUS, action=AuditAction.API_TOKEN_REFUSED, ip=info.ip, user_agent=info.user_agent,
               reason=exc.message, method=request.method, path=request.path[:300])
        session.commit()
        raise ApiProblem(exc.message, 401, "invalid_token",
                         headers={"WWW-Authenticate": f'{CHALLENGE}, error="invalid_token"'}) from None
    record(session, actor=Actor.staff(token.user), action=AuditAction.API_TOKEN_USED, subject=("api_tokens", token.id),
           ip=info.ip, user_agent=info.user_agent, label=token.label, method=request.method,
           path=request.path[:300])
    session.commit()  # last_used_at and the use, also when the request later fails or only reads
    g.api_token = token
    return token


def api_user() -> StaffUser:
    token: ApiToken = g.api_token
    return token.user


def api_token_id() -> int:
    return int(g.api_token.id)
