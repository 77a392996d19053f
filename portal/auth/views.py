from __future__ import annotations

import time

from flask import current_app, flash, redirect, render_template, request, session, url_for
from flask.typing import ResponseReturnValue
from flask_login import current_user, login_user, logout_user

from portal import clock
from portal.audit.actions import AuditAction
from portal.audit.service import Actor, record
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


@login_manager.user_loader
def load_user(user_id: str) -> StaffUser | None:
    user = db().get(StaffUser, int(user_id))
    return user if user is not None and user.is_active and user.is_mfa_enrolled else None


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
        _slow_down(form.email.data or "")
        return render_template("auth/login.html", form=form, error=exc.message), 422
    db().commit()
    if not user.is_mfa_enrolled:
        session["enrol_user_id"] = user.id
        return redirect(url_for("auth.mfa_setup"))
    return begin_second_step(user, safe_next(request.args.get("next")))


def begin_second_step(user: StaffUser, next_url: str | None) -> ResponseReturnValue:
    """The first factor is done (password or the agency's provider): ask for the TOTP code."""
    session["pending_user_id"] = user.id
    session["pending_at"] = clock.now().timestamp()
    session["pending_next"] = next_url
    return redirect(url_for("auth.verify"))


def finish_login(user: StaffUser, next_url: str | None) -> ResponseReturnValue:
    _start_session(user)
    return redirect(next_url or url_for("home.index"))


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
        _slow_down(user.email)
        return render_template("auth/verify.html", form=form, error=exc.message), 422
    db().commit()
    return finish_login(user, session.get("pending_next"))


@bp.post("/logout")
def logout() -> ResponseReturnValue:
    if current_user.is_authenticated:
        record(db(), actor=Actor.staff(current_user), action=AuditAction.LOGOUT, subject=current_user,
               ip=request_info().ip, user_agent=request_info().user_agent, now=clock.now())
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
    session["enrol_user_id"] = user.id
    return redirect(url_for("auth.mfa_setup"))


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
    session["enrol_user_id"] = user.id
    return redirect(url_for("auth.mfa_setup"))


@bp.route("/account/mfa", methods=["GET", "POST"])
def mfa_setup() -> ResponseReturnValue:
    user_id = session.get("enrol_user_id")
    user = db().get(StaffUser, user_id) if user_id else None
    if user is None or user.is_mfa_enrolled:
        return redirect(url_for("auth.login"))
    secret = session.setdefault("enrol_secret", totp.new_secret())
    uri = totp.provisioning_uri(secret, user.email)
    form = CodeForm()
    context = {"form": form, "user": user, "secret": secret, "qr": totp.qr_data_uri(uri)}
    if not form.validate_on_submit():
        return render_template("auth/mfa_setup.html", **context), 422 if request.method == "POST" else 200
    try:
        codes = service.confirm_totp_enrolment(db(), user, secret, form.code.data or "", now=clock.now(),
                                               request=request_info())
    except service.CodeRejected as exc:
        return render_template("auth/mfa_setup.html", error=exc.message, **context), 422
    db().commit()
    session.pop("enrol_secret", None)
    session.pop("enrol_user_id", None)
    _start_session(user)
    return render_template("auth/recovery_codes.html", codes=codes)


def _start_session(user: StaffUser) -> None:
    for key in ("pending_user_id", "pending_at", "pending_next"):
        session.pop(key, None)
    session.permanent = True
    login_user(user)


def _pending_user() -> StaffUser | None:
    user_id, started = session.get("pending_user_id"), session.get("pending_at", 0)
    if not user_id or clock.now().timestamp() - started > PENDING_SECONDS:
        return None
    return db().get(StaffUser, user_id)


def _slow_down(email: str) -> None:
    user = db().query(StaffUser).filter(StaffUser.email == email).one_or_none()
    delay = service.slowdown_seconds(user.failed_attempts if user else 1)
    if delay > 0:
        time.sleep(delay)


def safe_next(target: str | None) -> str | None:
    """Only same-site paths: an open redirect after login would help phishing."""
    if target and target.startswith("/") and not target.startswith("//") and "\\" not in target:
        return target
    return None
