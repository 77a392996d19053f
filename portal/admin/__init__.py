"""Administration: staff users, roles, departments."""

from flask import Blueprint, Flask

bp = Blueprint("admin", __name__, template_folder="templates", url_prefix="/admin")

from portal.admin import api_tokens, audit_integrity, views  # noqa: E402,F401


def init_app(app: Flask) -> None:
    app.register_blueprint(bp)
    audit_integrity.init_app(app)
