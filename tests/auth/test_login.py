from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import select

from portal import clock
from portal.audit.models import AuditEvent
from tests.conftest import post_form
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
