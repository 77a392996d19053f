"""flask --app app webhooks list | create | disable | enable | delete | deliveries"""

from __future__ import annotations

import sys

import click
from flask import Flask
from flask.cli import AppGroup

from portal import clock
from portal.db import db
from portal.errors import DomainError
from portal.webhooks.models import DeliveryStatus, WebhookEventType

webhooks_cli = AppGroup("webhooks", help="Webhook の送信先")


def _fail(message: str) -> None:
    db().rollback()
    click.echo(f"エラー: {message}", err=True)
    sys.exit(1)


@webhooks_cli.command("list")
def list_endpoints() -> None:
    """One line per endpoint: id, state, URL, events, deliveries (sent/pending/failed)."""
    from portal.webhooks import service

    for endpoint, counts in service.list_endpoints(db()):
        state = "有効" if endpoint.is_active else "停止"
        click.echo(f"{endpoint.id}\t{state}\t{endpoint.url}\t{','.join(endpoint.events)}\t"
                   f"送信済み {counts[DeliveryStatus.DELIVERED]} / 送信待ち {counts[DeliveryStatus.PENDING]} / "
                   f"失敗 {counts[DeliveryStatus.FAILED]}\t{endpoint.description}")


@webhooks_cli.command("create")
@click.option("--url", required=True, help="送信先（http:// または https://）")
@click.option("--events", default="all", show_default=True,
              help="カンマ区切り: " + ", ".join(e.value for e in WebhookEventType) + "（all で全部）")
@click.option("--description", default="", help="用途のメモ（例: 文書管理システム）")
@click.option("--secret", default="", help="署名のシークレット（省略すると生成して一度だけ表示）")
def create(url: str, events: str, description: str, secret: str) -> None:
    """Register an endpoint; the signing secret is printed once, as the last line."""
    from portal.webhooks import service

    chosen = [e.value for e in WebhookEventType] if events.strip() == "all" else \
        [e.strip() for e in events.split(",") if e.strip()]
    try:
        endpoint, secret = service.create_endpoint(db(), url=url, events=chosen, description=description,
                                                   secret=secret, actor=None, now=clock.now())
    except DomainError as exc:
        _fail(exc.message)
        return
    db().commit()
    click.echo(f"送信先 {endpoint.id} を登録しました。署名のシークレット（再表示できません）:")
    click.echo(secret)


def _set_active(endpoint_id: int, active: bool) -> None:
    from portal.webhooks import service

    try:
        endpoint = service.get_endpoint(db(), endpoint_id)
        service.update_endpoint(db(), endpoint, url=endpoint.url, events=endpoint.events,
                                description=endpoint.description, is_active=active, actor=None, now=clock.now())
    except DomainError as exc:
        _fail(exc.message)
        return
    db().commit()
    click.echo(f"送信先 {endpoint_id} を{'有効に' if active else '停止'}しました。")


@webhooks_cli.command("disable")
@click.argument("endpoint_id", type=int)
def disable(endpoint_id: int) -> None:
    """Stop sending to an endpoint (its pending deliveries wait)."""
    _set_active(endpoint_id, False)


@webhooks_cli.command("enable")
@click.argument("endpoint_id", type=int)
def enable(endpoint_id: int) -> None:
    _set_active(endpoint_id, True)


@webhooks_cli.command("delete")
@click.argument("endpoint_id", type=int)
def delete(endpoint_id: int) -> None:
    """Remove an endpoint and its delivery records."""
    from portal.webhooks import service

    try:
        service.delete_endpoint(db(), service.get_endpoint(db(), endpoint_id), actor=None, now=clock.now())
    except DomainError as exc:
        _fail(exc.message)
        return
    db().commit()
    click.echo(f"送信先 {endpoint_id} を削除しました。")


@webhooks_cli.command("deliveries")
@click.option("--failed", is_flag=True, help="失敗したものだけ")
def deliveries(failed: bool) -> None:
    """The latest 100 deliveries: id, endpoint, event, status, attempts, last error."""
    from portal.webhooks import service

    rows = service.recent_deliveries(db(), status=DeliveryStatus.FAILED if failed else None)
    for d in rows:
        click.echo(f"{d.id}\t{d.endpoint_id}\t{d.event.type.value}\t{d.event.event_id}\t{d.status.label}\t"
                   f"{d.attempts}\t{d.last_error}")


def register(app: Flask) -> None:
    app.cli.add_command(webhooks_cli)
