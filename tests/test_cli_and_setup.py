"""First run, the users CLI, settings and secrets, and a clear error when the database is down."""

from __future__ import annotations

import os
import re
import stat
import subprocess
import sys
from pathlib import Path

import pyotp
import pytest
from sqlalchemy import select

from portal import clock, create_app
from portal.auth.models import Department, Role, StaffUser
from tests.conftest import csrf_from, post_form
from tests.factories import make_department

ROOT = Path(__file__).resolve().parent.parent


def _setup_url(app) -> str:
    result = app.test_cli_runner().invoke(args=["init"])
    assert result.exit_code == 0, result.output
    match = re.search(r"(http://\S+/setup/\S+)", result.output)
    assert match, result.output
    return match.group(1)


def test_first_run_prints_setup_url_then_admin_enrols_and_logs_in(app, client, session):
    url = _setup_url(app)
    path = url.split("localhost", 1)[1]
    response = post_form(client, path, {
        "name": "管理 太郎", "email": "admin@pref.example.jp", "department": "総務部 情報政策課",
        "password": "a long enough password", "confirm": "a long enough password",
    })
    assert response.status_code == 302
    assert response.headers["Location"].endswith("/account/mfa")
    page = client.get("/account/mfa").get_data(as_text=True)
    assert 'src="data:image/svg+xml' in page  # QR code rendered on the server
    secret = re.search(r'id="totp-secret">([A-Z2-7]+)<', page).group(1)
    response = client.post("/account/mfa", data={"csrf_token": csrf_from(page), "code": pyotp.TOTP(secret).now()})
    assert response.status_code == 200
    codes = re.findall(r"<li>([0-9a-f]{5}-[0-9a-f]{5})</li>", response.get_data(as_text=True))
    assert len(codes) == 10
    admin = session.scalar(select(StaffUser))
    assert admin.role == Role.ADMIN
    assert admin.is_mfa_enrolled
    # The setup link is one-time, and init no longer prints one.
    assert client.get(path).status_code == 404
    result = app.test_cli_runner().invoke(args=["init"])
    assert "/setup/" not in result.output

    # A recovery code works once, then is refused.
    other = app.test_client()
    post_form(other, "/login", {"email": "admin@pref.example.jp", "password": "a long enough password"})
    assert post_form(other, "/login/verify", {"code": codes[0]}).status_code == 302
    third = app.test_client()
    post_form(third, "/login", {"email": "admin@pref.example.jp", "password": "a long enough password"})
    response = post_form(third, "/login/verify", {"code": codes[0]})
    assert response.status_code == 422
    assert "この回復コードは使用済みです" in response.get_data(as_text=True)


def create_user_cli(app, email: str, name: str, role: str, department: str):
    return app.test_cli_runner().invoke(args=["users", "create", "--email", email, "--name", name, "--role", role,
                                              "--department", department])


def test_users_create_cli_prints_enrolment_link(app, session):
    make_department(session, code="KEIYAKU", name="総務部 契約課")
    session.commit()
    result = create_user_cli(app, "keiyaku@pref.example.jp", "契約 花子", "approver", "総務部 契約課")
    assert result.exit_code == 0, result.output
    assert "/account/enrol/" in result.output
    user = session.scalar(select(StaffUser).where(StaffUser.email == "keiyaku@pref.example.jp"))
    assert user.role == Role.APPROVER
    assert user.department.name == "総務部 契約課"
    duplicate = create_user_cli(app, "keiyaku@pref.example.jp", "x", "staff", "総務部 契約課")
    assert duplicate.exit_code == 1
    assert "すでに登録されています" in duplicate.output


def test_enrolment_link_expires(app, client, session):
    make_department(session, code="HONCHO", name="本庁")
    session.commit()
    result = create_user_cli(app, "late@pref.example.jp", "遅刻", "staff", "本庁")
    path = re.search(r"http://localhost(\S+)", result.output).group(1)
    from datetime import timedelta

    clock.freeze(clock.now() + timedelta(hours=app.config["ENROLMENT_TOKEN_HOURS"] + 1))
    response = client.get(path)
    assert response.status_code == 410
    assert "有効期限が切れています" in response.get_data(as_text=True)


def test_users_create_cli_refuses_an_unknown_department(app, session):
    make_department(session, code="KEIYAKU", name="総務部 契約課")
    session.commit()
    result = create_user_cli(app, "typo@pref.example.jp", "誤記", "staff", "総務部 契約科")
    assert result.exit_code == 1
    assert "所属「総務部 契約科」はありません（登録済み: KEIYAKU）" in result.output
    assert session.scalar(select(StaffUser).where(StaffUser.email == "typo@pref.example.jp")) is None
    assert [d.name for d in session.scalars(select(Department))] == ["総務部 契約課"]


def test_secrets_are_generated_with_mode_0600_on_sqlite(tmp_path):
    database_url = f"sqlite:///{tmp_path}/portal.sqlite3"
    app = create_app({"INSTANCE_PATH": str(tmp_path / "inst"), "DATABASE_URL": database_url, "TESTING": True,
                      "OUTBOX_WORKER": False})
    for name in ("secret_key", "master_key"):
        path = tmp_path / "inst" / name
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
        assert len(path.read_text()) == 64
    again = create_app({"INSTANCE_PATH": str(tmp_path / "inst"), "DATABASE_URL": database_url, "TESTING": True})
    assert again.config["SECRET_KEY"] == app.config["SECRET_KEY"]
    app.extensions["portal.engine"].dispose()
    again.extensions["portal.engine"].dispose()


def test_environment_overrides_instance_config(tmp_path, monkeypatch):
    instance = tmp_path / "inst"
    instance.mkdir()
    (instance / "config.py").write_text('AGENCY_NAME = "倉敷市"\nSERVICE_NAME = "契約ポータル"\n')
    monkeypatch.setenv("PORTAL_SERVICE_NAME", "電子契約サービス")
    # No background worker: it would poll this unmigrated database until the test run ends.
    app = create_app({"INSTANCE_PATH": str(instance), "DATABASE_URL": f"sqlite:///{tmp_path}/x.db",
                      "OUTBOX_WORKER": False})
    assert app.config["AGENCY_NAME"] == "倉敷市"
    assert app.config["SERVICE_NAME"] == "電子契約サービス"
    app.extensions["portal.engine"].dispose()


def test_unreachable_database_gives_one_line_error(tmp_path):
    env = {**os.environ, "PORTAL_DATABASE_URL": "postgresql+psycopg://nobody@127.0.0.1:1/none",
           "PORTAL_INSTANCE_PATH": str(tmp_path / "instance")}
    result = subprocess.run(
        [sys.executable, "-m", "flask", "--app", "app", "init"],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=60, check=False,
    )
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("エラー: データベースに接続できません")


@pytest.mark.parametrize(("name", "message"), [
    ("契約 花子\nBcc: evil@example.com", "氏名に改行や制御文字は使えません。"),
    ("契約\u202e花子", "氏名に改行や制御文字は使えません。"),
    ("花" * 101, "氏名は100文字以内で入力してください。"),
    ("   ", "氏名を入力してください。"),
])
def test_users_create_cli_refuses_a_hostile_name(app, session, name, message):
    make_department(session, code="KEIYAKU", name="総務部 契約課")
    session.commit()
    result = create_user_cli(app, "keiyaku@pref.example.jp", name, "staff", "KEIYAKU")
    assert result.exit_code == 1
    assert message in result.output
    session.rollback()
    assert session.scalar(select(StaffUser).where(StaffUser.email == "keiyaku@pref.example.jp")) is None


def test_the_setup_form_reports_every_error_at_once(app, client, session):
    path = _setup_url(app).split("localhost", 1)[1]
    response = post_form(client, path, {
        "name": "", "email": "admin@", "department": "総務部 情報政策課",
        "password": "short", "confirm": "different",
    })
    assert response.status_code == 422
    page = response.get_data(as_text=True)
    for message in ["入力してください。", "メールアドレスの形式が正しくありません。",
                    "パスワードは12文字以上にしてください。", "確認用パスワードが一致しません。"]:
        assert message in page, message
    assert page.count('aria-invalid="true"') == 4
    assert session.scalar(select(StaffUser)) is None
