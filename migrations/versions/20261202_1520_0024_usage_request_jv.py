"""usage_requests: 共同企業体 (JV) name and members

Why: vendors that sign as a 共同企業体 name the JV, its members and, as the company, the
representative member whose signing authority signs (R10). Existing requests are not JVs.

Revision ID: 0024_usage_request_jv
Revises: 0023_document_titles
Create Date: 2026-12-02 15:00:00
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0024_usage_request_jv'
down_revision = '0023_document_titles'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('usage_requests') as batch:
        batch.add_column(sa.Column('jv_name', sa.String(200), nullable=False, server_default=''))
        batch.add_column(sa.Column('jv_members', sa.Text(), nullable=False, server_default=''))


def downgrade() -> None:
    with op.batch_alter_table('usage_requests') as batch:
        batch.drop_column('jv_members')
        batch.drop_column('jv_name')
