"""Fixtures: a real database per dialect (SQLite always, PostgreSQL when PORTAL_TEST_POSTGRES_URL is
set), migrated once by alembic; a fresh app per test; real login through password and TOTP.

Tests commit for real (the browser and SMTP tests need other threads to see the data); every table
is emptied after each test instead of rolling back a savepoint.
"""

from __future__ import annotations

import contextlib
import importlib.util
import os
import re
import shutil
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from jinja2 import BytecodeCache
from jinja2.bccache import Bucket
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session

from portal import clock, create_app, migrate
from portal.db import Base, make_engine
from tests.services.redis_server import RedisServer
from tests.services.s3 import S3Server, moto_server_path
from tests.services.smtp import SmtpServer

IN_CI = os.environ.get("CI") == "true"
POSTGRES_URL = os.environ.get("PORTAL_TEST_POSTGRES_URL", "")
TEST_MASTER_KEY = "00" * 31 + "01"


class CompiledTemplates(BytecodeCache):
    """Templates compiled once per test process, not once per app: every test creates its own app, and
    compiling its pages again cost 25 of the 70 ms a new app took to render its first three pages."""

    def __init__(self) -> None:
        self.code: dict[str, bytes] = {}

    def load_bytecode(self, bucket: Bucket) -> None:
        if bucket.key in self.code:
            bucket.bytecode_from_string(self.code[bucket.key])  # checked against the template's source

    def dump_bytecode(self, bucket: Bucket) -> None:
        self.code[bucket.key] = bucket.bytecode_to_string()


Flask.jinja_options = {**Flask.jinja_options, "bytecode_cache": CompiledTemplates()}


def require(condition: bool, reason: str) -> None:
    """Skip with a reason on a developer laptop; fail under CI=true, where every part must be there."""
    if condition:
        return
    if IN_CI:
        pytest.fail(f"required component missing under CI: {reason}")
    pytest.skip(reason)


def require_tool(name: str) -> str:
    path = shutil.which(name)
    require(path is not None, f"{name} is not installed (apt-get install the package listed in README)")
    return path or ""


def _dialects() -> list[str]:
    return ["sqlite", "postgresql"] if POSTGRES_URL else ["sqlite"]


@pytest.fixture(scope="session", params=_dialects())
def database_url(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path_factory.mktemp('db') / 'portal.sqlite3'}"
        _migrate(url)
        yield url
        return
    base = make_url(POSTGRES_URL)
    name = f"keiyaku_test_{uuid.uuid4().hex[:8]}"
    admin = create_engine(base, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    url = base.set(database=name).render_as_string(hide_password=False)
    try:
        _migrate(url)
        yield url
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


@contextlib.contextmanager
def throwaway_postgres(prefix: str, *, migrated: bool = True, server_url: str = "") -> Iterator[str]:
    """A PostgreSQL database of its own (created, migrated, dropped after) on `server_url`'s server, by default
    the tests' one (then it fails under CI without one)."""
    if not server_url:
        require(bool(POSTGRES_URL), "PostgreSQL is not configured (set PORTAL_TEST_POSTGRES_URL)")
    base = make_url(server_url or POSTGRES_URL)
    name = f"{prefix}_{uuid.uuid4().hex[:8]}"
    admin = create_engine(base, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    url = base.set(database=name).render_as_string(hide_password=False)
    try:
        if migrated:
            _migrate(url)
        yield url
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def _migrate(url: str) -> None:
    engine = make_engine(url)
    with engine.begin() as connection:
        migrate.upgrade(connection)
    engine.dispose()


def test_config(database_url: str, instance: Path, **overrides: Any) -> dict[str, Any]:
    config: dict[str, Any] = {
        "TESTING": True,
        "INSTANCE_PATH": str(instance),
        "DATABASE_URL": database_url,
        "SECRET_KEY": "insecure-test-key",
        "MASTER_KEY": TEST_MASTER_KEY,
        "ARGON2_TIME_COST": 1,
        "ARGON2_MEMORY_KIB": 64,
        "RATELIMIT_ENABLED": False,
        "OUTBOX_WORKER": False,
        "COMPLETION_BACKGROUND": False,  # the last signer's request runs the completion job itself
        "VERIFY_PROCESSES": 1,  # 一括検証 in the test's process; tests that want child processes say so
        "MAIL_SERVER": "",
        "PUBLIC_BASE_URL": "http://localhost",
        "SERVER_NAME": None,
    }
    if database_url.startswith("postgresql"):  # nothing shared is generated on PostgreSQL: as `flask init` does
        config["PKI_DIR"] = shared_pki_dir()
    config.update(overrides)
    return config


PKI_IDENTITY = {"PUBLIC_BASE_URL": "http://localhost", "AGENCY_NAME": "岡山県", "SERVICE_NAME": "けいやくポータル"}
_shared_pki: dict[tuple[tuple[str, str], ...], str] = {}


def shared_pki_dir(**identity: str) -> str:
    """The built-in PKI of `identity` (default PKI_IDENTITY), created once per test run as `flask init`
    creates it: generating its keys is the slow part, so every test of the run shares it."""
    settings = {**PKI_IDENTITY, **identity}
    key = tuple(sorted(settings.items()))
    if key not in _shared_pki:
        import tempfile

        from portal.signing.service import ensure_pki

        directory = str(Path(tempfile.mkdtemp(prefix="portal-pki-")) / "pki")
        ensure_pki({"PKI_DIR": directory, **settings})
        _shared_pki[key] = directory
    return _shared_pki[key]


@pytest.fixture(scope="session")
def pki_dir() -> str:
    """The directory of shared_pki_dir() (tests/signing overrides it with its own identity)."""
    return shared_pki_dir()


@pytest.fixture
def smtp_server() -> Iterator[SmtpServer]:
    """A real SMTP server on loopback; `smtp_server.inbox.messages` holds what arrived."""
    server = SmtpServer()
    server.start()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def s3_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[S3Server]:
    """moto's S3 server on loopback, in its own process (`new_bucket()`, `settings(bucket)`)."""
    require(importlib.util.find_spec("boto3") is not None and moto_server_path() is not None,
            "boto3 and moto[server] are not installed (pip install -e '.[dev]')")
    server = S3Server(tmp_path_factory.mktemp("s3") / "moto.log")
    server.start()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    """Debian's redis-server (or valkey-server) on a free loopback port, no persistence."""
    binary = shutil.which("redis-server") or shutil.which("valkey-server")
    require(binary is not None, "redis-server is not installed (apt-get install redis-server)")
    require(importlib.util.find_spec("redis") is not None,
            "the redis client library is not installed (pip install -e '.[dev]')")
    server = RedisServer(binary or "", tmp_path_factory.mktemp("redis"))
    server.start()
    yield server
    server.stop()


@pytest.fixture
def app_config() -> dict[str, Any]:
    """Per-test overrides; a test changes settings by overriding this fixture or updating the dict."""
    return {}


@pytest.fixture
def mail_app_config(smtp_server: SmtpServer) -> dict[str, Any]:
    """Use as `app_config` (override the fixture in a module) to deliver to the test SMTP server."""
    return dict(smtp_server.settings)


@pytest.fixture
def app(database_url: str, tmp_path: Path, app_config: dict[str, Any]) -> Iterator[Flask]:
    application = create_app(test_config(database_url, tmp_path / "instance", **app_config))
    yield application
    clock.freeze(None)
    engine = application.extensions["portal.engine"]
    empty_tables(engine)
    engine.dispose()


def empty_tables(engine: Any) -> None:
    """Delete every row of every table (what each test leaves behind), and start every id sequence again.

    Only the tables holding rows are touched (one query finds them): a test writes to a few of them, and
    on PostgreSQL TRUNCATE of all of them, files and all, cost about a second per test, a DELETE of a
    few rows a millisecond.
    """
    tables = [table.name for table in reversed(Base.metadata.sorted_tables)]
    probe = " UNION ALL ".join(f"SELECT '{table}' WHERE EXISTS (SELECT 1 FROM \"{table}\")" for table in tables)
    with engine.begin() as conn:
        postgresql = engine.dialect.name == "postgresql"
        if postgresql:
            # A connection left idle in a transaction must fail the test run, not hang it.
            conn.execute(text("SET LOCAL lock_timeout = '20s'"))
            # The append-only trigger lets rows of the operation log go on the retention path only.
            conn.execute(text("SET LOCAL portal.audit_retention = 'on'"))
        holding = {row[0] for row in conn.execute(text(probe))}
        for table in tables:
            if table not in holding:
                continue
            if postgresql and table in APPEND_ONLY_TABLES:
                conn.execute(text(f'TRUNCATE "{table}"'))
            else:
                conn.execute(text(f'DELETE FROM "{table}"'))
        if postgresql:  # as TRUNCATE … RESTART IDENTITY did (SQLite numbers an emptied table from 1 again)
            conn.execute(text("SELECT setval(format('%I.%I', schemaname, sequencename), start_value, false) "
                              "FROM pg_sequences WHERE schemaname = current_schema() AND last_value IS NOT NULL"))


APPEND_ONLY_TABLES = {"audit_checkpoints"}  # its trigger refuses every DELETE (migration 0018); TRUNCATE passes


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    return app.test_client()


@pytest.fixture
def session(app: Flask) -> Iterator[Session]:
    """A session on the test database, for factories and assertions.

    No app context stays pushed: requests from the test client must each get their own `g`.
    Code that needs one (a service called directly) uses `with app.app_context():`.
    """
    factory = app.extensions["portal.session_factory"]
    with factory() as db_session:
        db_session.info["app"] = app
        yield db_session


def reread(db_session: Session) -> Session:
    """Forget what this session loaded and end its snapshot, to see what the app committed since."""
    db_session.rollback()
    db_session.expire_all()
    return db_session


CSRF_RE = re.compile(r'name="csrf_token"[^>]*value="([^"]+)"|"X-CSRFToken": "([^"]+)"')


def csrf_from(html: str) -> str:
    match = CSRF_RE.search(html)
    assert match, "no CSRF token on the page"
    return match.group(1) or match.group(2)


def post_form(client: FlaskClient, url: str, data: dict[str, Any], page: str | None = None, **kwargs: Any) -> Any:
    """GET the page (or `page`) for its CSRF token, then POST the form like a browser."""
    token = csrf_from(client.get(page or url).get_data(as_text=True))
    return client.post(url, data={"csrf_token": token, **data}, **kwargs)


from tests.factories import login_as, make_department, make_staff  # noqa: E402,F401
