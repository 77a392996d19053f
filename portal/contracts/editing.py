"""Editing a draft until it is sent (「編集する」), and starting a new draft from an old contract
(「この契約を複製して作成」).

An edit goes through portal.contracts.lifecycle like a document change: it locks the contract, re-reads
its state and is refused once the contract is sent (「この契約はすでに…」); after 決裁 it voids the
approval and the contract is a 下書き again, to be approved once more. Each edit is one audit event
listing every changed field with its old and new value. Functions flush but never commit.
"""

from __future__ import annotations

import dataclasses
import unicodedata
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from flask import current_app
from sqlalchemy.orm import Session

from portal.audit.actions import AuditAction
from portal.audit.service import Actor, RequestInfo, record
from portal.auth.models import StaffUser
from portal.clock import JST
from portal.contracts import authority, eligibility, lifecycle, service
from portal.contracts.lifecycle import Action
from portal.contracts.models import Contract, ContractStatus, Party, PartyRole, RevisionKind
from portal.contracts.pages import queue_rendering
from portal.counterparties import service as counterparties
from portal.counterparties.normalize import normalize_name
from portal.errors import DomainError
from portal.formatting import wareki, yen

# The contract's own fields an edit may change, with the names the form and the log use.
FIELD_LABELS = {
    "contract_type": "契約の種類",
    "business_name": "業務名",
    "counterparty_name": "取引先",
    "amount": "契約金額（税込）",
    "tax_amount": "うち消費税額",
    "transaction_date": "取引年月日",
    "term_start": "契約期間（開始）",
    "term_end": "契約期間（終了）",
    "planned_conclusion_date": "締結予定日",
    "auto_renewal": "自動更新条項",
    "paper_required_by_law": "法令等により書面が必要",
    "council_approval_required": "議会の議決が必要",
}
ACCESS_CODE_LABEL = "アクセスコード"
# What a draft may be copied from: contracts that will not be signed (any more) as they are.
COPYABLE = (ContractStatus.DECLINED, ContractStatus.PAPER, ContractStatus.CANCELLED, ContractStatus.COMPLETED)


class NotCopyable(DomainError):
    status_code = 409


@dataclass(frozen=True)
class Change:
    """One changed field, as people read it: 「契約金額（税込）: 1,100,000円 → 1,210,000円」."""

    field: str
    label: str
    old: str
    new: str

    def as_detail(self) -> dict[str, str]:
        return {"field": self.field, "label": self.label, "old": self.old, "new": self.new}


@dataclass(frozen=True)
class Edited:
    changes: list[Change]
    approval_voided: bool  # the edit came after 決裁: the approver must confirm it again


def may_copy(contract: Contract) -> bool:
    return contract.status in COPYABLE


def require_copyable(contract: Contract) -> None:
    """Raises NotCopyable for a contract that may still be signed or edited as it is."""
    if not may_copy(contract):
        raise NotCopyable(f"{lifecycle.STATE_SENTENCES.get(contract.status, '')}複製できるのは、差し戻し・"
                          "紙契約へ移行・取消・締結済みの契約です。送信前の契約は「編集する」で変更してください。")


# ---------------------------------------------------------------- editing a draft


def edit_draft(session: Session, contract: Contract, data: service.ContractInput, *, actor: StaffUser,
               now: datetime, request: RequestInfo | None = None,
               remove_access_code: bool = False) -> Edited:
    """Change a draft's metadata and signers to `data`; returns what changed (nothing: no event, no change).

    `data.access_code` "" keeps the code (remove_access_code=True removes it). The eligibility rules
    (R12) and the signer checks of create_draft() apply again. After 決裁 the approval is voided.
    Raises lifecycle.TransitionRefused once sent or closed, service.ContractNotEligible,
    service.InvalidContract, or usage_requests.rules' InvalidEmail / FreeMailRefused.
    """
    contract = lifecycle.lock_for_edit(session, contract.id)
    if data.counterparty_id is not None:  # the registered 取引先 (R10), as create_draft() resolves it
        data = dataclasses.replace(data, counterparty_name=authority.find_counterparty(
            session, data.counterparty_id).name)
    contract_type = _checked(session, data, contract, now=now)
    chosen = authority.find_counterparty(session, data.counterparty_id) if data.counterparty_id is not None \
        else counterparties.upsert_counterparty(session, name=data.counterparty_name, now=now)
    binding = service._bind(session, data, chosen, actor=actor)
    parties = service._build_parties(session, data, actor=actor, binding=binding)
    values: dict[str, Any] = {
        "contract_type": contract_type, "business_name": data.business_name.strip(),
        "counterparty_name": data.counterparty_name.strip(), "amount": data.amount, "tax_amount": data.tax_amount,
        "transaction_date": data.transaction_date, "term_start": data.term_start, "term_end": data.term_end,
        "planned_conclusion_date": data.planned_conclusion_date, "auto_renewal": data.auto_renewal,
        "paper_required_by_law": data.paper_required_by_law,
        "council_approval_required": data.council_approval_required,
    }
    changes = [Change(name, label, _shown(getattr(contract, name)), _shown(values[name]))
               for name, label in FIELD_LABELS.items() if getattr(contract, name) != values[name]]
    changes += _signer_changes(contract.parties, parties)
    code = unicodedata.normalize("NFKC", data.access_code).strip()
    if code or (remove_access_code and contract.has_access_code):
        changes.append(Change("access_code", ACCESS_CODE_LABEL, "設定あり" if contract.has_access_code else "なし",
                              "設定あり（変更）" if code else "なし"))
    if not changes:
        return Edited([], approval_voided=False)
    was_approved = contract.status is ContractStatus.APPROVED
    for name, value in values.items():
        setattr(contract, name, value)
    if any(c.field == "counterparty_name" for c in changes):
        contract.counterparty = counterparties.upsert_counterparty(session, name=values["counterparty_name"],
                                                                   now=now)
        contract.counterparty_name_normalized = normalize_name(values["counterparty_name"])
    if any(c.field.startswith("signer") for c in changes):
        contract.parties.clear()
        session.flush()  # the old rows go first: (contract, position) is unique
        contract.parties.extend(parties)
    if code or remove_access_code:
        contract.access_code_hash = service._access_code_hash(code)
    session.flush()
    info = request or RequestInfo()
    if any(c.field.startswith("signer") for c in changes):
        service._record_binding_overrides(session, contract, binding, actor=actor, now=now, request=info)
    override = service._agency_address_override(session, contract)
    if override and any(c.field.startswith("signer") for c in changes):
        record(session, actor=Actor.staff(actor), action=AuditAction.CONTRACT_STAFF_SIGNER_ALLOWED, subject=contract,
               now=now, ip=info.ip, user_agent=info.user_agent, signer=override,
               reason=data.agency_address_reason.strip())
    record(session, actor=Actor.staff(actor), action=AuditAction.CONTRACT_EDITED, subject=contract, now=now,
           ip=info.ip, user_agent=info.user_agent, changes=[c.as_detail() for c in changes],
           status=str(contract.status))
    lifecycle.documents_changed(session, contract, actor=actor, now=now, why="契約内容の変更", action=Action.EDIT)
    return Edited(changes, approval_voided=was_approved)


def _checked(session: Session, data: service.ContractInput, contract: Contract, *, now: datetime) -> str:
    """The checks of create_draft() on the edited values; returns the contract type."""
    service._check_amounts(data)
    contract_type = service._checked_type(data.contract_type)
    counterparty = counterparties.find_by_name(session, data.counterparty_name)
    reasons = eligibility.ineligibility_reasons(
        data, counterparty_declined=bool(counterparty and counterparty.declined_e_contract),
        max_term_years=current_app.config["MAX_TERM_YEARS"],
        retention_years=service._retention_years(session, contract.department_id, contract_type),
        max_term_plus_retention_years=int(current_app.config["MAX_TERM_PLUS_RETENTION_YEARS"]),
    )
    if reasons:
        raise service.ContractNotEligible(reasons)
    if data.term_start and data.term_end and data.term_end < data.term_start:
        raise service.InvalidContract("契約期間の終了日が開始日より前になっています。")
    if data.planned_conclusion_date < now.astimezone(JST).date():
        raise service.InvalidContract("締結予定日が過ぎています。今日以降の日付を入力してください。")
    return contract_type


def _signer_changes(before: list[Party], after: list[Party]) -> list[Change]:
    changes = []
    for position in range(1, max(len(before), len(after)) + 1):
        old = before[position - 1] if position <= len(before) else None
        new = after[position - 1] if position <= len(after) else None
        either = new or old
        if either is not None and _signer_text(old) != _signer_text(new):
            role = either.role.label
            changes.append(Change(f"signer{position}", f"署名者{position}（{role}）", _signer_text(old),
                                  _signer_text(new)))
    return changes


def _signer_text(party: Party | None) -> str:
    if party is None:
        return ""
    return f"{party.role.label}: {party.display_name} <{party.email}>"


def _shown(value: Any) -> str:
    if isinstance(value, bool):
        return "あり" if value else "なし"
    if isinstance(value, int):
        return yen(value)
    if isinstance(value, date):
        return f"{wareki(value)}（{value.isoformat()}）"
    return "" if value is None else str(value)


# ---------------------------------------------------------------- 「この契約を複製して作成」


def copy_contract(session: Session, original: Contract, data: service.ContractInput, *, copy_documents: bool,
                  actor: StaffUser, now: datetime, request: RequestInfo | None = None) -> Contract:
    """A new draft (with a new number) from `data`, the form pre-filled from `original`, linked to it.

    With copy_documents, each document's unsigned original (revision 1, never a signed revision) is
    stored again as a document of the new draft, under the same title. Raises NotCopyable when the
    original may still be signed or edited as it is, and whatever create_draft() and attach_document()
    raise.
    """
    require_copyable(original)
    contract = service.create_draft(session, data, actor=actor, now=now, request=request)
    contract.copied_from = original
    copied = []
    for document in list(original.documents) if copy_documents else []:
        revision = document.original
        if revision.kind is not RevisionKind.ORIGINAL:  # signed revisions are never copied
            continue
        added = service.attach_document(session, contract, filename=document.filename,
                                        data=service.read_revision(revision), actor=actor, now=now,
                                        request=request, title=document.title)
        queue_rendering(session, added.original, now=now)
        copied.append(added.display_title)
    info = request or RequestInfo()
    record(session, actor=Actor.staff(actor), action=AuditAction.CONTRACT_DUPLICATED, subject=contract, now=now,
           ip=info.ip, user_agent=info.user_agent, copied_from=original.number, copied_from_id=original.id,
           documents=copied)
    session.flush()
    return contract


def copy_defaults(original: Contract, *, today: date) -> dict[str, object]:
    """The new-contract form's values from `original`: metadata and signers; the 締結予定日 only while
    it is still ahead (a copy is signed later), never the access code (only its hash is kept)."""
    values = form_values(original)
    if original.planned_conclusion_date < today:
        values["planned_conclusion_date"] = None
    return values


def form_values(original: Contract) -> dict[str, object]:
    """The contract form's fields as the contract has them (its signers in order), for 編集 and 複製."""
    counterparty = next((p for p in original.parties if p.role is PartyRole.COUNTERPARTY), None)
    agency = next((p for p in original.parties if p.role is PartyRole.AGENCY), None)
    return {
        "contract_type": original.contract_type, "business_name": original.business_name,
        "counterparty_name": original.counterparty_name,
        "counterparty_id": str(original.counterparty_id or ""),  # for a form that picks a registered 取引先
        "signer_override": bool(counterparty and counterparty.signer_override_reason),
        "signer_override_reason": counterparty.signer_override_reason if counterparty else "",
        "amount": original.amount, "tax_amount": original.tax_amount, "transaction_date": original.transaction_date,
        "term_start": original.term_start, "term_end": original.term_end,
        "planned_conclusion_date": original.planned_conclusion_date,
        "auto_renewal": original.auto_renewal, "paper_required_by_law": original.paper_required_by_law,
        "council_approval_required": original.council_approval_required,
        "signer_organization": counterparty.organization if counterparty else "",
        "signer_title": counterparty.title if counterparty else "",
        "signer_name": counterparty.name if counterparty else "",
        "signer_email": counterparty.email if counterparty else "",
        "approver_email": agency.email if agency else None,
        "signing_order": "agency_first" if original.parties and original.parties[0].role is PartyRole.AGENCY
        else "counterparty_first",
    }
