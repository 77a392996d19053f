"""Archive-timestamp renewal: completed documents stay verifiable for the whole retention period.

A B-LTA file is protected by its newest document timestamp until that timestamp's TSA
certificate expires (or its algorithms become weak). Before then the file gets, in one
incremental update, the certificates and fresh CRLs of that timestamp's TSA (DSS) and a new
document timestamp by the TSA in use (portal.signing.pades.add_archive_timestamp). The result
is stored as a new revision of the document (kind archive_timestamp), like completion stores
its final file; earlier revisions stay. The 合意締結証明書 is renewed the same way, as a new
CertificateRevision that becomes the contract's certificate.

A document is due when its newest document timestamp's TSA certificate expires within
TIMESTAMP_RENEW_DAYS, or its digest is in TIMESTAMP_WEAK_DIGESTS. It is left alone (reported as
blocked) when the TSA in use would sign with that same certificate: the built-in TSA's
certificate is renewed first (portal.signing.lifecycle). The job runs once a day across all
workers (lease "timestamp-renewal"); `flask --app app timestamps status|renew` does the same by hand.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from flask import Flask
from sqlalchemy import and_, func, select
from sqlalchemy.orm import Session

from portal.audit.actions import AuditAction
from portal.audit.service import SYSTEM, Actor, record
from portal.contracts import lifecycle
from portal.contracts.documents import read_certificate, read_revision, store_certificate, store_revision
from portal.contracts.models import (
    CertificateRevision,
    Contract,
    ContractDocument,
    ContractStatus,
    DocumentRevision,
    RevisionKind,
)
from portal.signing import pades
from portal.signing.context import SigningContext
from portal.signing.errors import SigningError
from portal.signing.tsa import HttpTsa, LocalTsa

log = logging.getLogger(__name__)
RENEWAL_JOB = "timestamp-renewal"


@dataclass(frozen=True)
class DocumentTimestampState:
    """One completed document's current revision and what its newest document timestamp needs."""

    contract_id: int
    contract_number: str
    filename: str
    revision_id: int
    newest: pades.NewestTimestamp | None
    due_reasons: tuple[str, ...] = ()
    blocked: str | None = None
    certificate: bool = False  # revision_id is then a CertificateRevision's

    @property
    def is_due(self) -> bool:
        return bool(self.due_reasons) and self.blocked is None


@dataclass
class RenewalRun:
    """What one renewal pass did."""

    checked: int = 0
    renewed: list[int] = field(default_factory=list)  # new revision ids
    blocked: list[DocumentTimestampState] = field(default_factory=list)
    failed: list[tuple[DocumentTimestampState, str]] = field(default_factory=list)


def _current_revisions(session: Session) -> list[tuple[int, str, str, int]]:
    """(contract id, number, filename, current revision id) of every completed contract's documents."""
    current = (select(DocumentRevision.document_id, func.max(DocumentRevision.number).label("number"))
               .group_by(DocumentRevision.document_id).subquery())
    query = (
        select(Contract.id, Contract.number, ContractDocument.filename, DocumentRevision.id)
        .join(ContractDocument, ContractDocument.contract_id == Contract.id)
        .join(current, current.c.document_id == ContractDocument.id)
        .join(DocumentRevision, and_(DocumentRevision.document_id == ContractDocument.id,
                                     DocumentRevision.number == current.c.number))
        .where(Contract.status == ContractStatus.COMPLETED)
        .order_by(Contract.id, ContractDocument.position)
    )
    return [tuple(row) for row in session.execute(query)]


CERTIFICATE_FILENAME = "合意締結証明書.pdf"


def _current_certificates(session: Session) -> list[tuple[int, str, int]]:
    """(contract id, number, certificate revision id) of every completed contract's current 合意締結証明書."""
    query = (select(Contract.id, Contract.number, CertificateRevision.id)
             .join(CertificateRevision, CertificateRevision.storage_key == Contract.certificate_key)
             .where(Contract.status == ContractStatus.COMPLETED)
             .order_by(Contract.id))
    return [tuple(row) for row in session.execute(query)]


def _tsa_certificate_serial(context: SigningContext) -> int | None:
    tsa = context.tsa
    if isinstance(tsa, LocalTsa):
        return tsa.tsa_cert.serial_number
    if isinstance(tsa, HttpTsa) and tsa.certificate is not None:
        return tsa.certificate.serial_number
    return None


def assess(newest: pades.NewestTimestamp | None, settings: Mapping[str, Any], context: SigningContext, *,
           now: datetime) -> tuple[tuple[str, ...], str | None]:
    """(why the file is due, why it cannot be renewed now) for a file whose newest timestamp is ``newest``."""
    if newest is None:
        return (), None
    reasons = []
    renew_before = timedelta(days=int(settings["TIMESTAMP_RENEW_DAYS"]))
    if newest.tsa_not_after - now < renew_before:
        reasons.append(f"タイムスタンプ局の証明書の有効期限（{newest.tsa_not_after:%Y-%m-%d}）まで"
                       f" {int(settings['TIMESTAMP_RENEW_DAYS'])} 日未満")
    weak = {name.lower() for name in settings["TIMESTAMP_WEAK_DIGESTS"]}
    if newest.digest_algorithm.lower() in weak:
        reasons.append(f"ハッシュ関数 {newest.digest_algorithm} は弱いとされています")
    blocked = None
    if reasons and _tsa_certificate_serial(context) == newest.tsa_serial:
        blocked = ("使用中のタイムスタンプ局の証明書が同じため、更新しても延長になりません"
                   "（先に証明書を更新してください）。")
    return tuple(reasons), blocked


def timestamp_states(session: Session, settings: Mapping[str, Any], context: SigningContext, *,
                     now: datetime) -> list[DocumentTimestampState]:
    """Every completed document's newest document timestamp and whether it is due (reads each file)."""
    states = []
    for contract_id, number, filename, revision_id in _current_revisions(session):
        revision = session.get(DocumentRevision, revision_id)
        assert revision is not None
        newest = pades.newest_document_timestamp(read_revision(revision), max_bytes=context.max_bytes)
        reasons, blocked = assess(newest, settings, context, now=now)
        states.append(DocumentTimestampState(contract_id, number, filename, revision_id, newest, reasons, blocked))
    for contract_id, number, revision_id in _current_certificates(session):
        contract = session.get(Contract, contract_id)
        assert contract is not None
        newest = pades.newest_document_timestamp(read_certificate(contract), max_bytes=context.max_bytes)
        reasons, blocked = assess(newest, settings, context, now=now)
        states.append(DocumentTimestampState(contract_id, number, CERTIFICATE_FILENAME, revision_id, newest, reasons,
                                             blocked, certificate=True))
    return states


def _renew_if_due(session: Session, data: bytes, settings: Mapping[str, Any], context: SigningContext, *,
                  now: datetime) -> tuple[bytes, pades.NewestTimestamp, pades.NewestTimestamp, tuple[str, ...]] | None:
    """(renewed bytes, the newest timestamp before, the one added, why) when `data` is due; None otherwise.

    Ends the session's read first, so no transaction stays open during the TSA round trip; nothing is
    written. Raises portal.signing errors (TimestampUnavailable, RevocationUnavailable).
    """
    newest = pades.newest_document_timestamp(data, max_bytes=context.max_bytes)
    reasons, blocked = assess(newest, settings, context, now=now)
    if not reasons or blocked or newest is None:
        return None
    session.commit()
    renewed = pades.add_archive_timestamp(data, context=context)
    added = pades.newest_document_timestamp(renewed, max_bytes=context.max_bytes)
    assert added is not None
    if added.tsa_serial == newest.tsa_serial:
        raise SigningError("タイムスタンプ局が同じ証明書で署名したため、アーカイブタイムスタンプを延長できません。")
    return renewed, newest, added, reasons


def renew_certificate(session: Session, revision_id: int, settings: Mapping[str, Any], context: SigningContext, *,
                      now: datetime, actor: Actor = SYSTEM) -> CertificateRevision | None:
    """renew_revision() for a contract's 合意締結証明書: its new version, or None (nothing changed).

    The new file becomes the contract's certificate only if the one renewed is still current under the
    contract's lock; earlier versions stay stored. The caller commits. Raises as renew_revision().
    """
    current = session.get(CertificateRevision, revision_id)
    if current is None:
        return None
    contract_id, renewed_sha256, version = current.contract_id, current.sha256, current.number
    contract = current.contract
    if contract.certificate_sha256 != renewed_sha256:
        return None
    due = _renew_if_due(session, read_certificate(contract), settings, context, now=now)  # checks the SHA-256
    if due is None:
        return None
    renewed, newest, added, reasons = due

    contract = lifecycle.lock(session, contract_id)
    if contract.certificate_sha256 != renewed_sha256:
        return None
    latest = session.scalar(select(func.max(CertificateRevision.number))
                            .where(CertificateRevision.contract_id == contract_id)) or version
    stored = store_certificate(contract, renewed)
    new_revision = CertificateRevision(contract_id=contract_id, number=latest + 1, kind=RevisionKind.ARCHIVE_TIMESTAMP,
                                       storage_key=stored.key, sha256=stored.sha256, size=stored.size,
                                       timestamp_at=added.time.astimezone(UTC), created_at=now)
    session.add(new_revision)
    contract.certificate_key, contract.certificate_sha256 = stored.key, stored.sha256
    session.flush()
    record(session, actor=actor, action=AuditAction.DOCUMENT_TIMESTAMP_RENEWED, subject=contract, now=now,
           document=CERTIFICATE_FILENAME, certificate=True, revision=new_revision.number, sha256=stored.sha256,
           previous_sha256=renewed_sha256, reasons=list(reasons),
           previous_tsa_not_after=newest.tsa_not_after.isoformat(), tsa_not_after=added.tsa_not_after.isoformat())
    return new_revision


def renew_revision(session: Session, revision_id: int, settings: Mapping[str, Any], context: SigningContext, *,
                   now: datetime, actor: Actor = SYSTEM) -> DocumentRevision | None:
    """Add an archive timestamp to one document if it is due; its new revision, or None (nothing changed).

    The PDF work runs outside any write transaction; the contract is then locked and the new
    revision stored only if the document's current revision is still ``revision_id`` (another
    worker may have renewed it meanwhile). The caller commits.
    Raises portal.signing errors (TimestampUnavailable, RevocationUnavailable) before anything is changed.
    """
    revision = session.get(DocumentRevision, revision_id)
    if revision is None:
        return None
    document_id, contract_id = revision.document_id, revision.document.contract_id
    data = read_revision(revision)
    if hashlib.sha256(data).hexdigest() != revision.sha256:
        raise SigningError("保存データの SHA-256 が記録と一致しないため、タイムスタンプを更新しません。")
    due = _renew_if_due(session, data, settings, context, now=now)
    if due is None:
        return None
    renewed, newest, added, reasons = due

    lifecycle.lock(session, contract_id)
    document = session.get(ContractDocument, document_id)
    assert document is not None
    if document.current.id != revision_id:
        return None
    stored = store_revision(document, document.current.number + 1, renewed)
    new_revision = DocumentRevision(number=document.current.number + 1, kind=RevisionKind.ARCHIVE_TIMESTAMP,
                                    storage_key=stored.key, sha256=stored.sha256, size=stored.size,
                                    timestamp_at=added.time.astimezone(UTC), created_at=now)
    document.revisions.append(new_revision)
    session.flush()
    record(session, actor=actor, action=AuditAction.DOCUMENT_TIMESTAMP_RENEWED, subject=document.contract, now=now,
           document=document.filename, revision=new_revision.number, sha256=stored.sha256,
           previous_sha256=revision.sha256, reasons=list(reasons),
           previous_tsa_not_after=newest.tsa_not_after.isoformat(), tsa_not_after=added.tsa_not_after.isoformat())
    return new_revision


def renew_due(session: Session, settings: Mapping[str, Any], context: SigningContext, *, now: datetime,
              actor: Actor = SYSTEM, limit: int | None = None) -> RenewalRun:
    """Renew every due document, committing after each; one failure does not stop the others."""
    run = RenewalRun()
    for state in timestamp_states(session, settings, context, now=now):
        run.checked += 1
        if state.blocked and state.due_reasons:
            run.blocked.append(state)
            continue
        if not state.is_due or (limit is not None and len(run.renewed) >= limit):
            continue
        renew = renew_certificate if state.certificate else renew_revision
        try:
            new_revision = renew(session, state.revision_id, settings, context, now=now, actor=actor)
            session.commit()
        except SigningError as exc:
            session.rollback()
            log.warning("archive timestamp of revision %s not renewed: %s", state.revision_id, exc.message)
            run.failed.append((state, exc.message))
            continue
        if new_revision is not None:
            run.renewed.append(new_revision.id)
    return run


def register(app: Flask) -> None:
    from portal import clock
    from portal.jobs import register_job
    from portal.signing import service as signing

    def job(session: Session) -> None:
        context = signing.configure(app.config)
        run = renew_due(session, app.config, context, now=clock.now())
        if run.failed:
            raise SigningError(f"{len(run.failed)} 件の文書でタイムスタンプを更新できませんでした: {run.failed[0][1]}")

    register_job(app, RENEWAL_JOB, job, every_seconds=int(app.config["TIMESTAMP_CHECK_SECONDS"]))
