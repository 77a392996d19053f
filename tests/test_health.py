"""/healthz and /readyz: each readiness check fails for real (TSA stopped, database behind the head or gone,
store directory read-only, signing key unusable) and /readyz says which, with 503; back to 200 once repaired."""

from __future__ import annotations

import http.server
import os
import shutil
import subprocess
import threading
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from alembic import command
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from portal import clock, create_app, migrate
from portal.db import make_engine
from portal.signing import service as signing
from portal.signing.tsa import HttpTsa, respond_to_http_request
from tests.conftest import require
from tests.conftest import test_config as portal_config

CHECKS = {"database", "storage", "signing_key", "tsa"}


class TsaServer:
    """The built-in TSA answering RFC 3161 over HTTP on a loopback port, as an external TSA would."""

    def __init__(self, pki_directory: str) -> None:
        authority = signing.builtin_tsa(signing.ensure_pki({"PKI_DIR": pki_directory}))

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                answer = respond_to_http_request(authority, self.rfile.read(int(self.headers["Content-Length"])))
                self.send_response(200)
                self.send_header("Content-Type", "application/timestamp-reply")
                self.send_header("Content-Length", str(len(answer)))
                self.end_headers()
                self.wfile.write(answer)

            def log_message(self, *args: Any) -> None:
                pass

        self._server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}/tsa"
        threading.Thread(target=self._server.serve_forever, daemon=True).start()

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()


@pytest.fixture
def tsa(pki_dir: str) -> Iterator[TsaServer]:
    server = TsaServer(pki_dir)
    yield server
    server.stop()


@pytest.fixture
def app_config(pki_dir: str, tsa: TsaServer) -> dict[str, Any]:
    return {"PKI_DIR": pki_dir, "TSA_URL": tsa.url, "READY_TSA_CHECK_SECONDS": 0}


@pytest.fixture(autouse=True)
def _close_tsa_session(app: Flask) -> Iterator[None]:
    yield
    with app.app_context():
        context = signing.get_context()
    if isinstance(context.tsa, HttpTsa):
        context.tsa.close()
    signing._forget_context()  # the next test's settings build their own


def ready(client: FlaskClient) -> tuple[int, dict[str, Any]]:
    response = client.get("/readyz")
    assert response.mimetype == "application/json"
    assert response.headers["Cache-Control"] == "no-store"
    body = response.get_json()
    assert set(body["checks"]) == CHECKS
    return response.status_code, body


def failed(body: dict[str, Any]) -> set[str]:
    return {name for name, result in body["checks"].items() if not result["ok"]}


def test_healthz_answers_while_the_process_runs(client: FlaskClient) -> None:
    response = client.get("/healthz")
    assert (response.status_code, response.get_json()) == (200, {"status": "ok"})


def test_readyz_names_each_check_and_is_ready_when_all_work(client: FlaskClient) -> None:
    status, body = ready(client)
    assert (status, body["status"], failed(body)) == (200, "ready", set())
    assert all(result["ms"] >= 0 for result in body["checks"].values())


def test_a_stopped_tsa_makes_the_portal_not_ready(client: FlaskClient, tsa: TsaServer) -> None:
    assert ready(client)[0] == 200
    tsa.stop()

    status, body = ready(client)

    assert (status, body["status"], failed(body)) == (503, "not ready", {"tsa"})
    assert "タイムスタンプ局" in body["checks"]["tsa"]["error"]


def test_the_tsa_is_asked_at_most_once_per_interval(app: Flask, client: FlaskClient, tsa: TsaServer) -> None:
    app.config["READY_TSA_CHECK_SECONDS"] = 3600
    assert ready(client)[0] == 200
    tsa.stop()
    assert ready(client)[0] == 200  # the last answer still counts within the interval
    app.config["READY_TSA_CHECK_SECONDS"] = 0
    assert failed(ready(client)[1]) == {"tsa"}


def test_a_read_only_store_directory_makes_the_portal_not_ready(app: Flask, client: FlaskClient) -> None:
    store = Path(app.config["STORAGE_DIR"])
    store.mkdir(parents=True, exist_ok=True)
    with read_only(store):
        status, body = ready(client)
    assert (status, failed(body)) == (503, {"storage"})
    assert "保存先" in body["checks"]["storage"]["error"]
    assert ready(client)[0] == 200
    assert list(store.iterdir()) == []  # the probe leaves nothing behind


class read_only:  # noqa: N801 (used as a context manager)
    """The directory refuses new files, also to root (which ignores the mode bits): chattr +i."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.as_root = os.geteuid() == 0

    def __enter__(self) -> None:
        if self.as_root:
            chattr = shutil.which("chattr")
            require(chattr is not None, "chattr is not installed (apt-get install e2fsprogs)")
            subprocess.run([str(chattr), "+i", str(self.directory)], check=True)
        else:
            self.directory.chmod(0o555)

    def __exit__(self, *_: object) -> None:
        if self.as_root:
            subprocess.run(["chattr", "-i", str(self.directory)], check=True)
        else:
            self.directory.chmod(0o755)


@pytest.fixture
def old_database(database_url: str, tmp_path: Path) -> Iterator[str]:
    """A new database of the same kind, migrated only to an older revision (an installation not yet upgraded)."""
    if database_url.startswith("sqlite"):
        url = f"sqlite:///{tmp_path / 'old.sqlite3'}"
        drop = None
    else:
        base = make_url(database_url)
        name = f"keiyaku_old_{uuid.uuid4().hex[:8]}"
        admin = create_engine(base.set(database="postgres"), isolation_level="AUTOCOMMIT")
        with admin.connect() as connection:
            connection.execute(text(f'CREATE DATABASE "{name}"'))
        url = base.set(database=name).render_as_string(hide_password=False)
        drop = (admin, name)
    engine = make_engine(url)
    with engine.begin() as connection:
        command.upgrade(migrate.alembic_config(connection), "0013_page_images")
    engine.dispose()
    yield url
    if drop is not None:
        admin, name = drop
        with admin.connect() as connection:
            connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def test_a_database_behind_the_migrations_head_makes_the_portal_not_ready(
        tmp_path: Path, old_database: str, app_config: dict[str, Any]) -> None:
    app = create_app(portal_config(old_database, tmp_path / "instance", **app_config))
    engine = make_engine(old_database)
    try:
        status, body = ready(app.test_client())
        assert (status, failed(body)) == (503, {"database"})
        assert "最新ではありません" in body["checks"]["database"]["error"]
        assert "flask init" in body["checks"]["database"]["error"]

        with engine.begin() as connection:
            migrate.upgrade(connection)
        assert ready(app.test_client())[0] == 200
    finally:
        _dispose(app, engine)


def test_an_unreachable_database_makes_the_portal_not_ready(tmp_path: Path, app_config: dict[str, Any]) -> None:
    from tests.services.smtp import free_port

    url = f"postgresql+psycopg://postgres@127.0.0.1:{free_port()}/keiyaku"  # nothing listens there
    app = create_app(portal_config(url, tmp_path / "instance", **app_config))
    try:
        status, body = ready(app.test_client())
        assert status == 503
        assert "database" in failed(body)
        assert body["checks"]["database"]["error"] == "データベースに接続できません"
        assert "127.0.0.1" not in str(body)  # where the database lives is for the log, not the public
    finally:
        _dispose(app)


def test_an_unusable_signing_key_makes_the_portal_not_ready(
        tmp_path: Path, database_url: str, app_config: dict[str, Any], pki_dir: str) -> None:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.serialization import pkcs12

    pki = signing.ensure_pki({"PKI_DIR": pki_dir})
    p12 = tmp_path / "service.p12"
    p12.write_bytes(pkcs12.serialize_key_and_certificates(
        b"service", pki.signing_key, pki.signing_cert, None, serialization.BestAvailableEncryption(b"right")))
    settings = {**app_config, "SIGNING_BACKEND": "pkcs12", "SIGNING_PKCS12_PATH": str(p12)}
    good = create_app(portal_config(database_url, tmp_path / "good", **settings, SIGNING_PKCS12_PASSPHRASE="right"))
    bad = create_app(portal_config(database_url, tmp_path / "bad", **settings, SIGNING_PKCS12_PASSPHRASE="wrong"))
    try:
        assert ready(good.test_client())[0] == 200
        status, body = ready(bad.test_client())
        assert status == 503
        assert "signing_key" in failed(body)
        assert {"database", "storage"}.isdisjoint(failed(body))
        assert body["checks"]["signing_key"]["error"] == "署名鍵で署名できません"
    finally:
        for application in (good, bad):
            with application.app_context():
                context = signing.configure(application.config) if application is good else None
            if context is not None and isinstance(context.tsa, HttpTsa):
                context.tsa.close()
        signing._forget_context()
        _dispose(good)
        _dispose(bad)


def _dispose(app: Flask, *engines: Any) -> None:
    clock.freeze(None)
    app.extensions["portal.engine"].dispose()
    for engine in engines:
        engine.dispose()


def test_readyz_is_rate_limited_per_address(tmp_path: Path, database_url: str, app_config: dict[str, Any]) -> None:
    limited = create_app(portal_config(database_url, tmp_path / "instance", **{**app_config, "RATELIMIT_ENABLED": True,
                                                                               "READY_TSA_CHECK_SECONDS": 60}))
    client = limited.test_client()
    try:
        answers = [client.get("/readyz").status_code for _ in range(121)]
        assert answers == [200] * 120 + [429]
        assert client.get("/healthz").status_code == 200  # the process still answers
        assert client.get("/readyz", environ_overrides={"REMOTE_ADDR": "192.0.2.10"}).status_code == 200
    finally:
        _dispose(limited)
