"""Admin pages: register, edit and remove endpoints; see deliveries and failures; retry a failed one."""

from __future__ import annotations

from flask import flash, redirect, render_template, url_for
from flask.typing import ResponseReturnValue
from flask_login import current_user

from portal import clock
from portal.auth.models import Role
from portal.db import db
from portal.errors import DomainError
from portal.security import role_required
from portal.webhooks import bp, service
from portal.webhooks.forms import EndpointEditForm, EndpointForm
from portal.webhooks.models import DeliveryStatus


def _index(form: EndpointForm, *, status: int = 200, error: str | None = None, secret: str | None = None,
           created: object = None) -> ResponseReturnValue:
    return render_template("webhooks/index.html", endpoints=service.list_endpoints(db()), form=form, error=error,
                           secret=secret, created=created,
                           failed=service.recent_deliveries(db(), status=DeliveryStatus.FAILED, limit=20)), status


@bp.get("")
@role_required(Role.ADMIN)
def index() -> ResponseReturnValue:
    return _index(EndpointForm())


@bp.post("")
@role_required(Role.ADMIN)
def create() -> ResponseReturnValue:
    form = EndpointForm()
    if not form.validate_on_submit():
        return _index(form, status=422)
    try:
        endpoint, secret = service.create_endpoint(db(), url=form.url.data or "", events=form.events.data or [],
                                                   description=form.description.data or "",
                                                   secret=form.secret.data or "", actor=current_user,
                                                   now=clock.now())
    except DomainError as exc:
        db().rollback()
        return _index(form, status=422, error=exc.message)
    db().commit()
    return _index(EndpointForm(formdata=None), secret=secret, created=endpoint)


def _show(endpoint_id: int, form: EndpointEditForm | None = None, *, status: int = 200, error: str | None = None,
          secret: str | None = None) -> ResponseReturnValue:
    endpoint = service.get_endpoint(db(), endpoint_id)
    if form is None:
        form = EndpointEditForm(obj=endpoint)
    return render_template("webhooks/endpoint.html", endpoint=endpoint, form=form, error=error, secret=secret,
                           deliveries=service.recent_deliveries(db(), endpoint)), status


@bp.get("/<int:endpoint_id>")
@role_required(Role.ADMIN)
def show(endpoint_id: int) -> ResponseReturnValue:
    return _show(endpoint_id)


@bp.post("/<int:endpoint_id>")
@role_required(Role.ADMIN)
def update(endpoint_id: int) -> ResponseReturnValue:
    endpoint = service.get_endpoint(db(), endpoint_id)
    form = EndpointEditForm()
    if not form.validate_on_submit():
        return _show(endpoint_id, form, status=422)
    try:
        service.update_endpoint(db(), endpoint, url=form.url.data or "", events=form.events.data or [],
                                description=form.description.data or "", is_active=bool(form.is_active.data),
                                actor=current_user, now=clock.now())
    except DomainError as exc:
        db().rollback()
        return _show(endpoint_id, form, status=422, error=exc.message)
    db().commit()
    flash("送信先を保存しました。", "success")
    return redirect(url_for("webhooks.show", endpoint_id=endpoint_id), 303)


@bp.post("/<int:endpoint_id>/secret")
@role_required(Role.ADMIN)
def rotate_secret(endpoint_id: int) -> ResponseReturnValue:
    secret = service.rotate_secret(db(), service.get_endpoint(db(), endpoint_id), actor=current_user,
                                   now=clock.now())
    db().commit()
    return _show(endpoint_id, secret=secret)


@bp.post("/<int:endpoint_id>/delete")
@role_required(Role.ADMIN)
def delete(endpoint_id: int) -> ResponseReturnValue:
    service.delete_endpoint(db(), service.get_endpoint(db(), endpoint_id), actor=current_user, now=clock.now())
    db().commit()
    flash("送信先を削除しました。", "success")
    return redirect(url_for("webhooks.index"), 303)


@bp.post("/deliveries/<int:delivery_id>/retry")
@role_required(Role.ADMIN)
def retry(delivery_id: int) -> ResponseReturnValue:
    from portal.mail.worker import notify

    try:
        delivery = service.retry_delivery(db(), delivery_id, actor=current_user, now=clock.now())
    except DomainError as exc:
        db().rollback()
        flash(exc.message, "error")
        return redirect(url_for("webhooks.index"), 303)
    endpoint_id = delivery.endpoint_id
    db().commit()
    notify()
    flash("再送を予約しました。", "success")
    return redirect(url_for("webhooks.show", endpoint_id=endpoint_id), 303)
