"""Rows that make background work happen once across every process: leases and queued jobs."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import JSON, Index, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from portal.db import Base, str_enum_type
from portal.types import UTCDateTime, intpk, utc_datetime


class JobLease(Base):
    """One row per periodic job: who runs it now (until when) and when it is next due."""

    __tablename__ = "job_leases"

    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    next_run_at: Mapped[utc_datetime]
    holder: Mapped[str] = mapped_column(String(128), default="")
    held_until: Mapped[datetime | None] = mapped_column(UTCDateTime())
    last_started_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    last_finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    last_error: Mapped[str] = mapped_column(Text, default="")
    runs: Mapped[int] = mapped_column(default=0)


class QueuedJobStatus(StrEnum):
    PENDING = "pending"  # waiting for a worker (or for its retry time)
    RUNNING = "running"  # claimed; the worker keeps heartbeat_at fresh
    DONE = "done"
    FAILED = "failed"  # gave up after max attempts; last_error says why

    @property
    def label(self) -> str:
        return {"pending": "待機中", "running": "実行中", "done": "完了", "failed": "失敗"}[self.value]


class QueuedJob(Base):
    """A one-off piece of work done by a worker, at most one at a time per (kind, key)."""

    __tablename__ = "queued_jobs"
    __table_args__ = (
        UniqueConstraint("kind", "key"),
        Index("ix_queued_jobs_due", "status", "run_after"),
    )

    id: Mapped[intpk]
    kind: Mapped[str] = mapped_column(String(64))
    key: Mapped[str] = mapped_column(String(128))  # what the job is about: enqueueing it twice is one job
    payload: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    status: Mapped[QueuedJobStatus] = mapped_column(str_enum_type(QueuedJobStatus))
    attempts: Mapped[int] = mapped_column(default=0)
    run_after: Mapped[utc_datetime]
    claimed_by: Mapped[str] = mapped_column(String(128), default="")
    heartbeat_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    last_error: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[utc_datetime]
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
