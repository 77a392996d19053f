"""certificate_revocations: the built-in PKI's revocations, with their real revocation time

Why: revoked serials were read from a text file and every re-issued CRL stamped them with its own
issue time, so the revocation date moved forward each time and a signature made after the
revocation could look valid. Each revocation is now a row holding when the certificate stopped
being trustworthy; every CRL is issued from these rows. Rows are never changed or deleted.

Revision ID: 0022_certificate_revocations
Revises: 0021_backup_runs
Create Date: 2026-12-02 14:50:00
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import portal.types

revision = '0022_certificate_revocations'
down_revision = '0021_backup_runs'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('certificate_revocations',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('serial_number', sa.String(length=64), nullable=False),
    sa.Column('subject', sa.Text(), nullable=False),
    sa.Column('reason', sa.String(length=32), nullable=False),
    sa.Column('revoked_at', portal.types.UTCDateTime(timezone=True), nullable=False),
    sa.Column('recorded_at', portal.types.UTCDateTime(timezone=True), nullable=False),
    sa.Column('recorded_by', sa.String(length=200), nullable=False),
    sa.Column('note', sa.Text(), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_certificate_revocations')),
    sa.UniqueConstraint('serial_number', name=op.f('uq_certificate_revocations_serial_number'))
    )


def downgrade() -> None:
    op.drop_table('certificate_revocations')
