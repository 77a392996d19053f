"""Webhooks: admins register endpoints; contract and usage-request events are delivered, signed, by the worker."""

from __future__ import annotations

from flask import Blueprint, Flask

bp = Blueprint("webhooks", __name__, template_folder="templates", url_prefix="/admin/webhooks")


def init_app(app: Flask) -> None:
    from portal.jobs import register_task
    from portal.webhooks import cli, views  # noqa: F401  (routes register on the blueprint)
    from portal.webhooks.service import deliver_due

    app.register_blueprint(bp)
    cli.register(app)

    def deliver() -> int:
        with app.extensions["portal.session_factory"]() as session:
            return deliver_due(session)

    # Every round of the worker (woken after commits, else every OUTBOX_POLL_SECONDS) delivers what is due.
    register_task(app, "webhooks", deliver)
