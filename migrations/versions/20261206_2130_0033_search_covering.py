"""search_covering: indexes that hold a page's order for amount ranges and counterparty names

Why: at 1,000,000 contracts on PostgreSQL an auditor's amount range walked the date order and read
some 25,000 rows to find a page of 50 (one in 500 contracts in range), or took the ~2,000 in range
from the amount index and read each row to sort them. (amount, transaction_date, id) holds the
date order of the amounts in range: the page's ids are sorted inside the index and only the 50
rows shown are read. The counterparty names' index gains the id for the same reason (a combined
search read every match to sort them). Nothing is removed but the index replaced by a wider one.

Revision ID: 0033_search_covering
Revises: 0032_search_names
Create Date: 2026-12-06 21:30:00
"""
from __future__ import annotations

from alembic import op

revision = '0033_search_covering'
down_revision = '0032_search_names'
branch_labels = None
depends_on = None

NAME_COLUMNS = ['counterparty_name_normalized', 'department_id', 'transaction_date', 'amount']


def upgrade() -> None:
    op.create_index('ix_contracts_amount_date_id', 'contracts', ['amount', 'transaction_date', 'id'], unique=False)
    op.create_index('ix_contracts_counterparty_date_amount_id', 'contracts', [*NAME_COLUMNS, 'id'], unique=False)
    op.drop_index('ix_contracts_counterparty_date_amount', table_name='contracts')


def downgrade() -> None:
    op.create_index('ix_contracts_counterparty_date_amount', 'contracts', NAME_COLUMNS, unique=False)
    op.drop_index('ix_contracts_counterparty_date_amount_id', table_name='contracts')
    op.drop_index('ix_contracts_amount_date_id', table_name='contracts')
