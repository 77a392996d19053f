"""contract_numbers: a counter row per department and 年度 for 契約番号

Why: numbers were max + 1 computed in Python, so two drafts created at once in one department
got the same number and one failed on the unique column. The counter row is incremented
atomically in the creating transaction.

Revision ID: 0008_contract_numbers
Revises: 0007_jobs
Create Date: 2026-12-02 01:20:27.414796
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0008_contract_numbers'
down_revision = '0007_jobs'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('contract_number_counters',
    sa.Column('department_id', sa.Integer(), nullable=False),
    sa.Column('fiscal_year', sa.Integer(), nullable=False),
    sa.Column('last_serial', sa.Integer(), nullable=False),
    sa.ForeignKeyConstraint(['department_id'], ['departments.id'], name=op.f('fk_contract_number_counters_department_id_departments')),
    sa.PrimaryKeyConstraint('department_id', 'fiscal_year', name=op.f('pk_contract_number_counters'))
    )


def downgrade() -> None:
    op.drop_table('contract_number_counters')
