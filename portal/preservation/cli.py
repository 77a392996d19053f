"""flask preservation verify --from DATE --to DATE: 一括検証 from cron, printing the counts."""

from __future__ import annotations

import click
from flask import Flask, current_app
from sqlalchemy import func, select

from portal import clock
from portal.auth.models import Role, StaffUser
from portal.db import db
from portal.parsing import InvalidDate, parse_date
from portal.preservation import verification
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


def register(app: Flask) -> None:
    app.cli.add_command(group)
