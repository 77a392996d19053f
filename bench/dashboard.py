"""The staff to-do lists: queries per call and time, for a department with 1,000 contracts, printed (never asserted).

    .venv/bin/python bench/dashboard.py                    # SQLite
    .venv/bin/python bench/dashboard.py --contracts 10000 --database postgresql+psycopg://postgres@127.0.0.1:5432/postgres

Two departments with --contracts contracts each in every status (the approver is every contract's agency
signer; every 20th contract has a locked link), 200 usage requests, 100 failed mails. For a
clerk, an approver and an administrator: the number of SQL statements and the median time of the
menu counts (portal.home.service.counts) and of the home page's lists (todo_lists). The number of
statements must not grow with the number of contracts. PostgreSQL: a throw-away database next to
the given URL's, dropped after.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from sqlalchemy import event, insert, text

from bench.databases import label, scratch_database
from portal import create_app, migrate
from portal.auth.models import Department, Role, StaffUser
from portal.clock import JST
from portal.contracts.models import (
    Contract,
    ContractStatus,
    Party,
    PartyRole,
    PartyStatus,
    RequestStatus,
    SignatureRequest,
)
from portal.db import make_engine
from portal.instance import initialised
from portal.mail.models import OutboxMessage, OutboxStatus
from portal.usage_requests.models import Channel, UsageRequest, UsageRequestStatus

STATUSES = list(ContractStatus)


def populate(engine: Any, per_department: int) -> dict[str, int]:
    now = datetime.now(UTC)
    today = now.astimezone(JST).date()
    users: dict[str, int] = {}
    with engine.begin() as conn:
        departments = [conn.execute(insert(Department).values(code=f"D{n}", name=f"部署{n}", created_at=now)
                                    .returning(Department.id)).scalar_one() for n in range(2)]
        for key, role, department in (("staff", Role.STAFF, 0), ("approver", Role.APPROVER, 0),
                                      ("admin", Role.ADMIN, 1)):
            users[key] = conn.execute(insert(StaffUser).values(
                email=f"{key}@pref.example.jp", name=key, role=role, department_id=departments[department],
                password_hash="x", is_active=True, created_at=now).returning(StaffUser.id)).scalar_one()
        contracts, parties, requests = [], [], []
        for n in range(2 * per_department):
            status = STATUSES[(n // 2) % len(STATUSES)]  # every status in both departments
            contract_id = n + 1
            contracts.append({
                "id": contract_id, "number": f"D-{contract_id:07d}", "business_name": "庁舎清掃業務委託",
                "department_id": departments[n % 2], "counterparty_name": "株式会社けいやく商事",
                "counterparty_name_normalized": "けいやく商事", "amount": 1_100_000, "tax_amount": 100_000,
                "transaction_date": today, "planned_conclusion_date": today + timedelta(days=n % 30),
                "status": status, "created_by_id": users["staff"], "created_at": now, "updated_at": now,
                "access_code_hash": "x" if n % 40 in (6, 7) else None})
            agency_turn = status is ContractStatus.AWAITING_AGENCY
            vendor_turn = status is ContractStatus.AWAITING_COUNTERPARTY
            parties.append({"id": 2 * contract_id - 1, "contract_id": contract_id, "position": 1,
                            "role": PartyRole.COUNTERPARTY, "organization": "株式会社けいやく商事", "name": "山田 太郎",
                            "email": f"yamada{n}@keiyaku-shoji.co.jp", "staff_user_id": None, "auth_methods": [],
                            "reminders_sent": [],
                            "status": PartyStatus.REQUESTED if vendor_turn else PartyStatus.SIGNED})
            parties.append({"id": 2 * contract_id, "contract_id": contract_id, "position": 2, "role": PartyRole.AGENCY,
                            "organization": "部署0", "name": "approver", "email": "approver@pref.example.jp",
                            "staff_user_id": users["approver"], "auth_methods": [], "reminders_sent": [],
                            "status": PartyStatus.REQUESTED if agency_turn else PartyStatus.WAITING})
            if vendor_turn:
                requests.append({"party_id": 2 * contract_id - 1, "token_hash": uuid.uuid4().hex * 2,
                                 "status": RequestStatus.OPEN, "created_at": now,
                                 "expires_at": now + timedelta(days=30),
                                 "failed_code_attempts": 5 if n % 40 in (6, 7) else 0})
        conn.execute(insert(Contract), contracts)
        conn.execute(insert(Party), parties)
        if requests:
            conn.execute(insert(SignatureRequest), requests)
        conn.execute(insert(UsageRequest), [{
            "receipt_number": f"R{n:06d}", "status": UsageRequestStatus.PENDING, "channel": Channel.WEB,
            "department_id": departments[n % 2], "form_date": today, "address": "岡山県", "company_name": "商事",
            "representative": "代表", "contact_person": "担当", "contact_phone": "086", "contact_email": "a@b.jp",
            "contract_name": "業務", "authority_title": "代表", "authority_name": "氏名", "authority_email": "a@b.jp",
            "submitted_at": now} for n in range(200)])
        conn.execute(insert(OutboxMessage), [{
            "template": "bench", "recipient": "a@b.jp", "subject": "件名", "body": "本文",
            "status": OutboxStatus.FAILED, "created_at": now, "next_attempt_at": now} for _ in range(100)])
        conn.execute(text("ANALYZE"))
    return users


def measure(app: Any, users: dict[str, int], repeats: int) -> None:
    from portal.home import service

    engine = app.extensions["portal.engine"]
    statements: list[str] = []
    event.listen(engine, "before_cursor_execute", lambda *args: statements.append(args[2]))
    today = datetime.now(UTC).astimezone(JST).date()
    with app.app_context(), app.extensions["portal.session_factory"]() as session:
        for key in ("staff", "approver", "admin"):
            user = session.get(StaffUser, users[key])
            assert user is not None
            for name, call in (("menu counts", lambda u=user: service.counts(session, u, today=today)),
                               ("home lists", lambda u=user: service.todo_lists(session, u, today=today))):
                call()  # warm
                times = []
                for _ in range(repeats):
                    statements.clear()
                    start = time.perf_counter()
                    result = call()
                    times.append((time.perf_counter() - start) * 1000)
                summary = result if isinstance(result, dict) else {t.key: t.count for t in result}
                print(f"{key:8} {name:11}: {len(statements):2} queries, median {statistics.median(times):6.1f} ms"
                      f"  {summary}")


def run(url: str, per_department: int, repeats: int) -> None:
    engine = make_engine(url)
    with engine.begin() as connection:
        migrate.upgrade(connection)
    users = populate(engine, per_department)
    engine.dispose()
    with tempfile.TemporaryDirectory() as tmp:
        app = create_app(initialised({"TESTING": True, "INSTANCE_PATH": f"{tmp}/instance", "DATABASE_URL": url,
                          "SECRET_KEY": "bench", "MASTER_KEY": "00" * 31 + "01", "OUTBOX_WORKER": False}))
        measure(app, users, repeats)
        app.extensions["portal.engine"].dispose()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--contracts", type=int, default=1000, help="contracts per department")
    parser.add_argument("--database", default="sqlite", help="sqlite, or a PostgreSQL URL to create a database next to")
    parser.add_argument("--repeats", type=int, default=20)
    args = parser.parse_args()
    with scratch_database(args.database) as url:
        print(f"{label(url)}, {args.contracts:,} contracts per department")
        run(url, args.contracts, args.repeats)


if __name__ == "__main__":
    main()
