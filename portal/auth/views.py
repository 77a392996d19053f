from __future__ import annotations

from urllib.parse import urlsplit

from flask import current_app, flash, redirect, render_template, request, session, url_for
from flask.typing import ResponseReturnValue
from flask_login import current_user, login_user, logout_user

from portal import clock
from portal.auth import bp, oidc, service, totp
from portal.auth.forms import CodeForm, LoginForm, PasswordForm, SetupForm
from portal.auth.models import StaffUser
from portal.db import db
from portal.errors import DomainError
from portal.extensions import limiter, login_manager
from portal.security import request_info

PENDING_SECONDS = 300
SSO_ONLY_MESSAGE = "パスワードでのログインは無効になっています。「組織のアカウントでログイン」を使ってください。"

login_manager.login_view = "auth.login"
login_manager.login_message = "ログインしてください。"
login_manager.login_message_category = "info"


SESSION_VERSION = "session_version"
ENROL_USER, ENROL_VERSION = "enrol_user_id", "enrol_session_version"


@login_manager.user_loader
def load_user(user_id: str) -> StaffUser | None:
    """The logged-in user, unless their sessions were ended since this one began (logout elsewhere,
    password change, MFA reset, deactivation)."""
    user = db().get(StaffUser, int(user_id))
    if user is None or not user.is_active or not user.is_mfa_enrolled:
        return None
    return user if session.get(SESSION_VERSION) == user.session_version else None


@bp.route("/login", methods=["GET", "POST"])
@limiter.limit("30/minute", methods=["POST"])
def login() -> ResponseReturnValue:
    form = LoginForm()
    if not form.validate_on_submit():
        return render_template("auth/login.html", form=form), 422 if request.method == "POST" else 200
    if not oidc.password_login_allowed(form.email.data or "", current_app.config):
        return render_template("auth/login.html", form=form, error=SSO_ONLY_MESSAGE), 403
    try:
        user = service.check_password(db(), form.email.data or "", form.password.data or "",
                                      now=clock.now(), request=request_info())
    except service.AccountLocked as exc:
        db().commit()
        return render_template("auth/login.html", form=form, error=exc.message), 429
    except service.LoginFailed as exc:
        db().commit()
        return render_template("auth/login.html", form=form, error=exc.message), 422
    db().commit()
    if not user.is_mfa_enrolled:
        return begin_enrolment(user)
    return begin_second_step(user, safe_next(request.args.get("next")))


def begin_enrolment(user: StaffUser) -> ResponseReturnValue:
    """The password is set but no authenticator app yet: on to its enrolment, in this session only
    as long as the user's sessions are not ended (an MFA reset ends an enrolment in progress too)."""
    session[ENROL_USER] = user.id
    session[ENROL_VERSION] = user.session_version
    return redirect(url_for("auth.mfa_setup"))


def begin_second_step(user: StaffUser, next_url: str | None) -> ResponseReturnValue:
    """The first factor is done (password or the agency's provider): ask for the TOTP code."""
    session["pending_user_id"] = user.id
    session["pending_at"] = clock.now().timestamp()
    session["pending_next"] = next_url
    return redirect(url_for("auth.verify"))


def finish_login(user: StaffUser, next_url: str | None) -> ResponseReturnValue:
    _start_session(user)
    return redirect(safe_next(next_url) or url_for("home.index"))


@bp.route("/login/verify", methods=["GET", "POST"])
@limiter.limit("30/minute", methods=["POST"])
def verify() -> ResponseReturnValue:
    user = _pending_user()
    if user is None:
        flash("もう一度メールアドレスとパスワードを入力してください。", "info")
        return redirect(url_for("auth.login"))
    form = CodeForm()
    if not form.validate_on_submit():
        return render_template("auth/verify.html", form=form), 422 if request.method == "POST" else 200
    try:
        service.check_second_factor(db(), user, form.code.data or "", now=clock.now(), request=request_info())
    except service.AccountLocked as exc:
        db().commit()
        session.pop("pending_user_id", None)
        return render_template("auth/verify.html", form=form, error=exc.message), 429
    except service.CodeRejected as exc:
        db().commit()
        return render_template("auth/verify.html", form=form, error=exc.message), 422
    db().commit()
    return finish_login(user, session.get("pending_next"))


@bp.post("/logout")
def logout() -> ResponseReturnValue:
    if current_user.is_authenticated:
        service.logout(db(), current_user, now=clock.now(), request=request_info())
        db().commit()
    logout_user()
    session.clear()
    flash("ログアウトしました。", "info")
    return redirect(url_for("auth.login"))


@bp.route("/setup/<token>", methods=["GET", "POST"])
def setup(token: str) -> ResponseReturnValue:
    now = clock.now()
    token_row = service.open_account_token(db(), token, "setup", now=now)
    form = SetupForm()
    if not form.validate_on_submit():
        return render_template("auth/setup.html", form=form), 422 if request.method == "POST" else 200
    try:
        user = service.complete_setup(
            db(), token_row, email=form.email.data or "", name=form.name.data or "",
            department_name=form.department.data or "", password=form.password.data or "",
            confirm=form.confirm.data or "", now=now, request=request_info(),
        )
    except DomainError as exc:
        db().rollback()
        return render_template("auth/setup.html", form=form, error=exc.message), 422
    db().commit()
    session.clear()
    return begin_enrolment(user)


@bp.route("/account/enrol/<token>", methods=["GET", "POST"])
def enrol(token: str) -> ResponseReturnValue:
    now = clock.now()
    token_row = service.open_account_token(db(), token, "enrol", now=now)
    user = service.get_user(db(), token_row.user_id or 0)
    form = PasswordForm()
    if not form.validate_on_submit():
        status = 422 if request.method == "POST" else 200
        return render_template("auth/enrol.html", form=form, user=user), status
    try:
        service.set_password(db(), user, form.password.data or "", form.confirm.data or "", now=now)
    except DomainError as exc:
        db().rollback()
        return render_template("auth/enrol.html", form=form, user=user, error=exc.message), 422
    token_row.used_at = now
    db().commit()
    session.clear()
    return begin_enrolment(user)


@bp.route("/account/mfa", methods=["GET", "POST"])
def mfa_setup() -> ResponseReturnValue:
    user = _enrolling_user()
    if user is None:
        return redirect(url_for("auth.login"))
    form = CodeForm()
    error = None
    if form.validate_on_submit():
        try:
            codes = service.confirm_totp_enrolment(db(), user, form.code.data or "", now=clock.now(),
                                                   request=request_info())
        except service.CodeRejected as exc:
            db().rollback()
            error = exc.message
        else:
            db().commit()
            session.pop(ENROL_USER, None)
            session.pop(ENROL_VERSION, None)
            _start_session(user)
            return render_template("auth/recovery_codes.html", codes=codes)
    if _enrolling_user() is None:  # completed or reset meanwhile
        return redirect(url_for("auth.login"))
    secret = service.pending_totp_secret(db(), user)
    db().commit()
    context = {"form": form, "user": user, "secret": secret, "qr": totp.qr_data_uri(totp.provisioning_uri(
        secret, user.email))}
    status = 422 if request.method == "POST" else 200
    return render_template("auth/mfa_setup.html", error=error, **context), status


def _enrolling_user() -> StaffUser | None:
    user_id = session.get(ENROL_USER)
    user = db().get(StaffUser, user_id) if user_id else None
    if user is None or user.is_mfa_enrolled or session.get(ENROL_VERSION) != user.session_version:
        return None
    return user


def _start_session(user: StaffUser) -> None:
    for key in ("pending_user_id", "pending_at", "pending_next"):
        session.pop(key, None)
    session.permanent = True
    session[SESSION_VERSION] = user.session_version
    login_user(user)


def _pending_user() -> StaffUser | None:
    user_id, started = session.get("pending_user_id"), session.get("pending_at", 0)
    if not user_id or clock.now().timestamp() - started > PENDING_SECONDS:
        return None
    return db().get(StaffUser, user_id)



def safe_next(target: str | None) -> str | None:
    """Only a path on this host: an open redirect after login would help phishing.

    Browsers drop tabs and newlines from URLs and read a backslash as a slash, so `/%09/evil.example` (a tab)
    and `/\\evil.example` would leave the site: any control character, backslash or second leading slash
    refuses the target, and so does anything urlsplit reads as having a scheme or a host.
    """
    if not target or len(target) > 2000 or not target.startswith("/") or target.startswith("//"):
        return None
    if "\\" in target or any(ord(char) < 0x20 or 0x7F <= ord(char) <= 0x9F for char in target):
        return None
    parts = urlsplit(target)
    if parts.scheme or parts.netloc or not parts.path.startswith("/") or parts.path.startswith("//"):
        return None
    return target
