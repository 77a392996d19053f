"""Metadata corrections (R20): a correction is a new version with who, when, why and the old value.

The Contract row takes the new value here and nowhere else after completion, so search finds the
current value and the history keeps the previous ones. Retention and batch verification live in
retention.py and verification.py; their entry points are re-exported here.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from portal.audit.actions import AuditAction
from portal.audit.service import Actor, RequestInfo, record
from portal.auth.models import Role, StaffUser
from portal.contracts.models import Contract, ContractStatus
from portal.counterparties.normalize import normalize_name
from portal.errors import DomainError
from portal.formatting import wareki, yen
from portal.parsing import InvalidDate, parse_amount, parse_date
from portal.preservation.models import MetadataCorrection
from portal.preservation.retention import (  # noqa: F401  (re-exported)
    RetentionNotEnded,
    delete_after_retention,
    retention_ends,
    retention_years,
    set_retention_policy,
)
from portal.preservation.verification import (  # noqa: F401  (re-exported)
    run_batch_verification,
    start_batch_verification,
)

# Field → label, in the order the form shows them.
CORRECTABLE_FIELDS = {
    "transaction_date": "取引年月日",
    "amount": "金額（税込）",
    "tax_amount": "うち消費税額",
    "counterparty_name": "取引先",
    "business_name": "業務名",
}


class Forbidden(DomainError):
    status_code = 403


class NotCorrectable(DomainError):
    """Only completed contracts are corrected here; before completion the contract screen edits them."""


class InvalidCorrection(DomainError):
    """A value or the reason is missing or wrong; `field` names the input."""

    def __init__(self, message: str, field: str = "") -> None:
        super().__init__(message)
        self.field = field


@dataclass(frozen=True)
class CorrectionVersion:
    """One correction: the fields changed together, with who, when and why."""

    version: int
    corrected_at: datetime
    corrected_by: StaffUser
    reason: str
    changes: list[MetadataCorrection]


def can_correct(contract: Contract, user: StaffUser) -> bool:
    if user.role == Role.ADMIN:
        return True
    return user.role in (Role.STAFF, Role.APPROVER) and user.department_id == contract.department_id


def correct_metadata(session: Session, contract: Contract, changes: Mapping[str, str], *, reason: str,
                     actor: StaffUser, now: datetime, request: RequestInfo | None = None) -> CorrectionVersion:
    """Apply corrected values to a completed contract, keeping each previous value as a new version.

    `changes` maps CORRECTABLE_FIELDS keys to the text typed (dates in ISO or 和暦, amounts with
    commas allowed); unchanged fields are ignored. The signed documents are never touched (R16:
    a change of the agreement itself is a new contract signed again).
    Raises Forbidden, NotCorrectable, InvalidCorrection (bad value, no reason, nothing changed).
    """
    if not can_correct(contract, actor):
        raise Forbidden("この契約の登録内容を訂正する権限がありません。")
    if contract.status is not ContractStatus.COMPLETED:
        raise NotCorrectable("登録内容の訂正は締結済みの契約が対象です。締結前の契約は契約画面で編集してください。")
    if not reason.strip():
        raise InvalidCorrection("訂正の理由を入力してください。", "reason")
    parsed = {field: _parse(field, text) for field, text in changes.items()
              if field in CORRECTABLE_FIELDS and str(text).strip()}
    changed = {field: value for field, value in parsed.items() if getattr(contract, field) != value}
    if not changed:
        raise InvalidCorrection("訂正する値が入力されていません（現在の値と同じです）。")
    amount = changed.get("amount", contract.amount)
    if changed.get("tax_amount", contract.tax_amount) > amount:
        raise InvalidCorrection("消費税額が契約金額（税込）を超えています。", "tax_amount")
    version = (session.scalar(select(func.max(MetadataCorrection.version))
                              .where(MetadataCorrection.contract_id == contract.id)) or 1) + 1
    rows = []
    for field, value in changed.items():
        old = getattr(contract, field)
        rows.append(MetadataCorrection(
            contract_id=contract.id, version=version, field=field, old_value=_text(old), new_value=_text(value),
            old_normalized=normalize_name(old) if field == "counterparty_name" else "",
            old_number=old if field in ("amount", "tax_amount") else None,
            old_date=old if field == "transaction_date" else None,
            reason=reason.strip(), corrected_by=actor, corrected_at=now,
        ))
        setattr(contract, field, value)
        if field == "counterparty_name":
            contract.counterparty_name_normalized = normalize_name(value)
    contract.updated_at = now
    session.add_all(rows)
    session.flush()
    info = request or RequestInfo()
    record(session, actor=Actor.staff(actor), action=AuditAction.METADATA_CORRECTED, subject=contract, now=now,
           ip=info.ip, user_agent=info.user_agent, version=version, reason=reason.strip(),
           changes=[{"field": r.field, "old": r.old_value, "new": r.new_value} for r in rows])
    return CorrectionVersion(version, now, actor, reason.strip(), rows)


def correction_history(session: Session, contract: Contract) -> list[CorrectionVersion]:
    """Every correction of the contract, newest first."""
    rows = session.scalars(select(MetadataCorrection).where(MetadataCorrection.contract_id == contract.id)
                           .order_by(MetadataCorrection.version.desc(), MetadataCorrection.id))
    versions: dict[int, CorrectionVersion] = {}
    for row in rows:
        if row.version not in versions:
            versions[row.version] = CorrectionVersion(row.version, row.corrected_at, row.corrected_by, row.reason, [])
        versions[row.version].changes.append(row)
    return list(versions.values())


def display_value(field: str, text: str) -> str:
    """How a stored old/new value reads on screen: 和暦 dates, 金…円 amounts."""
    if field == "transaction_date":
        return f"{wareki(date.fromisoformat(text))}（{text}）"
    if field in ("amount", "tax_amount"):
        return yen(int(text))
    return text


def _parse(field: str, text: Any) -> Any:
    value = str(text).strip()
    if field == "transaction_date":
        try:
            return parse_date(value)
        except InvalidDate as exc:
            raise InvalidCorrection(exc.message, field) from None
    if field in ("amount", "tax_amount"):
        try:
            return parse_amount(value)
        except ValueError:
            raise InvalidCorrection(f"{CORRECTABLE_FIELDS[field]}は円単位の数字で入力してください。", field) from None
    if len(value) > 200:
        raise InvalidCorrection(f"{CORRECTABLE_FIELDS[field]}は200文字以内で入力してください。", field)
    return value


def _text(value: Any) -> str:
    return value.isoformat() if isinstance(value, date) else str(value)
