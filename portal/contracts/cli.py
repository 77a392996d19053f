"""flask --app app contracts deadlines | complete"""

from __future__ import annotations

import click
from flask import Flask
from flask.cli import AppGroup

from portal import clock
from portal.db import db

contracts_cli = AppGroup("contracts", help="契約の期限処理と締結処理")


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


@contracts_cli.command("complete")
def complete() -> None:
    """Complete every 締結処理中 contract now (after a TSA outage outlasted its retries)."""
    from portal.contracts.completion import COMPLETION_JOB, requeue_completions
    from portal.jobs.queue import run_now
    from portal.mail.worker import notify

    session = db()
    ids = requeue_completions(session, now=clock.now())
    session.commit()
    done = sum(1 for contract_id in ids if run_now(COMPLETION_JOB, contract_id))
    notify()
    click.echo(f"締結処理中 {len(ids)} 件のうち {done} 件を処理しました。")


def register(app: Flask) -> None:
    app.cli.add_command(contracts_cli)
