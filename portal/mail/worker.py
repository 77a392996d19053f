"""In-process delivery for the embedded default: a daemon thread, woken after each commit."""

from __future__ import annotations

import logging
import threading

from flask import Flask, current_app

log = logging.getLogger(__name__)


class OutboxWorker:
    def __init__(self, app: Flask) -> None:
        self.app = app
        self._wake = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="outbox", daemon=True)
            self._thread.start()

    def notify(self) -> None:
        self._wake.set()

    def _run(self) -> None:
        from portal.jobs import run_due_jobs
        from portal.mail.service import deliver_pending

        while True:
            self._wake.wait(timeout=self.app.config["OUTBOX_POLL_SECONDS"])
            self._wake.clear()
            with self.app.app_context():
                try:
                    run_due_jobs()
                    deliver_pending()
                except Exception:  # the loop must survive a database hiccup
                    log.exception("outbox delivery failed")


def init_app(app: Flask) -> None:
    if app.config["OUTBOX_WORKER"] and not app.testing:
        app.extensions["portal.outbox_worker"] = OutboxWorker(app)


def notify() -> None:
    """Call after a commit that queued mail: delivers soon, in the background, never in the request."""
    worker: OutboxWorker | None = current_app.extensions.get("portal.outbox_worker")
    if worker is not None:
        worker.start()
        worker.notify()
