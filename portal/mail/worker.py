"""Mail delivery as a task of the background worker (portal.jobs.worker), woken after each commit."""

from __future__ import annotations

from flask import Flask


def init_app(app: Flask) -> None:
    from portal.jobs.worker import register_task
    from portal.mail.service import deliver_pending

    register_task(app, "mail", deliver_pending)


def notify() -> None:
    """Call after a commit that queued mail: delivers soon, in the background, never in the request."""
    from portal.jobs import worker

    worker.wake()
