"""Archival PDFs written by portal/printing: PDF/A-2b markers, embedded fonts, text exactly as given."""

from __future__ import annotations

import pytest

from portal.printing.archival import ArchivalPdf, FontMissing, Metadata
from tests.printing.pdfcheck import assert_archival, require_font, run_tool


def test_blank_form_is_archival_and_offered_on_the_apply_and_help_pages(app, client):
    require_font()
    for page in ("/apply", "/help"):
        assert 'href="/apply/form.pdf"' in client.get(page).get_data(as_text=True), page
    response = client.get("/apply/form.pdf")
    assert response.status_code == 200
    assert response.headers["Content-Type"] == "application/pdf"
    assert_archival(response.data)
    text = run_tool("pdftotext", response.data)
    for label in ("電子契約利用申出書", "契約締結権限者", "商号(名称)", "令和"):
        assert label in text, label


def test_markup_and_control_characters_are_drawn_as_text(app):
    require_font()
    with app.app_context():
        sheet = ArchivalPdf(Metadata(title="<script>", author="岡山県"))
        sheet.text("<script>alert(1)</script> (\\) 𠮷")
        data = sheet.output()
    assert_archival(data)
    assert "<script>alert(1)</script> (\\) 𠮷" in run_tool("pdftotext", data)


def test_a_missing_font_is_reported_in_japanese(app, tmp_path):
    app.config["PDF_FONT_FILE"] = str(tmp_path / "missing.ttf")
    with app.app_context(), pytest.raises(FontMissing) as refused:
        ArchivalPdf(Metadata(title="t", author="a"))
    assert "IPAmj明朝" in refused.value.message


def test_a_block_kept_together_starts_a_new_page_instead_of_splitting(app):
    require_font()
    with app.app_context():
        sheet = ArchivalPdf(Metadata(title="t", author="岡山県"), footer="合意締結証明書")
        for number in range(9):
            rows = [(f"始まり{number}", "株式会社𠮷野家 " * 6), *[("氏名", "﨑山 太郎")] * (3 + number % 5),
                    (f"終わり{number}", "x")]
            sheet.keep_together(sheet.text_height(f"ブロック{number}") + sheet.rows_height(rows))
            sheet.text(f"ブロック{number}")
            sheet.rows(rows)
        data = sheet.output()
    pages = run_tool("pdftotext", data).split("\f")
    assert len(pages) >= 3
    for number in range(9):
        [page] = [index for index, text in enumerate(pages) if f"ブロック{number}" in text]
        assert f"始まり{number}" in pages[page]
        assert f"終わり{number}" in pages[page], (number, pages[page])
    assert f"合意締結証明書 ／ 1/{len(pages) - 1}" in pages[0]  # pdftotext ends with a form feed
