"""A worker process for the multi-process tests: `python -m tests.jobs.worker_process CONFIG.json SECONDS`.

Creates the portal with the test app's settings, registers the probe job (every PROBE_SECONDS it
writes an audit row naming the period its lease was taken in) and runs worker rounds until SECONDS
have passed. Queued jobs (一括検証) are handled by the same rounds.
"""

from __future__ import annotations

import json
import sys
import time
from datetime import UTC
from pathlib import Path

from sqlalchemy.orm import Session

PROBE_SECONDS = 2
PROBE_ACTION = "test:periodic-probe"


def probe(session: Session) -> None:
    from portal.audit.service import SYSTEM, record
    from portal.jobs.models import JobLease

    lease = session.get(JobLease, "probe")
    assert lease is not None
    assert lease.last_started_at is not None
    period = int(lease.last_started_at.astimezone(UTC).timestamp() // PROBE_SECONDS)
    record(session, actor=SYSTEM, action=PROBE_ACTION, period=period, holder=lease.holder)


def main() -> None:
    from portal import create_app
    from portal.jobs import register_job
    from portal.jobs.worker import run_round

    config = json.loads(Path(sys.argv[1]).read_text(encoding="utf-8"))
    seconds = float(sys.argv[2])
    app = create_app({**config, "TESTING": False, "OUTBOX_WORKER": False})
    register_job(app, "probe", probe, every_seconds=PROBE_SECONDS)
    deadline = time.monotonic() + seconds
    with app.app_context():
        while time.monotonic() < deadline:
            run_round(app)
            time.sleep(0.05)


if __name__ == "__main__":
    main()
