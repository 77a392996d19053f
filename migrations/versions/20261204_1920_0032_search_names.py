"""search_names: distinct counterparty names for substring search; a department's amount index

Why: at 1,000,000 contracts a counterparty substring of two characters (「岡山」, 「高橋」) cannot use
the trigram indexes and read every contract, and the trigram lookups of common substrings were
slow on SQLite. The contracts carry far fewer distinct normalised names than rows: the needle is
matched against those names (a small table kept by triggers, see portal/search/fulltext.py) and
the contracts are then taken by name through an index that also holds the date, amount and
department, so that a combined search counts its matches without reading the rows. A staff member's amount range walked the
whole department in date order; (department_id, amount, id) reads only the amounts in range. The
締結日時 order sorted every contract for its first page; (completed_at, id) walks it.
Nothing is removed; the table is filled from the contracts.

Revision ID: 0032_search_names
Revises: 0031_certificate_revisions
Create Date: 2026-12-04 19:20:00
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0032_search_names'
down_revision = '0031_certificate_revisions'
branch_labels = None
depends_on = None


def upgrade() -> None:
    from portal.search import fulltext

    op.create_table(
        'search_counterparty_names',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('name_normalized', sa.String(length=200), nullable=False),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_search_counterparty_names')),
        sa.UniqueConstraint('name_normalized', name=op.f('uq_search_counterparty_names_name_normalized')),
    )
    with op.batch_alter_table('contracts') as batch:
        batch.create_index('ix_contracts_department_amount_id', ['department_id', 'amount', 'id'], unique=False)
        batch.create_index('ix_contracts_completed_id', ['completed_at', 'id'], unique=False)
        batch.create_index('ix_contracts_counterparty_date_amount',
                           ['counterparty_name_normalized', 'department_id', 'transaction_date', 'amount'],
                           unique=False)
    fulltext.ensure_name_triggers(op.get_bind())  # creates the triggers and fills the table


def downgrade() -> None:
    from portal.search import fulltext

    fulltext.drop_name_triggers(op.get_bind())
    with op.batch_alter_table('contracts') as batch:
        batch.drop_index('ix_contracts_counterparty_date_amount')
        batch.drop_index('ix_contracts_completed_id')
        batch.drop_index('ix_contracts_department_amount_id')
    op.drop_table('search_counterparty_names')
