"""Signing: PAdES signatures by the service key, the built-in CA and TSA, verification."""

from flask import Blueprint

bp = Blueprint("signing", __name__, template_folder="templates")

from . import views  # noqa: E402,F401  (registers the routes on bp)
