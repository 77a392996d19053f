"""Which backups to keep: the newest of each of the last N days, N months and N years.

The generations overlap as in restic's `forget --keep-daily/--keep-monthly/--keep-yearly`: today's
backup is also this month's and this year's newest. Days, months and years are those of the portal's
time zone (TIMEZONE), so a backup at 02:30 JST counts for that JST day.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime, tzinfo
from typing import TypeVar

T = TypeVar("T")


@dataclass(frozen=True)
class Keep:
    daily: int
    monthly: int
    yearly: int


def to_keep(backups: Iterable[T], created_at: Callable[[T], datetime], keep: Keep,
            zone: tzinfo) -> dict[int, list[str]]:
    """Map the index of each kept backup (in the order given) to why it is kept (日次, 月次, 年次)."""
    items = sorted(enumerate(backups), key=lambda pair: created_at(pair[1]), reverse=True)
    kept: dict[int, list[str]] = {}
    for label, count, period in (("日次", keep.daily, "%Y-%m-%d"), ("月次", keep.monthly, "%Y-%m"),
                                 ("年次", keep.yearly, "%Y")):
        seen: set[str] = set()
        for index, backup in items:
            if len(seen) >= count:
                break
            bucket = created_at(backup).astimezone(zone).strftime(period)
            if bucket in seen:
                continue
            seen.add(bucket)
            kept.setdefault(index, []).append(label)
    return kept
