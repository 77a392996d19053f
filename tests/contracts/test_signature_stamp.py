"""SIGNATURE_STAMP (R18): off by default (invisible signatures); on, each signer's stamp on the last page of every
document, side by side in the margin, and the service's on the certificate, all still valid and archival."""

from __future__ import annotations

import io

import pytest
from pyhanko.pdf_utils.reader import PdfFileReader

from portal.config import load_config
from portal.contracts.signatures import verify_bytes
from tests.pdfs import make_pdf
from tests.printing.pdfcheck import assert_archival, require_font


def _stamps(data: bytes) -> list[tuple[float, ...]]:
    """Rects of the visible signature widgets, by page."""
    reader = PdfFileReader(io.BytesIO(data))
    found = []
    for page in reader.root["/Pages"]["/Kids"]:
        for annotation in page.get_object().get("/Annots", []):
            annotation = annotation.get_object()
            rect = tuple(float(v) for v in annotation["/Rect"])
            if annotation.get("/FT") == "/Sig" and rect[2] > rect[0]:
                assert "/AP" in annotation
                found.append(rect)
    return found


def _delivered(world, contract_id):
    path = world.download_path("yamada@keiyaku-shoji.co.jp")
    contract = world.contract(contract_id)
    documents = [world.signer_client.get(f"{path}/documents/{d.id}").data for d in contract.documents]
    return documents, world.signer_client.get(f"{path}/certificate").data


def test_signatures_are_invisible_by_default(app, world):
    assert app.config["SIGNATURE_STAMP"] is False
    documents, certificate = _delivered(world, world.completed_contract(make_pdf("Agreement", 2)))
    assert [_stamps(data) for data in documents] == [[]]
    assert _stamps(certificate) == []


def test_stamps_when_switched_on(app, world):
    require_font()
    app.config["SIGNATURE_STAMP"] = True
    documents, certificate = _delivered(world, world.completed_contract(make_pdf("Agreement", 2), make_pdf("B")))
    for data in documents:
        first, second = _stamps(data)
        assert second[2] <= first[0]  # the second signer's stamp beside the first, right to left
        assert first[3] <= 72  # bottom-right corner, in the margin
        with app.app_context():
            assert verify_bytes(data).is_valid
    [service] = _stamps(certificate)
    assert service[0] < 72  # the certificate's corner is bottom-left
    assert_archival(certificate)
    with app.app_context():
        assert verify_bytes(certificate).is_valid


def test_a_contract_type_may_have_its_own_corner(app, world):
    require_font()
    app.config.update(SIGNATURE_STAMP=True, SIGNATURE_STAMP_CORNERS={"contract": "bottom-right", "物品": "top-left"})
    documents, _ = _delivered(world, world.completed_contract(make_pdf("Agreement"), contract_type="物品"))
    stamps = _stamps(documents[0])
    assert len(stamps) == 2
    assert min(x1 for x1, _, _, _ in stamps) < 72  # from the left edge
    assert all(y1 > 842 - 72 for _, y1, _, _ in stamps)  # at the top


def test_an_unknown_corner_stops_the_start(app):
    app.config["SIGNATURE_STAMP_CORNERS"] = {"contract": "middle"}
    with pytest.raises(SystemExit, match="SIGNATURE_STAMP_CORNERS"):
        load_config(app, {"SIGNATURE_STAMP_CORNERS": {"contract": "middle"}})
