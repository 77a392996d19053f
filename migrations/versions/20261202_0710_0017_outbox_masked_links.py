"""outbox_messages: body_sealed and message_id; link tokens masked in stored bodies

Why: the 送信メール page showed each stored body with the vendor's signing link and the 14-day
download links, readable by any administrator for ever. The stored body now keeps every token
masked; the deliverable body is sealed under the master key until it is handed to SMTP
(body_sealed, erased then). message_id keeps one Message-ID over retries.

Rows already sent, given up or held (never to be delivered) are masked here. Rows still waiting
keep their body until the deliverer sends them and masks it; the page masks on display meanwhile.
Downgrade drops the columns; masked tokens cannot be restored (they were never needed again).

Revision ID: 0017_outbox_masked_links
Revises: 0015_staff_sessions
Create Date: 2026-12-02 07:00:00
"""
from __future__ import annotations

import re

import sqlalchemy as sa
from alembic import op

revision = '0017_outbox_masked_links'
down_revision = '0015_staff_sessions'
branch_labels = None
depends_on = None

# As portal.tokens.mask_tokens at the time of writing (a migration does not follow later code changes).
_TOKEN = re.compile(r"(?<=[/=])(?P<head>[A-Za-z0-9_-]{4})[A-Za-z0-9_-]{28,}(?![A-Za-z0-9_-])")


def mask_links(text: str) -> str:
    return _TOKEN.sub(lambda match: match["head"] + "…(マスク済み)", text)


def upgrade() -> None:
    with op.batch_alter_table('outbox_messages') as batch:
        batch.add_column(sa.Column('body_sealed', sa.Text(), nullable=True))
        batch.add_column(sa.Column('message_id', sa.String(length=255), server_default='', nullable=False))
    connection = op.get_bind()
    rows = connection.execute(sa.text(
        "SELECT id, body, subject FROM outbox_messages WHERE status IN ('sent', 'failed', 'held')"))
    for row_id, body, subject in rows.fetchall():
        masked_body, masked_subject = mask_links(body), mask_links(subject)
        if (masked_body, masked_subject) != (body, subject):
            connection.execute(sa.text("UPDATE outbox_messages SET body = :body, subject = :subject WHERE id = :id"),
                               {"body": masked_body, "subject": masked_subject, "id": row_id})


def downgrade() -> None:
    with op.batch_alter_table('outbox_messages') as batch:
        batch.drop_column('message_id')
        batch.drop_column('body_sealed')
