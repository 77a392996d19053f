"""R25: 一括検証 reports every failure, including a document whose stored bytes were altered."""

from __future__ import annotations

import csv
import datetime as dt
import io
from pathlib import Path

from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from portal import clock
from portal.contracts.models import Contract
from portal.jobs import run_queued_jobs
from portal.preservation import verification
from portal.preservation.models import RunStatus, VerificationRun
from portal.signing.context import SigningContext
from portal.signing.pades import Approval, finalize, sign_approval
from tests.conftest import post_form, reread
from tests.factories import login_as
from tests.pdfs import make_pdf
from tests.search.conftest import World
from tests.search.factories import make_contract


def _signed(context: SigningContext, text: str) -> bytes:
    approval = Approval("山田 太郎", "yamada@vendor.example.co.jp", dt.datetime(2026, 4, 1, tzinfo=dt.UTC))
    return finalize(sign_approval(make_pdf(text), approval, context=context), context=context)


def _three_signed_contracts(app: Flask, session: Session, world: World, context: SigningContext) -> None:
    """V-1 intact; V-2 altered in storage after saving; V-3 altered before saving (signature broken)."""
    broken = bytearray(_signed(context, "keiyaku-3"))
    position = bytes(broken).index(b"(keiyaku-3 page 1) Tj")
    broken[position + 1] ^= 0x01
    for number, data in (("V-1", _signed(context, "keiyaku-1")), ("V-2", _signed(context, "keiyaku-2")),
                         ("V-3", bytes(broken))):
        make_contract(session, number=number, department=world.department_a, created_by=world.staff_a,
                      transaction_date=dt.date(2026, 4, 10), amount=1_100_000, tax_amount=100_000,
                      documents={f"{number}.pdf": data})
    revision = session.scalar(select(Contract).where(Contract.number == "V-2")).documents[0].current  # type: ignore[union-attr]
    path = Path(app.config["STORAGE_DIR"]) / revision.storage_key[:2] / revision.storage_key
    path.chmod(0o600)
    raw = bytearray(path.read_bytes())
    raw[-100] ^= 0x01  # one bit in the sealed body
    path.write_bytes(bytes(raw))


def test_background_run_reports_altered_storage_and_broken_signatures(
    app: Flask, session: Session, world: World, context: SigningContext
) -> None:
    _three_signed_contracts(app, session, world, context)
    with app.app_context():
        run = verification.start_batch_verification(session, period_from=dt.date(2026, 4, 1),
                                                    period_to=dt.date(2026, 4, 30), actor=world.auditor,
                                                    now=clock.now())
        session.commit()
        assert run_queued_jobs() == 1  # what the worker does

    run = reread(session).get(VerificationRun, run.id)
    assert run is not None
    assert (run.status, run.total, run.processed, run.failed) == (RunStatus.FINISHED, 3, 3, 2)
    results = {r.contract_number: r for r in run.results}
    assert results["V-1"].is_valid
    assert results["V-1"].level == "B-LTA"
    assert results["V-1"].timestamp_at
    assert not results["V-2"].is_valid
    assert "改ざんされた可能性" in results["V-2"].problems[0]
    assert not results["V-3"].is_valid
    assert results["V-3"].problems


def test_page_shows_progress_and_the_report_lists_counts_and_every_failure(
    app: Flask, client: FlaskClient, session: Session, world: World, context: SigningContext
) -> None:
    _three_signed_contracts(app, session, world, context)
    app.config["VERIFICATION_BACKGROUND"] = False
    login_as(client, world.auditor)

    response = post_form(client, "/preservation/verification", {"period_from": "令和8年4月1日", "period_to": "R8.4.30"})

    assert response.status_code == 303
    page = client.get(response.headers["Location"], headers={"HX-Request": "true"}).get_data(as_text=True)
    assert "3 / 3 件 検証済み" in page
    assert "失敗 <strong>2</strong> 件" in page
    assert "every 1s" not in page
    run_id = response.headers["Location"].rstrip("/").rsplit("/", 1)[1]
    report = client.get(f"/preservation/verification/{run_id}/report.csv").get_data()
    assert report.startswith(b"\xef\xbb\xbf")
    rows = list(csv.reader(io.StringIO(report.decode("utf-8-sig"))))
    assert rows[1][:6] == ["対象文書数", "3", "検証済み", "3", "失敗", "2"]
    assert [(r[0], r[3]) for r in rows[4:]] == [("V-2", "失敗"), ("V-3", "失敗"), ("V-1", "有効")]


def test_running_job_is_polled(app: Flask, client: FlaskClient, session: Session, world: World) -> None:
    run = VerificationRun(period_from=dt.date(2026, 4, 1), period_to=dt.date(2026, 4, 30), status=RunStatus.RUNNING,
                          total=10, processed=4, started_by_id=world.auditor.id, created_at=clock.now())
    session.add(run)
    session.commit()
    login_as(client, world.auditor)

    html = client.get(f"/preservation/verification/{run.id}", headers={"HX-Request": "true"}).get_data(as_text=True)

    assert 'hx-trigger="every 1s"' in html
    assert "4 / 10 件" in html
    assert "40%" in html


def test_staff_cannot_start_a_verification(client: FlaskClient, world: World) -> None:
    login_as(client, world.staff_a)

    assert client.get("/preservation/verification").status_code == 403
