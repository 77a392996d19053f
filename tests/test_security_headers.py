"""Headers on every response: no caching of pages and files with personal data, a strict CSP with no inline
style, and the production start-up refusals (one line, exit status 1)."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from portal import create_app
from portal.config import production_problems
from tests.conftest import test_config as make_test_config

ROOT = Path(__file__).resolve().parent.parent


def test_pages_are_never_cached_and_static_files_are(client):
    for path in ("/", "/apply", "/login", "/help", "/apply/form.pdf"):
        response = client.get(path)
        assert response.headers["Cache-Control"] == "no-store", path
    static = client.get("/static/css/portal.css")
    assert static.headers.get("Cache-Control") != "no-store"
    static.close()


def test_policy_headers(client):
    headers = client.get("/login").headers
    csp = headers["Content-Security-Policy"]
    assert "style-src 'self';" in csp
    assert "unsafe-inline" not in csp
    assert headers["Cross-Origin-Opener-Policy"] == "same-origin"
    assert "camera=()" in headers["Permissions-Policy"]
    assert headers["X-Frame-Options"] == "DENY"
    assert "Strict-Transport-Security" not in headers  # http on loopback: no HSTS


def test_no_template_has_inline_style():
    offenders = []
    for template in (ROOT / "portal").rglob("*.html"):
        text = template.read_text(encoding="utf-8")
        if re.search(r"<style\b|\sstyle\s*=", text):
            offenders.append(str(template.relative_to(ROOT)))
    assert offenders == []


def test_https_base_url_gives_secure_cookies_and_hsts(database_url, tmp_path):
    app = create_app(make_test_config(database_url, tmp_path / "instance", PUBLIC_BASE_URL="https://keiyaku.pref.example.jp",
                                 WTF_CSRF_ENABLED=True))
    response = app.test_client().get("/login", base_url="https://keiyaku.pref.example.jp")
    assert response.headers["Strict-Transport-Security"].startswith("max-age=31536000")
    cookies = response.headers.getlist("Set-Cookie")
    assert cookies, "the login page sets the session cookie (CSRF)"
    assert all("Secure" in cookie for cookie in cookies)
    app.extensions["portal.engine"].dispose()


@pytest.mark.parametrize(("settings", "named"), [
    ({"PORTAL_PUBLIC_BASE_URL": "http://keiyaku.pref.example.jp"}, "PORTAL_PUBLIC_BASE_URL が https ではありません"),
    ({"PORTAL_PUBLIC_BASE_URL": "https://keiyaku.pref.example.jp", "PORTAL_SESSION_COOKIE_SECURE": "false"},
     "PORTAL_SESSION_COOKIE_SECURE が false"),
    ({"PORTAL_DATABASE_URL": "postgresql+psycopg://portal@db.pref.example.jp/keiyaku"},
     "PORTAL_PUBLIC_BASE_URL が未設定"),
    ({"PORTAL_PUBLIC_BASE_URL": "https://keiyaku.pref.example.jp",
      "PORTAL_DATABASE_URL": "postgresql+psycopg://portal@db.pref.example.jp/keiyaku"}, "PORTAL_SECRET_KEY（または"),
    ({"PORTAL_SECRET_KEY_FILE": "/nonexistent/portal_secret"},
     "PORTAL_SECRET_KEY_FILE（/nonexistent/portal_secret）を読めません"),
])
def test_unsafe_production_start_is_refused_in_one_line(tmp_path, settings, named):
    env = {key: value for key, value in os.environ.items() if not key.startswith("PORTAL_")}
    env.update(settings, PORTAL_INSTANCE_PATH=str(tmp_path / "instance"))
    result = subprocess.run([sys.executable, "-m", "flask", "--app", "app", "routes"], cwd=ROOT, env=env,
                            capture_output=True, text=True, timeout=60)
    assert result.returncode != 0
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr
    assert named in lines[0]
    assert not (tmp_path / "instance" / "secret_key").exists(), "nothing is generated before the refusal"


def test_loopback_installations_are_not_checked():
    assert production_problems({"PUBLIC_BASE_URL": "http://127.0.0.1:5000",
                                "DATABASE_URL": "postgresql+psycopg://postgres@127.0.0.1:5432/test"}) == []
    assert production_problems({"PUBLIC_BASE_URL": "https://keiyaku.pref.example.jp",
                                "SESSION_COOKIE_SECURE": True, "DATABASE_URL": "sqlite:///x"}) == []


def test_secrets_and_the_database_url_can_come_from_files(database_url, tmp_path):
    secret = tmp_path / "secret_key"
    secret.write_text("s" * 64 + "\n")
    master = tmp_path / "master_key"
    master.write_text("ab" * 32 + "\n")
    url = tmp_path / "database_url"
    url.write_text(database_url + "\n")
    config = make_test_config(database_url, tmp_path / "instance", SECRET_KEY_FILE=str(secret),
                              MASTER_KEY_FILE=str(master), DATABASE_URL_FILE=str(url))
    config.pop("SECRET_KEY", None)
    config.pop("MASTER_KEY", None)
    config.pop("DATABASE_URL", None)
    app = create_app(config)
    assert app.config["SECRET_KEY"] == "s" * 64
    assert app.config["MASTER_KEY"] == "ab" * 32
    assert app.config["DATABASE_URL"] == database_url
    assert not (tmp_path / "instance" / "secret_key").exists(), "a secret from a file is not generated"
    assert app.test_client().get("/login").status_code == 200
    app.extensions["portal.engine"].dispose()


def test_a_postgresql_production_with_its_secrets_and_pki_set_starts(tmp_path):
    from portal.instance import missing
    from tests.conftest import shared_pki_dir

    config = {"PUBLIC_BASE_URL": "https://keiyaku.pref.example.jp", "SESSION_COOKIE_SECURE": True,
              "DATABASE_URL": "postgresql+psycopg://portal@db.pref.example.jp/keiyaku",
              "PKI_DIR": str(tmp_path / "pki")}
    assert production_problems(config) == []
    assert len(missing(config, tmp_path)) == 3
    assert missing({**config, "SECRET_KEY": "x", "MASTER_KEY": "y", "PKI_DIR": shared_pki_dir()}, tmp_path) == []
