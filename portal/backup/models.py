"""One row per backup made or attempted, in the database of the portal that made it, so that every
server's admin page shows the same last backup (the backup directory may be on the worker's host)."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import JSON, BigInteger, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from portal.db import Base, str_enum_type
from portal.types import UTCDateTime, intpk, utc_datetime


class BackupStatus(StrEnum):
    SUCCEEDED = "succeeded"
    FAILED = "failed"

    @property
    def label(self) -> str:
        return {"succeeded": "成功", "failed": "失敗"}[self.value]


class BackupRun(Base):
    """A backup: when, where, how big, and what its last verification found."""

    __tablename__ = "backup_runs"

    id: Mapped[intpk]
    name: Mapped[str] = mapped_column(String(64), index=True)  # directory name; "" when it failed early
    directory: Mapped[str] = mapped_column(Text, default="")
    trigger: Mapped[str] = mapped_column(String(16))  # schedule | command
    status: Mapped[BackupStatus] = mapped_column(str_enum_type(BackupStatus))
    started_at: Mapped[utc_datetime]
    finished_at: Mapped[utc_datetime]
    size_bytes: Mapped[int] = mapped_column(BigInteger, default=0)
    counts: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    error: Mapped[str] = mapped_column(Text, default="")
    verified_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    verification_ok: Mapped[bool | None] = mapped_column()
    verification_problems: Mapped[str] = mapped_column(Text, default="")
