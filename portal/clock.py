"""The one place the portal asks for the time, so tests can freeze it."""

from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

JST = ZoneInfo("Asia/Tokyo")
_frozen: datetime | None = None


def now() -> datetime:
    """Return the current time as an aware UTC datetime."""
    return _frozen if _frozen is not None else datetime.now(UTC)


def freeze(moment: datetime | None) -> None:
    """Pin now() to an aware moment (tests only); None releases it."""
    global _frozen
    if moment is not None and moment.tzinfo is None:
        raise ValueError("freeze() needs an aware datetime")
    _frozen = moment.astimezone(UTC) if moment else None
