"""Leases: a row per named piece of work that one process at a time may hold, until a deadline.

A holder keeps its lease alive with a heartbeat; a holder that died stops renewing, its lease runs
out and another process takes over. Works the same on SQLite and PostgreSQL: claiming is one
conditional UPDATE, which only one transaction can win.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta

from sqlalchemy import or_, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from portal.jobs.models import JobLease

log = logging.getLogger(__name__)


def holder_id() -> str:
    """This process (and thread) as written into the rows it claims."""
    return f"{socket.gethostname()}:{os.getpid()}:{threading.get_ident()}"[:128]


def ensure_lease_row(session: Session, name: str, *, first_run_at: datetime) -> None:
    """Create the lease row if it is missing (concurrent callers: one insert wins, none fails)."""
    dialect = session.get_bind().dialect.name
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    session.execute(insert(JobLease).values(name=name, next_run_at=first_run_at, holder="", last_error="", runs=0)
                    .on_conflict_do_nothing(index_elements=["name"]))


def claim_due(session: Session, name: str, *, holder: str, now: datetime, hold_for: timedelta) -> bool:
    """Take the lease when the job is due and nobody holds it (or the holder's time ran out)."""
    result = session.execute(
        update(JobLease)
        .where(JobLease.name == name, JobLease.next_run_at <= now,
               or_(JobLease.held_until.is_(None), JobLease.held_until < now))
        .values(holder=holder, held_until=now + hold_for, last_started_at=now)
    )
    return result.rowcount == 1  # type: ignore[attr-defined]


def renew(session: Session, name: str, *, holder: str, until: datetime) -> bool:
    result = session.execute(update(JobLease).where(JobLease.name == name, JobLease.holder == holder)
                             .values(held_until=until))
    return result.rowcount == 1  # type: ignore[attr-defined]


def release(session: Session, name: str, *, holder: str, now: datetime, next_run_at: datetime, error: str) -> bool:
    result = session.execute(
        update(JobLease).where(JobLease.name == name, JobLease.holder == holder)
        .values(holder="", held_until=None, last_finished_at=now, next_run_at=next_run_at, last_error=error[:4000],
                runs=JobLease.runs + 1)
    )
    return result.rowcount == 1  # type: ignore[attr-defined]


@contextmanager
def heartbeat(beat: Callable[[], object], every_seconds: float) -> Iterator[None]:
    """Call beat() every `every_seconds` in a thread while the block runs (a failing beat is logged)."""
    stop = threading.Event()

    def loop() -> None:
        while not stop.wait(every_seconds):
            try:
                beat()
            except Exception:
                log.exception("heartbeat failed")

    thread = threading.Thread(target=loop, name="heartbeat", daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join(timeout=every_seconds + 5)
