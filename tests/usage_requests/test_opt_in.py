"""Double opt-in over a real SMTP server: the signing authority's link, followed, hands the request to staff."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from sqlalchemy import select

from portal import clock
from portal.audit.models import AuditEvent
from portal.auth.models import Role
from portal.usage_requests.models import UsageRequestStatus
from tests.conftest import csrf_from
from tests.factories import login_as, make_staff
from tests.usage_requests.conftest import deliver, form_data, latest_request, submit

LINK = re.compile(r"http://localhost(/apply/confirm/[A-Za-z0-9_-]+)")


@pytest.fixture
def app_config(mail_app_config):
    return mail_app_config


def _confirm_path(smtp_server) -> str:
    [mail] = smtp_server.inbox.to("ichiro@keiyaku-shoji.example.jp")
    match = LINK.search(smtp_server.inbox.text(mail))
    assert match, "no confirmation link in the mail"
    return match.group(1)


def test_confirmation_mail_arrives_and_link_hands_request_to_staff(app, client, session, department, smtp_server):
    assert submit(client, form_data()).status_code == 303
    assert deliver(app) == 2
    usage_request = latest_request(session)

    [confirmation] = smtp_server.inbox.to("ichiro@keiyaku-shoji.example.jp")
    assert "メールアドレスの確認のお願い" in str(confirmation["Subject"])
    assert usage_request.receipt_number in str(confirmation["Subject"])
    [receipt] = smtp_server.inbox.to("hanako@keiyaku-shoji.example.jp")
    assert f"受付番号 {usage_request.receipt_number}" in str(receipt["Subject"])
    body = smtp_server.inbox.text(receipt)
    assert "令和8年度 庁舎清掃業務委託" in body
    assert "髙橋 一郎" in body

    staff = make_staff(session, department=department)
    staff_client = app.test_client()
    login_as(staff_client, staff)
    assert usage_request.receipt_number not in staff_client.get("/usage-requests/").get_data(as_text=True)
    assert staff_client.get(f"/usage-requests/{usage_request.id}").status_code == 404

    path = _confirm_path(smtp_server)
    page = client.get(path)
    assert page.status_code == 200
    assert "確認する" in page.get_data(as_text=True)
    assert latest_request(session).status == UsageRequestStatus.AWAITING_EMAIL  # a GET changes nothing

    done = client.post(path, data={"csrf_token": csrf_from(page.get_data(as_text=True))})
    assert done.status_code == 200
    assert "確認が完了しました" in done.get_data(as_text=True)
    confirmed = latest_request(session)
    assert confirmed.status == UsageRequestStatus.PENDING
    assert confirmed.confirmed_at is not None
    assert usage_request.receipt_number in staff_client.get("/usage-requests/").get_data(as_text=True)

    again = client.post(path, data={"csrf_token": csrf_from(page.get_data(as_text=True))})
    assert again.status_code == 200  # a second click is harmless
    events = list(session.scalars(select(AuditEvent).where(AuditEvent.action == "signer:usage-request:confirmed")))
    assert len(events) == 1
    assert events[0].actor_label == "ichiro@keiyaku-shoji.example.jp"


def test_expired_link_is_410_and_confirms_nothing(app, client, session, department, smtp_server):
    submit(client, form_data())
    deliver(app)
    path = _confirm_path(smtp_server)
    clock.freeze(clock.now() + timedelta(hours=app.config["USAGE_REQUEST_CONFIRM_HOURS"], minutes=1))
    response = client.get(path)
    assert response.status_code == 410
    assert "有効期限（72時間）が切れています" in response.get_data(as_text=True)
    assert latest_request(session).status == UsageRequestStatus.AWAITING_EMAIL


def test_unknown_link_is_404(client, department):
    response = client.get("/apply/confirm/not-a-real-token")
    assert response.status_code == 404
    assert "このリンクは無効です" in response.get_data(as_text=True)


def test_staff_entry_of_a_posted_form_skips_opt_in_and_is_marked(app, client, session, department, smtp_server):
    staff = make_staff(session, department=department, role=Role.STAFF)
    login_as(client, staff)
    data = form_data(channel="post", form_date="2026-11-20")
    data.pop("department")
    data.pop("website")
    from tests.conftest import post_form

    response = post_form(client, "/usage-requests/new", data)
    assert response.status_code == 303
    usage_request = latest_request(session)
    assert usage_request.status == UsageRequestStatus.PENDING
    assert usage_request.channel.value == "post"
    assert usage_request.entered_by_id == staff.id
    assert usage_request.department_id == department.id
    assert str(usage_request.form_date) == "2026-11-20"
    page = client.get(f"/usage-requests/{usage_request.id}").get_data(as_text=True)
    assert "郵送（職員入力）" in page
    deliver(app)
    [receipt] = smtp_server.inbox.to("hanako@keiyaku-shoji.example.jp")
    assert "郵送で受け取った申出書を、職員が入力しました" in smtp_server.inbox.text(receipt)
    assert smtp_server.inbox.to("ichiro@keiyaku-shoji.example.jp") == []
