"""Archive-timestamp renewal throughput, printed (never asserted).

    .venv/bin/python bench/renew.py                  # 40 documents
    .venv/bin/python bench/renew.py --documents 500

N completed contracts, each with its own stored copy (encrypted like every document) of a B-LTA
PDF whose document timestamp's TSA certificate expires in 10 days; the built-in TSA certificate is
renewed, then one renewal pass (`flask timestamps renew`: read, check, DSS + new document
timestamp, store the new revision, audit) runs over them: documents per second. A second pass,
where nothing is due, shows the cost of checking alone.
"""

from __future__ import annotations

import argparse
import datetime as dt
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from portal import clock, create_app, migrate
from portal.db import make_engine
from portal.preservation import renewal
from portal.signing import pki as local_pki
from portal.signing import service as signing
from portal.signing.lifecycle import renew_due_certificates
from portal.signing.pades import Approval, finalize, sign_approval
from tests.factories import make_department, make_staff
from tests.pdfs import make_pdf
from tests.search.factories import make_contract


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--documents", type=int, default=40)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        url = f"sqlite:///{tmp}/renew.sqlite3"
        engine = make_engine(url)
        with engine.begin() as connection:
            migrate.upgrade(connection)
        engine.dispose()
        config = {"TESTING": True, "INSTANCE_PATH": f"{tmp}/instance", "DATABASE_URL": url, "OUTBOX_WORKER": False,
                  "ARGON2_TIME_COST": 1, "ARGON2_MEMORY_KIB": 64, "PKI_DIR": f"{tmp}/pki"}
        pki = signing.ensure_pki(config)
        local_pki.renew_certificate(pki, local_pki.TSA_NAME, lifetime=dt.timedelta(days=10))
        app = create_app(config)
        session = app.extensions["portal.session_factory"]()
        session.info["app"] = app
        department = make_department(session)
        staff = make_staff(session, department=department)
        with app.app_context():
            context = signing.configure(app.config)
            approval = Approval("山田 太郎", "yamada@vendor.example.co.jp", dt.datetime(2026, 4, 1, tzinfo=dt.UTC))
            data = finalize(sign_approval(make_pdf("keiyaku"), approval, context=context), context=context)
        for n in range(args.documents):
            make_contract(session, number=f"T-{n:06d}", department=department, created_by=staff,
                          transaction_date=dt.date(2026, 4, 10), amount=1_100_000, tax_amount=100_000,
                          documents={f"T-{n:06d}.pdf": data})
        time.sleep(1.1)
        with app.app_context():
            renew_due_certificates(session, signing.ensure_pki(app.config), app.config, now=clock.now())
            session.commit()
            context = signing.configure(app.config)
            start = time.perf_counter()
            run = renewal.renew_due(session, app.config, context, now=clock.now())
            elapsed = time.perf_counter() - start
            start = time.perf_counter()
            again = renewal.renew_due(session, app.config, context, now=clock.now())
            check_elapsed = time.perf_counter() - start
        rate = len(run.renewed) / elapsed
        print(f"タイムスタンプ更新: {len(run.renewed)} of {run.checked} documents ({len(data) / 1024:.0f} KiB each, "
              f"B-LTA) renewed in {elapsed:.1f} s = {rate:.1f} documents/s, {len(run.failed)} failed; "
              f"a pass with nothing due: {again.checked} checked in {check_elapsed:.1f} s "
              f"= {again.checked / check_elapsed:.0f} documents/s, {len(again.renewed)} renewed")
        session.close()


if __name__ == "__main__":
    main()
