"""Objects in the store that no row references: what a killed upload or completion left behind.

A file is put before the row holding its key commits, so a young unreferenced file may be an upload
still under way: only objects older than `min_age` (an hour) count. Partial writes (temporary names
left by a killed process) never become a file and are collected the same way.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass

from portal.storage.backends import TEMPORARY_PREFIX
from portal.storage.service import FileStore, _is_key

MIN_AGE = dt.timedelta(hours=1)


@dataclass(frozen=True)
class Orphan:
    name: str
    modified_at: dt.datetime

    @property
    def is_partial_write(self) -> bool:
        return self.name.startswith(TEMPORARY_PREFIX)


def find_orphans(store: FileStore, referenced: Iterable[str], *, now: dt.datetime,
                 min_age: dt.timedelta = MIN_AGE) -> list[Orphan]:
    """Stored files and partial writes older than `min_age` whose name is not in `referenced`.
    Raises StorageError when the store cannot be listed."""
    keep = set(referenced)
    return sorted((Orphan(name, modified) for name, modified in store.objects()
                   if (_is_key(name) or name.startswith(TEMPORARY_PREFIX))
                   and name not in keep and now - modified >= min_age),
                  key=lambda orphan: orphan.name)


def remove_orphans(store: FileStore, orphans: Iterable[Orphan]) -> int:
    """Remove what find_orphans() returned; returns how many. Raises StorageError."""
    count = 0
    for orphan in orphans:
        store.remove_unreferenced(orphan.name)
        count += 1
    return count
