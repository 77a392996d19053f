"""Admin page 「API トークン」: list (owner, created, last used, expiry, scope), create, revoke."""

from __future__ import annotations

from datetime import datetime, time, timedelta

from flask import current_app, flash, redirect, render_template, url_for
from flask.typing import ResponseReturnValue
from flask_login import current_user
from flask_wtf import FlaskForm
from sqlalchemy import select
from wtforms import DateField, SelectChoice, SelectField, StringField
from wtforms.validators import DataRequired, Length, Optional

from portal import clock
from portal.admin import bp
from portal.auth import api_tokens
from portal.auth.models import ApiTokenScope, Role, StaffUser
from portal.clock import JST
from portal.db import db
from portal.errors import DomainError
from portal.security import role_required


def _max(limit: int) -> Length:
    return Length(max=limit, message=f"{limit}文字以内で入力してください。")


class ApiTokenForm(FlaskForm):
    user_email = SelectField("職員（トークンはこの職員の役割・所属で動きます）",
                             validators=[DataRequired("選択してください。")])
    label = StringField("用途", validators=[_max(100)], description="例: 財務会計システム")
    scope = SelectField("権限", choices=[SelectChoice(s.value, s.label) for s in ApiTokenScope],
                        default=ApiTokenScope.READ.value)
    expires_on = DateField("有効期限", validators=[Optional()], description="この日の終わりまで。空欄なら1年後")


def _form() -> ApiTokenForm:
    form = ApiTokenForm()
    users = db().scalars(select(StaffUser).where(StaffUser.is_active).order_by(StaffUser.email))
    form.user_email.choices = [SelectChoice(u.email, f"{u.name} <{u.email}>（{u.role.label}）") for u in users]
    return form


def _page(form: ApiTokenForm, *, status: int = 200, **context: object) -> ResponseReturnValue:
    return render_template("admin/api_tokens.html", tokens=api_tokens.list_tokens(db()), form=form,
                           now=clock.now(), **context), status


@bp.get("/api-tokens")
@role_required(Role.ADMIN)
def api_token_list() -> ResponseReturnValue:
    return _page(_form())


@bp.post("/api-tokens")
@role_required(Role.ADMIN)
def api_token_create() -> ResponseReturnValue:
    form = _form()
    if not form.validate_on_submit():
        return _page(form, status=422)
    now = clock.now()
    expires_at = (datetime.combine(form.expires_on.data + timedelta(days=1), time(), JST) if form.expires_on.data
                  else now + timedelta(days=int(current_app.config["API_TOKEN_DAYS"])))
    try:
        row, token = api_tokens.create_token(db(), email=form.user_email.data or "", label=form.label.data or "",
                                             scope=ApiTokenScope(form.scope.data), expires_at=expires_at,
                                             actor=current_user, now=now)
    except DomainError as exc:
        db().rollback()
        return _page(form, status=422, error=exc.message)
    db().commit()
    return _page(_form(), created=row, token=token)


@bp.post("/api-tokens/<int:token_id>/revoke")
@role_required(Role.ADMIN)
def api_token_revoke(token_id: int) -> ResponseReturnValue:
    row = api_tokens.get_token(db(), token_id)
    if api_tokens.revoke(db(), row, actor=current_user, now=clock.now()):
        db().commit()
        flash(f"トークン（{row.user.email} {row.label}）を失効させました。", "success")
    else:
        flash("このトークンはすでに失効しています。", "error")
    return redirect(url_for("admin.api_token_list"), 303)
