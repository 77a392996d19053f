"""Retention (R26): how long a contract is kept, and deletion only after that, by an admin, with a reason.

The period is counted the way Japanese local governments count 文書の保存期間: from 1 April of the
fiscal year after the one in which the contract was completed (完結した日の属する年度の翌年度の
4月1日から起算). 10 years by default; never below 7 (法人税法施行規則 59条: 7 years for 帳簿書類).
"""

from __future__ import annotations

from datetime import date, datetime

from flask import current_app
from sqlalchemy import Table, delete, or_, select
from sqlalchemy.orm import Session

from portal.audit import chain as audit_chain
from portal.audit.actions import AuditAction
from portal.audit.service import Actor, RequestInfo, record
from portal.auth.models import Department, Role, StaffUser
from portal.clock import JST
from portal.contracts.models import Contract
from portal.db import Base
from portal.errors import DomainError
from portal.formatting import wareki
from portal.preservation.models import MetadataCorrection, RetentionPolicy, Tombstone


class RetentionNotEnded(DomainError):
    """The retention period has not ended: nothing may be deleted."""

    status_code = 409


class RetentionRefused(DomainError):
    status_code = 403


class InvalidRetention(DomainError):
    """A policy below the legal minimum, or a deletion without a reason."""


def retention_years(session: Session, contract: Contract) -> int:
    """Years from the most specific policy: department + type, department, type, default; at least the minimum."""
    return retention_years_for(session, department_id=contract.department_id, contract_type=contract.contract_type)


def retention_years_for(session: Session, *, department_id: int, contract_type: str) -> int:
    """retention_years() for a contract of this department and type, before it exists (eligibility, R12)."""
    policies = session.scalars(select(RetentionPolicy).where(
        or_(RetentionPolicy.department_id == department_id, RetentionPolicy.department_id.is_(None)),
        RetentionPolicy.contract_type.in_({"", contract_type or ""}),
    )).all()

    def rank(policy: RetentionPolicy) -> tuple[bool, bool]:
        return (policy.department_id is not None, policy.contract_type != "")

    config = current_app.config
    years = max(policies, key=rank).years if policies else int(config["RETENTION_YEARS_DEFAULT"])
    return max(years, int(config["RETENTION_YEARS_MINIMUM"]))


def retention_basis(contract: Contract) -> date:
    """The day the record was completed (締結日, JST); the 取引年月日 for a contract never completed."""
    return contract.completed_at.astimezone(JST).date() if contract.completed_at else contract.transaction_date


def retention_ends(session: Session, contract: Contract) -> date:
    """The last day the contract must be kept (inclusive), e.g. completed 2025-08-01, 10 years → 2036-03-31."""
    basis = retention_basis(contract)
    fiscal_year = basis.year if basis.month >= 4 else basis.year - 1
    return date(fiscal_year + 1 + retention_years(session, contract), 3, 31)


def set_retention_policy(session: Session, *, department: Department | None, contract_type: str, years: int,
                         note: str, actor: StaffUser, now: datetime) -> RetentionPolicy:
    """Create or change the policy for (department, contract type); both empty is the default.

    Raises RetentionRefused for non-admins, InvalidRetention below RETENTION_YEARS_MINIMUM.
    """
    if actor.role != Role.ADMIN:
        raise RetentionRefused("保存期間の設定は管理者が行います。")
    minimum = int(current_app.config["RETENTION_YEARS_MINIMUM"])
    if years < minimum:
        raise InvalidRetention(f"保存期間は{minimum}年以上にしてください（電子帳簿保存法・法人税法の保存期間）。")
    department_id = department.id if department else None
    policy = session.scalar(select(RetentionPolicy).where(
        RetentionPolicy.department_id.is_(None) if department_id is None
        else RetentionPolicy.department_id == department_id,
        RetentionPolicy.contract_type == contract_type.strip()))
    previous = policy.years if policy else None
    if policy is None:
        policy = RetentionPolicy(department_id=department_id, contract_type=contract_type.strip())
        session.add(policy)
    policy.years, policy.note, policy.updated_by_id, policy.updated_at = years, note.strip(), actor.id, now
    session.flush()
    record(session, actor=Actor.staff(actor), action=AuditAction.RETENTION_POLICY_SET, subject=policy, now=now,
           department_id=department_id, contract_type=policy.contract_type, years=years, previous_years=previous)
    return policy


def delete_after_retention(session: Session, contract: Contract, *, reason: str, actor: StaffUser, now: datetime,
                           request: RequestInfo | None = None) -> Tombstone:
    """Delete a contract whose retention period has ended, leaving a tombstone and an audit event.

    The tombstone keeps the metadata, every document revision's SHA-256 and the corrections, so the
    deletion itself stays provable. The contract's audit events go with it; the audit event of the
    deletion lists their positions and hashes in the hash chain, which still verifies.
    Raises RetentionRefused (not an admin, or signing still open), InvalidRetention (no reason),
    RetentionNotEnded (on or before the last day of retention).
    """
    if actor.role != Role.ADMIN:
        raise RetentionRefused("保存期間経過後の削除は管理者だけが行えます。")
    if contract.status.is_open:
        raise RetentionRefused("署名手続き中・作成中の契約は削除できません。")
    if not reason.strip():
        raise InvalidRetention("削除の理由を入力してください。")
    ends = retention_ends(session, contract)
    if now.astimezone(JST).date() <= ends:
        raise RetentionNotEnded(f"保存期間（{wareki(ends)}まで）が終わっていないため削除できません。")
    corrections = session.scalars(select(MetadataCorrection).where(MetadataCorrection.contract_id == contract.id)
                                  .order_by(MetadataCorrection.id)).all()
    tombstone = Tombstone(
        contract_id=contract.id, contract_number=contract.number, business_name=contract.business_name,
        counterparty_name=contract.counterparty_name, department_id=contract.department_id,
        amount=contract.amount, tax_amount=contract.tax_amount, transaction_date=contract.transaction_date,
        completed_at=contract.completed_at, retention_ended_on=ends, reason=reason.strip(),
        deleted_by_id=actor.id, deleted_at=now,
        documents=[{"filename": d.filename, "revision": r.number, "kind": r.kind.value, "sha256": r.sha256,
                    "storage_key": r.storage_key} for d in contract.documents for r in d.revisions],
        corrections=[{"version": c.version, "field": c.field, "old": c.old_value, "new": c.new_value,
                      "reason": c.reason, "at": c.corrected_at.isoformat(), "by": c.corrected_by_id}
                     for c in corrections],
    )
    session.add(tombstone)
    info = request or RequestInfo()
    # The contract's operation log is kept exactly as long as the contract; this event is its tombstone.
    deleted_events = audit_chain.delete_for_retention(session, "contracts", str(contract.id))
    record(session, actor=Actor.staff(actor), action=AuditAction.CONTRACT_DELETED_AFTER_RETENTION,
           subject=("contracts", contract.id), now=now, ip=info.ip, user_agent=info.user_agent,
           number=contract.number, retention_ended_on=ends.isoformat(), reason=reason.strip(),
           **{audit_chain.DELETED_KEY: deleted_events})
    contract_id = contract.id
    session.flush()
    session.expunge(contract)
    _delete_rows(session, Base.metadata.tables["contracts"], [contract_id])
    session.flush()
    return tombstone


def _delete_rows(session: Session, table: Table, ids: list[int]) -> None:
    """Delete rows by primary key after every row that references them (any package's table)."""
    if not ids:
        return
    for other in Base.metadata.sorted_tables:
        for fk in other.foreign_keys:
            if fk.column.table is table and other.name != "tombstones":
                referencing = [row[0] for row in session.execute(
                    select(other.primary_key.columns.values()[0]).where(fk.parent.in_(ids)))]
                _delete_rows(session, other, referencing)
    session.execute(delete(table).where(table.primary_key.columns.values()[0].in_(ids)))
