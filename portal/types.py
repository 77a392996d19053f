"""Shared column types: aware UTC datetimes everywhere (R28), integer yen, e-mail strings."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

from sqlalchemy import BigInteger, DateTime, Integer, String, TypeDecorator, func
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import mapped_column


class UTCDateTime(TypeDecorator[datetime]):
    """Stores aware datetimes as UTC; SQLite loses tzinfo, so it is put back on read."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given; use portal.clock.now()")
        return value.astimezone(UTC)

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


intpk = Annotated[int, mapped_column(Integer, primary_key=True)]
utc_datetime = Annotated[datetime, mapped_column(UTCDateTime())]
utc_now = Annotated[datetime, mapped_column(UTCDateTime(), server_default=func.now())]
yen = Annotated[int, mapped_column(BigInteger)]
MAX_YEN = 10**15  # well inside BIGINT; no public contract is larger
email_str = Annotated[str, mapped_column(String(254))]
