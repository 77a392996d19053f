from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import select

from portal import clock
from portal.auth import service as auth_service
from portal.auth.models import Role
from portal.mail.models import OutboxMessage, OutboxStatus
from portal.mail.service import deliver_pending, enqueue
from tests.conftest import reread
from tests.factories import make_department
from tests.services.smtp import Inbox, SmtpServer, free_port


@pytest.fixture
def app_config(mail_app_config):
    return mail_app_config


def _create_user(app, session, name="髙橋 一郎", email="takahashi@pref.example.jp"):
    with app.app_context():
        department = make_department(session, name="㈱対応 契約課")
        user, link = auth_service.create_user(
            session, email=email, name=name, role=Role.STAFF, department=department, title="主任",
            actor=None, now=clock.now(),
        )
        session.commit()
    return user, link


def test_japanese_subject_and_body_survive_real_smtp(app, session, smtp_server):
    _user, link = _create_user(app, session)
    with app.app_context():
        assert deliver_pending() == 1
    [message] = smtp_server.inbox.messages
    assert str(message["Subject"]) == "【岡山県】けいやくポータル アカウント登録のご案内"
    assert "髙橋 一郎" in str(message["To"])
    assert "takahashi@pref.example.jp" in str(message["To"])
    assert "けいやくポータル" in str(message["From"])
    body = Inbox.text(message)
    assert "髙橋 一郎 様" in body
    assert link in body
    assert "困ったときは" in body
    assert "http://localhost/help" in body
    assert message.get_content_charset() in ("utf-8", None)
    assert session.scalar(select(OutboxMessage.status)) == OutboxStatus.SENT


def test_raw_headers_are_rfc2047_encoded(app, session):
    server = SmtpServer()
    raw_messages: list[bytes] = []

    class RawInbox(Inbox):
        async def handle_DATA(self, server_, session_, envelope):  # noqa: N802
            raw_messages.append(envelope.original_content or envelope.content)
            return "250 OK"

    server.inbox = RawInbox()
    server.start()
    try:
        app.config.update(server.settings)
        with app.app_context():
            enqueue(session, "staff_enrolment", "a@pref.example.jp",
                    {"name": "㈱テスト 髙橋", "link": "http://x/", "expires_at": clock.now()}, to_name="髙橋")
            session.commit()
            assert deliver_pending() == 1
    finally:
        server.stop()
    raw = raw_messages[0]
    header_block = raw.split(b"\r\n\r\n", 1)[0]
    header_block.decode("ascii")  # every header is 7-bit: RFC 2047 encoded words
    assert b"=?utf-8?" in header_block.lower()


def test_smtp_outage_keeps_mail_queued_then_delivers_exactly_once(app, session):
    port = free_port()
    app.config.update({"MAIL_SERVER": "127.0.0.1", "MAIL_PORT": port, "MAIL_TIMEOUT": 2})
    _create_user(app, session)
    with app.app_context():
        assert deliver_pending() == 0
    message = session.scalar(select(OutboxMessage))
    assert message.status == OutboxStatus.PENDING
    assert message.attempts == 1
    assert message.last_error
    assert message.next_attempt_at > clock.now()

    server = SmtpServer(port)
    server.start()
    try:
        with app.app_context():
            assert deliver_pending() == 0  # backoff: not due yet
            clock.freeze(clock.now() + timedelta(minutes=5))
            assert deliver_pending() == 1
            assert deliver_pending() == 0
    finally:
        server.stop()
    assert len(server.inbox.messages) == 1
    reread(session)
    assert session.scalar(select(OutboxMessage.status)) == OutboxStatus.SENT


def test_gives_up_after_max_attempts(app, session):
    app.config.update({"MAIL_SERVER": "127.0.0.1", "MAIL_PORT": free_port(), "MAIL_MAX_ATTEMPTS": 2})
    _create_user(app, session)
    with app.app_context():
        deliver_pending()
        clock.freeze(clock.now() + timedelta(hours=1))
        deliver_pending()
    reread(session)
    assert session.scalar(select(OutboxMessage.status)) == OutboxStatus.FAILED


def test_without_smtp_server_mail_is_held_for_the_admin_page(app, session):
    app.config["MAIL_SERVER"] = ""
    _create_user(app, session)
    with app.app_context():
        assert deliver_pending() == 0
    assert session.scalar(select(OutboxMessage.status)) == OutboxStatus.HELD


def test_rolled_back_change_sends_nothing(app, session, smtp_server):
    with app.app_context():
        enqueue(session, "staff_enrolment", "a@pref.example.jp",
                {"name": "x", "link": "http://x/", "expires_at": clock.now()})
        reread(session)
        assert deliver_pending() == 0
    assert smtp_server.inbox.messages == []
