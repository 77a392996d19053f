"""Visible signature stamps (R18): an annotation in the page margin; the signed page content stays as it was."""

from __future__ import annotations

import io
from pathlib import Path

import pypdfium2
import pytest
from pyhanko.pdf_utils.reader import PdfFileReader

from portal.printing.archival import FONT_CANDIDATES
from portal.signing.context import SigningContext
from portal.signing.pades import Approval, Stamp, finalize, sign_approval, verify
from tests.pdfs import make_pdf
from tests.printing.pdfcheck import require_font, run_tool


def _font() -> str:
    require_font()
    return next(path for path in FONT_CANDIDATES if Path(path).is_file())


def _widgets(data: bytes) -> list[tuple[list[float], bool]]:
    """(rect, has an appearance) of every annotation on the last page."""
    reader = PdfFileReader(io.BytesIO(data))
    page = reader.root["/Pages"]["/Kids"][-1].get_object()
    return [([float(v) for v in a.get_object()["/Rect"]], "/AP" in a.get_object()) for a in page.get("/Annots", [])]


def _stamp_glyph_widths(data: bytes) -> list[float]:
    """Every glyph width (/W) of the fonts in the stamps' appearances, in text space (1000 = one em)."""
    reader = PdfFileReader(io.BytesIO(data))
    page = reader.root["/Pages"]["/Kids"][-1].get_object()
    widths: list[float] = []
    for annotation in page.get("/Annots", []):
        appearance = annotation.get_object().get("/AP")
        if appearance is None:
            continue
        for font in appearance["/N"]["/Resources"].get("/Font", {}).values():
            for descendant in font.get_object()["/DescendantFonts"]:
                entries = list(descendant.get_object()["/W"])
                widths.extend(float(w) for entry in entries if isinstance(entry, list) for w in entry)
    return widths


def _pixels(data: bytes, *, with_annotations: bool) -> tuple[int, int, bytes]:
    document = pypdfium2.PdfDocument(data)
    if with_annotations:
        document.init_forms()
    try:
        page = document[len(document) - 1]
        bitmap = page.render(scale=1, grayscale=True, draw_annots=with_annotations, may_draw_forms=with_annotations)
        pixels = bitmap.width, bitmap.height, bytes(bitmap.buffer)
        bitmap.close()
        page.close()
        return pixels
    finally:
        document.close()


def test_approval_without_a_stamp_is_invisible(context: SigningContext, approval: Approval) -> None:
    signed = sign_approval(make_pdf("contract"), approval, context=context)
    assert [rect for rect, _ in _widgets(signed)] == [[0, 0, 0, 0]]


def test_stamps_sit_side_by_side_in_the_margin_and_leave_the_content_as_it_was(
    context: SigningContext, approval: Approval
) -> None:
    font = _font()
    original = make_pdf("contract")
    first = sign_approval(original, approval, context=context,
                          stamp=Stamp(text="電子署名 株式会社𠮷野家\n﨑山 太郎 令和8年12月2日", font_file=font))
    second = sign_approval(first, approval, context=context,
                           stamp=Stamp(text="電子署名 岡山県 髙橋 一郎", font_file=font, slot=1))
    final = finalize(second, context=context)
    assert verify(final, context=context).is_valid

    widths = _stamp_glyph_widths(final)
    assert widths
    assert max(widths) <= 1000, "glyphs wider than an em: the stamp's letters would stand apart"
    text = run_tool("pdftotext", final)
    for line in ("電子署名 株式会社𠮷野家", "﨑山 太郎 令和8年12月2日", "電子署名 岡山県 髙橋 一郎"):
        assert line in text, text  # as written, without gaps between the glyphs

    rects = [rect for rect, appearance in _widgets(final) if appearance]
    assert len(rects) == 2
    (a_x1, a_y1, a_x2, a_y2), (_, _, b_x2, _) = rects
    assert a_y1 >= 0
    assert a_y2 <= 72  # in the bottom inch of an A4 page: the margin
    assert b_x2 <= a_x1  # the second stamp beside the first, not over it
    assert a_x2 <= 595

    width, height, before = _pixels(original, with_annotations=False)
    _, _, content = _pixels(final, with_annotations=False)
    assert content == before, "the page content changed"
    _, _, shown = _pixels(final, with_annotations=True)
    changed = [i for i, (x, y) in enumerate(zip(before, shown, strict=True)) if x != y]
    assert changed, "the stamp is not drawn"
    rows = {i // width for i in changed}
    assert min(rows) >= height - 72  # drawn in the bottom margin only


def test_a_stamp_corner_must_be_known() -> None:
    with pytest.raises(ValueError, match="corner"):
        Stamp(text="x", font_file="x.ttf", corner="middle")
