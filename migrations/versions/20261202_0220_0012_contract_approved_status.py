"""contracts: the status 承認済み（送信待ち） ("approved")

Why: after 決裁 a contract used to show 「下書き」 again, with only approved_at telling it apart.
The status column is a plain string (portal.db.str_enum_type), so no type changes; contracts
that are drafts with a confirmed approval become "approved". Downgrade turns them back into drafts
(approved_at keeps the approval).

Revision ID: 0012_contract_approved_status
Revises: 0011_search_indexes
Create Date: 2026-12-02 02:00:00
"""
from __future__ import annotations

from alembic import op

revision = '0012_contract_approved_status'
down_revision = '0011_search_indexes'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute("UPDATE contracts SET status = 'approved' WHERE status = 'draft' AND approved_at IS NOT NULL")


def downgrade() -> None:
    op.execute("UPDATE contracts SET status = 'draft' WHERE status = 'approved'")
