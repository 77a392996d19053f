"""contracts: 契約の種類, the counterparty's prior 承諾, 変更契約 link

Why: construction contracts need a recorded prior consent before sending (R9), the "term +
retention" rule and per-type retention need a type (R12, R26), and an amendment links to the
completed contract it changes (R16). Existing contracts get an empty type: their retention stays
the department's or the default policy's until staff correct the type.

Revision ID: 0020_contract_types
Revises: 0019_contract_sent_by
Create Date: 2026-12-02 14:00:00
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0020_contract_types'
down_revision = '0019_contract_sent_by'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('contracts') as batch:
        batch.add_column(sa.Column('contract_type', sa.String(50), nullable=False, server_default=''))
        batch.add_column(sa.Column('consent_by', sa.String(200), nullable=False, server_default=''))
        batch.add_column(sa.Column('consent_on', sa.Date(), nullable=True))
        batch.add_column(sa.Column('consent_method', sa.String(100), nullable=False, server_default=''))
        batch.add_column(sa.Column('amends_id', sa.Integer(), nullable=True))
        batch.add_column(sa.Column('amendment_reason', sa.Text(), nullable=False, server_default=''))
        batch.create_index('ix_contracts_contract_type', ['contract_type'])
        batch.create_index('ix_contracts_amends_id', ['amends_id'])
        batch.create_foreign_key('fk_contracts_amends_id_contracts', 'contracts', ['amends_id'], ['id'])


def downgrade() -> None:
    with op.batch_alter_table('contracts') as batch:
        batch.drop_constraint('fk_contracts_amends_id_contracts', type_='foreignkey')
        batch.drop_index('ix_contracts_amends_id')
        batch.drop_index('ix_contracts_contract_type')
        for column in ('amendment_reason', 'amends_id', 'consent_method', 'consent_on', 'consent_by',
                       'contract_type'):
            batch.drop_column(column)
