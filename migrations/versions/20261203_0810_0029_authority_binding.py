"""Contracts bound to the registered 契約締結権限者; 電子契約を希望しない with who/when/why; corrections

Why: a contract's counterparty signer is the authority an accepted 利用申出書 registered (R10); a
different signer, or a 取引先 without an accepted 申出書, needs a reason kept on the contract itself,
not only in the log (R11's override). A vendor's wish not to e-contract is recorded by staff with
its reason and can be withdrawn (R12). A returned 申出書 gets a one-time correction link (hashed),
and the corrected request points at the returned one. Existing rows keep empty reasons and no links.

Revision ID: 0029_authority_binding
Revises: 0028_revision_timestamps
Create Date: 2026-12-03 07:00:00
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import portal.types

revision = '0029_authority_binding'
down_revision = '0028_revision_timestamps'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('counterparties') as batch:
        batch.add_column(sa.Column('declined_at', portal.types.UTCDateTime(timezone=True), nullable=True))
        batch.add_column(sa.Column('declined_by_id', sa.Integer(), nullable=True))
        batch.add_column(sa.Column('declined_reason', sa.Text(), nullable=False, server_default=''))
        batch.create_foreign_key(op.f('fk_counterparties_declined_by_id_staff_users'), 'staff_users',
                                 ['declined_by_id'], ['id'])
    with op.batch_alter_table('contracts') as batch:
        batch.add_column(sa.Column('counterparty_override_reason', sa.Text(), nullable=False, server_default=''))
    with op.batch_alter_table('contract_parties') as batch:
        batch.add_column(sa.Column('signing_authority_id', sa.Integer(), nullable=True))
        batch.add_column(sa.Column('signer_override_reason', sa.Text(), nullable=False, server_default=''))
        batch.create_foreign_key(op.f('fk_contract_parties_signing_authority_id_signing_authorities'),
                                 'signing_authorities', ['signing_authority_id'], ['id'])
    with op.batch_alter_table('usage_requests') as batch:
        batch.add_column(sa.Column('corrects_id', sa.Integer(), nullable=True))
        batch.add_column(sa.Column('correction_token_hash', sa.String(64), nullable=True))
        batch.add_column(sa.Column('correction_expires_at', portal.types.UTCDateTime(timezone=True), nullable=True))
        batch.add_column(sa.Column('correction_used_at', portal.types.UTCDateTime(timezone=True), nullable=True))
        batch.create_foreign_key(op.f('fk_usage_requests_corrects_id_usage_requests'), 'usage_requests',
                                 ['corrects_id'], ['id'])
        batch.create_index(batch.f('ix_usage_requests_corrects_id'), ['corrects_id'], unique=False)
        batch.create_unique_constraint(op.f('uq_usage_requests_correction_token_hash'), ['correction_token_hash'])


def downgrade() -> None:
    with op.batch_alter_table('usage_requests') as batch:
        batch.drop_constraint(op.f('uq_usage_requests_correction_token_hash'), type_='unique')
        batch.drop_index(batch.f('ix_usage_requests_corrects_id'))
        batch.drop_constraint(op.f('fk_usage_requests_corrects_id_usage_requests'), type_='foreignkey')
        for column in ('correction_used_at', 'correction_expires_at', 'correction_token_hash', 'corrects_id'):
            batch.drop_column(column)
    with op.batch_alter_table('contract_parties') as batch:
        batch.drop_constraint(op.f('fk_contract_parties_signing_authority_id_signing_authorities'),
                              type_='foreignkey')
        batch.drop_column('signer_override_reason')
        batch.drop_column('signing_authority_id')
    with op.batch_alter_table('contracts') as batch:
        batch.drop_column('counterparty_override_reason')
    with op.batch_alter_table('counterparties') as batch:
        batch.drop_constraint(op.f('fk_counterparties_declined_by_id_staff_users'), type_='foreignkey')
        for column in ('declined_reason', 'declined_by_id', 'declined_at'):
            batch.drop_column(column)
