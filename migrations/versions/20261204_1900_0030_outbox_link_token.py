"""outbox_messages.link_token_hash: which link a stored mail carries, so that one not yet sent is
withdrawn when its link stops working

Why: a signing mail held before SMTP was configured (or waiting out an SMTP outage) still went out
after staff had sent a newer link or the contract had closed, handing the vendor a dead link. Mails
stored before this revision carry "" (their bodies are sealed; the migration has no key to read them)
and are delivered as before.

Revision ID: 0030_outbox_link_token
Revises: 0029_authority_binding
Create Date: 2026-12-04 19:00:00
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0030_outbox_link_token'
down_revision = '0029_authority_binding'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('outbox_messages') as batch:
        batch.add_column(sa.Column('link_token_hash', sa.String(length=64), nullable=False, server_default=''))
        batch.create_index('ix_outbox_messages_link_token_hash', ['link_token_hash'])


def downgrade() -> None:
    with op.batch_alter_table('outbox_messages') as batch:
        batch.drop_index('ix_outbox_messages_link_token_hash')
        batch.drop_column('link_token_hash')
