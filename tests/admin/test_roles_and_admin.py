from __future__ import annotations

import pytest
from sqlalchemy import select

from portal.audit.models import AuditEvent
from portal.auth.models import Role, StaffUser
from portal.mail.models import OutboxMessage
from tests.conftest import post_form, reread
from tests.factories import login_as, make_department, make_staff


def test_anonymous_is_redirected_to_login(client):
    response = client.get("/admin/users")
    assert response.status_code == 302
    assert "/login" in response.headers["Location"]


@pytest.mark.parametrize("role", [Role.STAFF, Role.APPROVER, Role.AUDITOR])
def test_non_admins_cannot_open_admin_pages(client, session, role):
    login_as(client, make_staff(session, role=role))
    for url in ("/admin/users", "/admin/departments", "/admin/mail/"):
        response = client.get(url)
        assert response.status_code == 403, url
        assert "権限がありません" in response.get_data(as_text=True)


def test_auditor_cannot_create_users(client, session):
    auditor = make_staff(session, role=Role.AUDITOR)
    login_as(client, auditor)
    token_page = client.get("/").get_data(as_text=True)
    from tests.conftest import csrf_from

    response = client.post("/admin/users", data={
        "csrf_token": csrf_from(token_page), "email": "new@pref.example.jp", "name": "新人", "role": "admin",
        "department_id": auditor.department_id,
    })
    assert response.status_code == 403
    assert session.scalar(select(StaffUser).where(StaffUser.email == "new@pref.example.jp")) is None


def test_admin_creates_user_who_enrols_with_link(app, client, session):
    admin = make_staff(session, role=Role.ADMIN, email="admin@pref.example.jp")
    department = make_department(session, code="KENMIN", name="備前県民局")
    session.commit()
    login_as(client, admin)
    response = post_form(client, "/admin/users", {
        "email": "approver@pref.example.jp", "name": "㈱ではない 髙橋", "title": "契約担当者",
        "role": "approver", "department_id": department.id,
    })
    assert response.status_code == 200
    html = response.get_data(as_text=True)
    link = html.split('id="enrolment-link">', 1)[1].split("<", 1)[0]
    assert "/account/enrol/" in link
    created = session.scalar(select(StaffUser).where(StaffUser.email == "approver@pref.example.jp"))
    assert created.role == Role.APPROVER
    assert created.department_id == department.id
    assert session.scalar(select(OutboxMessage.recipient)) == "approver@pref.example.jp"
    actions = list(session.scalars(select(AuditEvent.action)))
    assert "admin:user:created" in actions


def test_admin_disables_user_and_cannot_disable_self(client, session):
    admin = make_staff(session, role=Role.ADMIN, email="admin@pref.example.jp")
    staff = make_staff(session, email="s@pref.example.jp", department=admin.department)
    login_as(client, admin)
    page = f"/admin/users/{staff.id}"
    response = post_form(client, f"/admin/users/{staff.id}/active", {"active": "0"}, page=page)
    assert response.status_code == 303
    reread(session)
    assert session.get(StaffUser, staff.id).is_active is False
    response = post_form(client, f"/admin/users/{admin.id}/active", {"active": "0"}, page=f"/admin/users/{admin.id}",
                         follow_redirects=True)
    assert "自分自身のアカウントは無効にできません。" in response.get_data(as_text=True)


def test_admin_resets_mfa(client, session):
    admin = make_staff(session, role=Role.ADMIN, email="admin@pref.example.jp")
    staff = make_staff(session, email="s@pref.example.jp", department=admin.department)
    login_as(client, admin)
    response = post_form(client, f"/admin/users/{staff.id}/reset-mfa", {}, page=f"/admin/users/{staff.id}")
    assert "/account/enrol/" in response.get_data(as_text=True)
    reread(session)
    reset = session.get(StaffUser, staff.id)
    assert reset.mfa_enrolled_at is None
    assert reset.totp_secret_sealed is None
    assert "admin:mfa:reset" in list(session.scalars(select(AuditEvent.action)))


def test_admin_manages_departments(client, session):
    admin = make_staff(session, role=Role.ADMIN, email="admin@pref.example.jp")
    login_as(client, admin)
    response = post_form(client, "/admin/departments", {"code": "BIZEN", "name": "備前県民局", "kind": "県民局"},
                         follow_redirects=True)
    assert "備前県民局" in response.get_data(as_text=True)
    response = post_form(client, "/admin/departments", {"code": "BIZEN", "name": "重複", "kind": "本庁"})
    assert response.status_code == 422
    assert "すでに使われています" in response.get_data(as_text=True)


def test_user_content_is_escaped(client, session):
    admin = make_staff(session, role=Role.ADMIN, email="admin@pref.example.jp", name="<script>alert(1)</script>")
    login_as(client, admin)
    html = client.get("/admin/users").get_data(as_text=True)
    assert "<script>alert(1)</script>" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html


def test_security_headers(client):
    response = client.get("/login")
    assert response.headers["X-Frame-Options"] == "DENY"
    assert "frame-ancestors 'none'" in response.headers["Content-Security-Policy"]
