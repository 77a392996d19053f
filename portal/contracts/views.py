"""Staff screens: dashboard, new contract, contract page with documents, approval, send, close."""

from __future__ import annotations

from typing import Any

from flask import Response, current_app, flash, make_response, render_template, request, send_file, url_for
from flask.typing import ResponseReturnValue
from flask_login import current_user
from sqlalchemy import select

from portal import clock
from portal.audit.actions import AuditAction
from portal.audit.service import Actor, record
from portal.auth.models import Role, StaffUser
from portal.contracts import bp, lifecycle, service
from portal.contracts.authority import APPLY_HINT, declined_message
from portal.contracts.forms import AmendmentForm, ApprovalForm, ConsentForm, ContractForm
from portal.contracts.models import STATUS_LABELS, Contract, ContractStatus, PartyRole
from portal.contracts.page_context import EDITORS, show_context
from portal.contracts.pages import queue_rendering, revision_page_image
from portal.counterparties import service as counterparty_service
from portal.counterparties.models import Counterparty
from portal.db import db
from portal.errors import DomainError, NotFound
from portal.htmx import hx_redirect, render_page_or_partial
from portal.mail.worker import notify as notify_outbox
from portal.security import request_info, role_required

VIEWERS = (Role.STAFF, Role.APPROVER, Role.AUDITOR)
MIN_WIDTH, MAX_WIDTH = 100, 2000  # px of a page image asked for with ?w=


class BadWidth(DomainError):
    status_code = 400


@bp.get("/")
@role_required(*VIEWERS)
def index() -> ResponseReturnValue:
    status = request.args.get("status") or None
    selected = ContractStatus(status) if status in STATUS_LABELS else None
    contracts = service.list_for_staff(db(), actor=current_user, status=selected)
    return render_page_or_partial("contracts/index.html", "contracts/_table.html", contracts=contracts,
                                  waiting=service.waiting_for(db(), current_user), statuses=STATUS_LABELS,
                                  ready=service.list_ready_to_send(db(), actor=current_user)
                                  if current_user.has_role(*EDITORS) else [],
                                  selected=selected)


def _contract_form(original: Contract | None = None, *, form_class: type[ContractForm] = ContractForm,
                   data: dict[str, object] | None = None) -> ContractForm:
    """The form with its choices; pre-filled on GET from an amended original or from `data`."""
    if original is not None:
        data = _amendment_defaults(original)
    form = form_class(data=data if data is not None and request.method == "GET" else None)
    if current_user.role is not Role.ADMIN:
        del form.counterparty_override_reason
    types = list(current_app.config["CONTRACT_TYPES"])
    form.contract_type.choices = [("", "選択してください"), *[(t, t) for t in types]]
    approvers = db().scalars(select(StaffUser).where(StaffUser.is_active, StaffUser.role.in_([Role.APPROVER]))
                             .order_by(StaffUser.name))
    form.approver_email.choices = [(u.email, f"{u.name}（{u.department.name} {u.title}）".replace(" ）", "）"))
                                   for u in approvers]
    if current_user.role is not Role.ADMIN:
        del form.agency_address_reason
    return form


def _amendment_defaults(original: Contract) -> dict[str, object]:
    """A 変更契約 starts from the original's metadata and signers; staff change what the amendment changes."""
    counterparty = next((p for p in original.parties if p.role is PartyRole.COUNTERPARTY), None)
    agency = next((p for p in original.parties if p.role is PartyRole.AGENCY), None)
    return {
        "business_name": f"{original.business_name}（変更契約）"[:200], "contract_type": original.contract_type,
        "counterparty_id": str(original.counterparty_id or ""), "amount": original.amount,
        "tax_amount": original.tax_amount, "term_start": original.term_start, "term_end": original.term_end,
        "signer_organization": counterparty.organization if counterparty else "",
        "signer_title": counterparty.title if counterparty else "", "signer_name": counterparty.name if counterparty
        else "", "signer_email": counterparty.email if counterparty else "",
        "approver_email": agency.email if agency else None,
        "signing_order": "agency_first" if original.parties and original.parties[0].role is PartyRole.AGENCY
        else "counterparty_first",
    }


def _original(contract_id: str | None) -> Contract | None:
    """The completed contract named by ?amends=, if the user may see it (else 404)."""
    if not contract_id:
        return None
    if not contract_id.isdigit() or len(contract_id) > 18:
        raise NotFound("契約が見つかりません。")
    return service.get_for_staff(db(), int(contract_id), actor=current_user)


@bp.route("/new", methods=["GET", "POST"])
@role_required(*EDITORS)
def new() -> ResponseReturnValue:
    """Step 1 without a 取引先: the picker (search as you type). Step 2: the form, signer from the registry."""
    original = _original(request.args.get("amends"))
    form = _contract_form(original)
    if request.method == "GET":
        chosen = request.args.get("counterparty") or form.counterparty_id.data
        if chosen:
            form.counterparty_id.data = chosen
    counterparty, refusal = _chosen_counterparty(form.counterparty_id.data)
    if counterparty is None:
        return _picker(error=refusal, status=422 if request.method == "POST" or refusal else 200)
    _fill_signer(form, counterparty)
    amendment = AmendmentForm() if original else None
    page = {"form": form, "original": original, "amendment": amendment, "counterparty": counterparty}
    if not form.validate_on_submit() or (amendment is not None and not amendment.validate()):
        status = 422 if request.method == "POST" else 200
        return render_page_or_partial("contracts/new.html", "contracts/_form.html", status=status, **page)
    try:
        contract = service.create_draft(db(), _input_from(form, original, amendment), actor=current_user,
                                        now=clock.now(), request=request_info())
    except DomainError as exc:
        db().rollback()
        return render_page_or_partial("contracts/new.html", "contracts/_form.html", status=exc.status_code,
                                      error=exc.message, **page)
    db().commit()
    flash("下書きを保存しました。PDF 文書をアップロードしてください。", "success")
    return hx_redirect(url_for("contracts.show", contract_id=contract.id))


def _chosen_counterparty(value: str | None) -> tuple[Counterparty | None, str | None]:
    """The 取引先 named by the picker, or (None, why it cannot be chosen)."""
    if not value:
        return None, "取引先を選択してください。" if request.method == "POST" else None
    if not value.isascii() or not value.isdigit() or len(value) > 18:
        return None, "選択した取引先が見つかりません。取引先を選び直してください。"
    try:
        counterparty = counterparty_service.get(db(), int(value))
    except NotFound as exc:
        return None, exc.message
    if counterparty.declined_e_contract:
        return None, declined_message(counterparty)
    if not counterparty.is_registered and current_user.role is not Role.ADMIN:
        return None, (f"取引先「{counterparty.name}」には受付済みの電子契約利用申出書がないため、選択できません。"
                      f"{APPLY_HINT}")
    return counterparty, None


def _picker(*, error: str | None = None, status: int = 200) -> Response:
    """The 取引先 picker; an htmx search (HX-Target counterparty-results) gets only the result list."""
    query = (request.args.get("q") or "")[:200]
    results = counterparty_service.list_for_staff(db(), query, limit=30)
    context = {"query": query, "results": results, "error": error, "amends": request.args.get("amends"),
               "is_admin": current_user.role is Role.ADMIN}
    if request.headers.get("HX-Target") == "counterparty-results":
        response = make_response(render_template("contracts/_counterparty_results.html", **context), status)
        response.vary.add("HX-Request")
        response.vary.add("HX-Target")
        return response
    return render_page_or_partial("contracts/choose_counterparty.html", "contracts/_counterparty_picker.html",
                                  status=status, **context)


def _fill_signer(form: ContractForm, counterparty: Counterparty) -> None:
    """Without 「別の署名者」 the signer is the registered authority, whatever was posted (read-only)."""
    registered = counterparty.current_authority
    if registered is None or (request.method == "POST" and form.signer_override.data):
        return
    form.signer_override.data = False
    form.signer_title.data, form.signer_name.data = registered.title, registered.name
    form.signer_email.data = registered.email
    form.signer_organization.data = counterparty.name


def _consent_from(form: ContractForm | ConsentForm) -> service.ConsentInput | None:
    if not (form.consent_by.data or form.consent_on.data or form.consent_method.data):
        return None
    if form.consent_on.data is None:
        raise InvalidConsent("承諾日を入力してください。")
    return service.ConsentInput(by=form.consent_by.data or "", on=form.consent_on.data,
                                method=form.consent_method.data or "")


class InvalidConsent(DomainError):
    pass


def _input_from(form: ContractForm, original: Contract | None = None,
                amendment: AmendmentForm | None = None) -> service.ContractInput:
    counterparty = service.SignerInput(role=PartyRole.COUNTERPARTY, organization=form.signer_organization.data or "",
                                       title=form.signer_title.data or "", name=form.signer_name.data or "",
                                       email=form.signer_email.data or "")
    agency = service.SignerInput(role=PartyRole.AGENCY, user_email=form.approver_email.data or "")
    signers = [counterparty, agency] if form.signing_order.data != "agency_first" else [agency, counterparty]
    return service.ContractInput(
        business_name=form.business_name.data or "", department=current_user.department,
        counterparty_name=_registered_name(form.counterparty_id.data),
        counterparty_id=_counterparty_id(form.counterparty_id.data), amount=form.amount.data or 0,
        tax_amount=form.tax_amount.data or 0, transaction_date=form.transaction_date.data,
        term_start=form.term_start.data, term_end=form.term_end.data,
        planned_conclusion_date=form.planned_conclusion_date.data,
        auto_renewal=form.auto_renewal.data, paper_required_by_law=form.paper_required_by_law.data,
        council_approval_required=form.council_approval_required.data, access_code=form.access_code.data or "",
        signers=signers,
        agency_address_reason=_agency_address_reason(form),
        contract_type=form.contract_type.data or "", consent=_consent_from(form),
        amends=original, amendment_reason=(amendment.amendment_reason.data or "") if amendment else "",
        signer_override_reason=(form.signer_override_reason.data or "") if form.signer_override.data else "",
        counterparty_override_reason=_optional_text(form, "counterparty_override_reason"))


def _counterparty_id(value: str | None) -> int:
    """The posted id, or 0 (no such 取引先: the service refuses it in words) for anything but digits."""
    return int(value) if value and value.isascii() and value.isdigit() and len(value) <= 18 else 0


def _registered_name(counterparty_id: str | None) -> str:
    found, _refusal = _chosen_counterparty(counterparty_id)
    return found.name if found else ""


def _optional_text(form: ContractForm, name: str) -> str:
    field = getattr(form, name, None)  # administrators' forms only
    return (field.data or "") if field is not None else ""


def _agency_address_reason(form: ContractForm) -> str:
    field = getattr(form, "agency_address_reason", None)  # only administrators' forms have it
    return (field.data or "") if field is not None else ""


@bp.get("/<int:contract_id>")
@role_required(*VIEWERS)
def show(contract_id: int) -> ResponseReturnValue:
    contract = service.get_for_staff(db(), contract_id, actor=current_user)
    _record_read(AuditAction.CONTRACT_VIEWED, contract)
    return render_template("contracts/show.html", **show_context(contract))


def _record_read(action: AuditAction, contract: Contract, **details: Any) -> None:
    """Log a staff member's reading of a contract (page, page image, document, certificate); committed."""
    info = request_info()
    record(db(), actor=Actor.staff(current_user), action=action, subject=contract, ip=info.ip,
           user_agent=info.user_agent, **details)
    db().commit()


def _status_panel(contract: Contract, *, error: str | None = None, status: int = 200) -> Response:
    return render_page_or_partial("contracts/show.html", "contracts/_status.html", status=status,
                                  error=error, **show_context(contract))


@bp.post("/<int:contract_id>/documents")
@role_required(*EDITORS)
def upload(contract_id: int) -> ResponseReturnValue:
    contract = service.get_for_staff(db(), contract_id, actor=current_user)
    files = [f for f in request.files.getlist("files") if f and f.filename]
    title = request.form.get("title", "")
    errors = []
    if not files:
        errors.append("PDF ファイルを選択してください。")
    elif len(files) > 1 and title.strip():
        errors.append("文書の名称は、1件ずつアップロードするときに入力してください。")
        files = []
    for upload_file in files:
        try:
            with db().begin_nested():
                document = service.attach_document(db(), contract, filename=upload_file.filename or "",
                                                   data=upload_file.read(), actor=current_user, now=clock.now(),
                                                   request=request_info(), title=title)
                queue_rendering(db(), document.original, now=clock.now())  # a worker renders the pages
        except DomainError as exc:
            errors.append(f"{upload_file.filename}: {exc.message}")
    db().commit()
    return render_page_or_partial("contracts/show.html", "contracts/_documents.html",
                                  status=422 if errors else 200, upload_errors=errors, **show_context(contract))


@bp.post("/<int:contract_id>/documents/<int:document_id>/delete")
@role_required(*EDITORS)
def remove_document(contract_id: int, document_id: int) -> ResponseReturnValue:
    contract = service.get_for_staff(db(), contract_id, actor=current_user)
    service.remove_document(db(), contract, document_id, actor=current_user, now=clock.now())
    db().commit()
    return render_page_or_partial("contracts/show.html", "contracts/_documents.html", **show_context(contract))


@bp.get("/<int:contract_id>/documents/<int:document_id>/pages/<int:page>.jpg")
@role_required(*VIEWERS)
def page(contract_id: int, document_id: int, page: int) -> ResponseReturnValue:
    from flask import current_app

    contract = service.get_for_staff(db(), contract_id, actor=current_user)
    document = service.get_document(contract, document_id)
    requested = request.args.get("w", str(current_app.config["PAGE_IMAGE_WIDTH"]))
    if not (requested.isascii() and requested.isdigit() and MIN_WIDTH <= int(requested[:5]) <= MAX_WIDTH):
        raise BadWidth(f"画像の幅（w）は {MIN_WIDTH}〜{MAX_WIDTH} の半角数字で指定してください。")
    image = revision_page_image(db(), document.current, page - 1, width=int(requested),
                                page_count=document.page_count, read=service.read_revision)
    _record_read(AuditAction.CONTRACT_PAGE_VIEWED, contract, filename=document.filename, page=page,
                 revision=document.current.number)
    response = make_response(image)
    response.headers["Content-Type"] = "image/jpeg"
    response.headers["Cache-Control"] = "private, max-age=3600"
    return response


@bp.get("/<int:contract_id>/documents/<int:document_id>/download")
@role_required(*VIEWERS)
def download(contract_id: int, document_id: int) -> ResponseReturnValue:
    """Staff can always download (current revision, or ?revision=N for an earlier one); audited."""
    import io

    contract = service.get_for_staff(db(), contract_id, actor=current_user)
    document = service.get_document(contract, document_id)
    number = request.args.get("revision", type=int)
    revision = next((r for r in document.revisions if r.number == number), document.current)
    data = service.read_revision(revision)
    _record_read(AuditAction.CONTRACT_DOCUMENT_DOWNLOADED, contract, filename=document.filename,
                 revision=revision.number, sha256=revision.sha256)
    return send_file(io.BytesIO(data), mimetype="application/pdf", as_attachment=True,
                     download_name=document.download_name(revision))


@bp.get("/<int:contract_id>/certificate")
@role_required(*VIEWERS)
def certificate(contract_id: int) -> ResponseReturnValue:
    import io

    from portal.contracts.documents import read_certificate
    from portal.errors import NotFound

    contract = service.get_for_staff(db(), contract_id, actor=current_user)
    if not contract.certificate_key:
        raise NotFound("合意締結証明書はまだありません。")
    data = read_certificate(contract)
    filename = f"合意締結証明書_{contract.number}.pdf"
    _record_read(AuditAction.CONTRACT_CERTIFICATE_DOWNLOADED, contract, filename=filename)
    return send_file(io.BytesIO(data), mimetype="application/pdf", as_attachment=True, download_name=filename)


@bp.post("/<int:contract_id>/consent")
@role_required(*EDITORS)
def consent(contract_id: int) -> ResponseReturnValue:
    contract = service.get_for_staff(db(), contract_id, actor=current_user)
    form = ConsentForm()
    if not form.validate_on_submit():
        errors = [str(e) for field in form for e in field.errors]
        return _status_panel(contract, error=errors[0] if errors else "入力内容を確認してください。", status=422)

    def record_it() -> None:
        given = _consent_from(form)
        if given is None:
            raise InvalidConsent("承諾した方・承諾日・承諾の方法を入力してください。")
        service.record_consent(db(), contract, given, actor=current_user, now=clock.now(), request=request_info())

    return _act(contract, record_it, "相手方の承諾を記録しました。")


@bp.post("/<int:contract_id>/request-approval")
@role_required(*EDITORS)
def request_approval(contract_id: int) -> ResponseReturnValue:
    contract = service.get_for_staff(db(), contract_id, actor=current_user)
    return _act(contract, lambda: service.request_approval(db(), contract, actor=current_user, now=clock.now()))


@bp.post("/<int:contract_id>/approve")
@role_required(Role.APPROVER)
def approve(contract_id: int) -> ResponseReturnValue:
    contract = service.get_for_staff(db(), contract_id, actor=current_user)
    form = ApprovalForm()
    if not form.validate_on_submit():
        typed = bool(form.reference.data) and form.reference.errors
        error = form.reference.errors[0] if typed else "決裁番号（決裁日）を入力してください。"
        return _status_panel(contract, error=str(error), status=422)
    return _act(contract, lambda: service.confirm_internal_approval(
        db(), contract, approver=current_user, reference=form.reference.data or "", now=clock.now(),
        request=request_info(), seen_version=form.seen_version.data or ""))


@bp.post("/<int:contract_id>/send")
@role_required(*EDITORS)
def send(contract_id: int) -> ResponseReturnValue:
    contract = service.get_for_staff(db(), contract_id, actor=current_user)
    return _act(contract, lambda: service.send_for_signature(db(), contract, actor=current_user, now=clock.now(),
                                                             request=request_info()), "署名依頼を送信しました。")


@bp.post("/<int:contract_id>/paper")
@role_required(*EDITORS)
def paper(contract_id: int) -> ResponseReturnValue:
    contract = service.get_for_staff(db(), contract_id, actor=current_user)
    reason = request.form.get("reason", "")
    return _act(contract, lambda: lifecycle.fall_back_to_paper(db(), contract, reason=reason, now=clock.now(),
                                                               actor=current_user), "紙契約へ移行しました。")


@bp.post("/<int:contract_id>/cancel")
@role_required(*EDITORS)
def cancel(contract_id: int) -> ResponseReturnValue:
    contract = service.get_for_staff(db(), contract_id, actor=current_user)
    reason = request.form.get("reason", "")
    return _act(contract, lambda: lifecycle.cancel(db(), contract, reason=reason, actor=current_user,
                                                   now=clock.now()), "契約を取り消しました。")


def _act(contract: Contract, operation: object, done: str | None = None) -> ResponseReturnValue:
    """Run one service call; on refusal roll back and show the message in the status panel (422)."""
    contract_id = contract.id
    try:
        operation()  # type: ignore[operator]
    except DomainError as exc:
        db().rollback()
        return _status_panel(service.get_contract(db(), contract_id), error=exc.message, status=exc.status_code)
    db().commit()
    notify_outbox()
    if done:
        flash(done, "success")
    return hx_redirect(url_for("contracts.show", contract_id=contract_id))
