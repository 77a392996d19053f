"""The operation log viewer (/audit) over a large log, printed (never asserted).

    .venv/bin/python bench/audit_log.py                     # 200,000 events, SQLite (make bench)
    .venv/bin/python bench/audit_log.py --events 5000000 --database sqlite
    .venv/bin/python bench/audit_log.py --events 5000000 --database postgresql+psycopg://postgres@127.0.0.1:5432/postgres

Events over two years by 200 staff members of 20 departments on 20,000 contracts (reads, downloads,
logins, procedure steps), from 500 addresses. For each filter of the viewer: p50/p95 of the first
page (count included, as the screen shows it) and of a page 4/5 in, reached by its number (OFFSET) and
by the 次へ links (continuing from a row); then the CSV export of one month
(rows, seconds). PostgreSQL: a throw-away database is created next to the given URL's and dropped.
Target: p95 <= 300 ms for the first page of every filter at 5,000,000 events.
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
import time
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from sqlalchemy import insert, select
from sqlalchemy.orm import Session, sessionmaker

from bench.databases import label, scratch_database
from portal import migrate
from portal.audit.actions import AuditAction
from portal.audit.models import AuditEvent
from portal.auth.models import Role, StaffUser
from portal.db import make_engine

ACTIONS = [AuditAction.CONTRACT_VIEWED] * 6 + [AuditAction.CONTRACT_PAGE_VIEWED] * 8 + [
    AuditAction.CONTRACT_DOCUMENT_DOWNLOADED, AuditAction.LOGIN_SUCCEEDED, AuditAction.LOGOUT,
    AuditAction.SEARCH_PERFORMED, AuditAction.CONTRACT_SENT, AuditAction.CONTRACT_SIGNED, AuditAction.LOGIN_FAILED]
SURNAMES = ["髙橋", "佐藤", "鈴木", "田中", "渡辺", "伊藤", "山本", "中村", "小林", "加藤"]
GIVEN = ["一郎", "花子", "次郎", "美咲", "健太", "陽子", "大輔", "由美", "翔", "愛"]
START = datetime(2025, 4, 1, tzinfo=UTC)
SPAN_SECONDS = 730 * 86400


def populate(engine: Any, events: int, rng: random.Random) -> list[int]:
    import search  # bench/search.py: departments and contracts as the search benchmark makes them

    departments, _ = search.populate(engine, 20_000, rng)
    now = datetime.now(UTC)
    with engine.begin() as conn:
        users = [conn.execute(insert(StaffUser).values(
            email=f"user{n}@pref.example.jp", name=f"{rng.choice(SURNAMES)} {rng.choice(GIVEN)}", role=Role.STAFF,
            department_id=departments[n % len(departments)], password_hash="x", is_active=True,
            created_at=now).returning(StaffUser.id)).scalar_one() for n in range(200)]
    addresses = [f"10.{rng.randrange(256)}.{rng.randrange(256)}.{rng.randrange(1, 255)}" for _ in range(500)]
    batch, made = 20_000, 0
    while made < events:
        rows = []
        for _ in range(min(batch, events - made)):
            user = rng.choice(users)
            action = rng.choice(ACTIONS)
            contract = rng.randrange(1, 20_001)
            rows.append({
                "occurred_at": START + timedelta(seconds=rng.randrange(SPAN_SECONDS)), "action": str(action),
                "actor_type": "staff", "actor_user_id": user, "actor_label": f"user{users.index(user)}@pref.example.jp",
                "subject_type": "contracts", "subject_id": str(contract), "ip": rng.choice(addresses),
                "user_agent": "Mozilla/5.0 (Windows NT 10.0; Win64; x64)",
                "details": {"actor_role": "staff", "actor_department_id": departments[users.index(user) % 20],
                            "filename": f"D-{contract:07d}.pdf"},
            })
        with engine.begin() as conn:
            conn.execute(insert(AuditEvent), rows)
        made += len(rows)
        print(f"  {made:,} events", end="\r", flush=True)
    print()
    return departments


def percentile(samples: list[float], share: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, round(share * (len(ordered) - 1)))]


def run(url: str, events: int, repeats: int) -> None:
    rng = random.Random(11)
    engine = make_engine(url)
    with engine.begin() as connection:
        migrate.upgrade(connection)
    started = time.perf_counter()
    departments = populate(engine, events, rng)
    print(f"loaded {events:,} events in {time.perf_counter() - started:.1f} s")
    try:
        measure(sessionmaker(engine), departments, rng, repeats)  # the viewer's queries need no app
    finally:
        engine.dispose()


def measure(factory: sessionmaker[Session], departments: list[int], rng: random.Random, repeats: int) -> None:
    import portal.models  # noqa: F401  (every table in the metadata, as in the app)
    from portal.audit import export, queries

    ids = set(departments)
    with factory() as session:
        def kinds() -> dict[str, dict[str, str]]:
            month = date(2025, 4, 1) + timedelta(days=rng.randrange(0, 700))
            return {
                "no filter": {},
                "person (surname)": {"person": rng.choice(SURNAMES)},
                "action": {"action": str(AuditAction.CONTRACT_DOCUMENT_DOWNLOADED)},
                "action group (login)": {"action": "group:login"},
                "contract number": {"contract": f"D-{rng.randrange(1, 20_001):07d}"},
                "department": {"department": str(rng.choice(departments))},
                "period (one month, 和暦)": {"from": f"令和{month.year - 2018}年{month.month}月",
                                          "to": f"令和{month.year - 2018}年{month.month}月"},
                "IP prefix": {"ip": "10.1."},
                "person + period + action": {"person": rng.choice(SURNAMES), "from": "R7.10", "to": "R8.3",
                                             "action": "group:contract-read"},
            }

        results: dict[tuple[str, str], list[float]] = {}
        for _ in range(repeats):
            for kind, query in kinds().items():
                criteria = queries.parse_filter(query, department_ids=ids)
                session.rollback()
                start = time.perf_counter()
                first = queries.search_events(session, criteria)
                results.setdefault((kind, "first page"), []).append(time.perf_counter() - start)
                if first.pages < 3:
                    continue
                target = max(2, first.pages * 4 // 5)
                deep = queries.parse_filter({**query, "page": str(target)}, department_ids=ids)
                start = time.perf_counter()
                queries.search_events(session, deep)
                results.setdefault((kind, "deep, by number"), []).append(time.perf_counter() - start)
                # As the 次へ links reach it: continuing from the last row of the page before.
                cursor = session.scalar(select(AuditEvent.id).where(*queries._conditions(criteria))
                                        .order_by(AuditEvent.id.desc())
                                        .offset((target - 1) * queries.PER_PAGE - 1).limit(1))
                linked = queries.parse_filter({**query, "page": str(target), "before": str(cursor)},
                                              department_ids=ids)
                start = time.perf_counter()
                queries.search_events(session, linked)
                results.setdefault((kind, "deep, by link"), []).append(time.perf_counter() - start)
        print(f"{'filter':30} {'page':18} {'p50 ms':>8} {'p95 ms':>8}  n")
        order = list(kinds())
        for (kind, page), samples in sorted(results.items(), key=lambda i: (order.index(i[0][0]), i[0][1])):
            print(f"{kind:30} {page:18} {statistics.median(samples) * 1000:8.1f} "
                  f"{percentile(samples, 0.95) * 1000:8.1f}  {len(samples)}")
        session.rollback()
        criteria = queries.parse_filter({"from": "2025-10-01", "to": "2025-10-31"}, department_ids=ids)
        start = time.perf_counter()
        size = rows = 0
        for chunk in export.stream_csv(queries.iter_events(session, criteria)):
            size += len(chunk)
            rows += chunk.count(b"\r\n")
        elapsed = time.perf_counter() - start
        print(f"CSV export of one month: {rows - 1:,} rows, {size / 1e6:.1f} MB in {elapsed:.2f} s "
              f"({(rows - 1) / max(elapsed, 1e-9):,.0f} rows/s)")
        total = session.scalar(select(AuditEvent.id).order_by(AuditEvent.id.desc()).limit(1))
        print(f"({total:,} events in the log)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=200_000)
    parser.add_argument("--database", default="sqlite", help="sqlite, or a PostgreSQL URL to create a database next to")
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    with scratch_database(args.database) as url:
        print(f"{label(url)}, {args.events:,} events")
        run(url, args.events, args.repeats)


if __name__ == "__main__":
    main()
