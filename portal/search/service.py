"""search_contracts(): the 電帳法 search, scoped to what the actor may see.

電子帳簿保存法施行規則 2条6項6号 (電子取引 via 4条1項): records must be searchable by 取引年月日,
取引金額 and 取引先, by date and amount ranges, and by any combination of two or more of them.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from sqlalchemy import ColumnElement, Select, and_, exists, func, or_, select
from sqlalchemy.orm import Session

from portal.auth.models import Role, StaffUser
from portal.contracts.models import Contract, ContractDocument, DocumentRevision, Party
from portal.counterparties.normalize import normalize_name
from portal.preservation.models import MetadataCorrection, VerificationResult
from portal.search.criteria import AmountBasis, SearchCriteria


@dataclass(frozen=True)
class Page:
    items: Sequence[Contract]
    total: int
    page: int
    per_page: int

    @property
    def pages(self) -> int:
        return max(1, math.ceil(self.total / self.per_page))

    @property
    def has_previous(self) -> bool:
        return self.page > 1

    @property
    def has_next(self) -> bool:
        return self.page < self.pages

    @property
    def first_index(self) -> int:
        return 0 if not self.total else (self.page - 1) * self.per_page + 1

    @property
    def last_index(self) -> int:
        return min(self.total, self.page * self.per_page)


@dataclass(frozen=True)
class ExportRow:
    """One line of the CSV: a document of a contract (a contract without documents gives one line)."""

    contract_id: int
    transaction_date: date
    amount: int
    tax_amount: int
    counterparty_name: str
    business_name: str
    number: str
    filename: str | None
    sha256: str | None
    storage_key: str | None
    completed_at: datetime | None
    timestamp_at: datetime | None

    @property
    def tax_excluded_amount(self) -> int:
        return self.amount - self.tax_amount


def sees_everything(actor: StaffUser) -> bool:
    return actor.role in (Role.ADMIN, Role.AUDITOR)


def search_contracts(session: Session, criteria: SearchCriteria, *, actor: StaffUser) -> Page:
    """One page of the contracts matching every given filter, within the actor's scope.

    Staff and approvers see their department's contracts and those they sign; auditors and admins
    see all. A page past the end is clamped to the last page.
    """
    conditions = _conditions(criteria, actor)
    total = session.scalar(select(func.count()).select_from(Contract).where(*conditions)) or 0
    page = min(criteria.page, max(1, math.ceil(total / criteria.per_page)))
    query = (
        select(Contract)
        .where(*conditions)
        .order_by(*_order(criteria))
        .limit(criteria.per_page)
        .offset((page - 1) * criteria.per_page)
    )
    return Page(items=list(session.scalars(query)), total=total, page=page, per_page=criteria.per_page)


def count_contracts(session: Session, criteria: SearchCriteria, *, actor: StaffUser) -> int:
    return session.scalar(select(func.count()).select_from(Contract).where(*_conditions(criteria, actor))) or 0


def export_rows(session: Session, criteria: SearchCriteria, *, actor: StaffUser,
                batch_size: int = 1000) -> Iterator[ExportRow]:
    """Every matching contract's documents in search order, read in batches (flat memory).

    The file is each document's current revision (the signed, timestamped one once completed);
    the timestamp time comes from the latest batch verification of that revision, if any.
    """
    current = (
        select(DocumentRevision.document_id, func.max(DocumentRevision.number).label("number"))
        .group_by(DocumentRevision.document_id)
        .subquery()
    )
    checked = (
        select(VerificationResult.revision_id, func.max(VerificationResult.timestamp_at).label("timestamp_at"))
        .group_by(VerificationResult.revision_id)
        .subquery()
    )
    query = (
        select(
            Contract.id, Contract.transaction_date, Contract.amount, Contract.tax_amount,
            Contract.counterparty_name, Contract.business_name, Contract.number,
            ContractDocument.filename, DocumentRevision.sha256, DocumentRevision.storage_key,
            Contract.completed_at, checked.c.timestamp_at,
        )
        .outerjoin(ContractDocument, ContractDocument.contract_id == Contract.id)
        .outerjoin(current, current.c.document_id == ContractDocument.id)
        .outerjoin(DocumentRevision, and_(DocumentRevision.document_id == ContractDocument.id,
                                          DocumentRevision.number == current.c.number))
        .outerjoin(checked, checked.c.revision_id == DocumentRevision.id)
        .where(*_conditions(criteria, actor))
        .order_by(*_order(criteria), ContractDocument.position)
        .execution_options(yield_per=batch_size)
    )
    for row in session.execute(query):
        yield ExportRow(*row)


def _conditions(criteria: SearchCriteria, actor: StaffUser) -> list[ColumnElement[bool]]:
    conditions: list[ColumnElement[bool]] = []
    if not sees_everything(actor):
        signed_by_actor = select(Party.contract_id).where(Party.staff_user_id == actor.id)
        conditions.append(or_(Contract.department_id == actor.department_id, Contract.id.in_(signed_by_actor)))
    history = criteria.include_history
    if criteria.date_from or criteria.date_to:
        conditions.append(_with_history(
            _between(Contract.transaction_date, criteria.date_from, criteria.date_to),
            "transaction_date", _between(MetadataCorrection.old_date, criteria.date_from, criteria.date_to),
            history))
    if criteria.amount_min is not None or criteria.amount_max is not None:
        conditions.append(_amount_condition(criteria))
    if criteria.counterparty:
        needle = normalize_name(criteria.counterparty)
        conditions.append(_with_history(
            Contract.counterparty_name_normalized.contains(needle, autoescape=True), "counterparty_name",
            MetadataCorrection.old_normalized.contains(needle, autoescape=True), history))
    if criteria.business_name:
        needle = criteria.business_name
        conditions.append(_with_history(
            Contract.business_name.contains(needle, autoescape=True), "business_name",
            MetadataCorrection.old_value.contains(needle, autoescape=True), history))
    if criteria.number:
        conditions.append(func.upper(Contract.number).contains(criteria.number.upper(), autoescape=True))
    if criteria.statuses:
        conditions.append(Contract.status.in_(criteria.statuses))
    if criteria.department_id:
        conditions.append(Contract.department_id == criteria.department_id)
    return conditions


def _amount_condition(criteria: SearchCriteria) -> ColumnElement[bool]:
    # R22: the tax-exclusive amount is derived (税込 - 税額), so both bases search the same rows.
    if criteria.amount_basis is AmountBasis.TAX_EXCLUDED:
        return _between(Contract.amount - Contract.tax_amount, criteria.amount_min, criteria.amount_max)
    return _with_history(
        _between(Contract.amount, criteria.amount_min, criteria.amount_max), "amount",
        _between(MetadataCorrection.old_number, criteria.amount_min, criteria.amount_max),
        criteria.include_history)


def _between(column: Any, low: Any, high: Any) -> ColumnElement[bool]:
    parts = []
    if low is not None:
        parts.append(column >= low)
    if high is not None:
        parts.append(column <= high)
    return and_(*parts)


def _with_history(current: ColumnElement[bool], field: str, old: ColumnElement[bool],
                  include_history: bool) -> ColumnElement[bool]:
    if not include_history:
        return current
    corrected = exists().where(MetadataCorrection.contract_id == Contract.id, MetadataCorrection.field == field, old)
    return or_(current, corrected)


def _order(criteria: SearchCriteria) -> list[Any]:
    amount = Contract.amount - Contract.tax_amount if criteria.amount_basis is AmountBasis.TAX_EXCLUDED \
        else Contract.amount
    column = {
        "date": Contract.transaction_date,
        "amount": amount,
        "counterparty": Contract.counterparty_name_normalized,
        "business": Contract.business_name,
        "number": Contract.number,
        "completed": Contract.completed_at,
    }[criteria.sort]
    if criteria.descending:
        return [column.desc(), Contract.id.desc()]
    return [column.asc(), Contract.id.asc()]


def build_query(criteria: SearchCriteria, actor: StaffUser) -> Select[tuple[Contract]]:
    """The unpaginated query, for callers that page or stream themselves (the JSON API)."""
    return select(Contract).where(*_conditions(criteria, actor)).order_by(*_order(criteria))
