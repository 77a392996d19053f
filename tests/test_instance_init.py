"""On PostgreSQL nothing shared is generated on the fly: a server or a worker refuses to start without the
secrets and the built-in PKI; `flask init` creates them once (two at once create one set); a second server
given the same files and PKI_DIR signs with the same keys and reads the first one's sessions."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import padding

from portal import create_app
from portal.signing import service as signing
from tests.conftest import throwaway_postgres

ROOT = Path(__file__).resolve().parent.parent

pytestmark = pytest.mark.postgres


@pytest.fixture(scope="module")
def postgres_url() -> Iterator[str]:
    """A throw-away PostgreSQL database (`flask init` migrates it)."""
    with throwaway_postgres("keiyaku_init", migrated=False) as url:
        yield url


def _flask(command: list[str], env: dict[str, str], *, wait: bool = True) -> Any:
    full = {key: value for key, value in os.environ.items() if not key.startswith("PORTAL_")} | env
    full.pop("FLASK_RUN_FROM_CLI", None)
    args = [sys.executable, "-m", "flask", "--app", "portal:create_app", *command]
    if not wait:
        return subprocess.Popen(args, cwd=ROOT, env=full, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    return subprocess.run(args, cwd=ROOT, env=full, capture_output=True, text=True, timeout=120, check=False)


def _env(url: str, instance: Path, pki: Path, **more: str) -> dict[str, str]:
    return {"PORTAL_DATABASE_URL": url, "PORTAL_INSTANCE_PATH": str(instance), "PORTAL_PKI_DIR": str(pki),
            "PORTAL_OUTBOX_WORKER": "false", **more}


def _config(url: str, instance: Path, pki: Path, **more: object) -> dict[str, object]:
    return {"DATABASE_URL": url, "INSTANCE_PATH": str(instance), "PKI_DIR": str(pki), "OUTBOX_WORKER": False,
            "TESTING": True, **more}


def test_a_server_without_the_shared_secrets_refuses_and_generates_nothing(postgres_url, tmp_path):
    with pytest.raises(SystemExit, match=r"PORTAL_SECRET_KEY（または PORTAL_SECRET_KEY_FILE）が設定されていません"):
        create_app(_config(postgres_url, tmp_path / "instance", tmp_path / "pki"))
    assert not (tmp_path / "instance" / "secret_key").exists()
    assert not (tmp_path / "instance" / "master_key").exists()
    with pytest.raises(SystemExit, match=r"内蔵 PKI（.*）がありません"):
        create_app(_config(postgres_url, tmp_path / "instance", tmp_path / "pki", SECRET_KEY="s", MASTER_KEY="ab" * 32))
    assert not (tmp_path / "pki" / "root.key").exists()


def test_the_worker_refuses_in_one_line_before_init(postgres_url, tmp_path):
    result = _flask(["worker", "--once"], _env(postgres_url, tmp_path / "instance", tmp_path / "pki"))
    assert result.returncode == 1
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr
    assert "flask --app portal:create_app init" in lines[0]
    assert not (tmp_path / "instance" / "secret_key").exists()


def test_signing_never_creates_the_pki_on_postgresql(postgres_url, tmp_path):
    with pytest.raises(signing.PkiNotInitialised):
        signing.build_context({"DATABASE_URL": postgres_url, "PKI_DIR": str(tmp_path / "pki")})
    assert not (tmp_path / "pki").exists()


def test_init_creates_them_once_and_a_second_server_shares_them(postgres_url, tmp_path):
    shared, pki = tmp_path / "shared", tmp_path / "pki"
    first = _flask(["init"], _env(postgres_url, shared, pki))
    assert first.returncode == 0, first.stderr
    for name in ("secret_key", "master_key"):
        assert f"作成しました: {shared / name}" in first.stdout
        assert stat.S_IMODE((shared / name).stat().st_mode) == 0o600
    assert f"作成しました: {pki}" in first.stdout
    root_before = (pki / "root.crt").read_bytes()
    again = _flask(["init"], _env(postgres_url, shared, pki))
    assert again.returncode == 0, again.stderr
    assert "作成しました" not in again.stdout
    assert (pki / "root.crt").read_bytes() == root_before

    server_a = create_app(_config(postgres_url, shared, pki))
    server_b = create_app(_config(postgres_url, tmp_path / "other-instance", pki,
                                  SECRET_KEY_FILE=str(shared / "secret_key"),
                                  MASTER_KEY_FILE=str(shared / "master_key")))
    try:
        assert server_a.config["SECRET_KEY"] == server_b.config["SECRET_KEY"]
        assert server_a.config["MASTER_KEY"] == server_b.config["MASTER_KEY"]
        assert not (tmp_path / "other-instance" / "secret_key").exists()
        cookie = server_a.session_interface.get_signing_serializer(server_a).dumps({"probe": "a"})
        assert server_b.session_interface.get_signing_serializer(server_b).loads(cookie) == {"probe": "a"}
        served = [app.test_client().get("/pki/root.crt").data for app in (server_a, server_b)]
        assert served[0] == served[1] != b""
    finally:
        for app in (server_a, server_b):
            app.extensions["portal.engine"].dispose()


def test_two_inits_at_once_create_one_set(postgres_url, tmp_path):
    shared, pki = tmp_path / "shared", tmp_path / "pki"
    runs = [_flask(["init"], _env(postgres_url, shared, pki), wait=False) for _ in range(2)]
    outputs = [run.communicate(timeout=120) for run in runs]
    assert [run.returncode for run in runs] == [0, 0], outputs
    created = "".join(out for out, _ in outputs)
    assert created.count(f"作成しました: {pki}") == 1, created
    assert created.count(f"作成しました: {shared / 'secret_key'}") == 1, created
    root = x509.load_pem_x509_certificate((pki / "root.crt").read_bytes())
    for name in ("signing", "tsa"):
        cert = x509.load_pem_x509_certificate((pki / f"{name}.crt").read_bytes())
        root.public_key().verify(cert.signature, cert.tbs_certificate_bytes, padding.PKCS1v15(),
                                 cert.signature_hash_algorithm)


def test_sqlite_still_generates_at_first_start(tmp_path):
    app = create_app({"DATABASE_URL": f"sqlite:///{tmp_path}/portal.sqlite3", "INSTANCE_PATH": str(tmp_path / "i"),
                      "OUTBOX_WORKER": False, "TESTING": True})
    assert (tmp_path / "i" / "secret_key").exists()
    app.extensions["portal.engine"].dispose()


