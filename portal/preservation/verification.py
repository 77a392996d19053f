"""一括検証 (R25): verify every signature and timestamp of the contracts completed in a period.

A run is a row whose counters a worker advances (queued job "preservation.verify", claimed by
one worker with a heartbeat), committing results in batches (at least once a second) so that the
page can poll the progress. When the worker dies, another one takes the job over and resumes after
the documents whose results were committed; after too many attempts the run is marked 中断 with the
reason.

Each current document revision is read back from the store (an altered file fails its AES-GCM
check: TamperedFile), compared with its recorded SHA-256, and its PAdES signatures and timestamps
are validated with portal.signing.pades.verify(), in VERIFY_PROCESSES child processes
(verifier_pool.py) when the run has more documents than that.
"""

from __future__ import annotations

import csv
import io
import logging
import time
from collections.abc import Callable, Iterator
from datetime import date, datetime, timedelta
from datetime import time as day_start
from typing import NamedTuple

from flask import Flask, current_app
from sqlalchemy import and_, func, select
from sqlalchemy.orm import Session

from portal import clock
from portal.audit.actions import AuditAction
from portal.audit.service import SYSTEM, Actor, record
from portal.auth.models import Role, StaffUser
from portal.clock import JST
from portal.contracts.documents import read_stored_revision
from portal.contracts.models import Contract, ContractDocument, ContractStatus, DocumentRevision
from portal.errors import DomainError
from portal.formatting import jst
from portal.jobs import enqueue
from portal.jobs.models import QueuedJob
from portal.preservation.models import RunStatus, VerificationResult, VerificationRun
from portal.preservation.verdicts import Verdict, read_or_verdict, verify_bytes
from portal.preservation.verifier_pool import process_count, verify_in_processes
from portal.signing.context import SigningContext
from portal.spreadsheet import text_cell

log = logging.getLogger(__name__)
VERIFY_JOB = "preservation.verify"
VERIFIERS = (Role.AUDITOR, Role.ADMIN)
RESULTS_PER_COMMIT = 50
SECONDS_PER_COMMIT = 1.0


class InvalidPeriod(DomainError):
    pass


class VerificationRefused(DomainError):
    status_code = 403


def start_batch_verification(session: Session, *, period_from: date, period_to: date, actor: StaffUser,
                             now: datetime) -> VerificationRun:
    """Queue a run over contracts completed from `period_from` to `period_to` (JST, inclusive).

    The caller commits; a worker then runs it (or the caller itself, with run_batch_verification()).
    Raises VerificationRefused (auditors and admins only), InvalidPeriod.
    """
    if actor.role not in VERIFIERS:
        raise VerificationRefused("一括検証は監査担当または管理者が行います。")
    if period_from > period_to:
        raise InvalidPeriod("期間の終わりが始まりより前になっています。")
    run = VerificationRun(period_from=period_from, period_to=period_to, status=RunStatus.QUEUED,
                          total=session.scalar(select(func.count()).select_from(_documents(period_from, period_to)
                                                                                .subquery())) or 0,
                          started_by=actor, created_at=now)
    session.add(run)
    session.flush()
    enqueue(session, VERIFY_JOB, run.id, now=now)
    record(session, actor=Actor.staff(actor), action=AuditAction.VERIFICATION_STARTED, subject=run, now=now,
           period_from=period_from.isoformat(), period_to=period_to.isoformat(), total=run.total)
    return run


def register(app: Flask) -> None:
    from portal.jobs import register_handler

    register_handler(app, VERIFY_JOB, _verify_job, max_attempts=5, retry_base_seconds=60, on_give_up=_give_up)


def run_batch_verification(app: Flask, run_id: int) -> bool:
    """Run the queued run here and now, unless a worker already has it; False when it did not run here."""
    from portal.jobs.queue import run_now

    with app.app_context():
        return run_now(VERIFY_JOB, run_id)


def _verify_job(session: Session, job: QueuedJob) -> None:
    from portal.jobs.queue import fenced_commit

    _run(session, int(job.key), commit=fenced_commit(job))


def _give_up(session: Session, job: QueuedJob) -> None:
    run = session.get(VerificationRun, int(job.key))
    if run is not None and run.status in (RunStatus.QUEUED, RunStatus.RUNNING):
        run.status, run.finished_at = RunStatus.FAILED, clock.now()
        run.error = f"検証を中断しました: {job.last_error}"[:4000]


def _run(session: Session, run_id: int, *, commit: Callable[[Session], None] = Session.commit) -> None:
    """Verify what the run has not stored yet; `commit` stores each batch (the queue's fenced commit)."""
    from portal.signing import service as signing

    run = session.get(VerificationRun, run_id)
    if run is None or run.status not in (RunStatus.QUEUED, RunStatus.RUNNING):
        return
    run.status = RunStatus.RUNNING  # RUNNING already: a worker stopped mid-run and this one resumes it
    commit(session)
    context = signing.configure(current_app.config)
    done = set(session.scalars(select(VerificationResult.revision_id).where(VerificationResult.run_id == run_id)))
    documents = [Document(*row) for row in session.execute(_documents(run.period_from, run.period_to))]
    run.total = len(documents)
    results = _Results(session, run, commit)
    for document, verdict in _verdicts([d for d in documents if d.revision_id not in done], context=context):
        results.add(document, verdict)
    results.commit()
    run.status, run.finished_at = RunStatus.FINISHED, clock.now()
    record(session, actor=SYSTEM, action=AuditAction.VERIFICATION_FINISHED, subject=run, total=run.total,
           failed=run.failed)


class Document(NamedTuple):
    """A current document revision of the run, with what reading it from the store needs."""

    contract_id: int
    contract_number: str
    filename: str
    revision_id: int
    document_id: int
    revision_number: int
    storage_key: str
    sha256: str

    def read(self) -> bytes | Verdict:
        return read_or_verdict(lambda: read_stored_revision(
            self.storage_key, contract_id=self.contract_id, document_id=self.document_id,
            number=self.revision_number, sha256=self.sha256))


def _verdicts(documents: list[Document], *, context: SigningContext) -> Iterator[tuple[Document, Verdict]]:
    """Each document with its verdict, in order: in VERIFY_PROCESSES child processes when there are enough."""
    from portal.signing import pki
    from portal.signing import service as signing

    processes = process_count(int(current_app.config["VERIFY_PROCESSES"]))
    if processes > 1 and len(documents) > processes:
        assert context.pki is not None
        local = context.pki
        settings = {key: current_app.config.get(key, default) for key, default in signing.DEFAULTS.items()}
        settings["DATABASE_URL"] = current_app.config.get("DATABASE_URL")
        yield from verify_in_processes(documents, read=Document.read, sha256=lambda d: d.sha256, settings=settings,
                                       crl=lambda: pki.current_crl(local), processes=processes)
        return
    for document in documents:
        data = document.read()
        yield document, data if isinstance(data, Verdict) else verify_bytes(data, document.sha256, context=context)


class _Results:
    """Results written in batches: each commit stores a batch together with the run's counters, so a run
    resumed after its worker died skips exactly the documents whose results were stored. The first result
    and then at least one a second are committed, for the progress page (it polls every few seconds)."""

    def __init__(self, session: Session, run: VerificationRun, commit: Callable[[Session], None]) -> None:
        self.session, self.run, self.store = session, run, commit
        self.batch: list[VerificationResult] = []
        self.committed_at: float | None = None

    def add(self, document: Document, verdict: Verdict) -> None:
        # Not added to the session before the commit: an autoflush would hold SQLite's write lock,
        # and the heartbeat's own transaction waits for it.
        self.batch.append(VerificationResult(
            run_id=self.run.id, contract_id=document.contract_id, contract_number=document.contract_number,
            revision_id=document.revision_id, filename=document.filename, sha256=document.sha256,
            is_valid=verdict.is_valid, signature_count=verdict.signature_count, level=verdict.level,
            timestamp_at=verdict.timestamp_at, problems=list(verdict.problems), checked_at=clock.now()))
        if (self.committed_at is None or len(self.batch) >= RESULTS_PER_COMMIT
                or time.monotonic() - self.committed_at >= SECONDS_PER_COMMIT):
            self.commit()

    def commit(self) -> None:
        self.session.add_all(self.batch)
        self.run.processed += len(self.batch)
        self.run.failed += sum(not result.is_valid for result in self.batch)
        self.store(self.session)
        self.batch, self.committed_at = [], time.monotonic()


def _documents(period_from: date, period_to: date):
    """The current revisions of completed contracts in the JST period, as Document's fields."""
    start = datetime.combine(period_from, day_start(), JST)
    end = datetime.combine(period_to + timedelta(days=1), day_start(), JST)
    current = (select(DocumentRevision.document_id, func.max(DocumentRevision.number).label("number"))
               .group_by(DocumentRevision.document_id).subquery())
    return (
        select(Contract.id, Contract.number, ContractDocument.filename, DocumentRevision.id, ContractDocument.id,
               DocumentRevision.number, DocumentRevision.storage_key, DocumentRevision.sha256)
        .join(ContractDocument, ContractDocument.contract_id == Contract.id)
        .join(current, current.c.document_id == ContractDocument.id)
        .join(DocumentRevision, and_(DocumentRevision.document_id == ContractDocument.id,
                                     DocumentRevision.number == current.c.number))
        .where(Contract.status == ContractStatus.COMPLETED, Contract.completed_at >= start,
               Contract.completed_at < end)
        .order_by(Contract.completed_at, Contract.id, ContractDocument.position)
    )


REPORT_COLUMNS = ["契約番号", "ファイル名", "SHA-256", "結果", "署名数", "PAdES レベル", "タイムスタンプ時刻", "問題",
                  "検証日時"]


def report_csv(run: VerificationRun) -> Iterator[bytes]:
    """UTF-8 BOM CSV: the counts first, then one line per document, failures first."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    buffer.write("\ufeff")
    writer.writerow(["一括検証レポート", f"期間 {run.period_from.isoformat()}〜{run.period_to.isoformat()}",
                     f"状態 {run.status.label}", f"実行 {jst(run.created_at)}"])
    writer.writerow(["対象文書数", run.total, "検証済み", run.processed, "失敗", run.failed,
                     "成功", run.processed - run.failed])
    writer.writerow([])
    writer.writerow(REPORT_COLUMNS)
    for result in sorted(run.results, key=lambda r: (r.is_valid, r.id)):
        writer.writerow([text_cell(result.contract_number), text_cell(result.filename), result.sha256,
                         "有効" if result.is_valid else "失敗", result.signature_count, result.level,
                         jst(result.timestamp_at, "%Y-%m-%d %H:%M:%S"), text_cell(" / ".join(result.problems)),
                         jst(result.checked_at, "%Y-%m-%d %H:%M:%S")])
    yield buffer.getvalue().encode()
