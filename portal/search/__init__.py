"""電帳法 search (R21-R24): date × amount × counterparty, combined; CSV and ZIP exports; JSON API."""

from __future__ import annotations

from flask import Blueprint, Flask

bp = Blueprint("search", __name__, template_folder="templates", url_prefix="/search")
api_bp = Blueprint("search_api", __name__, url_prefix="/api/v1")


def init_app(app: Flask) -> None:
    from portal.search import api, views  # noqa: F401  (routes register on the blueprints)

    app.register_blueprint(bp)
    app.register_blueprint(api_bp)
