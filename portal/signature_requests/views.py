"""Signer pages. Counterparty: /s/<token> (no account). Agency approver: /s/staff/<party_id> (logged in).

Both read the same documents and end in the same complete_signature(); see STYLE.md "One request,
end to end".
"""

from __future__ import annotations

import hashlib
import io
import zipfile
from dataclasses import dataclass
from typing import Any

from flask import current_app, make_response, render_template, request, send_file, url_for
from flask import session as browser_session
from flask.typing import ResponseReturnValue
from flask_login import current_user

from portal import clock
from portal.audit.actions import AuditAction
from portal.audit.service import Actor, record
from portal.auth.models import Role
from portal.contact import remember as remember_contact
from portal.contracts import completion
from portal.contracts import service as contracts
from portal.contracts.models import (
    AUTH_ACCESS_CODE,
    AUTH_EMAIL_LINK,
    AUTH_PASSWORD,
    AUTH_TOTP,
    Contract,
    Party,
    PartyStatus,
    RequestStatus,
    SignatureRequest,
)
from portal.contracts.pages import revision_page_image
from portal.db import db
from portal.errors import DomainError
from portal.extensions import limiter
from portal.htmx import hx_redirect, render_page_or_partial, wants_partial
from portal.logging_setup import identify
from portal.mail.worker import notify as notify_outbox
from portal.security import request_info, role_required
from portal.signature_requests import bp, service

ALREADY_SIGNED = "既に署名済みです。"
WRONG_CODE = "アクセスコードが正しくありません。担当課からお知らせしたコードを入力してください。"
CODES_KEPT = 20  # links whose アクセスコード this browser session has entered (the newest kept)


@dataclass(frozen=True)
class Target:
    """Where the signer's pages live: built from the token, or from the staff party id."""

    endpoint_prefix: str
    key: dict[str, Any]
    contract: Contract
    party: Party
    needs_access_code: bool  # the contract has a code and this browser session has not entered it yet
    request: SignatureRequest | None = None

    def url(self, name: str, **values: Any) -> str:
        return url_for(f"signature_requests.{self.endpoint_prefix}{name}", **self.key, **values)


def _token_target(req: SignatureRequest) -> Target:
    identify(signer_party_id=req.party.id)
    contract = req.party.contract
    remember_contact(contract.department)
    return Target("", {"token": _token()}, contract, req.party,
                  contract.has_access_code and not _code_entered(req), req)


# ---------------------------------------------------------------- access code, once per browser session


def _code_mark(req: SignatureRequest, code_hash: str | None = None) -> str:
    """Names this link and its code (default: the current one): a changed code (or a new link) has to be
    entered again."""
    code_hash = (req.party.contract.access_code_hash if code_hash is None else code_hash) or ""
    return f"{req.id}:{hashlib.sha256(code_hash.encode()).hexdigest()[:16]}"


def _code_entered(req: SignatureRequest) -> bool:
    return _code_mark(req) in browser_session.get("signer_codes", [])


def _remember_code(req: SignatureRequest, code_hash: str | None = None) -> None:
    marks = [m for m in browser_session.get("signer_codes", []) if not m.startswith(f"{req.id}:")]
    browser_session["signer_codes"] = [*marks, _code_mark(req, code_hash)][-CODES_KEPT:]


def _gate(target: Target, *, status: int = 200) -> ResponseReturnValue | None:
    """None when the documents may be shown; else the アクセスコード form, or the locked page.

    A partial (htmx) request is sent to the full page, which asks for the code.
    """
    req = target.request
    if req is None or not target.contract.has_access_code:
        return None
    if service.is_locked(req):
        return _locked(target)
    if not target.needs_access_code:
        return None
    if wants_partial():
        return hx_redirect(target.url("review"))
    return _code_form(target, status=status)


def _code_form(target: Target, *, status: int = 200, error: str = "", remaining: int | None = None
               ) -> ResponseReturnValue:
    return make_response(render_template(
        "signature_requests/access_code.html", error=error, remaining=remaining, **_page_context(target)), status)


def _locked(target: Target) -> ResponseReturnValue:
    assert target.request is not None
    return make_response(render_template("signature_requests/locked.html", message=service.locked_message(
        target.request), **_page_context(target)), 423)


def _staff_target(party: Party) -> Target:
    remember_contact(party.contract.department)
    return Target("staff_", {"party_id": party.id}, party.contract, party, False)


def _token() -> str:
    return str(request.view_args["token"])  # type: ignore[index]


def _page_context(target: Target, document_id: int | None = None) -> dict[str, Any]:
    documents = target.contract.documents
    current = next((d for d in documents if d.id == document_id), documents[0] if documents else None)
    return {"t": target, "contract": target.contract, "party": target.party, "current": current,
            "is_signed": target.party.status is PartyStatus.SIGNED}


# ---------------------------------------------------------------- counterparty (token)


@bp.get("/s/<token>")
def review(token: str) -> ResponseReturnValue:
    req = service.open_request(db(), token, now=clock.now())
    target = _token_target(req)
    if req.status in (RequestStatus.COMPLETED, RequestStatus.DECLINED):
        _record_review(target, status=str(req.status))
    if req.status is RequestStatus.COMPLETED:
        return render_template("signature_requests/done.html", message=ALREADY_SIGNED, **_page_context(target))
    if req.status is RequestStatus.DECLINED:
        return render_template("signature_requests/done.html", message="この署名依頼は差し戻し済みです。",
                               **_page_context(target))
    return _gate(target) or _review(target)


@bp.post("/s/<token>/access-code")
@limiter.limit("20/minute")
def access_code(token: str) -> ResponseReturnValue:
    """The アクセスコード, asked before any document is shown; a right one is kept for this browser session."""
    session = db()
    req = service.open_request(session, token, now=clock.now())
    target = _token_target(req)
    if not target.needs_access_code:
        return _gate(target) or hx_redirect(target.url("review"))
    try:
        check = service.check_access_code(session, req, request.form.get("access_code", ""), now=clock.now(),
                                          info=request_info())
    except service.AccessCodeLocked:
        session.rollback()
        return _locked(target)
    except DomainError as exc:
        session.rollback()
        return _code_form(target, status=422, error=exc.message)
    if check.accepted:
        info = request_info()
        record(session, actor=_actor(req.party), action=AuditAction.CONTRACT_ACCESS_CODE_ACCEPTED,
               subject=target.contract, ip=info.ip, user_agent=info.user_agent, party=req.party.position)
    session.commit()
    notify_outbox()
    if check.accepted:
        _remember_code(req, check.code_hash)
        return hx_redirect(target.url("review"))
    if check.remaining == 0:
        return _locked(target)
    return _code_form(target, status=422, error=_wrong_code(check.remaining), remaining=check.remaining)


def _wrong_code(remaining: int) -> str:
    return f"{WRONG_CODE}あと{remaining}回間違えると、このリンクはロックされます。"


@bp.get("/s/<token>/documents/<int:document_id>")
def document_tab(token: str, document_id: int) -> ResponseReturnValue:
    target = _token_target(service.open_request(db(), token, now=clock.now()))
    return _gate(target) or _review(target, document_id)


@bp.get("/s/<token>/documents/<int:document_id>/pages/<int:page>.jpg")
def page(token: str, document_id: int, page: int) -> ResponseReturnValue:
    target = _token_target(service.open_request(db(), token, now=clock.now()))
    contracts.get_document(target.contract, document_id)  # another contract's document: 404 before anything
    return _gate(target, status=403) or _page(target, document_id, page)


@bp.get("/s/<token>/documents/<int:document_id>/original")
def original(token: str, document_id: int) -> ResponseReturnValue:
    target = _token_target(service.open_request(db(), token, now=clock.now()))
    contracts.get_document(target.contract, document_id)
    return _gate(target, status=403) or _original(target, document_id)


@bp.get("/s/<token>/documents.zip")
def documents_zip(token: str) -> ResponseReturnValue:
    target = _token_target(service.open_request(db(), token, now=clock.now()))
    return _gate(target, status=403) or _zip(target)


@bp.get("/s/<token>/confirm")
def confirm(token: str) -> ResponseReturnValue:
    target = _token_target(service.open_request(db(), token, now=clock.now()))
    if (refusal := _gate(target)) is not None:
        return refusal
    return render_page_or_partial("signature_requests/confirm.html", "signature_requests/_confirm.html",
                                  **_page_context(target))


@bp.post("/s/<token>/complete")
@limiter.limit("20/minute")
def complete(token: str) -> ResponseReturnValue:
    session = db()
    req = service.open_request(session, token, now=clock.now())
    target = _token_target(req)
    auth, error = _link_factors(target, req)
    if auth is None:
        return _confirm_error(target, *error)
    return _complete(target, auth, req)


@bp.route("/s/<token>/decline", methods=["GET", "POST"])
def decline(token: str) -> ResponseReturnValue:
    session = db()
    req = service.open_request(session, token, now=clock.now())
    target = _token_target(req)
    if request.method == "POST":
        auth, error = _link_factors(target, req)
        if auth is None:
            return _decline_error(target, *error)
        return _decline(target, req, auth)
    return _gate(target) or _decline(target, req, service.SignerAuth((AUTH_EMAIL_LINK,), request_info()))


def _link_factors(target: Target, req: SignatureRequest) -> tuple[service.SignerAuth | None, tuple[str, int]]:
    """How the signer proves who they are with a link: the link, plus the アクセスコード when the contract has one.

    Signing and declining ask for the same factors. The proof keeps the hash of the code as it was checked
    (not as read after the attempt is committed), so a code staff change meanwhile refuses the signature.
    A wrong code is committed (it counts towards the lock) and returned as (None, (message, status)).
    """
    session = db()
    if req.status is not RequestStatus.OPEN or not target.contract.has_access_code:
        return service.SignerAuth((AUTH_EMAIL_LINK,), request_info()), ("", 200)
    if service.is_locked(req):
        return None, (service.locked_message(req), 423)
    if not target.needs_access_code:  # entered on this browser session's first visit
        return _with_code(target.contract.access_code_hash), ("", 200)
    try:
        check = service.check_access_code(session, req, request.form.get("access_code", ""),
                                          now=clock.now(), info=request_info())
    except DomainError as exc:
        session.rollback()
        return None, (exc.message, exc.status_code)
    session.commit()  # a wrong code counts; a right one gave its attempt back — and no lock is kept
    notify_outbox()
    if not check.accepted:
        if check.remaining == 0:
            return None, (service.locked_message(req), 423)
        return None, (_wrong_code(check.remaining), 422)
    _remember_code(req, check.code_hash)
    return _with_code(check.code_hash), ("", 200)


def _with_code(code_hash: str | None) -> service.SignerAuth:
    return service.SignerAuth((AUTH_EMAIL_LINK, AUTH_ACCESS_CODE), request_info(), access_code_hash=code_hash)


# ---------------------------------------------------------------- agency approver (logged in)


@bp.get("/s/staff/<int:party_id>")
@role_required(Role.APPROVER)
def staff_review(party_id: int) -> ResponseReturnValue:
    target = _staff_target(service.staff_party(db(), party_id, user=current_user))
    if target.party.status is PartyStatus.SIGNED:
        return render_template("signature_requests/done.html", message=ALREADY_SIGNED, **_page_context(target))
    return _review(target)


@bp.get("/s/staff/<int:party_id>/documents/<int:document_id>")
@role_required(Role.APPROVER)
def staff_document_tab(party_id: int, document_id: int) -> ResponseReturnValue:
    return _review(_staff_target(service.staff_party(db(), party_id, user=current_user)), document_id)


@bp.get("/s/staff/<int:party_id>/documents/<int:document_id>/pages/<int:page>.jpg")
@role_required(Role.APPROVER)
def staff_page(party_id: int, document_id: int, page: int) -> ResponseReturnValue:
    return _page(_staff_target(service.staff_party(db(), party_id, user=current_user)), document_id, page)


@bp.get("/s/staff/<int:party_id>/documents/<int:document_id>/original")
@role_required(Role.APPROVER)
def staff_original(party_id: int, document_id: int) -> ResponseReturnValue:
    return _original(_staff_target(service.staff_party(db(), party_id, user=current_user)), document_id)


@bp.get("/s/staff/<int:party_id>/documents.zip")
@role_required(Role.APPROVER)
def staff_documents_zip(party_id: int) -> ResponseReturnValue:
    return _zip(_staff_target(service.staff_party(db(), party_id, user=current_user)))


@bp.get("/s/staff/<int:party_id>/confirm")
@role_required(Role.APPROVER)
def staff_confirm(party_id: int) -> ResponseReturnValue:
    target = _staff_target(service.staff_party(db(), party_id, user=current_user))
    return render_page_or_partial("signature_requests/confirm.html", "signature_requests/_confirm.html",
                                  **_page_context(target))


@bp.post("/s/staff/<int:party_id>/complete")
@role_required(Role.APPROVER)
def staff_complete(party_id: int) -> ResponseReturnValue:
    session = db()
    user = current_user._get_current_object()
    party = service.staff_party(session, party_id, user=user)
    auth = service.SignerAuth((AUTH_PASSWORD, AUTH_TOTP), request_info())
    return _complete(_staff_target(party), auth, None)


@bp.route("/s/staff/<int:party_id>/decline", methods=["GET", "POST"])
@role_required(Role.APPROVER)
def staff_decline(party_id: int) -> ResponseReturnValue:
    target = _staff_target(service.staff_party(db(), party_id, user=current_user))
    return _decline(target, None, service.SignerAuth((AUTH_PASSWORD, AUTH_TOTP), request_info()))


# ---------------------------------------------------------------- shared


def _review(target: Target, document_id: int | None = None) -> ResponseReturnValue:
    context = _page_context(target, document_id)
    if request.method == "GET" and not wants_partial():
        _record_review(target)
    return render_page_or_partial("signature_requests/review.html", "signature_requests/_document_tabs.html",
                                  **context)


def _record_review(target: Target, **details: Any) -> None:
    info = request_info()
    record(db(), actor=_actor(target.party), action=AuditAction.CONTRACT_REVIEWED, subject=target.contract,
           ip=info.ip, user_agent=info.user_agent, party=target.party.position, **details)
    db().commit()


def _actor(party: Party) -> Actor:
    return Actor.staff(party.staff_user) if party.staff_user is not None else Actor.signer(party.email)


def _page(target: Target, document_id: int, page_number: int) -> ResponseReturnValue:
    document = contracts.get_document(target.contract, document_id)
    image = revision_page_image(db(), document.original, page_number - 1, width=current_app.config["PAGE_IMAGE_WIDTH"],
                                page_count=document.page_count, read=contracts.read_revision)
    info = request_info()
    record(db(), actor=_actor(target.party), action=AuditAction.CONTRACT_PAGE_VIEWED, subject=target.contract,
           ip=info.ip, user_agent=info.user_agent, filename=document.filename, page=page_number, revision=1,
           party=target.party.position)
    db().commit()
    response = make_response(image)
    response.headers["Content-Type"] = "image/jpeg"
    response.headers["Cache-Control"] = "private, max-age=3600"
    return response


def _original(target: Target, document_id: int) -> ResponseReturnValue:
    document = contracts.get_document(target.contract, document_id)
    info = request_info()
    record(db(), actor=_actor(target.party), action=AuditAction.CONTRACT_DOCUMENT_DOWNLOADED,
           subject=target.contract, ip=info.ip, user_agent=info.user_agent, filename=document.filename,
           revision=1, sha256=document.original.sha256)
    db().commit()
    return send_file(io.BytesIO(contracts.read_revision(document.original)), mimetype="application/pdf",
                     as_attachment=True, download_name=document.download_name())


def _zip(target: Target) -> ResponseReturnValue:
    """Every original of the envelope in one ZIP (UTF-8 names), each download audited."""
    buffer = io.BytesIO()
    info = request_info()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for document in target.contract.documents:
            archive.writestr(document.download_name(), contracts.read_revision(document.original))
            record(db(), actor=_actor(target.party), action=AuditAction.CONTRACT_DOCUMENT_DOWNLOADED,
                   subject=target.contract, ip=info.ip, user_agent=info.user_agent, filename=document.filename,
                   revision=1, sha256=document.original.sha256, zip=True)
    db().commit()
    buffer.seek(0)
    return send_file(buffer, mimetype="application/zip", as_attachment=True,
                     download_name=f"{target.contract.number}_文書一式.zip")


def _confirm_error(target: Target, message: str, status: int) -> ResponseReturnValue:
    return render_page_or_partial("signature_requests/confirm.html", "signature_requests/_confirm.html",
                                  status=status, error=message, **_page_context(target))


def _complete(target: Target, auth: service.SignerAuth, req: SignatureRequest | None) -> ResponseReturnValue:
    session = db()
    party_id, contract_id = target.party.id, target.contract.id
    try:
        outcome = service.complete_signature(session, target.party, auth=auth, now=clock.now(), request=req)
    except DomainError as exc:
        session.rollback()
        # Staff see the failure in the contract's history; the signer may simply try again.
        record(session, actor=_actor(target.party), action=AuditAction.CONTRACT_SIGNING_FAILED,
               subject=("contracts", contract_id), ip=auth.request.ip, user_agent=auth.request.user_agent,
               party_id=party_id, error=exc.message, error_type=type(exc).__name__)
        session.commit()
        return _confirm_error(target, exc.message, exc.status_code)
    session.commit()
    if outcome.all_signed and not outcome.already_signed:
        completion.run_completion_now(contract_id)
        session.expire_all()
    notify_outbox()
    message = ALREADY_SIGNED if outcome.already_signed else "署名手続きが完了しました。"
    return render_page_or_partial("signature_requests/done.html", "signature_requests/_done_panel.html",
                                  message=message, all_signed=outcome.all_signed, **_page_context(target))


def _decline_error(target: Target, message: str, status: int) -> ResponseReturnValue:
    return render_page_or_partial("signature_requests/decline.html", "signature_requests/_decline_form.html",
                                  status=status, error=message, reason=request.form.get("reason", ""),
                                  **_page_context(target))


def _decline(target: Target, req: SignatureRequest | None, auth: service.SignerAuth) -> ResponseReturnValue:
    context = _page_context(target)
    if request.method == "GET":
        return render_page_or_partial("signature_requests/decline.html", "signature_requests/_decline_form.html",
                                      **context)
    reason = request.form.get("reason", "")
    try:
        service.decline(db(), target.party, reason=reason, auth=auth,
                        now=clock.now(), request=req)
    except DomainError as exc:
        db().rollback()
        return render_page_or_partial("signature_requests/decline.html", "signature_requests/_decline_form.html",
                                      status=exc.status_code, error=exc.message, reason=reason, **context)
    db().commit()
    notify_outbox()
    return render_page_or_partial("signature_requests/done.html", "signature_requests/_done_panel.html",
                                  message="差し戻しました。担当課にお知らせしました。", **context)
