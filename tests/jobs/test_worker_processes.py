"""Two worker processes on one database: each periodic job runs once per period; when the worker
running a 一括検証 is killed, the other takes the run over and finishes it."""

from __future__ import annotations

import datetime as dt
import json
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

from sqlalchemy import select

from portal import clock
from portal.audit.models import AuditEvent
from portal.jobs.models import QueuedJob, QueuedJobStatus
from portal.preservation import verification
from portal.preservation.models import RunStatus, VerificationResult, VerificationRun
from portal.signing.pades import Approval, finalize, sign_approval
from tests.conftest import reread
from tests.jobs.worker_process import PROBE_ACTION, PROBE_SECONDS
from tests.pdfs import make_pdf
from tests.preservation.conftest import app_config, context, pki_dir, signing_settings, world  # noqa: F401
from tests.search.factories import make_contract

REPO = Path(__file__).resolve().parents[2]
WORKERS_OF = "KEIYAKU_TEST_WORKERS_OF"
SETTINGS = ("DATABASE_URL", "SECRET_KEY", "MASTER_KEY", "PKI_DIR", "STORAGE_DIR", "PUBLIC_BASE_URL", "AGENCY_NAME",
            "SERVICE_NAME", "ARGON2_TIME_COST", "ARGON2_MEMORY_KIB", "MAIL_SERVER")


def _start_workers(app: Any, tmp_path: Path, seconds: float, count: int = 2, **settings: Any) -> list[subprocess.Popen]:
    config = {key: app.config[key] for key in SETTINGS}
    config.update(INSTANCE_PATH=app.instance_path, **settings)
    path = tmp_path / "worker-config.json"
    path.write_text(json.dumps(config), encoding="utf-8")
    env = {**os.environ, "PYTHONPATH": str(REPO), WORKERS_OF: str(tmp_path)}
    env.pop("FLASK_RUN_FROM_CLI", None)
    return [subprocess.Popen([sys.executable, "-m", "tests.jobs.worker_process", str(path), str(seconds)],
                             cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
            for _ in range(count)]


def _processes_started_by_workers(tmp_path: Path) -> list[int]:
    """Processes still running with the environment _start_workers gave (the workers and their children)."""
    marker = f"{WORKERS_OF}={tmp_path}".encode()
    found = []
    for proc in Path("/proc").iterdir():
        try:
            environ = (proc / "environ").read_bytes()
        except OSError:  # not a process, or gone
            continue
        if proc.name.isdigit() and marker in environ.split(b"\0"):
            found.append(int(proc.name))
    return found


def _finish(processes: list[subprocess.Popen], timeout: float = 120) -> list[str]:
    outputs = []
    for process in processes:
        output, _ = process.communicate(timeout=timeout)
        outputs.append(output)
    return outputs


def test_two_worker_processes_run_each_periodic_job_once_per_period(app, session, tmp_path):
    processes = _start_workers(app, tmp_path, seconds=4 * PROBE_SECONDS + 3)
    outputs = _finish(processes)
    assert all(p.returncode == 0 for p in processes), outputs
    rows = reread(session).scalars(select(AuditEvent).where(AuditEvent.action == PROBE_ACTION)).all()
    periods = Counter(row.details["period"] for row in rows)
    assert len(periods) >= 3, (periods, outputs)
    assert set(periods.values()) == {1}, periods  # never twice in one period
    holders = {row.details["holder"].rsplit(":", 1)[0] for row in rows}
    assert len(holders) >= 1


def _signed(context: Any, text: str) -> bytes:  # noqa: F811
    approval = Approval("山田 太郎", "yamada@vendor.example.co.jp", dt.datetime(2026, 4, 1, tzinfo=dt.UTC))
    return finalize(sign_approval(make_pdf(text), approval, context=context), context=context)


def test_a_killed_workers_verification_run_is_taken_over_and_finished(app, session, world, context, tmp_path):  # noqa: F811
    documents = 12
    data = _signed(context, "keiyaku")
    for number in range(documents):
        make_contract(session, number=f"K-{number:03d}", department=world.department_a, created_by=world.staff_a,
                      transaction_date=dt.date(2026, 4, 10), amount=1_100_000, tax_amount=100_000,
                      documents={f"K-{number:03d}.pdf": data})
    with app.app_context():
        run = verification.start_batch_verification(session, period_from=dt.date(2026, 4, 1),
                                                    period_to=dt.date(2026, 4, 30), actor=world.auditor,
                                                    now=clock.now())
        session.commit()
    processes = _start_workers(app, tmp_path, seconds=90, JOB_HEARTBEAT_SECONDS=0.5, JOB_STALE_SECONDS=3)
    killed = None
    deadline = time.monotonic() + 60
    while killed is None and time.monotonic() < deadline:
        job = reread(session).scalar(select(QueuedJob).where(QueuedJob.kind == verification.VERIFY_JOB))
        progress = session.get(VerificationRun, run.id)
        if job is not None and job.status is QueuedJobStatus.RUNNING and progress.processed >= 1:
            pid = int(job.claimed_by.split(":")[1])
            killed = next(p for p in processes if p.pid == pid)
            killed.send_signal(signal.SIGKILL)
        time.sleep(0.05)
    assert killed is not None, "no worker started the run"
    survivor = next(p for p in processes if p is not killed)

    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        finished = reread(session).get(VerificationRun, run.id)
        if finished.status is not RunStatus.RUNNING:
            break
        time.sleep(0.2)
    survivor.send_signal(signal.SIGTERM)
    _finish(processes)
    deadline = time.monotonic() + 10
    while _processes_started_by_workers(tmp_path) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert _processes_started_by_workers(tmp_path) == []  # the killed worker's verifying processes ended too

    finished = reread(session).get(VerificationRun, run.id)
    assert finished.status is RunStatus.FINISHED, finished.error
    assert (finished.total, finished.processed, finished.failed) == (documents, documents, 0)
    results = session.scalars(select(VerificationResult).where(VerificationResult.run_id == run.id)).all()
    assert len({r.revision_id for r in results}) == len(results) == documents  # resumed, nothing twice
    job = session.scalar(select(QueuedJob).where(QueuedJob.kind == verification.VERIFY_JOB))
    assert job.status is QueuedJobStatus.DONE
    assert job.attempts == 2
    assert str(survivor.pid) in job.claimed_by
