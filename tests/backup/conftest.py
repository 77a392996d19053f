"""Backup tests: the contracts world (tests/contracts/fixtures.py) with its own master key, a backup
key file outside the backup directory, and an empty database to restore into."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from click.testing import Result
from flask import Flask

from tests.conftest import throwaway_postgres
from tests.contracts.fixtures import world  # noqa: F401  (fixtures)

MASTER_KEY = os.urandom(32).hex()  # not the test suite's usual key: a restore must bring this one back


@pytest.fixture
def app_config(pki_dir: str, tmp_path: Path) -> dict[str, Any]:
    return {"PKI_DIR": pki_dir, "AGENCY_NAME": "岡山県", "CONTACT_PHONE": "086-000-0000", "MASTER_KEY": MASTER_KEY,
            "BACKUP_DIR": str(tmp_path / "backups"), "BACKUP_TIME": ""}


@pytest.fixture
def key_file(tmp_path: Path) -> Path:
    path = tmp_path / "keys" / "backup.key"
    path.parent.mkdir()
    path.write_text("correct horse battery staple 2026\n")
    return path


@pytest.fixture
def cli(app: Flask) -> Callable[..., Result]:
    runner = app.test_cli_runner()

    def invoke(*args: str) -> Result:
        return runner.invoke(args=["backup", *args])

    return invoke


@pytest.fixture
def empty_database(database_url: str, tmp_path: Path) -> Iterator[str]:
    """A database that holds nothing: a SQLite file not yet there, or a new PostgreSQL database."""
    if not database_url.startswith("postgresql"):
        yield f"sqlite:///{tmp_path / 'restored-db' / 'portal.sqlite3'}"
        return
    with throwaway_postgres("keiyaku_restore", migrated=False, server_url=database_url) as url:
        yield url
