"""flask --app app backup create|list|verify|restore|prune|keygen."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import click
from flask import current_app
from flask.cli import AppGroup

from portal import clock
from portal.audit.actions import AuditAction
from portal.audit.service import Actor, record
from portal.backup import runs, service
from portal.db import run_transaction
from portal.formatting import jst

backup_cli = AppGroup("backup", help="バックアップの作成・一覧・検証・復元・世代整理")
CLI_ACTOR = Actor("system", "flask backup")

key_file_option = click.option(
    "--key-file", default=None,
    help="バックアップ鍵（パスフレーズ）のファイル。省略時は PORTAL_BACKUP_PASSPHRASE(_FILE)")
dir_option = click.option("--dir", "directory", type=click.Path(file_okay=False), default=None,
                          help="バックアップの保存先（省略時は PORTAL_BACKUP_DIR）")


def _fail(message: str, status: int = 1) -> None:
    click.echo(f"エラー: {message}", err=True)
    sys.exit(status)


def _directory(directory: str | None) -> Path:
    return Path(directory or current_app.config["BACKUP_DIR"])


def _secret(key_file: str | None, directory: Path | None) -> bytes:
    try:
        return service.read_secret(key_file=key_file, configured=current_app.config.get("BACKUP_PASSPHRASE"),
                                   backup_dir=directory)
    except service.BackupError as exc:
        _fail(exc.message, 2)
        raise AssertionError("unreachable") from None


def _mb(size: int) -> str:
    return f"{size / 1048576:,.1f} MB"


@backup_cli.command("create")
@click.option("--to", "to", type=click.Path(file_okay=False), default=None, help="保存先（省略時は PORTAL_BACKUP_DIR）")
@key_file_option
def create(to: str | None, key_file: str | None) -> None:
    """Make a backup now (database, documents, page images, PKI, keys), read it back and record it."""
    into = _directory(to)
    secret = _secret(key_file, into)
    app = current_app._get_current_object()  # type: ignore[attr-defined]
    try:
        info, problems = runs.create_and_record(app.extensions["portal.session_factory"], app.config,
                                                app.instance_path, into=into, secret=secret, trigger="command",
                                                actor=CLI_ACTOR)
    except service.BackupError as exc:
        _fail(exc.message)
        return
    counts = info.manifest["counts"]
    click.echo(f"バックアップ {info.name} を作成しました（{_mb(info.size_bytes)}、{info.path}）。")
    click.echo(f"  契約 {counts['contracts']} 件、文書 {counts['documents']} 件、操作ログ {counts['audit_events']} 件")
    if problems:
        _fail("読み戻しの検証で問題が見つかりました: " + " / ".join(problems))
    click.echo("  読み戻して検証しました: 問題はありません。")


@backup_cli.command("list")
@dir_option
def list_command(directory: str | None) -> None:
    """List the backups (newest first) with their size and the generations that keep them."""
    from portal.backup.rotation import to_keep

    into = _directory(directory)
    backups = service.list_backups(into)
    if not backups:
        click.echo(f"バックアップはありません（{into}）。")
        return
    config = current_app.config
    kept = to_keep(backups, lambda info: info.created_at, runs.settings_keep(config), runs.zone(config))
    for index, info in enumerate(backups):
        reasons = "・".join(kept.get(index, [])) or "整理の対象"
        click.echo(f"{info.name}  {jst(info.created_at)}  {_mb(info.size_bytes):>12}  {reasons}")


@backup_cli.command("verify")
@click.argument("name")
@dir_option
@key_file_option
def verify(name: str, directory: str | None, key_file: str | None) -> None:
    """Decrypt every part of backup NAME and compare it with the manifest; exit 1 on any problem."""
    into = _directory(directory)
    try:
        path = service.backup_path(into, name)
    except service.BackupError as exc:
        _fail(exc.message)
        return
    manifest, problems = service.verify_backup(path, _secret(key_file, into))
    factory = current_app.extensions["portal.session_factory"]
    run_transaction(factory, lambda s: runs.record_verification(s, path.name, problems, actor=CLI_ACTOR,
                                                                now=clock.now()))
    if problems:
        for problem in problems:
            click.echo(f"問題: {problem}", err=True)
        _fail(f"バックアップ {path.name} は検証に失敗しました。復元には使えません。")
    assert manifest is not None
    click.echo(f"バックアップ {path.name}: {len(manifest['parts'])} 個の部分すべてを復号し、SHA-256 が一致しました。")


@backup_cli.command("restore")
@click.argument("name")
@click.option("--into", "into", required=True, type=click.Path(file_okay=False),
              help="復元先の instance ディレクトリ（空であること）")
@click.option("--database", default=None, help="復元先のデータベース URL（PostgreSQL では必須。空のデータベース）")
@click.option("--force", is_flag=True, help="空でない復元先を上書きする")
@click.option("--skip-signatures", is_flag=True, help="復元後の署名検証を省く（件数・復号・検索は確認する）")
@click.option("--store", type=click.Choice(["local", "configured"]), default="local", show_default=True,
              help="文書の復元先: local は復元先の files ディレクトリ、configured はこの設定の保存先"
                   "（PORTAL_STORAGE_*、例えば新しい S3 バケット。空であること）")
@dir_option
@key_file_option
def restore(name: str, into: str, database: str | None, force: bool, skip_signatures: bool, store: str,
            directory: str | None, key_file: str | None) -> None:
    """Restore backup NAME into an empty instance directory and database, then check what came back."""
    from portal.backup import checks

    source = _directory(directory)
    try:
        path = service.backup_path(source, name)
        secret = _secret(key_file, source)
        _, manifest = service.open_backup(path, secret)
        storage = ({key: value for key, value in current_app.config.items() if key.startswith("STORAGE_")}
                   if store == "configured" else None)
        target = service.default_target(manifest, Path(into), database, storage)
        service.restore_backup(path, secret, target, force=force,
                               pg_restore=current_app.config.get("BACKUP_PG_RESTORE") or "pg_restore")
    except (service.BackupInvalid, service.BackupFormatError) as exc:
        for problem in getattr(exc, "problems", [str(exc)]):
            click.echo(f"問題: {problem}", err=True)
        _fail("バックアップに問題があるため復元しませんでした（復元先は変更していません）。")
        return
    except service.BackupError as exc:
        _fail(exc.message)
        return
    shown = target.database_url.split("@")[-1]
    click.echo(f"{path.name} を {target.instance} に復元しました（データベース: {shown}、"
               f"文書: {target.store_description()}）。確認しています…")
    secrets = _restored_secrets(target.instance)
    restored = checks.restored_app(target.instance, target.database_url, secrets, target.storage)
    report = checks.check_restored(restored, manifest, signatures=not skip_signatures)
    _print_report(report)
    _record_restore(restored, path.name, report)
    restored.extensions["portal.engine"].dispose()
    if not report.ok:
        _fail("復元後の確認で問題が見つかりました。")
    click.echo("復元後の確認: すべて問題ありません。")


def _restored_secrets(instance: Path) -> dict[str, str]:
    return {key: (instance / filename).read_text().strip()
            for key, filename in service.SECRET_NAMES.items() if (instance / filename).exists()}


def _print_report(report: Any) -> None:
    click.echo(f"  保存ファイル {report.files_checked} 件を復号しました。")
    pdfsig = ("、pdfsig でも確認しました。" if report.pdfsig_used
              else "（pdfsig がないため pdfsig の確認は省きました）。")
    click.echo(f"  署名 {report.signatures_verified} 個（文書 {report.documents_verified} 件）を"
               f"ポータルの検証器で確認しました{pdfsig}")
    click.echo(f"  検索 {report.searches_checked} 件の結果を比べました。"
               + (" 操作ログのハッシュチェーンを検証しました。" if report.audit_chain_checked else ""))
    for problem in report.problems:
        click.echo(f"問題: {problem}", err=True)


def _record_restore(app: Any, name: str, report: Any) -> None:
    factory = app.extensions["portal.session_factory"]
    with app.app_context():
        run_transaction(factory, lambda s: record(
            s, actor=CLI_ACTOR, action=AuditAction.BACKUP_RESTORED, subject=("backup", name), now=clock.now(),
            ok=report.ok, problems=report.problems[:20], files=report.files_checked,
            signatures=report.signatures_verified))


@backup_cli.command("prune")
@dir_option
@click.option("--dry-run", is_flag=True, help="削除せずに、削除するものを表示する")
def prune(directory: str | None, dry_run: bool) -> None:
    """Delete the backups that no daily, monthly or yearly generation keeps."""
    into = _directory(directory)
    config = current_app.config
    kept, deleted = service.prune(into, runs.settings_keep(config), runs.zone(config), dry_run=dry_run)
    for info in deleted:
        click.echo(f"{'削除予定' if dry_run else '削除'}: {info.name}")
    if deleted and not dry_run:
        factory = current_app.extensions["portal.session_factory"]
        run_transaction(factory, lambda s: record(s, actor=CLI_ACTOR, action=AuditAction.BACKUP_PRUNED,
                                                  subject=("backup", ""), directory=str(into), now=clock.now(),
                                                  deleted=[info.name for info in deleted], kept=len(kept)))
    click.echo(f"{len(kept)} 件を残し、{len(deleted)} 件を{'削除します' if dry_run else '削除しました'}。")


@backup_cli.command("keygen")
@click.argument("path", type=click.Path(dir_okay=False))
def keygen(path: str) -> None:
    """Write a new random backup key to PATH (mode 0600). Keep it away from the backups."""
    try:
        service.new_key_file(Path(path))
    except service.BackupError as exc:
        _fail(exc.message)
    click.echo(f"バックアップ鍵を {path} に作成しました。"
               "バックアップとは別の場所（金庫・別サーバー）に保管してください。")
