"""The contract lifecycle: the only code that changes the status of a contract, a party or a signature request.

    下書き ─決裁依頼→ 承認待ち ─決裁→ 承認済み（送信待ち） ─送信→ 署名待ち(相手方/庁内) ─全員署名→ 締結済み
      ↑__________文書・内容の変更（決裁の取消）______|                 └─差し戻し→ 差し戻し
    紙契約へ移行 / 取消: from every state that is not closed (締結済み, 紙契約へ移行, 取消).

TRANSITIONS is the table (status × action → new status); REFUSALS the Japanese message for every
pair that is not in it. Each function here locks the contract's row first (lock()), re-reads its
state under the lock and only then checks the table, so that of two people acting at once the
second sees what the first did and gets the refusal ("この契約はすでに…"), never a half-done mix.
Every change of a contract's status goes through after_transition(): the audit event and the
mails (portal.contracts.notifications) are written there, in the same transaction as the change.

Functions flush but never commit; the caller commits (or rolls back on a DomainError).
"""

from __future__ import annotations

import unicodedata
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, time, timedelta
from enum import StrEnum
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session, joinedload, selectinload

from portal.audit.actions import AuditAction
from portal.audit.service import SYSTEM, Actor, RequestInfo, record
from portal.auth.models import Role, StaffUser
from portal.clock import JST
from portal.contracts import notifications
from portal.contracts.models import (
    Contract,
    ContractDocument,
    ContractStatus,
    Party,
    PartyRole,
    PartyStatus,
    RequestStatus,
    SignatureRequest,
)
from portal.errors import DomainError, NotFound
from portal.mail.service import withdraw_link_mails
from portal.tokens import new_token
from portal.urls import external_url
from portal.webhooks.models import WebhookEventType
from portal.webhooks.service import enqueue_event

S = ContractStatus


class Action(StrEnum):
    EDIT_DOCUMENTS = "edit_documents"  # add or remove a PDF; after 決裁 this voids the approval
    EDIT = "edit"  # change a draft's metadata or signers (「編集する」); after 決裁 this voids the approval
    REQUEST_APPROVAL = "request_approval"
    APPROVE = "approve"  # 決裁の確認
    SEND = "send"
    SIGN = "sign"
    DECLINE = "decline"
    COMPLETE = "complete"
    PAPER = "paper"
    CANCEL = "cancel"

    @property
    def label(self) -> str:
        return ACTION_LABELS[self]


ACTION_LABELS = {
    Action.EDIT_DOCUMENTS: "文書の変更",
    Action.EDIT: "内容の変更",
    Action.REQUEST_APPROVAL: "決裁の依頼",
    Action.APPROVE: "決裁の確認",
    Action.SEND: "署名依頼の送信",
    Action.SIGN: "署名",
    Action.DECLINE: "差し戻し",
    Action.COMPLETE: "締結処理",
    Action.PAPER: "紙契約への移行",
    Action.CANCEL: "取消",
}

_CLOSABLE = (S.DRAFT, S.AWAITING_APPROVAL, S.APPROVED, S.AWAITING_COUNTERPARTY, S.AWAITING_AGENCY, S.DECLINED)

# (status, action) → the status after it. SEND and SIGN lead to the status of whoever signs next
# (next_signer_status()); the table lists every status they can lead to.
TRANSITIONS: dict[tuple[ContractStatus, Action], tuple[ContractStatus, ...]] = {
    (S.DRAFT, Action.EDIT_DOCUMENTS): (S.DRAFT,),
    (S.AWAITING_APPROVAL, Action.EDIT_DOCUMENTS): (S.AWAITING_APPROVAL,),
    (S.APPROVED, Action.EDIT_DOCUMENTS): (S.DRAFT,),
    (S.DRAFT, Action.EDIT): (S.DRAFT,),
    (S.AWAITING_APPROVAL, Action.EDIT): (S.AWAITING_APPROVAL,),
    (S.APPROVED, Action.EDIT): (S.DRAFT,),
    (S.DRAFT, Action.REQUEST_APPROVAL): (S.AWAITING_APPROVAL,),
    (S.DRAFT, Action.APPROVE): (S.APPROVED,),
    (S.AWAITING_APPROVAL, Action.APPROVE): (S.APPROVED,),
    (S.APPROVED, Action.SEND): (S.AWAITING_COUNTERPARTY, S.AWAITING_AGENCY),
    (S.AWAITING_COUNTERPARTY, Action.SIGN): (S.AWAITING_COUNTERPARTY, S.AWAITING_AGENCY, S.COMPLETING),
    (S.AWAITING_AGENCY, Action.SIGN): (S.AWAITING_COUNTERPARTY, S.AWAITING_AGENCY, S.COMPLETING),
    (S.AWAITING_COUNTERPARTY, Action.DECLINE): (S.DECLINED,),
    (S.AWAITING_AGENCY, Action.DECLINE): (S.DECLINED,),
    (S.COMPLETING, Action.COMPLETE): (S.COMPLETED,),
    **{(status, Action.PAPER): (S.PAPER,) for status in _CLOSABLE},
    **{(status, Action.CANCEL): (S.CANCELLED,) for status in _CLOSABLE},
}

# Why an action is refused in a status: "この契約はすでに…" for what has happened, else what is missing.
STATE_SENTENCES = {
    S.DRAFT: "この契約はまだ決裁が確認されていません。",
    S.AWAITING_APPROVAL: "この契約は決裁の確認待ちです。",
    S.APPROVED: "この契約はすでに決裁が確認されています（送信待ち）。",
    S.AWAITING_COUNTERPARTY: "この契約はすでに署名依頼を送信済みです。",
    S.AWAITING_AGENCY: "この契約はすでに署名依頼を送信済みです。",
    S.COMPLETING: "この契約はすでに全員の署名が済み、締結処理中です。",
    S.COMPLETED: "この契約はすでに締結済みです。",
    S.DECLINED: "この契約はすでに差し戻されています。",
    S.PAPER: "この契約はすでに紙契約へ移行しています。",
    S.CANCELLED: "この契約はすでに取り消されています。",
}
NOT_SENT = "この契約はまだ署名依頼を送信していません。"
APPROVAL_MISSING = "決裁（内部承認）が確認されていません。承認者に決裁番号の確認を依頼してください。"
EDIT_AFTER_SENDING = "訂正する場合は新しい契約として作成してください。"
COPY_INSTEAD = "訂正する場合は「この契約を複製して作成」で新しい契約として作成してください。"
ALREADY_SIGNED_NO_DECLINE = "この契約はすでに署名済みです。差し戻しはできません。"
SIGNING_CLOSED = "この署名依頼は取り消されたか、紙の契約に移行しました。担当課にお問い合わせください。"
ACCESS_CODE_CHANGED = ("この契約のアクセスコードは変更されました。担当課から伝えられた新しいアクセスコードを"
                       "入力してから、もう一度お手続きください。")
LINK_REPLACED = ("このリンクは新しいリンクに置き換えられたため使えません。"
                 "最新の署名依頼メール（リマインドまたは再送のメール）に記載されたURLを開いてください。")


def refusal(status: ContractStatus, action: Action) -> str:
    """The message for `action` refused in `status` (a pair that is not in TRANSITIONS)."""
    if action is Action.SEND and status in (S.DRAFT, S.AWAITING_APPROVAL):
        return APPROVAL_MISSING
    if action in (Action.SIGN, Action.DECLINE) and status in (S.PAPER, S.CANCELLED):
        return SIGNING_CLOSED
    if action in (Action.SIGN, Action.DECLINE, Action.COMPLETE) and status in (S.DRAFT, S.AWAITING_APPROVAL,
                                                                                  S.APPROVED):
        return f"{NOT_SENT}{action.label}はできません。"
    if action is Action.EDIT_DOCUMENTS:
        return f"{STATE_SENTENCES[status]}文書は変更できません。{EDIT_AFTER_SENDING}"
    if action is Action.EDIT:
        return f"{STATE_SENTENCES[status]}契約の内容は変更できません。{COPY_INSTEAD}"
    return f"{STATE_SENTENCES[status]}{action.label}はできません。"


class DocumentsMissing(DomainError):
    pass


class TransitionRefused(DomainError):
    """The contract's state does not allow the action (often: someone else acted first)."""

    status_code = 409

    def __init__(self, message: str, *, status: ContractStatus, action: Action) -> None:
        super().__init__(message)
        self.status = status
        self.action = action


class ApprovalMissing(TransitionRefused):
    """Sending needs a confirmed 決裁 over the current documents."""

    status_code = 422


class SendingNotOpen(TransitionRefused):
    """The department does not send electronically yet (its 導入日 is in the future)."""

    status_code = 422


class SigningClosed(TransitionRefused):
    """The signature request was withdrawn: cancelled, moved to paper, declined or completed."""

    status_code = 410


class LinkSuperseded(SigningClosed):
    """Staff sent the signer a newer link; this one no longer opens anything."""


def is_allowed(status: ContractStatus, action: Action) -> bool:
    return (status, action) in TRANSITIONS


def require(contract: Contract, action: Action) -> None:
    """Raise the refusal for `action` unless the contract's current status allows it."""
    status = contract.status
    if is_allowed(status, action):
        return
    message = refusal(status, action)
    if action is Action.SEND and status in (S.DRAFT, S.AWAITING_APPROVAL):
        raise ApprovalMissing(message, status=status, action=action)
    if action in (Action.SIGN, Action.DECLINE) and not status.is_open:
        raise SigningClosed(message, status=status, action=action)
    raise TransitionRefused(message, status=status, action=action)


STAFF_ACTIONS = {
    Action.EDIT_DOCUMENTS: (Role.STAFF, Role.APPROVER),
    Action.EDIT: (Role.STAFF, Role.APPROVER),
    Action.REQUEST_APPROVAL: (Role.STAFF, Role.APPROVER),
    Action.APPROVE: (Role.APPROVER,),
    Action.SEND: (Role.STAFF, Role.APPROVER),
    Action.PAPER: (Role.STAFF, Role.APPROVER),
    Action.CANCEL: (Role.STAFF, Role.APPROVER),
}


def allowed_actions(contract: Contract, user: StaffUser) -> frozenset[Action]:
    """What `user` may do to the contract on the staff screens now (signing happens on the signer's pages)."""
    allowed = set()
    for action, roles in STAFF_ACTIONS.items():
        if not is_allowed(contract.status, action) or not user.has_role(*roles):
            continue
        if action is Action.APPROVE and not may_approve(contract, user):
            continue
        if action is Action.APPROVE and not contract.documents:
            continue
        allowed.add(action)
    return frozenset(allowed)


def may_approve(contract: Contract, user: StaffUser) -> bool:
    """Four eyes: whoever created the contract or uploaded one of its documents does not confirm its 決裁."""
    return user.id != contract.created_by_id and all(d.uploaded_by_id != user.id for d in contract.documents)


def permissions(contract: Contract, user: StaffUser) -> dict[str, bool]:
    """allowed_actions() for templates: {"send": True, "approve": False, ...}."""
    allowed = allowed_actions(contract, user)
    return {action.value: action in allowed for action in Action}


# ---------------------------------------------------------------- locking

_LOCKED = "lifecycle.locked"  # (root transaction, {contract ids}) in session.info


def lock(session: Session, contract_id: int) -> Contract:
    """Lock the contract's row for the rest of the transaction and return it read afresh.

    SELECT ... FOR UPDATE: on PostgreSQL a second transaction waits here until the first has
    committed; on SQLite the statement takes the database's write lock (portal.db begins the
    transaction IMMEDIATE for it), which serialises the same way. Everything the session had
    loaded is expired, so the state checked after this call is the committed one.
    Idempotent within a transaction. Raises NotFound when there is no such contract.
    """
    transaction = session.get_transaction()
    held = session.info.get(_LOCKED)
    if held is not None and transaction is not None and held[0] is transaction and contract_id in held[1]:
        return get(session, contract_id)
    session.flush()
    session.expire_all()  # read the state again: another transaction may have changed it before the lock
    # The locking statement reads the contract too, and what the transitions use (signers, documents and
    # their revisions, who made it) comes in three more statements, not one per row.
    contract = session.scalar(select(Contract).where(Contract.id == contract_id).with_for_update(of=Contract)
                              .options(*_LOCKED_GRAPH))
    transaction = session.get_transaction()
    if held is None or held[0] is not transaction:
        held = (transaction, set[int]())
        session.info[_LOCKED] = held
    held[1].add(contract_id)
    if contract is None:
        raise NotFound("契約が見つかりません。")
    return contract


_LOCKED_GRAPH = (selectinload(Contract.parties),
                 selectinload(Contract.documents).selectinload(ContractDocument.revisions),
                 joinedload(Contract.created_by, innerjoin=True))


def get(session: Session, contract_id: int) -> Contract:
    """The contract, read without a lock. Raises NotFound."""
    contract = session.get(Contract, contract_id)
    if contract is None:
        raise NotFound("契約が見つかりません。")
    return contract


def contract_id_of_party(session: Session, party_id: int) -> int | None:
    return session.scalar(select(Party.contract_id).where(Party.id == party_id))


# ---------------------------------------------------------------- the hook after every change


@dataclass(frozen=True)
class Transition:
    """One change of a contract's status, as after_transition() and its listeners see it."""

    contract: Contract
    action: Action
    before: ContractStatus
    after: ContractStatus
    actor: Actor
    now: datetime
    request: RequestInfo = field(default_factory=RequestInfo)
    party: Party | None = None  # who signed or declined, or (SEND) who is asked first
    details: dict[str, Any] = field(default_factory=dict)
    requested: Party | None = None  # the signer asked to sign by this transition
    link: str = ""  # where `requested` signs (sent in their mail only, never stored)


AUDIT_ACTIONS = {
    Action.EDIT_DOCUMENTS: AuditAction.CONTRACT_APPROVAL_VOIDED,
    Action.EDIT: AuditAction.CONTRACT_APPROVAL_VOIDED,
    Action.REQUEST_APPROVAL: AuditAction.CONTRACT_APPROVAL_REQUESTED,
    Action.APPROVE: AuditAction.CONTRACT_APPROVED,
    Action.SEND: AuditAction.CONTRACT_SENT,
    Action.SIGN: AuditAction.CONTRACT_SIGNED,
    Action.DECLINE: AuditAction.CONTRACT_DECLINED,
    Action.COMPLETE: AuditAction.CONTRACT_COMPLETED,
    Action.PAPER: AuditAction.CONTRACT_SWITCHED_TO_PAPER,
    Action.CANCEL: AuditAction.CONTRACT_CANCELLED,
}

# Called after every transition, in the same transaction (webhook outboxes register here).
# The webhook event each transition writes, in the same transaction as the change.
WEBHOOK_EVENTS = {
    Action.SEND: WebhookEventType.CONTRACT_SENT,
    Action.SIGN: WebhookEventType.CONTRACT_SIGNED,
    Action.COMPLETE: WebhookEventType.CONTRACT_COMPLETED,
    Action.DECLINE: WebhookEventType.CONTRACT_DECLINED,
    Action.PAPER: WebhookEventType.CONTRACT_PAPER,
    Action.CANCEL: WebhookEventType.CONTRACT_CANCELLED,
}
LISTENERS: list[Callable[[Session, Transition], None]] = []


def after_transition(session: Session, change: Transition) -> None:
    """The one place every transition passes: its audit events, then the mails, then the listeners."""
    contract, now = change.contract, change.now
    record(session, actor=change.actor, action=AUDIT_ACTIONS[change.action], subject=contract, now=now,
           ip=change.request.ip, user_agent=change.request.user_agent, **change.details)
    if change.requested is not None:
        party = change.requested
        record(session, actor=SYSTEM, action=AuditAction.CONTRACT_SIGNATURE_REQUESTED, subject=contract, now=now,
               party=party.position, email=party.email, role=str(party.role))
        notifications.signature_requested(session, contract, party, link=change.link, now=now)
    if change.action is Action.DECLINE and change.party is not None:
        notifications.contract_declined(session, contract, change.party, now=now)
    elif change.action in (Action.PAPER, Action.CANCEL):
        notifications.contract_closed(session, contract, now=now)
    elif change.action is Action.COMPLETE:
        notifications.contract_completed(session, contract, now=now)
    elif change.action in (Action.REQUEST_APPROVAL, Action.APPROVE) and change.actor.user_id is not None:
        staff = session.get(StaffUser, change.actor.user_id)
        if staff is not None and change.action is Action.REQUEST_APPROVAL:
            notifications.approval_requested(session, contract, requester=staff, now=now)
        elif staff is not None:
            notifications.approval_confirmed(session, contract, approver=staff, now=now)
    event = WEBHOOK_EVENTS.get(change.action)
    if event is not None:
        enqueue_event(session, event, contract, now=now, party=change.party if change.action is Action.SIGN else None)
    for listener in LISTENERS:
        listener(session, change)


def _apply(session: Session, contract: Contract, action: Action, after: ContractStatus, *, actor: Actor,
           now: datetime, request: RequestInfo | None = None, signer: Party | None = None,
           requested: Party | None = None, **details: Any) -> Transition:
    before = contract.status
    if after not in TRANSITIONS[(before, action)]:
        raise AssertionError(f"{before} --{action}--> {after} is not in the table")
    contract.status = after
    contract.updated_at = now
    link = _request_party(session, requested, now=now) if requested is not None else ""
    change = Transition(contract, action, before, after, actor, now, request or RequestInfo(), signer, details,
                        requested, link)
    after_transition(session, change)
    return change


def _locked(session: Session, contract: Contract, action: Action) -> Contract:
    locked = lock(session, contract.id)
    require(locked, action)
    return locked


# ---------------------------------------------------------------- drafting and 決裁


def documents_changed(session: Session, contract: Contract, *, actor: StaffUser, now: datetime,
                      why: str, action: Action = Action.EDIT_DOCUMENTS) -> None:
    """Call after adding or removing a document (under lock(), checked with require(EDIT_DOCUMENTS)),
    or with action=EDIT after changing the metadata or signers (under lock_for_edit()).

    After 決裁 the approval no longer covers what was approved: it is voided and the contract is a
    下書き again, so the approver must confirm the 決裁 once more before it can be sent.
    """
    require(contract, action)
    contract.updated_at = now
    if contract.status is not S.APPROVED:
        return
    previous: dict[str, Any] = {"previous_reference": contract.approval_reference,
                                "previous_digest": contract.approved_digest}
    contract.approved_at = None
    contract.approved_by = None
    contract.approved_digest = ""
    _apply(session, contract, action, S.DRAFT, actor=SYSTEM, now=now, reason=why, by=actor.email, **previous)


def lock_for_edit(session: Session, contract_id: int) -> Contract:
    """lock() the contract and check that its metadata and signers may still be changed (not sent yet).

    Raises TransitionRefused (「この契約はすでに…」) once it is sent or closed; NotFound.
    """
    contract = lock(session, contract_id)
    require(contract, Action.EDIT)
    return contract


def request_approval(session: Session, contract: Contract, *, actor: StaffUser, now: datetime,
                     digest: str) -> None:
    contract = _locked(session, contract, Action.REQUEST_APPROVAL)
    if not contract.documents:
        raise DocumentsMissing("文書（PDF）をアップロードしてから承認を依頼してください。")
    _apply(session, contract, Action.REQUEST_APPROVAL, S.AWAITING_APPROVAL, actor=Actor.staff(actor), now=now,
           digest=digest)


def approve(session: Session, contract: Contract, *, approver: StaffUser, reference: str, digest: str,
            now: datetime, request: RequestInfo | None = None) -> None:
    """Record the confirmed 決裁 (the caller checked who may confirm it): 承認済み（送信待ち）."""
    contract = _locked(session, contract, Action.APPROVE)
    contract.approval_reference = reference
    contract.approved_by = approver
    contract.approved_at = now
    contract.approved_digest = digest
    _apply(session, contract, Action.APPROVE, S.APPROVED, actor=Actor.staff(approver), now=now, request=request,
           reference=reference, digest=digest, documents=[d.original.sha256 for d in contract.documents])


# ---------------------------------------------------------------- sending and signing


def next_signer_status(party: Party) -> ContractStatus:
    return S.AWAITING_COUNTERPARTY if party.role is PartyRole.COUNTERPARTY else S.AWAITING_AGENCY


def send(session: Session, contract: Contract, *, actor: StaffUser, now: datetime,
         request: RequestInfo | None = None) -> Party:
    """承認済み → 署名待ち: the first signer in order is asked (their mail is queued). Returns that party."""
    contract = _locked(session, contract, Action.SEND)
    refusal = sending_refusal(contract, now)
    if refusal:
        raise SendingNotOpen(refusal, status=contract.status, action=Action.SEND)
    party = _first_waiting(contract)
    contract.sent_at = now
    contract.sent_by = actor
    _apply(session, contract, Action.SEND, next_signer_status(party), actor=Actor.staff(actor), now=now,
           request=request, requested=party, digest=contract.approved_digest)
    return party


def sending_refusal(contract: Contract, now: datetime) -> str | None:
    """Why the contract cannot be sent at `now` although its state allows it (the department's 導入日)."""
    return contract.department.sending_refusal(now.astimezone(JST).date())


def _first_waiting(contract: Contract) -> Party:
    party = next((p for p in contract.parties if p.status is PartyStatus.WAITING), None)
    if party is None:
        raise AssertionError("a contract always has a waiting signer before it is sent")
    return party


def _request_party(session: Session, party: Party, *, now: datetime) -> str:
    """Ask `party` to sign now; returns the link for their mail.

    A counterparty gets a new e-mail link (a SignatureRequest, token stored hashed); the agency
    approver signs logged in (password + TOTP), so their mail only points at the page.
    """
    party.status = PartyStatus.REQUESTED
    party.requested_at = now
    if party.role is PartyRole.AGENCY:
        return external_url("signature_requests.staff_review", party_id=party.id)
    token, token_hash = new_token()
    session.add(SignatureRequest(party=party, token_hash=token_hash, status=RequestStatus.OPEN, created_at=now,
                                 expires_at=link_expiry(party.contract)))
    return external_url("signature_requests.review", token=token)


@dataclass(frozen=True)
class Reissued:
    party: Party  # the signer whose turn it is
    link: str  # their new link (for their mail only, never stored)


def reissue_link(session: Session, contract: Contract, *, now: datetime, keep_previous: bool = False) -> Reissued:
    """A fresh link for the signer whose turn it is; their previous links stop working.

    For 「署名依頼を再送する」 (the old mail may be lost or at a wrong address) and, with `keep_previous`,
    for the reminders before 締結予定日: then the previous links (sent to the same address) keep
    opening the signer's current request, so a vendor whose page is open when the reminder goes out
    can still finish. The caller mails the link and writes its audit event. The new request keeps the
    wrong-アクセスコード count of the one it replaces, so a new link never unlocks a locked one. An
    agency signer signs logged in: their link is their page. Raises TransitionRefused unless the
    contract is 署名待ち.
    """
    contract = lock(session, contract.id)
    if not contract.status.is_signing or contract.current_party is None:
        before_sending = contract.status in (S.DRAFT, S.AWAITING_APPROVAL, S.APPROVED)
        sentence = NOT_SENT if before_sending else STATE_SENTENCES[contract.status]
        raise TransitionRefused(f"{sentence}署名用リンクの再発行はできません。", status=contract.status,
                                action=Action.SIGN)
    party = contract.current_party
    if party.role is PartyRole.AGENCY:
        return Reissued(party, external_url("signature_requests.staff_review", party_id=party.id))
    previous = list(session.scalars(select(SignatureRequest).where(SignatureRequest.party_id == party.id,
                                                                   SignatureRequest.status.in_(LIVE_LINKS))))
    for signature_request in previous:
        if not keep_previous:
            _close_request(session, signature_request, RequestStatus.CANCELLED, now=now, why=MAIL_LINK_REPLACED)
        elif signature_request.status is RequestStatus.OPEN:
            signature_request.status = RequestStatus.SUPERSEDED
            signature_request.closed_at = now
    token, token_hash = new_token()
    session.add(SignatureRequest(party=party, token_hash=token_hash, status=RequestStatus.OPEN, created_at=now,
                                 expires_at=link_expiry(contract),
                                 failed_code_attempts=max((r.failed_code_attempts for r in previous), default=0)))
    session.flush()
    return Reissued(party, external_url("signature_requests.review", token=token))


# Requests whose link still opens the signer's page: the current one, and those a reminder superseded.
LIVE_LINKS = (RequestStatus.OPEN, RequestStatus.SUPERSEDED)


def link_expiry(contract: Contract) -> datetime:
    """Signing links work until the end of the planned conclusion date in Japan."""
    next_day = contract.planned_conclusion_date + timedelta(days=1)
    return datetime.combine(next_day, time(0), tzinfo=JST)


@dataclass(frozen=True)
class SignOutcome:
    party: Party
    already_signed: bool
    all_signed: bool


def lock_for_party(session: Session, party_id: int) -> Party | None:
    """lock() the contract of a party and return the party read afresh (None when there is none)."""
    loaded = session.identity_map.get(session.identity_key(Party, party_id))
    # a party never moves to another contract: the one the session has loaded names the row to lock
    contract_id = loaded.__dict__.get("contract_id") if loaded is not None else None
    if contract_id is None:
        contract_id = contract_id_of_party(session, party_id)
    if contract_id is None:
        return None
    lock(session, contract_id)
    return session.get(Party, party_id)


def check_may_sign(party: Party) -> bool:
    """Under lock(): False when `party` has signed already; raises the refusal when it may not sign now."""
    if party.status is PartyStatus.SIGNED:
        return False
    require(party.contract, Action.SIGN)
    if party.status is not PartyStatus.REQUESTED:
        raise NotYourTurn("まだ署名の順番ではありません。前の署名者の署名をお待ちください。")
    return True


class NotYourTurn(DomainError):
    status_code = 409


def require_open_link(signature_request: SignatureRequest | None, contract: Contract) -> None:
    """Under lock(): refuse a link that stopped working after it was opened (reissue_link() sent a newer
    one, or the contract was closed), so that signing ∥ 「署名依頼を再送する」 ends one way only."""
    if signature_request is None or signature_request.status is not RequestStatus.CANCELLED:
        return
    if contract.status.is_signing:
        raise LinkSuperseded(LINK_REPLACED, status=contract.status,
                             action=Action.SIGN).for_department(contract.department)
    raise SigningClosed(SIGNING_CLOSED, status=contract.status, action=Action.SIGN)


def require_same_access_code(contract: Contract, entered_hash: str | None, action: Action) -> None:
    """Under lock(): refuse a signer who entered the アクセスコード that staff have since changed
    (entered_hash: the code's hash when this signer's code was checked; None: no code was asked)."""
    if entered_hash is not None and contract.access_code_hash != entered_hash:
        raise TransitionRefused(ACCESS_CODE_CHANGED, status=contract.status, action=action)


def sign(session: Session, party: Party, *, actor: Actor, methods: list[str], request: RequestInfo,
         now: datetime, signature_request: SignatureRequest | None = None, **details: Any) -> SignOutcome:
    """Record `party`'s signature (its signed revisions are already added) and ask the next signer.

    Call check_may_sign() under lock() first. When everyone has signed, the contract stays in its
    締結処理中 until portal.contracts.completion (a worker job) makes it 締結済み.
    """
    contract = party.contract
    party.status = PartyStatus.SIGNED
    party.signed_at = now
    party.signed_ip = request.ip[:64]
    party.signed_user_agent = request.user_agent[:1000]
    party.auth_methods = list(methods)
    if signature_request is not None:
        _close_request(session, signature_request, RequestStatus.COMPLETED, now=now)
    others = session.scalars(select(SignatureRequest).where(SignatureRequest.party_id == party.id,
                                                            SignatureRequest.status.in_(LIVE_LINKS))).all()
    for other in others:  # a reminder's link, or the ones it superseded
        _close_request(session, other, RequestStatus.COMPLETED, now=now)
    following = next((p for p in contract.parties if p.status is PartyStatus.WAITING), None)
    after = next_signer_status(following) if following is not None else S.COMPLETING
    _apply(session, contract, Action.SIGN, after, actor=actor, now=now, request=request, signer=party,
           requested=following, party=party.position, name=party.name, email=party.email,
           auth_methods=list(methods), **details)
    return SignOutcome(party, already_signed=False, all_signed=following is None)


def decline(session: Session, party: Party, *, reason: str, actor: Actor, request: RequestInfo, now: datetime,
            signature_request: SignatureRequest | None = None, methods: Sequence[str] = (),
            access_code_hash: str | None = None) -> None:
    """差し戻し by the signer whose turn it is: every link stops working, staff are mailed.

    access_code_hash: as for require_same_access_code()."""
    contract = lock(session, party.contract_id)
    session.refresh(party)
    require(contract, Action.DECLINE)
    if party.status is PartyStatus.SIGNED:  # e.g. 「署名」 and 「差し戻す」 pressed at once in two tabs
        raise TransitionRefused(ALREADY_SIGNED_NO_DECLINE, status=contract.status, action=Action.DECLINE)
    if party.status is not PartyStatus.REQUESTED:
        raise SigningClosed("この署名依頼には対応できません（署名済み、または取り消されています）。",
                            status=contract.status, action=Action.DECLINE)
    require_open_link(signature_request, contract)
    require_same_access_code(contract, access_code_hash, Action.DECLINE)
    party.status = PartyStatus.DECLINED
    party.declined_at = now
    party.decline_reason = checked_reason(reason, what="差し戻しの理由")
    if signature_request is not None:
        _close_request(session, signature_request, RequestStatus.DECLINED, now=now)
    _close_open_requests(session, contract, now=now)
    contract.status_reason = party.decline_reason
    _apply(session, contract, Action.DECLINE, S.DECLINED, actor=actor, now=now, request=request, signer=party,
           party=party.position, reason=party.decline_reason, auth_methods=list(methods))


def complete(session: Session, contract: Contract, *, now: datetime, **details: Any) -> None:
    """署名待ち → 締結済み (portal.contracts.completion has added the final revisions and the certificate)."""
    require(contract, Action.COMPLETE)
    require_all_signed(contract)
    contract.completed_at = now
    _apply(session, contract, Action.COMPLETE, S.COMPLETED, actor=SYSTEM, now=now, **details)


def require_all_signed(contract: Contract) -> None:
    if not contract.parties or any(p.status is not PartyStatus.SIGNED for p in contract.parties):
        raise TransitionRefused("全ての署名者の署名が揃っていないため、締結済みにできません。",
                                status=contract.status, action=Action.COMPLETE)


# ---------------------------------------------------------------- closing


def fall_back_to_paper(session: Session, contract: Contract, *, reason: str, now: datetime,
                       actor: StaffUser | None = None) -> None:
    """Stop e-signing: open links stop working, status 紙契約へ移行, staff are told."""
    _close(session, contract, Action.PAPER, S.PAPER, reason=reason, now=now, actor=actor)


def cancel(session: Session, contract: Contract, *, reason: str, actor: StaffUser, now: datetime) -> None:
    """取消 with a reason; links stop working."""
    _close(session, contract, Action.CANCEL, S.CANCELLED, reason=reason, now=now, actor=actor)


REASON_MAX_LENGTH = 2000


def checked_reason(reason: str, *, what: str = "理由") -> str:
    """A reason as people typed it, stripped; refused when empty, too long or with control characters.

    Raises DomainError. Line breaks and tabs are kept: reasons are free text shown as written.
    """
    reason = reason.strip()
    if not reason:
        raise DomainError(f"{what}を入力してください。")
    if len(reason) > REASON_MAX_LENGTH:
        raise DomainError(f"{what}は{REASON_MAX_LENGTH}文字以内で入力してください（{len(reason)}文字あります）。")
    if any(unicodedata.category(ch) in ("Cc", "Cf") and ch not in "\n\r\t" for ch in reason):
        raise DomainError(f"{what}に使えない制御文字が含まれています。")
    return reason


def _close(session: Session, contract: Contract, action: Action, after: ContractStatus, *, reason: str,
           now: datetime, actor: StaffUser | None) -> None:
    contract = _locked(session, contract, action)
    reason = checked_reason(reason)
    _close_open_requests(session, contract, now=now)
    contract.status_reason = reason
    _apply(session, contract, action, after, actor=Actor.staff(actor) if actor else SYSTEM, now=now,
           reason=contract.status_reason)


MAIL_LINK_REPLACED = "新しい署名用リンクを送ったため、"
MAIL_LINK_CLOSED = {RequestStatus.COMPLETED: "署名済みのため、", RequestStatus.DECLINED: "差し戻されたため、",
                    RequestStatus.CANCELLED: "契約の手続きが終了したため、"}


def _close_request(session: Session, signature_request: SignatureRequest, status: RequestStatus, *,
                   now: datetime, why: str = "") -> None:
    """The link stops working; a mail carrying it that has not gone out yet never will."""
    signature_request.status = status
    signature_request.closed_at = now
    withdraw_link_mails(session, signature_request.token_hash, now=now, why=why or MAIL_LINK_CLOSED.get(status, ""))


def _close_open_requests(session: Session, contract: Contract, *, now: datetime) -> None:
    party_ids = [p.id for p in contract.parties]
    query = select(SignatureRequest).where(SignatureRequest.party_id.in_(party_ids),
                                           SignatureRequest.status.in_(LIVE_LINKS))
    for signature_request in list(session.scalars(query)):
        _close_request(session, signature_request, RequestStatus.CANCELLED, now=now)
