"""contract_certificate_revisions: every stored version of a contract's 合意締結証明書

Why: the certificate is a B-LTA PDF like the contract's documents, and like them it stops being
verifiable when its newest timestamp's TSA certificate expires; the archive-timestamp renewal now
renews it too, as a new stored file. The versions are kept (nothing silently changed, the storage gc
and the backup checks find them); contracts.certificate_key / certificate_sha256 still name the newest.
Certificates stored before this revision become version 1 (their size is not known here).

Revision ID: 0031_certificate_revisions
Revises: 0030_outbox_link_token
Create Date: 2026-12-04 19:10:00
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import portal.types

revision = '0031_certificate_revisions'
down_revision = '0030_outbox_link_token'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('contract_certificate_revisions',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('contract_id', sa.Integer(), nullable=False),
    sa.Column('number', sa.Integer(), nullable=False),
    sa.Column('kind', sa.String(length=32), nullable=False),
    sa.Column('storage_key', sa.String(length=64), nullable=False),
    sa.Column('sha256', sa.String(length=64), nullable=False),
    sa.Column('size', sa.Integer(), nullable=True),
    sa.Column('timestamp_at', portal.types.UTCDateTime(timezone=True), nullable=True),
    sa.Column('created_at', portal.types.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['contract_id'], ['contracts.id'],
                            name=op.f('fk_contract_certificate_revisions_contract_id_contracts')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_contract_certificate_revisions')),
    sa.UniqueConstraint('contract_id', 'number', name=op.f('uq_contract_certificate_revisions_contract_id'))
    )
    op.create_index(op.f('ix_contract_certificate_revisions_contract_id'), 'contract_certificate_revisions',
                    ['contract_id'], unique=False)
    op.execute(
        "INSERT INTO contract_certificate_revisions (contract_id, number, kind, storage_key, sha256, size,"
        " timestamp_at, created_at)"
        " SELECT id, 1, 'final', certificate_key, certificate_sha256, NULL, NULL, COALESCE(completed_at, updated_at)"
        " FROM contracts WHERE certificate_key IS NOT NULL AND certificate_sha256 IS NOT NULL"
    )


def downgrade() -> None:
    op.drop_index(op.f('ix_contract_certificate_revisions_contract_id'), table_name='contract_certificate_revisions')
    op.drop_table('contract_certificate_revisions')
