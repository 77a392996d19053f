"""/readyz and the request log, printed (never asserted).

    .venv/bin/python bench/health.py                  # SQLite in a temporary instance, built-in TSA
    .venv/bin/python bench/health.py --requests 2000 --database postgresql+psycopg://postgres@127.0.0.1:5432/postgres

Prints p50/p95 of each /readyz check (database at head, store probe, signing key, TSA with
READY_TSA_CHECK_SECONDS=0, so every call asks it) and of the whole answer, then the cost of the JSON
request line: GET /healthz through the Flask test client with the portal's loggers at INFO (one line
per request, written to /dev/null) and at WARNING (no line).
"""

from __future__ import annotations

import argparse
import logging
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from portal import create_app, migrate
from portal.db import make_engine
from portal.instance import initialised


def percentiles(values: list[float]) -> str:
    ordered = sorted(values)
    return f"p50 {statistics.median(ordered):7.2f} ms   p95 {ordered[int(len(ordered) * 0.95) - 1]:7.2f} ms"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--requests", type=int, default=1000)
    parser.add_argument("--readyz", type=int, default=100)
    parser.add_argument("--database", default="sqlite")
    args = parser.parse_args()

    instance = Path(tempfile.mkdtemp(prefix="bench-health-"))
    url, drop = database(args.database, instance)
    engine = make_engine(url)
    with engine.begin() as connection:
        migrate.upgrade(connection)
    engine.dispose()
    app = create_app(initialised({"INSTANCE_PATH": str(instance), "DATABASE_URL": url, "SECRET_KEY": "bench",
                                  "MASTER_KEY": "00" * 31 + "01", "OUTBOX_WORKER": False, "RATELIMIT_ENABLED": False,
                                  "READY_TSA_CHECK_SECONDS": 0}))
    root = logging.getLogger()
    for handler in root.handlers:
        if isinstance(handler, logging.StreamHandler):
            handler.setStream(open("/dev/null", "w"))  # noqa: SIM115 (for the life of the process)
    client = app.test_client()
    assert client.get("/readyz").status_code == 200  # first call builds the signing context

    checks: dict[str, list[float]] = {}
    totals = []
    for _ in range(args.readyz):
        started = time.perf_counter()
        body = client.get("/readyz").get_json()
        totals.append((time.perf_counter() - started) * 1000)
        for name, result in body["checks"].items():
            checks.setdefault(name, []).append(result["ms"])
    print(f"/readyz on {make_url(url).get_backend_name()}, {args.readyz} calls")
    for name, values in checks.items():
        print(f"  {name:12} {percentiles(values)}")
    print(f"  {'answer':12} {percentiles(totals)}")

    print(f"GET /healthz, {args.requests} requests through the test client")
    portal_logger = logging.getLogger("portal")
    for level in ("INFO", "WARNING"):
        portal_logger.setLevel(level)
        started = time.perf_counter()
        for _ in range(args.requests):
            client.get("/healthz")
        elapsed = time.perf_counter() - started
        line = "one JSON line each" if level == "INFO" else "no line"
        print(f"  loggers at {level:7} ({line:17}) {args.requests / elapsed:8.0f} req/s   "
              f"{elapsed / args.requests * 1000:6.3f} ms/request")
    app.extensions["portal.engine"].dispose()
    if drop:
        drop()


def database(option: str, instance: Path) -> tuple[str, object]:
    if option == "sqlite":
        return f"sqlite:///{instance / 'portal.sqlite3'}", None
    base = make_url(option)
    name = f"keiyaku_bench_{uuid.uuid4().hex[:8]}"
    admin = create_engine(base, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text(f'CREATE DATABASE "{name}"'))

    def drop() -> None:
        with admin.connect() as connection:
            connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()

    return base.set(database=name).render_as_string(hide_password=False), drop


if __name__ == "__main__":
    main()
