"""「MFA リセット」 starts the enrolment again as for a new account: the old password stops working, a
one-time link is mailed (and shown to the admin once), and the user's sessions end."""

from __future__ import annotations

import re

import pyotp
from sqlalchemy import select

from portal.auth.models import Role, StaffUser
from portal.mail.models import OutboxMessage
from portal.mail.service import deliverable_body
from tests.conftest import csrf_from, post_form, reread
from tests.factories import PASSWORD, login_as, make_staff

NEW_PASSWORD = "a brand new passphrase"


def _reset(app, session):
    admin = make_staff(session, role=Role.ADMIN, email="admin@pref.example.jp")
    staff = make_staff(session, email="s@pref.example.jp", department=admin.department)
    users_session = app.test_client()
    login_as(users_session, staff)
    admin_client = app.test_client()
    login_as(admin_client, admin)
    response = post_form(admin_client, f"/admin/users/{staff.id}/reset-mfa", {}, page=f"/admin/users/{staff.id}")
    assert response.status_code == 200
    link = response.get_data(as_text=True).split('id="enrolment-link">', 1)[1].split("<", 1)[0]
    return staff, users_session, link


def test_old_password_no_longer_leads_to_enrolment(app, session):
    staff, _, _ = _reset(app, session)
    attacker = app.test_client()
    response = post_form(attacker, "/login", {"email": staff.email, "password": PASSWORD})
    assert response.status_code == 422
    assert "メールアドレスまたはパスワードが正しくありません。" in response.get_data(as_text=True)
    assert attacker.get("/account/mfa").headers["Location"].endswith("/login")
    reread(session)
    user = session.get(StaffUser, staff.id)
    assert user.password_hash is None
    assert user.totp_secret_sealed is None
    assert user.recovery_codes == []


def test_reset_mails_a_one_time_link_and_ends_the_sessions(app, session):
    staff, users_session, link = _reset(app, session)
    # The session the user had before the reset is over.
    assert users_session.get("/contracts/").status_code == 302
    # The link went to the user by mail, and it is the one the admin saw.
    mail = session.scalar(select(OutboxMessage).where(OutboxMessage.recipient == staff.email))
    assert link not in mail.body  # the stored copy keeps it masked; the delivered body has it
    with app.app_context():
        assert link in deliverable_body(mail)
    assert "リセット" in mail.subject + mail.body
    # The link sets a new password and a new authenticator app, once.
    path = link.split("localhost", 1)[1]
    enrolling = app.test_client()
    response = post_form(enrolling, path, {"password": NEW_PASSWORD, "confirm": NEW_PASSWORD})
    assert response.headers["Location"].endswith("/account/mfa")
    page = enrolling.get("/account/mfa").get_data(as_text=True)
    secret = re.search(r'id="totp-secret">([A-Z2-7]+)<', page).group(1)
    response = enrolling.post("/account/mfa", data={"csrf_token": csrf_from(page), "code": pyotp.TOTP(secret).now()})
    assert response.status_code == 200
    assert len(re.findall(r"<li>([0-9a-f]{5}-[0-9a-f]{5})</li>", response.get_data(as_text=True))) == 10
    assert enrolling.get("/contracts/").status_code == 200
    assert app.test_client().get(path).status_code == 404


def test_an_enrolment_in_progress_ends_with_the_reset(app, session):
    """A browser left on the enrolment page (e.g. after the password step) cannot enrol after a reset."""
    admin = make_staff(session, role=Role.ADMIN, email="admin@pref.example.jp")
    staff = make_staff(session, email="s@pref.example.jp", department=admin.department, enrolled=False)
    stale = app.test_client()
    assert post_form(stale, "/login", {"email": staff.email, "password": PASSWORD}).status_code == 302
    assert stale.get("/account/mfa").status_code == 200
    admin_client = app.test_client()
    login_as(admin_client, admin)
    post_form(admin_client, f"/admin/users/{staff.id}/reset-mfa", {}, page=f"/admin/users/{staff.id}")
    assert stale.get("/account/mfa").headers["Location"].endswith("/login")
