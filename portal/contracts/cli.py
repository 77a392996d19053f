"""flask --app app contracts deadlines"""

from __future__ import annotations

import click
from flask import Flask
from flask.cli import AppGroup

from portal import clock
from portal.db import db

contracts_cli = AppGroup("contracts", help="契約の期限処理")


@contracts_cli.command("deadlines")
def deadlines() -> None:
    """Send due reminders and move contracts past 締結予定日 to paper (run by the worker)."""
    from portal.contracts.deadlines import run_deadlines
    from portal.mail.worker import notify

    session = db()
    report = run_deadlines(session, now=clock.now())
    session.commit()
    notify()
    click.echo(f"リマインド {report.reminded} 件、紙契約へ移行 {report.switched_to_paper} 件")


def register(app: Flask) -> None:
    app.cli.add_command(contracts_cli)
