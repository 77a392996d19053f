"""Completion off the signer's click: 締結処理中 at once, the worker finalizes, retried through a TSA outage,
exactly once with several workers; the signer's PDF work never holds the database's write lock."""

from __future__ import annotations

import sqlite3
import threading
from typing import Any

import pytest
from sqlalchemy import func, select

from portal.audit.models import AuditEvent
from portal.contracts import signatures
from portal.contracts.completion import COMPLETION_JOB
from portal.contracts.models import ContractStatus, DocumentRevision, RevisionKind
from portal.jobs.models import QueuedJob, QueuedJobStatus
from portal.jobs.queue import run_now
from portal.signing.errors import TimestampUnavailable
from tests.contracts.fixtures import break_tsa
from tests.pdfs import make_pdf
from tests.printing.pdfcheck import require_font


@pytest.fixture
def app_config(pki_dir: str) -> dict[str, Any]:
    return {"PKI_DIR": pki_dir, "COMPLETION_BACKGROUND": True, "COMPLETION_RETRY_BASE_SECONDS": 0}


def _sign_both(world) -> int:
    contract_id = world.sent_contract(make_pdf("a"), make_pdf("b"))
    assert world.sign_as_counterparty(world.signing_link()).status_code == 200
    response = world.sign_as_agency(world.party_ids(contract_id)[1])
    body = response.get_data(as_text=True)
    assert "署名手続きが完了しました" in body
    assert "締結処理中" in body
    return contract_id


def _events(world, action: str) -> int:
    world.refresh()
    return world.session.scalar(select(func.count()).select_from(AuditEvent).where(AuditEvent.action == action))


def _finals(world) -> int:
    world.refresh()
    return world.session.scalar(select(func.count()).select_from(DocumentRevision)
                                .where(DocumentRevision.kind == RevisionKind.FINAL))


def test_the_last_signature_commits_at_once_and_the_worker_completes(app, world):
    contract_id = _sign_both(world)
    contract = world.contract(contract_id)
    assert contract.status is ContractStatus.COMPLETING
    assert contract.status.label == "締結処理中"
    assert all(d.current.kind is RevisionKind.SIGNED for d in contract.documents)
    assert world.outbox("signature_completed") == []
    page = world.staff_client.get(f"/contracts/{contract_id}").get_data(as_text=True)
    assert "締結処理中" in page
    with app.app_context():
        assert run_now(COMPLETION_JOB, contract_id)
    contract = world.contract(contract_id)
    assert contract.status is ContractStatus.COMPLETED
    assert all(d.current.kind is RevisionKind.FINAL for d in contract.documents)
    assert contract.certificate_sha256
    assert len(world.outbox("signature_completed")) == 2
    with app.app_context():
        assert not run_now(COMPLETION_JOB, contract_id)
    assert _events(world, "system:contract:completed") == 1


def test_a_tsa_outage_at_completion_delays_it_and_never_loses_it(app, world, monkeypatch):
    contract_id = _sign_both(world)
    break_tsa(app, monkeypatch)
    with app.app_context():
        assert run_now(COMPLETION_JOB, contract_id)
        assert run_now(COMPLETION_JOB, contract_id)  # retried (no backoff in this test): the TSA still refuses
    world.refresh()
    job = world.session.scalar(select(QueuedJob).where(QueuedJob.kind == COMPLETION_JOB))
    assert job.status is QueuedJobStatus.PENDING
    assert job.attempts == 2
    assert f"TimestampUnavailable: {TimestampUnavailable.default_message}" in job.last_error
    assert world.contract(contract_id).status is ContractStatus.COMPLETING
    assert _finals(world) == 0
    assert world.outbox("signature_completed") == []

    monkeypatch.undo()
    with app.app_context():
        assert run_now(COMPLETION_JOB, contract_id)
    assert world.contract(contract_id).status is ContractStatus.COMPLETED
    assert _finals(world) == 2
    assert len(world.outbox("signature_completed")) == 2
    assert _events(world, "system:contract:completed") == 1


def test_two_workers_complete_a_contract_once(app, world):
    contract_id = _sign_both(world)
    barrier = threading.Barrier(2)
    results: list[bool] = []
    errors: list[BaseException] = []

    def work() -> None:
        try:
            with app.app_context():
                barrier.wait()
                results.append(run_now(COMPLETION_JOB, contract_id))
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=work) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
    assert errors == []
    assert sorted(results) == [False, True]
    assert world.contract(contract_id).status is ContractStatus.COMPLETED
    assert _finals(world) == 2
    assert _events(world, "system:contract:completed") == 1
    assert len(world.outbox("signature_completed")) == 2


def _try_to_write(database_url: str, contract_id: int) -> str:
    """From another connection, take what a transition would need: SQLite's write lock, or on PostgreSQL the
    contract's row lock. "free" when it was free, else the database's answer."""
    if database_url.startswith("sqlite"):
        other = sqlite3.connect(database_url.removeprefix("sqlite:///"), timeout=0.2, isolation_level=None)
        try:
            other.execute("BEGIN IMMEDIATE")
            other.execute("ROLLBACK")
            return "free"
        except sqlite3.OperationalError as exc:
            return str(exc)
        finally:
            other.close()
    import psycopg

    with psycopg.connect(database_url.replace("postgresql+psycopg://", "postgresql://", 1)) as connection:
        try:
            connection.execute("SELECT id FROM contracts WHERE id = %s FOR UPDATE NOWAIT", (contract_id,))
            return "free"
        except psycopg.errors.LockNotAvailable as exc:
            return str(exc)


def test_the_signers_pdf_work_holds_no_lock(app, world, database_url, monkeypatch):
    contract_id = world.sent_contract()
    seen: list[str] = []
    real = signatures.approve_documents

    def approve_while_someone_writes(*args: Any, **kwargs: Any) -> Any:
        seen.append(_try_to_write(database_url, contract_id))
        return real(*args, **kwargs)

    monkeypatch.setattr("portal.signature_requests.service.approve_documents", approve_while_someone_writes)
    response = world.sign_as_counterparty(world.signing_link())
    assert "署名手続きが完了しました" in response.get_data(as_text=True)
    assert seen == ["free"]
    assert world.contract(contract_id).status is ContractStatus.AWAITING_AGENCY


def test_a_completion_given_up_is_logged_and_the_cli_completes_it(app, world, monkeypatch):
    app.config["COMPLETION_MAX_ATTEMPTS"] = 2
    from portal.contracts.completion import register

    register(app)  # the handler reads its attempts at registration
    contract_id = _sign_both(world)
    break_tsa(app, monkeypatch)
    with app.app_context():
        assert run_now(COMPLETION_JOB, contract_id)
        assert run_now(COMPLETION_JOB, contract_id)
    world.refresh()
    job = world.session.scalar(select(QueuedJob).where(QueuedJob.kind == COMPLETION_JOB))
    assert job.status is QueuedJobStatus.FAILED
    assert _events(world, "system:contract:completion-failed") == 1
    assert world.contract(contract_id).status is ContractStatus.COMPLETING

    monkeypatch.undo()
    result = app.test_cli_runner().invoke(args=["contracts", "complete"])
    assert result.exit_code == 0, result.output
    assert "1 件のうち 1 件" in result.output
    assert world.contract(contract_id).status is ContractStatus.COMPLETED
    assert len(world.outbox("signature_completed")) == 2


def test_without_the_pdf_font_completion_waits_with_the_reason_and_completes_once_it_is_there(app, world, tmp_path):
    require_font()
    contract_id = _sign_both(world)
    configured = app.config["PDF_FONT_FILE"]
    app.config["PDF_FONT_FILE"] = str(tmp_path / "missing.ttf")
    with app.app_context():
        assert run_now(COMPLETION_JOB, contract_id)
    world.refresh()
    job = world.session.scalar(select(QueuedJob).where(QueuedJob.kind == COMPLETION_JOB))
    assert job.status is QueuedJobStatus.PENDING
    assert "IPAmj明朝" in job.last_error
    assert "PORTAL_PDF_FONT_FILE" in job.last_error
    assert world.contract(contract_id).status is ContractStatus.COMPLETING
    assert _finals(world) == 0

    app.config["PDF_FONT_FILE"] = configured
    with app.app_context():
        assert run_now(COMPLETION_JOB, contract_id)
    assert world.contract(contract_id).status is ContractStatus.COMPLETED
