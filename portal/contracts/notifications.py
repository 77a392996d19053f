"""The mails the lifecycle sends, one function per mail (templates in contracts/templates/mail/).

Called from portal.contracts.lifecycle.after_transition(), in the transaction of the change: the
outbox row commits or rolls back with it, and the worker delivers it after the commit.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from flask import current_app
from sqlalchemy import select
from sqlalchemy.orm import Session

from portal.auth.models import Role, StaffUser
from portal.contracts.models import Contract, DownloadLink, Party, PartyRole
from portal.mail.service import enqueue
from portal.tokens import new_token
from portal.urls import external_url


def signature_requested(session: Session, contract: Contract, party: Party, *, link: str, now: datetime,
                        resent: bool = False) -> None:
    """「…への署名依頼が届いています」 to the signer whose turn it is (the agency's points at its page);
    `resent`: 「【再送】」, sent again by staff with a new link."""
    template = "signature_request" if party.role is PartyRole.COUNTERPARTY else "agency_signature_request"
    config = current_app.config
    context = {"contract": contract, "party": party, "link": link, "requester": contract.created_by,
               "department": contract.department, "contact_phone": config["CONTACT_PHONE"],
               "contact_email": config["CONTACT_EMAIL"] or contract.created_by.email,
               "has_access_code": contract.has_access_code and party.role is PartyRole.COUNTERPARTY,
               "resent": resent}
    enqueue(session, template, party.email, context, to_name=party.name, now=now)


def approval_requested(session: Session, contract: Contract, *, requester: StaffUser, now: datetime) -> None:
    """「承認を依頼する」: the approvers of the contract's department (not the requester) are asked."""
    approvers = session.scalars(select(StaffUser).where(
        StaffUser.department_id == contract.department_id, StaffUser.role == Role.APPROVER, StaffUser.is_active,
        StaffUser.id != requester.id).order_by(StaffUser.id))
    link = external_url("contracts.show", contract_id=contract.id)
    for approver in approvers:
        enqueue(session, "approval_requested", approver.email,
                {"contract": contract, "name": approver.name, "requester": requester, "link": link},
                to_name=approver.name, now=now)


def approval_confirmed(session: Session, contract: Contract, *, approver: StaffUser, now: datetime) -> None:
    """決裁 confirmed: the staff member who made the contract may send it now."""
    sender = contract.created_by
    if sender.id == approver.id:
        return
    enqueue(session, "approval_confirmed", sender.email,
            {"contract": contract, "name": sender.name, "approver": approver,
             "link": external_url("contracts.show", contract_id=contract.id)}, to_name=sender.name, now=now)


def contract_declined(session: Session, contract: Contract, party: Party, *, now: datetime) -> None:
    """差し戻し: the contract's staff learn who declined and why; the vendor gets the department's contact."""
    _to_staff(session, contract, "contract_declined", now=now, party=party, reason=party.decline_reason)
    _to_vendors(session, contract, now=now, reason=party.decline_reason, declined=True)


def access_code_locked(session: Session, contract: Contract, party: Party, *, attempts: int,
                       now: datetime) -> None:
    """The signing link locked after too many wrong アクセスコード: the contract's staff and the department."""
    extra = {contract.department.contact_email: contract.department.name} if contract.department.contact_email else {}
    _to_staff(session, contract, "access_code_locked", now=now, extra=extra, party=party, attempts=attempts)


def signing_link_unlocked(session: Session, contract: Contract, party: Party, *, now: datetime) -> None:
    """The signer's link works again after staff unlocked it (the code itself travels by another channel)."""
    enqueue(session, "signing_link_unlocked", party.email, _vendor_context(contract, party), to_name=party.name,
            now=now)


def access_code_changed(session: Session, contract: Contract, party: Party, *, now: datetime) -> None:
    """The contract's アクセスコード was changed: the signer learns that, not the new code."""
    enqueue(session, "access_code_changed", party.email, _vendor_context(contract, party), to_name=party.name,
            now=now)


def _vendor_context(contract: Contract, party: Party) -> dict[str, object]:
    config = current_app.config
    department = contract.department
    return {"contract": contract, "party": party, "department": department,
            "contact_phone": department.contact_phone or config["CONTACT_PHONE"],
            "contact_email": department.contact_email or config["CONTACT_EMAIL"] or contract.created_by.email}


def download_link_reissued(session: Session, contract: Contract, *, email: str, name: str, is_vendor: bool,
                           now: datetime) -> DownloadLink:
    """「ダウンロード用リンクを再発行」: a new link (DOWNLOAD_LINK_DAYS) to one recipient; returns it."""
    days = current_app.config["DOWNLOAD_LINK_DAYS"]
    token, token_hash = new_token()
    link = DownloadLink(contract=contract, recipient=email, token_hash=token_hash, created_at=now,
                        expires_at=now + timedelta(days=days))
    session.add(link)
    enqueue(session, "download_link_reissued", email,
            {"contract": contract, "name": name, "link": external_url("downloads.show", token=token),
             "expires_at": link.expires_at, "days": days, "is_vendor": is_vendor}, to_name=name, now=now)
    session.flush()
    return link


def contract_closed(session: Session, contract: Contract, *, now: datetime) -> None:
    """紙契約へ移行 (by staff or by the deadline job) or 取消: staff are told, with the reason, and so is the
    vendor once the contract was sent to them."""
    _to_staff(session, contract, "contract_closed", now=now, reason=contract.status_reason)
    if contract.sent_at is not None:
        _to_vendors(session, contract, now=now, reason=contract.status_reason, declined=False)


def _to_vendors(session: Session, contract: Contract, *, now: datetime, reason: str, declined: bool) -> None:
    config = current_app.config
    department = contract.department
    context = {"contract": contract, "reason": reason, "declined": declined, "department": department,
               "agency_name": config["AGENCY_NAME"],
               "contact_phone": department.contact_phone or config["CONTACT_PHONE"],
               "contact_email": department.contact_email or config["CONTACT_EMAIL"] or contract.created_by.email}
    recipients = {p.email.lower(): p for p in contract.parties if p.role is PartyRole.COUNTERPARTY}
    for party in recipients.values():
        enqueue(session, "vendor_contract_closed", party.email, {**context, "party": party},
                to_name=party.name, now=now)


def contract_completed(session: Session, contract: Contract, *, now: datetime) -> None:
    """「電子署名完了のお知らせ」 to every party, each with its own download link (DOWNLOAD_LINK_DAYS)."""
    days = current_app.config["DOWNLOAD_LINK_DAYS"]
    recipients = {p.email.lower(): p for p in contract.parties}
    for party in recipients.values():
        token, token_hash = new_token()
        link = DownloadLink(contract=contract, recipient=party.email, token_hash=token_hash, created_at=now,
                            expires_at=now + timedelta(days=days))
        session.add(link)
        enqueue(session, "signature_completed", party.email,
                {"contract": contract, "party": party, "link": external_url("downloads.show", token=token),
                 "expires_at": link.expires_at, "days": days, "is_vendor": party.staff_user_id is None},
                to_name=party.name, now=now)
    sender = contract.sent_by or contract.created_by
    if sender.email.lower() not in recipients:
        enqueue(session, "contract_completed_staff", sender.email,
                {"contract": contract, "name": sender.name,
                 "link": external_url("contracts.show", contract_id=contract.id)}, to_name=sender.name, now=now)
    session.flush()


def signature_reminder(session: Session, contract: Contract, party: Party, *, days: int, link: str,
                       now: datetime) -> None:
    """A reminder `days` before the planned conclusion date: to the signer whose turn it is, with a fresh
    signing link (portal.contracts.lifecycle.reissue_link), and to the staff member who sent the contract,
    with the contract's page."""
    config = current_app.config
    department = contract.department
    enqueue(session, "signature_reminder", party.email,
            {"contract": contract, "party": party, "days": days, "link": link,
             "has_access_code": contract.has_access_code and party.role is PartyRole.COUNTERPARTY,
             "contact_phone": department.contact_phone or config["CONTACT_PHONE"],
             "contact_email": department.contact_email or config["CONTACT_EMAIL"]},
            to_name=party.name, now=now)
    sender = contract.sent_by or contract.created_by
    if sender.email.lower() == party.email.lower():
        return
    enqueue(session, "signature_reminder_staff", sender.email,
            {"contract": contract, "party": party, "days": days, "name": sender.name,
             "link": external_url("contracts.show", contract_id=contract.id)}, to_name=sender.name, now=now)


def _to_staff(session: Session, contract: Contract, template: str, *, now: datetime,
              extra: dict[str, str] | None = None, **context: object) -> None:
    """Mail the contract's creator (and the approver who confirmed it, and `extra` {address: name})."""
    recipients = {contract.created_by.email: contract.created_by.name}
    if contract.approved_by is not None:
        recipients.setdefault(contract.approved_by.email, contract.approved_by.name)
    for email, name in (extra or {}).items():
        recipients.setdefault(email, name)
    link = external_url("contracts.show", contract_id=contract.id)
    for email, name in recipients.items():
        enqueue(session, template, email, {"contract": contract, "name": name, "link": link, **context},
                to_name=name, now=now)
