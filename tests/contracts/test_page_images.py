"""Page images are rendered by the worker at upload, stored encrypted and served without the PDF."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import func, select

from portal.contracts.models import Contract, PageImage
from portal.jobs import run_queued_jobs
from portal.jobs.models import QueuedJob
from tests.contracts.fixtures import make_pdf


def _stored_file(app, key: str) -> Path:
    return Path(app.config["STORAGE_DIR"]) / key[:2] / key


def test_upload_queues_rendering_and_the_worker_stores_every_page_encrypted(app, world):
    contract_id = world.sent_contract(make_pdf("three pages", 3))
    world.refresh()
    assert world.session.scalar(select(func.count()).select_from(QueuedJob)) == 1
    assert world.session.scalar(select(func.count()).select_from(PageImage)) == 0
    with app.app_context():
        assert run_queued_jobs() == 1
    world.refresh()
    images = world.session.scalars(select(PageImage).order_by(PageImage.page_index)).all()
    assert [i.page_index for i in images] == [0, 1, 2]
    assert {i.width for i in images} == {app.config["PAGE_IMAGE_WIDTH"]}
    for image in images:
        sealed = _stored_file(app, image.storage_key).read_bytes()
        assert b"\xff\xd8\xff" not in sealed[:64]  # not a plain JPEG on disk
        assert b"JFIF" not in sealed

    # Served from the store: the image comes even when the PDF's own file cannot be read.
    link = world.signing_link()
    contract = world.session.get(Contract, contract_id)
    document = contract.documents[0]
    pdf_file = _stored_file(app, document.original.storage_key)
    pdf_file.chmod(0o600)
    pdf_file.write_bytes(b"gone")
    response = world.signer_client.get(f"{link}/documents/{document.id}/pages/2.jpg")
    assert response.status_code == 200
    assert response.data[:3] == b"\xff\xd8\xff"
    assert world.signer_client.get(f"{link}/documents/{document.id}/pages/4.jpg").status_code == 404


def test_a_page_not_rendered_yet_is_rendered_on_the_spot(world):
    world.sent_contract(make_pdf("not yet", 2))
    link = world.signing_link()
    world.refresh()
    document_id = world.session.scalar(select(Contract)).documents[0].id
    response = world.signer_client.get(f"{link}/documents/{document_id}/pages/1.jpg")
    assert response.status_code == 200
    assert response.data[:3] == b"\xff\xd8\xff"


def test_a_hostile_width_on_the_staff_page_image_is_not_an_error(world):
    contract_id = world.sent_contract(make_pdf("width"))
    world.refresh()
    document_id = world.session.get(Contract, contract_id).documents[0].id
    for width in ("abc", "-5", "99999999999", "１０００", "1e9"):
        response = world.staff_client.get(f"/contracts/{contract_id}/documents/{document_id}/pages/1.jpg?w={width}")
        assert response.status_code == 200, width
        assert response.data[:3] == b"\xff\xd8\xff"
