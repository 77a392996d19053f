"""The background worker as its own process beside gunicorn's web processes (WORKER_PROCESS).

gunicorn's master starts it when ready (portal/gunicorn_conf.py) and starts it again if it dies. It
runs at a lower CPU priority (WORKER_NICE), so completions (B-LTA of every document, the
certificate), page images and 一括検証 never slow down a signer's click or a page view: on two cores
the web processes get the CPU first. The web processes do not run worker threads then; a commit that
queues work wakes this process with a datagram on a Unix socket (WORKER_WAKE_SOCKET), and without
one it looks every OUTBOX_POLL_SECONDS.

    python -m portal.jobs.process app:app      # what the master runs (any gunicorn app URI)
"""

from __future__ import annotations

import logging
import os
import sys
import time

from flask import Flask

log = logging.getLogger(__name__)

IDLE_FILE_ENV = "PORTAL_WORKER_IDLE_FILE"


def serve(app: Flask, *, parent: int) -> None:
    """Run worker rounds until the master that started this process is gone."""
    from portal.jobs.wake import WAKE_SOCKET_ENV, WakeSocket
    from portal.jobs.worker import run_round

    path = os.environ.get(WAKE_SOCKET_ENV, "")
    wake = WakeSocket(path) if path else None
    interval = float(app.config["OUTBOX_POLL_SECONDS"])
    try:
        while os.getppid() == parent:
            with app.app_context():
                try:
                    run_round(app)
                except Exception:  # the loop must survive a database hiccup
                    log.exception("background worker round failed")
            if wake is not None:
                wake.wait(interval)
            else:
                time.sleep(interval)
    finally:
        if wake is not None:
            wake.close()


def main(argv: list[str]) -> int:
    from gunicorn.util import import_app  # type: ignore[import-untyped]

    os.environ.setdefault("PORTAL_WORKER_IN_WEB", "false")
    parent = os.getppid()
    app = import_app(argv[0])
    os.nice(int(app.config["WORKER_NICE"]))
    if not app.config["OUTBOX_WORKER"] or app.testing:  # the web processes or a test drive the jobs
        _tell_supervisor_idle()
        return 0
    serve(app, parent=parent)
    return 0


def _tell_supervisor_idle() -> None:
    path = os.environ.get(IDLE_FILE_ENV)
    if path:
        with open(path, "wb"):
            pass


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
