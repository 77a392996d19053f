"""電帳法 search (R21-R24): date × amount × counterparty, combined; CSV and ZIP exports.

The JSON API (portal.api) lists contracts with the same criteria and service."""

from __future__ import annotations

from flask import Blueprint, Flask

bp = Blueprint("search", __name__, template_folder="templates", url_prefix="/search")


def init_app(app: Flask) -> None:
    from portal.search import views  # noqa: F401  (routes register on the blueprint)

    app.register_blueprint(bp)

    from portal.jobs import register_job
    from portal.search.fulltext import refresh_statistics

    register_job(app, "search-statistics", refresh_statistics, every_seconds=24 * 3600)
