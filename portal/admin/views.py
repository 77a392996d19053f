from __future__ import annotations

from flask import flash, redirect, render_template, request, url_for
from flask.typing import ResponseReturnValue
from flask_login import current_user
from sqlalchemy import select

from portal import clock
from portal.admin import bp
from portal.auth import service
from portal.auth.forms import DepartmentForm, UserForm
from portal.auth.models import ROLE_LABELS, Department, Role, StaffUser
from portal.db import db
from portal.errors import DomainError, NotFound
from portal.mail.worker import notify as notify_outbox
from portal.security import role_required

ROLES_LEAST_FIRST = (Role.STAFF, Role.APPROVER, Role.AUDITOR, Role.ADMIN)


def _user_form(user: StaffUser | None = None) -> UserForm:
    form = UserForm(obj=user)
    form.role.choices = [(role.value, ROLE_LABELS[role]) for role in ROLES_LEAST_FIRST]
    if user is None and not form.role.data:
        form.role.data = Role.STAFF.value
    form.department_id.choices = [
        (d.id, d.name) for d in db().scalars(select(Department).where(Department.is_active).order_by(Department.code))
    ]
    return form


def _user_page(user: StaffUser, form: UserForm, **context: object) -> str:
    locked = user.locked_until is not None and user.locked_until > clock.now()
    return render_template("admin/user.html", user=user, form=form, locked=locked, **context)


@bp.get("/users")
@role_required(Role.ADMIN)
def users() -> ResponseReturnValue:
    rows = db().scalars(select(StaffUser).order_by(StaffUser.department_id, StaffUser.name))
    return render_template("admin/users.html", users=list(rows), form=_user_form(), link=None)


@bp.post("/users")
@role_required(Role.ADMIN)
def create_user() -> ResponseReturnValue:
    form = _user_form()
    rows = list(db().scalars(select(StaffUser).order_by(StaffUser.department_id, StaffUser.name)))
    if not form.validate_on_submit():
        return render_template("admin/users.html", users=rows, form=form, link=None), 422
    department = db().get(Department, form.department_id.data)
    try:
        if department is None:
            raise DomainError("所属を選択してください。")
        user, link = service.create_user(
            db(), email=form.email.data or "", name=form.name.data or "", role=Role(form.role.data),
            department=department, title=form.title.data or "", actor=current_user, now=clock.now(),
        )
    except DomainError as exc:
        db().rollback()
        return render_template("admin/users.html", users=rows, form=form, link=None, error=exc.message), 422
    db().commit()
    notify_outbox()
    rows.append(user)
    return render_template("admin/users.html", users=rows, form=_user_form(), link=link, linked_user=user)


@bp.route("/users/<int:user_id>", methods=["GET", "POST"])
@role_required(Role.ADMIN)
def edit_user(user_id: int) -> ResponseReturnValue:
    user = service.get_user(db(), user_id)
    form = _user_form(user)
    if request.method == "GET":
        form.role.data = user.role.value
        return _user_page(user, form)
    if not form.validate_on_submit():
        return _user_page(user, form), 422
    department = db().get(Department, form.department_id.data)
    try:
        if department is None:
            raise NotFound("所属が見つかりません。")
        service.update_user(db(), user, name=form.name.data or "", title=form.title.data or "",
                            role=Role(form.role.data), department=department, actor=current_user, now=clock.now())
    except DomainError as exc:
        db().rollback()
        return _user_page(user, form, error=exc.message), 422
    db().commit()
    flash("ユーザー情報を更新しました。", "success")
    return redirect(url_for("admin.edit_user", user_id=user.id), 303)


@bp.post("/users/<int:user_id>/active")
@role_required(Role.ADMIN)
def set_active(user_id: int) -> ResponseReturnValue:
    user = service.get_user(db(), user_id)
    active = request.form.get("active") == "1"
    try:
        service.set_active(db(), user, active, actor=current_user, now=clock.now())
    except DomainError as exc:
        db().rollback()
        flash(exc.message, "error")
        return redirect(url_for("admin.edit_user", user_id=user.id), 303)
    db().commit()
    flash("アカウントを有効にしました。" if active else "アカウントを無効にしました。", "success")
    return redirect(url_for("admin.edit_user", user_id=user.id), 303)


@bp.post("/users/<int:user_id>/unlock")
@role_required(Role.ADMIN)
def unlock_user(user_id: int) -> ResponseReturnValue:
    user = service.get_user(db(), user_id)
    unlocked = service.unlock(db(), user, actor=current_user, now=clock.now())
    db().commit()
    flash("ロックを解除しました。" if unlocked else "このアカウントはロックされていません。",
          "success" if unlocked else "info")
    return redirect(url_for("admin.edit_user", user_id=user.id), 303)


@bp.post("/users/<int:user_id>/reset-mfa")
@role_required(Role.ADMIN)
def reset_mfa(user_id: int) -> ResponseReturnValue:
    user = service.get_user(db(), user_id)
    link = service.reset_mfa(db(), user, actor=current_user, now=clock.now())
    db().commit()
    notify_outbox()
    return _user_page(user, _user_form(user), link=link)


def _departments() -> list[Department]:
    return list(db().scalars(select(Department).order_by(Department.is_active.desc(), Department.code)))


@bp.get("/departments")
@role_required(Role.ADMIN)
def departments() -> ResponseReturnValue:
    return render_template("admin/departments.html", departments=_departments(), form=DepartmentForm(), editing=None)


@bp.get("/departments/<int:department_id>")
@role_required(Role.ADMIN)
def edit_department(department_id: int) -> ResponseReturnValue:
    department = db().get(Department, department_id)
    if department is None:
        raise NotFound("所属が見つかりません。")
    return render_template("admin/departments.html", departments=_departments(),
                           form=DepartmentForm(obj=department), editing=department)


@bp.post("/departments")
@bp.post("/departments/<int:department_id>")
@role_required(Role.ADMIN)
def save_department(department_id: int | None = None) -> ResponseReturnValue:
    department = db().get(Department, department_id) if department_id else None
    if department_id and department is None:
        raise NotFound("所属が見つかりません。")
    form = DepartmentForm()
    if not form.validate_on_submit():
        return render_template("admin/departments.html", departments=_departments(), form=form,
                               editing=department), 422
    data = service.DepartmentInput(
        code=(form.code.data or "").strip(), name=(form.name.data or "").strip(), kind=form.kind.data or "本庁",
        go_live_date=form.go_live_date.data, contact_phone=(form.contact_phone.data or "").strip(),
        contact_email=(form.contact_email.data or "").strip(), is_active=bool(form.is_active.data),
    )
    try:
        service.save_department(db(), department, data, actor=current_user, now=clock.now())
    except DomainError as exc:
        db().rollback()
        return render_template("admin/departments.html", departments=_departments(), form=form,
                               editing=department, error=exc.message), 422
    db().commit()
    flash("所属を保存しました。", "success")
    return redirect(url_for("admin.departments"), 303)
