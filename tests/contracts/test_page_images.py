"""Page images are rendered by the worker at upload, stored encrypted and served without the PDF."""

from __future__ import annotations

import io
from pathlib import Path

from PIL import Image
from sqlalchemy import func, select

from portal.contracts import pages
from portal.contracts.models import Contract, PageImage
from portal.jobs import run_queued_jobs
from portal.jobs.models import QueuedJob
from tests.pdfs import make_pdf
from tests.signing import hostile_pdfs


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


def test_a_hostile_width_on_the_staff_page_image_is_refused_with_a_message(world):
    contract_id = world.sent_contract(make_pdf("width"))
    world.refresh()
    document_id = world.session.get(Contract, contract_id).documents[0].id
    url = f"/contracts/{contract_id}/documents/{document_id}/pages/1.jpg"
    for width in ("abc", "-5", "99999999999", "１０００", "1e9", "", "50", "2001"):
        response = world.staff_client.get(f"{url}?w={width}")
        assert response.status_code == 400, width
        assert "画像の幅（w）は 100〜2000 の半角数字で指定してください。" in response.get_data(as_text=True)
    for width in ("100", "1500", "2000"):
        response = world.staff_client.get(f"{url}?w={width}")
        assert response.status_code == 200, width
        assert abs(Image.open(io.BytesIO(response.data)).width - int(width)) <= 1  # pdfium rounds up


def _rss_mb() -> float:
    line = next(x for x in Path("/proc/self/status").read_text().splitlines() if x.startswith("VmRSS:"))
    return int(line.split()[1]) / 1024


def test_a_tall_strip_is_drawn_within_the_pixel_cap(app):
    strip = hostile_pdfs.tall_page()  # 20 x 1200 pt: 1000 x 60000 px at the default width
    before = _rss_mb()
    with app.app_context():
        image = Image.open(io.BytesIO(pages.page_image(strip, "strip", 0, width=1000)))
        app.config["PAGE_IMAGE_MAX_PIXELS"] = 250_000
        smaller = Image.open(io.BytesIO(pages.page_image(strip, "strip-small", 0, width=1000)))
    print(f"\nweb process RSS before {before:.0f} MB, after rendering the strip {_rss_mb():.0f} MB")  # noqa: T201  (figures shown, never asserted)
    assert image.width * image.height <= 6_000_000
    assert image.height > 10 * image.width  # the shape is kept
    assert smaller.width * smaller.height <= 250_000


def test_rendering_runs_in_a_process_with_a_memory_limit(app, world):
    app.config.update(PDF_MAX_INFLATED_BYTES=4 << 30, PAGE_RENDER_MEMORY_BYTES=256 << 20)
    bomb = hostile_pdfs.flate_bomb(400 << 20)  # one content stream of 400 MB of spaces
    contract_id = world.create_id()
    assert world.upload(contract_id, (bomb, "bomb.pdf")).status_code == 200
    document_id = world.contract(contract_id).documents[0].id
    before = _rss_mb()
    response = world.staff_client.get(f"/contracts/{contract_id}/documents/{document_id}/pages/1.jpg")
    print(f"\nweb process RSS before {before:.0f} MB, after the flate bomb's page image {_rss_mb():.0f} MB")  # noqa: T201  (figures shown, never asserted)
    assert response.status_code == 422
    assert pages.RenderFailed().message in response.get_data(as_text=True)
    with app.app_context():  # the same file within the limit it needs is drawn: the limit was the cause
        app.config["PAGE_RENDER_MEMORY_BYTES"] = 4 << 30
        assert pages.page_image(bomb, "bomb", 0, width=200)[:3] == b"\xff\xd8\xff"
