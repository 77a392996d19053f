"""Departments are edited and deactivated, carry their 電子契約の導入日 and the contact vendors see."""

from __future__ import annotations

import threading
from datetime import date

import pytest
from sqlalchemy import select

from portal.audit.actions import AuditAction
from portal.audit.models import AuditEvent
from portal.auth.models import Department, Role
from tests.conftest import post_form, reread
from tests.factories import login_as, make_department, make_staff
from tests.services.live import HttpClient, LiveServer

FIELDS = {"code": "BIZEN", "name": "備前県民局", "kind": "県民局", "go_live_date": "2025-11-01",
          "contact_phone": "086-224-2111", "contact_email": "bizen@pref.example.jp", "is_active": "y"}


@pytest.fixture
def admin_client(client, session):
    login_as(client, make_staff(session, role=Role.ADMIN, email="admin@pref.example.jp"))
    return client


def test_a_typo_is_corrected_and_the_change_is_logged(admin_client, session):
    department = make_department(session, code="BIZEN", name="備前県民局（誤）")
    session.commit()
    url = f"/admin/departments/{department.id}"
    assert "備前県民局（誤）" in admin_client.get(url).get_data(as_text=True)
    response = post_form(admin_client, url, FIELDS, page=url)
    assert response.status_code == 303
    saved = reread(session).get(Department, department.id)
    assert (saved.name, saved.go_live_date, saved.contact_phone) == ("備前県民局", date(2025, 11, 1), "086-224-2111")
    event = session.scalars(select(AuditEvent).where(AuditEvent.action == AuditAction.DEPARTMENT_UPDATED.value)).one()
    assert event.details["changes"]["name"] == ["備前県民局（誤）", "備前県民局"]
    assert "令和7年11月1日" in admin_client.get("/admin/departments").get_data(as_text=True)


def test_a_deactivated_department_is_no_longer_offered(admin_client, client, session):
    department = make_department(session, code="OLD", name="廃止された課")
    session.commit()
    assert "廃止された課" in client.get("/apply").get_data(as_text=True)
    url = f"/admin/departments/{department.id}"
    fields = {**FIELDS, "code": "OLD", "name": "廃止された課"}
    fields.pop("is_active")
    assert post_form(admin_client, url, fields, page=url).status_code == 303
    assert reread(session).get(Department, department.id).is_active is False
    assert "廃止された課" not in client.get("/apply").get_data(as_text=True)
    assert "廃止された課" not in admin_client.get("/admin/users").get_data(as_text=True).split("<form")[-1]


@pytest.mark.parametrize(("field", "value", "message"), [
    ("contact_phone", "<script>alert(1)</script>", "電話番号は数字とハイフン"),
    ("contact_phone", "1" * 31, ""),
    ("contact_email", "not-an-address", "メールアドレスの形式"),
    ("name", "名" * 101, ""),
    ("code", "", "入力してください"),
    ("go_live_date", "令和七年", ""),
])
def test_hostile_values_are_refused_and_nothing_changes(admin_client, session, field, value, message):
    department = make_department(session, code="KEEP", name="変わらない課")
    session.commit()
    url = f"/admin/departments/{department.id}"
    response = post_form(admin_client, url, {**FIELDS, field: value}, page=url)
    assert response.status_code == 422
    html = response.get_data(as_text=True)
    assert message in html
    assert "<script>alert(1)</script>" not in html
    assert reread(session).get(Department, department.id).name == "変わらない課"


def test_sending_is_refused_before_the_go_live_date():
    department = Department(code="BIZEN", name="備前県民局", go_live_date=date(2025, 11, 1))
    refusal = department.sending_refusal(date(2025, 10, 31))
    assert refusal == "電子契約の導入日（令和7年11月1日）より前のため送信できません。"
    assert department.sending_refusal(date(2025, 11, 1)) is None
    assert Department(code="X", name="本庁").sending_refusal(date(2000, 1, 1)) is None


def test_an_unknown_department_page_is_a_japanese_404(admin_client):
    response = admin_client.get("/admin/departments/999999")
    assert response.status_code == 404
    assert "所属が見つかりません" in response.get_data(as_text=True)


def test_two_admins_adding_the_same_code_at_once_get_one_department(app, session):
    admins = [make_staff(session, role=Role.ADMIN, email=f"admin{n}@pref.example.jp") for n in range(4)]
    replies: list[tuple[int, str]] = []
    with LiveServer(app) as server:
        clients = []
        for admin in admins:
            client = HttpClient(server.url)
            client.login(admin)
            clients.append((client, client.csrf("/admin/departments")))
        start = threading.Barrier(len(clients))

        def add(client: HttpClient, token: str) -> None:
            start.wait()
            reply = client.post("/admin/departments", {**FIELDS, "csrf_token": token})
            replies.append((reply.status, reply.text))

        threads = [threading.Thread(target=add, args=entry) for entry in clients]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=60)
    assert not server.errors, "\n".join(server.errors)
    statuses = sorted(status for status, _ in replies)
    assert 500 not in statuses
    refused = [text for status, text in replies if status == 422]
    assert all("所属コード「BIZEN」はすでに使われています" in text for text in refused)
    assert len(reread(session).scalars(select(Department).where(Department.code == "BIZEN")).all()) == 1
