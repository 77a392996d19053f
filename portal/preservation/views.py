"""Preservation screens: correction history and form, deletion after retention, retention policies,
tombstones and batch verification with polled progress."""

from __future__ import annotations

from flask import Response, current_app, flash, request, url_for
from flask.typing import ResponseReturnValue
from flask_login import current_user
from sqlalchemy import select

from portal import clock
from portal.audit.actions import AuditAction
from portal.audit.service import Actor, record
from portal.auth.models import Department, Role
from portal.contracts import service as contracts
from portal.contracts.pages import forget_images
from portal.db import db
from portal.errors import DomainError, NotFound
from portal.htmx import hx_redirect, render_page_or_partial, wants_partial
from portal.preservation import bp, service, verification
from portal.preservation.forms import CorrectionForm, DeletionForm, RetentionForm, VerificationForm
from portal.preservation.models import RetentionPolicy, Tombstone, VerificationRun
from portal.security import request_info, role_required
from portal.storage import get_store

VIEWERS = (Role.STAFF, Role.APPROVER, Role.AUDITOR)


@bp.get("/contracts/<int:contract_id>/history")
@role_required(*VIEWERS)
def history(contract_id: int) -> ResponseReturnValue:
    contract = contracts.get_for_staff(db(), contract_id, actor=current_user)
    if not wants_partial():  # the panel of the contract page loads it too: that view is logged already
        info = request_info()
        record(db(), actor=Actor.staff(current_user), action=AuditAction.CONTRACT_HISTORY_VIEWED, subject=contract,
               ip=info.ip, user_agent=info.user_agent)
        db().commit()
    return render_page_or_partial(
        "preservation/history.html", "preservation/_history.html", contract=contract,
        versions=service.correction_history(db(), contract), labels=service.CORRECTABLE_FIELDS,
        display_value=service.display_value, retention_ends=service.retention_ends(db(), contract),
        retention_years=service.retention_years(db(), contract),
        can_correct=service.can_correct(contract, current_user),
    )


@bp.route("/contracts/<int:contract_id>/correct", methods=["GET", "POST"])
@role_required(Role.STAFF, Role.APPROVER)
def correct(contract_id: int) -> ResponseReturnValue:
    contract = contracts.get_for_staff(db(), contract_id, actor=current_user)
    form = CorrectionForm()
    context = {"contract": contract, "form": form, "labels": service.CORRECTABLE_FIELDS}
    if not form.validate_on_submit():
        status = 422 if request.method == "POST" else 200
        return render_page_or_partial("preservation/correct.html", "preservation/_correction_form.html",
                                      status=status, **context)
    changes = {field: getattr(form, field).data or "" for field in service.CORRECTABLE_FIELDS}
    try:
        service.correct_metadata(db(), contract, changes, reason=form.reason.data or "", actor=current_user,
                                 now=clock.now(), request=request_info())
    except service.InvalidCorrection as exc:
        db().rollback()
        field = getattr(form, exc.field, None)
        if field is not None:
            field.errors = [exc.message]
        return render_page_or_partial("preservation/correct.html", "preservation/_correction_form.html",
                                      status=422, error=None if field is not None else exc.message, **context)
    db().commit()
    flash("登録内容を訂正しました。訂正前の値は訂正履歴に残ります。", "success")
    return hx_redirect(url_for("preservation.history", contract_id=contract.id))


@bp.route("/contracts/<int:contract_id>/delete", methods=["GET", "POST"])
@role_required(Role.ADMIN)
def delete(contract_id: int) -> ResponseReturnValue:
    contract = contracts.get_contract(db(), contract_id)
    form = DeletionForm()
    ends = service.retention_ends(db(), contract)
    context = {"contract": contract, "form": form, "retention_ends": ends,
               "is_due": clock.now().astimezone(clock.JST).date() > ends}
    if not form.validate_on_submit():
        status = 422 if request.method == "POST" else 200
        return render_page_or_partial("preservation/delete.html", "preservation/_delete_form.html",
                                      status=status, **context)
    try:
        tombstone = service.delete_after_retention(db(), contract, reason=form.reason.data or "",
                                                   actor=current_user, now=clock.now(), request=request_info())
    except DomainError as exc:
        db().rollback()
        return render_page_or_partial("preservation/delete.html", "preservation/_delete_form.html",
                                      status=exc.status_code, error=exc.message, **context)
    db().commit()
    # Files go only after the tombstone (with every SHA-256) is committed; the page images with them.
    image_keys = forget_images(db(), [document["sha256"] for document in tombstone.documents])
    db().commit()
    for key in [document["storage_key"] for document in tombstone.documents] + image_keys:
        get_store().destroy_after_retention(key)
    flash(f"契約 {contract.number} を削除し、削除記録を残しました。", "success")
    return hx_redirect(url_for("preservation.tombstones"))


@bp.get("/tombstones")
@role_required(Role.AUDITOR)
def tombstones() -> ResponseReturnValue:
    rows = db().scalars(select(Tombstone).order_by(Tombstone.deleted_at.desc())).all()
    return render_page_or_partial("preservation/tombstones.html", "preservation/_tombstones.html", tombstones=rows)


@bp.route("/retention", methods=["GET", "POST"])
@role_required(Role.ADMIN)
def retention() -> ResponseReturnValue:
    form = RetentionForm()
    departments = db().scalars(select(Department).order_by(Department.code)).all()
    form.department.choices = [("", "全所属（既定）"), *[(str(d.id), f"{d.code} {d.name}") for d in departments]]
    form.contract_type.choices = [("", "すべての種類"), *[(t, t) for t in current_app.config["CONTRACT_TYPES"]]]
    error = None
    status = 200
    if form.validate_on_submit():
        department = db().get(Department, int(form.department.data)) if form.department.data else None
        try:
            service.set_retention_policy(db(), department=department, contract_type=form.contract_type.data or "",
                                         years=form.years.data or 0, note=form.note.data or "",
                                         actor=current_user, now=clock.now())
        except DomainError as exc:
            db().rollback()
            error, status = exc.message, exc.status_code
        else:
            db().commit()
            flash("保存期間を設定しました。", "success")
            return hx_redirect(url_for("preservation.retention"))
    elif request.method == "POST":
        status = 422
    policies = db().scalars(select(RetentionPolicy).order_by(RetentionPolicy.department_id,
                                                             RetentionPolicy.contract_type)).all()
    return render_page_or_partial(
        "preservation/retention.html", "preservation/_retention_form.html", status=status, form=form, error=error,
        policies=policies, default_years=current_app.config["RETENTION_YEARS_DEFAULT"],
        minimum_years=current_app.config["RETENTION_YEARS_MINIMUM"])


@bp.route("/verification", methods=["GET", "POST"])
@role_required(Role.AUDITOR)
def verification_index() -> ResponseReturnValue:
    form = VerificationForm()
    runs = db().scalars(select(VerificationRun).order_by(VerificationRun.id.desc()).limit(50)).all()
    if not form.validate_on_submit():
        status = 422 if request.method == "POST" else 200
        return render_page_or_partial("preservation/verification.html", "preservation/_verification_form.html",
                                      status=status, form=form, runs=runs)
    try:
        assert form.period_from.date is not None  # set by validation
        assert form.period_to.date is not None
        run = verification.start_batch_verification(db(), period_from=form.period_from.date,
                                                    period_to=form.period_to.date, actor=current_user,
                                                    now=clock.now())
    except DomainError as exc:
        db().rollback()
        return render_page_or_partial("preservation/verification.html", "preservation/_verification_form.html",
                                      status=exc.status_code, form=form, runs=runs, error=exc.message)
    db().commit()  # wakes the worker, which runs it
    if not current_app.config["VERIFICATION_BACKGROUND"]:
        verification.run_batch_verification(current_app._get_current_object(), run.id)  # type: ignore[attr-defined]
    return hx_redirect(url_for("preservation.verification_run", run_id=run.id))


def _run(run_id: int) -> VerificationRun:
    run = db().get(VerificationRun, run_id)
    if run is None:
        raise NotFound("検証の記録が見つかりません。")
    return run


@bp.get("/verification/<int:run_id>")
@role_required(Role.AUDITOR)
def verification_run(run_id: int) -> ResponseReturnValue:
    run = _run(run_id)
    failures = [r for r in run.results if not r.is_valid]
    return render_page_or_partial("preservation/verification_run.html", "preservation/_run.html", run=run,
                                  failures=failures)


@bp.get("/verification/<int:run_id>/report.csv")
@role_required(Role.AUDITOR)
def verification_report(run_id: int) -> ResponseReturnValue:
    run = _run(run_id)
    body = b"".join(verification.report_csv(run))  # one line per document: small enough to build at once
    info = request_info()
    record(db(), actor=Actor.staff(current_user), action=AuditAction.VERIFICATION_REPORT_DOWNLOADED, subject=run,
           ip=info.ip, user_agent=info.user_agent)
    db().commit()
    response = Response(body, mimetype="text/csv; charset=utf-8")
    response.headers["Content-Disposition"] = f'attachment; filename="verification-{run.id}.csv"'
    return response
