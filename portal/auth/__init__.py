"""Staff login: password (argon2) then TOTP, recovery codes, lockout, first-run setup, enrolment."""

from flask import Blueprint

bp = Blueprint("auth", __name__, template_folder="templates")

from portal.auth import sso_views, views  # noqa: E402,F401
