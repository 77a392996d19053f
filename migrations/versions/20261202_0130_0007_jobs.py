"""jobs: lease rows for periodic jobs, a queue for one-off background work

Why: with several processes each one ran the periodic jobs itself (double reminders), and work
handed to a thread (一括検証) was lost or stuck 「実行中」 when its process stopped. A lease row per
periodic job makes it run once per period across processes; queued jobs are claimed by one worker,
keep a heartbeat and are taken over when their worker dies.

Revision ID: 0007_jobs
Revises: 0006_staff_networks
Create Date: 2026-12-02 01:06:51.944916
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import portal.types

revision = '0007_jobs'
down_revision = '0006_staff_networks'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('job_leases',
    sa.Column('name', sa.String(length=64), nullable=False),
    sa.Column('next_run_at', portal.types.UTCDateTime(timezone=True), nullable=False),
    sa.Column('holder', sa.String(length=128), nullable=False),
    sa.Column('held_until', portal.types.UTCDateTime(timezone=True), nullable=True),
    sa.Column('last_started_at', portal.types.UTCDateTime(timezone=True), nullable=True),
    sa.Column('last_finished_at', portal.types.UTCDateTime(timezone=True), nullable=True),
    sa.Column('last_error', sa.Text(), nullable=False),
    sa.Column('runs', sa.Integer(), nullable=False),
    sa.PrimaryKeyConstraint('name', name=op.f('pk_job_leases'))
    )
    op.create_table('queued_jobs',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('kind', sa.String(length=64), nullable=False),
    sa.Column('key', sa.String(length=128), nullable=False),
    sa.Column('payload', sa.JSON(), nullable=False),
    sa.Column('status', sa.Enum('pending', 'running', 'done', 'failed', name='queuedjobstatus', native_enum=False, length=32), nullable=False),
    sa.Column('attempts', sa.Integer(), nullable=False),
    sa.Column('run_after', portal.types.UTCDateTime(timezone=True), nullable=False),
    sa.Column('claimed_by', sa.String(length=128), nullable=False),
    sa.Column('heartbeat_at', portal.types.UTCDateTime(timezone=True), nullable=True),
    sa.Column('last_error', sa.Text(), nullable=False),
    sa.Column('created_at', portal.types.UTCDateTime(timezone=True), nullable=False),
    sa.Column('finished_at', portal.types.UTCDateTime(timezone=True), nullable=True),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_queued_jobs')),
    sa.UniqueConstraint('kind', 'key', name=op.f('uq_queued_jobs_kind'))
    )
    with op.batch_alter_table('queued_jobs', schema=None) as batch_op:
        batch_op.create_index('ix_queued_jobs_due', ['status', 'run_after'], unique=False)



def downgrade() -> None:
    with op.batch_alter_table('queued_jobs', schema=None) as batch_op:
        batch_op.drop_index('ix_queued_jobs_due')

    op.drop_table('queued_jobs')
    op.drop_table('job_leases')
