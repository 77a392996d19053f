"""contracts.sent_by_id: the staff member who sent the contract for signature

Why: the 合意締結証明書 names who sent the contract (staff member and department) beside when.
Until now only the audit log knew; existing contracts take it from their latest 'staff:contract:sent'
event (the audit log itself is left as it is).

Revision ID: 0019_contract_sent_by
Revises: 0018_audit_chain
Create Date: 2026-12-02 14:00:00
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0019_contract_sent_by'
down_revision = '0018_audit_chain'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('contracts') as batch:
        batch.add_column(sa.Column('sent_by_id', sa.Integer(), nullable=True))
        batch.create_foreign_key(op.f('fk_contracts_sent_by_id_staff_users'), 'staff_users', ['sent_by_id'], ['id'])
    connection = op.get_bind()
    rows = connection.execute(sa.text(
        "SELECT subject_id, actor_user_id FROM audit_events WHERE action = 'staff:contract:sent' "
        "AND subject_type = 'contracts' AND actor_user_id IS NOT NULL ORDER BY id"))
    latest = {subject_id: user_id for subject_id, user_id in rows.fetchall()}
    for subject_id, user_id in latest.items():
        if subject_id.isdigit():
            connection.execute(sa.text("UPDATE contracts SET sent_by_id = :user WHERE id = :id AND sent_at IS NOT NULL"),
                               {"user": user_id, "id": int(subject_id)})


def downgrade() -> None:
    with op.batch_alter_table('contracts') as batch:
        batch.drop_constraint(op.f('fk_contracts_sent_by_id_staff_users'), type_='foreignkey')
        batch.drop_column('sent_by_id')
