"""The background worker: periodic jobs, queued jobs and the registered tasks (mail delivery), in a loop.

Under gunicorn (`make run`, the container) it runs as one separate process at a lower CPU priority
(portal/jobs/process.py, WORKER_PROCESS); otherwise every web process runs one as a daemon thread,
started with the app (not when something is first mailed); `flask --app app worker` runs the same
loop in the foreground for installations that set PORTAL_OUTBOX_WORKER=false on their web processes.
Several loops in several processes are safe: periodic jobs take a lease, queued jobs and mails are
claimed row by row.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Callable

from flask import Flask
from sqlalchemy import event
from sqlalchemy.orm import Session

from portal.jobs.queue import WAKE_AFTER_COMMIT, run_queued_jobs
from portal.jobs.wake import WAKE_SOCKET_ENV, notify

log = logging.getLogger(__name__)
_WORKER_KEY = "portal.background_worker"
_current: BackgroundWorker | None = None


def register_task(app: Flask, name: str, task: Callable[[], object]) -> None:
    """Call `task()` (in an app context) on every round of the worker, after the jobs."""
    app.extensions.setdefault("portal.worker_tasks", {})[name] = task


def run_round(app: Flask) -> dict[str, object]:
    """One round: due periodic jobs, due queued jobs, then every task. Returns what each part did."""
    from portal.jobs.periodic import run_due_jobs

    done: dict[str, object] = {"periodic": run_due_jobs(), "queued": run_queued_jobs()}
    for name, task in app.extensions.get("portal.worker_tasks", {}).items():
        try:
            done[name] = task()
        except Exception:  # one failing task (SMTP down) must not stop the others
            log.exception("worker task %s failed", name)
    return done


class BackgroundWorker:
    def __init__(self, app: Flask) -> None:
        self.app = app
        self.pid = os.getpid()
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="portal-worker", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def wake(self) -> None:
        self._wake.set()

    def stop(self, timeout: float = 10) -> None:
        self._stop.set()
        self._wake.set()
        self._thread.join(timeout)

    def _loop(self) -> None:
        while not self._stop.is_set():
            with self.app.app_context():
                try:
                    run_round(self.app)
                except Exception:  # the loop must survive a database hiccup
                    log.exception("background worker round failed")
            self._wake.wait(timeout=self.app.config["OUTBOX_POLL_SECONDS"])
            self._wake.clear()


def start(app: Flask) -> BackgroundWorker | None:
    """Start this process's worker thread once (again after a fork: threads do not survive one)."""
    global _current
    if not app.config["OUTBOX_WORKER"] or not app.config["WORKER_IN_WEB"] or app.testing:
        return None
    worker: BackgroundWorker | None = app.extensions.get(_WORKER_KEY)
    if worker is not None and worker.pid == os.getpid():
        return worker
    worker = BackgroundWorker(app)
    app.extensions[_WORKER_KEY] = worker
    _current = worker
    worker.start()
    return worker


def init_app(app: Flask) -> None:
    """Start the worker with the app, except inside `flask` commands (init, db upgrade, worker itself)."""
    if os.environ.get("FLASK_RUN_FROM_CLI") != "true":
        start(app)


@event.listens_for(Session, "after_commit")
def _wake_after_commit(session: Session) -> None:
    if session.info.pop(WAKE_AFTER_COMMIT, False):
        wake()


def wake() -> None:
    """Wake the worker now (after a commit that queued work): this process's thread, or the separate
    worker process (portal/jobs/process.py) when gunicorn runs one."""
    if _current is not None and _current.pid == os.getpid():
        _current.wake()
        return
    path = os.environ.get(WAKE_SOCKET_ENV)
    if path:
        notify(path)
