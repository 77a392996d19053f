from __future__ import annotations

from typing import Any

from sqlalchemy import JSON, ForeignKey, LargeBinary, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from portal.db import Base
from portal.types import intpk, utc_datetime


class AuditEvent(Base):
    """One row per operation. Never updated or deleted (電帳法: corrections must leave a record).

    The chain columns are filled once, when the transaction that wrote the row commits
    (portal.audit.chain): position, the previous event's hash and this event's hash.
    """

    __tablename__ = "audit_events"

    id: Mapped[intpk]
    occurred_at: Mapped[utc_datetime] = mapped_column(index=True)
    action: Mapped[str] = mapped_column(String(64), index=True)
    actor_type: Mapped[str] = mapped_column(String(16))  # staff | signer | system | anonymous
    actor_user_id: Mapped[int | None] = mapped_column(ForeignKey("staff_users.id"), index=True)
    actor_label: Mapped[str] = mapped_column(String(254), default="")
    subject_type: Mapped[str] = mapped_column(String(64), default="")
    subject_id: Mapped[str] = mapped_column(String(64), default="", index=True)
    ip: Mapped[str] = mapped_column(String(64), default="")
    user_agent: Mapped[str] = mapped_column(Text, default="")
    details: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    chain_seq: Mapped[int | None] = mapped_column(unique=True)
    prev_hash: Mapped[str | None] = mapped_column(String(64))
    event_hash: Mapped[str | None] = mapped_column(String(64))


class AuditChainHead(Base):
    """The one row (id 1) holding the last position and hash of the chain.

    Appending locks it (SELECT ... FOR UPDATE), so that every process appends in one order.
    """

    __tablename__ = "audit_chain_head"

    id: Mapped[intpk]
    seq: Mapped[int]
    event_hash: Mapped[str] = mapped_column(String(64))


class AuditCheckpoint(Base):
    """The chain head at a moment, timestamped by the TSA (RFC 3161), and what verifying it found then.

    The token's message imprint is the head hash itself; the chain up to head_seq cannot change later
    without the walk reaching another hash there.
    """

    __tablename__ = "audit_checkpoints"

    id: Mapped[intpk]
    created_at: Mapped[utc_datetime]
    head_seq: Mapped[int]
    head_hash: Mapped[str] = mapped_column(String(64))
    timestamp_token: Mapped[bytes] = mapped_column(LargeBinary)
    timestamped_at: Mapped[utc_datetime]
    tsa: Mapped[str] = mapped_column(String(254), default="")
    is_verified: Mapped[bool]
    verified_events: Mapped[int] = mapped_column(default=0)
    verification_message: Mapped[str] = mapped_column(Text, default="")
