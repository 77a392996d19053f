"""電子契約利用申出書 (usage request): a vendor names its signing authority; staff review it."""

from __future__ import annotations

from flask import Blueprint, Flask

bp = Blueprint("usage_requests", __name__, template_folder="templates")


def init_app(app: Flask) -> None:
    from portal.usage_requests import views  # noqa: F401 - registers the routes on bp

    app.register_blueprint(bp)
