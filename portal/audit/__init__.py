"""Append-only operation log (操作ログ): who did what to which object, when, from where; and its viewer."""

from __future__ import annotations

from flask import Blueprint, Flask

bp = Blueprint("audit", __name__, template_folder="templates", url_prefix="/audit")


def init_app(app: Flask) -> None:
    from portal.audit import views  # noqa: F401  (routes register on the blueprint)

    app.register_blueprint(bp)
