from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import select

from portal import clock
from portal.auth import service as auth_service
from portal.auth.models import Role
from portal.mail.models import OutboxMessage, OutboxStatus
from portal.mail.service import deliver_pending, enqueue
from portal.tokens import new_token
from tests.conftest import reread
from tests.factories import login_as, make_department, make_staff
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


class EnvelopeInbox(Inbox):
    """Keeps the raw bytes and the SMTP envelope recipients of every message."""

    def __init__(self) -> None:
        super().__init__()
        self.raw: list[bytes] = []
        self.envelopes: list[list[str]] = []

    async def handle_DATA(self, server_, session_, envelope):  # noqa: N802
        self.raw.append(envelope.original_content or envelope.content)
        self.envelopes.append(list(envelope.rcpt_tos))
        return await super().handle_DATA(server_, session_, envelope)


@pytest.fixture
def envelope_server():
    server = SmtpServer()
    server.inbox = EnvelopeInbox()
    server.start()
    yield server
    server.stop()


def _planted(session, *, recipient: str, name: str = "", subject: str = "お知らせ", template: str = "planted"):
    """A row as an older version (or a bypassed form) could have left it in the outbox."""
    now = clock.now()
    message = OutboxMessage(template=template, recipient=recipient, recipient_name=name, subject=subject,
                            body="本文\n", status=OutboxStatus.PENDING, created_at=now, next_attempt_at=now)
    session.add(message)
    session.commit()
    return message.id


def test_a_message_that_cannot_be_built_fails_alone_and_the_mail_behind_it_is_delivered(
        app, session, envelope_server):
    app.config.update(envelope_server.settings)
    hostile = _planted(session, recipient="yamada@keiyaku-shoji.co.jp\r\nBcc: evil@evil.example")
    completion = _planted(session, recipient="sato@keiyaku-shoji.co.jp", name="佐藤 次郎",
                          subject="電子署名完了のお知らせ", template="signature_completed")
    with app.app_context():
        assert deliver_pending() == 1
    assert envelope_server.inbox.subjects() == ["電子署名完了のお知らせ"]
    assert envelope_server.inbox.envelopes == [["sato@keiyaku-shoji.co.jp"]]
    reread(session)
    failed = session.get(OutboxMessage, hostile)
    assert failed.status is OutboxStatus.PENDING  # not stuck 「送信中」: retried with backoff
    assert failed.attempts == 1
    assert failed.last_error.startswith("BadHeaderError")
    assert failed.next_attempt_at > clock.now()
    assert session.get(OutboxMessage, completion).status is OutboxStatus.SENT

    app.config["MAIL_MAX_ATTEMPTS"] = 2
    with app.app_context():
        clock.freeze(clock.now() + timedelta(hours=1))
        assert deliver_pending() == 0
    reread(session)
    assert session.get(OutboxMessage, hostile).status is OutboxStatus.FAILED
    assert "evil@evil.example" not in str(envelope_server.inbox.envelopes)

    admin = make_staff(session, role=Role.ADMIN, email="kanri@pref.example.jp")
    client = app.test_client()
    login_as(client, admin)
    page = client.get("/admin/mail/").get_data(as_text=True)
    assert "送信失敗" in page
    assert "BadHeaderError" in page


def test_line_breaks_in_a_stored_name_or_subject_cannot_add_headers(app, session, envelope_server):
    app.config.update(envelope_server.settings)
    _planted(session, recipient="yamada@keiyaku-shoji.co.jp", name="山田 太郎\r\nBcc: evil@evil.example",
             subject="署名依頼\r\nBcc: evil2@evil.example")
    with app.app_context():
        assert deliver_pending() == 1
    assert envelope_server.inbox.envelopes == [["yamada@keiyaku-shoji.co.jp"]]
    [message] = envelope_server.inbox.messages
    assert message["Bcc"] is None
    assert message["To"].addresses[0].display_name == "山田 太郎 Bcc: evil@evil.example"
    assert str(message["Subject"]) == "署名依頼 Bcc: evil2@evil.example"


def test_headers_and_body_survive_a_seven_bit_gateway(app, session, envelope_server):
    app.config.update(envelope_server.settings)
    _create_user(app, session)
    with app.app_context():
        assert deliver_pending() == 1
    [raw] = envelope_server.inbox.raw
    raw.decode("ascii")  # the whole message, body included, is 7-bit
    [message] = envelope_server.inbox.messages
    assert message["Content-Transfer-Encoding"] == "base64"
    assert message.get_content_charset() == "utf-8"
    assert "髙橋 一郎 様" in Inbox.text(message)
    assert message["Auto-Submitted"] == "auto-generated"
    assert message["Message-ID"].endswith("@example.jp>")  # the domain of MAIL_FROM_ADDRESS
    assert message["Date"].endswith("+0900")
    assert message["Date"].datetime.utcoffset() == timedelta(hours=9)
    stored = session.scalar(select(OutboxMessage))
    assert stored.message_id == message["Message-ID"]


def test_a_mail_queued_with_a_readable_link_is_masked_once_handed_to_smtp(app, session, envelope_server):
    app.config.update(envelope_server.settings)
    token = new_token()[0]
    message_id = _planted(session, recipient="yamada@keiyaku-shoji.co.jp")
    session.get(OutboxMessage, message_id).body = f"署名はこちら: http://localhost/s/{token}\n"
    session.commit()
    with app.app_context():
        assert deliver_pending() == 1
    assert token in Inbox.text(envelope_server.inbox.messages[0])
    reread(session)
    stored = session.get(OutboxMessage, message_id)
    assert token not in stored.body
    assert f"/s/{token[:4]}…(マスク済み)" in stored.body
