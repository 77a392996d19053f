"""The container files: compose.yml validates with `docker compose config` and runs the portal as an operator
would (one migration, gunicorn, a worker, PostgreSQL, Valkey, volumes); the Dockerfile builds the package from
the tree it copies and serves it as an unprivileged user with a health check."""

from __future__ import annotations

import fnmatch
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.conftest import require

REPO = Path(__file__).resolve().parent.parent


def compose_command() -> list[str]:
    """`docker compose` (the plugin) or `docker-compose` (Debian's package); neither needs the daemon."""
    docker = shutil.which("docker")
    if docker and subprocess.run([docker, "compose", "version"], capture_output=True, check=False).returncode == 0:
        return [docker, "compose"]
    legacy = shutil.which("docker-compose")
    require(legacy is not None, "neither `docker compose` nor docker-compose is installed (apt-get install "
                                "docker-compose)")
    return [str(legacy)]


@pytest.fixture(scope="module")
def compose(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """compose.yml as `docker compose config` resolves it, with .env copied from .env.example."""
    project = tmp_path_factory.mktemp("compose")
    shutil.copy(REPO / "compose.yml", project / "compose.yml")
    shutil.copy(REPO / ".env.example", project / ".env")
    result = subprocess.run([*compose_command(), "-f", "compose.yml", "config"], cwd=project, capture_output=True,
                            text=True, timeout=120, check=False)
    assert result.returncode == 0, result.stderr
    return yaml.safe_load(result.stdout)


def test_compose_runs_portal_worker_postgres_and_valkey_with_volumes(compose: dict[str, Any]) -> None:
    services = compose["services"]
    assert set(services) == {"init", "portal", "worker", "postgres", "valkey"}
    assert services["portal"]["command"][0] == "gunicorn"
    assert services["worker"]["command"] == ["flask", "worker"]
    for name in ("init", "portal", "worker"):
        service = services[name]
        assert service["image"] == "keiyaku-portal:latest"
        assert "build" in service, f"{name} would be pulled from a registry instead of built here"
        assert ("instance", "/app/instance") in _volumes(service), f"{name} does not share the instance volume"
        environment = service["environment"]
        assert environment["PORTAL_DATABASE_URL"].startswith("postgresql+psycopg://keiyaku:")
        assert environment["PORTAL_DATABASE_URL"].endswith("@postgres:5432/keiyaku")
        assert environment["PORTAL_RATELIMIT_STORAGE_URI"] == "redis://valkey:6379/0"
        assert environment["PORTAL_MASTER_KEY_FILE"] == "/run/secrets/master_key"
        assert environment["PORTAL_OUTBOX_WORKER"] == "false"  # mail and jobs are the worker's
    assert {"instance", "postgres"} <= set(compose["volumes"])
    assert ("postgres", "/var/lib/postgresql/data") in _volumes(services["postgres"])


def test_compose_migrates_once_before_the_portal_and_the_worker_start(compose: dict[str, Any]) -> None:
    services = compose["services"]
    migrating = [name for name, service in services.items() if "init" in service.get("command", [])]
    assert migrating == ["init"]
    assert services["init"]["restart"] == "no"
    for name in ("portal", "worker"):
        assert services[name]["depends_on"]["init"]["condition"] == "service_completed_successfully"
    assert services["init"]["depends_on"]["postgres"]["condition"] == "service_healthy"


def test_compose_publishes_the_portal_on_loopback_only(compose: dict[str, Any]) -> None:
    ports = compose["services"]["portal"]["ports"]
    assert ports
    assert all(port["host_ip"] == "127.0.0.1" if isinstance(port, dict) else port.startswith("127.0.0.1:")
               for port in ports)


def _volumes(service: dict[str, Any]) -> list[tuple[str, str]]:
    """(source, target) of each volume, from the long form (`docker compose`) or the short one (docker-compose)."""
    return [(volume["source"], volume["target"]) if isinstance(volume, dict) else tuple(volume.split(":")[:2])
            for volume in service.get("volumes", [])]


DOCKERFILE = (REPO / "Dockerfile").read_text(encoding="utf-8")


def test_the_dockerfile_serves_as_an_unprivileged_user_with_a_health_check_and_cjk_fonts() -> None:
    instructions = [line.split(None, 1) for line in _joined(DOCKERFILE) if line]
    final = instructions[max(i for i, (word, _) in enumerate(instructions) if word == "FROM"):]
    users = [rest for word, rest in final if word == "USER"]
    assert users
    assert users[-1] not in ("root", "0")
    (healthcheck,) = [rest for word, rest in final if word == "HEALTHCHECK"]
    assert "/healthz" in healthcheck
    (cmd,) = [rest for word, rest in final if word == "CMD"]
    assert "gunicorn" in cmd
    assert "init" not in cmd  # migrating is the init service's, not every replica's
    packages = " ".join(rest for word, rest in final if word == "RUN")
    assert "fonts-noto-cjk" in packages
    assert "fonts-ipamj-mincho" in packages


def _joined(text: str) -> list[str]:
    """Dockerfile lines with continuations joined and comments dropped."""
    lines: list[str] = []
    current = ""
    for raw in text.splitlines():
        line = raw.strip()
        if line.startswith("#"):
            continue
        current += line.removesuffix("\\") + " "
        if not line.endswith("\\"):
            lines.append(current.strip())
            current = ""
    return lines


def test_the_image_build_context_has_every_file_the_package_needs() -> None:
    """What `COPY . .` brings (the tree minus .dockerignore) holds the package's sources, docs and migrations."""
    patterns = [line.strip() for line in (REPO / ".dockerignore").read_text(encoding="utf-8").splitlines()
                if line.strip() and not line.startswith("#")]
    needed = ["pyproject.toml", "setup.py", "MANIFEST.in", "README.md", "gunicorn.conf.py",
              *(path.relative_to(REPO).as_posix() for folder in ("portal", "docs", "migrations")
                for path in (REPO / folder).rglob("*") if path.is_file() and "__pycache__" not in path.parts)]
    excluded = [name for name in needed if any(_ignored(name, pattern) for pattern in patterns)]
    assert not excluded, f".dockerignore keeps these out of the image build: {excluded[:5]}"


def _ignored(name: str, pattern: str) -> bool:
    parts = name.split("/")
    return any(fnmatch.fnmatch("/".join(parts[:i]), pattern.removeprefix("**/")) or
               fnmatch.fnmatch(parts[i - 1], pattern.removeprefix("**/")) for i in range(1, len(parts) + 1))
