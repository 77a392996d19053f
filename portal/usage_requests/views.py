"""HTTP layer: the public 電子契約利用申出書 form at /apply, its confirmation link, and staff review."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from flask import Response, abort, current_app, make_response, render_template, request, session, url_for
from flask.typing import ResponseReturnValue
from flask_login import current_user

from portal import clock
from portal.auth.models import Role
from portal.contact import remember as remember_contact
from portal.db import db
from portal.errors import DomainError
from portal.extensions import limiter
from portal.htmx import hx_redirect, render_page_or_partial
from portal.mail import worker
from portal.security import request_info, role_required
from portal.usage_requests import bp, rules, service
from portal.usage_requests import pdf as pdf_forms
from portal.usage_requests.forms import ReturnForm, StaffEntryForm, UsageRequestForm
from portal.usage_requests.models import Channel, UsageRequest, UsageRequestStatus

READ_ROLES = (Role.STAFF, Role.APPROVER, Role.AUDITOR)
REVIEW_ROLES = (Role.STAFF, Role.APPROVER)
RECEIPT_SESSION_KEY = "usage_request_receipt"


def _submit_limit() -> str:
    return str(current_app.config["USAGE_REQUEST_RATE_LIMIT"])


def _public_form() -> UsageRequestForm:
    form = UsageRequestForm()
    form.set_departments([(d.code, d.name) for d in service.active_departments(db())])
    if request.method == "GET" and request.args.get("dept"):
        form.department.data = request.args["dept"]
    return form


def _render_form(form: UsageRequestForm, status: int = 200, error: str | None = None) -> Response:
    return render_page_or_partial("usage_requests/new.html", "usage_requests/_form.html", status=status,
                                  form=form, error=error)


@bp.route("/apply", methods=["GET", "POST"])
@limiter.limit(_submit_limit, methods=["POST"])
def new() -> ResponseReturnValue:
    """The public form (別記様式). A valid submit saves the request and mails the confirmation link."""
    form = _public_form()
    if request.method == "GET":
        return _render_form(form)
    if form.is_robot:
        service.record_robot(db(), now=clock.now(), request=request_info())
        db().commit()
        # Answer as for a person, so the robot learns nothing; the receipt number is made up.
        session[RECEIPT_SESSION_KEY] = service.decoy_receipt_number(clock.now())
        return hx_redirect(url_for("usage_requests.submitted"))
    if not form.validate():
        return _render_form(form, 422)
    department = next((d for d in service.active_departments(db()) if d.code == form.department.data), None)
    if department is None:
        form.department.errors = ["提出先の担当課を選択してください。"]
        return _render_form(form, 422)
    try:
        submitted = service.submit(db(), service.UsageRequestData.from_form(form), department=department,
                                   now=clock.now(), request=request_info())
    except DomainError as exc:
        db().rollback()
        form.authority_email.errors = [exc.message]
        return _render_form(form, 422)
    db().commit()
    worker.notify()
    session[RECEIPT_SESSION_KEY] = submitted.usage_request.receipt_number
    return hx_redirect(url_for("usage_requests.submitted"))


@bp.route("/apply/correct/<token>", methods=["GET", "POST"])
@limiter.limit(_submit_limit, methods=["POST"])
def correct(token: str) -> ResponseReturnValue:
    """After a 差戻し: the form pre-filled with what was sent and the staff's reason; submitting creates
    the corrected request (linked to the returned one), confirmed by mail like a new one."""
    returned = service.get_by_correction_token(db(), token, now=clock.now())
    form = UsageRequestForm(data=service.correction_values(returned) if request.method == "GET" else None)
    form.set_departments([(d.code, d.name) for d in service.active_departments(db())])
    page: dict[str, Any] = {"form": form, "returned": returned,
                            "form_action": url_for("usage_requests.correct", token=token)}
    if request.method == "GET":
        return render_page_or_partial("usage_requests/correct.html", "usage_requests/_form.html", **page)
    department = next((d for d in service.active_departments(db()) if d.code == form.department.data), None)
    if form.is_robot or not form.validate() or department is None:
        return render_page_or_partial("usage_requests/correct.html", "usage_requests/_form.html", status=422,
                                      **page)
    try:
        submitted = service.resubmit(db(), returned, service.UsageRequestData.from_form(form),
                                     department=department, now=clock.now(), request=request_info())
    except service.CorrectionUsed:
        db().rollback()
        raise
    except DomainError as exc:
        db().rollback()
        form.authority_email.errors = [exc.message]
        return render_page_or_partial("usage_requests/correct.html", "usage_requests/_form.html", status=422,
                                      **page)
    db().commit()
    worker.notify()
    session[RECEIPT_SESSION_KEY] = submitted.usage_request.receipt_number
    return hx_redirect(url_for("usage_requests.submitted"))


@bp.post("/apply/validate/<field_name>")
@limiter.limit("600 per hour")
def validate_field(field_name: str) -> ResponseReturnValue:
    """Check one field as the person types; returns that field's partial with its error."""
    form = _public_form()
    if field_name not in UsageRequestForm.LIVE_FIELDS:
        abort(404)
    field = form[field_name]
    field.validate(form)
    response = make_response(render_template("usage_requests/_field.html", field=field, live=True,
                                             live_fields=UsageRequestForm.LIVE_FIELDS))
    response.vary.add("HX-Request")
    return response


@bp.get("/apply/form.pdf")
def blank_form() -> ResponseReturnValue:
    """The empty 別記様式, for vendors who submit by e-mail or post instead of this form."""
    response = make_response(pdf_forms.render_blank_form(addressee=service.addressee()))
    response.headers["Content-Type"] = "application/pdf"
    response.headers["Content-Disposition"] = 'inline; filename="denshi-keiyaku-riyou-moushidesho.pdf"'
    return response


@bp.get("/apply/submitted")
def submitted() -> ResponseReturnValue:
    receipt_number = session.get(RECEIPT_SESSION_KEY)
    if not receipt_number:
        return hx_redirect(url_for("usage_requests.new"))
    return render_template("usage_requests/submitted.html", receipt_number=receipt_number)


@bp.route("/apply/confirm/<token>", methods=["GET", "POST"])
@limiter.limit("30 per hour", methods=["POST"])
def confirm(token: str) -> ResponseReturnValue:
    """Double opt-in: the link shows the request; the button (POST) confirms it.

    A GET alone changes nothing, so mail scanners that open links cannot confirm for the person.
    """
    usage_request = service.get_by_confirm_token(db(), token, now=clock.now())
    remember_contact(usage_request.department)  # its pages and errors name the 提出先
    if request.method == "POST":
        service.confirm(db(), usage_request, now=clock.now(), request=request_info())
        db().commit()
        worker.notify()
    template = "usage_requests/confirmed.html" if usage_request.confirmed_at else "usage_requests/confirm.html"
    return render_template(template, usage_request=usage_request, token=token)


@bp.get("/usage-requests/")
@role_required(*READ_ROLES)
def index() -> ResponseReturnValue:
    """Requests of the user's department by status; the status tabs swap only the rows (htmx)."""
    try:
        status = UsageRequestStatus(request.args.get("status", UsageRequestStatus.PENDING.value))
    except ValueError:
        abort(404)
    if status not in service.STAFF_STATUSES:
        abort(404)
    return render_page_or_partial(
        "usage_requests/index.html", "usage_requests/_rows.html",
        current_status=status, statuses=service.STAFF_STATUSES, counts=service.counts_for_staff(db(), current_user),
        usage_requests=service.list_for_staff(db(), current_user, status),
    )


@bp.get("/usage-requests/<int:request_id>")
@role_required(*READ_ROLES)
def show(request_id: int) -> ResponseReturnValue:
    usage_request = service.get_for_staff(db(), request_id, current_user)
    service.record_view(db(), usage_request, actor=current_user, now=clock.now(), request=request_info())
    db().commit()
    return _render_show(usage_request)


def _render_show(usage_request: UsageRequest, *, return_form: ReturnForm | None = None,
                 error: str | None = None, status: int = 200) -> Response:
    return render_page_or_partial(
        "usage_requests/show.html", "usage_requests/_review_panel.html", status=status,
        usage_request=usage_request, return_form=return_form or ReturnForm(formdata=None), error=error,
        can_review=current_user.has_role(*REVIEW_ROLES),
    )


@bp.post("/usage-requests/<int:request_id>/accept")
@role_required(*REVIEW_ROLES)
def accept(request_id: int) -> ResponseReturnValue:
    usage_request = service.get_for_staff(db(), request_id, current_user)
    return _review(request_id, lambda: service.accept(
        db(), usage_request, actor=current_user, now=clock.now(), request=request_info()))


@bp.post("/usage-requests/<int:request_id>/return")
@role_required(*REVIEW_ROLES)
def return_(request_id: int) -> ResponseReturnValue:
    usage_request = service.get_for_staff(db(), request_id, current_user)
    form = ReturnForm()
    if not form.validate():
        return _render_show(usage_request, return_form=form, status=422)
    return _review(request_id, lambda: service.return_to_submitter(
        db(), usage_request, form.reason.data or "", actor=current_user, now=clock.now(), request=request_info()))


def _review(request_id: int, decide: Callable[[], object]) -> ResponseReturnValue:
    """Run one review decision: commit and mail on success, or show the refusal on the detail panel."""
    try:
        decide()
    except (service.AlreadyReviewed, rules.FreeMailRefused, rules.InvalidEmail) as exc:
        db().rollback()
        return _render_show(service.get_for_staff(db(), request_id, current_user), error=exc.message,
                            status=422)
    db().commit()
    worker.notify()
    return hx_redirect(url_for("usage_requests.show", request_id=request_id))


@bp.get("/usage-requests/<int:request_id>/form.pdf")
@role_required(*READ_ROLES)
def pdf(request_id: int) -> ResponseReturnValue:
    usage_request = service.get_for_staff(db(), request_id, current_user)
    data = service.stored_pdf(usage_request)
    service.record_view(db(), usage_request, actor=current_user, now=clock.now(), request=request_info(),
                        pdf_download=True)
    db().commit()
    response = make_response(data)
    response.headers["Content-Type"] = "application/pdf"
    response.headers["Content-Disposition"] = (
        f'inline; filename="usage-request-{usage_request.receipt_number}.pdf"'
    )
    return response


@bp.route("/usage-requests/new", methods=["GET", "POST"])
@role_required(Role.STAFF)
def enter() -> ResponseReturnValue:
    """Staff type in a form that arrived by e-mail or post; it goes straight to 確認待ち."""
    form = StaffEntryForm()
    if request.method == "GET" or not form.validate():
        status = 422 if request.method == "POST" else 200
        return render_page_or_partial("usage_requests/enter.html", "usage_requests/_form.html", status=status,
                                      form=form, staff_entry=True)
    try:
        usage_request = service.enter_for_vendor(
            db(), service.UsageRequestData.from_form(form), actor=current_user, channel=Channel(form.channel.data),
            form_date=form.form_date.data, now=clock.now(), request=request_info(),
        )
    except DomainError as exc:
        db().rollback()
        form.authority_email.errors = [exc.message]
        return render_page_or_partial("usage_requests/enter.html", "usage_requests/_form.html", status=422,
                                      form=form, staff_entry=True)
    db().commit()
    worker.notify()
    return hx_redirect(url_for("usage_requests.show", request_id=usage_request.id))
