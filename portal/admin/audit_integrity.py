"""操作ログの改ざん検知: the admin page showing the last checkpoint and its verification, the daily
checkpoint job and `flask --app app audit checkpoint|verify`.

The wiring between the operation log (portal.audit, a leaf) and the configured TSA (portal.signing).
"""

from __future__ import annotations

import sys
from datetime import datetime

import click
from flask import Flask, render_template
from flask.cli import AppGroup
from flask.typing import ResponseReturnValue
from flask_login import current_user
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from portal import clock
from portal.admin import bp
from portal.audit import chain, checkpoints
from portal.audit.models import AuditCheckpoint
from portal.audit.service import Actor
from portal.auth.models import Role
from portal.db import db
from portal.errors import DomainError
from portal.jobs.models import JobLease
from portal.security import request_info, role_required

JOB_NAME = "audit-checkpoint"
audit_cli = AppGroup("audit", help="操作ログの改ざん検知（ハッシュ連鎖とタイムスタンプ付きチェックポイント）")


def create_checkpoint(session: Session, *, now: datetime) -> tuple[AuditCheckpoint, chain.Verification]:
    """Verify the chain and store its head with a timestamp from the configured TSA.

    Raises TimestampUnavailable when the TSA cannot be reached (nothing is stored).
    """
    from portal.signing import service as signing_service
    from portal.signing import timestamps

    return checkpoints.create_checkpoint(
        session, timestamp=timestamps.timestamp_digest, token_time=timestamps.token_time,
        check_token=timestamps.check_token, tsa=signing_service.get_context().tsa.description, now=now)


def verify(session: Session) -> chain.Verification:
    from portal.signing import timestamps

    return chain.verify(session, check_token=timestamps.check_token)


@bp.get("/audit-integrity")
@role_required(Role.ADMIN, Role.AUDITOR)
def integrity() -> ResponseReturnValue:
    rows = checkpoints.view_checkpoints(db(), viewer=Actor.staff(current_user), now=clock.now(),
                                        request=request_info())
    lease = db().scalar(select(JobLease).where(JobLease.name == JOB_NAME))
    db().commit()
    return render_template("admin/audit_integrity.html", checkpoints=rows, last=rows[0] if rows else None,
                           job_error=lease.last_error if lease else "")


@audit_cli.command("checkpoint")
def checkpoint_command() -> None:
    """Verify the chain and store its head with an RFC 3161 timestamp (exit 1 if verification failed)."""
    from flask import current_app

    from portal.cli import _connected

    _connected()
    factory: sessionmaker[Session] = current_app.extensions["portal.session_factory"]
    with factory() as session:
        try:
            checkpoint, verification = create_checkpoint(session, now=clock.now())
        except DomainError as exc:
            click.echo(f"エラー: {exc.message}", err=True)
            sys.exit(2)
        session.commit()
    click.echo(f"チェックポイント #{checkpoint.id} を作成しました（通番 {checkpoint.head_seq}、"
               f"タイムスタンプ {checkpoint.timestamped_at.astimezone(clock.JST):%Y-%m-%d %H:%M:%S} JST）。")
    click.echo(verification.summary, err=not verification.is_ok)
    if not verification.is_ok:
        sys.exit(1)


@audit_cli.command("verify")
def verify_command() -> None:
    """Walk the chain and the checkpoints: exit 0 with a count, or 1 naming the first event found wrong."""
    from flask import current_app

    from portal.cli import _connected

    _connected()
    factory: sessionmaker[Session] = current_app.extensions["portal.session_factory"]
    with factory() as session:
        verification = verify(session)
    if verification.is_ok:
        click.echo(verification.summary)
        return
    click.echo(f"改ざんを検出しました: {verification.summary}", err=True)
    sys.exit(1)


def init_app(app: Flask) -> None:
    from portal.jobs import register_job

    app.cli.add_command(audit_cli)
    register_job(app, JOB_NAME, lambda session: create_checkpoint(session, now=clock.now()),
                 every_seconds=int(app.config["AUDIT_CHECKPOINT_SECONDS"]))
