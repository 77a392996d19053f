"""Periodic jobs (reminders, paper fallback, later: archive timestamp renewal).

A feature package registers a job in its init_app; the in-process worker thread (embedded default)
and `flask --app app worker` (production) both run the jobs that are due. Each job gets a fresh
session and commits its own work.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from flask import Flask, current_app
from sqlalchemy.orm import Session

log = logging.getLogger(__name__)


@dataclass
class Job:
    name: str
    run: Callable[[Session], object]
    every_seconds: int
    last_run: float = field(default=0.0)


def register_job(app: Flask, name: str, run: Callable[[Session], object], every_seconds: int) -> None:
    app.extensions.setdefault("portal.jobs", {})[name] = Job(name, run, every_seconds)


def run_due_jobs(monotonic: Callable[[], float] = time.monotonic) -> list[str]:
    """Run every job whose interval has passed; return their names. A failing job is logged and skipped."""
    jobs: dict[str, Job] = current_app.extensions.get("portal.jobs", {})
    factory = current_app.extensions["portal.session_factory"]
    ran = []
    for job in jobs.values():
        if job.last_run and monotonic() - job.last_run < job.every_seconds:
            continue
        job.last_run = monotonic()
        with factory() as session:
            try:
                job.run(session)
                session.commit()
                ran.append(job.name)
            except Exception:  # one broken job must not stop mail delivery
                session.rollback()
                log.exception("periodic job %s failed", job.name)
    return ran
