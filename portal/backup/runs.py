"""Backups as the portal remembers them: a BackupRun row and an audit event per backup, the worker's
daily backup, and the summary the admin page shows."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from flask import Flask, current_app
from sqlalchemy import select
from sqlalchemy.orm import Session

from portal import clock
from portal.audit.actions import AuditAction
from portal.audit.service import SYSTEM, Actor, record
from portal.backup import service
from portal.backup.models import BackupRun, BackupStatus
from portal.backup.rotation import Keep
from portal.jobs.models import JobLease

log = logging.getLogger(__name__)
JOB_NAME = "backup-daily"
STALE_AFTER = timedelta(hours=26)  # a daily backup plus the time one may take


def settings_keep(config: Any) -> Keep:
    return Keep(int(config["BACKUP_KEEP_DAILY"]), int(config["BACKUP_KEEP_MONTHLY"]), int(config["BACKUP_KEEP_YEARLY"]))


def zone(config: Any) -> ZoneInfo:
    return ZoneInfo(str(config["TIMEZONE"]))


def daily_offset_seconds(config: Any) -> int | None:
    """BACKUP_TIME (HH:MM in TIMEZONE) as seconds after 00:00 UTC; None when no automatic backup.

    Raises ValueError for a time that cannot be read.
    """
    text = str(config.get("BACKUP_TIME") or "").strip()
    if not text:
        return None
    at = time.fromisoformat(text)
    local = datetime.combine(date(2026, 1, 15), at, zone(config))  # a fixed day: JST has no DST
    utc = local.astimezone(ZoneInfo("UTC"))
    return utc.hour * 3600 + utc.minute * 60


def create_and_record(session_factory: Any, config: Any, instance_path: str, *, into: Path, secret: bytes,
                      trigger: str, actor: Actor = SYSTEM) -> tuple[service.BackupInfo, list[str]]:
    """Create a backup, read it back (verify), and record both; returns the backup and verify's problems.

    The BackupRun row and the audit event are written in a short transaction of their own after the
    backup (never one held open while copying). Raises BackupError after recording the failure.
    """
    from portal.db import run_transaction

    started = clock.now()
    sources = service.BackupSources.from_config(config, instance_path)
    try:
        info = service.create_backup(sources, into=into, secret=secret, now=started)
    except service.BackupError as exc:
        message = exc.message
        run_transaction(session_factory, lambda s: record_failure(s, message, trigger=trigger, actor=actor,
                                                                  started=started, into=into))
        raise
    _, problems = service.verify_backup(info.path, secret)
    run_transaction(session_factory, lambda s: record_success(s, info, problems, trigger=trigger, actor=actor,
                                                              started=started))
    return info, problems


def record_failure(session: Session, message: str, *, trigger: str, actor: Actor, started: datetime,
                   into: Path) -> BackupRun:
    now = clock.now()
    run = BackupRun(name="", directory=str(into), trigger=trigger, status=BackupStatus.FAILED, started_at=started,
                    finished_at=now, size_bytes=0, counts={}, error=message[:4000], verification_problems="")
    session.add(run)
    session.flush()
    record(session, actor=actor, action=AuditAction.BACKUP_FAILED, subject=run, now=now, error=message[:500])
    return run


def record_success(session: Session, info: service.BackupInfo, problems: list[str], *, trigger: str, actor: Actor,
                   started: datetime) -> BackupRun:
    now = clock.now()
    run = BackupRun(name=info.name, directory=str(info.path.parent), trigger=trigger, status=BackupStatus.SUCCEEDED,
                    started_at=started, finished_at=now, size_bytes=info.size_bytes,
                    counts=info.manifest.get("counts", {}), error="", verified_at=now, verification_ok=not problems,
                    verification_problems="\n".join(problems))
    session.add(run)
    session.flush()
    record(session, actor=actor, action=AuditAction.BACKUP_CREATED, subject=run, now=now, name=info.name,
           size=info.size_bytes, verified=not problems,
           **{key: value for key, value in run.counts.items() if key != "last_audit_hash"})
    return run


def record_verification(session: Session, name: str, problems: list[str], *, actor: Actor, now: datetime) -> None:
    """Note the result of `backup verify` on the backup's row (if this portal made it) and in the log."""
    run = session.scalar(select(BackupRun).where(BackupRun.name == name).order_by(BackupRun.id.desc()).limit(1))
    if run is not None:
        run.verified_at, run.verification_ok, run.verification_problems = now, not problems, "\n".join(problems)
    record(session, actor=actor, action=AuditAction.BACKUP_VERIFIED, subject=("backup", name), now=now,
           ok=not problems, problems=problems[:20])


def scheduled_backup(session: Session) -> None:
    """The worker's daily backup: create, verify, prune. A failure is recorded (the admin page warns)."""
    app = current_app._get_current_object()  # type: ignore[attr-defined]
    config = app.config
    into = Path(config["BACKUP_DIR"])
    factory = app.extensions["portal.session_factory"]
    try:
        secret = service.read_secret(key_file=None, configured=config.get("BACKUP_PASSPHRASE"), backup_dir=into)
    except service.BackupError as exc:
        record_failure(session, exc.message, trigger="schedule", actor=SYSTEM, started=clock.now(), into=into)
        return
    try:
        create_and_record(factory, config, app.instance_path, into=into, secret=secret, trigger="schedule")
    except service.BackupError as exc:  # recorded; the admin page warns
        log.error("scheduled backup failed: %s", exc.message)
        return
    kept, deleted = service.prune(into, settings_keep(config), zone(config))
    if deleted:
        record(session, actor=SYSTEM, action=AuditAction.BACKUP_PRUNED, subject=("backup", ""), directory=str(into),
               deleted=[info.name for info in deleted], kept=len(kept))


def register(app: Flask) -> None:
    """The daily backup job, when BACKUP_TIME is set (it still needs the backup key to succeed)."""
    from portal.jobs import register_job

    offset = daily_offset_seconds(app.config)
    if offset is not None:
        register_job(app, JOB_NAME, scheduled_backup, every_seconds=24 * 3600, offset_seconds=offset)


@dataclass(frozen=True)
class BackupOverview:
    last: BackupRun | None
    last_success: BackupRun | None
    next_run_at: datetime | None
    recent: list[BackupRun]
    warnings: list[str]


def overview(session: Session, config: Any, *, now: datetime) -> BackupOverview:
    """What the admin page shows: the last backup, its size and verification, the next one, warnings."""
    recent = list(session.scalars(select(BackupRun).order_by(BackupRun.started_at.desc(), BackupRun.id.desc())
                                  .limit(10)))
    last = recent[0] if recent else None
    last_success = next((run for run in recent if run.status is BackupStatus.SUCCEEDED), None)
    if last_success is None:
        last_success = session.scalar(select(BackupRun).where(BackupRun.status == BackupStatus.SUCCEEDED)
                                      .order_by(BackupRun.started_at.desc()).limit(1))
    lease = session.get(JobLease, JOB_NAME)
    warnings = []
    if daily_offset_seconds(config) is None:
        warnings.append("自動バックアップが設定されていません（PORTAL_BACKUP_TIME）。")
    elif not config.get("BACKUP_PASSPHRASE"):
        warnings.append("バックアップ鍵が設定されていないため、自動バックアップを作成できません"
                        "（PORTAL_BACKUP_PASSPHRASE_FILE）。")
    if last is not None and last.status is BackupStatus.FAILED:
        warnings.append(f"最後のバックアップが失敗しました: {last.error}")
    if last_success is None:
        warnings.append("バックアップがまだありません。")
    elif now - last_success.finished_at > STALE_AFTER:
        warnings.append("最後に成功したバックアップから 1 日以上たっています。")
    if last_success is not None and last_success.verification_ok is False:
        warnings.append("最後のバックアップの検証で問題が見つかりました。")
    offset = daily_offset_seconds(config)
    next_run_at = lease.next_run_at if lease else None
    if next_run_at is None and offset is not None:
        from portal.jobs.periodic import next_period_start

        next_run_at = next_period_start(now, 24 * 3600, offset)
    return BackupOverview(last, last_success, next_run_at, recent, warnings)
