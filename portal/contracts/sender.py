"""The sender's tools on a contract page: resend the signature request, unlock a link locked by wrong
アクセスコード, change the code, and send a new download link after completion.

None of them changes the contract's status, but each changes what a signer's link does, so each
takes the contract's lock first (lifecycle.lock()), checks the state it found under the lock against
TOOLS, then changes, audits and queues its mail in the one transaction. Who may use them: the
担当者 and 承認者 of the contract's department (and administrators), see may_use().

Functions flush but never commit; the caller commits (or rolls back on a DomainError).
"""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from flask import current_app
from sqlalchemy import select, update
from sqlalchemy.orm import Session

from portal.audit.actions import AuditAction
from portal.audit.service import Actor, RequestInfo, record
from portal.auth import passwords
from portal.auth.models import Role, StaffUser
from portal.contracts import lifecycle, notifications
from portal.contracts.models import (
    Contract,
    ContractStatus,
    DownloadLink,
    Party,
    PartyRole,
    PartyStatus,
    RequestStatus,
    SignatureRequest,
)
from portal.errors import DomainError
from portal.text import has_control_characters

S = ContractStatus


class Tool(StrEnum):
    RESEND = "resend"
    UNLOCK = "unlock"
    CHANGE_ACCESS_CODE = "change_access_code"
    REISSUE_DOWNLOAD_LINK = "reissue_download_link"

    @property
    def label(self) -> str:
        return TOOL_LABELS[self]


TOOL_LABELS = {
    Tool.RESEND: "署名依頼の再送",
    Tool.UNLOCK: "署名用リンクのロック解除",
    Tool.CHANGE_ACCESS_CODE: "アクセスコードの変更",
    Tool.REISSUE_DOWNLOAD_LINK: "ダウンロード用リンクの再発行",
}

_SIGNING = frozenset({S.AWAITING_COUNTERPARTY, S.AWAITING_AGENCY})
# The statuses each tool works in (checked under the contract's lock).
TOOLS: dict[Tool, frozenset[ContractStatus]] = {
    Tool.RESEND: _SIGNING,
    Tool.UNLOCK: _SIGNING,
    Tool.CHANGE_ACCESS_CODE: frozenset({S.DRAFT, S.AWAITING_APPROVAL, S.APPROVED, *_SIGNING}),
    Tool.REISSUE_DOWNLOAD_LINK: frozenset({S.COMPLETED}),
}

ACCESS_CODE_MIN_LENGTH, ACCESS_CODE_MAX_LENGTH = 4, 32
ACCESS_CODE_INPUT_MAX_LENGTH = 100  # refused before normalising: no argon2 work for a pasted novel


class ToolRefused(DomainError):
    """The tool cannot be used on the contract as it is now (often: someone else acted first)."""

    status_code = 409


class NotDepartmentEditor(DomainError):
    status_code = 403


def refusal(contract: Contract, tool: Tool) -> str:
    """Why `tool` is refused in the contract's current status, in Japanese."""
    status = contract.status
    if tool is Tool.REISSUE_DOWNLOAD_LINK:
        return f"この契約はまだ締結されていません（{status.label}）。ダウンロード用リンクは締結後に発行できます。"
    if status in (S.DRAFT, S.AWAITING_APPROVAL, S.APPROVED) and tool is not Tool.CHANGE_ACCESS_CODE:
        return f"{lifecycle.NOT_SENT}{tool.label}はできません。"
    return f"{lifecycle.STATE_SENTENCES[status]}{tool.label}はできません。"


def may_use(contract: Contract, user: StaffUser) -> bool:
    """The contract's own department sends it: its 担当者 and 承認者 (an approver of another department
    who only signs it does not), and administrators."""
    if user.role is Role.ADMIN:
        return True
    return user.has_role(Role.STAFF, Role.APPROVER) and user.department_id == contract.department_id


def require_department_editor(contract: Contract, user: StaffUser) -> None:
    if not may_use(contract, user):
        raise NotDepartmentEditor("この操作は、契約を担当する所属の担当者・承認者だけが行えます。")


@dataclass(frozen=True)
class ToolState:
    """What the contract page shows in its 「送信者の操作」 panel, read without a lock."""

    party: Party | None  # whose turn it is (resend, unlock)
    is_locked: bool
    resend: bool
    unlock: bool
    change_access_code: bool
    reissue_download_link: bool
    recipients: list[tuple[str, str]]  # (value, label) for the download link's recipient choice

    @property
    def any(self) -> bool:
        return self.resend or self.unlock or self.change_access_code or self.reissue_download_link


def state(session: Session, contract: Contract, user: StaffUser) -> ToolState:
    """The tools `user` may use on `contract` now (templates ask this, never the status)."""
    allowed = may_use(contract, user)
    party = contract.current_party if contract.status in _SIGNING else None
    open_request = _open_request(session, party) if party is not None else None
    locked = open_request is not None and _is_locked(contract, open_request)
    completed = allowed and contract.status in TOOLS[Tool.REISSUE_DOWNLOAD_LINK]
    return ToolState(
        party=party, is_locked=locked,
        resend=allowed and party is not None,
        unlock=allowed and locked,
        change_access_code=allowed and contract.status in TOOLS[Tool.CHANGE_ACCESS_CODE]
        and not _counterparties_signed(contract),
        reissue_download_link=completed,
        recipients=download_recipients(session, contract) if completed else [],
    )


def _locked(session: Session, contract: Contract, tool: Tool, actor: StaffUser) -> Contract:
    require_department_editor(contract, actor)
    contract = lifecycle.lock(session, contract.id)
    if contract.status not in TOOLS[tool]:
        raise ToolRefused(refusal(contract, tool))
    return contract


def _open_request(session: Session, party: Party) -> SignatureRequest | None:
    return session.scalar(select(SignatureRequest).where(SignatureRequest.party_id == party.id,
                                                         SignatureRequest.status == RequestStatus.OPEN)
                          .order_by(SignatureRequest.id.desc()).limit(1))


def _is_locked(contract: Contract, request: SignatureRequest) -> bool:
    return contract.has_access_code and request.failed_code_attempts >= _limit()


def _limit() -> int:
    return int(current_app.config["ACCESS_CODE_MAX_ATTEMPTS"])


def _counterparties_signed(contract: Contract) -> bool:
    vendors = [p for p in contract.parties if p.role is PartyRole.COUNTERPARTY]
    return bool(vendors) and all(p.status is PartyStatus.SIGNED for p in vendors)


def _current_party(contract: Contract, tool: Tool) -> Party:
    party = contract.current_party
    if party is None:  # 署名待ち always has one; kept for a contract changed under our feet
        raise ToolRefused(refusal(contract, tool))
    return party


# ---------------------------------------------------------------- 署名依頼を再送する


def resend_request(session: Session, contract: Contract, *, actor: StaffUser, now: datetime,
                   request: RequestInfo | None = None) -> Party:
    """「署名依頼を再送する」: the signer whose turn it is gets the request mail again, with a new link.

    A counterparty's open links stop working at once (their page says a newer link was sent); the
    count of wrong アクセスコード carries over. An agency signer's mail points at their page again.
    Raises NotDepartmentEditor, ToolRefused when the contract is not waiting for a signature (it was
    signed, declined or closed meanwhile). Returns the party asked.
    """
    contract = _locked(session, contract, Tool.RESEND, actor)
    reissued = lifecycle.reissue_link(session, contract, now=now)
    party, link = reissued.party, reissued.link
    info = request or RequestInfo()
    record(session, actor=Actor.staff(actor), action=AuditAction.CONTRACT_SIGNATURE_REQUEST_RESENT,
           subject=contract, now=now, ip=info.ip, user_agent=info.user_agent, party=party.position,
           email=party.email, role=str(party.role))
    notifications.signature_requested(session, contract, party, link=link, now=now, resent=True)
    contract.updated_at = now
    session.flush()
    return party


# ---------------------------------------------------------------- unlocking a link, changing the code


def unlock(session: Session, contract: Contract, *, actor: StaffUser, now: datetime,
           request: RequestInfo | None = None) -> Party:
    """Unlock the current signer's link locked by wrong アクセスコード: the count starts again at zero.

    The reset is one conditional UPDATE (only a locked link is reset), so an unlock pressed twice, or
    racing a wrong code, counts once. The signer is mailed that the link works again (never the code).
    Raises NotDepartmentEditor, ToolRefused (not sent, closed, or not locked).
    """
    contract = _locked(session, contract, Tool.UNLOCK, actor)
    party = _current_party(contract, Tool.UNLOCK)
    counter = SignatureRequest.failed_code_attempts
    attempts = session.execute(
        update(SignatureRequest)
        .where(SignatureRequest.party_id == party.id, SignatureRequest.status == RequestStatus.OPEN,
               counter >= _limit())
        .values(failed_code_attempts=0).returning(SignatureRequest.id)
    ).scalars().all()
    if not attempts or not contract.has_access_code:
        raise ToolRefused("この署名用リンクはロックされていません（すでに解除されたか、署名が進んでいます）。")
    session.expire_all()
    info = request or RequestInfo()
    record(session, actor=Actor.staff(actor), action=AuditAction.CONTRACT_SIGNING_LINK_UNLOCKED,
           subject=contract, now=now, ip=info.ip, user_agent=info.user_agent, party=party.position,
           email=party.email)
    notifications.signing_link_unlocked(session, contract, party, now=now)
    return party


def checked_access_code(code: str) -> str:
    """A new アクセスコード as staff typed it, NFKC-normalised (full-width digits become digits) and stripped.

    Raises DomainError when it is empty, too short or long, or holds control characters.
    """
    if len(code) > ACCESS_CODE_INPUT_MAX_LENGTH:
        raise DomainError(f"アクセスコードは{ACCESS_CODE_MAX_LENGTH}文字以内で入力してください"
                          f"（{len(code)}文字あります）。")
    code = unicodedata.normalize("NFKC", code).strip()
    if has_control_characters(code):
        raise DomainError("アクセスコードに使えない文字（改行や制御文字）が含まれています。")
    if not ACCESS_CODE_MIN_LENGTH <= len(code) <= ACCESS_CODE_MAX_LENGTH:
        raise DomainError(f"アクセスコードは{ACCESS_CODE_MIN_LENGTH}文字以上{ACCESS_CODE_MAX_LENGTH}文字以内で"
                          "入力してください。")
    return code


def change_access_code(session: Session, contract: Contract, code: str, *, actor: StaffUser, now: datetime,
                       request: RequestInfo | None = None) -> None:
    """Replace the contract's アクセスコード (stored as an argon2 hash; never shown or mailed).

    Browsers that entered the old code must enter the new one. Once sent, the signer whose turn it is
    is told the code changed and that the department tells them the new one by another channel.
    Raises DomainError for an unusable code, NotDepartmentEditor, ToolRefused after the vendor signed
    or the contract closed.
    """
    code = checked_access_code(code)
    contract = _locked(session, contract, Tool.CHANGE_ACCESS_CODE, actor)
    if _counterparties_signed(contract):
        raise ToolRefused("相手方はすでに署名済みです。アクセスコードの変更はできません。")
    had_code = contract.has_access_code
    contract.access_code_hash = passwords.hash_secret(code)
    contract.updated_at = now
    info = request or RequestInfo()
    record(session, actor=Actor.staff(actor), action=AuditAction.CONTRACT_ACCESS_CODE_CHANGED, subject=contract,
           now=now, ip=info.ip, user_agent=info.user_agent, replaced=had_code)
    party = contract.current_party
    if party is not None and party.role is PartyRole.COUNTERPARTY:
        notifications.access_code_changed(session, contract, party, now=now)
    session.flush()


# ---------------------------------------------------------------- ダウンロード用リンクを再発行


def download_recipients(session: Session, contract: Contract) -> list[tuple[str, str]]:
    """Who may be sent a new download link: the contract's signers, then the department's active staff."""
    choices = [(f"party-{p.id}", f"{p.role.label}の署名者: {p.display_name} <{p.email}>") for p in contract.parties]
    staff = session.scalars(select(StaffUser).where(StaffUser.department_id == contract.department_id,
                                                    StaffUser.is_active).order_by(StaffUser.name, StaffUser.id))
    choices += [(f"staff-{u.id}", f"職員: {u.name} <{u.email}>") for u in staff]
    return choices


def _recipient(session: Session, contract: Contract, choice: str) -> tuple[str, str, bool]:
    """(e-mail, name, is the vendor) of a choice from download_recipients(). Raises DomainError."""
    if choice not in {value for value, _ in download_recipients(session, contract)}:
        raise DomainError("送付先を一覧から選んでください。")
    kind, _, number = choice.partition("-")
    if kind == "party":
        party = next(p for p in contract.parties if p.id == int(number))
        return party.email, party.name, party.staff_user_id is None
    user = session.get(StaffUser, int(number))
    assert user is not None
    return user.email, user.name, False


def reissue_download_link(session: Session, contract: Contract, recipient: str, *, actor: StaffUser,
                          now: datetime, request: RequestInfo | None = None) -> DownloadLink:
    """「ダウンロード用リンクを再発行」: a new link, valid DOWNLOAD_LINK_DAYS, mailed to one recipient.

    `recipient` is a value of download_recipients() (a signer of the contract or a staff member of
    its department). Earlier links keep their own expiry: each was sent to one person, who may still
    be using it, and none lives longer than DOWNLOAD_LINK_DAYS anyway.
    Raises DomainError for an unknown recipient, NotDepartmentEditor, ToolRefused before completion.
    """
    contract = _locked(session, contract, Tool.REISSUE_DOWNLOAD_LINK, actor)
    email, name, is_vendor = _recipient(session, contract, recipient)
    link = notifications.download_link_reissued(session, contract, email=email, name=name, is_vendor=is_vendor,
                                                now=now)
    info = request or RequestInfo()
    record(session, actor=Actor.staff(actor), action=AuditAction.CONTRACT_DOWNLOAD_LINK_REISSUED, subject=contract,
           now=now, ip=info.ip, user_agent=info.user_agent, recipient=email, link_id=link.id,
           expires_at=link.expires_at.isoformat())
    return link

