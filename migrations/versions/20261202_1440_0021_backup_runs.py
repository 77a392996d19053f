"""backup_runs: one row per backup made or attempted

Why: the admin page shows the last backup, its size, its verification and warns when it is older
than a day or failed, on every server of the installation, while the backups themselves may sit on
the worker's disk; the portal's database is where every server can read that from.

Revision ID: 0021_backup_runs
Revises: 0020_contract_types
Create Date: 2026-12-02 14:40:00
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from portal.types import UTCDateTime

revision = '0021_backup_runs'
down_revision = '0020_contract_types'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        'backup_runs',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('name', sa.String(length=64), nullable=False),
        sa.Column('directory', sa.Text(), nullable=False),
        sa.Column('trigger', sa.String(length=16), nullable=False),
        sa.Column('status', sa.Enum('succeeded', 'failed', name='backupstatus', native_enum=False, length=32,
                                    create_constraint=False), nullable=False),
        sa.Column('started_at', UTCDateTime(), nullable=False),
        sa.Column('finished_at', UTCDateTime(), nullable=False),
        sa.Column('size_bytes', sa.BigInteger(), nullable=False),
        sa.Column('counts', sa.JSON(), nullable=False),
        sa.Column('error', sa.Text(), nullable=False),
        sa.Column('verified_at', UTCDateTime(), nullable=True),
        sa.Column('verification_ok', sa.Boolean(), nullable=True),
        sa.Column('verification_problems', sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_backup_runs')),
    )
    op.create_index(op.f('ix_backup_runs_name'), 'backup_runs', ['name'], unique=False)


def downgrade() -> None:
    op.drop_index(op.f('ix_backup_runs_name'), table_name='backup_runs')
    op.drop_table('backup_runs')
