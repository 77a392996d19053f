"""staff_users: a session version ending every session of the user, and the TOTP secret being enrolled

Why: a cookie copied before logout kept working for 8 hours, and the secret of a TOTP enrolment in
progress travelled in the (signed, readable) session cookie. Logout, a password change, an MFA reset and
deactivation now raise session_version, which every request compares with the one stored at login; the
secret shown during enrolment is kept sealed on the user's row until the first code confirms it.

Revision ID: 0015_staff_sessions
Revises: 0013_page_images
Create Date: 2026-12-02 07:00:00
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0015_staff_sessions'
down_revision = '0013_page_images'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('staff_users') as batch:
        batch.add_column(sa.Column('session_version', sa.Integer(), nullable=False, server_default='0'))
        batch.add_column(sa.Column('totp_pending_sealed', sa.String(length=200), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('staff_users') as batch:
        batch.drop_column('totp_pending_sealed')
        batch.drop_column('session_version')
