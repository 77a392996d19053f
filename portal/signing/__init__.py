"""Signing: PAdES signatures by the service key, the built-in CA and TSA, verification."""

from __future__ import annotations

from flask import Blueprint, Flask

bp = Blueprint("signing", __name__, template_folder="templates")


def init_app(app: Flask) -> None:
    """Register the blueprint, the ``verify`` and ``pki`` commands and the PKI's periodic job (called by create_app)."""
    from . import lifecycle, service
    from .cli import pki_group, verify_command

    app.register_blueprint(bp)
    app.cli.add_command(verify_command)
    app.cli.add_command(pki_group)
    lifecycle.register(app, load_pki=service.ensure_pki)


from . import views  # noqa: E402,F401  (registers the routes on bp)
