"""Preservation records (電子帳簿保存法): metadata corrections, retention, tombstones, batch verification.

Rows here are never updated except a VerificationRun's progress counters; corrections and
tombstones are append-only.
"""

from __future__ import annotations

from datetime import date, datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import JSON, BigInteger, CheckConstraint, Date, ForeignKey, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from portal.auth.models import Department, StaffUser
from portal.db import Base, str_enum_type
from portal.types import UTCDateTime, intpk, utc_datetime, yen


class MetadataCorrection(Base):
    """One field changed by a correction. Fields changed together share a version number.

    R20: the Contract row holds the current value; this row keeps the previous one, who, when and why.
    """

    __tablename__ = "metadata_corrections"
    __table_args__ = (UniqueConstraint("contract_id", "version", "field"),)

    id: Mapped[intpk]
    contract_id: Mapped[int] = mapped_column(ForeignKey("contracts.id"), index=True)
    version: Mapped[int]  # 2 = first correction (version 1 is the metadata as completed)
    field: Mapped[str] = mapped_column(String(40))
    old_value: Mapped[str] = mapped_column(Text)
    new_value: Mapped[str] = mapped_column(Text)
    # The old value typed again, so that search can match it (R20: the history is searchable).
    old_normalized: Mapped[str] = mapped_column(String(200), default="", index=True)  # 取引先, 業務名
    old_number: Mapped[int | None] = mapped_column(BigInteger)  # 金額, 税額
    old_date: Mapped[date | None] = mapped_column(Date)  # 取引年月日
    reason: Mapped[str] = mapped_column(Text)
    corrected_by_id: Mapped[int] = mapped_column(ForeignKey("staff_users.id"))
    corrected_at: Mapped[utc_datetime]

    corrected_by: Mapped[StaffUser] = relationship()


class RetentionPolicy(Base):
    """Retention years for a department, a contract type, or (both empty) the default. Never below 7."""

    __tablename__ = "retention_policies"
    __table_args__ = (
        UniqueConstraint("department_id", "contract_type"),
        CheckConstraint("years >= 7", name="years_at_least_7"),
    )

    id: Mapped[intpk]
    department_id: Mapped[int | None] = mapped_column(ForeignKey("departments.id"), index=True)
    contract_type: Mapped[str] = mapped_column(String(50), default="")
    years: Mapped[int]
    note: Mapped[str] = mapped_column(Text, default="")
    updated_by_id: Mapped[int] = mapped_column(ForeignKey("staff_users.id"))
    updated_at: Mapped[utc_datetime]

    department: Mapped[Department | None] = relationship()


class Tombstone(Base):
    """What remains of a contract deleted after its retention period: metadata, hashes, who and why."""

    __tablename__ = "tombstones"

    id: Mapped[intpk]
    contract_id: Mapped[int] = mapped_column(index=True)  # no foreign key: the row is gone
    contract_number: Mapped[str] = mapped_column(String(40), index=True)
    business_name: Mapped[str] = mapped_column(String(200))
    counterparty_name: Mapped[str] = mapped_column(String(200))
    department_id: Mapped[int | None] = mapped_column(ForeignKey("departments.id"))
    amount: Mapped[yen]
    tax_amount: Mapped[yen]
    transaction_date: Mapped[date] = mapped_column(Date)
    completed_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    retention_ended_on: Mapped[date] = mapped_column(Date)
    documents: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)  # filename, sha256 per revision
    corrections: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)
    reason: Mapped[str] = mapped_column(Text)
    deleted_by_id: Mapped[int] = mapped_column(ForeignKey("staff_users.id"))
    deleted_at: Mapped[utc_datetime]

    deleted_by: Mapped[StaffUser] = relationship()


class RunStatus(StrEnum):
    QUEUED = "queued"
    RUNNING = "running"
    FINISHED = "finished"
    FAILED = "failed"

    @property
    def label(self) -> str:
        return {"queued": "待機中", "running": "検証中", "finished": "完了", "failed": "中断"}[self.value]


class VerificationRun(Base):
    """一括検証 (R25): every signature and timestamp of contracts completed in a period."""

    __tablename__ = "verification_runs"

    id: Mapped[intpk]
    period_from: Mapped[date] = mapped_column(Date)
    period_to: Mapped[date] = mapped_column(Date)
    status: Mapped[RunStatus] = mapped_column(str_enum_type(RunStatus))
    total: Mapped[int] = mapped_column(default=0)
    processed: Mapped[int] = mapped_column(default=0)
    failed: Mapped[int] = mapped_column(default=0)
    error: Mapped[str] = mapped_column(Text, default="")
    started_by_id: Mapped[int] = mapped_column(ForeignKey("staff_users.id"))
    created_at: Mapped[utc_datetime]
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime())

    started_by: Mapped[StaffUser] = relationship()
    results: Mapped[list[VerificationResult]] = relationship(
        back_populates="run", order_by="VerificationResult.id", cascade="all, delete-orphan"
    )

    @property
    def percent(self) -> int:
        return 100 if not self.total else int(100 * self.processed / self.total)

    @property
    def is_active(self) -> bool:
        return self.status in (RunStatus.QUEUED, RunStatus.RUNNING)


class VerificationResult(Base):
    """The verdict on one stored document revision (the current one of each document)."""

    __tablename__ = "verification_results"

    id: Mapped[intpk]
    run_id: Mapped[int] = mapped_column(ForeignKey("verification_runs.id"), index=True)
    contract_id: Mapped[int] = mapped_column(index=True)  # no foreign key: results outlive deletion
    contract_number: Mapped[str] = mapped_column(String(40))
    revision_id: Mapped[int] = mapped_column(index=True)
    filename: Mapped[str] = mapped_column(String(255))
    sha256: Mapped[str] = mapped_column(String(64))
    is_valid: Mapped[bool]
    signature_count: Mapped[int] = mapped_column(default=0)
    level: Mapped[str] = mapped_column(String(16), default="")
    timestamp_at: Mapped[datetime | None] = mapped_column(UTCDateTime())  # latest timestamp in the file
    problems: Mapped[list[str]] = mapped_column(JSON, default=list)
    checked_at: Mapped[utc_datetime]

    run: Mapped[VerificationRun] = relationship(back_populates="results")
