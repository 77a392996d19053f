"""「組織のアカウントでログイン」: to the agency's OpenID provider and back, then the TOTP step unless the
provider asserted a second factor."""

from __future__ import annotations

from authlib.common.errors import AuthlibBaseError
from flask import current_app, render_template, request, session, url_for
from flask.typing import ResponseReturnValue
from joserfc.errors import JoseError

from portal import clock
from portal.auth import bp, oidc
from portal.auth.forms import LoginForm
from portal.auth.views import begin_enrolment, begin_second_step, finish_login, safe_next
from portal.db import db
from portal.errors import NotFound
from portal.extensions import limiter
from portal.security import request_info

FAILED = "組織のアカウントでのログインを完了できませんでした。もう一度お試しください。"


@bp.app_context_processor
def login_choices() -> dict[str, bool]:
    config = current_app.config
    return {"sso_enabled": oidc.is_configured(config), "password_login": bool(config.get("PASSWORD_LOGIN", True))}


def _refused(message: str, status: int = 403) -> ResponseReturnValue:
    return render_template("auth/login.html", form=LoginForm(), error=message), status


@bp.get("/login/sso")
@limiter.limit("30/minute")
def sso_start() -> ResponseReturnValue:
    if not oidc.is_configured(current_app.config):
        raise NotFound("組織のアカウントでのログインは設定されていません。")
    session["sso_next"] = safe_next(request.args.get("next"))
    redirect_uri = url_for("auth.sso_callback", _external=True)
    return oidc.client().authorize_redirect(redirect_uri)


@bp.get("/login/sso/callback")
@limiter.limit("30/minute")
def sso_callback() -> ResponseReturnValue:
    if not oidc.is_configured(current_app.config):
        raise NotFound("組織のアカウントでのログインは設定されていません。")
    now, info = clock.now(), request_info()
    if request.args.get("error"):
        oidc.record_failure(db(), reason=f"provider:{request.args['error'][:80]}", now=now, request=info)
        db().commit()
        return _refused("組織のアカウントでのログインが中止されました。")
    try:
        token = oidc.client().authorize_access_token()
    except (AuthlibBaseError, JoseError, ValueError, KeyError) as exc:
        # Wrong or replayed state, a code already used, a nonce that does not match, an expired or
        # badly signed ID token: all end here, and nothing is logged in.
        oidc.record_failure(db(), reason=f"{type(exc).__name__}: {exc}"[:200], now=now, request=info)
        db().commit()
        return _refused(FAILED)
    claims = token.get("userinfo") or {}
    try:
        login = oidc.resolve_user(db(), claims, config=current_app.config, now=now, request=info)
    except oidc.SsoRefused as exc:
        db().commit()
        return _refused(exc.message)
    db().commit()
    next_url = session.pop("sso_next", None)
    if not login.user.is_mfa_enrolled:
        return begin_enrolment(login.user)
    if login.mfa_asserted:
        return finish_login(login.user, next_url)
    return begin_second_step(login.user, next_url)
