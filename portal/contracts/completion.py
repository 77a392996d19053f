"""Completion: PAdES B-LTA on every document, the signed 合意締結証明書, status 締結済み.

When the last signer has signed, the contract is 締結処理中 and a queued job (COMPLETION_JOB) is
added in the same transaction. The worker runs complete_contract(): the PDF work (document
timestamps, revocation data) happens outside any write transaction, then the contract is locked,
its state checked again and the final files committed with 締結済み — so a TSA outage delays the
completion (the job is retried with backoff) but never loses it, and two workers cannot both
complete. With COMPLETION_BACKGROUND false the signer's request runs the same job right after
its own commit (tests, very small sites).
"""

from __future__ import annotations

import hashlib
from datetime import datetime

from flask import Flask, current_app
from sqlalchemy.orm import Session

from portal import clock
from portal.audit.actions import AuditAction
from portal.audit.service import SYSTEM, record
from portal.contracts import certificate, documents, lifecycle
from portal.contracts.models import CertificateRevision, Contract, ContractStatus, DocumentRevision, RevisionKind
from portal.contracts.signatures import finalize_bytes, sign_issued_bytes, stamp
from portal.signing import pades

COMPLETION_JOB = "contract-completion"


def queue_completion(session: Session, contract: Contract, *, now: datetime) -> None:
    """Have a worker complete `contract` (締結処理中), in the caller's transaction."""
    from portal.jobs import enqueue

    enqueue(session, COMPLETION_JOB, contract.id, now=now)


def run_completion_now(contract_id: int) -> bool:
    """Run the queued completion of `contract_id` in this thread, unless the worker does it.

    True when it ran here. Call after the transaction that queued it has committed.
    """
    if current_app.config["COMPLETION_BACKGROUND"]:
        return False
    from portal.jobs.queue import run_now

    return run_now(COMPLETION_JOB, contract_id)


def requeue_completions(session: Session, *, now: datetime) -> list[int]:
    """Every 締結処理中 contract gets a due completion job again (one given up after a long outage is
    reset); returns their ids. For an administrator, once the TSA or revocation server answers again."""
    from sqlalchemy import select, update

    from portal.jobs.models import QueuedJob, QueuedJobStatus

    ids = list(session.scalars(select(Contract.id).where(Contract.status == ContractStatus.COMPLETING)
                               .order_by(Contract.id)))
    for contract_id in ids:
        session.execute(update(QueuedJob).where(
            QueuedJob.kind == COMPLETION_JOB, QueuedJob.key == str(contract_id),
            QueuedJob.status.in_([QueuedJobStatus.FAILED, QueuedJobStatus.DONE])
        ).values(status=QueuedJobStatus.PENDING, attempts=0, run_after=now, finished_at=None))
        from portal.jobs import enqueue

        enqueue(session, COMPLETION_JOB, contract_id, now=now)
    return ids


def complete_contract(session: Session, contract: Contract, *, now: datetime) -> bool:
    """Finalize (B-LTA) every document, sign the certificate, mark 締結済み; the completion mails are queued.

    Returns False, changing nothing, when the contract is no longer 締結処理中 (completed by another
    worker). Raises lifecycle.TransitionRefused while any signer has not signed, and portal.signing
    errors (TimestampUnavailable, RevocationUnavailable) before anything is changed.
    """
    contract_id = contract.id
    contract = lifecycle.get(session, contract_id)
    if contract.status is ContractStatus.COMPLETED:
        return False
    lifecycle.require(contract, lifecycle.Action.COMPLETE)
    lifecycle.require_all_signed(contract)
    signed = {document.id: document.current.id for document in contract.documents}
    originals = {document.id: documents.read_revision(document.current) for document in contract.documents}
    session.commit()  # nothing written: ends the read, so no transaction is open during the PDF work

    finals = {document_id: finalize_bytes(data) for document_id, data in originals.items()}
    stamped_at = {document_id: pades.latest_timestamp_time(data) for document_id, data in finals.items()}
    digests = {document_id: hashlib.sha256(data).hexdigest() for document_id, data in finals.items()}
    completed_at = now
    certificate_bytes = finalize_bytes(certificate_pdf(contract, now=now, completed_at=completed_at,
                                                       final_digests=digests))

    contract = lifecycle.lock(session, contract_id)
    if contract.status is ContractStatus.COMPLETED:
        return False
    lifecycle.require(contract, lifecycle.Action.COMPLETE)
    lifecycle.require_all_signed(contract)
    if {document.id: document.current.id for document in contract.documents} != signed:
        raise lifecycle.TransitionRefused("締結処理中に文書が変わりました。もう一度締結処理を行います。",
                                          status=contract.status, action=lifecycle.Action.COMPLETE)
    # one wait for the disk for every file, while the lock is held (on SQLite: the database's write lock)
    *stored_files, stored_certificate = documents.store_files(
        [(document, document.current.number + 1, finals[document.id]) for document in contract.documents],
        certificate=(contract, certificate_bytes))
    for document, stored in zip(contract.documents, stored_files, strict=True):
        document.revisions.append(DocumentRevision(
            number=document.current.number + 1, kind=RevisionKind.FINAL, storage_key=stored.key,
            sha256=stored.sha256, size=stored.size, timestamp_at=stamped_at[document.id], created_at=now))
    contract.completed_at = completed_at
    contract.certificate_key = stored_certificate.key
    contract.certificate_sha256 = stored_certificate.sha256
    session.add(CertificateRevision(contract_id=contract.id, number=1, kind=RevisionKind.FINAL,
                                    storage_key=stored_certificate.key, sha256=stored_certificate.sha256,
                                    size=stored_certificate.size,
                                    timestamp_at=pades.latest_timestamp_time(certificate_bytes), created_at=now))
    session.flush()
    lifecycle.complete(session, contract, now=now,
                       documents=[{"filename": d.filename, "sha256": d.current.sha256} for d in contract.documents],
                       certificate_sha256=stored_certificate.sha256)
    return True


def register(app: Flask) -> None:
    from portal.jobs import register_handler

    def completion_job(session: Session, job: object) -> None:
        contract = lifecycle.get(session, int(job.key))  # type: ignore[attr-defined]
        complete_contract(session, contract, now=clock.now())

    def give_up(session: Session, job: object) -> None:
        record(session, actor=SYSTEM, action=AuditAction.CONTRACT_COMPLETION_FAILED,
               subject=("contracts", str(job.key)), error=str(job.last_error)[:2000])  # type: ignore[attr-defined]

    register_handler(app, COMPLETION_JOB, completion_job, max_attempts=app.config["COMPLETION_MAX_ATTEMPTS"],
                     retry_base_seconds=app.config["COMPLETION_RETRY_BASE_SECONDS"], on_give_up=give_up)


def certificate_pdf(contract: Contract, *, now: datetime, completed_at: datetime,
                    final_digests: dict[int, str]) -> bytes:
    """The 合意締結証明書 signed by the service key (PAdES B-T); `final_digests` are the SHA-256 of each
    document's final file, by id. finalize_bytes() then makes it B-LTA like the documents."""
    config = current_app.config
    issuer = certificate.Issuer(agency=config["AGENCY_NAME"], service=config["SERVICE_NAME"])
    unsigned = certificate.render(contract, issuer=issuer, issued_at=now, completed_at=completed_at,
                                  final_digests=final_digests)
    shown = stamp("certificate", what="発行", signer=issuer.name, at=now)
    return sign_issued_bytes(unsigned, reason=certificate.signature_reason(contract, issuer), stamp=shown)
