"""The database a bench runs on: `--database sqlite` (a file in a temporary directory) or a PostgreSQL URL,
next to which a database of its own is created for the run and dropped afterwards."""

from __future__ import annotations

import tempfile
import uuid
from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url


@contextmanager
def scratch_database(option: str, *, filename: str = "bench.sqlite3") -> Iterator[str]:
    """The URL of an empty database for one run (not migrated), removed when the block ends."""
    if option == "sqlite":
        with tempfile.TemporaryDirectory() as directory:
            yield f"sqlite:///{directory}/{filename}"
        return
    base = make_url(option)
    name = f"keiyaku_bench_{uuid.uuid4().hex[:8]}"
    admin = create_engine(base, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield base.set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as connection:
            connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def label(url: str) -> str:
    return "SQLite" if url.startswith("sqlite") else "PostgreSQL"
