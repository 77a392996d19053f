"""Several servers started at once each run `flask init` on one new PostgreSQL database: the advisory lock lets one
migrate while the others wait; all succeed and the schema is at the head once."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text

from portal import migrate
from tests.conftest import TEST_MASTER_KEY, throwaway_postgres

REPO = Path(__file__).resolve().parents[2]
SERVERS = 4


@pytest.fixture
def empty_postgres() -> Iterator[str]:
    with throwaway_postgres("keiyaku_init", migrated=False) as url:
        yield url


def test_servers_started_at_once_migrate_the_new_database_once(empty_postgres: str, tmp_path: Path) -> None:
    env = {**os.environ, "PORTAL_DATABASE_URL": empty_postgres, "PORTAL_SECRET_KEY": "insecure-test-key",
           "PORTAL_MASTER_KEY": TEST_MASTER_KEY, "PORTAL_OUTBOX_WORKER": "false"}
    servers = [subprocess.Popen([sys.executable, "-m", "flask", "--app", "portal:create_app", "init"], cwd=REPO,
                                env={**env, "PORTAL_INSTANCE_PATH": str(tmp_path / f"server{i}")},
                                stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
               for i in range(SERVERS)]
    outputs = [server.communicate(timeout=300)[0] for server in servers]

    assert [server.returncode for server in servers] == [0] * SERVERS, "\n---\n".join(outputs)
    engine = create_engine(empty_postgres)
    try:
        with engine.connect() as connection:
            assert migrate.current(connection) == migrate.heads()
            assert connection.scalar(text("SELECT count(*) FROM alembic_version")) == len(migrate.heads())
    finally:
        engine.dispose()
