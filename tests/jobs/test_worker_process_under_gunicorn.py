"""Under gunicorn the background worker is one separate, lower-priority process the master keeps
running: a signer's commit wakes it at once (the poll interval here is a minute), it completes the
contract and mails once, and when it is killed the master starts it again."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

from sqlalchemy import func, select

from portal import create_app, migrate
from portal.contracts.models import Contract, ContractStatus
from portal.db import make_engine
from portal.instance import initialised
from portal.jobs.models import QueuedJob, QueuedJobStatus
from portal.mail.models import OutboxMessage, OutboxStatus
from tests.conftest import test_config as portal_test_config
from tests.contracts.fixtures import World
from tests.pdfs import make_pdf
from tests.services.live import GunicornServer, HttpClient
from tests.services.smtp import SmtpServer, free_port

REPO = Path(__file__).resolve().parents[2]


def _prepare(url: str, instance: Path, smtp: SmtpServer, contracts: int) -> list[str]:
    engine = make_engine(url)
    with engine.begin() as connection:
        migrate.upgrade(connection)
    engine.dispose()
    app = create_app(initialised({"TESTING": True, "INSTANCE_PATH": str(instance), "DATABASE_URL": url,
                                  "ARGON2_TIME_COST": 1, "ARGON2_MEMORY_KIB": 64, "RATELIMIT_ENABLED": False,
                                  "OUTBOX_WORKER": False, "PUBLIC_BASE_URL": "http://localhost", **smtp.settings}))
    session = app.extensions["portal.session_factory"]()
    session.info["app"] = app
    world = World(app, session)
    links = []
    for number in range(contracts):
        contract_id = world.sent_contract(make_pdf(f"keiyaku {number}", 1), signing_order="agency_first")
        world.sign_as_agency(world.party_ids(contract_id)[0])
        links.append(world.signing_link())
    session.close()
    app.extensions["portal.engine"].dispose()
    return links


def _children(pid: int) -> list[int]:
    found = [Path(task, "children").read_text().split() for task in Path(f"/proc/{pid}/task").iterdir()]
    return [int(child) for children in found for child in children]


def _command(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    except FileNotFoundError:
        return ""


def _worker_processes(master: int) -> list[int]:
    return [pid for pid in _children(master) if "portal.jobs.process" in _command(pid)]


def _sign(client: HttpClient, link: str) -> str:
    page = client.get(link)
    token = re.search(r'name="csrf_token"[^>]*value="([^"]+)"|"X-CSRFToken": "([^"]+)"', page.text)
    assert token is not None, page.text[:500]
    return client.post(f"{link}/complete", {"csrf_token": token.group(1) or token.group(2)}).text


def _wait(condition, seconds: float = 30) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.2)
    return False


def _status_counts(url: str) -> tuple[int, int]:
    engine = make_engine(url)
    with engine.connect() as conn:
        completed = conn.execute(select(func.count()).select_from(Contract)
                                 .where(Contract.status == ContractStatus.COMPLETED)).scalar_one()
        unsent = conn.execute(select(func.count()).select_from(OutboxMessage)
                              .where(OutboxMessage.status != OutboxStatus.SENT)).scalar_one()
    engine.dispose()
    return completed, unsent


def test_the_worker_is_one_woken_restarted_process_beside_the_web_processes(tmp_path):
    smtp = SmtpServer()
    smtp.start()
    url = f"sqlite:///{tmp_path}/portal.sqlite3"
    instance = tmp_path / "instance"
    links = _prepare(url, instance, smtp, contracts=2)
    port = free_port()
    env = {**os.environ, "PORTAL_DATABASE_URL": url, "PORTAL_INSTANCE_PATH": str(instance),
           "PORTAL_PUBLIC_BASE_URL": f"http://127.0.0.1:{port}", "PORTAL_BIND": f"127.0.0.1:{port}",
           "PORTAL_MAIL_SERVER": "127.0.0.1", "PORTAL_MAIL_PORT": str(smtp.port), "PORTAL_RATELIMIT_ENABLED": "false",
           "PORTAL_OUTBOX_POLL_SECONDS": "60", "PORTAL_WEB_PROCESSES": "2", "PYTHONPATH": str(REPO)}
    env.pop("FLASK_RUN_FROM_CLI", None)
    log = (tmp_path / "gunicorn.log").open("wb")
    server = subprocess.Popen([str(Path(sys.executable).parent / "gunicorn"), "-c", "gunicorn.conf.py", "app:app"],
                              cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT)
    client = HttpClient(f"http://127.0.0.1:{port}")
    try:
        assert _wait(lambda: len(_worker_processes(server.pid)) == 1 and len(_children(server.pid)) == 3), \
            (tmp_path / "gunicorn.log").read_text()
        worker = _worker_processes(server.pid)[0]
        master_nice = os.getpriority(os.PRIO_PROCESS, server.pid)
        assert _wait(lambda: os.getpriority(os.PRIO_PROCESS, worker) == master_nice + 10)

        assert _wait(lambda: _reachable(client))
        # Its first round is over (then it sleeps for the poll interval unless woken).
        assert _wait(lambda: _jobs_waiting(url) == 0)
        time.sleep(1)
        before = len(smtp.inbox.messages)
        assert "署名手続きが完了しました" in _sign(client, links[0])
        # Completed and mailed long before the 60 s poll: the commit woke the worker process.
        assert _wait(lambda: _status_counts(url) == (1, 0), seconds=20), (tmp_path / "gunicorn.log").read_text()
        assert len(smtp.inbox.messages) > before

        os.kill(worker, signal.SIGKILL)
        assert _wait(lambda: [p for p in _worker_processes(server.pid) if p != worker] != []), \
            (tmp_path / "gunicorn.log").read_text()[-3000:]
        assert "署名手続きが完了しました" in _sign(client, links[1])
        assert _wait(lambda: _status_counts(url) == (2, 0), seconds=30), (tmp_path / "gunicorn.log").read_text()
        outbox_ids = [m["X-Portal-Outbox-Id"] for m in smtp.inbox.messages]
        assert len(outbox_ids) == len(set(outbox_ids))  # every mail once
    finally:
        server.send_signal(signal.SIGTERM)
        server.wait(timeout=60)
        log.close()
        smtp.stop()
    assert not _worker_processes_left(tmp_path)


def _jobs_waiting(url: str) -> int:
    engine = make_engine(url)
    with engine.connect() as conn:
        waiting = conn.execute(select(func.count()).select_from(QueuedJob).where(
            QueuedJob.status.in_([QueuedJobStatus.PENDING, QueuedJobStatus.RUNNING]))).scalar_one()
    engine.dispose()
    return waiting


def _reachable(client: HttpClient) -> bool:
    try:
        return client.get("/healthz").status < 500
    except OSError:
        return False


def _worker_processes_left(tmp_path: Path) -> list[int]:
    mine = str(tmp_path)
    return [int(p) for p in os.listdir("/proc") if p.isdigit()
            and "portal.jobs.process" in _command(int(p)) and mine in _environ(int(p))]


def _environ(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/environ").read_bytes().decode(errors="replace")
    except (FileNotFoundError, PermissionError):
        return ""


def test_an_app_without_background_work_is_not_restarted_over_and_over(tmp_path):
    # The test app's worker process finds OUTBOX_WORKER off and ends at once; its exit status is
    # often reaped by gunicorn's master first, so only the pipe tells the supervisor it was idle.
    config = portal_test_config(f"sqlite:///{tmp_path}/portal.sqlite3", tmp_path / "instance")
    with GunicornServer(config, processes=1) as server:
        # It ends as soon as it is up, which takes a while on a loaded machine; then it stays ended
        # (the master would start it again a second after it ended).
        assert _wait(lambda: _worker_processes(server.pid) == [], seconds=60), server.log[-2000:]
        time.sleep(2)
        assert _worker_processes(server.pid) == []
        assert "starting it again" not in server.log, server.log[-2000:]
