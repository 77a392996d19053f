"""Periodic jobs: each runs once per period across every process (lease row in job_leases).

Periods are aligned to the epoch (every 3600 s: once per clock hour, UTC), so a restart or a second
worker never runs a job again in a period where it already ran. A job that fails is tried again
after RETRY_FAILED (or its period, if shorter); its error stays on the lease row.
"""

from __future__ import annotations

import logging
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from flask import Flask, current_app
from sqlalchemy.orm import Session, sessionmaker

from portal import clock
from portal.db import run_transaction
from portal.jobs import leases
from portal.logging_setup import job_run

log = logging.getLogger(__name__)
LEASE = timedelta(minutes=5)  # renewed by a heartbeat every LEASE / 3 while the job runs
RETRY_FAILED = timedelta(minutes=5)
EPOCH = datetime(2000, 1, 1, tzinfo=UTC)


@dataclass(frozen=True)
class PeriodicJob:
    name: str
    run: Callable[[Session], object]
    every_seconds: int
    offset_seconds: int | None = None

    def first_run_at(self, now: datetime) -> datetime:
        """A job without an offset runs at once the first time; one with an offset waits for its moment."""
        if self.offset_seconds is None:
            return now
        return next_period_start(now, self.every_seconds, self.offset_seconds)


def register_job(app: Flask, name: str, run: Callable[[Session], object], every_seconds: int,
                 offset_seconds: int | None = None) -> None:
    """Run `run(session)` once every `every_seconds` in some worker; the session is committed after it.

    With `offset_seconds`, periods start that many seconds after the aligned ones (a daily job at 17:30
    UTC: every_seconds=86400, offset_seconds=17.5 * 3600), and the first run waits for such a start.
    """
    app.extensions.setdefault("portal.jobs", {})[name] = PeriodicJob(
        name, run, int(every_seconds), None if offset_seconds is None else int(offset_seconds) % int(every_seconds))


def next_period_start(now: datetime, every_seconds: int, offset_seconds: int | None = None) -> datetime:
    start = EPOCH + timedelta(seconds=offset_seconds or 0)
    elapsed = (now - start).total_seconds()
    return start + timedelta(seconds=(int(elapsed // every_seconds) + 1) * every_seconds)


def run_due_jobs(now: datetime | None = None) -> list[str]:
    """Run every registered job that is due and not held by another process; return the names run.

    A failing job is logged, recorded on its lease row and does not stop the others.
    """
    jobs: dict[str, PeriodicJob] = current_app.extensions.get("portal.jobs", {})
    factory: sessionmaker[Session] = current_app.extensions["portal.session_factory"]
    holder = leases.holder_id()
    return [job.name for job in jobs.values() if _run_if_due(factory, job, holder, now)]


def _run_if_due(factory: sessionmaker[Session], job: PeriodicJob, holder: str, now: datetime | None) -> bool:
    moment = now or clock.now()
    run_transaction(factory, lambda s: leases.ensure_lease_row(s, job.name, first_run_at=job.first_run_at(moment)))
    if not run_transaction(factory, lambda s: leases.claim_due(s, job.name, holder=holder, now=moment,
                                                               hold_for=LEASE)):
        return False

    def renew() -> None:
        run_transaction(factory, lambda s: leases.renew(s, job.name, holder=holder, until=clock.now() + LEASE))

    error = ""
    with leases.heartbeat(renew, LEASE.total_seconds() / 3), job_run(job="periodic", kind=job.name) as entry:
        try:
            with factory() as session:
                job.run(session)
                session.commit()
        except Exception as exc:  # one broken job must not stop the others or mail delivery
            log.exception("periodic job %s failed", job.name)
            error = "".join(traceback.format_exception_only(exc)).strip()
            entry["outcome"] = "failed"
    finished = now or clock.now()
    next_run = (next_period_start(moment, job.every_seconds, job.offset_seconds) if not error
                else finished + min(RETRY_FAILED, timedelta(seconds=job.every_seconds)))
    run_transaction(factory, lambda s: leases.release(s, job.name, holder=holder, now=finished,
                                                      next_run_at=next_run, error=error))
    return not error
