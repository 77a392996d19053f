"""Signing: PAdES signatures by the service key, the built-in CA and TSA, verification."""

from __future__ import annotations

from flask import Blueprint, Flask

bp = Blueprint("signing", __name__, template_folder="templates")


def init_app(app: Flask) -> None:
    """Register the blueprint and the ``verify`` command (called by create_app)."""
    from .cli import verify_command

    app.register_blueprint(bp)
    app.cli.add_command(verify_command)


from . import views  # noqa: E402,F401  (registers the routes on bp)
