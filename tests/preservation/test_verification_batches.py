"""一括検証 in child processes and with results committed in batches: the same results as one document at a
time in the worker, and a run resumed after a failure verifies only what was not committed."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from flask import Flask
from sqlalchemy import select, update
from sqlalchemy.orm import Session

from portal import clock
from portal.jobs.models import QueuedJob, QueuedJobStatus
from portal.preservation import verification
from portal.preservation.models import RunStatus, VerificationResult, VerificationRun
from portal.signing.context import SigningContext
from tests.conftest import reread
from tests.preservation.test_verification import _signed, _three_signed_contracts
from tests.search.conftest import World
from tests.search.factories import MINIMAL_PDF, make_contract

DOCUMENTS = 7


def _seven_documents(app: Flask, session: Session, world: World, context: SigningContext) -> None:
    """V-1 intact, V-2 altered in storage, V-3 signature broken, V-4 not a PDF, V-5 unsigned, V-6, V-7 intact."""
    _three_signed_contracts(app, session, world, context)
    intact = _signed(context, "keiyaku-6")
    for number, data in (("V-4", b"%PDF-1.7 this is not a PDF at all"), ("V-5", MINIMAL_PDF), ("V-6", intact),
                         ("V-7", intact)):
        make_contract(session, number=number, department=world.department_a, created_by=world.staff_a,
                      transaction_date=dt.date(2026, 4, 11), amount=1_100_000, tax_amount=100_000,
                      documents={f"{number}.pdf": data})


def _start(app: Flask, session: Session, world: World) -> int:
    with app.app_context():
        run = verification.start_batch_verification(session, period_from=dt.date(2026, 4, 1),
                                                    period_to=dt.date(2026, 4, 30), actor=world.auditor,
                                                    now=clock.now())
        session.commit()
    return run.id


def _outcome(session: Session, run_id: int) -> tuple[Any, list[tuple[Any, ...]]]:
    run = reread(session).get(VerificationRun, run_id)
    assert run is not None
    results = session.scalars(select(VerificationResult).where(VerificationResult.run_id == run_id)
                              .order_by(VerificationResult.id)).all()
    return ((run.status, run.total, run.processed, run.failed),
            [(r.contract_number, r.filename, r.sha256, r.is_valid, r.signature_count, r.level, r.timestamp_at,
              r.problems) for r in results])


def test_a_run_in_processes_and_batches_has_the_results_of_a_serial_run(
    app: Flask, session: Session, world: World, context: SigningContext, monkeypatch: pytest.MonkeyPatch
) -> None:
    _seven_documents(app, session, world, context)
    serial = _start(app, session, world)
    assert verification.run_batch_verification(app, serial)
    monkeypatch.setitem(app.config, "VERIFY_PROCESSES", 2)
    monkeypatch.setattr(verification, "RESULTS_PER_COMMIT", 2)
    parallel = _start(app, session, world)
    assert verification.run_batch_verification(app, parallel)

    counts, results = _outcome(session, serial)
    assert counts == (RunStatus.FINISHED, DOCUMENTS, DOCUMENTS, 4)
    assert [(number, is_valid, level) for number, _, _, is_valid, _, level, _, _ in results] == [
        ("V-1", True, "B-LTA"), ("V-2", False, ""), ("V-3", False, ""), ("V-4", False, ""), ("V-5", False, ""),
        ("V-6", True, "B-LTA"), ("V-7", True, "B-LTA")]
    assert "PDF として読み取れません" in results[3][-1][0]
    assert _outcome(session, parallel) == (counts, results)


def test_a_run_resumed_after_a_failure_verifies_only_the_documents_whose_results_were_not_committed(
    app: Flask, session: Session, world: World, context: SigningContext, monkeypatch: pytest.MonkeyPatch
) -> None:
    _seven_documents(app, session, world, context)
    run_id = _start(app, session, world)
    monkeypatch.setattr(verification, "RESULTS_PER_COMMIT", 2)
    monkeypatch.setattr(verification, "SECONDS_PER_COMMIT", 3600)
    verified: list[str] = []
    stop_after = [3]
    verify_bytes = verification.verify_bytes

    def counted(data: bytes, sha256: str, *, context: SigningContext) -> verification.Verdict:
        if len(verified) == stop_after[0]:
            raise RuntimeError("the worker stops here")
        verified.append(sha256)
        return verify_bytes(data, sha256, context=context)

    monkeypatch.setattr(verification, "verify_bytes", counted)
    factory = app.extensions["portal.session_factory"]
    with app.app_context(), factory() as worker_session, pytest.raises(RuntimeError):
        verification._run(worker_session, run_id)
    # V-2's bytes fail their check in the store and never reach verify_bytes: V-1, V-3 and V-4 were verified.
    # The first result is committed alone, then V-2 and V-3 together; V-4's result was not committed.
    status, results = _outcome(session, run_id)
    assert (status[2], [r[0] for r in results]) == (3, ["V-1", "V-2", "V-3"])

    verified.clear()
    stop_after[0] = DOCUMENTS
    with app.app_context(), factory() as worker_session:
        verification._run(worker_session, run_id)
        worker_session.commit()
    assert len(verified) == 4  # V-4 again, V-5, V-6, V-7
    status, results = _outcome(session, run_id)
    assert status == (RunStatus.FINISHED, DOCUMENTS, DOCUMENTS, 4)
    assert [r[0] for r in results] == ["V-1", "V-2", "V-3", "V-4", "V-5", "V-6", "V-7"]


def test_a_worker_whose_run_was_taken_over_stores_no_more_results(
    app: Flask, session: Session, world: World, context: SigningContext, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A worker that stalled (its heartbeat stopped, another worker claimed the job) and then woke up: its next
    batch is refused and it stops, so the run's results are the taking-over worker's alone."""
    _seven_documents(app, session, world, context)
    run_id = _start(app, session, world)
    monkeypatch.setattr(verification, "RESULTS_PER_COMMIT", 2)
    monkeypatch.setattr(verification, "SECONDS_PER_COMMIT", 3600)
    verified: list[str] = []
    verify_bytes = verification.verify_bytes

    def taken_over_after_three(data: bytes, sha256: str, *, context: SigningContext) -> verification.Verdict:
        if len(verified) == 3:
            session.execute(update(QueuedJob).where(QueuedJob.kind == verification.VERIFY_JOB,
                                                    QueuedJob.key == str(run_id))
                            .values(claimed_by="other-host:1:1", heartbeat_at=clock.now()))
            session.commit()
        verified.append(sha256)
        return verify_bytes(data, sha256, context=context)

    monkeypatch.setattr(verification, "verify_bytes", taken_over_after_three)
    assert verification.run_batch_verification(app, run_id)
    # V-1 alone, then V-2 and V-3 were stored; the batch of V-4 and V-5 was refused and the worker stopped.
    status, results = _outcome(session, run_id)
    assert (status[0], status[2], [r[0] for r in results]) == (RunStatus.RUNNING, 3, ["V-1", "V-2", "V-3"])
    assert len(verified) == 4
    job = reread(session).scalar(select(QueuedJob).where(QueuedJob.key == str(run_id)))
    assert (job.status, job.claimed_by) == (QueuedJobStatus.RUNNING, "other-host:1:1")
