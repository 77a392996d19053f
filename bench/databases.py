"""The database a bench runs on: `--database sqlite` (a file in a temporary directory) or a PostgreSQL URL,
next to which a database of its own is created for the run and dropped afterwards."""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from contextlib import contextmanager

from tests.conftest import throwaway_postgres


@contextmanager
def scratch_database(option: str, *, filename: str = "bench.sqlite3") -> Iterator[str]:
    """The URL of an empty database for one run (not migrated), removed when the block ends."""
    if option == "sqlite":
        with tempfile.TemporaryDirectory() as directory:
            yield f"sqlite:///{directory}/{filename}"
        return
    with throwaway_postgres("keiyaku_bench", migrated=False, server_url=option) as url:
        yield url

def label(url: str) -> str:
    return "SQLite" if url.startswith("sqlite") else "PostgreSQL"
