"""A subject that holds a literal RFC 2047 encoded word (typed into a public form) arrives as typed: the
reader's mail program must not decode it into characters the forms refuse (U+202E) or into a line break."""

from __future__ import annotations

import pytest

from portal import clock
from portal.mail.models import OutboxMessage
from portal.mail.service import build, deliver_pending
from tests.mail.test_outbox import _planted, envelope_server  # noqa: F401  (fixture)

LITERALS = [
    "【電子契約利用申出書】株式会社X =?utf-8?b?4oCu?=cod.exe から申出書が届きました",  # U+202E when decoded
    "=?utf-8?q?=0ABcc:_x@evil.example?= plain ASCII",
    "=?ISO-2022-JP?B?GyRCJCIbKEI=?= 〜 =?x?q?y?= =? ?= " + "長い件名" * 30,
]


@pytest.fixture
def app_config(mail_app_config):
    return mail_app_config


@pytest.mark.parametrize("subject", LITERALS)
def test_a_literal_encoded_word_in_the_subject_is_not_decoded_by_the_reader(app, session, envelope_server,  # noqa: F811
                                                                           subject):
    app.config.update(envelope_server.settings)
    message_id = _planted(session, recipient="keiyaku@pref.example.jp", subject=subject)
    with app.app_context():
        headers = build(session.get(OutboxMessage, message_id), app.config, now=clock.now()).as_bytes()
        assert deliver_pending() == 1
    [message] = envelope_server.inbox.messages
    assert str(message["Subject"]) == subject
    assert message["Bcc"] is None
    header_block = headers.split(b"\r\n\r\n", 1)[0]
    header_block.decode("ascii")
    assert all(len(line) <= 78 for line in header_block.split(b"\r\n"))


def test_an_ordinary_subject_is_written_as_before(app, session, envelope_server):  # noqa: F811
    app.config.update(envelope_server.settings)
    _planted(session, recipient="keiyaku@pref.example.jp", subject="Re: keiyaku 2026")
    with app.app_context():
        assert deliver_pending() == 1
    [message] = envelope_server.inbox.messages
    assert str(message["Subject"]) == "Re: keiyaku 2026"
