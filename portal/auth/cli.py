"""flask --app app api-tokens list | create | revoke"""

from __future__ import annotations

import sys
from datetime import datetime, time, timedelta

import click
from flask import current_app
from flask.cli import AppGroup

from portal import clock
from portal.auth.models import ApiTokenScope
from portal.clock import JST
from portal.db import db
from portal.errors import DomainError

api_tokens_cli = AppGroup("api-tokens", help="JSON API のトークン")


def _fail(message: str) -> None:
    db().rollback()
    click.echo(f"エラー: {message}", err=True)
    sys.exit(1)


def _jst(value: datetime | None) -> str:
    return value.astimezone(JST).strftime("%Y-%m-%d %H:%M") if value else "-"


@api_tokens_cli.command("list")
def list_tokens() -> None:
    """One line per token: id, owner, label, scope, created, last used, expiry, state."""
    from portal.auth import api_tokens

    now = clock.now()
    click.echo("ID\t職員\t用途\t権限\t作成\t最終利用\t有効期限\t状態")
    for row in api_tokens.list_tokens(db()):
        state = "失効" if row.revoked_at else ("期限切れ" if not row.is_usable(now) else "有効")
        click.echo(f"{row.id}\t{row.user.email}\t{row.label}\t{row.scope.label}\t{_jst(row.created_at)}\t"
                   f"{_jst(row.last_used_at)}\t{_jst(row.expires_at)}\t{state}")


@api_tokens_cli.command("create")
@click.option("--user", "email", required=True, help="トークンが代理する職員のメールアドレス")
@click.option("--label", default="", help="用途のメモ（例: 財務会計システム）")
@click.option("--read-only", is_flag=True, help="読み取り専用（一覧・参照・文書の取得だけ）")
@click.option("--expires", "expires_on", type=click.DateTime(formats=["%Y-%m-%d"]), default=None,
              help="有効期限の日（この日の終わりまで。省略すると API_TOKEN_DAYS 日後）")
def create(email: str, label: str, read_only: bool, expires_on: datetime | None) -> None:
    """Create a bearer token; the token is printed once, as the last line."""
    from portal.auth import api_tokens

    now = clock.now()
    expires_at = (datetime.combine(expires_on.date() + timedelta(days=1), time(), JST) if expires_on
                  else now + timedelta(days=int(current_app.config["API_TOKEN_DAYS"])))
    try:
        row, token = api_tokens.create_token(db(), email=email, label=label, now=now, expires_at=expires_at,
                                             scope=ApiTokenScope.READ if read_only else ApiTokenScope.WRITE)
    except DomainError as exc:
        _fail(exc.message)
        return
    db().commit()
    click.echo(f"{row.user.name} <{row.user.email}> の API トークン（{row.scope.label}、"
               f"有効期限 {_jst(row.expires_at)}）を作成しました（再表示できません）:")
    click.echo(token)


@api_tokens_cli.command("revoke")
@click.argument("token_id", type=int)
def revoke(token_id: int) -> None:
    """Revoke a token at once (its id from `api-tokens list`)."""
    from portal.auth import api_tokens

    try:
        row = api_tokens.get_token(db(), token_id)
    except DomainError as exc:
        _fail(exc.message)
        return
    if not api_tokens.revoke(db(), row, actor=None, now=clock.now()):
        _fail(f"トークン {token_id} はすでに失効しています。")
    db().commit()
    click.echo(f"トークン {token_id}（{row.user.email} {row.label}）を失効させました。")
