"""「署名手続きを完了する」 for a 3-document envelope, end to end through the HTTP view, printed (never asserted).

    .venv/bin/python bench/contract_signing.py

Each run: a fresh contract with three 1-page PDFs is sent; the counterparty's POST /s/<token>/complete is
timed (lock, 3 × sign_approval B-T, 3 stored revisions, audit, next signer's mail), then the agency's POST
/s/staff/<id>/complete (3 × sign_approval + 3 × finalize B-LTA + the signed 合意締結証明書 + completion mails).
SQLite in a temporary instance, built-in PKI and TSA. Also prints the counterparty POST's CPU (every thread of
this process: the signatures run on the signing thread) and how many SQL statements it runs.
"""

from __future__ import annotations

import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from sqlalchemy import event

from portal import create_app, migrate
from portal.db import make_engine
from tests.conftest import csrf_from
from tests.contracts.fixtures import World
from tests.pdfs import make_pdf

RUNS = int(__import__("os").environ.get("RUNS", "15"))


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        url = f"sqlite:///{tmp}/bench.sqlite3"
        engine = make_engine(url)
        with engine.begin() as connection:
            migrate.upgrade(connection)
        engine.dispose()
        app = create_app({"TESTING": True, "INSTANCE_PATH": f"{tmp}/instance", "DATABASE_URL": url,
                          "SECRET_KEY": "insecure-test-key", "MASTER_KEY": "00" * 31 + "01", "ARGON2_TIME_COST": 1,
                          "ARGON2_MEMORY_KIB": 64, "RATELIMIT_ENABLED": False,
                          "OUTBOX_WORKER": False, "COMPLETION_BACKGROUND": False, "PUBLIC_BASE_URL": "http://localhost"})
        statements: list[str] = []
        event.listen(app.extensions["portal.engine"], "before_cursor_execute",
                     lambda _c, _cu, statement, *_: statements.append(statement))
        session = app.extensions["portal.session_factory"]()
        session.info["app"] = app
        world = World(app, session)
        counterparty, agency, counterparty_cpu, counted = [], [], [], []
        documents = [make_pdf(f"document {n}", 1) for n in range(3)]
        for _ in range(RUNS + 1):
            contract_id = world.sent_contract(*documents)
            link = world.signing_link()
            token = csrf_from(world.signer_client.get(link).get_data(as_text=True))
            statements.clear()
            start, cpu = time.perf_counter(), time.process_time()
            response = world.signer_client.post(f"{link}/complete", data={"csrf_token": token})
            counterparty.append(time.perf_counter() - start)
            counterparty_cpu.append(time.process_time() - cpu)
            counted.append(len(statements))
            assert "署名手続きが完了しました" in response.get_data(as_text=True), response.get_data(as_text=True)[-800:]
            party_id = world.party_ids(contract_id)[1]
            token = csrf_from(world.approver_client.get(f"/s/staff/{party_id}").get_data(as_text=True))
            start = time.perf_counter()
            response = world.approver_client.post(f"/s/staff/{party_id}/complete", data={"csrf_token": token})
            agency.append(time.perf_counter() - start)
            assert world.contract(contract_id).status.value == "completed"
        in_process = _in_process(app, documents)
        session.close()
    # the first run builds caches (PKI load, CMS template); leave it out
    cases = (("in-process 3 × sign_approval (B-T)", in_process[1:]),
             ("counterparty (3 × B-T)", counterparty[1:]),
             ("agency, last (3 × B-T + B-LTA + certificate)", agency[1:]))
    for label, samples in cases:
        print(f"{label:48} median {statistics.median(samples) * 1000:7.1f} ms   "
              f"min {min(samples) * 1000:7.1f} ms   max {max(samples) * 1000:7.1f} ms   n={len(samples)}")
    overhead = statistics.median(counterparty[1:]) - statistics.median(in_process[1:])
    print(f"{'HTTP overhead over the in-process signatures':48} median {overhead * 1000:7.1f} ms")
    cpu = statistics.median(counterparty_cpu[1:])
    print(f"{'counterparty: CPU (all threads), SQL statements':48} median {cpu * 1000:7.1f} ms   "
          f"statements {statistics.median(counted[1:]):.0f}")


def _in_process(app: object, documents: list[bytes]) -> list[float]:
    """The counterparty's three signatures alone, as the view makes them, with the same context."""
    import datetime as dt

    from portal.contracts.signatures import context
    from portal.signing.pades import Approval, sign_approval

    samples = []
    with app.app_context():  # type: ignore[attr-defined]
        ctx = context()
        for _ in range(RUNS + 1):
            approval = Approval("株式会社けいやく商事 山田 太郎", "yamada@keiyaku-shoji.co.jp", dt.datetime.now(dt.UTC))
            start = time.perf_counter()
            for document in documents:
                sign_approval(document, approval, context=ctx)
            samples.append(time.perf_counter() - start)
    return samples


if __name__ == "__main__":
    main()
