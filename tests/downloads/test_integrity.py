"""Every read of a stored document checks the recorded SHA-256 and the owner bound into its encryption:
a storage key pointed at another contract's file, an altered SHA-256 or a changed bit is refused with a
Japanese message and an audit event on the staff download and on the vendor's 14-day link, never served."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest
from sqlalchemy import select, update

from portal.audit.models import AuditEvent
from portal.contracts.models import Contract, DocumentRevision
from portal.integrity import REFUSED
from tests.pdfs import make_pdf

VENDOR = "yamada@keiyaku-shoji.co.jp"


@pytest.fixture
def completed(world):
    """(contract id, document id, current revision id, staff URL, vendor URL) of a completed contract."""
    contract_id = world.completed_contract(make_pdf("ours"))
    document = world.contract(contract_id).documents[0]
    link = world.download_path(VENDOR)
    return (contract_id, document.id, document.current.id,
            f"/contracts/{contract_id}/documents/{document.id}/download", f"{link}/documents/{document.id}")


def _refusals(world) -> list[AuditEvent]:
    world.refresh()
    return list(world.session.scalars(select(AuditEvent).where(AuditEvent.action == "system:storage:integrity-failed")))


def _assert_refused(world, url: str, client) -> None:
    before = len(_refusals(world))
    response = client.get(url)
    body = response.get_data(as_text=True)
    assert response.status_code == 409, (url, response.status_code)
    assert REFUSED in body
    assert b"%PDF" not in response.data
    assert len(_refusals(world)) == before + 1


def _set_revision(world, revision_id: int, **values) -> None:
    world.session.execute(update(DocumentRevision).where(DocumentRevision.id == revision_id).values(**values))
    world.session.commit()


def test_a_key_pointed_at_another_contracts_file_is_refused(world, completed):
    contract_id, _, revision_id, staff_url, vendor_url = completed
    other_id = world.create_id(business_name="別の契約")
    assert world.upload(other_id, (make_pdf("theirs"), "theirs.pdf")).status_code == 200
    theirs = world.contract(other_id).documents[0].original
    _set_revision(world, revision_id, storage_key=theirs.storage_key)
    _assert_refused(world, staff_url, world.staff_client)
    _assert_refused(world, vendor_url, world.signer_client)
    # the attacker also copies the SHA-256: the owner bound into the encryption still refuses it
    _set_revision(world, revision_id, sha256=theirs.sha256)
    _assert_refused(world, staff_url, world.staff_client)
    event = _refusals(world)[-1]
    assert event.details["key"] == theirs.storage_key
    assert event.details["owner"].startswith(f"contract/{contract_id}/")


def test_an_altered_sha256_is_refused(world, completed):
    _, _, revision_id, staff_url, vendor_url = completed
    _set_revision(world, revision_id, sha256="0" * 64)
    _assert_refused(world, staff_url, world.staff_client)
    _assert_refused(world, vendor_url, world.signer_client)


def test_one_changed_bit_in_the_stored_file_is_refused(app, world, completed):
    _, _, revision_id, staff_url, vendor_url = completed
    key = world.session.get(DocumentRevision, revision_id).storage_key
    path = Path(app.config["STORAGE_DIR"]) / key[:2] / key
    os.chmod(path, stat.S_IWUSR | stat.S_IRUSR)
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0x01
    path.write_bytes(bytes(data))
    _assert_refused(world, staff_url, world.staff_client)
    _assert_refused(world, vendor_url, world.signer_client)


def test_an_altered_certificate_sha256_is_refused(world, completed):
    contract_id = completed[0]
    world.session.execute(update(Contract).where(Contract.id == contract_id).values(certificate_sha256="1" * 64))
    world.session.commit()
    _assert_refused(world, f"/contracts/{contract_id}/certificate", world.staff_client)
    _assert_refused(world, f"{world.download_path(VENDOR)}/certificate", world.signer_client)


def test_a_tampered_file_met_by_a_background_job_is_logged(app, world):
    from portal.contracts.pages import RENDER_JOB
    from portal.jobs.models import QueuedJob, QueuedJobStatus
    from portal.jobs.queue import run_now

    contract_id = world.create_id(business_name="画像の契約")
    assert world.upload(contract_id, (make_pdf("pages", 2), "pages.pdf")).status_code == 200
    revision = world.contract(contract_id).documents[0].original
    _set_revision(world, revision.id, sha256="0" * 64)
    before = len(_refusals(world))
    with app.app_context():
        assert run_now(RENDER_JOB, revision.id)
    [event] = _refusals(world)[before:]
    assert event.details["job"] == RENDER_JOB
    assert event.details["job_key"] == str(revision.id)
    assert event.details["key"] == revision.storage_key
    job = world.session.scalar(select(QueuedJob).where(QueuedJob.kind == RENDER_JOB,
                                                       QueuedJob.key == str(revision.id)))
    assert job.status is not QueuedJobStatus.DONE
