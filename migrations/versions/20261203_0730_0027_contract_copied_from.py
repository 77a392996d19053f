"""contracts.copied_from_id: the contract a draft was duplicated from (「この契約を複製して作成」)

Why: after a 差し戻し, or for next year's contract, staff start a new draft from an old one; the new
contract's page links to the original. Existing contracts were not copies.

Revision ID: 0027_contract_copied_from
Revises: 0025_itaiji_names
Create Date: 2026-12-03 07:30:00
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0027_contract_copied_from'
down_revision = '0025_itaiji_names'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('contracts') as batch:
        batch.add_column(sa.Column('copied_from_id', sa.Integer(), nullable=True))
        batch.create_index('ix_contracts_copied_from_id', ['copied_from_id'])
        batch.create_foreign_key('fk_contracts_copied_from_id_contracts', 'contracts', ['copied_from_id'], ['id'])


def downgrade() -> None:
    with op.batch_alter_table('contracts') as batch:
        batch.drop_constraint('fk_contracts_copied_from_id_contracts', type_='foreignkey')
        batch.drop_index('ix_contracts_copied_from_id')
        batch.drop_column('copied_from_id')
