"""search_indexes: ordered paging, department scoping, counterparty substring

Why: at a prefecture's scale (1,000,000 contracts over 10 years) the 電帳法 search scanned: a
counterparty substring read every row, department scoping sorted the whole department, deep pages
read every row before them. Composite indexes let the pages walk (department, 取引年月日, id) in
order, and a trigram index (pg_trgm GIN / SQLite FTS5 trigram) serves the substring search.

Revision ID: 0011_search_indexes
Revises: 0010_department_go_live
Create Date: 2026-12-02 01:50:00
"""
from __future__ import annotations

from alembic import op

revision = '0011_search_indexes'
down_revision = '0010_department_go_live'
branch_labels = None
depends_on = None


def upgrade() -> None:
    from portal.search import fulltext

    with op.batch_alter_table('contracts', schema=None) as batch_op:
        batch_op.create_index('ix_contracts_date_id', ['transaction_date', 'id'], unique=False)
        batch_op.create_index('ix_contracts_department_date_id', ['department_id', 'transaction_date', 'id'],
                              unique=False)
    fulltext.ensure(op.get_bind())


def downgrade() -> None:
    from portal.search import fulltext

    fulltext.drop(op.get_bind())
    with op.batch_alter_table('contracts', schema=None) as batch_op:
        batch_op.drop_index('ix_contracts_department_date_id')
        batch_op.drop_index('ix_contracts_date_id')
