"""一括検証 throughput, printed (never asserted).

    .venv/bin/python bench/verify.py                  # 40 documents (make bench)
    .venv/bin/python bench/verify.py --documents 1000
    .venv/bin/python bench/verify.py --documents 1000 --processes 1   # serial, in the worker itself

N completed contracts, each with its own stored copy (encrypted like every document) of a
B-LTA PDF signed by the built-in PKI and TSA, then one 一括検証 run over them as the worker runs
it: documents per second, and the time 100,000 documents would take at that rate.
Target: 100,000 documents in under an hour on 2 cores (28 documents per second).
"""

from __future__ import annotations

import argparse
import datetime as dt
import resource
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from portal import clock, create_app, migrate
from portal.auth.models import Role
from portal.db import make_engine
from portal.preservation import verification
from portal.preservation.models import VerificationRun
from portal.signing import service as signing
from portal.signing.pades import Approval, finalize, sign_approval
from tests.factories import make_department, make_staff
from tests.pdfs import make_pdf
from tests.search.factories import make_contract


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--documents", type=int, default=40)
    parser.add_argument("--processes", type=int, default=0, help="VERIFY_PROCESSES (0: one per CPU)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        url = f"sqlite:///{tmp}/verify.sqlite3"
        engine = make_engine(url)
        with engine.begin() as connection:
            migrate.upgrade(connection)
        engine.dispose()
        app = create_app({"TESTING": True, "INSTANCE_PATH": f"{tmp}/instance", "DATABASE_URL": url,
                          "OUTBOX_WORKER": False, "ARGON2_TIME_COST": 1, "ARGON2_MEMORY_KIB": 64,
                          "VERIFY_PROCESSES": args.processes})
        session = app.extensions["portal.session_factory"]()
        session.info["app"] = app
        department = make_department(session)
        staff = make_staff(session, department=department)
        auditor = make_staff(session, email="audit@pref.example.jp", role=Role.AUDITOR, department=department)
        with app.app_context():
            context = signing.configure(app.config)
            approval = Approval("山田 太郎", "yamada@vendor.example.co.jp", dt.datetime(2026, 4, 1, tzinfo=dt.UTC))
            data = finalize(sign_approval(make_pdf("keiyaku"), approval, context=context), context=context)
        for n in range(args.documents):
            make_contract(session, number=f"V-{n:06d}", department=department, created_by=staff,
                          transaction_date=dt.date(2026, 4, 10), amount=1_100_000, tax_amount=100_000,
                          documents={f"V-{n:06d}.pdf": data})
        with app.app_context():
            run = verification.start_batch_verification(session, period_from=dt.date(2026, 4, 1),
                                                        period_to=dt.date(2026, 4, 30), actor=auditor,
                                                        now=clock.now())
            session.commit()
            cpu_before = _cpu_seconds()
            start = time.perf_counter()
            verification.run_batch_verification(app, run.id)
            elapsed = time.perf_counter() - start
            cpu = _cpu_seconds() - cpu_before
        session.expire_all()
        finished = session.get(VerificationRun, run.id)
        assert finished is not None
        rate = finished.processed / elapsed
        print(f"一括検証: {finished.processed} documents ({len(data) / 1024:.0f} KiB each, B-LTA) in {elapsed:.1f} s "
              f"= {rate:.1f} documents/s with VERIFY_PROCESSES={args.processes}, {finished.failed} failed; "
              f"100,000 documents would take "
              f"{100_000 / rate / 3600:.1f} h; CPU {cpu / finished.processed * 1000:.1f} ms per document "
              f"(this process and its verifying processes)")
        session.close()


def _cpu_seconds() -> float:
    """User + system time of this process and of its children that have ended (the verifying processes end
    with the run)."""
    own, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


if __name__ == "__main__":
    main()
