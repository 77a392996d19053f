"""一括検証 (R25): verify every signature and timestamp of the contracts completed in a period.

A run is a row whose counters a worker advances (queued job "preservation.verify", claimed by
one worker with a heartbeat), committing after each document so that the page can poll the
progress. When the worker dies, another one takes the job over and resumes after the documents
already checked; after too many attempts the run is marked 中断 with the reason.

Each current document revision is read back from the store (an altered file fails its AES-GCM
check: TamperedFile), compared with its recorded SHA-256, and its PAdES signatures and timestamps
are validated with portal.signing.pades.verify().
"""

from __future__ import annotations

import csv
import hashlib
import io
import logging
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta

from flask import Flask, current_app
from sqlalchemy import and_, func, select
from sqlalchemy.orm import Session

from portal import clock
from portal.audit.actions import AuditAction
from portal.audit.service import SYSTEM, Actor, record
from portal.auth.models import Role, StaffUser
from portal.clock import JST
from portal.contracts.documents import read_revision
from portal.contracts.models import Contract, ContractDocument, ContractStatus, DocumentRevision
from portal.errors import DomainError
from portal.formatting import jst
from portal.jobs import enqueue
from portal.jobs.models import QueuedJob
from portal.preservation.models import RunStatus, VerificationResult, VerificationRun
from portal.signing.context import SigningContext
from portal.signing.errors import InvalidPdf
from portal.spreadsheet import text_cell
from portal.storage import StorageError, TamperedFile

log = logging.getLogger(__name__)
VERIFY_JOB = "preservation.verify"
VERIFIERS = (Role.AUDITOR, Role.ADMIN)


class InvalidPeriod(DomainError):
    pass


class VerificationRefused(DomainError):
    status_code = 403


@dataclass(frozen=True)
class Verdict:
    is_valid: bool
    signature_count: int = 0
    level: str = ""
    timestamp_at: datetime | None = None
    problems: tuple[str, ...] = ()


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
    _run(session, int(job.key))


def _give_up(session: Session, job: QueuedJob) -> None:
    run = session.get(VerificationRun, int(job.key))
    if run is not None and run.status in (RunStatus.QUEUED, RunStatus.RUNNING):
        run.status, run.finished_at = RunStatus.FAILED, clock.now()
        run.error = f"検証を中断しました: {job.last_error}"[:4000]


def _run(session: Session, run_id: int) -> None:
    from portal.signing import service as signing

    run = session.get(VerificationRun, run_id)
    if run is None or run.status not in (RunStatus.QUEUED, RunStatus.RUNNING):
        return
    run.status = RunStatus.RUNNING  # RUNNING already: a worker stopped mid-run and this one resumes it
    session.commit()
    context = signing.configure(current_app.config)
    done = set(session.scalars(select(VerificationResult.revision_id).where(VerificationResult.run_id == run_id)))
    revisions = session.execute(_documents(run.period_from, run.period_to)).all()
    run.total = len(revisions)
    for contract_id, number, filename, revision_id in revisions:
        if revision_id in done:
            continue
        revision = session.get(DocumentRevision, revision_id)
        assert revision is not None
        verdict = verify_revision(read_revision, revision, context=context)
        session.add(VerificationResult(
            run_id=run.id, contract_id=contract_id, contract_number=number, revision_id=revision_id,
            filename=filename, sha256=revision.sha256, is_valid=verdict.is_valid,
            signature_count=verdict.signature_count, level=verdict.level, timestamp_at=verdict.timestamp_at,
            problems=list(verdict.problems), checked_at=clock.now()))
        run.processed += 1
        run.failed += 0 if verdict.is_valid else 1
        session.commit()
    run.status, run.finished_at = RunStatus.FINISHED, clock.now()
    record(session, actor=SYSTEM, action=AuditAction.VERIFICATION_FINISHED, subject=run, total=run.total,
           failed=run.failed)


def verify_revision(read: Callable[[DocumentRevision], bytes], revision: DocumentRevision, *,
                    context: SigningContext) -> Verdict:
    """Read the stored bytes and validate them. Problems are returned, never raised."""
    from portal.signing import pades

    try:
        data = read(revision)
    except TamperedFile:
        return Verdict(False, problems=(
            "保存データの整合性検査に失敗しました。保存後に改ざんされた可能性があります。",))
    except StorageError:
        return Verdict(False, problems=("保存データが見つかりません。",))
    if hashlib.sha256(data).hexdigest() != revision.sha256:
        return Verdict(False, problems=("保存データの SHA-256 が記録と一致しません。",))
    try:
        report = pades.verify(data, context=context)
    except InvalidPdf as exc:
        return Verdict(False, problems=(f"PDF として読み取れません: {exc}",))
    problems = list(report.problems)
    if not report.signatures:
        problems.append("電子署名がありません。")
    for signature in report.signatures:
        label = "文書タイムスタンプ" if signature.is_document_timestamp else f"署名 {signature.signer_name}"
        problems.extend(f"{label}: {p}" for p in signature.problems)
        if not signature.is_valid and not signature.problems:
            problems.append(f"{label}: 検証に失敗しました。")
    times = [s.timestamp_time for s in report.signatures if s.timestamp_time]
    return Verdict(is_valid=report.is_valid and not problems, signature_count=len(report.signatures),
                   level=report.level or "", timestamp_at=max(times) if times else None, problems=tuple(problems))


def _documents(period_from: date, period_to: date):
    """(contract id, number, filename, current revision id) of completed contracts in the JST period."""
    start = datetime.combine(period_from, time(), JST)
    end = datetime.combine(period_to + timedelta(days=1), time(), JST)
    current = (select(DocumentRevision.document_id, func.max(DocumentRevision.number).label("number"))
               .group_by(DocumentRevision.document_id).subquery())
    return (
        select(Contract.id, Contract.number, ContractDocument.filename, DocumentRevision.id)
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
