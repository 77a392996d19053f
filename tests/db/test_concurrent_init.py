"""Several servers started at once each run `flask init` on one new PostgreSQL database: the advisory lock lets one
migrate while the others wait; all succeed and the schema is at the head once."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from portal import migrate
from tests.conftest import POSTGRES_URL, TEST_MASTER_KEY, require

REPO = Path(__file__).resolve().parents[2]
SERVERS = 4


@pytest.fixture
def empty_postgres() -> Iterator[str]:
    require(bool(POSTGRES_URL), "PORTAL_TEST_POSTGRES_URL is not set (PostgreSQL on loopback)")
    base = make_url(POSTGRES_URL)
    name = f"keiyaku_init_{uuid.uuid4().hex[:8]}"
    admin = create_engine(base, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield base.set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as connection:
            connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


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
