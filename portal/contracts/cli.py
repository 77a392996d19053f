"""flask --app app api-tokens create --user EMAIL | contracts deadlines"""

from __future__ import annotations

import sys

import click
from flask import Flask
from flask.cli import AppGroup

from portal import clock
from portal.db import db
from portal.errors import DomainError

api_tokens_cli = AppGroup("api-tokens", help="JSON API のトークン")
contracts_cli = AppGroup("contracts", help="契約の期限処理")


@api_tokens_cli.command("create")
@click.option("--user", "email", required=True, help="トークンが代理する職員のメールアドレス")
@click.option("--label", default="", help="用途のメモ（例: 財務会計システム）")
def create_api_token(email: str, label: str) -> None:
    """Create a bearer token; the token is printed once, as the last line."""
    from portal.contracts import api_tokens

    session = db()
    try:
        row, token = api_tokens.create_token(session, email=email, label=label, now=clock.now())
    except DomainError as exc:
        session.rollback()
        click.echo(f"エラー: {exc.message}", err=True)
        sys.exit(1)
    session.commit()
    click.echo(f"{row.user.name} <{row.user.email}> の API トークンを作成しました（再表示できません）:")
    click.echo(token)


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
    app.cli.add_command(api_tokens_cli)
    app.cli.add_command(contracts_cli)
