"""flask --app app <command>: init, db upgrade/check, users create, storage gc, worker."""

from __future__ import annotations

import sys
import time

import click
from flask import Flask, current_app
from flask.cli import AppGroup, with_appcontext
from sqlalchemy.orm import Session

from portal import clock, db
from portal.db import DatabaseUnavailable, check_connection

db_cli = AppGroup("db", help="データベースのマイグレーション")
users_cli = AppGroup("users", help="職員アカウントの管理")
storage_cli = AppGroup("storage", help="文書の保存先")


def _connected() -> None:
    try:
        check_connection(db.engine())
    except DatabaseUnavailable as exc:
        click.echo(f"エラー: {exc}", err=True)
        sys.exit(2)


@db_cli.command("upgrade")
def db_upgrade() -> None:
    """Apply all migrations."""
    from portal import migrate

    _connected()
    with db.engine().begin() as connection:
        migrate.upgrade(connection)
    click.echo("データベースを最新の状態にしました。")


@db_cli.command("check")
def db_check() -> None:
    """Fail when the models and the migrations disagree."""
    from portal import migrate

    _connected()
    with db.engine().connect() as connection:
        migrate.check(connection)
    click.echo("モデルとマイグレーションは一致しています。")


@click.command("init")
@with_appcontext
def init_command() -> None:
    """Create the secrets and the built-in PKI once (the only way on PostgreSQL), migrate, and print the
    first-run setup URL when no admin exists."""
    from pathlib import Path

    from portal import migrate
    from portal.auth import service as auth_service
    from portal.instance import initialise, shares_database

    _connected()
    app = current_app._get_current_object()  # type: ignore[attr-defined]
    created = initialise(app.config, Path(app.instance_path))
    for path in created:
        click.echo(f"作成しました: {path}")
    if created and shares_database(app.config):
        click.echo("PostgreSQL: すべてのサーバーとワーカーで、この instance/ と PKI_DIR（または同じ値の "
                   "PORTAL_SECRET_KEY_FILE・PORTAL_MASTER_KEY_FILE）を使ってください。")
    with db.engine().begin() as connection:
        migrate.upgrade(connection)
    session = db.db()
    url = auth_service.first_run_setup_url(session, now=clock.now())
    session.commit()
    if url:
        bar = "=" * 72
        notice = "管理者が未登録です。次のURLを開いて最初の管理者を登録してください（一度だけ有効）:"
        click.echo(f"{bar}\n{notice}\n  {url}\n{bar}")


@users_cli.command("create")
@click.option("--email", required=True)
@click.option("--name", required=True)
@click.option("--role", required=True, type=click.Choice(["admin", "staff", "approver", "auditor"]))
@click.option("--department", required=True, help="登録済みの所属のコードまたは名前")
@click.option("--title", default="")
def users_create(email: str, name: str, role: str, department: str, title: str) -> None:
    """Create a staff user and print a one-time enrolment link (set password, enrol TOTP)."""
    from portal.auth import service as auth_service
    from portal.auth.models import Role
    from portal.errors import DomainError

    _connected()
    session = db.db()
    try:
        dept = auth_service.find_department(session, department)
        user, link = auth_service.create_user(
            session, email=email, name=name, role=Role(role), department=dept, title=title,
            actor=None, now=clock.now(),
        )
    except DomainError as exc:
        session.rollback()
        click.echo(f"エラー: {exc.message}", err=True)
        sys.exit(1)
    session.commit()
    click.echo(f"{user.name} <{user.email}> を作成しました。登録用リンク（一度だけ有効）:\n  {link}")


@click.command("worker")
@with_appcontext
@click.option("--once", is_flag=True, help="一度だけ処理して終了")
def worker_command(once: bool) -> None:
    """Run periodic jobs (reminders, paper fallback), queued jobs and mail delivery, in a loop."""
    from portal.jobs.worker import run_round

    _connected()
    app = current_app._get_current_object()  # type: ignore[attr-defined]
    interval = app.config["OUTBOX_POLL_SECONDS"]
    while True:
        done = run_round(app)
        for name in done["periodic"]:  # type: ignore[attr-defined]
            click.echo(f"定期処理 {name} を実行しました")
        if done["queued"]:
            click.echo(f"{done['queued']} 件の処理を実行しました")
        if done.get("mail"):
            click.echo(f"{done['mail']} 通送信しました")
        if once:
            return
        time.sleep(interval)


def referenced_keys(session: Session) -> set[str]:
    """Every storage key a row holds: document revisions, page images, certificates (every version),
    usage-request PDFs."""
    from sqlalchemy import select

    from portal.contracts.models import CertificateRevision, Contract, DocumentRevision, PageImage
    from portal.usage_requests.models import UsageRequest

    keys: set[str] = set()
    for column in (DocumentRevision.storage_key, PageImage.storage_key, Contract.certificate_key,
                   CertificateRevision.storage_key, UsageRequest.pdf_key):
        keys.update(key for key in session.scalars(select(column)) if key)
    return keys


@storage_cli.command("gc")
@click.option("--dry-run", "mode", flag_value="dry-run", help="削除せずに一覧を表示する")
@click.option("--delete", "mode", flag_value="delete", help="一覧のファイルを削除する")
def storage_gc(mode: str | None) -> None:
    """Find stored files no row references (older than an hour): list them, or remove them (logged)."""
    from portal.audit.actions import AuditAction
    from portal.audit.service import SYSTEM, record
    from portal.storage import StorageError, get_store
    from portal.storage.gc import find_orphans, remove_orphans

    if mode is None:
        click.echo("エラー: --dry-run（一覧のみ）か --delete（削除）を指定してください。", err=True)
        sys.exit(2)
    _connected()
    session = db.db()
    store = get_store()
    now = clock.now()
    try:
        orphans = find_orphans(store, referenced_keys(session), now=now)
    except StorageError as exc:
        click.echo(f"エラー: 保存先を一覧できませんでした: {exc}", err=True)
        sys.exit(1)
    for orphan in orphans:
        kind = "書き込み途中で残ったファイル" if orphan.is_partial_write else "どの記録からも参照されていないファイル"
        click.echo(f"{orphan.name}\t{orphan.modified_at.astimezone(clock.JST):%Y-%m-%d %H:%M}\t{kind}")
    if mode == "dry-run":
        click.echo(f"{len(orphans)} 件（--delete で削除します）。")
        return
    removed = remove_orphans(store, orphans)
    record(session, actor=SYSTEM, action=AuditAction.STORAGE_GC_DELETED, now=now, count=removed,
           names=[orphan.name for orphan in orphans])
    session.commit()
    click.echo(f"{removed} 件を削除しました。")


def register(app: Flask) -> None:
    from portal.auth.cli import api_tokens_cli

    app.cli.add_command(api_tokens_cli)
    app.cli.add_command(db_cli)
    app.cli.add_command(users_cli)
    app.cli.add_command(storage_cli)
    app.cli.add_command(init_command)
    app.cli.add_command(worker_command)
