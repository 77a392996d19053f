"""A prefecture's signing day under gunicorn, printed (never asserted).

    .venv/bin/python bench/load.py                                   # SQLite, N = 10 (make bench)
    .venv/bin/python bench/load.py --vendors 10 50 200 --database sqlite
    .venv/bin/python bench/load.py --vendors 10 50 200 --database postgresql+psycopg://postgres@127.0.0.1:5432/postgres

For each N: a fresh database with N sent contracts (agency signs first, so each vendor's signature
completes its contract: 2-page PDF, B-LTA and the certificate), gunicorn with gunicorn.conf.py
(PORTAL_WEB_PROCESSES × PORTAL_WEB_THREADS) and its background workers, an SMTP server on
loopback. N vendors at once open their signing page, fetch its page images and press
「署名手続きを完了する」 while 5 staff members search. Prints throughput, p50/p95/p99 per request kind,
errors with the first traceback, then checks in the database that every party signed once, every
contract completed once and every mail went once (by its outbox id).
Targets: no errors at N = 200 on both databases; sign p95 <= 1 s at N = 50 (2 cores).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import re
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from sqlalchemy import func, select

from bench.databases import scratch_database
from portal import create_app, migrate
from portal.audit.models import AuditEvent
from portal.contracts.models import Contract, ContractStatus
from portal.contracts.pages import RENDER_JOB
from portal.db import make_engine
from portal.instance import initialised
from portal.jobs.models import QueuedJob, QueuedJobStatus
from portal.mail.models import OutboxMessage, OutboxStatus
from tests.contracts.fixtures import World
from tests.factories import PASSWORD, make_staff, totp_code
from tests.pdfs import make_pdf
from tests.services.live import HttpClient
from tests.services.smtp import SmtpServer, free_port

ROOT = Path(__file__).resolve().parent.parent
SEARCHES = ["?counterparty=%E3%81%91%E3%81%84%E3%82%84%E3%81%8F", "?date_from=R7.4.1&date_to=R8.3.31",
            "?amount_min=1000000", "", "?counterparty=%E5%95%86%E4%BA%8B&amount_max=5000000"]


def percentile(samples: list[float], share: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, round(share * (len(ordered) - 1)))]


def prepare(url: str, instance: Path, smtp: SmtpServer, vendors: int, staff: int) -> tuple[list[str], list[Any]]:
    engine = make_engine(url)
    with engine.begin() as connection:
        migrate.upgrade(connection)
    engine.dispose()
    app = create_app(initialised({"TESTING": True, "INSTANCE_PATH": str(instance), "DATABASE_URL": url,
                      "ARGON2_TIME_COST": 1, "ARGON2_MEMORY_KIB": 64,
                      "RATELIMIT_ENABLED": False, "OUTBOX_WORKER": False, "PUBLIC_BASE_URL": "http://localhost",
                      **smtp.settings}))
    session = app.extensions["portal.session_factory"]()
    session.info["app"] = app
    world = World(app, session)
    links = []
    for number in range(vendors):
        contract_id = world.sent_contract(make_pdf(f"keiyaku {number}", 2), signing_order="agency_first",
                                          business_name=f"庁舎清掃業務委託 第{number}号")
        response = world.sign_as_agency(world.party_ids(contract_id)[0])
        assert "署名手続きが完了しました" in response.get_data(as_text=True)
        links.append(world.signing_link())
        print(f"  prepared {number + 1}/{vendors}", end="\r", flush=True)
    print()
    users = [make_staff(session, email=f"search{n}@pref.example.jp", department=world.department) for n in range(staff)]
    session.commit()
    session.close()
    app.extensions["portal.engine"].dispose()
    return links, users


def serve(url: str, instance: Path, smtp: SmtpServer, port: int, log: Path) -> subprocess.Popen:
    env = {**os.environ, "PORTAL_DATABASE_URL": url, "PORTAL_INSTANCE_PATH": str(instance),
           "PORTAL_PUBLIC_BASE_URL": f"http://127.0.0.1:{port}", "PORTAL_BIND": f"127.0.0.1:{port}",
           "PORTAL_MAIL_SERVER": "127.0.0.1", "PORTAL_MAIL_PORT": str(smtp.port), "PORTAL_RATELIMIT_ENABLED": "false",
           "PORTAL_OUTBOX_POLL_SECONDS": "1", "PYTHONPATH": str(ROOT)}
    env.pop("FLASK_RUN_FROM_CLI", None)
    process = subprocess.Popen([str(Path(sys.executable).parent / "gunicorn"), "-c", "gunicorn.conf.py", "app:app"],
                               cwd=ROOT, env=env, stdout=log.open("w"), stderr=subprocess.STDOUT)
    client = HttpClient(f"http://127.0.0.1:{port}")
    for _ in range(200):
        try:
            if client.get("/healthz").status < 500 or client.get("/").status == 200:
                return process
        except OSError:
            time.sleep(0.1)
    raise SystemExit(f"gunicorn did not start; see {log}")


def wait_for_page_images(url: str) -> float:
    """Seconds until the worker has rendered every uploaded page (documents go out days after upload)."""
    engine = make_engine(url)
    began = time.perf_counter()
    with engine.connect() as conn:
        while time.perf_counter() - began < 600:
            waiting = conn.execute(select(func.count()).select_from(QueuedJob).where(
                QueuedJob.kind == RENDER_JOB,
                QueuedJob.status.in_([QueuedJobStatus.PENDING, QueuedJobStatus.RUNNING]))).scalar()
            conn.rollback()
            if not waiting:
                break
            time.sleep(0.2)
    engine.dispose()
    return time.perf_counter() - began


def process_cpu(pid: int) -> float:
    """CPU seconds (user + system) a live process has used, from /proc (0 when it is gone)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def server_cpu(master: int) -> dict[str, float]:
    """CPU seconds of gunicorn's web processes and of the background worker process (children of the master)."""
    used = {"web": 0.0, "worker": 0.0}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            parent = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            command = (entry / "cmdline").read_bytes()
        except OSError:
            continue
        if parent == master:
            used["worker" if b"portal.jobs.process" in command else "web"] += process_cpu(int(entry.name))
    return used


def load(base: str, links: list[str], users: list[Any]) -> tuple[dict[str, list[float]], list[str], float]:
    timings: dict[str, list[float]] = {}
    errors: list[str] = []
    lock = threading.Lock()

    def timed(kind: str, call: Any) -> Any:
        start = time.perf_counter()
        try:
            reply = call()
        except Exception as exc:  # a refused or reset connection is an error too
            with lock:
                errors.append(f"{kind}: {exc!r}")
            return None
        with lock:
            timings.setdefault(kind, []).append(time.perf_counter() - start)
            if reply.status >= 500:
                errors.append(f"{kind} {reply.status}")
        return reply

    staff_clients = []
    for user in users:
        client = HttpClient(base)
        client.post_form("/login", {"email": user.email, "password": PASSWORD})
        client.post_form("/login/verify", {"code": totp_code(user)})
        staff_clients.append(client)
    vendor_clients = [HttpClient(base) for _ in links]
    start_line = threading.Barrier(len(links) + len(users) + 1)
    done = threading.Event()

    def vendor(client: HttpClient, link: str) -> None:
        start_line.wait()
        page = timed("signing page", lambda: client.get(link))
        if page is None:
            return
        for image in sorted(set(re.findall(r'src="([^"]+/pages/\d+\.jpg)"', page.text))):
            timed("page image", lambda image=image: client.get(image))
        token = re.search(r'name="csrf_token"[^>]*value="([^"]+)"|"X-CSRFToken": "([^"]+)"', page.text)
        if token is None:
            with lock:
                errors.append(f"signing page without a form ({page.status})")
            return
        reply = timed("sign", lambda: client.post(f"{link}/complete", {"csrf_token": token.group(1) or token.group(2)}))
        if reply is not None and "署名手続きが完了しました" not in reply.text:
            with lock:
                errors.append(f"sign answered without completion ({reply.status})")

    def staff(client: HttpClient) -> None:
        rng = random.Random(id(client))
        start_line.wait()
        while not done.is_set():
            timed("search", lambda: client.get("/search/" + rng.choice(SEARCHES)))

    threads = [threading.Thread(target=vendor, args=(c, link)) for c, link in zip(vendor_clients, links, strict=True)]
    staff_threads = [threading.Thread(target=staff, args=(c,)) for c in staff_clients]
    for thread in threads + staff_threads:
        thread.start()
    start_line.wait()
    began = time.perf_counter()
    for thread in threads:
        thread.join()
    wall = time.perf_counter() - began
    done.set()
    for thread in staff_threads:
        thread.join()
    return timings, errors, wall


def check(url: str, smtp: SmtpServer, vendors: int) -> list[str]:
    engine = make_engine(url)
    began = time.monotonic()
    last_change, last_state = began, None
    with engine.connect() as conn:
        while time.monotonic() - last_change < 60:  # the workers complete in the background, then mail
            pending = conn.execute(select(func.count()).select_from(OutboxMessage)
                                   .where(OutboxMessage.status != OutboxStatus.SENT)).scalar()
            completing = conn.execute(select(func.count()).select_from(Contract)
                                      .where(Contract.status == ContractStatus.COMPLETING)).scalar()
            conn.rollback()
            if not pending and not completing:
                break
            if (pending, completing) != last_state:
                last_change, last_state = time.monotonic(), (pending, completing)
            time.sleep(0.5)
        print(f"  completions and mails drained {time.monotonic() - began:.1f} s after the last signature")
        signed = Counter((subject, details.get("party")) for subject, details in conn.execute(
            select(AuditEvent.subject_id, AuditEvent.details).where(AuditEvent.action == "signer:contract:signed")))
        completed = conn.execute(select(func.count()).select_from(Contract)
                                 .where(Contract.status == ContractStatus.COMPLETED)).scalar()
        outbox = {str(i) for i in conn.execute(select(OutboxMessage.id)).scalars()}
        unsent = conn.execute(select(func.count()).select_from(OutboxMessage)
                              .where(OutboxMessage.status != OutboxStatus.SENT)).scalar()
    engine.dispose()
    delivered = Counter(str(m["X-Portal-Outbox-Id"]) for m in smtp.inbox.messages)
    problems = []
    if len(signed) != 2 * vendors or set(signed.values()) != {1}:
        problems.append(f"signatures: {len(signed)} parties of {2 * vendors}, counts {sorted(set(signed.values()))}")
    if completed != vendors:
        problems.append(f"completed contracts: {completed} of {vendors}")
    if set(delivered) != outbox or any(n != 1 for n in delivered.values()):
        problems.append(f"mails: {len(outbox)} in the outbox, {len(delivered)} delivered, "
                        f"{sum(n > 1 for n in delivered.values())} more than once, {unsent} not sent")
    return problems


def served_cpu(log: Path) -> dict[str, list[float]]:
    """cpu_ms of the request lines in gunicorn's log, by request kind (the signing thread's CPU is not in them)."""
    kinds: dict[str, list[float]] = {}
    for line in log.read_text(errors="replace").splitlines():
        if '"portal.request"' not in line:
            continue
        try:
            entry = json.loads(line)
        except ValueError:
            continue
        path, method = entry.get("path", ""), entry.get("method")
        if path.startswith("/search"):
            kind = "search"
        elif not path.startswith("/s/"):
            continue
        elif path.endswith(".jpg"):
            kind = "page image"
        elif method == "POST" and path.endswith("/complete"):
            kind = "sign"
        elif method == "GET" and path.count("/") == 2:
            kind = "signing page"
        else:
            continue
        if "cpu_ms" in entry:
            kinds.setdefault(kind, []).append(entry["cpu_ms"])
    return kinds


def run(url: str, vendors: int, staff: int) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        smtp = SmtpServer()
        smtp.start()
        instance = Path(tmp) / "instance"
        links, users = prepare(url, instance, smtp, vendors, staff)
        port = free_port()
        log = Path(tmp) / "gunicorn.log"
        server = serve(url, instance, smtp, port, log)
        try:
            rendered = wait_for_page_images(url)
            print(f"  page images of {vendors} contracts rendered by the worker in {rendered:.1f} s")
            server_before, client_before = server_cpu(server.pid), time.process_time()
            load_before = os.getloadavg()[0]
            timings, errors, wall = load(f"http://127.0.0.1:{port}", links, users)
            server_after, client_after = server_cpu(server.pid), time.process_time()
            load_after = os.getloadavg()[0]
            problems = check(url, smtp, vendors)
        finally:
            server.send_signal(signal.SIGTERM)
            server.wait(timeout=60)
            smtp.stop()
        requests = sum(len(v) for v in timings.values())
        print(f"N = {vendors}: {requests} requests in {wall:.1f} s ({requests / wall:.1f}/s), "
              f"{vendors / wall:.2f} signatures/s, errors {len(errors)}")
        web, worker = (server_after[k] - server_before[k] for k in ("web", "worker"))
        bench = client_after - client_before
        print(f"  CPU during the load: web processes {web:.2f} s ({web / requests * 1000:.1f} ms a request), "
              f"background worker {worker:.2f} s, this bench (clients, SMTP server) {bench:.2f} s; "
              f"load average {load_before:.2f} before, {load_after:.2f} after")
        cpu = served_cpu(log)
        for kind in ("signing page", "page image", "sign", "search"):
            samples = timings.get(kind, [])
            if samples:
                served = f"  CPU p50 {statistics.median(cpu[kind]):5.1f} ms" if cpu.get(kind) else ""
                print(f"  {kind:14} p50 {statistics.median(samples) * 1000:8.1f} ms  p95 "
                      f"{percentile(samples, 0.95) * 1000:8.1f} ms  p99 {percentile(samples, 0.99) * 1000:8.1f} ms"
                      f"  n={len(samples)}{served}")
        if errors:
            print(f"  errors: {Counter(errors).most_common(5)}")
            trace = log.read_text(errors="replace")
            first = trace.find("Traceback")
            if first >= 0:
                print("  first traceback:\n    " + trace[first:first + 3000].replace("\n", "\n    "))
        print("  database checks: " + ("every party signed once, every contract completed once, every mail once"
                                       if not problems else "; ".join(problems)))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--vendors", type=int, nargs="+", default=[10])
    parser.add_argument("--staff", type=int, default=5)
    parser.add_argument("--database", default="sqlite", help="sqlite, or a PostgreSQL URL to create databases next to")
    args = parser.parse_args()
    print(f"gunicorn: {os.environ.get('PORTAL_WEB_PROCESSES', '2')} processes × "
          f"{os.environ.get('PORTAL_WEB_THREADS', '8')} threads, database {args.database.split('://')[0]}")
    for vendors in args.vendors:
        with scratch_database(args.database, filename="load.sqlite3") as url:
            run(url, vendors, args.staff)


if __name__ == "__main__":
    main()
