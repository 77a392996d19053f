"""The 「タイムスタンプ時刻」 of final revisions stored before it was recorded at store time.

Completion and archive-timestamp renewal record contract_document_revisions.timestamp_at as they store a
file. Revisions stored earlier are read here, a batch at a time, by a periodic job: the migration
that added the column cannot read the file store (see migration 0028).
"""

from __future__ import annotations

import logging

from flask import Flask
from sqlalchemy import select
from sqlalchemy.orm import Session

from portal.contracts.documents import read_revision
from portal.contracts.models import DocumentRevision, RevisionKind
from portal.signing.errors import InvalidPdf
from portal.storage import StorageError

JOB_NAME = "revision-timestamps"
STAMPED_KINDS = (RevisionKind.FINAL, RevisionKind.ARCHIVE_TIMESTAMP)
log = logging.getLogger(__name__)


def fill_missing(session: Session, *, batch_size: int = 100) -> int:
    """Read every final or archive-timestamp revision without timestamp_at and record the newest token's
    time, committing after each batch; returns how many were filled.

    A file that cannot be read (missing, altered: the 一括検証 reports it) or holds no token is
    logged and left empty, and tried again on the next run.
    """
    from portal.signing import pades

    filled, after = 0, 0
    while True:
        revisions = list(session.scalars(
            select(DocumentRevision).where(DocumentRevision.kind.in_(STAMPED_KINDS),
                                           DocumentRevision.timestamp_at.is_(None), DocumentRevision.id > after)
            .order_by(DocumentRevision.id).limit(batch_size)))
        if not revisions:
            break
        for revision in revisions:
            after = revision.id
            try:
                revision.timestamp_at = pades.latest_timestamp_time(read_revision(revision))
            except (StorageError, InvalidPdf) as exc:
                log.warning("timestamp time of revision %s not read: %s", revision.id, exc)
                continue
            filled += revision.timestamp_at is not None
        session.commit()
    return filled


def register(app: Flask) -> None:
    from portal.jobs import register_job

    register_job(app, JOB_NAME, fill_missing, every_seconds=3600)
