"""Mails held before SMTP was configured: an administrator sends them from 「送信メール」, one or all,
audited and once even when the button is pressed twice at once; the page says why a mail waits or failed."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import func, select

from portal import clock
from portal.audit.actions import AuditAction
from portal.audit.models import AuditEvent
from portal.auth.models import Role
from portal.mail.models import OutboxMessage, OutboxStatus
from portal.mail.service import deliver_pending, enqueue
from portal.tokens import new_token
from tests.conftest import csrf_from, post_form, reread
from tests.factories import login_as, make_staff
from tests.services.live import HttpClient, LiveServer, at_once
from tests.services.smtp import Inbox


@pytest.fixture
def app_config(mail_app_config):
    return mail_app_config


def _held(app, session, count: int) -> list[tuple[int, str, str]]:
    """`count` mails made while no SMTP server was configured: (id, recipient, link)."""
    made = []
    server = app.config["MAIL_SERVER"]
    app.config["MAIL_SERVER"] = ""
    try:
        with app.test_request_context():
            for number in range(count):
                token, _ = new_token()
                link = f"http://localhost/enrol/{token}"
                message = enqueue(session, "staff_enrolment", f"user{number}@pref.example.jp",
                                  {"name": f"髙橋 {number}", "link": link, "expires_at": clock.now()},
                                  to_name=f"髙橋 {number}")
                made.append((message.id, message.recipient, link))
            session.commit()
    finally:
        app.config["MAIL_SERVER"] = server
    assert {m.status for m in reread(session).scalars(select(OutboxMessage))} == {OutboxStatus.HELD}
    return made


@pytest.fixture
def admin(session):
    return make_staff(session, role=Role.ADMIN, email="kanri@pref.example.jp", name="管理 太郎")


@pytest.fixture
def admin_client(app, admin):
    client = app.test_client()
    login_as(client, admin)
    return client


def _deliver(app) -> int:
    with app.app_context():
        return deliver_pending()


def _events(session) -> list[AuditEvent]:
    return list(reread(session).scalars(select(AuditEvent).where(AuditEvent.action == AuditAction.MAIL_HELD_SENT)))


def test_one_held_mail_is_sent_with_its_working_link_and_the_rest_stay_held(app, session, admin_client,
                                                                            smtp_server):
    (first, first_to, link), (_, second_to, _) = _held(app, session, 2)
    page = admin_client.get("/admin/mail/").get_data(as_text=True)
    assert "保留中のメールが 2 件あります" in page
    assert "SMTPサーバーが設定される前に作成されたため、送信せずに保管しています。" in page
    assert "保留中のメールをすべて送信" in page
    assert page.count(">送信する</button>") == 2

    response = post_form(admin_client, f"/admin/mail/{first}/send", {}, page="/admin/mail/")
    assert response.status_code == 303
    assert "1件のメールを送信待ちにしました" in admin_client.get(response.headers["Location"]).get_data(as_text=True)
    assert _deliver(app) == 1
    [mail] = smtp_server.inbox.to(first_to)
    assert str(mail["Subject"]) == "【岡山県】けいやくポータル アカウント登録のご案内"
    assert link in Inbox.text(mail)  # the link sealed while it was held works when it is sent
    assert smtp_server.inbox.to(second_to) == []
    statuses = {m.recipient: m.status for m in reread(session).scalars(select(OutboxMessage))}
    assert statuses == {first_to: OutboxStatus.SENT, second_to: OutboxStatus.HELD}
    [event] = _events(session)
    assert event.actor_label.startswith("管理 太郎") or event.actor_user_id is not None
    assert (event.subject_type, event.subject_id) == ("outbox_messages", str(first))
    assert event.details["recipient"] == first_to


def test_pressing_the_buttons_twice_at_once_sends_each_mail_once(app, session, admin, smtp_server):
    made = _held(app, session, 3)
    with LiveServer(app) as server:
        browser = HttpClient(server.url)
        browser.login(admin)
        token = browser.csrf("/admin/mail/")
        first = made[0][0]
        replies = at_once([lambda: browser.post("/admin/mail/send-held", {"csrf_token": token}),
                           lambda: browser.post("/admin/mail/send-held", {"csrf_token": token}),
                           lambda: browser.post(f"/admin/mail/{first}/send", {"csrf_token": token}),
                           lambda: browser.post(f"/admin/mail/{first}/send", {"csrf_token": token})])
        assert server.errors == []
    assert [r.status for r in replies] == [200] * 4  # each press ends on a page, none on an error
    assert len(_events(session)) == 3  # every mail released by exactly one press
    assert _deliver(app) == 3
    assert _deliver(app) == 0
    for _, recipient, _ in made:
        assert len(smtp_server.inbox.to(recipient)) == 1


def test_without_an_smtp_server_held_mail_cannot_be_sent_and_the_page_says_why(app, session, admin_client):
    [(message_id, _, _)] = _held(app, session, 1)
    app.config["MAIL_SERVER"] = ""
    page = admin_client.get("/admin/mail/").get_data(as_text=True)
    assert "送信するには、先に SMTP サーバー（PORTAL_MAIL_SERVER）を設定してください。" in page
    assert ">送信する</button>" not in page
    assert "保留中のメールをすべて送信" not in page
    for path in (f"/admin/mail/{message_id}/send", "/admin/mail/send-held"):
        response = post_form(admin_client, path, {}, page="/admin/mail/")
        assert response.status_code == 303
        shown = admin_client.get(response.headers["Location"]).get_data(as_text=True)
        assert "SMTPサーバーが設定されていないため送信できません。" in shown
    assert reread(session).get(OutboxMessage, message_id).status is OutboxStatus.HELD
    assert _events(session) == []


def test_a_press_without_the_csrf_token_or_for_an_unknown_mail_changes_nothing(app, session, admin_client):
    [(message_id, _, _)] = _held(app, session, 1)
    for path in (f"/admin/mail/{message_id}/send", "/admin/mail/send-held"):
        refused = admin_client.post(path, data={})
        assert refused.status_code == 400
        assert "ページを再読み込みしてからやり直してください" in refused.get_data(as_text=True)
    token = csrf_from(admin_client.get("/admin/mail/").get_data(as_text=True))
    for hostile in ("999999", "-1", "1%0d%0aX-Injected:1", "%F0%9F%92%A3"):
        response = admin_client.post(f"/admin/mail/{hostile}/send", data={"csrf_token": token})
        assert response.status_code == 404
        assert "見つかりません" in response.get_data(as_text=True)
    assert reread(session).get(OutboxMessage, message_id).status is OutboxStatus.HELD
    assert _events(session) == []


def test_failed_and_retrying_mails_say_why_in_japanese(app, session, admin_client):
    (failed, _, _), (retrying, _, _), (unknown, _, _) = _held(app, session, 3)
    rows = {m.id: m for m in reread(session).scalars(select(OutboxMessage))}
    rows[failed].status = OutboxStatus.FAILED
    rows[failed].attempts = 8
    rows[failed].last_error = "SMTPRecipientsRefused: {'user0@pref.example.jp': (550, b'5.1.1 User unknown')}"
    rows[retrying].status = OutboxStatus.PENDING
    rows[retrying].attempts = 2
    rows[retrying].last_error = "ConnectionRefusedError: [Errno 111] Connection refused"
    rows[retrying].next_attempt_at = clock.now() + timedelta(hours=1)
    rows[unknown].status = OutboxStatus.FAILED
    rows[unknown].attempts = 8
    rows[unknown].last_error = "WeirdError: <script>alert(1)</script>"
    session.commit()
    page = admin_client.get("/admin/mail/").get_data(as_text=True)
    assert "8回送信を試みましたが失敗しました。宛先のメールサーバーが受け取りを拒否しました。" in page
    assert "本文のリンクは破棄されています。" in page
    assert "SMTPサーバーに接続できませんでした（接続を拒否されました）" in page
    assert "に再度送信します（2回失敗）" in page
    assert "送信できませんでした（WeirdError）" in page
    assert "<script>alert(1)</script>" not in page
    assert ">送信する</button>" not in page  # failed mails lost their links: no button that would send them masked
    detail = admin_client.get(f"/admin/mail/{failed}").get_data(as_text=True)
    assert "宛先のメールサーバーが受け取りを拒否しました。" in detail
    assert "5.1.1 User unknown" in detail  # the recorded error stays readable for whoever debugs it
    assert session.scalar(select(func.count()).select_from(OutboxMessage)) == 3
