"""The export's 「タイムスタンプ時刻」 comes from the stored file itself: recorded when completion stores
the final PDF (no 一括検証 needed), and read by the backfill job for revisions stored before that."""

from __future__ import annotations

import csv
import io
from datetime import timedelta

import pytest
from flask import Flask
from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from portal import clock
from portal.contracts.documents import read_revision
from portal.contracts.models import Contract, ContractDocument, DocumentRevision, RevisionKind
from portal.formatting import jst
from portal.preservation.models import VerificationResult, VerificationRun
from portal.preservation.timestamps import fill_missing
from portal.search.export import CSV_COLUMNS
from portal.signing import pades
from tests.contracts.fixtures import World, app_config  # noqa: F401  (fixtures)
from tests.pdfs import make_pdf

STAMP_COLUMN, STATUS_COLUMN = CSV_COLUMNS.index("タイムスタンプ時刻"), CSV_COLUMNS.index("状態")


@pytest.fixture
def signed(app: Flask, session: Session) -> tuple[World, int]:
    world = World(app, session)
    return world, world.completed_contract(make_pdf("Agreement", 1))


def _final_revision(session: Session, contract_id: int) -> DocumentRevision:
    session.rollback()
    session.expire_all()
    return session.scalars(select(DocumentRevision).join(ContractDocument)
                           .where(ContractDocument.contract_id == contract_id)
                           .order_by(DocumentRevision.number.desc())).first()


def test_completion_records_the_timestamp_of_the_final_file(app: Flask, session: Session,
                                                             signed: tuple[World, int]) -> None:
    _world, contract_id = signed
    revision = _final_revision(session, contract_id)
    with app.app_context():
        in_file = pades.latest_timestamp_time(read_revision(revision))

    assert revision.kind is RevisionKind.FINAL
    assert revision.timestamp_at is not None
    assert revision.timestamp_at == in_file
    assert abs(revision.timestamp_at - clock.now()) < timedelta(minutes=5)


def test_the_csv_shows_it_without_any_batch_verification(app: Flask, session: Session,
                                                         signed: tuple[World, int]) -> None:
    world, contract_id = signed
    revision = _final_revision(session, contract_id)
    number = session.get(Contract, contract_id).number
    assert session.scalar(select(func.count()).select_from(VerificationRun)) == 0
    assert session.scalar(select(func.count()).select_from(VerificationResult)) == 0

    data = world.staff_client.get(f"/search/export.csv?number={number}").get_data()

    rows = list(csv.reader(io.StringIO(data.decode("utf-8-sig"))))
    [line] = [r for r in rows[1:] if r[6] == number]
    assert line[STAMP_COLUMN] == jst(revision.timestamp_at, "%Y-%m-%dT%H:%M:%S+09:00")
    assert line[STAMP_COLUMN].startswith(str(revision.timestamp_at.year))
    assert line[STATUS_COLUMN] == "締結済み"


def test_the_job_fills_revisions_stored_before_it_was_recorded(app: Flask, session: Session,
                                                               signed: tuple[World, int]) -> None:
    _world, contract_id = signed
    recorded = _final_revision(session, contract_id).timestamp_at
    session.execute(update(DocumentRevision).values(timestamp_at=None))
    session.commit()

    with app.app_context():
        filled = fill_missing(session)

    assert filled == 1
    assert _final_revision(session, contract_id).timestamp_at == recorded
    with app.app_context():
        assert fill_missing(session) == 0  # nothing left to read


def test_the_job_skips_a_damaged_file_and_goes_on(app: Flask, session: Session,
                                                  signed: tuple[World, int]) -> None:
    _world, contract_id = signed
    revision = _final_revision(session, contract_id)
    session.execute(update(DocumentRevision).values(timestamp_at=None))
    session.execute(update(DocumentRevision).where(DocumentRevision.id == revision.id)
                    .values(sha256="0" * 64))  # no longer the stored bytes: the store refuses it
    session.commit()

    with app.app_context():
        assert fill_missing(session) == 0
    assert _final_revision(session, contract_id).timestamp_at is None


def test_a_file_without_timestamps_has_none(app: Flask) -> None:
    assert pades.latest_timestamp_time(make_pdf("Plain", 1)) is None
