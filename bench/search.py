"""電帳法 search at a prefecture's scale, printed (never asserted).

    .venv/bin/python bench/search.py                       # 20,000 contracts, SQLite (make bench)
    .venv/bin/python bench/search.py --contracts 1000000 --database sqlite
    .venv/bin/python bench/search.py --contracts 1000000 --database postgresql+psycopg://postgres@127.0.0.1:5432/postgres

Contracts over 10 years (2016-04 .. 2026-03) in 20 departments, with realistic Japanese
counterparty names (about 3,000 companies, written with the usual variants: 株式会社/（株）/㈱,
full- and half-width), one document each. For every query kind: p50/p95 of the first page and of a
deep page 4/5 into all the matches (reached by keyset page links, as the screen does), for a
department-scoped staff member and for an auditor who sees everything, counted as the screen counts
(up to SEARCH_COUNT_LIMIT); then the orders other than 取引年月日 (keyset page links, 締結日時 by
OFFSET), and the CSV export of one year (rows, seconds, peak RSS increase).
PostgreSQL: a throw-away database is created next to the given URL's and dropped.
--keep NAME builds into a database that stays (SQLite: the file NAME; PostgreSQL: the database NAME on
the given URL's server, created if missing) and reuses it on later runs with the same --contracts, so that
a million contracts are loaded once (the migrations still run first: new indexes are built on it).
Remove it by hand (rm NAME, DROP DATABASE NAME) when done.
Targets: p95 <= 50 ms for every query kind at 1,000,000 contracts, first and deep page.
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from sqlalchemy import create_engine, func, insert, make_url, select, text

from bench.databases import label as database_label
from bench.databases import scratch_database
from portal import create_app, migrate
from portal.auth.models import Department, Role, StaffUser
from portal.contracts.models import Contract, ContractDocument, ContractStatus, DocumentRevision, RevisionKind
from portal.counterparties.normalize import normalize_name
from portal.db import make_engine
from portal.instance import initialised

PLACES = ["岡山", "倉敷", "津山", "玉野", "笠岡", "井原", "総社", "高梁", "新見", "備前", "瀬戸内", "赤磐", "真庭",
          "美作", "浅口", "吉備", "児島", "水島", "牛窓", "蒜山", "旭川", "吉井", "高梁川", "鷲羽", "後楽"]
TRADES = ["建設", "土木", "設備工業", "電気工事", "商事", "ビルサービス", "システム", "測量設計", "造園", "警備保障",
          "印刷", "運輸", "コンサルタント", "エンジニアリング", "舗装", "管工業", "環境サービス", "情報技術",
          "医療機器", "事務機", "清掃", "塗装", "橋梁", "給食センター", "リース"]
KATAKANA = ["", "", "", "テクノ", "アクア", "グリーン", "サン", "ミライ", "ケイヤク", "ハレ", "モモ", "ヒカリ"]
FORMS = ["株式会社{}", "{}株式会社", "有限会社{}", "（株）{}", "㈱{}", "{}（有）", "合同会社{}", "ｶﾌﾞｼｷｶﾞｲｼｬ{}"]
BUSINESS = ["庁舎清掃業務委託", "道路補修工事", "電算システム保守", "橋梁点検業務委託", "公園管理業務", "備品購入",
            "河川改修工事", "学校給食調理業務", "測量設計業務", "警備業務委託"]
START = date(2016, 4, 1)
DAYS = 3652


def company_names(rng: random.Random, count: int = 3000) -> list[str]:
    names = set()
    while len(names) < count:
        core = rng.choice(PLACES) + rng.choice(KATAKANA) + rng.choice(TRADES)
        names.add(core)
    return sorted(names)


def populate(engine: Any, contracts: int, rng: random.Random) -> tuple[list[int], int]:
    now = datetime.now(UTC)
    companies = company_names(rng)
    with engine.begin() as conn:
        departments = []
        for n in range(20):
            departments.append(conn.execute(insert(Department).values(
                code=f"D{n:02d}", name=f"部署{n:02d}", created_at=now).returning(Department.id)).scalar_one())
        staff = conn.execute(insert(StaffUser).values(
            email="bench@pref.example.jp", name="ベンチ 太郎", role=Role.ADMIN, department_id=departments[0],
            password_hash="x", is_active=True, created_at=now).returning(StaffUser.id)).scalar_one()
    batch = 20_000
    made = 0
    while made < contracts:
        rows, size = [], min(batch, contracts - made)
        for i in range(made, made + size):
            company = rng.choice(companies)
            written = rng.choice(FORMS).format(company)
            day = START + timedelta(days=rng.randrange(DAYS))
            amount = rng.choice([rng.randrange(10_000, 1_000_000), rng.randrange(1_000_000, 50_000_000)])
            rows.append({
                "id": i + 1, "number": f"D-{i + 1:07d}", "business_name": rng.choice(BUSINESS),
                "department_id": rng.choice(departments), "counterparty_name": written,
                "counterparty_name_normalized": normalize_name(written), "amount": amount,
                "tax_amount": amount // 11, "transaction_date": day, "planned_conclusion_date": day,
                "status": ContractStatus.COMPLETED, "created_by_id": staff, "created_at": now, "updated_at": now,
                "completed_at": datetime.combine(day, datetime.min.time(), UTC) + timedelta(hours=3),
            })
        with engine.begin() as conn:
            conn.execute(insert(Contract), rows)
            conn.execute(insert(ContractDocument), [
                {"id": r["id"], "contract_id": r["id"], "position": 1, "filename": f"{r['number']}.pdf",
                 "page_count": 2, "uploaded_by_id": staff, "created_at": now} for r in rows])
            conn.execute(insert(DocumentRevision), [
                {"id": r["id"], "document_id": r["id"], "number": 1, "kind": RevisionKind.FINAL,
                 "storage_key": uuid.uuid4().hex, "sha256": "0" * 64, "size": 1000, "created_at": now}
                for r in rows])
        made += size
        print(f"  {made:,} contracts", end="\r", flush=True)
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        # PostgreSQL: VACUUM sets the visibility map, as autovacuum does after bulk inserts in
        # production (autovacuum_vacuum_insert_threshold); without it index-only scans read the rows.
        conn.execute(text("VACUUM ANALYZE" if engine.dialect.name == "postgresql" else "ANALYZE"))
    print()
    return departments, staff


def percentile(samples: list[float], share: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, round(share * (len(ordered) - 1)))]


def hwm_kib() -> int:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmHWM"):
                return int(line.split()[1])
    return 0


def run(url: str, contracts: int, repeats: int, only: list[str]) -> None:
    engine = make_engine(url)
    started = time.perf_counter()
    with engine.begin() as connection:
        migrate.upgrade(connection)
        existing = connection.scalar(select(func.count()).select_from(Contract))
    print(f"migrated in {time.perf_counter() - started:.1f} s")
    if existing:
        if existing != contracts:
            sys.exit(f"the kept database holds {existing:,} contracts, not {contracts:,}")
        with engine.connect() as connection:
            departments = list(connection.scalars(select(Department.id).order_by(Department.code)))
        print(f"reusing {existing:,} contracts")
    else:
        started = time.perf_counter()
        departments, _ = populate(engine, contracts, random.Random(7))
        print(f"loaded {contracts:,} contracts in {time.perf_counter() - started:.1f} s")
    engine.dispose()
    # The queries draw from a generator of their own: a kept database's runs ask the same.
    rng = random.Random(8)
    with tempfile.TemporaryDirectory() as tmp:
        app = create_app(initialised({"TESTING": True, "INSTANCE_PATH": f"{tmp}/instance", "DATABASE_URL": url,
                          "SECRET_KEY": "bench", "MASTER_KEY": "00" * 31 + "01", "OUTBOX_WORKER": False}))
        measure(app, departments, rng, repeats, only)
        app.extensions["portal.engine"].dispose()


def deep_cursor(session: Any, criteria: Any, actor: StaffUser, service: Any) -> tuple[int, str | None]:
    """The page 4/5 into all the matches, and the cursor of the row before it (None: fewer than 3 pages)."""
    exact = service.count_contracts(session, criteria, actor=actor)
    pages = -(-exact // criteria.per_page)
    if pages < 3:
        return 0, None
    target = max(2, pages * 4 // 5)
    row = session.scalars(service.build_query(session, criteria, actor)
                          .offset((target - 1) * criteria.per_page - 1).limit(1)).one()
    page = service.Page(items=[row], total=exact, page=target, per_page=criteria.per_page, sort=criteria.sort,
                        amount_basis=criteria.amount_basis)
    return target, page.cursor(row)


def measure_other_orders(session: Any, actors: dict[str, StaffUser], repeats: int, count_limit: int,
                         only: list[str]) -> None:
    """Orders other than 取引年月日 page by keyset links too, except 締結日時 (OFFSET, often empty)."""
    from portal.search import service
    from portal.search.criteria import parse_criteria

    print(f"{'order (no filter)':32} {'who':8} {'page':18} {'p50 ms':>8} {'p95 ms':>8}  n")
    for sort in ("date", "amount", "counterparty", "number", "completed"):
        if only and sort not in only:
            continue
        for who, actor in actors.items():
            target, cursor = deep_cursor(session, parse_criteria({"sort": sort}), actor, service)
            keyset = sort in service.KEYSET_SORTS
            deep = {"sort": sort, "page": str(target), "total": f"{count_limit}+"}
            if keyset:
                deep["after"] = cursor or ""
            pages = [("first page", {"sort": sort})] + ([("deep page (4/5 in)", deep)] if cursor is not None else [])
            for label, query in pages:
                samples = []
                for _ in range(repeats):
                    session.rollback()
                    criteria = parse_criteria(query)
                    start = time.perf_counter()
                    service.search_contracts(session, criteria, actor=actor, count_limit=count_limit)
                    samples.append(time.perf_counter() - start)
                print(f"{sort + (' (keyset)' if keyset else ' (offset)'):32} {who:8} "
                      f"{label:18} {statistics.median(samples) * 1000:8.1f} {percentile(samples, 0.95) * 1000:8.1f}"
                      f"  {len(samples)}")


def measure(app: Any, departments: list[int], rng: random.Random, repeats: int, only: list[str]) -> None:
    from portal.search import export, service
    from portal.search.criteria import parse_criteria

    factory = app.extensions["portal.session_factory"]
    companies = company_names(random.Random(7))
    with app.test_request_context(), factory() as session:
        admin = session.scalar(select(StaffUser))
        staff = StaffUser(id=admin.id + 1000, email="s@x", name="s", role=Role.STAFF, department_id=departments[3])
        auditor = StaffUser(id=admin.id + 1001, email="a@x", name="a", role=Role.AUDITOR, department_id=departments[0])

        def kinds() -> dict[str, dict[str, str]]:
            company = rng.choice(companies)
            year = rng.randrange(2016, 2026)
            low = rng.randrange(100_000, 5_000_000)
            return {
                "no filter": {},
                "counterparty substring": {"counterparty": company[len(company) // 3:]},
                "counterparty 2 chars": {"counterparty": rng.choice(PLACES)[:2]},
                "date range (1 month)": {"date_from": f"{year}-06-01", "date_to": f"{year}-06-30"},
                "amount range": {"amount_min": str(low), "amount_max": str(low + 200_000)},
                "date + amount + counterparty": {"counterparty": company[-4:], "date_from": f"{year}-01-01",
                                                 "date_to": f"{year + 2}-12-31", "amount_min": "100000",
                                                 "amount_max": "20000000"},
            }

        count_limit = int(app.config["SEARCH_COUNT_LIMIT"])
        results: dict[tuple[str, str, str], list[float]] = {}
        for _ in range(repeats):
            for kind, query in kinds().items():
                if only and kind not in only:
                    continue
                for who, actor in (("staff", staff), ("auditor", auditor)):
                    criteria = parse_criteria(query)
                    session.rollback()
                    start = time.perf_counter()
                    service.search_contracts(session, criteria, actor=actor, count_limit=count_limit)
                    results.setdefault((kind, who, "first page"), []).append(time.perf_counter() - start)
                    target, cursor = deep_cursor(session, criteria, actor, service)
                    if cursor is None:
                        continue
                    # A deep page as the screen reaches it: page links continue from the row before.
                    deep = parse_criteria({**query, "page": str(target), "total": f"{count_limit}+", "after": cursor})
                    session.rollback()
                    start = time.perf_counter()
                    service.search_contracts(session, deep, actor=actor, count_limit=count_limit)
                    results.setdefault((kind, who, "deep page (4/5 in)"), []).append(time.perf_counter() - start)
        print(f"{'query':32} {'who':8} {'page':18} {'p50 ms':>8} {'p95 ms':>8}  n")
        order = list(kinds())
        for (kind, who, page), samples in sorted(results.items(),
                                                 key=lambda i: (order.index(i[0][0]), i[0][1], i[0][2])):
            print(f"{kind:32} {who:8} {page:18} {statistics.median(samples) * 1000:8.1f} "
                  f"{percentile(samples, 0.95) * 1000:8.1f}  {len(samples)}")

        measure_other_orders(session, {"staff": staff, "auditor": auditor}, repeats, count_limit, only)
        if only and "csv" not in only:
            return

        session.rollback()
        criteria = parse_criteria({"date_from": "2024-04-01", "date_to": "2025-03-31"})
        try:
            with open("/proc/self/clear_refs", "w") as refs:
                refs.write("5")  # reset VmHWM: the peak below is the export's own
        except OSError:
            pass
        before = hwm_kib()
        start = time.perf_counter()
        size = rows = 0
        for chunk in export.stream_csv(service.export_rows(session, criteria, actor=auditor)):
            size += len(chunk)
            rows += chunk.count(b"\r\n")
        elapsed = time.perf_counter() - start
        print(f"CSV export of one year: {rows - 1:,} rows, {size / 1e6:.1f} MB in {elapsed:.2f} s, "
              f"peak RSS +{(hwm_kib() - before) / 1024:.1f} MiB")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--contracts", type=int, default=20_000)
    parser.add_argument("--database", default="sqlite", help="sqlite, or a PostgreSQL URL to create a database next to")
    parser.add_argument("--repeats", type=int, default=10)
    parser.add_argument("--keep", metavar="NAME",
                        help="build into this database and keep it, or reuse it when built (SQLite: a file; "
                             "PostgreSQL: a database name on the --database server); remove it by hand")
    parser.add_argument("--only", action="append", default=[], metavar="KIND",
                        help="measure only this query kind (e.g. 'amount range'), order (date, amount, "
                             "counterparty, number, completed) or 'csv'; repeatable")
    args = parser.parse_args()
    with kept_database(args.database, args.keep) if args.keep else scratch_database(args.database) as url:
        print(f"{database_label(url)}, {args.contracts:,} contracts")
        run(url, args.contracts, args.repeats, args.only)


@contextmanager
def kept_database(option: str, name: str) -> Iterator[str]:
    if option == "sqlite":
        yield f"sqlite:///{Path(name).resolve()}"
        return
    base = make_url(option)
    admin = create_engine(base, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        if not conn.scalar(text("SELECT 1 FROM pg_database WHERE datname = :name"), {"name": name}):
            conn.execute(text(f'CREATE DATABASE "{name}"'))
    admin.dispose()
    yield base.set(database=name).render_as_string(hide_password=False)


if __name__ == "__main__":
    main()
