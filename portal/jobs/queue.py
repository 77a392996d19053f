"""Queued jobs: one-off work handed from a request to the workers (completion, page images, 一括検証).

enqueue() adds the job in the caller's transaction, so it exists exactly when the change that asked
for it commits; (kind, key) is unique, so asking twice is one job. A worker claims a due job with a
conditional UPDATE (PostgreSQL: SKIP LOCKED first), keeps `heartbeat_at` fresh while it runs,
and marks it done in the same transaction as the handler's last commit: a job's effects commit
once, even with several workers. A job whose worker died (no heartbeat for JOB_STALE_SECONDS) is
claimed again by another worker; after `max_attempts` it is marked failed with the reason, and the
handler's on_give_up() can record that on the object concerned.
"""

from __future__ import annotations

import logging
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from flask import Flask, current_app
from sqlalchemy import or_, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session, sessionmaker

from portal import clock
from portal.audit.actions import AuditAction
from portal.audit.service import SYSTEM, record
from portal.db import run_transaction
from portal.jobs import leases
from portal.jobs.models import QueuedJob, QueuedJobStatus
from portal.logging_setup import job_run
from portal.storage import TamperedFile

log = logging.getLogger(__name__)
WORKER_STOPPED = "処理していたワーカーが応答しなくなりました。"


class RetryLater(Exception):
    """Raised by a handler when a part it needs is unavailable (the TSA, the SMTP server): try again later."""


class ClaimLost(Exception):
    """Another worker took the job over while this one ran (this one's heartbeat had stopped)."""


def fenced_commit(job: QueuedJob) -> Callable[[Session], None]:
    """A commit for a handler that stores progress as it goes: each one holds only while this worker still
    has the job, in the same transaction, so a worker that stalled past JOB_STALE_SECONDS and then woke up
    stores nothing more beside the worker that took its job over; it rolls back and raises ClaimLost."""
    job_id, holder = job.id, job.claimed_by

    def commit(session: Session) -> None:
        held = session.execute(
            update(QueuedJob).where(QueuedJob.id == job_id, QueuedJob.claimed_by == holder,
                                    QueuedJob.status == QueuedJobStatus.RUNNING)
            .values(heartbeat_at=clock.now()))
        if held.rowcount != 1:  # type: ignore[attr-defined]
            session.rollback()
            raise ClaimLost(f"queued job {job_id} is no longer held by {holder}")
        session.commit()

    return commit


@dataclass(frozen=True)
class Handler:
    kind: str
    run: Callable[[Session, QueuedJob], object]
    max_attempts: int
    retry_base_seconds: float
    on_give_up: Callable[[Session, QueuedJob], object] | None


WAKE_AFTER_COMMIT = "portal.jobs.wake"


def register_handler(app: Flask, kind: str, run: Callable[[Session, QueuedJob], object], *,
                     max_attempts: int = 20, retry_base_seconds: float = 30,
                     on_give_up: Callable[[Session, QueuedJob], object] | None = None) -> None:
    """`run(session, job)` does the work; the worker commits after it (it may commit progress itself).

    A raised exception retries the job after retry_base_seconds × 2^(attempt-1) (at most an hour).
    """
    app.extensions.setdefault("portal.job_handlers", {})[kind] = Handler(
        kind, run, max_attempts, retry_base_seconds, on_give_up)


def enqueue(session: Session, kind: str, key: str | int, payload: dict[str, Any] | None = None, *,
            now: datetime, run_after: datetime | None = None) -> None:
    """Add the job in the caller's transaction (nothing happens when (kind, key) is already queued).

    The in-process worker is woken when the transaction commits.
    """
    dialect = session.get_bind().dialect.name
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    session.execute(insert(QueuedJob).values(
        kind=kind, key=str(key), payload=payload or {}, status=QueuedJobStatus.PENDING, attempts=0,
        run_after=run_after or now, claimed_by="", last_error="", created_at=now,
    ).on_conflict_do_nothing(index_elements=["kind", "key"]))
    session.info[WAKE_AFTER_COMMIT] = True  # portal.jobs.worker wakes this process's worker then


def _due(now: datetime, kinds: list[str]) -> Any:
    stale = timedelta(seconds=current_app.config["JOB_STALE_SECONDS"])
    return (QueuedJob.kind.in_(kinds)) & or_(
        (QueuedJob.status == QueuedJobStatus.PENDING) & (QueuedJob.run_after <= now),
        (QueuedJob.status == QueuedJobStatus.RUNNING) & (QueuedJob.heartbeat_at < now - stale),
    )


def claim_next(session: Session, *, holder: str, now: datetime, kinds: list[str],
               key: str | None = None) -> int | None:
    """Claim the oldest due job (or one whose worker stopped), or the one with `key`; its id, or None."""
    query = select(QueuedJob.id).where(_due(now, kinds)).order_by(QueuedJob.id).limit(1)
    if key is not None:
        query = query.where(QueuedJob.key == key)
    job_id = session.scalar(query.with_for_update(skip_locked=True))
    if job_id is None:
        return None
    result = session.execute(
        update(QueuedJob).where(QueuedJob.id == job_id, _due(now, kinds))
        .values(status=QueuedJobStatus.RUNNING, claimed_by=holder, heartbeat_at=now, attempts=QueuedJob.attempts + 1)
    )
    return job_id if result.rowcount == 1 else None  # type: ignore[attr-defined]


def run_queued_jobs(limit: int = 20) -> int:
    """Claim and run due jobs one after the other (at most `limit`); return how many were handled."""
    handlers: dict[str, Handler] = current_app.extensions.get("portal.job_handlers", {})
    if not handlers:
        return 0
    factory: sessionmaker[Session] = current_app.extensions["portal.session_factory"]
    holder = leases.holder_id()
    handled = 0
    while handled < limit:
        job_id = run_transaction(factory, lambda s: claim_next(s, holder=holder, now=clock.now(),
                                                               kinds=list(handlers)))
        if job_id is None:
            break
        _run_one(factory, handlers, job_id, holder)
        handled += 1
    return handled


def run_now(kind: str, key: str | int) -> bool:
    """Claim and run one particular job in this thread (the CLI, tests); False if it was not due here."""
    handlers: dict[str, Handler] = current_app.extensions.get("portal.job_handlers", {})
    factory: sessionmaker[Session] = current_app.extensions["portal.session_factory"]
    holder = leases.holder_id()
    job_id = run_transaction(factory, lambda s: claim_next(s, holder=holder, now=clock.now(), kinds=[kind],
                                                           key=str(key)))
    if job_id is None:
        return False
    _run_one(factory, handlers, job_id, holder)
    return True


def _run_one(factory: sessionmaker[Session], handlers: dict[str, Handler], job_id: int, holder: str) -> None:
    def beat() -> None:
        run_transaction(factory, lambda s: s.execute(
            update(QueuedJob).where(QueuedJob.id == job_id, QueuedJob.claimed_by == holder,
                                    QueuedJob.status == QueuedJobStatus.RUNNING)
            .values(heartbeat_at=clock.now())))

    with factory() as session, job_run(job="queued", job_id=job_id) as entry:
        job = session.get(QueuedJob, job_id)
        assert job is not None
        entry.update(kind=job.kind, key=job.key, attempt=job.attempts)
        handler = handlers[job.kind]
        if job.attempts > handler.max_attempts:
            entry["outcome"] = "gave_up"
            _give_up(session, handler, job, job.last_error or WORKER_STOPPED)
            return
        try:
            with leases.heartbeat(beat, current_app.config["JOB_HEARTBEAT_SECONDS"]):
                handler.run(session, job)
                finished = session.execute(
                    update(QueuedJob).where(QueuedJob.id == job_id, QueuedJob.claimed_by == holder,
                                            QueuedJob.status == QueuedJobStatus.RUNNING)
                    .values(status=QueuedJobStatus.DONE, finished_at=clock.now(), last_error=""))
                if finished.rowcount != 1:  # type: ignore[attr-defined]
                    # Another worker took the job over (our heartbeat stopped): its run counts.
                    session.rollback()
                    entry["outcome"] = "taken_over"
                    log.warning("queued job %s (%s) was taken over; result discarded", job_id, job.kind)
                    return
                session.commit()
        except ClaimLost:
            session.rollback()
            entry["outcome"] = "taken_over"
            log.warning("queued job %s (%s) was taken over; its progress from here on discarded", job_id, job.kind)
        except Exception as exc:
            session.rollback()
            if isinstance(exc, TamperedFile):
                _record_tampered(session, job, exc)
            entry["outcome"] = "retry" if isinstance(exc, RetryLater) else "failed"
            if isinstance(exc, RetryLater):
                log.warning("queued job %s (%s) will be retried: %s", job_id, handler.kind, exc)
            else:
                log.exception("queued job %s (%s) failed", job_id, handler.kind)
            message = "".join(traceback.format_exception_only(exc)).strip()[:4000]
            _after_failure(session, handler, job_id, holder, message)


def _record_tampered(session: Session, job: QueuedJob, exc: TamperedFile) -> None:
    """A stored file failed its check inside a job: logged as when a request reads it (portal/integrity.py)."""
    record(session, actor=SYSTEM, action=AuditAction.STORAGE_INTEGRITY_FAILED, key=exc.key, owner=exc.owner,
           why=exc.why, job=job.kind, job_key=job.key)
    session.commit()


def _after_failure(session: Session, handler: Handler, job_id: int, holder: str, message: str) -> None:
    session.expire_all()
    job = session.get(QueuedJob, job_id)
    if job is None or job.claimed_by != holder or job.status is not QueuedJobStatus.RUNNING:
        return
    if job.attempts >= handler.max_attempts:
        _give_up(session, handler, job, message)
        return
    delay = min(handler.retry_base_seconds * 2 ** (job.attempts - 1), 3600)
    job.status, job.last_error, job.run_after = QueuedJobStatus.PENDING, message, clock.now() + timedelta(seconds=delay)
    session.commit()


def _give_up(session: Session, handler: Handler, job: QueuedJob, message: str) -> None:
    job.status, job.last_error, job.finished_at = QueuedJobStatus.FAILED, message, clock.now()
    if handler.on_give_up is not None:
        handler.on_give_up(session, job)
    session.commit()
    log.error("queued job %s (%s) gave up: %s", job.id, job.kind, message)
