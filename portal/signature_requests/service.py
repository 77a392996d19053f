"""The signer's side: open a link, check the access code, sign (locked, idempotent) and decline.

complete_signature() is the only code that signs for a party, and only on that party's own action:
a counterparty through its e-mail link (plus the access code when set), an agency approver logged
in with password and TOTP (電子署名法 Q&A: the provider signs mechanically on the user's instruction).
The statuses it changes are changed by portal.contracts.lifecycle.
"""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass
from datetime import datetime

from flask import current_app
from sqlalchemy import select, update
from sqlalchemy.orm import Session
from sqlalchemy.orm.attributes import set_committed_value

from portal.audit.actions import AuditAction
from portal.audit.service import Actor, RequestInfo, record
from portal.auth import passwords
from portal.auth.models import StaffUser
from portal.contracts import completion, documents, lifecycle, notifications
from portal.contracts.lifecycle import SigningClosed
from portal.contracts.models import (
    DocumentRevision,
    Party,
    PartyRole,
    RequestStatus,
    RevisionKind,
    SignatureRequest,
)
from portal.contracts.signatures import approve_documents
from portal.errors import DomainError, LinkExpired, NotFound
from portal.formatting import wareki
from portal.text import has_control_characters
from portal.tokens import hash_token

UNKNOWN_LINK = ("このリンクは使えません。リンクの有効期限が切れたか、新しいリンクが送られた可能性があります。"
                "最新の署名依頼メールのリンクを開くか、担当課にお問い合わせください。")
REPLACED_LINK = lifecycle.LINK_REPLACED
CLOSED_LINK = "この署名依頼は取り消されたか、紙の契約に移行しました。担当課にお問い合わせください。"


ACCESS_CODE_INPUT_MAX_LENGTH = 100  # codes are 4-32 characters; anything much longer is not a try


class AccessCodeLocked(DomainError):
    status_code = 423


@dataclass(frozen=True)
class CodeCheck:
    """The answer to one アクセスコード entry: accepted, or how many wrong entries are left (0: now locked).

    code_hash: the stored hash the entry was checked against (a later change makes it stale).
    """

    accepted: bool
    remaining: int
    code_hash: str | None = None


@dataclass(frozen=True)
class SignerAuth:
    """How the signer proved who they are, and from where (R3, R5).

    access_code_hash: the contract's アクセスコード hash when this signer's code was checked (None
    when no code was asked); signing or declining is refused if staff changed the code since.
    """

    methods: tuple[str, ...]
    request: RequestInfo
    access_code_hash: str | None = None


@dataclass(frozen=True)
class SignatureOutcome:
    party: Party
    already_signed: bool
    all_signed: bool  # the contract is 締結処理中 (or already 締結済み): completion is queued


# ---------------------------------------------------------------- opening links


def open_request(session: Session, token: str, *, now: datetime) -> SignatureRequest:
    """The request behind a link. Completed requests are returned (the page says 既に署名済みです); a
    link a reminder superseded opens the signer's current request.

    Raises NotFound for an unknown token, LinkExpired (410) after the planned conclusion date,
    SigningClosed (410) when the contract was cancelled or moved to paper.
    """
    request = session.scalar(select(SignatureRequest).where(SignatureRequest.token_hash == hash_token(token)))
    if request is None:
        raise NotFound(UNKNOWN_LINK)
    if request.status is RequestStatus.SUPERSEDED:
        current = session.scalar(select(SignatureRequest).where(SignatureRequest.party_id == request.party_id,
                                                                SignatureRequest.status == RequestStatus.OPEN)
                                 .order_by(SignatureRequest.id.desc()).limit(1))
        if current is None:  # closed in the same moment: say so as for a replaced link
            raise SigningClosed(REPLACED_LINK, status=request.party.contract.status,
                                action=lifecycle.Action.SIGN).for_department(request.party.contract.department)
        request = current
    if request.status in (RequestStatus.COMPLETED, RequestStatus.DECLINED):
        return request
    if request.status is RequestStatus.CANCELLED and request.party.contract.status.is_signing:
        raise SigningClosed(REPLACED_LINK, status=request.party.contract.status,
                            action=lifecycle.Action.SIGN).for_department(request.party.contract.department)
    if request.status is RequestStatus.CANCELLED:
        raise SigningClosed(CLOSED_LINK, status=request.party.contract.status,
                            action=lifecycle.Action.SIGN).for_department(request.party.contract.department)
    if request.is_expired(now):
        contract = request.party.contract
        raise LinkExpired(
            f"署名用リンクの有効期限（締結予定日 {wareki(contract.planned_conclusion_date)}）が切れています。"
            f"{contract.department.name}（担当: {contract.created_by.name}）にお問い合わせください。"
        ).for_department(contract.department)
    return request


def staff_party(session: Session, party_id: int, *, user: StaffUser) -> Party:
    """The agency party that `user` signs as. Raises NotFound for anyone else's party (no signing for others)."""
    party = session.get(Party, party_id)
    if party is None or party.role is not PartyRole.AGENCY or party.staff_user_id != user.id:
        raise NotFound("署名依頼が見つかりません。")
    return party


# ---------------------------------------------------------------- access code


def normalise_access_code(code: str) -> str:
    """The code as typed, NFKC-normalised (full-width digits are digits) and stripped.

    Raises DomainError for input that cannot be a code (control characters, far too long): such
    entries are refused without counting as a try.
    """
    if len(code) > ACCESS_CODE_INPUT_MAX_LENGTH:
        raise DomainError(f"アクセスコードが長すぎます（{len(code)}文字）。"
                          "担当課からお知らせしたコードを入力してください。")
    code = unicodedata.normalize("NFKC", code).strip()
    if has_control_characters(code):
        raise DomainError("アクセスコードに使えない文字（改行や制御文字）が含まれています。")
    return code


def access_code_limit() -> int:
    return int(current_app.config["ACCESS_CODE_MAX_ATTEMPTS"])


def is_locked(request: SignatureRequest) -> bool:
    return request.party.contract.has_access_code and request.failed_code_attempts >= access_code_limit()


def locked_message(request: SignatureRequest) -> str:
    """What a locked link says: why, and whom to call (the department's contact, else the creator's mail)."""
    contract = request.party.contract
    department = contract.department
    contacts = [f"電話 {department.contact_phone}"] if department.contact_phone else []
    contacts.append(f"メール {department.contact_email or contract.created_by.email}")
    return (f"アクセスコードの入力を{access_code_limit()}回間違えたため、このリンクはロックされました。"
            f"ロックの解除は、{department.name}（{'、'.join(contacts)}）にご連絡ください。")


def check_access_code(session: Session, request: SignatureRequest, code: str, *, now: datetime,
                      info: RequestInfo) -> CodeCheck:
    """Accepted when the contract has no access code or `code` matches; counts failures.

    Every check first takes one attempt with a conditional UPDATE and gives it back when the code
    is right, so parallel guesses cannot try more than ACCESS_CODE_MAX_ATTEMPTS wrong codes. The
    entry that uses up the last attempt mails the department (once) and is logged. Raises
    AccessCodeLocked when the link was already locked, DomainError for input that cannot be a code
    (nothing counted). The caller commits in the other cases.
    """
    contract = request.party.contract
    limit = access_code_limit()
    if not contract.access_code_hash:
        return CodeCheck(True, limit)
    code = normalise_access_code(code)
    counter = SignatureRequest.failed_code_attempts
    attempts = session.execute(
        update(SignatureRequest).where(SignatureRequest.id == request.id, counter < limit)
        .values(failed_code_attempts=counter + 1).returning(counter)
    ).scalar_one_or_none()
    if attempts is None:
        raise AccessCodeLocked(locked_message(request))
    if code and passwords.verify_secret(contract.access_code_hash, code):
        attempts = session.execute(update(SignatureRequest).where(SignatureRequest.id == request.id)
                                   .values(failed_code_attempts=counter - 1).returning(counter)).scalar_one()
        set_committed_value(request, "failed_code_attempts", attempts)
        return CodeCheck(True, limit - attempts, contract.access_code_hash)
    set_committed_value(request, "failed_code_attempts", attempts)
    actor = Actor.signer(request.party.email)
    record(session, actor=actor, action=AuditAction.CONTRACT_ACCESS_CODE_FAILED,
           subject=contract, now=now, ip=info.ip, user_agent=info.user_agent, attempts=attempts)
    if attempts >= limit:
        record(session, actor=actor, action=AuditAction.CONTRACT_ACCESS_CODE_LOCKED, subject=contract, now=now,
               ip=info.ip, user_agent=info.user_agent, attempts=attempts, party=request.party.position)
        notifications.access_code_locked(session, contract, request.party, attempts=attempts, now=now)
    return CodeCheck(False, max(limit - attempts, 0))


# ---------------------------------------------------------------- completing


def complete_signature(session: Session, party: Party, *, auth: SignerAuth, now: datetime,
                       request: SignatureRequest | None = None) -> SignatureOutcome:
    """Sign every document of the envelope for `party`, then request the next signer or queue completion.

    The PDF work (signatures, timestamps) runs before any lock is taken; then the contract is locked,
    its state checked again, and only the first of two concurrent requests stores its signed files
    (the other's are discarded: it returns already_signed=True, or raises the refusal when the
    contract was closed meanwhile). Raises NotYourTurn, SigningClosed, or a portal.signing error
    (TimestampUnavailable, ...) — then nothing has been changed and the caller rolls back.
    Call with nothing pending in the session.
    """
    party_id = party.id
    contract = party.contract
    if not lifecycle.check_may_sign(party):
        return SignatureOutcome(party, already_signed=True, all_signed=contract.status.is_completing
                                or contract.status.is_completed)
    signed_over = {document.id: document.current.id for document in contract.documents}
    signed = {document.id: data for document, data in approve_documents(contract, party, now=now)}

    party = lifecycle.lock_for_party(session, party_id) or party
    contract = party.contract
    if not lifecycle.check_may_sign(party):
        return SignatureOutcome(party, already_signed=True, all_signed=contract.status.is_completing
                                or contract.status.is_completed)
    lifecycle.require_open_link(request, contract)
    lifecycle.require_same_access_code(contract, auth.access_code_hash, lifecycle.Action.SIGN)
    if {document.id: document.current.id for document in contract.documents} != signed_over:
        raise lifecycle.TransitionRefused("署名の処理中に文書が変わりました。もう一度お試しください。",
                                          status=contract.status, action=lifecycle.Action.SIGN)
    stored_files = documents.store_files([(document, document.current.number + 1, signed[document.id])
                                          for document in contract.documents])
    for document, stored in zip(contract.documents, stored_files, strict=True):
        document.revisions.append(DocumentRevision(
            number=document.current.number + 1, kind=RevisionKind.SIGNED, storage_key=stored.key,
            sha256=stored.sha256, size=stored.size, party_id=party.id, created_at=now))
    outcome = lifecycle.sign(
        session, party, actor=_actor(party), methods=list(auth.methods), request=auth.request, now=now,
        signature_request=request,
        documents=[{"filename": d.filename, "sha256": d.current.sha256} for d in contract.documents])
    if outcome.all_signed:
        completion.queue_completion(session, contract, now=now)
    return SignatureOutcome(party, already_signed=False, all_signed=outcome.all_signed)


def _actor(party: Party) -> Actor:
    if party.staff_user is not None:
        return Actor.staff(party.staff_user)
    return Actor.signer(party.email)


# ---------------------------------------------------------------- declining


def decline(session: Session, party: Party, *, reason: str, auth: SignerAuth, now: datetime,
            request: SignatureRequest | None = None) -> None:
    """差し戻し: the signer refuses with a reason; the contract stops and staff are mailed.

    Raises DomainError without a reason, SigningClosed in the wrong state.
    """
    reason = lifecycle.checked_reason(reason, what="差し戻しの理由")
    lifecycle.decline(session, party, reason=reason, actor=_actor(party), request=auth.request, now=now,
                      signature_request=request, methods=auth.methods, access_code_hash=auth.access_code_hash)
