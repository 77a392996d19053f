"""A consistent copy of the database while the portal runs, and putting one back.

SQLite: the online backup API copies the database page by page into a new file; writers are not
held up, and the copy is one committed state. PostgreSQL: a REPEATABLE READ transaction exports its
snapshot, pg_dump -Fc dumps exactly that snapshot (--snapshot) and the counts of the manifest are
read in the same transaction, so they describe the dump and nothing written since.
"""

from __future__ import annotations

import os
import shutil
import sqlite3
import subprocess
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, create_engine, inspect, text
from sqlalchemy.engine import URL, make_url

from portal.db import make_engine


class SnapshotError(Exception):
    """The database could not be copied or put back; the message says why, in Japanese."""


def dialect_of(url: str) -> str:
    return "postgresql" if make_url(url).get_backend_name() == "postgresql" else "sqlite"


def sqlite_path(url: str) -> Path:
    database = make_url(url).database
    if not database or database == ":memory:":
        raise SnapshotError("メモリ上の SQLite データベースはバックアップできません。")
    return Path(database)


def _libpq(url: str) -> tuple[list[str], dict[str, str]]:
    """Connection arguments for pg_dump/pg_restore, the password in PGPASSWORD (not on the command line)."""
    parsed: URL = make_url(url)
    args = ["--dbname", parsed.database or "postgres"]
    if parsed.host:
        args += ["--host", parsed.host]
    if parsed.port:
        args += ["--port", str(parsed.port)]
    if parsed.username:
        args += ["--username", parsed.username]
    env = {**os.environ}
    if parsed.password:
        env["PGPASSWORD"] = str(parsed.password)
    return args, env


def tool(name: str, configured: str) -> str:
    path = shutil.which(configured or name)
    if path is None:
        raise SnapshotError(f"{configured or name} が見つかりません（PostgreSQL クライアント 15 以上をインストールして"
                            "ください: apt-get install postgresql-client）。")
    return path


def tool_version(path: str) -> str:
    result = subprocess.run([path, "--version"], capture_output=True, text=True,  # noqa: S603 (configured client)
                            check=False, timeout=30)
    return result.stdout.strip()


@contextmanager
def sqlite_snapshot(url: str, into: Path) -> Iterator[Connection]:
    """Copy the SQLite database into `into` with the online backup API; yield a connection on the copy."""
    source = sqlite3.connect(str(sqlite_path(url)), timeout=30)
    try:
        fd = os.open(into, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        os.close(fd)
        target = sqlite3.connect(str(into))
        try:
            source.backup(target, pages=1024)
        finally:
            target.close()
    finally:
        source.close()
    engine = create_engine(f"sqlite:///{into}")
    try:
        with engine.connect() as connection:
            yield connection
    finally:
        engine.dispose()


@contextmanager
def postgresql_snapshot(url: str, pg_dump: str, write: Callable[[bytes], object]) -> Iterator[Connection]:
    """Dump the database with pg_dump -Fc into `write`; yield a connection that sees the dumped snapshot."""
    engine = make_engine(url)
    try:
        with engine.connect().execution_options(isolation_level="REPEATABLE READ") as connection:
            snapshot = connection.execute(text("SELECT pg_export_snapshot()")).scalar_one()
            args, env = _libpq(url)
            with tempfile.TemporaryFile() as errors, subprocess.Popen(  # noqa: S603 (the configured pg_dump)
                    [pg_dump, "--format=custom", "--no-owner", "--no-privileges", f"--snapshot={snapshot}", *args],
                    stdout=subprocess.PIPE, stderr=errors, env=env) as process:
                assert process.stdout is not None
                while chunk := process.stdout.read(1024 * 1024):
                    write(chunk)
                if process.wait() != 0:
                    errors.seek(0)
                    message = errors.read().decode(errors="replace").strip().splitlines()
                    raise SnapshotError(f"pg_dump が失敗しました: {message[-1] if message else process.returncode}")
            yield connection
            connection.rollback()
    finally:
        engine.dispose()


def is_empty_database(url: str) -> bool:
    """No table in the database (a SQLite file that does not exist counts as empty)."""
    if dialect_of(url) == "sqlite" and not sqlite_path(url).exists():
        return True
    engine = make_engine(url)
    try:
        with engine.connect() as connection:
            return not inspect(connection).get_table_names()
    except Exception as exc:
        raise SnapshotError(f"復元先のデータベースに接続できません: {exc.__class__.__name__}") from None
    finally:
        engine.dispose()


def restore_sqlite(copy: Path, url: str) -> None:
    """Put the copied SQLite file in place of the target database (its -wal and -shm removed)."""
    path = sqlite_path(url)
    path.parent.mkdir(parents=True, exist_ok=True)
    for stale in (path, Path(f"{path}-wal"), Path(f"{path}-shm")):
        stale.unlink(missing_ok=True)
    shutil.copyfile(copy, path)
    os.chmod(path, 0o600)


def restore_postgresql(dump: Path, url: str, pg_restore: str, *, clean: bool) -> None:
    """pg_restore the dump into the target database (which must exist); `clean` drops what is there first."""
    args, env = _libpq(url)
    command = [pg_restore, "--no-owner", "--no-privileges", "--exit-on-error", *args]
    if clean:
        command += ["--clean", "--if-exists"]
    result = subprocess.run([*command, str(dump)], capture_output=True, text=True, env=env,  # noqa: S603
                            check=False, timeout=24 * 3600)
    if result.returncode != 0:
        raise SnapshotError(f"pg_restore が失敗しました: {result.stderr.strip()[-500:]}")


def describe(url: str) -> dict[str, Any]:
    parsed = make_url(url)
    return {"dialect": dialect_of(url), "database": parsed.database or ""}
