"""Contracts (契約): staff create an envelope, upload PDFs, get it approved and send it for signing."""

from __future__ import annotations

from flask import Blueprint, Flask

bp = Blueprint("contracts", __name__, template_folder="templates", static_folder="static",
               url_prefix="/contracts")


def init_app(app: Flask) -> None:
    from portal.contracts import cli, edit_views, sender_views, views  # noqa: F401  (routes register on the blueprint)

    app.register_blueprint(bp)
    cli.register(app)

    from portal.contracts import completion, pages
    from portal.contracts.numbering import check_format

    pages.register(app)
    completion.register(app)

    check_format(app.config["CONTRACT_NUMBER_FORMAT"])  # a broken format stops the start, not a draft

    from portal import clock
    from portal.contracts.deadlines import run_deadlines
    from portal.jobs import register_job

    register_job(app, "contract-deadlines", lambda session: run_deadlines(session, now=clock.now()),
                 every_seconds=app.config["DEADLINES_INTERVAL_SECONDS"])
