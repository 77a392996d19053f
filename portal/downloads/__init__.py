"""Download links of the completion mail: /d/<token>, valid DOWNLOAD_LINK_DAYS."""

from __future__ import annotations

from flask import Blueprint, Flask

bp = Blueprint("downloads", __name__, template_folder="templates")


def init_app(app: Flask) -> None:
    from portal.downloads import views  # noqa: F401

    app.register_blueprint(bp)
