"""contract_documents.title: the name signers see on a document's tab and in its download name

Why: vendors saw `01_keiyakusho.pdf` on the signing page; staff give each document a title at upload.
Existing documents keep "" and are shown by their file name without the extension.

Revision ID: 0023_document_titles
Revises: 0022_certificate_revocations
Create Date: 2026-12-02 15:00:00
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0023_document_titles'
down_revision = '0022_certificate_revocations'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('contract_documents') as batch_op:
        batch_op.add_column(sa.Column('title', sa.String(length=100), server_default='', nullable=False))


def downgrade() -> None:
    with op.batch_alter_table('contract_documents') as batch_op:
        batch_op.drop_column('title')
