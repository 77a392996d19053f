"""tests/pdfs.py makes what its options say, and every variant passes the upload check (so a test that
uploads one tests the portal, not a broken fixture)."""

from __future__ import annotations

import pypdfium2
import pytest

from portal.signing.pades import UploadRules, check_upload
from tests.pdfs import JAPANESE_LINES, make_pdf


def _text(data: bytes) -> list[str]:
    document = pypdfium2.PdfDocument(data)
    try:
        return [page.get_textpage().get_text_bounded() for page in document]
    finally:
        document.close()


@pytest.mark.parametrize("options", [{}, {"pages": 3}, {"title": "業務委託契約書", "japanese": True, "pages": 2},
                                     {"size": 200_000}])
def test_every_variant_is_an_upload_the_portal_accepts(options: dict) -> None:
    check_upload(make_pdf(**options), UploadRules(max_bytes=1_000_000))


def test_pages_title_and_japanese_text_are_there() -> None:
    data = make_pdf("Lease", 2, title="業務委託契約書", japanese=True)

    pages = _text(data)
    document = pypdfium2.PdfDocument(data)
    assert document.get_metadata_dict()["Title"] == "業務委託契約書"
    document.close()
    assert len(pages) == 2
    assert "Lease page 2" in pages[1]
    assert "業務委託契約書" in pages[0]
    assert JAPANESE_LINES[2] in pages[0].replace("\r\n", "")
    assert "2 / 2" in pages[1]
    assert "業務委託契約書" not in _text(make_pdf("Lease"))[0]


def test_size_pads_with_incompressible_filler_and_the_same_arguments_give_the_same_bytes() -> None:
    import zlib

    padded = make_pdf(size=300_000)

    assert 300_000 <= len(padded) < 300_100
    assert len(zlib.compress(padded)) > 100_000  # like a scan, not a run of spaces
    assert padded == make_pdf(size=300_000)
    assert make_pdf("a") != make_pdf("b")
    assert len(make_pdf()) < 3_000
