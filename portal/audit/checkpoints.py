"""Checkpoints: the chain head, verified and timestamped by the TSA (RFC 3161), daily and on demand.

The TSA and the token check are passed in (portal.admin wires the configured ones), so that the
operation log stays a leaf package that every feature may import.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from portal.audit import chain
from portal.audit.actions import AuditAction
from portal.audit.models import AuditCheckpoint
from portal.audit.service import SYSTEM, Actor, RequestInfo, record


def create_checkpoint(session: Session, *, timestamp: Callable[[bytes], bytes], token_time: Callable[[bytes], datetime],
                      check_token: chain.TokenCheck | None, tsa: str, now: datetime,
                      actor: Actor = SYSTEM) -> tuple[AuditCheckpoint, chain.Verification]:
    """Verify the chain, timestamp its head and store both as a checkpoint, with an audit event.

    The head is the last position verified, or the recorded head when verification failed (the
    failure is stored with it and shown on the admin page). `session` must not be in a transaction
    (verification reads its own snapshot). Raises whatever `timestamp` raises (TSA unreachable);
    nothing is stored then.
    """
    verification = chain.verify(session, check_token=check_token)
    head_seq, head_hash = ((verification.positions, verification.head_hash) if verification.is_ok
                           else chain.head(session))
    session.rollback()  # no snapshot or lock held while the TSA answers
    token = timestamp(bytes.fromhex(head_hash))
    checkpoint = AuditCheckpoint(
        created_at=now, head_seq=head_seq, head_hash=head_hash, timestamp_token=token,
        timestamped_at=token_time(token), tsa=tsa[:254], is_verified=verification.is_ok,
        verified_events=verification.events, verification_message=verification.summary,
    )
    session.add(checkpoint)
    session.flush()
    record(session, actor=actor, action=AuditAction.AUDIT_CHECKPOINT_CREATED, subject=checkpoint, now=now,
           checkpoint_id=checkpoint.id, head_seq=head_seq, head_hash=head_hash, is_verified=verification.is_ok)
    return checkpoint, verification


def last_checkpoint(session: Session) -> AuditCheckpoint | None:
    return session.scalar(select(AuditCheckpoint).order_by(AuditCheckpoint.id.desc()).limit(1))


def recent_checkpoints(session: Session, *, limit: int = 10) -> list[AuditCheckpoint]:
    return list(session.scalars(select(AuditCheckpoint).order_by(AuditCheckpoint.id.desc()).limit(limit)))


def view_checkpoints(session: Session, *, viewer: Actor, now: datetime, request: RequestInfo,
                     limit: int = 10) -> list[AuditCheckpoint]:
    """The latest checkpoints, newest first, for the admin page; the viewing is logged."""
    checkpoints = recent_checkpoints(session, limit=limit)
    record(session, actor=viewer, action=AuditAction.AUDIT_INTEGRITY_VIEWED, now=now, ip=request.ip,
           user_agent=request.user_agent, last_checkpoint_id=checkpoints[0].id if checkpoints else None)
    return checkpoints
