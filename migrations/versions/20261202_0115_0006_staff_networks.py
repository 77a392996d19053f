"""staff networks: the connection sources allowed for the staff side

Why: a 情報セキュリティポリシー asks that staff pages, the staff login and the API be reachable only
from the agency's networks; administrators edit that list on 「接続元の制限」 beside the setting.

Revision ID: 0006_staff_networks
Revises: 0005_preservation
Create Date: 2026-12-02 01:15:00
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import portal.types

revision = '0006_staff_networks'
down_revision = '0005_preservation'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('staff_networks',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('cidr', sa.String(length=64), nullable=False),
    sa.Column('note', sa.String(length=200), nullable=False),
    sa.Column('created_by_id', sa.Integer(), nullable=True),
    sa.Column('created_at', portal.types.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['created_by_id'], ['staff_users.id'], name=op.f('fk_staff_networks_created_by_id_staff_users')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_staff_networks')),
    sa.UniqueConstraint('cidr', name=op.f('uq_staff_networks_cidr'))
    )


def downgrade() -> None:
    op.drop_table('staff_networks')
