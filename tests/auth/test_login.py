from __future__ import annotations

import re
from datetime import timedelta

import pytest
from sqlalchemy import func, select

from portal import clock
from portal.audit.actions import AuditAction
from portal.audit.models import AuditEvent
from portal.auth.models import Role, StaffUser
from tests.conftest import post_form, reread
from tests.factories import PASSWORD, login_as, make_staff, totp_code


def _password_step(client, user, password=PASSWORD):
    return post_form(client, "/login", {"email": user.email, "password": password})


def test_login_page_labels(client):
    html = client.get("/login").get_data(as_text=True)
    assert "メールアドレス" in html
    assert "パスワード" in html


def test_right_path_logs_in_and_records_audit(client, session):
    user = make_staff(session)
    login_as(client, user)
    page = client.get("/").get_data(as_text=True)
    assert "髙橋 一郎" in page
    actions = set(session.scalars(select(AuditEvent.action)))
    assert "staff:session:login" in actions


def test_second_step_is_labelled_confirmation_code(client, session):
    user = make_staff(session)
    response = _password_step(client, user)
    assert response.headers["Location"].endswith("/login/verify")
    assert "確認コード" in client.get("/login/verify").get_data(as_text=True)


def test_wrong_password_is_refused(client, session):
    user = make_staff(session)
    response = _password_step(client, user, "wrong password!!")
    assert response.status_code == 422
    assert "メールアドレスまたはパスワードが正しくありません。" in response.get_data(as_text=True)
    assert client.get("/admin/users").status_code == 302


def test_unknown_email_gets_the_same_message(client, session):
    make_staff(session)
    response = post_form(client, "/login", {"email": "nobody@pref.example.jp", "password": PASSWORD})
    assert response.status_code == 422
    assert "メールアドレスまたはパスワードが正しくありません。" in response.get_data(as_text=True)


def test_wrong_totp_is_refused(client, session):
    user = make_staff(session)
    _password_step(client, user)
    good = totp_code(user)
    bad = f"{(int(good) + 1) % 1_000_000:06d}"
    response = post_form(client, "/login/verify", {"code": bad})
    assert response.status_code == 422
    assert "確認コードが正しくありません。" in response.get_data(as_text=True)


def test_replayed_totp_is_refused(app, session):
    user = make_staff(session)
    clock.freeze(clock.now())
    first = app.test_client()
    login_as(first, user)
    second = app.test_client()
    _password_step(second, user)
    response = post_form(second, "/login/verify", {"code": totp_code(user)})
    assert response.status_code == 422
    assert "この確認コードは使用済みです" in response.get_data(as_text=True)


def test_lockout_after_repeated_failures_then_unlock(client, session, app):
    user = make_staff(session)
    limit = app.config["LOGIN_MAX_FAILURES"]
    for _ in range(limit - 1):
        assert _password_step(client, user, "wrong password!!").status_code == 422
    response = _password_step(client, user, "wrong password!!")
    assert response.status_code == 429
    assert "アカウントを一時的にロックしました" in response.get_data(as_text=True)
    # Even the right password is refused while locked.
    response = _password_step(client, user)
    assert response.status_code == 429
    assert "分後に再度お試しください" in response.get_data(as_text=True)
    clock.freeze(clock.now() + timedelta(minutes=app.config["LOGIN_LOCK_MINUTES"] + 1))
    assert _password_step(client, user).status_code == 302


def test_disabled_account_cannot_log_in(client, session):
    user = make_staff(session, is_active=False)
    response = _password_step(client, user)
    assert response.status_code == 422
    assert "無効" in response.get_data(as_text=True)


@pytest.mark.parametrize("target", [
    "//evil.example/", "https://evil.example/", "/%09/evil.example", "/%0a/evil.example", "/%0d%0aX:%20y",
    "/\\evil.example", "/%5Cevil.example", "%2F%2Fevil.example", "///evil.example", "/%2F/evil.example",
    "https:evil.example", "javascript:alert(1)", "/%00/evil.example", "/%7F/evil.example", "/%C2%85/evil.example",
])
def test_next_parameter_cannot_redirect_off_site(client, session, target):
    """Browsers drop tabs and newlines and read a backslash as a slash: all of these would leave the site
    (or broke the redirect after the TOTP code was consumed). The login completes, to the home page."""
    user = make_staff(session)
    post_form(client, f"/login?next={target}", {"email": user.email, "password": PASSWORD}, page="/login")
    response = post_form(client, "/login/verify", {"code": totp_code(user)})
    assert response.status_code == 302
    assert response.headers["Location"] == "/"
    assert client.get("/contracts/").status_code == 200


def test_next_parameter_keeps_a_path_on_this_site(client, session):
    user = make_staff(session)
    post_form(client, "/login?next=/contracts/%3Fpage%3D2", {"email": user.email, "password": PASSWORD},
              page="/login")
    response = post_form(client, "/login/verify", {"code": totp_code(user)})
    assert response.headers["Location"] == "/contracts/?page=2"


def test_logout_ends_session(client, session):
    user = make_staff(session)
    login_as(client, user)
    assert client.get("/contracts/").status_code == 200
    response = post_form(client, "/logout", {}, page="/")
    assert response.status_code == 302
    after = client.get("/contracts/")
    assert after.status_code == 302
    assert after.headers["Location"].startswith("/login")
    session.rollback()
    assert session.scalar(select(AuditEvent.action).where(AuditEvent.action == "staff:session:logout")) is not None


def test_a_wrong_password_is_answered_without_holding_the_server(client, session, monkeypatch):
    """The lock per account is the brake; a delayed answer would only tie up a server thread per guess."""
    import time

    slept: list[float] = []
    monkeypatch.setattr(time, "sleep", slept.append)
    user = make_staff(session)
    for _ in range(3):
        assert _password_step(client, user, "wrong password!!").status_code == 422
    _password_step(client, user)
    assert post_form(client, "/login/verify", {"code": "000000"}).status_code in (422, 429)
    assert slept == []


def test_admin_lifts_a_lock_before_it_expires(client, session, app):
    admin = make_staff(session, role=Role.ADMIN, email="admin@pref.example.jp", name="管理 太郎")
    user = make_staff(session)
    for _ in range(app.config["LOGIN_MAX_FAILURES"]):
        _password_step(client, user, "wrong password!!")
    assert _password_step(client, user).status_code == 429
    login_as(client, admin)
    page = client.get(f"/admin/users/{user.id}").get_data(as_text=True)
    assert "ログイン失敗によりロック中" in page
    assert "ロックを解除する" in page
    response = post_form(client, f"/admin/users/{user.id}/unlock", {}, page=f"/admin/users/{user.id}")
    assert response.status_code == 303
    assert "ロックを解除しました。" in client.get(f"/admin/users/{user.id}").get_data(as_text=True)
    events = session.scalars(select(AuditEvent).where(AuditEvent.action == AuditAction.USER_UNLOCKED.value)).all()
    assert [(e.actor_user_id, e.subject_id) for e in events] == [(admin.id, str(user.id))]
    # A second unlock changes nothing and logs nothing.
    post_form(client, f"/admin/users/{user.id}/unlock", {}, page=f"/admin/users/{user.id}")
    reread(session)
    assert session.scalar(select(func.count()).select_from(AuditEvent)
                          .where(AuditEvent.action == AuditAction.USER_UNLOCKED.value)) == 1
    fresh = app.test_client()
    assert _password_step(fresh, user).status_code == 302


def test_only_an_admin_lifts_a_lock(client, session):
    user = make_staff(session, locked_until=clock.now() + timedelta(minutes=10))
    other = make_staff(session, role=Role.AUDITOR, email="kansa@pref.example.jp")
    login_as(client, other)
    assert client.post(f"/admin/users/{user.id}/unlock").status_code in (400, 403)
    reread(session)
    assert session.get(StaffUser, user.id).locked_until is not None


def test_the_add_user_form_starts_at_the_least_role(client, session):
    admin = make_staff(session, role=Role.ADMIN, email="admin@pref.example.jp")
    login_as(client, admin)
    html = client.get("/admin/users").get_data(as_text=True)
    selected = re.search(r'<option[^>]*selected[^>]*value="(\w+)"|<option[^>]*value="(\w+)"[^>]*selected', html)
    assert selected is not None
    assert (selected.group(1) or selected.group(2)) == Role.STAFF.value
    assert html.index('value="staff"') < html.index('value="admin"')
