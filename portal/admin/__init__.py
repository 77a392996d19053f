"""Administration: staff users, roles, departments."""

from flask import Blueprint

bp = Blueprint("admin", __name__, template_folder="templates", url_prefix="/admin")

from portal.admin import api_tokens, views  # noqa: E402,F401
