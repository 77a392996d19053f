"""audit_events: hash chain (chain_seq, prev_hash, event_hash); audit_chain_head; audit_checkpoints;
on PostgreSQL a trigger refusing UPDATE and DELETE of the operation log

Why: nothing detected an edited, deleted or inserted audit row. Every event now holds SHA-256 of
its canonical content including the previous event's hash; checkpoints keep the chain head with an
RFC 3161 timestamp. Existing rows are chained here in id order, with the canonical form as
portal.audit.chain defined it when this was written (a migration does not follow later code).
The trigger lets the portal fill a row's chain columns once, and delete rows only on the
retention path (portal.audit_retention on, with a tombstone event in the same transaction).

Downgrade drops the trigger, the checkpoints and the chain columns: the log itself is kept.

Revision ID: 0018_audit_chain
Revises: 0017_outbox_masked_links
Create Date: 2026-12-02 14:00:00
"""
from __future__ import annotations

import hashlib
import json
from datetime import UTC

import sqlalchemy as sa
from alembic import op

import portal.types

revision = '0018_audit_chain'
down_revision = '0017_outbox_masked_links'
branch_labels = None
depends_on = None

GENESIS = "0" * 64
HASHED_FIELDS = ("id", "occurred_at", "action", "actor_type", "actor_user_id", "actor_label", "subject_type",
                 "subject_id", "ip", "user_agent", "details", "prev_hash")
EVENTS = sa.table(
    "audit_events", sa.column("id", sa.Integer), sa.column("occurred_at", portal.types.UTCDateTime()),
    sa.column("action", sa.String), sa.column("actor_type", sa.String), sa.column("actor_user_id", sa.Integer),
    sa.column("actor_label", sa.String), sa.column("subject_type", sa.String), sa.column("subject_id", sa.String),
    sa.column("ip", sa.String), sa.column("user_agent", sa.Text), sa.column("details", sa.JSON),
    sa.column("chain_seq", sa.Integer), sa.column("prev_hash", sa.String), sa.column("event_hash", sa.String),
)
HEAD = sa.table("audit_chain_head", sa.column("id", sa.Integer), sa.column("seq", sa.Integer),
                sa.column("event_hash", sa.String))

REFUSE_EVENT_CHANGES = """
CREATE FUNCTION audit_events_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'DELETE' AND current_setting('portal.audit_retention', true) = 'on' THEN
        RETURN OLD;
    END IF;
    IF TG_OP = 'UPDATE' AND OLD.event_hash IS NULL
       AND to_jsonb(NEW) - 'chain_seq' - 'prev_hash' - 'event_hash'
           = to_jsonb(OLD) - 'chain_seq' - 'prev_hash' - 'event_hash' THEN
        RETURN NEW;
    END IF;
    RAISE EXCEPTION 'the operation log is append-only: % of audit_events % refused', TG_OP, OLD.id
        USING ERRCODE = 'insufficient_privilege';
END $$;
CREATE TRIGGER audit_events_append_only BEFORE UPDATE OR DELETE ON audit_events
    FOR EACH ROW EXECUTE FUNCTION audit_events_append_only();
CREATE FUNCTION audit_checkpoints_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'checkpoints are append-only: % of audit_checkpoints % refused', TG_OP, OLD.id
        USING ERRCODE = 'insufficient_privilege';
END $$;
CREATE TRIGGER audit_checkpoints_append_only BEFORE UPDATE OR DELETE ON audit_checkpoints
    FOR EACH ROW EXECUTE FUNCTION audit_checkpoints_append_only();
"""


def event_hash(row: dict) -> str:
    content = {name: row[name] for name in HASHED_FIELDS}
    content["occurred_at"] = row["occurred_at"].astimezone(UTC).isoformat(timespec="microseconds")
    encoded = json.dumps(content, sort_keys=True, ensure_ascii=False, separators=(",", ":"), allow_nan=False)
    return hashlib.sha256(encoded.encode()).hexdigest()


def upgrade() -> None:
    with op.batch_alter_table('audit_events', schema=None) as batch_op:
        batch_op.add_column(sa.Column('chain_seq', sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column('prev_hash', sa.String(length=64), nullable=True))
        batch_op.add_column(sa.Column('event_hash', sa.String(length=64), nullable=True))
        batch_op.create_unique_constraint(batch_op.f('uq_audit_events_chain_seq'), ['chain_seq'])
    op.create_table('audit_chain_head',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('seq', sa.Integer(), nullable=False),
    sa.Column('event_hash', sa.String(length=64), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_audit_chain_head'))
    )
    op.create_table('audit_checkpoints',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('created_at', portal.types.UTCDateTime(timezone=True), nullable=False),
    sa.Column('head_seq', sa.Integer(), nullable=False),
    sa.Column('head_hash', sa.String(length=64), nullable=False),
    sa.Column('timestamp_token', sa.LargeBinary(), nullable=False),
    sa.Column('timestamped_at', portal.types.UTCDateTime(timezone=True), nullable=False),
    sa.Column('tsa', sa.String(length=254), nullable=False),
    sa.Column('is_verified', sa.Boolean(), nullable=False),
    sa.Column('verified_events', sa.Integer(), nullable=False),
    sa.Column('verification_message', sa.Text(), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_audit_checkpoints'))
    )
    _chain_existing_rows(op.get_bind())
    if op.get_bind().dialect.name == "postgresql":
        op.execute(REFUSE_EVENT_CHANGES)


def _chain_existing_rows(connection: sa.Connection) -> None:
    seq, previous = 0, GENESIS
    last_id = 0
    columns = [EVENTS.c[name] for name in HASHED_FIELDS if name != "prev_hash"]
    while True:
        rows = connection.execute(sa.select(*columns).where(EVENTS.c.id > last_id).order_by(EVENTS.c.id)
                                  .limit(1000)).mappings().all()
        if not rows:
            break
        updates = []
        for row in rows:
            seq += 1
            digest = event_hash({**row, "prev_hash": previous})
            updates.append({"row_id": row["id"], "seq": seq, "prev": previous, "digest": digest})
            previous, last_id = digest, row["id"]
        connection.execute(EVENTS.update().where(EVENTS.c.id == sa.bindparam("row_id")).values(
            chain_seq=sa.bindparam("seq"), prev_hash=sa.bindparam("prev"), event_hash=sa.bindparam("digest")),
            updates)
    connection.execute(HEAD.insert().values(id=1, seq=seq, event_hash=previous))


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP TRIGGER IF EXISTS audit_checkpoints_append_only ON audit_checkpoints")
        op.execute("DROP FUNCTION IF EXISTS audit_checkpoints_append_only()")
        op.execute("DROP TRIGGER IF EXISTS audit_events_append_only ON audit_events")
        op.execute("DROP FUNCTION IF EXISTS audit_events_append_only()")
    op.drop_table('audit_checkpoints')
    op.drop_table('audit_chain_head')
    with op.batch_alter_table('audit_events', schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f('uq_audit_events_chain_seq'), type_='unique')
        batch_op.drop_column('event_hash')
        batch_op.drop_column('prev_hash')
        batch_op.drop_column('chain_seq')
