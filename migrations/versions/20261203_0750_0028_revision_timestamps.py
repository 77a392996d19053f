"""contract_document_revisions.timestamp_at: the time of the newest RFC 3161 token in a stored file

Why: the search export's 「タイムスタンプ時刻」 was empty unless a 一括検証 had run. Completion and
archive-timestamp renewal now read the token's genTime from the file they store.

Existing final revisions are filled by the `revision-timestamps` job (portal.preservation.timestamps),
not here: reading them needs the file store and its master key, which a migration run from a bare
connection does not have, and decrypting and parsing every archived PDF would hold the upgrade for
as long as that takes. Until the job has reached a revision, the export shows the time recorded by
the latest 一括検証 of it, as before.

Revision ID: 0028_revision_timestamps
Revises: 0027_contract_copied_from
Create Date: 2026-12-03 07:10:00
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import portal.types

revision = '0028_revision_timestamps'
down_revision = '0027_contract_copied_from'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('contract_document_revisions') as batch_op:
        batch_op.add_column(sa.Column('timestamp_at', portal.types.UTCDateTime(timezone=True), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('contract_document_revisions') as batch_op:
        batch_op.drop_column('timestamp_at')
