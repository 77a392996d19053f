"""Migration 0017 masks the link tokens already stored in sent, given-up and held mails."""

from __future__ import annotations

from alembic import command
from sqlalchemy import text

from portal.db import make_engine
from portal.migrate import alembic_config
from portal.tokens import new_token

INSERT = text("INSERT INTO outbox_messages (template, recipient, recipient_name, subject, body, status, attempts,"
              " last_error, created_at, next_attempt_at) VALUES (:template, 'a@example.jp', '', '件名', :body,"
              " :status, 0, '', '2026-12-01 00:00:00', '2026-12-01 00:00:00')")


def test_stored_tokens_are_masked_except_in_mails_still_to_be_sent(tmp_path):
    engine = make_engine(f"sqlite:///{tmp_path / 'old.sqlite3'}")
    tokens = {status: new_token()[0] for status in ("sent", "failed", "held", "pending")}
    with engine.begin() as connection:
        command.upgrade(alembic_config(connection), "0013_page_images")
        for status, token in tokens.items():
            connection.execute(INSERT, {"template": status, "status": status,
                                        "body": f"署名はこちら:\n  https://portal.example.jp/s/{token}\n"})
    with engine.begin() as connection:
        command.upgrade(alembic_config(connection), "0017_outbox_masked_links")
        bodies = dict(connection.execute(text("SELECT status, body FROM outbox_messages")).all())
    engine.dispose()
    for status in ("sent", "failed", "held"):
        assert tokens[status] not in bodies[status]
        assert f"https://portal.example.jp/s/{tokens[status][:4]}…(マスク済み)" in bodies[status]
    assert tokens["pending"] in bodies["pending"]  # delivered with its link, masked once sent
