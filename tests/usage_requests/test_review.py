"""Staff review: department scope, accept → counterparty + signing authority + PDF, return with a reason."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from portal.audit.models import AuditEvent
from portal.auth.models import Role
from portal.counterparties.models import Counterparty
from portal.counterparties.service import find_by_name
from portal.usage_requests.models import UsageRequestStatus
from tests.conftest import csrf_from, post_form
from tests.factories import login_as, make_department, make_staff
from tests.usage_requests.conftest import deliver, latest_request, make_usage_request


@pytest.fixture
def app_config(mail_app_config):
    return mail_app_config


@pytest.fixture
def reviewer(session, department, client):
    staff = make_staff(session, department=department, role=Role.STAFF)
    login_as(client, staff)
    return staff


def _post(client, url, data=None, page="/usage-requests/"):
    return post_form(client, url, data or {}, page=page)


def test_list_is_scoped_to_the_department_and_split_by_status(app, client, session, department, reviewer):
    other = make_department(session, code="DOB", name="土木部 監理課")
    session.commit()
    mine = make_usage_request(session, department, company_name="自分の課の商事")
    theirs = make_usage_request(session, other, company_name="よその課の建設")
    returned = make_usage_request(session, department, company_name="差戻し済の商会",
                                  status=UsageRequestStatus.RETURNED)
    unconfirmed = make_usage_request(session, department, company_name="未確認の工業",
                                     status=UsageRequestStatus.AWAITING_EMAIL)

    html = client.get("/usage-requests/").get_data(as_text=True)
    assert mine.receipt_number in html
    assert theirs.receipt_number not in html
    assert returned.receipt_number not in html
    assert unconfirmed.receipt_number not in html
    assert "確認待ち（1）" in html
    assert "差戻し（1）" in html

    partial = client.get("/usage-requests/?status=returned", headers={"HX-Request": "true"})
    text = partial.get_data(as_text=True)
    assert text.lstrip().startswith('<section id="usage-request-rows"')
    assert returned.receipt_number in text
    assert "HX-Request" in partial.headers["Vary"]

    assert client.get(f"/usage-requests/{theirs.id}").status_code == 404
    assert client.get(f"/usage-requests/{unconfirmed.id}").status_code == 404
    assert _post(client, f"/usage-requests/{theirs.id}/accept").status_code == 404
    assert client.get("/usage-requests/?status=nonsense").status_code == 404

    admin = make_staff(session, email="admin@pref.example.jp", role=Role.ADMIN, department=other)
    admin_client = app.test_client()
    login_as(admin_client, admin)
    assert mine.receipt_number in admin_client.get("/usage-requests/").get_data(as_text=True)
    assert theirs.receipt_number in admin_client.get("/usage-requests/").get_data(as_text=True)


def test_list_needs_a_login(client):
    response = client.get("/usage-requests/")
    assert response.status_code == 302
    assert "/login" in response.headers["Location"]


def test_accept_registers_counterparty_and_signing_authority(app, client, session, department, reviewer,
                                                             smtp_server):
    usage_request = make_usage_request(session, department)
    page = client.get(f"/usage-requests/{usage_request.id}").get_data(as_text=True)
    assert "受け付ける" in page

    response = post_form(client, f"/usage-requests/{usage_request.id}/accept", {},
                         page=f"/usage-requests/{usage_request.id}")
    assert response.status_code == 303
    accepted = latest_request(session)
    assert accepted.status == UsageRequestStatus.ACCEPTED
    assert accepted.reviewed_by_id == reviewer.id
    assert accepted.pdf_key
    assert len(accepted.pdf_sha256 or "") == 64

    counterparty = find_by_name(session, "（株）ケイヤク商事")  # normalised lookup finds 株式会社けいやく商事
    assert counterparty is not None
    assert counterparty.id == accepted.counterparty_id
    assert counterparty.contact_phone == "086-224-2111"
    authority = counterparty.current_authority
    assert authority is not None
    assert (authority.title, authority.name, authority.email) == (
        "代表取締役", "髙橋 一郎", "ichiro@keiyaku-shoji.example.jp")
    assert authority.source == "usage_request"

    actions = set(session.scalars(select(AuditEvent.action)))
    assert {"staff:usage-request:viewed", "staff:usage-request:accepted",
            "staff:counterparty:authority-registered"} <= actions

    pdf = client.get(f"/usage-requests/{usage_request.id}/form.pdf")
    assert pdf.status_code == 200
    assert pdf.mimetype == "application/pdf"
    assert pdf.data.startswith(b"%PDF")

    deliver(app)
    [mail] = smtp_server.inbox.to("hanako@keiyaku-shoji.example.jp")
    assert "受付が完了しました" in str(mail["Subject"])


def test_a_second_request_replaces_the_authority_of_the_same_counterparty(client, session, department, reviewer):
    first = make_usage_request(session, department)
    second = make_usage_request(session, department, company_name="㈱ケイヤク商事", authority_name="吉備 次郎",
                                authority_email="jiro@keiyaku-shoji.example.jp")
    for usage_request in (first, second):
        _post(client, f"/usage-requests/{usage_request.id}/accept", page=f"/usage-requests/{usage_request.id}")
    session.commit()
    session.expire_all()
    [counterparty] = session.scalars(select(Counterparty)).all()
    assert counterparty.current_authority.email == "jiro@keiyaku-shoji.example.jp"
    assert [a.retired_at is not None for a in counterparty.authorities] == [True, False]


def test_return_mails_the_reason_to_the_submitter(app, client, session, department, reviewer, smtp_server):
    usage_request = make_usage_request(session, department)
    url = f"/usage-requests/{usage_request.id}/return"
    refused = post_form(client, url, {"reason": ""}, page=f"/usage-requests/{usage_request.id}")
    assert refused.status_code == 422
    assert "差戻しの理由を入力してください。" in refused.get_data(as_text=True)

    reason = "契約締結権限者の役職が空欄です。\n役職を記入してください。"
    response = post_form(client, url, {"reason": reason}, page=f"/usage-requests/{usage_request.id}",
                         headers={"HX-Request": "true"})
    assert response.status_code == 204
    assert response.headers["HX-Redirect"].endswith(f"/usage-requests/{usage_request.id}")
    returned = latest_request(session)
    assert returned.status == UsageRequestStatus.RETURNED
    assert returned.return_reason == reason
    assert returned.counterparty_id is None

    deliver(app)
    [mail] = smtp_server.inbox.to("hanako@keiyaku-shoji.example.jp")
    assert "差戻し" in str(mail["Subject"])
    body = smtp_server.inbox.text(mail)
    assert "契約締結権限者の役職が空欄です。" in body
    assert "http://localhost/apply" in body
    details = session.scalar(select(AuditEvent.details).where(AuditEvent.action == "staff:usage-request:returned"))
    assert details["reason"] == reason


def test_reviewed_request_cannot_be_reviewed_again(client, session, department, reviewer):
    usage_request = make_usage_request(session, department)
    show = f"/usage-requests/{usage_request.id}"
    assert _post(client, f"{show}/accept", page=show).status_code == 303
    assert _post(client, f"{show}/accept", page=show).status_code == 303  # double click: no change
    response = post_form(client, f"{show}/return", {"reason": "やはり差戻し"}, page=show,
                         headers={"HX-Request": "true"})
    assert response.status_code == 422
    assert "すでに「受付済」です" in response.get_data(as_text=True)
    assert latest_request(session).status == UsageRequestStatus.ACCEPTED


def test_auditor_may_read_but_not_review(app, session, department):
    usage_request = make_usage_request(session, department)
    auditor = make_staff(session, email="audit@pref.example.jp", role=Role.AUDITOR, department=department)
    client = app.test_client()
    login_as(client, auditor)
    page = client.get(f"/usage-requests/{usage_request.id}").get_data(as_text=True)
    assert "受け付ける" not in page
    token = csrf_from(page)
    assert client.post(f"/usage-requests/{usage_request.id}/accept", data={"csrf_token": token}).status_code == 403
    assert client.get("/usage-requests/new").status_code == 403


def test_accept_without_csrf_token_is_refused(client, session, department, reviewer):
    usage_request = make_usage_request(session, department)
    assert client.post(f"/usage-requests/{usage_request.id}/accept").status_code == 400
    assert latest_request(session).status == UsageRequestStatus.PENDING
