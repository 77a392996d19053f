"""Preservation under the Electronic Books Preservation Act (R20, R25-R27): corrections with history,
retention and deletion after it, batch verification, and the customer documents as help pages."""

from __future__ import annotations

from flask import Blueprint, Flask

bp = Blueprint("preservation", __name__, template_folder="templates", url_prefix="/preservation")


def init_app(app: Flask) -> None:
    from portal.preservation import cli, docs, views  # noqa: F401  (routes register on the blueprints)

    app.register_blueprint(bp)
    app.register_blueprint(docs.bp)
    cli.register(app)
    from portal.contracts.service import RETENTION_LOOKUP
    from portal.preservation.retention import retention_years_for

    app.extensions[RETENTION_LOOKUP] = retention_years_for  # eligibility (R12) counts the type's retention
    from portal.preservation import renewal, timestamps, verification

    verification.register(app)
    renewal.register(app)
    timestamps.register(app)
