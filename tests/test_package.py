"""The installed package is complete: the wheel, installed into a fresh virtualenv outside the source tree,
migrates an empty directory with `flask --app portal:create_app init`, and under gunicorn (its settings from the
package) serves every static file of the source tree and every help document, and is ready.

The new virtualenv gets the wheel only (no dependencies downloaded): the dependencies are the ones already in
this virtualenv, reached through a .pth file, after the new one's own site-packages where the wheel goes.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import sysconfig
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from flask import Flask, url_for

from portal.preservation.docs import DOCUMENTS
from tests.services.smtp import free_port

REPO = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The python of a fresh virtualenv holding the wheel built from this tree."""
    work = tmp_path_factory.mktemp("package")
    source = clean_copy(work / "source")
    run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "--quiet",
         "--wheel-dir", str(work / "dist"), str(source)])
    (wheel,) = (work / "dist").glob("keiyaku_portal-*.whl")
    run([sys.executable, "-m", "venv", "--without-pip", str(work / "venv")])
    python = work / "venv" / "bin" / "python"
    site = Path(run([str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"]).strip())
    (site / "dependencies.pth").write_text(sysconfig.get_paths()["purelib"] + "\n", encoding="utf-8")
    run([sys.executable, "-m", "pip", "--python", str(python), "install", "--no-deps", "--no-index",
         "--ignore-installed", "--quiet", str(wheel)])
    where = run([str(python), "-c", "import portal; print(portal.__file__)"], cwd=work).strip()
    assert where.startswith(str(site)), f"portal imported from {where}, not from the installed wheel"
    return python


def clean_copy(target: Path) -> Path:
    """The files of a fresh clone (tracked, or new and not ignored), without this tree's build/ and egg-info/:
    setuptools would take the file list of an old egg-info/SOURCES.txt and hide a file missing from the package."""
    files = run(["git", "ls-files", "--cached", "--others", "--exclude-standard", "-z"], cwd=REPO).split("\0")
    for name in filter(None, files):
        source = REPO / name
        if source.is_file():
            (target / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, target / name)
    return target


def run(args: list[str], cwd: Path | None = None, env: dict[str, str] | None = None) -> str:
    result = subprocess.run(args, cwd=cwd, env=env, capture_output=True, text=True, timeout=300, check=False)
    assert result.returncode == 0, f"{args} failed ({result.returncode}):\n{result.stdout}\n{result.stderr}"
    return result.stdout


def operator_env(site: Path, port: int) -> dict[str, str]:
    env = {key: value for key, value in os.environ.items()
           if not key.startswith(("PORTAL_", "FLASK_", "PYTHON")) and key != "VIRTUAL_ENV"}
    return {**env, "PORTAL_INSTANCE_PATH": str(site / "instance"), "PORTAL_PUBLIC_BASE_URL": f"http://127.0.0.1:{port}",
            "PORTAL_BIND": f"127.0.0.1:{port}", "PORTAL_WEB_PROCESSES": "1", "PORTAL_OUTBOX_WORKER": "false"}


@pytest.fixture(scope="module")
def served(installed: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    site = tmp_path_factory.mktemp("empty-site")
    port = free_port()
    env = operator_env(site, port)
    output = run([str(installed), "-m", "flask", "--app", "portal:create_app", "init"], cwd=site, env=env)
    assert "/setup/" in output, output  # migrated, and the first administrator's link printed
    log = (site / "gunicorn.log").open("wb")
    server = subprocess.Popen([str(installed), "-m", "gunicorn", "-c", "python:portal.gunicorn_conf",
                               "portal:create_app()"], cwd=site, env=env, stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while fetch(url + "/healthz")[0] != 200:
            assert server.poll() is None, (site / "gunicorn.log").read_text()
            assert time.monotonic() < deadline, (site / "gunicorn.log").read_text()
            time.sleep(0.2)
        yield url
    finally:
        server.terminate()
        server.wait(timeout=30)
        log.close()


def fetch(url: str) -> tuple[int, bytes]:
    try:
        with urllib.request.urlopen(url, timeout=30) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()
    except OSError:
        return 0, b""


def static_urls(app: Flask) -> dict[str, Path]:
    """URL → source file, for every file in a static folder of the source tree (the app's and each blueprint's)."""
    folders = [("static", app.static_folder)] + [
        (f"{name}.static", blueprint.static_folder) for name, blueprint in app.blueprints.items()
        if blueprint.static_folder]
    urls = {}
    with app.test_request_context():
        for endpoint, folder in folders:
            for path in sorted(Path(str(folder)).rglob("*")):
                if path.is_file():
                    urls[url_for(endpoint, filename=path.relative_to(str(folder)).as_posix())] = path
    return urls


def test_the_installed_package_serves_every_static_file(app: Flask, served: str) -> None:
    urls = static_urls(app)
    sources = {path.relative_to(REPO).as_posix() for path in urls.values()}
    assert {"portal/contracts/static/contracts/upload.js", "portal/signature_requests/static/signing.css"} <= sources
    wrong = {}
    for url, source in urls.items():
        status, body = fetch(served + url)
        if (status, body) != (200, source.read_bytes()):
            wrong[url] = status
    assert not wrong, f"static files the installed package does not serve as in the source tree: {wrong}"


def test_the_installed_package_serves_every_help_document(served: str) -> None:
    for name, title in DOCUMENTS.items():
        status, body = fetch(f"{served}/help/docs/{name}")
        assert status == 200, name
        assert title in body.decode()
    assert fetch(served + "/help/docs/")[0] == 200


def test_the_installed_package_is_migrated_to_its_head_and_ready(served: str) -> None:
    status, body = fetch(served + "/readyz")
    assert status == 200, body
    assert json.loads(body)["status"] == "ready"
