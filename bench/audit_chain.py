"""The operation log's hash chain: appends per second with the chain, and verification speed, printed.

    .venv/bin/python bench/audit_chain.py                          # SQLite, 200,000 events verified
    .venv/bin/python bench/audit_chain.py --events 2000000 --database postgresql+psycopg://postgres@127.0.0.1:5432/postgres

Appends: one event per transaction (a page view), from 1 and from 4 threads, through record() and
commit as the portal writes them; then 100 events per transaction. The log is then filled to
--events rows by the migration's path (bulk insert, then chained in id order by chain.append), and
`verify` (the walk, no checkpoint tokens) and one checkpoint (walk + built-in TSA) are timed.
PostgreSQL: a throw-away database is created next to the given URL's and dropped.
Targets: a 10-year prefecture log (~5,000,000 events) verifies in under 10 minutes; the chain adds
under 2 ms to a transaction's commit.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import threading
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from sqlalchemy import create_engine, event, insert, select, text
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session

from portal import create_app, migrate
from portal.admin import audit_integrity
from portal.audit import chain
from portal.audit.models import AuditEvent
from portal.audit.service import Actor, record
from portal.db import make_engine
from portal.instance import initialised
from portal.signing import timestamps


def _appends(factory, count: int, per_commit: int, threads: int) -> float:  # type: ignore[no-untyped-def]
    """Events per second."""
    def work(offset: int) -> None:
        with factory() as session:
            for number in range(count // threads):
                record(session, actor=Actor("staff", "bench@pref.example.jp", None), action="staff:contract:viewed",
                       subject=("contracts", number % 500), ip="192.0.2.1", user_agent="bench", number=number,
                       thread=offset)
                if (number + 1) % per_commit == 0:
                    session.commit()
            session.commit()

    started = time.perf_counter()
    workers = [threading.Thread(target=work, args=(offset,)) for offset in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    return count / (time.perf_counter() - started)


def _chain_leftovers(factory) -> None:  # type: ignore[no-untyped-def]
    """Chain what the run without the chain wrote, so that the log verifies afterwards."""
    table = AuditEvent.__table__
    with factory() as session:
        chain.append(session, list(session.scalars(select(table.c.id).where(table.c.event_hash.is_(None))
                                                   .order_by(table.c.id))))
        session.commit()


def _fill(factory, total: int) -> None:  # type: ignore[no-untyped-def]
    start = datetime(2016, 4, 1, tzinfo=UTC)
    table = AuditEvent.__table__
    with factory() as session:
        present = session.scalar(select(table.c.id).order_by(table.c.id.desc()).limit(1)) or 0
    batch = 5000
    for first in range(present, total, batch):
        rows = [{"occurred_at": start + timedelta(seconds=60 * n), "action": "staff:contract:viewed",
                 "actor_type": "staff", "actor_label": f"user{n % 300}@pref.example.jp", "subject_type": "contracts",
                 "subject_id": str(n % 20000), "ip": "192.0.2.1", "user_agent": "Mozilla/5.0 bench",
                 "details": {"number": n, "page": n % 7}} for n in range(first, min(first + batch, total))]
        with factory() as session:
            ids = list(session.scalars(insert(table).returning(table.c.id), rows))
            chain.append(session, ids)
            session.commit()


def run(database: str, events: int) -> None:
    instance = Path(tempfile.mkdtemp(prefix="bench-audit-"))
    admin_engine = None
    if database == "sqlite":
        url = f"sqlite:///{instance / 'portal.sqlite3'}"
    else:
        base = make_url(database)
        name = f"bench_audit_{uuid.uuid4().hex[:8]}"
        admin_engine = create_engine(base, isolation_level="AUTOCOMMIT")
        with admin_engine.connect() as connection:
            connection.execute(text(f'CREATE DATABASE "{name}"'))
        url = base.set(database=name).render_as_string(hide_password=False)
    try:
        engine = make_engine(url)
        with engine.begin() as connection:
            migrate.upgrade(connection)
        engine.dispose()
        app = create_app(initialised({"DATABASE_URL": url, "INSTANCE_PATH": str(instance / "instance"),
                                      "SECRET_KEY": "bench", "MASTER_KEY": "00" * 31 + "01", "OUTBOX_WORKER": False,
                                      "PUBLIC_BASE_URL": "http://localhost"}))
        factory = app.extensions["portal.session_factory"]
        kind = make_url(url).get_backend_name()
        with app.app_context():
            for per_commit, threads, count in ((1, 1, 1000), (1, 4, 2000), (100, 1, 10000)):
                rate = _appends(factory, count, per_commit, threads)
                event.remove(Session, "before_commit", chain._chain_before_commit)
                try:
                    unchained = _appends(factory, count, per_commit, threads)
                finally:
                    event.listen(Session, "before_commit", chain._chain_before_commit)
                    _chain_leftovers(factory)
                print(f"{kind}: append {per_commit:>3} event(s)/commit, {threads} thread(s): {rate:,.0f} events/s"
                      f" (without the chain: {unchained:,.0f}; +{(1 / rate - 1 / unchained) * 1000 * per_commit:.2f} ms"
                      " per commit)")
            started = time.perf_counter()
            _fill(factory, events)
            print(f"{kind}: filled to {events:,} events in {time.perf_counter() - started:.1f} s")
            with factory() as session:
                started = time.perf_counter()
                result = chain.verify(session)
                elapsed = time.perf_counter() - started
            print(f"{kind}: verify {result.events:,} events: {elapsed:.1f} s ({result.events / elapsed:,.0f} events/s),"
                  f" ok={result.is_ok}")
            with factory() as session:
                started = time.perf_counter()
                checkpoint, _ = audit_integrity.create_checkpoint(session, now=datetime.now(UTC))
                session.commit()
            print(f"{kind}: checkpoint #{checkpoint.id} (walk + built-in TSA): {time.perf_counter() - started:.1f} s")
            started = time.perf_counter()
            for _ in range(20):
                assert timestamps.check_token(checkpoint.timestamp_token, bytes.fromhex(checkpoint.head_hash)) is None
            print(f"{kind}: one checkpoint's token checked in {(time.perf_counter() - started) / 20 * 1000:.1f} ms"
                  " (verify checks every checkpoint's)")
        app.extensions["portal.engine"].dispose()
    finally:
        if admin_engine is not None:
            with admin_engine.connect() as connection:
                connection.execute(text(f'DROP DATABASE IF EXISTS "{make_url(url).database}" WITH (FORCE)'))
            admin_engine.dispose()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--events", type=int, default=200_000)
    parser.add_argument("--database", default="sqlite")
    args = parser.parse_args()
    run(args.database, args.events)


if __name__ == "__main__":
    main()
