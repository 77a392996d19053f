"""Contract operations: draft, documents, internal approval (決裁), sending (statuses: portal.contracts.lifecycle).

Every function takes the session, the acting user and the time explicitly, flushes but never
commits, records its audit row beside the change and raises a DomainError with the Japanese message.
"""

from __future__ import annotations

import dataclasses
import hashlib
import unicodedata
from dataclasses import dataclass, field
from datetime import date, datetime

from flask import current_app
from sqlalchemy import ColumnElement, func, select, true, update
from sqlalchemy.orm import Session

from portal.audit.actions import AuditAction
from portal.audit.labels import VIEWS
from portal.audit.queries import EventRow, describe
from portal.audit.service import Actor, RequestInfo, events_for, record
from portal.auth import passwords
from portal.auth.models import Department, Role, StaffUser
from portal.clock import JST
from portal.contracts import authority, documents, eligibility, lifecycle, numbering
from portal.contracts.lifecycle import Action
from portal.contracts.models import (
    CONSENT_METHODS,
    Contract,
    ContractDocument,
    ContractStatus,
    DocumentRevision,
    Party,
    PartyRole,
    PartyStatus,
    RevisionKind,
)
from portal.contracts.pages import page_count
from portal.counterparties import service as counterparties
from portal.counterparties.models import Counterparty
from portal.counterparties.normalize import normalize_name
from portal.errors import DomainError, NotFound
from portal.signing.content import TooManyPages
from portal.signing.inputs import check_pdf
from portal.signing.pades import UploadRules, check_upload
from portal.text import has_control_characters, safe_filename
from portal.usage_requests.rules import check_signer_email, configured_free_mail_domains, is_free_mail

BOTH_SIGNERS = "署名者には、相手方の契約締結権限者と庁内の承認者（契約担当者）の両方が必要です。"


class ContractNotEligible(DomainError):
    """The contract may not be made electronically; `reasons` holds one message per broken rule."""

    def __init__(self, reasons: list[str]) -> None:
        super().__init__("".join(reasons))
        self.reasons = reasons


class InvalidContract(DomainError):
    """Metadata or signers are incomplete or inconsistent."""


class ConsentAlreadyRecorded(DomainError):
    status_code = 409


class ApprovalRefused(DomainError):
    """The internal approval (決裁) cannot be confirmed by this user or in this state."""

    status_code = 403


class Forbidden(DomainError):
    status_code = 403


@dataclass(frozen=True)
class SignerInput:
    """A signer in order: a counterparty authority (organization/title/name/email) or an agency approver."""

    role: PartyRole
    organization: str = ""
    title: str = ""
    name: str = ""
    email: str = ""
    user_email: str = ""


@dataclass(frozen=True)
class ContractInput:
    business_name: str
    department: Department
    counterparty_name: str
    amount: int
    tax_amount: int
    transaction_date: date
    term_start: date | None
    term_end: date | None
    planned_conclusion_date: date
    auto_renewal: bool = False
    paper_required_by_law: bool = False
    council_approval_required: bool = False
    access_code: str = ""
    signers: list[SignerInput] = field(default_factory=list)
    # An administrator's reason for naming a staff or agency address as the counterparty's signer.
    agency_address_reason: str = ""
    contract_type: str = ""  # one of CONTRACT_TYPES
    consent: ConsentInput | None = None  # the counterparty's prior 承諾, where the type needs it (R9)
    amends: Contract | None = None  # 変更契約: the completed contract this one amends (R16)
    amendment_reason: str = ""
    # The registered 取引先 chosen from the registry (R10); None: found or created by counterparty_name.
    counterparty_id: int | None = None
    signer_override_reason: str = ""  # why the counterparty signer is not the registered authority (R11)
    counterparty_override_reason: str = ""  # an administrator's reason for a 取引先 without accepted 申出書


@dataclass(frozen=True)
class ConsentInput:
    """The counterparty's prior 承諾 to contracting electronically: who gave it, when, and how."""

    by: str
    on: date
    method: str




# ---------------------------------------------------------------- loading


def get_contract(session: Session, contract_id: int) -> Contract:
    """Raises NotFound."""
    contract = session.get(Contract, contract_id)
    if contract is None:
        raise NotFound("契約が見つかりません。")
    return contract


def can_view(contract: Contract, user: StaffUser) -> bool:
    if user.role in (Role.ADMIN, Role.AUDITOR) or contract.department_id == user.department_id:
        return True
    return any(p.staff_user_id == user.id for p in contract.parties)


def get_for_staff(session: Session, contract_id: int, *, actor: StaffUser) -> Contract:
    """The contract if `actor` may see it. Raises NotFound (also for other departments' contracts)."""
    contract = get_contract(session, contract_id)
    if not can_view(contract, actor):
        raise NotFound("契約が見つかりません。")
    return contract


def visible_to(actor: StaffUser) -> ColumnElement[bool]:
    """Query condition matching can_view(): the actor's department and the contracts they sign (admin, auditor: all)."""
    if actor.role in (Role.ADMIN, Role.AUDITOR):
        return true()
    party_of = select(Party.contract_id).where(Party.staff_user_id == actor.id)
    return (Contract.department_id == actor.department_id) | Contract.id.in_(party_of)


def list_for_staff(session: Session, *, actor: StaffUser, status: ContractStatus | None = None) -> list[Contract]:
    """Contracts `actor` may see, soonest planned conclusion first (filters: portal.search)."""
    query = select(Contract).where(visible_to(actor)).order_by(Contract.planned_conclusion_date, Contract.id)
    if status is not None:
        query = query.where(Contract.status == status)
    return list(session.scalars(query))


def waiting_for(session: Session, user: StaffUser) -> list[Contract]:
    """Contracts whose current signer is this staff user (the approver's to-do list)."""
    query = (
        select(Contract)
        .join(Party)
        .where(Party.staff_user_id == user.id, Party.status == PartyStatus.REQUESTED)
        .order_by(Contract.planned_conclusion_date)
    )
    return list(session.scalars(query))


def history(session: Session, contract: Contract) -> list[EventRow]:
    """The contract's timeline: its audit rows but mere views (those are in /audit), oldest first, as sentences."""
    return describe(session, [e for e in events_for(session, contract) if e.action not in VIEWS])


# ---------------------------------------------------------------- draft


def create_draft(session: Session, data: ContractInput, *, actor: StaffUser, now: datetime,
                 request: RequestInfo | None = None) -> Contract:
    """Create a draft envelope with its signers in order.

    With data.counterparty_id the 取引先 comes from the registry and its signer is bound to the
    registered authority (portal.contracts.authority). Raises ContractNotEligible (R12), InvalidContract,
    authority.CounterpartyDeclined / CounterpartyNotRegistered / SignerNotRegistered, or
    usage_requests.rules' InvalidEmail / FreeMailRefused for the counterparty signer's address.
    """
    if data.counterparty_id is not None:
        registered = authority.find_counterparty(session, data.counterparty_id)
        data = dataclasses.replace(data, counterparty_name=registered.name)
    _check_amounts(data)
    contract_type = _checked_type(data.contract_type)
    if data.consent is not None:
        _check_consent(data.consent, now)
    if data.amends is not None:
        _check_amendment(data.amends, data.amendment_reason, actor)
    counterparty = (registered if data.counterparty_id is not None
                    else counterparties.upsert_counterparty(session, name=data.counterparty_name, now=now))
    binding = _bind(session, data, counterparty, actor=actor)
    reasons = eligibility.ineligibility_reasons(
        data, counterparty_declined=counterparty.declined_e_contract,
        max_term_years=current_app.config["MAX_TERM_YEARS"],
        retention_years=_retention_years(session, data.department.id, contract_type),
        max_term_plus_retention_years=int(current_app.config["MAX_TERM_PLUS_RETENTION_YEARS"]),
    )
    if reasons:
        raise ContractNotEligible(reasons)
    if data.term_start and data.term_end and data.term_end < data.term_start:
        raise InvalidContract("契約期間の終了日が開始日より前になっています。")
    if data.planned_conclusion_date < now.astimezone(JST).date():
        raise InvalidContract("締結予定日が過ぎています。今日以降の日付を入力してください。")
    contract = Contract(
        number=numbering.next_number(session, data.department, now=now,
                                     fmt=current_app.config["CONTRACT_NUMBER_FORMAT"]),
        business_name=data.business_name.strip(),
        contract_type=contract_type,
        consent_by=data.consent.by.strip() if data.consent else "",
        consent_on=data.consent.on if data.consent else None,
        consent_method=data.consent.method.strip() if data.consent else "",
        amends=data.amends,
        amendment_reason=data.amendment_reason.strip() if data.amends else "",
        department=data.department,
        counterparty=counterparty,
        counterparty_name=data.counterparty_name.strip(),
        counterparty_name_normalized=normalize_name(data.counterparty_name),
        counterparty_override_reason=binding.counterparty_override_reason,
        amount=data.amount,
        tax_amount=data.tax_amount,
        transaction_date=data.transaction_date,
        term_start=data.term_start,
        term_end=data.term_end,
        auto_renewal=data.auto_renewal,
        paper_required_by_law=data.paper_required_by_law,
        council_approval_required=data.council_approval_required,
        planned_conclusion_date=data.planned_conclusion_date,
        access_code_hash=_access_code_hash(data.access_code),
        status=ContractStatus.DRAFT,
        created_by=actor,
        created_at=now,
        updated_at=now,
    )
    session.add(contract)
    contract.parties = _build_parties(session, data, actor=actor, binding=binding)
    session.flush()
    info = request or RequestInfo()
    _record_binding_overrides(session, contract, binding, actor=actor, now=now, request=info)
    override = _agency_address_override(session, contract)
    if override:
        record(session, actor=Actor.staff(actor), action=AuditAction.CONTRACT_STAFF_SIGNER_ALLOWED, subject=contract,
               now=now, ip=info.ip, user_agent=info.user_agent, signer=override,
               reason=data.agency_address_reason.strip())
    record(session, actor=Actor.staff(actor), action=AuditAction.CONTRACT_CREATED, subject=contract, now=now,
           ip=info.ip, user_agent=info.user_agent, number=contract.number, business_name=contract.business_name,
           amount=contract.amount, contract_type=contract.contract_type, signers=[p.email for p in contract.parties],
           **({"amends": data.amends.number, "amendment_reason": contract.amendment_reason} if data.amends else {}))
    if contract.has_consent:
        _record_consent_event(session, contract, actor=actor, now=now, request=info)
    return contract


RETENTION_LOOKUP = "portal.retention_years_for"


def _retention_years(session: Session, department_id: int, contract_type: str) -> int:
    """Retention years of a contract of this department and type, from the policies portal.preservation
    registers under RETENTION_LOOKUP (it depends on contracts, so contracts cannot import it)."""
    lookup = current_app.extensions.get(RETENTION_LOOKUP)
    if lookup is None:
        return int(current_app.config["RETENTION_YEARS_DEFAULT"])
    return int(lookup(session, department_id=department_id, contract_type=contract_type))


def _checked_type(contract_type: str) -> str:
    allowed = list(current_app.config["CONTRACT_TYPES"])
    if contract_type.strip() not in allowed:
        raise InvalidContract(f"契約の種類を選択してください（{'・'.join(allowed)}）。")
    return contract_type.strip()


def consent_required(contract: Contract) -> bool:
    return contract.contract_type in current_app.config["CONSENT_REQUIRED_CONTRACT_TYPES"]


def _check_consent(consent: ConsentInput, now: datetime) -> None:
    if not consent.by.strip():
        raise InvalidContract("承諾した方（相手方の氏名・役職）を入力してください。")
    if consent.method.strip() not in CONSENT_METHODS:
        raise InvalidContract("承諾の方法を選択してください。")
    if consent.on > now.astimezone(JST).date():
        raise InvalidContract("承諾日が未来の日付になっています。")


def _check_amendment(original: Contract, reason: str, actor: StaffUser) -> None:
    if original.status is not ContractStatus.COMPLETED:
        raise InvalidContract("変更契約は、締結済みの契約に対してだけ作成できます。")
    if not can_view(original, actor):
        raise NotFound("契約が見つかりません。")
    if not reason.strip():
        raise InvalidContract("変更の理由を入力してください。")
    if len(reason) > 2000:
        raise InvalidContract("変更の理由は2000文字以内で入力してください。")


def record_consent(session: Session, contract: Contract, consent: ConsentInput, *, actor: StaffUser,
                   now: datetime, request: RequestInfo | None = None) -> None:
    """Record the counterparty's prior 承諾 before sending (R9). The first record stands: a second one,
    also from a concurrent request, is refused (ConsentAlreadyRecorded); after sending it is too late."""
    _check_consent(consent, now)
    if contract.status not in (ContractStatus.DRAFT, ContractStatus.AWAITING_APPROVAL, ContractStatus.APPROVED):
        raise InvalidContract("送信後の契約には承諾を記録できません。")
    result = session.execute(
        update(Contract)
        .where(Contract.id == contract.id, Contract.consent_on.is_(None),
               Contract.status.in_([ContractStatus.DRAFT, ContractStatus.AWAITING_APPROVAL, ContractStatus.APPROVED]))
        .values(consent_by=consent.by.strip(), consent_on=consent.on, consent_method=consent.method.strip(),
                updated_at=now)
        .execution_options(synchronize_session=False))
    session.expire(contract, ["consent_by", "consent_on", "consent_method", "updated_at", "status"])
    if not result.rowcount:  # type: ignore[attr-defined]
        raise ConsentAlreadyRecorded("相手方の承諾はすでに記録されています。")
    _record_consent_event(session, contract, actor=actor, now=now, request=request or RequestInfo())


def _record_consent_event(session: Session, contract: Contract, *, actor: StaffUser, now: datetime,
                          request: RequestInfo) -> None:
    record(session, actor=Actor.staff(actor), action=AuditAction.CONTRACT_CONSENT_RECORDED, subject=contract,
           now=now, ip=request.ip, user_agent=request.user_agent, consent_by=contract.consent_by,
           consent_on=contract.consent_on.isoformat() if contract.consent_on else None,
           consent_method=contract.consent_method)
    session.flush()


def _check_amounts(data: ContractInput) -> None:
    if not data.business_name.strip():
        raise InvalidContract("業務名を入力してください。")
    if not data.counterparty_name.strip():
        raise InvalidContract("取引先を入力してください。")
    if data.amount < 0 or data.tax_amount < 0:
        raise InvalidContract("金額は0円以上の整数で入力してください。")
    if data.tax_amount > data.amount:
        raise InvalidContract("消費税額が契約金額（税込）を超えています。")


def _bind(session: Session, data: ContractInput, counterparty: Counterparty, *,
          actor: StaffUser) -> authority.Binding:
    signer = next((s for s in data.signers if s.role is PartyRole.COUNTERPARTY), None)
    if signer is None:
        raise InvalidContract(BOTH_SIGNERS)
    return authority.bind(
        session, counterparty=counterparty, chosen=data.counterparty_id is not None, signer_title=signer.title,
        signer_name=signer.name, signer_email=signer.email, signer_override_reason=data.signer_override_reason,
        counterparty_override_reason=data.counterparty_override_reason, actor=actor)


def _record_binding_overrides(session: Session, contract: Contract, binding: authority.Binding, *,
                              actor: StaffUser, now: datetime, request: RequestInfo) -> None:
    """Log the exceptions to R10 beside the contract: another signer, a 取引先 without 申出書."""
    staff = Actor.staff(actor)
    if binding.counterparty_override_reason:
        record(session, actor=staff, action=AuditAction.CONTRACT_UNREGISTERED_COUNTERPARTY_ALLOWED,
               subject=contract, now=now, ip=request.ip, user_agent=request.user_agent,
               name=contract.counterparty_name, reason=binding.counterparty_override_reason)
    party = next((p for p in contract.parties if p.role is PartyRole.COUNTERPARTY), None)
    if party is not None and party.signer_override_reason:
        registered = binding.counterparty.current_authority
        record(session, actor=staff, action=AuditAction.CONTRACT_SIGNER_OVERRIDDEN, subject=contract, now=now,
               ip=request.ip, user_agent=request.user_agent, reason=party.signer_override_reason,
               signer=f"{party.title} {party.name} {party.email}".strip(),
               registered_signer=(f"{registered.title} {registered.name} {registered.email}".strip()
                                  if registered else "（登録なし）"))


def _build_parties(session: Session, data: ContractInput, *, actor: StaffUser,
                   binding: authority.Binding | None = None) -> list[Party]:
    roles = [s.role for s in data.signers]
    # 地方自治法 234条5項: the contract is final only when both the agency and the counterparty have signed.
    if PartyRole.COUNTERPARTY not in roles or PartyRole.AGENCY not in roles:
        raise InvalidContract(BOTH_SIGNERS)
    parties = []
    for position, signer in enumerate(data.signers, start=1):
        if signer.role is PartyRole.COUNTERPARTY:
            if not signer.name.strip():
                raise InvalidContract("相手方の署名者の氏名を入力してください。")
            email = check_signer_email(signer.email, domains=configured_free_mail_domains())
            _refuse_agency_address(session, email, data, actor=actor)
            parties.append(Party(position=position, role=signer.role, organization=signer.organization.strip()
                                 or data.counterparty_name.strip(), title=signer.title.strip(),
                                 name=signer.name.strip(), email=email, status=PartyStatus.WAITING,
                                 signing_authority=binding.authority if binding else None,
                                 signer_override_reason=binding.signer_override_reason if binding else ""))
            continue
        user = session.scalar(select(StaffUser).where(func.lower(StaffUser.email) == signer.user_email.lower()))
        if user is None or not user.is_active or not user.has_role(Role.APPROVER):
            raise InvalidContract("庁内の署名者には、承認者（契約担当者）の権限を持つ職員を指定してください。")
        parties.append(Party(position=position, role=signer.role, organization=user.department.name,
                             title=user.title, name=user.name, email=user.email, staff_user=user,
                             status=PartyStatus.WAITING))
    return parties


def _agency_address_kind(session: Session, email: str) -> str:
    """Why a counterparty address belongs to the agency: "staff" (a staff account), "domain", or ""."""
    staff = session.scalar(select(StaffUser.id).where(func.lower(StaffUser.email) == email.lower()))
    if staff is not None:
        return "staff"
    if is_free_mail(email, current_app.config.get("AGENCY_MAIL_DOMAINS") or []):
        return "domain"
    return ""


def _refuse_agency_address(session: Session, email: str, data: ContractInput, *, actor: StaffUser) -> None:
    """A 立会人型 signature is the signer's own instruction: staff must not receive the vendor's link.

    Raises InvalidContract unless an administrator gave a reason (recorded by create_draft()).
    """
    kind = _agency_address_kind(session, email)
    if not kind:
        return
    if actor.has_role(Role.ADMIN) and data.agency_address_reason.strip():
        return
    where = "職員のアカウント" if kind == "staff" else "庁内のメールドメイン"
    raise InvalidContract(f"相手方の署名者のメールアドレス {email} は{where}のものです。相手方の契約締結権限者本人の"
                          "アドレスを入力してください（やむを得ない場合は、管理者が理由を入力して登録します）。")


def _agency_address_override(session: Session, contract: Contract) -> str:
    """The counterparty address an administrator allowed despite belonging to the agency, or ""."""
    for party in contract.parties:
        if party.role is PartyRole.COUNTERPARTY and _agency_address_kind(session, party.email):
            return party.email
    return ""


def _lock_editable(session: Session, contract: Contract) -> Contract:
    contract = lifecycle.lock(session, contract.id)
    lifecycle.require(contract, Action.EDIT_DOCUMENTS)
    return contract


# ---------------------------------------------------------------- documents


def attach_document(session: Session, contract: Contract, *, filename: str, data: bytes, actor: StaffUser,
                    now: datetime, request: RequestInfo | None = None, title: str = "") -> ContractDocument:
    """Check, store (encrypted, with SHA-256) and append one PDF; voids a confirmed approval.

    `title` is what signers see on the document's tab ("" = the file name without its extension).
    Raises DomainError for a bad title, TransitionRefused after sending, or an InvalidPdf with the
    message for the uploader: from
    portal.signing.inputs (NotAPdf, TruncatedPdf, EncryptedPdf, CertifiedNoChanges, PdfTooLarge) or
    portal.signing.content (TooManyPages, ActiveContent, InflatesTooMuch, UnsignableStructure).
    """
    title = checked_document_title(title)
    contract = _lock_editable(session, contract)
    config = current_app.config
    check_pdf(data, max_bytes=config["PDF_MAX_BYTES"])
    pages = page_count(data)
    if pages > config["PDF_MAX_PAGES"]:  # counted before the scan, which would read every page
        raise TooManyPages(pages, config["PDF_MAX_PAGES"])
    check_upload(data, UploadRules(max_bytes=config["PDF_MAX_BYTES"],
                                   allow_embedded_pdfs=config["PDF_ALLOW_EMBEDDED_PDFS"],
                                   max_inflated_bytes=config["PDF_MAX_INFLATED_BYTES"]))
    position = max((d.position for d in contract.documents), default=0) + 1
    document = ContractDocument(position=position, filename=safe_filename(filename), title=title,
                                page_count=pages, uploaded_by=actor, created_at=now)
    contract.documents.append(document)
    session.flush()  # the stored file is bound to the document's id
    stored = documents.store_revision(document, 1, data)
    document.revisions.append(DocumentRevision(number=1, kind=RevisionKind.ORIGINAL, storage_key=stored.key,
                                               sha256=stored.sha256, size=stored.size, created_at=now))
    contract.updated_at = now
    session.flush()
    info = request or RequestInfo()
    record(session, actor=Actor.staff(actor), action=AuditAction.CONTRACT_DOCUMENT_ADDED, subject=contract,
           now=now, ip=info.ip, user_agent=info.user_agent, filename=document.filename, sha256=stored.sha256,
           size=stored.size, pages=pages, title=document.display_title)
    lifecycle.documents_changed(session, contract, actor=actor, now=now, why="文書の追加")
    return document


def remove_document(session: Session, contract: Contract, document_id: int, *, actor: StaffUser,
                    now: datetime) -> None:
    """Take a document out of a draft (its stored bytes stay). Raises TransitionRefused, NotFound."""
    contract = _lock_editable(session, contract)
    document = next((d for d in contract.documents if d.id == document_id), None)
    if document is None:
        raise NotFound("文書が見つかりません。")
    contract.documents.remove(document)
    session.flush()
    for position, remaining in enumerate(contract.documents, start=1):
        remaining.position = position
    contract.updated_at = now
    record(session, actor=Actor.staff(actor), action=AuditAction.CONTRACT_DOCUMENT_REMOVED, subject=contract,
           now=now, filename=document.filename, sha256=document.original.sha256)
    lifecycle.documents_changed(session, contract, actor=actor, now=now, why="文書の削除")


DOCUMENT_TITLE_MAX_LENGTH = 100


def checked_document_title(title: str) -> str:
    """A document title as typed, NFKC and stripped; "" stays "" (the file name is shown).

    Raises DomainError when too long or with control characters or path/file-name separators.
    """
    title = unicodedata.normalize("NFKC", title).strip()
    if len(title) > DOCUMENT_TITLE_MAX_LENGTH:
        raise DomainError(f"文書の名称は{DOCUMENT_TITLE_MAX_LENGTH}文字以内で入力してください"
                          f"（{len(title)}文字あります）。")
    if has_control_characters(title):
        raise DomainError("文書の名称に改行や制御文字は使えません。")
    if any(ch in title for ch in '\\/:*?"<>|'):
        raise DomainError('文書の名称に次の記号は使えません: \\ / : * ? " < > |')
    return title


def get_document(contract: Contract, document_id: int) -> ContractDocument:
    """Raises NotFound."""
    document = next((d for d in contract.documents if d.id == document_id), None)
    if document is None:
        raise NotFound("文書が見つかりません。")
    return document


def read_revision(revision: DocumentRevision) -> bytes:
    """Raises storage.StorageError if missing, storage.TamperedFile if altered or another row's file."""
    return documents.read_revision(revision)


# ---------------------------------------------------------------- internal approval (決裁)


def documents_digest(contract: Contract) -> str:
    """SHA-256 over the ordered documents' SHA-256 values: what the approver approved."""
    lines = "\n".join(f"{d.position}:{d.original.sha256}" for d in contract.documents)
    return hashlib.sha256(lines.encode()).hexdigest()


def is_approved(contract: Contract) -> bool:
    """True while the confirmed approval still covers exactly the current documents."""
    return bool(contract.approved_at and contract.documents and contract.approved_digest == documents_digest(contract))


def request_approval(session: Session, contract: Contract, *, actor: StaffUser, now: datetime) -> None:
    """Ask for the approver's confirmation. Raises TransitionRefused, InvalidContract."""
    contract = lifecycle.lock(session, contract.id)
    lifecycle.require(contract, Action.REQUEST_APPROVAL)
    if not contract.documents:
        raise InvalidContract("PDF 文書をアップロードしてください。")
    lifecycle.request_approval(session, contract, actor=actor, now=now, digest=documents_digest(contract))


def version_of(contract: Contract) -> str:
    """What a page showed of the contract: any change (edit, document, consent) gives a new value."""
    return contract.updated_at.isoformat()


class ChangedSinceViewed(DomainError):
    status_code = 409


def confirm_internal_approval(session: Session, contract: Contract, *, approver: StaffUser, reference: str,
                              now: datetime, request: RequestInfo | None = None, seen_version: str = "") -> None:
    """The approver confirms that the documents are the ones approved under 決裁 `reference`.

    `seen_version` is version_of() the contract as the approver's page showed it: when the contract
    was edited since (by someone else, at the same moment), the approval is refused rather than
    given to contents the approver has not seen.
    Raises ApprovalRefused when the user is not an approver, uploaded a document themself or
    created the contract; InvalidContract without a reference or documents; TransitionRefused
    after 決裁 or sending; ChangedSinceViewed.
    """
    contract = lifecycle.lock(session, contract.id)
    lifecycle.require(contract, Action.APPROVE)
    if seen_version and seen_version != version_of(contract):
        raise ChangedSinceViewed("この契約は画面を表示した後に変更されています。画面を開き直して内容を確認してから、"
                                 "決裁を確認してください。")
    if not approver.has_role(Role.APPROVER):
        raise ApprovalRefused("決裁の確認は承認者（契約担当者）の権限を持つ職員が行います。")
    if not lifecycle.may_approve(contract, approver):
        raise ApprovalRefused(
            "文書をアップロードした職員は、自分のアップロードを承認できません。別の承認者に依頼してください。"
        )
    if not reference.strip():
        raise InvalidContract("決裁番号（決裁日）を入力してください。")
    if not contract.documents:
        raise InvalidContract("PDF 文書をアップロードしてください。")
    lifecycle.approve(session, contract, approver=approver, reference=reference.strip()[:100],
                      digest=documents_digest(contract), now=now, request=request)


def list_ready_to_send(session: Session, *, actor: StaffUser) -> list[Contract]:
    """承認済み（送信待ち）: contracts whose 決裁 is confirmed and that nobody has sent yet."""
    return list_for_staff(session, actor=actor, status=ContractStatus.APPROVED)


# ---------------------------------------------------------------- sending and closing


def send_for_signature(session: Session, contract: Contract, *, actor: StaffUser, now: datetime,
                       request: RequestInfo | None = None) -> Party:
    """Check eligibility and approval, then request the first signer (mail queued). Returns that party.

    Raises ContractNotEligible, lifecycle.ApprovalMissing, TransitionRefused (sent already, closed)
    or InvalidContract; nothing is queued then.
    """
    contract = lifecycle.lock(session, contract.id)
    lifecycle.require(contract, Action.SEND)
    reasons = eligibility.ineligibility_reasons(
        contract,
        counterparty_declined=bool(contract.counterparty and contract.counterparty.declined_e_contract),
        max_term_years=current_app.config["MAX_TERM_YEARS"],
        retention_years=_retention_years(session, contract.department_id, contract.contract_type),
        max_term_plus_retention_years=int(current_app.config["MAX_TERM_PLUS_RETENTION_YEARS"]),
    )
    if consent_required(contract) and not contract.has_consent:
        reasons.append(eligibility.consent_missing(contract.contract_type))
    if reasons:
        raise ContractNotEligible(reasons)
    if not is_approved(contract):
        raise lifecycle.ApprovalMissing(lifecycle.APPROVAL_MISSING, status=contract.status, action=Action.SEND)
    if contract.planned_conclusion_date < now.astimezone(JST).date():
        raise InvalidContract("締結予定日が過ぎています。紙の契約に移行するか、締結予定日を見直してください。")
    return lifecycle.send(session, contract, actor=actor, now=now, request=request)


def _access_code_hash(code: str) -> str | None:
    """Codes are kept NFKC-normalised: the signer may type them with full-width digits."""
    code = unicodedata.normalize("NFKC", code).strip()
    return passwords.hash_secret(code) if code else None
