"""The accepted request as an A4 PDF in the layout of the 別記様式 (電子契約利用申出書).

Text is set in reportlab's built-in Japanese CID font HeiseiMin-W3 (Adobe-Japan1, UniJIS-UCS2-H):
it needs no font file on the server, and every PDF viewer maps it to its own Japanese Mincho, as it
does for forms printed from Acrobat. The text layer stays extractable (search, tests). User input is
drawn as text only; nothing in it is interpreted.
"""

from __future__ import annotations

import io
from collections.abc import Iterator
from typing import Any

from reportlab.lib.pagesizes import A4
from reportlab.lib.units import mm
from reportlab.pdfbase import pdfmetrics
from reportlab.pdfbase.cidfonts import UnicodeCIDFont
from reportlab.pdfgen.canvas import Canvas

from portal.formatting import jst_wareki, wareki

FONT = "HeiseiMin-W3"
GOTHIC = "HeiseiKakuGo-W5"
PAGE_WIDTH, PAGE_HEIGHT = A4
MARGIN = 20 * mm
LABEL_WIDTH = 42 * mm
BODY_WIDTH = PAGE_WIDTH - 2 * MARGIN

INTRO = ("{agency}と電子契約サービスを利用して行う契約締結における契約締結権限者および契約締結に使用する"
         "メールアドレスは、次のとおりです。")
NOTES = (
    "※この様式は、契約相手方として決定された際に、速やかに県の担当者まで電子メール又は{agency}電子申請"
    "サービスにより提出してください。(押印は不要です。)",
    "※契約締結権限者は、必ずしも社内規定等における最終決裁権者でなくて構いません。あくまで電子契約サービスにより、"
    "電子契約を締結する際の最終的な承認者を設定してください。",
    "※フリーメールアドレスは不可とします。",
    "※契約予定日までに電子契約が締結できない場合は紙による契約書の作成に移行します。",
)

_registered = False


def _register_fonts() -> None:
    global _registered
    if not _registered:
        pdfmetrics.registerFont(UnicodeCIDFont(FONT))
        pdfmetrics.registerFont(UnicodeCIDFont(GOTHIC))
        _registered = True


def wrap(text: str, font: str, size: float, width: float) -> list[str]:
    """Break text into lines no wider than width, character by character (Japanese has no spaces)."""
    lines: list[str] = []
    for paragraph in (text or "").splitlines() or [""]:
        line = ""
        for char in paragraph:
            if line and pdfmetrics.stringWidth(line + char, font, size) > width:
                lines.append(line)
                line = char
            else:
                line += char
        lines.append(line)
    return lines


class _Sheet:
    """A canvas with a cursor running down the page; a new page starts when the next block won't fit."""

    def __init__(self, canvas: Canvas, footer: str) -> None:
        self.canvas = canvas
        self.footer = footer
        self.y = PAGE_HEIGHT - MARGIN

    def ensure(self, height: float) -> None:
        if self.y - height < MARGIN + 10 * mm:
            self._draw_footer()
            self.canvas.showPage()
            self.y = PAGE_HEIGHT - MARGIN

    def finish(self) -> None:
        self._draw_footer()
        self.canvas.showPage()

    def _draw_footer(self) -> None:
        self.canvas.setFont(GOTHIC, 7.5)
        self.canvas.setFillGray(0.35)
        self.canvas.drawString(MARGIN, MARGIN - 4 * mm, self.footer)
        self.canvas.setFillGray(0)

    def text(self, text: str, *, size: float = 10.5, font: str = FONT, align: str = "left",
             width: float = BODY_WIDTH, gap: float = 2 * mm) -> None:
        leading = size * 1.5
        lines = wrap(text, font, size, width)
        self.ensure(leading * len(lines))
        self.canvas.setFont(font, size)
        for line in lines:
            self.y -= leading
            if align == "center":
                self.canvas.drawCentredString(PAGE_WIDTH / 2, self.y + size * 0.35, line)
            elif align == "right":
                self.canvas.drawRightString(MARGIN + width, self.y + size * 0.35, line)
            else:
                self.canvas.drawString(MARGIN, self.y + size * 0.35, line)
        self.y -= gap

    def table(self, rows: list[tuple[str, str]], *, gap: float = 5 * mm) -> None:
        """Two-column ruled table: label cell, value cell; rows grow with their text."""
        value_width = BODY_WIDTH - LABEL_WIDTH - 6 * mm
        for label, value in rows:
            size = 10.5 if len(value) <= 80 else 9 if len(value) <= 160 else 8
            lines = wrap(value, FONT, size, value_width)
            leading = size * 1.45
            height = max(11 * mm, leading * len(lines) + 4 * mm)
            self.ensure(height)
            top = self.y
            self.canvas.setLineWidth(0.6)
            self.canvas.rect(MARGIN, top - height, LABEL_WIDTH, height)
            self.canvas.rect(MARGIN + LABEL_WIDTH, top - height, BODY_WIDTH - LABEL_WIDTH, height)
            self.canvas.setFont(FONT, 10.5)
            self.canvas.drawString(MARGIN + 3 * mm, top - height / 2 - 3.5, label)
            self.canvas.setFont(FONT, size)
            text_top = top - (height - leading * len(lines)) / 2
            for index, line in enumerate(lines):
                self.canvas.drawString(MARGIN + LABEL_WIDTH + 3 * mm, text_top - leading * (index + 1) + size * 0.3,
                                       line)
            self.y = top - height
        self.y -= gap


def render_usage_request(usage_request: Any, *, addressee: str) -> bytes:
    """Return the A4 PDF of the 別記様式 filled with the request's values."""
    _register_fonts()
    agency = addressee.removesuffix("知事").removesuffix("長") or addressee
    buffer = io.BytesIO()
    canvas = Canvas(buffer, pagesize=A4, pageCompression=1, invariant=1)
    canvas.setTitle(f"電子契約利用申出書 {usage_request.receipt_number}")
    canvas.setAuthor(agency)
    canvas.setSubject(usage_request.company_name)
    sheet = _Sheet(canvas, footer=" ／ ".join(_footer_parts(usage_request)))

    sheet.text("(別記様式)", size=10, gap=4 * mm)
    sheet.text("電子契約利用申出書", size=16, align="center", gap=6 * mm)
    sheet.text(wareki(usage_request.form_date), align="right", gap=4 * mm)
    sheet.text(f"{addressee} 様", size=11.5, gap=6 * mm)
    sheet.table([
        ("住所(所在地)", usage_request.address),
        ("商号(名称)", usage_request.company_name),
        ("代表者職・氏名", usage_request.representative),
        ("担当者職・氏名", usage_request.contact_person),
        ("連絡先", f"電話番号 {usage_request.contact_phone}\nメールアドレス {usage_request.contact_email}"),
    ])
    sheet.text(INTRO.format(agency=agency), gap=4 * mm)
    sheet.text(f"契約業務名 {usage_request.contract_name}", gap=5 * mm)
    sheet.text("【契約締結権限者】※電子契約の署名者として登録されます。", gap=2 * mm)
    sheet.table([
        ("役 職", usage_request.authority_title),
        ("氏 名", usage_request.authority_name),
        ("メールアドレス", usage_request.authority_email),
    ])
    sheet.text("【留意事項】", size=10, gap=1 * mm)
    for note in NOTES:
        sheet.text(note.format(agency=agency), size=9, gap=1 * mm)
    sheet.finish()
    canvas.save()
    return buffer.getvalue()


def _footer_parts(usage_request: Any) -> Iterator[str]:
    yield f"受付番号 {usage_request.receipt_number}"
    yield f"受付方法 {usage_request.channel.label}"
    if usage_request.confirmed_at and usage_request.channel.value == "web":
        yield f"メールアドレス確認 {jst_wareki(usage_request.confirmed_at)}"
    if usage_request.reviewed_at:
        yield f"受付 {jst_wareki(usage_request.reviewed_at)}"
