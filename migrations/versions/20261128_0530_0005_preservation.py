"""preservation: metadata corrections, retention policies, tombstones, batch verification

Why: 電子帳簿保存法 (R20, R25, R26) — a correction to a completed contract must keep the previous
value with who/when/why, deletion is allowed only after the retention period and must leave a
record, and the batch verification (一括検証) keeps its progress and per-document results.

Revision ID: 0005_preservation
Revises: 0004_contracts
Create Date: 2026-11-28 04:31:56.621675
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import portal.types

revision = '0005_preservation'
down_revision = '0004_contracts'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('retention_policies',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('department_id', sa.Integer(), nullable=True),
    sa.Column('contract_type', sa.String(length=50), nullable=False),
    sa.Column('years', sa.Integer(), nullable=False),
    sa.Column('note', sa.Text(), nullable=False),
    sa.Column('updated_by_id', sa.Integer(), nullable=False),
    sa.Column('updated_at', portal.types.UTCDateTime(timezone=True), nullable=False),
    sa.CheckConstraint('years >= 7', name=op.f('ck_retention_policies_years_at_least_7')),
    sa.ForeignKeyConstraint(['department_id'], ['departments.id'], name=op.f('fk_retention_policies_department_id_departments')),
    sa.ForeignKeyConstraint(['updated_by_id'], ['staff_users.id'], name=op.f('fk_retention_policies_updated_by_id_staff_users')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_retention_policies')),
    sa.UniqueConstraint('department_id', 'contract_type', name=op.f('uq_retention_policies_department_id'))
    )
    with op.batch_alter_table('retention_policies', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_retention_policies_department_id'), ['department_id'], unique=False)

    op.create_table('tombstones',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('contract_id', sa.Integer(), nullable=False),
    sa.Column('contract_number', sa.String(length=40), nullable=False),
    sa.Column('business_name', sa.String(length=200), nullable=False),
    sa.Column('counterparty_name', sa.String(length=200), nullable=False),
    sa.Column('department_id', sa.Integer(), nullable=True),
    sa.Column('amount', sa.BigInteger(), nullable=False),
    sa.Column('tax_amount', sa.BigInteger(), nullable=False),
    sa.Column('transaction_date', sa.Date(), nullable=False),
    sa.Column('completed_at', portal.types.UTCDateTime(timezone=True), nullable=True),
    sa.Column('retention_ended_on', sa.Date(), nullable=False),
    sa.Column('documents', sa.JSON(), nullable=False),
    sa.Column('corrections', sa.JSON(), nullable=False),
    sa.Column('reason', sa.Text(), nullable=False),
    sa.Column('deleted_by_id', sa.Integer(), nullable=False),
    sa.Column('deleted_at', portal.types.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['deleted_by_id'], ['staff_users.id'], name=op.f('fk_tombstones_deleted_by_id_staff_users')),
    sa.ForeignKeyConstraint(['department_id'], ['departments.id'], name=op.f('fk_tombstones_department_id_departments')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_tombstones'))
    )
    with op.batch_alter_table('tombstones', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_tombstones_contract_id'), ['contract_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_tombstones_contract_number'), ['contract_number'], unique=False)

    op.create_table('verification_runs',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('period_from', sa.Date(), nullable=False),
    sa.Column('period_to', sa.Date(), nullable=False),
    sa.Column('status', sa.Enum('queued', 'running', 'finished', 'failed', name='runstatus', native_enum=False, length=32), nullable=False),
    sa.Column('total', sa.Integer(), nullable=False),
    sa.Column('processed', sa.Integer(), nullable=False),
    sa.Column('failed', sa.Integer(), nullable=False),
    sa.Column('error', sa.Text(), nullable=False),
    sa.Column('started_by_id', sa.Integer(), nullable=False),
    sa.Column('created_at', portal.types.UTCDateTime(timezone=True), nullable=False),
    sa.Column('finished_at', portal.types.UTCDateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['started_by_id'], ['staff_users.id'], name=op.f('fk_verification_runs_started_by_id_staff_users')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_verification_runs'))
    )
    op.create_table('metadata_corrections',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('contract_id', sa.Integer(), nullable=False),
    sa.Column('version', sa.Integer(), nullable=False),
    sa.Column('field', sa.String(length=40), nullable=False),
    sa.Column('old_value', sa.Text(), nullable=False),
    sa.Column('new_value', sa.Text(), nullable=False),
    sa.Column('old_normalized', sa.String(length=200), nullable=False),
    sa.Column('old_number', sa.BigInteger(), nullable=True),
    sa.Column('old_date', sa.Date(), nullable=True),
    sa.Column('reason', sa.Text(), nullable=False),
    sa.Column('corrected_by_id', sa.Integer(), nullable=False),
    sa.Column('corrected_at', portal.types.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['contract_id'], ['contracts.id'], name=op.f('fk_metadata_corrections_contract_id_contracts')),
    sa.ForeignKeyConstraint(['corrected_by_id'], ['staff_users.id'], name=op.f('fk_metadata_corrections_corrected_by_id_staff_users')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_metadata_corrections')),
    sa.UniqueConstraint('contract_id', 'version', 'field', name=op.f('uq_metadata_corrections_contract_id'))
    )
    with op.batch_alter_table('metadata_corrections', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_metadata_corrections_contract_id'), ['contract_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_metadata_corrections_old_normalized'), ['old_normalized'], unique=False)

    op.create_table('verification_results',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('run_id', sa.Integer(), nullable=False),
    sa.Column('contract_id', sa.Integer(), nullable=False),
    sa.Column('contract_number', sa.String(length=40), nullable=False),
    sa.Column('revision_id', sa.Integer(), nullable=False),
    sa.Column('filename', sa.String(length=255), nullable=False),
    sa.Column('sha256', sa.String(length=64), nullable=False),
    sa.Column('is_valid', sa.Boolean(), nullable=False),
    sa.Column('signature_count', sa.Integer(), nullable=False),
    sa.Column('level', sa.String(length=16), nullable=False),
    sa.Column('timestamp_at', portal.types.UTCDateTime(timezone=True), nullable=True),
    sa.Column('problems', sa.JSON(), nullable=False),
    sa.Column('checked_at', portal.types.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['run_id'], ['verification_runs.id'], name=op.f('fk_verification_results_run_id_verification_runs')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_verification_results'))
    )
    with op.batch_alter_table('verification_results', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_verification_results_contract_id'), ['contract_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_verification_results_revision_id'), ['revision_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_verification_results_run_id'), ['run_id'], unique=False)



def downgrade() -> None:
    # Corrections and tombstones are retained records (7-10 years): refuse to drop them.
    bind = op.get_bind()
    for table in ("metadata_corrections", "tombstones"):
        if bind.execute(sa.text(f"SELECT COUNT(*) FROM {table}")).scalar():  # noqa: S608 - fixed names
            raise RuntimeError(f"{table} holds retained records; export them before downgrading")
    with op.batch_alter_table('verification_results', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_verification_results_run_id'))
        batch_op.drop_index(batch_op.f('ix_verification_results_revision_id'))
        batch_op.drop_index(batch_op.f('ix_verification_results_contract_id'))

    op.drop_table('verification_results')
    with op.batch_alter_table('metadata_corrections', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_metadata_corrections_old_normalized'))
        batch_op.drop_index(batch_op.f('ix_metadata_corrections_contract_id'))

    op.drop_table('metadata_corrections')
    op.drop_table('verification_runs')
    with op.batch_alter_table('tombstones', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_tombstones_contract_number'))
        batch_op.drop_index(batch_op.f('ix_tombstones_contract_id'))

    op.drop_table('tombstones')
    with op.batch_alter_table('retention_policies', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_retention_policies_department_id'))

    op.drop_table('retention_policies')
