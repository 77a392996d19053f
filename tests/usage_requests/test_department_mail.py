"""A confirmed 電子契約利用申出書 is mailed to the department it was submitted to (提出先): its shared address
when it has one, else its 担当者; once per request, also when the confirmation is clicked twice at once."""

from __future__ import annotations

import re

import pytest
from sqlalchemy import func, select

from portal.audit.actions import AuditAction
from portal.audit.models import AuditEvent
from portal.auth.models import Role
from portal.mail.models import OutboxMessage
from portal.mail.service import deliverable_body
from tests.conftest import csrf_from, reread
from tests.factories import make_department, make_staff
from tests.services.live import HttpClient, LiveServer, at_once
from tests.services.smtp import Inbox
from tests.usage_requests.conftest import deliver, form_data, latest_request, submit

CONFIRM = re.compile(r"https?://[^/\s]+(/apply/confirm/[A-Za-z0-9_-]+)")


@pytest.fixture
def app_config(mail_app_config):
    return mail_app_config


def _confirm_path(app, session) -> str:
    message = reread(session).scalars(select(OutboxMessage).where(OutboxMessage.template == "usage_request_confirm")
                                      .order_by(OutboxMessage.id.desc())).first()
    assert message is not None
    with app.app_context():
        match = CONFIRM.search(deliverable_body(message))
    assert match
    return match.group(1)


def _confirm(client, path: str):
    page = client.get(path)
    return client.post(path, data={"csrf_token": csrf_from(page.get_data(as_text=True))})


def _department_mails(session) -> list[OutboxMessage]:
    return list(reread(session).scalars(select(OutboxMessage).where(
        OutboxMessage.template == "usage_request_to_department").order_by(OutboxMessage.id)))


def test_the_departments_address_gets_the_confirmed_request_with_a_staff_link(app, client, session, department,
                                                                             smtp_server):
    department.contact_email = "keiyaku@pref.example.jp"
    session.commit()
    make_staff(session, role=Role.STAFF, email="tanto@pref.example.jp", department=department)
    assert submit(client, form_data()).status_code == 303
    path = _confirm_path(app, session)
    deliver(app)
    assert smtp_server.inbox.to("keiyaku@pref.example.jp") == []  # nothing before the address is confirmed

    assert _confirm(client, path).status_code == 200
    deliver(app)
    usage_request = latest_request(session)
    [mail] = smtp_server.inbox.to("keiyaku@pref.example.jp")
    assert str(mail["Subject"]) == (f"【電子契約利用申出書】株式会社けいやく商事から申出書が届きました"
                                    f"（受付番号 {usage_request.receipt_number}）")
    assert mail.get_content_charset() in (None, "utf-8")
    body = Inbox.text(mail)
    assert f"http://localhost/usage-requests/{usage_request.id}" in body
    assert "髙橋 一郎" in body  # the signing authority named in the form
    assert smtp_server.inbox.to("tanto@pref.example.jp") == []  # the shared address stands for the department


def test_without_an_address_each_staff_member_of_the_department_is_mailed(app, client, session, department,
                                                                         smtp_server):
    tanto = make_staff(session, role=Role.STAFF, email="tanto@pref.example.jp", department=department)
    second = make_staff(session, role=Role.STAFF, email="tanto2@pref.example.jp", department=department)
    make_staff(session, role=Role.APPROVER, email="shonin@pref.example.jp", department=department)
    gone = make_staff(session, role=Role.STAFF, email="taishoku@pref.example.jp", department=department)
    gone.is_active = False
    make_staff(session, role=Role.STAFF, email="yoso@pref.example.jp",
               department=make_department(session, code="ZAI", name="財政課"))
    session.commit()
    submit(client, form_data(company_name="有限会社　髙﨑㈱工務店"))
    assert _confirm(client, _confirm_path(app, session)).status_code == 200
    deliver(app)
    assert sorted(m.recipient for m in _department_mails(session)) == sorted([tanto.email, second.email])
    [mail] = smtp_server.inbox.to(tanto.email)
    assert "有限会社 髙﨑㈱工務店から申出書が届きました" in str(mail["Subject"])
    for address in ("shonin@pref.example.jp", "taishoku@pref.example.jp", "yoso@pref.example.jp"):
        assert smtp_server.inbox.to(address) == []


def test_two_clicks_at_the_same_moment_confirm_and_mail_once(app, client, session, department):
    department.contact_email = "keiyaku@pref.example.jp"
    session.commit()
    submit(client, form_data())
    path = _confirm_path(app, session)
    with LiveServer(app) as server:
        browser = HttpClient(server.url)
        token = browser.csrf(path)
        replies = at_once([lambda: browser.post(path, {"csrf_token": token}) for _ in range(4)])
        assert server.errors == []
    assert [r.status for r in replies] == [200] * 4
    assert all("確認が完了しました" in r.text for r in replies)
    assert len(_department_mails(session)) == 1
    confirmed = reread(session).scalar(select(func.count()).select_from(AuditEvent).where(
        AuditEvent.action == AuditAction.USAGE_REQUEST_CONFIRMED))
    assert confirmed == 1


def test_a_company_name_cannot_add_headers_to_the_department_mail(app, client, session, department, smtp_server):
    department.contact_email = "keiyaku@pref.example.jp"
    session.commit()
    hostile = "株式会社X Bcc: attacker@evil.example To: x@evil.example <b>&amp;"
    assert submit(client, form_data(company_name=hostile)).status_code == 303
    assert _confirm(client, _confirm_path(app, session)).status_code == 200
    deliver(app)
    [mail] = smtp_server.inbox.to("keiyaku@pref.example.jp")
    assert mail["Bcc"] is None
    assert str(mail["To"]) == "総務部 契約課 <keiyaku@pref.example.jp>"
    assert str(mail["Subject"]).startswith("【電子契約利用申出書】株式会社X Bcc: attacker@evil.example")
    assert "\n" not in str(mail["Subject"])
    assert "<b>&amp;" in Inbox.text(mail)  # plain text: nothing escaped, nothing interpreted
    assert smtp_server.inbox.to("attacker@evil.example") == smtp_server.inbox.to("x@evil.example") == []
