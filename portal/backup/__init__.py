"""Backups: encrypted, verified, rotated snapshots of the database, documents, PKI and keys, and
their restore into an empty instance with checks (docs/deploy.md)."""

from __future__ import annotations

from flask import Blueprint, Flask

bp = Blueprint("backup", __name__, template_folder="templates", url_prefix="/admin/backups")


def init_app(app: Flask) -> None:
    from portal.backup import cli, runs, views  # noqa: F401  (routes register on bp)

    app.register_blueprint(bp)
    app.cli.add_command(cli.backup_cli)
    runs.register(app)
