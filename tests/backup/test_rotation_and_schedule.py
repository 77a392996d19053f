"""Rotation keeps exactly the configured daily, monthly and yearly generations; the worker's daily
backup runs at the configured time, once across two worker processes; the admin page shows the
last backup and warns when it is old, failed, or cannot be made."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from pathlib import Path

from sqlalchemy import select

from portal import clock
from portal.audit.models import AuditEvent
from portal.backup import runs, service
from portal.backup.models import BackupRun, BackupStatus
from portal.backup.rotation import Keep, to_keep
from portal.clock import JST
from portal.jobs import run_due_jobs
from portal.jobs.models import JobLease
from portal.jobs.periodic import next_period_start
from tests.conftest import reread
from tests.factories import login_as, make_staff
from tests.jobs.test_worker_processes import _finish, _start_workers


def _daily_for_years(end: date, years: int) -> list[datetime]:
    days = (end - end.replace(year=end.year - years)).days
    return [datetime.combine(end - timedelta(days=n), datetime.min.time(), JST).replace(hour=2, minute=30)
            for n in range(days + 1)]


def test_rotation_keeps_exactly_the_newest_of_the_last_7_days_12_months_and_10_years():
    backups = _daily_for_years(date(2026, 12, 2), 12)
    kept = sorted(backups[i].date() for i in to_keep(backups, lambda b: b, Keep(7, 12, 10), JST))
    daily = [date(2026, 12, d) for d in (1, 2)] + [date(2026, 11, d) for d in range(26, 31)]
    monthly = [date(2026, 12, 2)] + [(date(2026, m + 1, 1) - timedelta(days=1)) for m in range(1, 12)]
    yearly = [date(2026, 12, 2)] + [date(y, 12, 31) for y in range(2017, 2026)]
    assert kept == sorted(set(daily) | set(monthly) | set(yearly))
    # today's backup is also this month's and this year's newest; 30 November is November's newest
    assert len(kept) == 7 + 10 + 9


def test_rotation_keeps_several_backups_of_one_day_as_one_generation():
    base = datetime(2026, 12, 2, 1, 0, tzinfo=UTC)
    backups = [base + timedelta(hours=h) for h in range(5)]  # five backups the same JST day
    assert list(to_keep(backups, lambda b: b, Keep(7, 12, 10), JST)) == [4]


def test_prune_deletes_what_no_generation_keeps(app, cli, key_file):
    directory = Path(app.config["BACKUP_DIR"])
    secret = key_file.read_bytes().strip()
    sources = service.BackupSources.from_config(app.config, app.instance_path)
    moments = [datetime(2024, 5, 3, 17, 30, tzinfo=UTC), datetime(2025, 11, 30, 17, 30, tzinfo=UTC),
               datetime(2026, 10, 20, 17, 30, tzinfo=UTC), datetime(2026, 11, 20, 17, 30, tzinfo=UTC),
               datetime(2026, 11, 30, 17, 30, tzinfo=UTC), datetime(2026, 12, 1, 17, 30, tzinfo=UTC),
               datetime(2026, 12, 1, 18, 30, tzinfo=UTC)]
    for moment in moments:
        service.create_backup(sources, into=directory, secret=secret, now=moment)
    app.config.update(BACKUP_KEEP_DAILY=2, BACKUP_KEEP_MONTHLY=2, BACKUP_KEEP_YEARLY=2)

    dry = cli("prune", "--dry-run")
    assert dry.exit_code == 0, dry.output
    assert len(list(directory.iterdir())) == len(moments)
    result = cli("prune")
    assert result.exit_code == 0, result.output
    left = sorted(p.name for p in directory.iterdir())
    # daily: 12-02 JST (18:30 UTC is the newest of that day), 12-01 JST; monthly: December, November
    # (11-30 17:30 UTC is 12-01 JST, so November's newest is 11-20); yearly: 2026, 2025
    assert left == ["keiyaku-20251130-173000", "keiyaku-20261120-173000", "keiyaku-20261130-173000",
                    "keiyaku-20261201-183000"]
    assert "4 件を残し、3 件を削除しました" in result.output


def test_the_daily_backup_is_scheduled_at_the_configured_time(app):
    app.config.update(BACKUP_TIME="02:30")
    offset = runs.daily_offset_seconds(app.config)
    assert offset == 17 * 3600 + 30 * 60  # 02:30 JST is 17:30 UTC the day before
    now = datetime(2026, 12, 2, 5, 0, tzinfo=UTC)  # 14:00 JST
    assert next_period_start(now, 86400, offset) == datetime(2026, 12, 2, 17, 30, tzinfo=UTC)


def test_two_worker_processes_make_the_daily_backup_once(app, session, tmp_path, key_file):
    passphrase = key_file.read_text().strip()
    backup_dir = tmp_path / "daily"
    session.add(JobLease(name=runs.JOB_NAME, next_run_at=clock.now() - timedelta(seconds=1), holder="", last_error="",
                         runs=0))
    session.commit()
    processes = _start_workers(app, tmp_path, seconds=8, BACKUP_DIR=str(backup_dir), BACKUP_PASSPHRASE=passphrase,
                               BACKUP_TIME="02:30", TIMEZONE="Asia/Tokyo", BACKUP_KEEP_DAILY=7,
                               BACKUP_KEEP_MONTHLY=12, BACKUP_KEEP_YEARLY=10, STORAGE_DIR=app.config["STORAGE_DIR"])
    outputs = _finish(processes)
    assert all(p.returncode == 0 for p in processes), outputs
    backups = [p.name for p in backup_dir.iterdir()]
    assert len(backups) == 1, (backups, outputs)
    rows = reread(session).scalars(select(BackupRun)).all()
    assert [(r.name, r.status, r.trigger, r.verification_ok) for r in rows] == [
        (backups[0], BackupStatus.SUCCEEDED, "schedule", True)]
    assert len(session.scalars(select(AuditEvent).where(AuditEvent.action == "system:backup:created")).all()) == 1
    lease = session.get(JobLease, runs.JOB_NAME)
    assert lease.runs == 1
    assert lease.last_error == ""
    assert lease.next_run_at.astimezone(JST).strftime("%H:%M") == "02:30"
    assert lease.next_run_at > clock.now()


def test_the_daily_backup_without_a_key_is_recorded_as_failed_and_the_page_warns(app, session, client):
    app.config.update(BACKUP_TIME="02:30", BACKUP_PASSPHRASE="")
    from portal.jobs import register_job

    register_job(app, runs.JOB_NAME, runs.scheduled_backup, every_seconds=86400, offset_seconds=0)
    session.add(JobLease(name=runs.JOB_NAME, next_run_at=clock.now() - timedelta(seconds=1), holder="", last_error="",
                         runs=0))
    session.commit()
    with app.app_context():
        assert runs.JOB_NAME in run_due_jobs()
    [run] = reread(session).scalars(select(BackupRun)).all()
    assert run.status is BackupStatus.FAILED
    assert "バックアップ鍵がありません" in run.error
    admin = make_staff(session, role="admin", email="admin@pref.example.jp")
    login_as(client, admin)
    page = client.get("/admin/backups").get_data(as_text=True)
    assert "最後のバックアップが失敗しました" in page
    assert "バックアップ鍵が設定されていないため" in page
    assert "バックアップがまだありません" in page


def test_the_admin_page_shows_the_last_backup_and_warns_when_it_is_a_day_old(app, session, client, cli, key_file):
    admin = make_staff(session, role="admin", email="admin@pref.example.jp")
    login_as(client, admin)
    app.config.update(BACKUP_TIME="02:30", BACKUP_PASSPHRASE="configured passphrase")
    assert cli("create", "--key-file", str(key_file)).exit_code == 0
    run = reread(session).scalar(select(BackupRun))
    page = client.get("/admin/backups").get_data(as_text=True)
    assert run.name in page
    assert "問題なし" in page
    assert f"{run.size_bytes / 1048576:,.1f} MB" in page
    assert "次回の自動バックアップ" in page
    assert "02:30" in page
    assert "1 日以上" not in page
    partial = client.get("/admin/backups", headers={"HX-Request": "true"})
    assert partial.get_data(as_text=True).lstrip().startswith('<section class="card" id="backup-status">')

    run.finished_at = run.started_at = clock.now() - timedelta(hours=27)
    session.commit()
    page = client.get("/admin/backups").get_data(as_text=True)
    assert "最後に成功したバックアップから 1 日以上たっています" in page
