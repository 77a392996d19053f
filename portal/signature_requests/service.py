"""The signing step: open a link, complete a signature (locked, idempotent), decline, move to the next signer.

complete_signature() is the only code that signs for a party, and only on that party's own action:
a counterparty through its e-mail link (plus the access code when set), an agency approver logged
in with password and TOTP (R2, 電子署名法 Q&A: the provider signs mechanically on the user's instruction).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, time, timedelta

from flask import current_app
from sqlalchemy import select, update
from sqlalchemy.orm import Session

from portal.audit.actions import AuditAction
from portal.audit.service import Actor, RequestInfo, record
from portal.auth import passwords
from portal.auth.models import StaffUser
from portal.clock import JST
from portal.contracts.models import (
    Contract,
    ContractStatus,
    DocumentRevision,
    Party,
    PartyRole,
    PartyStatus,
    RevisionKind,
)
from portal.errors import DomainError, LinkExpired, NotFound
from portal.mail.service import enqueue
from portal.signature_requests.models import RequestStatus, SignatureRequest
from portal.signature_requests.signing import approve_documents
from portal.storage import get_store
from portal.tokens import hash_token, new_token
from portal.urls import external_url

AUTH_EMAIL_LINK = "email_link"
AUTH_ACCESS_CODE = "access_code"
AUTH_PASSWORD = "password"  # noqa: S105 - the name of a method, not a secret
AUTH_TOTP = "totp"
AUTH_LABELS = {
    AUTH_EMAIL_LINK: "メール認証（署名依頼メールのリンク）",
    AUTH_ACCESS_CODE: "アクセスコード",
    AUTH_PASSWORD: "パスワード",
    AUTH_TOTP: "ワンタイムパスワード（TOTP）",
}

UNKNOWN_LINK = "このリンクは無効です。メールに記載されたURLをもう一度ご確認ください。"
CLOSED_LINK = "この署名依頼は取り消されたか、紙の契約に移行しました。担当課にお問い合わせください。"


class NotYourTurn(DomainError):
    status_code = 409


class AccessCodeRequired(DomainError):
    """The contract has an access code and it was not given or was wrong."""


class AccessCodeLocked(DomainError):
    status_code = 423


class SigningClosed(DomainError):
    status_code = 410


@dataclass(frozen=True)
class SignerAuth:
    """How the signer proved who they are, and from where (R3, R5)."""

    methods: tuple[str, ...]
    request: RequestInfo


@dataclass(frozen=True)
class SignatureOutcome:
    party: Party
    already_signed: bool
    completed: bool


# ---------------------------------------------------------------- opening requests


def request_next_signature(session: Session, contract: Contract, *, now: datetime) -> Party | None:
    """Ask the first waiting signer in order to sign (mail queued); None when nobody is left."""
    party = next((p for p in contract.parties if p.status is PartyStatus.WAITING), None)
    if party is None:
        return None
    party.status = PartyStatus.REQUESTED
    party.requested_at = now
    contract.status = (ContractStatus.AWAITING_COUNTERPARTY if party.role is PartyRole.COUNTERPARTY
                       else ContractStatus.AWAITING_AGENCY)
    contract.updated_at = now
    link = _issue_link(session, party, now=now)
    template = "signature_request" if party.role is PartyRole.COUNTERPARTY else "agency_signature_request"
    enqueue(session, template, party.email, _mail_context(contract, party, link), to_name=party.name,
            now=now)
    record(session, actor=Actor("system", "system"), action=AuditAction.CONTRACT_SIGNATURE_REQUESTED,
           subject=contract, now=now, party=party.position, email=party.email, role=str(party.role))
    return party


def _issue_link(session: Session, party: Party, *, now: datetime) -> str:
    if party.role is PartyRole.AGENCY:
        # The agency signs logged in (password + TOTP); the mail only points at the page.
        return external_url("signature_requests.staff_review", party_id=party.id)
    token, token_hash = new_token()
    session.add(SignatureRequest(party=party, token_hash=token_hash, status=RequestStatus.OPEN, created_at=now,
                                 expires_at=link_expiry(party.contract)))
    session.flush()
    return external_url("signature_requests.review", token=token)


def link_expiry(contract: Contract) -> datetime:
    """Links work until the end of the planned conclusion date in Japan (R15)."""
    next_day = contract.planned_conclusion_date + timedelta(days=1)
    return datetime.combine(next_day, time(0), tzinfo=JST)


def _mail_context(contract: Contract, party: Party, link: str) -> dict[str, object]:
    config = current_app.config
    return {"contract": contract, "party": party, "link": link, "requester": contract.created_by,
            "department": contract.department, "contact_phone": config["CONTACT_PHONE"],
            "contact_email": config["CONTACT_EMAIL"] or contract.created_by.email,
            "has_access_code": contract.has_access_code and party.role is PartyRole.COUNTERPARTY}


def close_open_requests(session: Session, contract: Contract, *, now: datetime) -> None:
    """Links of this contract stop working (paper, cancel, decline)."""
    party_ids = [p.id for p in contract.parties]
    for request in session.scalars(select(SignatureRequest).where(SignatureRequest.party_id.in_(party_ids),
                                                                  SignatureRequest.status == RequestStatus.OPEN)):
        request.status = RequestStatus.CANCELLED
        request.closed_at = now


def open_request(session: Session, token: str, *, now: datetime) -> SignatureRequest:
    """The request behind a link. Completed requests are returned (the page says 既に署名済みです).

    Raises NotFound for an unknown token, LinkExpired (410) after the planned conclusion date,
    SigningClosed (410) when the contract was cancelled or moved to paper.
    """
    request = session.scalar(select(SignatureRequest).where(SignatureRequest.token_hash == hash_token(token)))
    if request is None:
        raise NotFound(UNKNOWN_LINK)
    if request.status in (RequestStatus.COMPLETED, RequestStatus.DECLINED):
        return request
    if request.status is RequestStatus.CANCELLED:
        raise SigningClosed(CLOSED_LINK)
    if request.is_expired(now):
        contract = request.party.contract
        raise LinkExpired(
            f"署名用リンクの有効期限（締結予定日 {_wareki(contract.planned_conclusion_date)}）が切れています。"
            f"{contract.department.name}（担当: {contract.created_by.name}）にお問い合わせください。"
        )
    return request


def _wareki(day: object) -> str:
    from portal.formatting import wareki

    return wareki(day)  # type: ignore[arg-type]


def staff_party(session: Session, party_id: int, *, user: StaffUser) -> Party:
    """The agency party that `user` signs as. Raises NotFound for anyone else's party (no signing for others)."""
    party = session.get(Party, party_id)
    if party is None or party.role is not PartyRole.AGENCY or party.staff_user_id != user.id:
        raise NotFound("署名依頼が見つかりません。")
    return party


# ---------------------------------------------------------------- access code


def check_access_code(session: Session, request: SignatureRequest, code: str, *, now: datetime,
                      info: RequestInfo) -> bool:
    """True when the contract has no access code or `code` matches; counts failures.

    Raises AccessCodeLocked after ACCESS_CODE_MAX_ATTEMPTS wrong codes. A wrong code returns False
    and the failure must be committed by the caller.
    """
    contract = request.party.contract
    if not contract.access_code_hash:
        return True
    limit = current_app.config["ACCESS_CODE_MAX_ATTEMPTS"]
    if request.failed_code_attempts >= limit:
        raise AccessCodeLocked(f"アクセスコードの入力を{limit}回間違えたため、このリンクでは署名できません。"
                               f"{contract.department.name}にお問い合わせください。")
    if code and passwords.verify_secret(contract.access_code_hash, code.strip()):
        return True
    request.failed_code_attempts += 1
    record(session, actor=Actor.signer(request.party.email), action=AuditAction.CONTRACT_ACCESS_CODE_FAILED,
           subject=contract, now=now, ip=info.ip, user_agent=info.user_agent, attempts=request.failed_code_attempts)
    return False


# ---------------------------------------------------------------- completing


def lock_party(session: Session, party_id: int) -> None:
    """Serialise signers of one party: the first statement of the transaction takes the row's write lock.

    PostgreSQL: SELECT ... FOR UPDATE. SQLite: a no-op UPDATE, which waits for the database write
    lock before this transaction reads anything (a deferred transaction that had read first could
    not upgrade after another writer committed).
    """
    if session.get_bind().dialect.name == "postgresql":
        session.execute(select(Party.id).where(Party.id == party_id).with_for_update())
    else:
        session.execute(update(Party).where(Party.id == party_id).values(position=Party.position))


def lock_party_of_token(session: Session, token: str) -> None:
    """lock_party() for the party behind a link, before anything else is read."""
    party_id = select(SignatureRequest.party_id).where(SignatureRequest.token_hash == hash_token(token))
    if session.get_bind().dialect.name == "postgresql":
        session.execute(select(Party.id).where(Party.id.in_(party_id)).with_for_update())
    else:
        session.execute(update(Party).where(Party.id.in_(party_id.scalar_subquery())).values(position=Party.position))


def complete_signature(session: Session, party: Party, *, auth: SignerAuth, now: datetime,
                       request: SignatureRequest | None = None) -> SignatureOutcome:
    """Sign every document of the envelope for `party`, then request the next signer or complete.

    Call lock_party() first, in the same transaction. A second call for a signed party returns
    already_signed=True and changes nothing. Raises NotYourTurn, SigningClosed, or a
    portal.signing error (TimestampUnavailable, ...) — then nothing has been changed in the session
    and the caller rolls back.
    """
    session.expire_all()  # read everything again after the lock: another request may have signed
    contract = party.contract
    if party.status is PartyStatus.SIGNED:
        return SignatureOutcome(party, already_signed=True, completed=contract.status is ContractStatus.COMPLETED)
    if not contract.status.is_signing:
        raise SigningClosed(CLOSED_LINK)
    if party.status is not PartyStatus.REQUESTED:
        raise NotYourTurn("まだ署名の順番ではありません。前の署名者の署名をお待ちください。")
    signed = approve_documents(contract, party, now=now)  # all or nothing: raises before any state changes
    store = get_store()
    for document, data in signed:
        stored = store.put(data)
        document.revisions.append(DocumentRevision(
            number=document.current.number + 1, kind=RevisionKind.SIGNED, storage_key=stored.key,
            sha256=stored.sha256, size=stored.size, party_id=party.id, created_at=now))
    party.status = PartyStatus.SIGNED
    party.signed_at = now
    party.signed_ip = auth.request.ip[:64]
    party.signed_user_agent = auth.request.user_agent[:1000]
    party.auth_methods = list(auth.methods)
    if request is not None:
        request.status = RequestStatus.COMPLETED
        request.closed_at = now
    session.flush()
    record(session, actor=_actor(party), action=AuditAction.CONTRACT_SIGNED, subject=contract, now=now,
           ip=auth.request.ip, user_agent=auth.request.user_agent, party=party.position, name=party.name,
           email=party.email, auth_methods=list(auth.methods),
           documents=[{"filename": d.filename, "sha256": d.current.sha256} for d in contract.documents])
    completed = False
    if request_next_signature(session, contract, now=now) is None:
        from portal.downloads import service as downloads

        downloads.complete_contract(session, contract, now=now)
        completed = True
    return SignatureOutcome(party, already_signed=False, completed=completed)


def _actor(party: Party) -> Actor:
    if party.staff_user is not None:
        return Actor.staff(party.staff_user)
    return Actor.signer(party.email)


# ---------------------------------------------------------------- declining


def decline(session: Session, party: Party, *, reason: str, auth: SignerAuth, now: datetime,
            request: SignatureRequest | None = None) -> None:
    """差し戻し: the signer refuses with a reason; the contract stops and staff are mailed.

    Raises DomainError without a reason, NotYourTurn / SigningClosed in the wrong state.
    """
    from portal.contracts.service import notify_staff

    if not reason.strip():
        raise DomainError("差し戻しの理由を入力してください。")
    contract = party.contract
    if party.status is not PartyStatus.REQUESTED or not contract.status.is_signing:
        raise SigningClosed("この署名依頼には対応できません（署名済み、または取り消されています）。")
    party.status = PartyStatus.DECLINED
    party.declined_at = now
    party.decline_reason = reason.strip()[:2000]
    if request is not None:
        request.status = RequestStatus.DECLINED
        request.closed_at = now
    close_open_requests(session, contract, now=now)
    contract.status = ContractStatus.DECLINED
    contract.status_reason = party.decline_reason
    contract.updated_at = now
    record(session, actor=_actor(party), action=AuditAction.CONTRACT_DECLINED, subject=contract, now=now,
           ip=auth.request.ip, user_agent=auth.request.user_agent, party=party.position, reason=party.decline_reason)
    notify_staff(session, contract, "contract_declined", now=now, party=party, reason=party.decline_reason)
