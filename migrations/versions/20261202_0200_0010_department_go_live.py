"""departments: 電子契約の導入日 and the contact shown to vendors

Why: departments go live on different dates (本庁 from 令和7年8月1日, 県民局・出先事務所 from 11月1日);
before its date a department's contracts cannot be sent electronically. Vendors' mails and error pages
name the department's phone and mail address.

Revision ID: 0010_department_go_live
Revises: 0009_api_webhooks
Create Date: 2026-12-02 02:00:00
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0010_department_go_live'
down_revision = '0009_api_webhooks'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('departments') as batch:
        batch.add_column(sa.Column('go_live_date', sa.Date(), nullable=True))
        batch.add_column(sa.Column('contact_phone', sa.String(length=30), nullable=False, server_default=''))
        batch.add_column(sa.Column('contact_email', sa.String(length=254), nullable=False, server_default=''))


def downgrade() -> None:
    with op.batch_alter_table('departments') as batch:
        batch.drop_column('contact_email')
        batch.drop_column('contact_phone')
        batch.drop_column('go_live_date')
