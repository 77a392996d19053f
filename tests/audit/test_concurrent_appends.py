"""Several processes append at the same moment and the log stays one valid chain: two processes
writing directly (SQLite and PostgreSQL), and three gunicorn workers logging failed logins."""

from __future__ import annotations

import itertools
import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

from flask import Flask
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from portal.audit.actions import AuditAction
from tests.audit.helpers import EVENTS, chain_rows, flask_audit
from tests.conftest import test_config as portal_test_config
from tests.services.live import REPO, GunicornServer, HttpClient

PER_PROCESS = 60


def test_two_processes_appending_at_once_keep_one_chain(app: Flask, session: Session, database_url: str,
                                                        tmp_path: Path) -> None:
    config = {k: v for k, v in portal_test_config(database_url, tmp_path / "instance").items()
              if isinstance(v, str | int | float | bool | type(None))}
    config_path = tmp_path / "config.json"
    config_path.write_text(json.dumps(config), encoding="utf-8")
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    workers = [subprocess.Popen([sys.executable, "-m", "tests.audit.append_worker", str(config_path),
                                 str(PER_PROCESS), label], cwd=REPO, env=env, stderr=subprocess.PIPE)
               for label in ("left", "right")]
    ready = [tmp_path / f"ready-{label}" for label in ("left", "right")]
    deadline = time.monotonic() + 60
    while not all(path.exists() for path in ready) and time.monotonic() < deadline:
        time.sleep(0.01)
    (tmp_path / "start").touch()
    for worker in workers:
        _, stderr = worker.communicate(timeout=180)
        assert worker.returncode == 0, stderr.decode()[-3000:]

    rows = chain_rows(session)
    assert len(rows) == 2 * PER_PROCESS
    assert [row.chain_seq for row in rows] == list(range(1, 2 * PER_PROCESS + 1))
    labels = [row.details["label"] for row in rows]
    assert labels.count("left") == labels.count("right") == PER_PROCESS
    switches = sum(a != b for a, b in itertools.pairwise(labels))
    assert switches >= 2, "the processes did not interleave"  # strict alternation is the most interleaved case
    result = flask_audit(app, "verify")
    assert result.exit_code == 0, result.output
    assert f"操作ログ {2 * PER_PROCESS} 件" in result.output


def test_three_gunicorn_workers_logging_at_once_keep_one_chain(app: Flask, session: Session, database_url: str,
                                                               tmp_path: Path) -> None:
    requests = 36
    config = portal_test_config(database_url, tmp_path / "instance")
    failures: list[str] = []
    with GunicornServer(config, processes=3) as server:
        browsers = [HttpClient(server.url) for _ in range(requests)]
        tokens = [browser.csrf("/login") for browser in browsers]
        start = threading.Barrier(requests)

        def attempt(number: int) -> None:
            try:
                start.wait()
                reply = browsers[number].post("/login", {"csrf_token": tokens[number],
                                                         "email": f"nobody{number}@example.jp", "password": "x"})
                if reply.status >= 500:
                    failures.append(f"{reply.status}: {reply.text[:200]}")
            except Exception as exc:
                failures.append(repr(exc))

        threads = [threading.Thread(target=attempt, args=(number,)) for number in range(requests)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=120)
        assert not server.errors, server.errors[:1]
    assert not failures, failures[:3]

    rows = chain_rows(session)
    failed = session.scalar(select(func.count()).select_from(EVENTS).where(
        EVENTS.c.action == AuditAction.LOGIN_FAILED.value))
    assert failed == requests
    assert [row.chain_seq for row in rows] == list(range(1, len(rows) + 1))
    result = flask_audit(app, "verify")
    assert result.exit_code == 0, result.output
