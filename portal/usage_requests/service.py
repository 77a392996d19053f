"""Decisions about usage requests: submit, confirm the signing authority's address, review.

Functions take the session, the actor and the time explicitly, flush but never commit, write the
audit row beside the change and queue mail in the same transaction (delivered after commit).
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass, fields
from datetime import date, datetime, timedelta
from typing import Any

from flask import current_app
from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from portal.audit.actions import AuditAction
from portal.audit.service import ANONYMOUS, Actor, RequestInfo, record
from portal.auth.models import Department, Role, StaffUser
from portal.clock import JST
from portal.counterparties import service as counterparties
from portal.errors import DomainError, LinkExpired, NotFound
from portal.mail.service import enqueue
from portal.storage import get_store
from portal.tokens import hash_token, new_token
from portal.urls import external_url
from portal.usage_requests import pdf, rules
from portal.usage_requests.models import Channel, UsageRequest, UsageRequestStatus
from portal.webhooks.models import WebhookEventType
from portal.webhooks.service import enqueue_event

RECEIPT_ALPHABET = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"  # no 0/O, 1/I: read out over the phone


class AlreadyReviewed(DomainError):
    """The request was accepted or returned already (by someone else, or by a double click)."""

    status_code = 409


class ConfirmationExpired(LinkExpired):
    """The confirmation link is older than USAGE_REQUEST_CONFIRM_HOURS."""


class CorrectionUsed(DomainError):
    """The correction link of a returned request was used already (one corrected request per return)."""

    status_code = 410


CORRECTION_DAYS = 30  # how long a 差戻し's correction link opens the pre-filled form


@dataclass(frozen=True)
class UsageRequestData:
    """What the 別記様式 says, as entered (already stripped and NFKC-normalised by the form)."""

    address: str
    company_name: str
    representative: str
    contact_person: str
    contact_phone: str
    contact_email: str
    contract_name: str
    authority_title: str
    authority_name: str
    authority_email: str
    jv_name: str = ""  # 共同企業体: then company_name is the 代表構成員
    jv_members: str = ""  # one member per line

    @classmethod
    def from_form(cls, form: Any) -> UsageRequestData:
        return cls(**{f.name: str(getattr(form, f.name).data or "") for f in fields(cls)})


@dataclass(frozen=True)
class Submitted:
    usage_request: UsageRequest
    confirm_token: str  # only ever in the confirmation mail; the database keeps its hash


def active_departments(session: Session) -> list[Department]:
    query = select(Department).where(Department.is_active.is_(True)).order_by(Department.code)
    return list(session.scalars(query))


def submit(session: Session, data: UsageRequestData, *, department: Department, now: datetime,
           request: RequestInfo) -> Submitted:
    """Save a request from the public form and mail the signing authority a confirmation link.

    The request stays invisible to staff until that link is opened (double opt-in). The submitter
    also gets a summary with the receipt number. Raises rules.FreeMailRefused / InvalidEmail if the
    authority's address is not acceptable (the form checks first; this is the last word).
    """
    usage_request = _new_request(session, data, department=department, channel=Channel.WEB, now=now,
                                 form_date=now.astimezone(JST).date(), status=UsageRequestStatus.AWAITING_EMAIL)
    token, token_hash = new_token()
    usage_request.confirm_token_hash = token_hash
    usage_request.confirm_expires_at = now + timedelta(hours=current_app.config["USAGE_REQUEST_CONFIRM_HOURS"])
    session.flush()
    record(session, actor=ANONYMOUS, action=AuditAction.USAGE_REQUEST_SUBMITTED, subject=usage_request,
           ip=request.ip, user_agent=request.user_agent, now=now, receipt_number=usage_request.receipt_number,
           authority_email=usage_request.authority_email)
    context = _mail_context(usage_request)
    enqueue(session, "usage_request_confirm", usage_request.authority_email,
            {**context, "confirm_url": external_url("usage_requests.confirm", token=token),
             "expires_at": usage_request.confirm_expires_at},
            to_name=usage_request.authority_name, now=now)
    enqueue(session, "usage_request_receipt", usage_request.contact_email, context,
            to_name=usage_request.contact_person, now=now)
    return Submitted(usage_request, token)


def enter_for_vendor(session: Session, data: UsageRequestData, *, actor: StaffUser, channel: Channel,
                     form_date: date | None, now: datetime, request: RequestInfo) -> UsageRequest:
    """Register a form that arrived by e-mail or post, typed in by staff, straight into 確認待ち.

    Raises rules.FreeMailRefused / InvalidEmail for an unacceptable authority address.
    """
    if channel == Channel.WEB:
        raise DomainError("職員入力の受付方法は電子メールまたは郵送です。")
    usage_request = _new_request(session, data, department=actor.department, channel=channel, now=now,
                                 form_date=form_date or now.astimezone(JST).date(),
                                 status=UsageRequestStatus.PENDING)
    usage_request.entered_by = actor
    usage_request.confirmed_at = now
    session.flush()
    record(session, actor=Actor.staff(actor), action=AuditAction.USAGE_REQUEST_ENTERED, subject=usage_request,
           ip=request.ip, user_agent=request.user_agent, now=now, channel=channel.value,
           receipt_number=usage_request.receipt_number)
    enqueue(session, "usage_request_receipt", usage_request.contact_email, _mail_context(usage_request),
            to_name=usage_request.contact_person, now=now)
    enqueue_event(session, WebhookEventType.USAGE_REQUEST_CONFIRMED, usage_request, now=now)
    return usage_request


def record_robot(session: Session, *, now: datetime, request: RequestInfo) -> None:
    """Log a submission that filled the honeypot field; nothing else is stored or sent."""
    record(session, actor=ANONYMOUS, action=AuditAction.USAGE_REQUEST_HONEYPOT, ip=request.ip,
           user_agent=request.user_agent, now=now)


def get_by_confirm_token(session: Session, token: str, *, now: datetime) -> UsageRequest:
    """Find the request a confirmation link belongs to.

    Raises NotFound for an unknown token, ConfirmationExpired when an unconfirmed link is too old.
    """
    usage_request = session.scalar(select(UsageRequest).where(UsageRequest.confirm_token_hash == hash_token(token)))
    if usage_request is None:
        raise NotFound("このリンクは無効です。メールに記載のURLを確認してください。")
    expired = usage_request.confirm_expires_at is not None and usage_request.confirm_expires_at < now
    if usage_request.confirmed_at is None and expired:
        hours = current_app.config["USAGE_REQUEST_CONFIRM_HOURS"]
        raise ConfirmationExpired(
            f"確認リンクの有効期限（{hours}時間）が切れています。お手数ですが、利用申出書をもう一度提出してください。"
        )
    return usage_request


def confirm(session: Session, usage_request: UsageRequest, *, now: datetime, request: RequestInfo) -> bool:
    """The signing authority proved the address receives mail: hand the request to staff and mail the
    department it was submitted to.

    Idempotent, also for two clicks at the same moment: one conditional UPDATE decides which click
    confirms; the other changes nothing and returns False.
    """
    claimed = session.execute(
        update(UsageRequest)
        .where(UsageRequest.id == usage_request.id, UsageRequest.confirmed_at.is_(None))
        .values(confirmed_at=now, status=UsageRequestStatus.PENDING)
    )
    session.refresh(usage_request)
    if claimed.rowcount != 1:  # type: ignore[attr-defined]
        return False
    record(session, actor=Actor.signer(usage_request.authority_email), action=AuditAction.USAGE_REQUEST_CONFIRMED,
           subject=usage_request, ip=request.ip, user_agent=request.user_agent, now=now)
    enqueue_event(session, WebhookEventType.USAGE_REQUEST_CONFIRMED, usage_request, now=now)
    _mail_department(session, usage_request, now=now)
    return True


def _mail_department(session: Session, usage_request: UsageRequest, *, now: datetime) -> None:
    """A new 申出書 for the 提出先: its shared address when it has one, else each of its 担当者."""
    department = usage_request.department
    if department.contact_email:
        recipients = [(department.contact_email, department.name)]
    else:
        staff = session.scalars(select(StaffUser).where(
            StaffUser.department_id == department.id, StaffUser.role == Role.STAFF, StaffUser.is_active)
            .order_by(StaffUser.id))
        recipients = [(user.email, user.name) for user in staff]
    context = {**_mail_context(usage_request),
               "link": external_url("usage_requests.show", request_id=usage_request.id)}
    for email, name in recipients:
        enqueue(session, "usage_request_to_department", email, {**context, "name": name}, to_name=name, now=now)


def visible_to(actor: StaffUser) -> Any:
    """Query condition: requests that reached staff (confirmed), in the actor's department (admin: all)."""
    condition = UsageRequest.status != UsageRequestStatus.AWAITING_EMAIL
    if actor.role != Role.ADMIN:
        condition = condition & (UsageRequest.department_id == actor.department_id)
    return condition


def list_for_staff(session: Session, actor: StaffUser, status: UsageRequestStatus,
                   limit: int = 200) -> list[UsageRequest]:
    query = (select(UsageRequest).where(visible_to(actor), UsageRequest.status == status)
             .order_by(UsageRequest.submitted_at.desc(), UsageRequest.id.desc()).limit(limit))
    return list(session.scalars(query))


def counts_for_staff(session: Session, actor: StaffUser) -> dict[UsageRequestStatus, int]:
    query = select(UsageRequest.status, func.count()).where(visible_to(actor)).group_by(UsageRequest.status)
    counts = {status: 0 for status in STAFF_STATUSES}
    counts.update(dict(session.execute(query).tuples().all()))
    return counts


STAFF_STATUSES = (UsageRequestStatus.PENDING, UsageRequestStatus.ACCEPTED, UsageRequestStatus.RETURNED)


def get_for_staff(session: Session, request_id: int, actor: StaffUser) -> UsageRequest:
    """Load a request the actor may see. Raises NotFound otherwise (another department's is not revealed)."""
    usage_request = session.scalar(select(UsageRequest).where(UsageRequest.id == request_id, visible_to(actor)))
    if usage_request is None:
        raise NotFound("お探しの利用申出は見つかりませんでした。")
    return usage_request


def record_view(session: Session, usage_request: UsageRequest, *, actor: StaffUser, now: datetime,
                request: RequestInfo, pdf_download: bool = False) -> None:
    action = AuditAction.USAGE_REQUEST_PDF_DOWNLOADED if pdf_download else AuditAction.USAGE_REQUEST_VIEWED
    record(session, actor=Actor.staff(actor), action=action, subject=usage_request, ip=request.ip,
           user_agent=request.user_agent, now=now)


def accept(session: Session, usage_request: UsageRequest, *, actor: StaffUser, now: datetime,
           request: RequestInfo) -> UsageRequest:
    """Accept (受付): register the counterparty and make the named person its signing authority.

    The accepted form is rendered as the 別記様式 PDF and stored. Idempotent for an accepted request.
    Raises AlreadyReviewed if it was returned, FreeMailRefused if the address is now on the list.
    """
    if usage_request.status == UsageRequestStatus.ACCEPTED:
        return usage_request
    _require_pending(usage_request)
    rules.check_signer_email(usage_request.authority_email, domains=rules.configured_free_mail_domains())
    if not _claim(session, usage_request, UsageRequestStatus.ACCEPTED, actor=actor, now=now):
        if usage_request.status == UsageRequestStatus.ACCEPTED:
            return usage_request  # a double click, or a colleague at the same moment: accepted once
        _require_pending(usage_request)
    counterparty = counterparties.upsert_counterparty(
        session, name=usage_request.counterparty_name, now=now, address=usage_request.address,
        representative=(f"代表構成員 {usage_request.company_name} {usage_request.representative}"
                        if usage_request.is_jv else usage_request.representative),
        contact_person=usage_request.contact_person,
        contact_phone=usage_request.contact_phone, contact_email=usage_request.contact_email,
    )
    authority = counterparties.set_signing_authority(
        session, counterparty, title=usage_request.authority_title, name=usage_request.authority_name,
        email=usage_request.authority_email, source="usage_request", now=now,
    )
    usage_request.status = UsageRequestStatus.ACCEPTED
    usage_request.reviewed_at = now
    usage_request.reviewed_by = actor
    usage_request.counterparty = counterparty
    usage_request.signing_authority = authority
    stored = get_store().put(pdf.render_usage_request(usage_request, addressee=addressee()),
                             owner=pdf_owner(usage_request.id))
    usage_request.pdf_key, usage_request.pdf_sha256 = stored.key, stored.sha256
    session.flush()
    staff = Actor.staff(actor)
    record(session, actor=staff, action=AuditAction.USAGE_REQUEST_ACCEPTED, subject=usage_request, ip=request.ip,
           user_agent=request.user_agent, now=now, counterparty_id=counterparty.id, pdf_sha256=stored.sha256)
    record(session, actor=staff, action=AuditAction.USAGE_REQUEST_AUTHORITY_REGISTERED, subject=counterparty,
           ip=request.ip, user_agent=request.user_agent, now=now, signing_authority_id=authority.id,
           email=authority.email, usage_request_id=usage_request.id)
    enqueue(session, "usage_request_accepted", usage_request.contact_email, _mail_context(usage_request),
            to_name=usage_request.contact_person, now=now)
    return usage_request


def return_to_submitter(session: Session, usage_request: UsageRequest, reason: str, *, actor: StaffUser,
                        now: datetime, request: RequestInfo) -> UsageRequest:
    """Send the request back (差戻し) with a reason, which is mailed to the submitter.

    Raises AlreadyReviewed unless the request is 確認待ち.
    """
    _require_pending(usage_request)
    if not _claim(session, usage_request, UsageRequestStatus.RETURNED, actor=actor, now=now):
        _require_pending(usage_request)
    token, token_hash = new_token()
    usage_request.return_reason = reason
    usage_request.correction_token_hash = token_hash
    usage_request.correction_expires_at = now + timedelta(days=CORRECTION_DAYS)
    session.flush()
    record(session, actor=Actor.staff(actor), action=AuditAction.USAGE_REQUEST_RETURNED, subject=usage_request,
           ip=request.ip, user_agent=request.user_agent, now=now, reason=reason)
    enqueue(session, "usage_request_returned", usage_request.contact_email,
            {**_mail_context(usage_request), "reason": reason,
             "apply_url": external_url("usage_requests.correct", token=token),
             "correction_expires_at": usage_request.correction_expires_at},
            to_name=usage_request.contact_person, now=now)
    return usage_request


def _claim(session: Session, usage_request: UsageRequest, status: UsageRequestStatus, *, actor: StaffUser,
           now: datetime) -> bool:
    """Move a 確認待ち request to `status` with one conditional UPDATE: of two reviewers at the same
    moment exactly one wins. False (the row re-read) when someone else decided first."""
    changed = session.execute(
        update(UsageRequest)
        .where(UsageRequest.id == usage_request.id, UsageRequest.status == UsageRequestStatus.PENDING)
        .values(status=status, reviewed_at=now, reviewed_by_id=actor.id)
        .execution_options(synchronize_session=False)).rowcount  # type: ignore[attr-defined]
    session.refresh(usage_request)
    return bool(changed)


def get_by_correction_token(session: Session, token: str, *, now: datetime) -> UsageRequest:
    """The returned request a 差戻し mail's correction link belongs to.

    Raises NotFound (unknown link), LinkExpired (older than CORRECTION_DAYS), CorrectionUsed.
    """
    returned = session.scalar(select(UsageRequest).where(UsageRequest.correction_token_hash == hash_token(token)))
    if returned is None or returned.status != UsageRequestStatus.RETURNED:
        raise NotFound("このリンクは無効です。差戻しのメールに記載のURLを確認してください。")
    if returned.correction_used_at is not None:
        raise CorrectionUsed(f"この修正用リンクはすでに使われ、修正した申出書（受付番号 {returned.receipt_number}"
                             " の再提出）を受け付けています。確認メールをご確認ください。")
    if returned.correction_expires_at is not None and returned.correction_expires_at < now:
        raise LinkExpired(f"修正用リンクの有効期限（{CORRECTION_DAYS}日）が切れています。お手数ですが、"
                          "申出書をもう一度はじめから提出してください。")
    return returned


def correction_values(returned: UsageRequest) -> dict[str, str]:
    """The returned form's fields, to pre-fill the correction."""
    values = {f.name: str(getattr(returned, f.name) or "") for f in fields(UsageRequestData)}
    values["department"] = returned.department.code
    return values


def resubmit(session: Session, returned: UsageRequest, data: UsageRequestData, *, department: Department,
             now: datetime, request: RequestInfo) -> Submitted:
    """Submit the corrected form for a returned request: a new request linked to it (corrects_id), with
    the usual confirmation mail. The link works once: a conditional UPDATE decides between two submits.

    Raises CorrectionUsed, and what submit() raises.
    """
    used = session.execute(
        update(UsageRequest)
        .where(UsageRequest.id == returned.id, UsageRequest.correction_used_at.is_(None),
               UsageRequest.status == UsageRequestStatus.RETURNED)
        .values(correction_used_at=now).execution_options(synchronize_session=False)).rowcount  # type: ignore[attr-defined]
    if not used:
        raise CorrectionUsed("この修正用リンクはすでに使われています。確認メールをご確認ください。")
    submitted = submit(session, data, department=department, now=now, request=request)
    submitted.usage_request.corrects_id = returned.id
    session.flush()
    record(session, actor=ANONYMOUS, action=AuditAction.USAGE_REQUEST_CORRECTED, subject=returned, ip=request.ip,
           user_agent=request.user_agent, now=now, receipt_number=submitted.usage_request.receipt_number,
           corrects=returned.receipt_number)
    return submitted


def pdf_owner(usage_request_id: int) -> str:
    """The owner the accepted form's PDF is bound to in the store."""
    return f"usage-request/{usage_request_id}"


def stored_pdf(usage_request: UsageRequest) -> bytes:
    """The accepted form's PDF. Raises NotFound before acceptance, storage.TamperedFile if altered."""
    if not usage_request.pdf_key:
        raise NotFound("この利用申出のPDFはまだありません（受付後に作成されます）。")
    return get_store().get(usage_request.pdf_key, owner=pdf_owner(usage_request.id),
                           sha256=usage_request.pdf_sha256)


def addressee() -> str:
    """宛名 of the form: USAGE_REQUEST_ADDRESSEE, or the head of the agency (岡山県 → 岡山県知事)."""
    configured = current_app.config.get("USAGE_REQUEST_ADDRESSEE") or ""
    if configured:
        return str(configured)
    agency = str(current_app.config["AGENCY_NAME"])
    return f"{agency}知事" if agency.endswith(("都", "道", "府", "県")) else f"{agency}長"


def _new_request(session: Session, data: UsageRequestData, *, department: Department, channel: Channel,
                 now: datetime, form_date: date, status: UsageRequestStatus) -> UsageRequest:
    authority_email = rules.check_signer_email(data.authority_email, domains=rules.configured_free_mail_domains(),
                                               check_dns=bool(current_app.config.get("EMAIL_CHECK_DNS")))
    contact_email = rules.normalize_email(data.contact_email)
    values = {f.name: getattr(data, f.name) for f in fields(data)}
    values.update(authority_email=authority_email, contact_email=contact_email,
                  contact_phone=rules.normalize_phone(data.contact_phone))
    usage_request = UsageRequest(receipt_number=_new_receipt_number(session, now), status=status, channel=channel,
                                 department=department, form_date=form_date, submitted_at=now, **values)
    session.add(usage_request)
    return usage_request


def decoy_receipt_number(now: datetime) -> str:
    """A receipt number that looks real, for robots caught by the honeypot; never stored."""
    prefix = now.astimezone(JST).strftime("%Y%m%d")
    return f"{prefix}-{''.join(secrets.choice(RECEIPT_ALPHABET) for _ in range(4))}"


def _new_receipt_number(session: Session, now: datetime) -> str:
    while True:
        candidate = decoy_receipt_number(now)
        exists = session.scalar(select(UsageRequest.id).where(UsageRequest.receipt_number == candidate))
        if exists is None:
            return candidate


def _require_pending(usage_request: UsageRequest) -> None:
    if usage_request.status != UsageRequestStatus.PENDING:
        label = usage_request.status.label
        raise AlreadyReviewed(f"この利用申出はすでに「{label}」です。画面を再読み込みしてください。")


def _mail_context(usage_request: UsageRequest) -> dict[str, Any]:
    return {"usage_request": usage_request, "department_name": usage_request.department.name,
            "addressee": addressee()}
