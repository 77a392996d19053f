"""flask preservation verify --from DATE --to DATE: 一括検証 from cron, printing the counts."""

from __future__ import annotations

import click
from flask import Flask, current_app
from flask.cli import AppGroup
from sqlalchemy import func, select

from portal import clock
from portal.auth.models import Role, StaffUser
from portal.db import db
from portal.parsing import InvalidDate, parse_date
from portal.preservation import renewal, verification
from portal.preservation.models import VerificationRun


def _date(_ctx: click.Context, _param: click.Parameter, value: str) -> object:
    try:
        return parse_date(value)
    except InvalidDate as exc:
        raise click.BadParameter(exc.message) from None


@click.group("preservation", help="電子帳簿保存法: 一括検証など")
def group() -> None:
    pass


@group.command("verify", help="期間内に締結した契約の署名・タイムスタンプを一括検証します（失敗があれば終了コード1）")
@click.option("--from", "period_from", required=True, callback=_date,
              help="締結日（から）: 2025-04-01 / 令和7年4月1日")
@click.option("--to", "period_to", required=True, callback=_date, help="締結日（まで）")
@click.option("--as", "email", required=True, help="実行者として記録する監査担当・管理者のメールアドレス")
def verify_command(period_from: object, period_to: object, email: str) -> None:
    session = db()
    actor = session.scalar(select(StaffUser).where(func.lower(StaffUser.email) == email.lower()))
    if actor is None or actor.role not in (Role.AUDITOR, Role.ADMIN):
        raise click.ClickException(f"{email} は監査担当・管理者のアカウントではありません。")
    run = verification.start_batch_verification(session, period_from=period_from, period_to=period_to,  # type: ignore[arg-type]
                                                actor=actor, now=clock.now())
    session.commit()
    verification.run_batch_verification(current_app._get_current_object(), run.id)  # type: ignore[attr-defined]
    session.expire_all()
    finished = session.get(VerificationRun, run.id)
    assert finished is not None
    click.echo(f"一括検証 #{finished.id}: {finished.status.label} 対象 {finished.total} 件 / 失敗 {finished.failed} 件")
    for result in run.results:
        if not result.is_valid:
            click.echo(f"  失敗 {result.contract_number} {result.filename}: {' / '.join(result.problems)}")
    if run.failed or run.error:
        raise SystemExit(1)


timestamps_group = AppGroup("timestamps", help="アーカイブタイムスタンプ（長期署名 B-LTA）の更新")


def _describe(state: renewal.DocumentTimestampState) -> str:
    newest = state.newest
    expiry = f"TSA 証明書 {newest.tsa_not_after:%Y-%m-%d} まで" if newest else "文書タイムスタンプなし"
    return f"{state.contract_number} {state.filename}（{expiry}）"


@timestamps_group.command("status", help="締結済み文書の最新の文書タイムスタンプと、更新が必要かを表示します")
def status_command() -> None:
    from portal.signing import service as signing

    context = signing.configure(current_app.config)
    states = renewal.timestamp_states(db(), current_app.config, context, now=clock.now())
    due = [s for s in states if s.is_due]
    blocked = [s for s in states if s.due_reasons and s.blocked]
    click.echo(f"締結済み文書・合意締結証明書 {len(states)} 件 / 更新が必要 {len(due)} 件"
               f" / 更新できない {len(blocked)} 件")
    for state in due:
        click.echo(f"  要更新 {_describe(state)}: {' / '.join(state.due_reasons)}")
    for state in blocked:
        click.echo(f"  保留 {_describe(state)}: {state.blocked}")


@timestamps_group.command("renew", help="更新が必要な文書に検証情報と新しい文書タイムスタンプを追加します"
                                        "（失敗があれば終了コード1）")
def renew_command() -> None:
    from portal.signing import service as signing

    context = signing.configure(current_app.config)
    run = renewal.renew_due(db(), current_app.config, context, now=clock.now())
    click.echo(f"確認 {run.checked} 件 / 更新 {len(run.renewed)} 件 / 保留 {len(run.blocked)} 件"
               f" / 失敗 {len(run.failed)} 件")
    for state in run.blocked:
        click.echo(f"  保留 {_describe(state)}: {state.blocked}")
    for state, message in run.failed:
        click.echo(f"  失敗 {_describe(state)}: {message}")
    if run.failed:
        raise SystemExit(1)


def register(app: Flask) -> None:
    app.cli.add_command(group)
    app.cli.add_command(timestamps_group)
