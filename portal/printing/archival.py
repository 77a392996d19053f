"""A4 documents for keeping: PDF/A-2b, one embedded and subset font, /Lang ja, an sRGB output intent.

The default font is IPAmj明朝 (Debian `fonts-ipamj-mincho`): it covers the 文字情報基盤 set, so names
such as 𠮷野家, 髙橋 and 﨑 print as written. `PORTAL_PDF_FONT_FILE` names another TrueType file.
Text is laid out by characters, because Japanese lines have no spaces to break at, and every string
is drawn as text only: nothing a user typed is interpreted.
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from functools import cache
from pathlib import Path

from flask import current_app, has_app_context
from fpdf import FPDF
from fpdf.enums import OutputIntentSubType, WrapMode, XPos, YPos
from fpdf.output import PDFICCProfile
from PIL import ImageCms

from portal.errors import DomainError

FONT_CANDIDATES = (
    "/usr/share/fonts/truetype/ipamj/ipamjm.ttf",
    "/usr/share/fonts/opentype/ipamj/ipamjm.ttf",
    "/usr/local/share/fonts/ipamjm.ttf",
)
FONT = "body"
MARGIN_MM = 20.0
LABEL_WIDTH_MM = 42.0
LINE_FACTOR = 1.5
PT_TO_MM = 25.4 / 72
ROW_PADDING_MM = 2.0
HEADING_SIZE, HEADING_GAP = 12.0, 1.5


class FontMissing(DomainError):
    status_code = 503

    def __init__(self) -> None:
        super().__init__("PDF に埋め込む日本語フォント（IPAmj明朝）が見つかりません。管理者は fonts-ipamj-mincho を"
                         "導入するか、PORTAL_PDF_FONT_FILE にフォントファイルを設定してください。")


def font_file() -> Path:
    """The TrueType file embedded in every generated PDF.

    :raise FontMissing: when neither the setting nor a standard location names a readable file.
    """
    configured = current_app.config.get("PDF_FONT_FILE", "") if has_app_context() else ""
    for candidate in ([configured] if configured else FONT_CANDIDATES):
        path = Path(candidate)
        if path.is_file():
            return path
    raise FontMissing()


@cache
def _srgb_profile() -> bytes:
    return bytes(ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes())


@dataclass(frozen=True)
class Metadata:
    title: str
    author: str
    subject: str = ""


class ArchivalPdf:
    """A page cursor over fpdf2 with the few blocks the portal's forms need: text, ruled rows, rules."""

    def __init__(self, metadata: Metadata, *, footer: str = "") -> None:
        pdf = FPDF(orientation="P", unit="mm", format="A4", enforce_compliance="PDFA_2B")
        pdf.set_margins(MARGIN_MM, MARGIN_MM, MARGIN_MM)
        pdf.set_auto_page_break(auto=True, margin=MARGIN_MM + 6)
        pdf.add_font(FONT, fname=str(font_file()))
        pdf.set_lang("ja")
        pdf.set_title(metadata.title)
        pdf.set_author(metadata.author)
        if metadata.subject:
            pdf.set_subject(metadata.subject)
        pdf.set_creator("keiyaku-portal")
        pdf.add_output_intent(
            OutputIntentSubType.PDFA,
            output_condition_identifier="sRGB",
            output_condition="sRGB IEC61966-2.1",
            registry_name="http://www.color.org",
            dest_output_profile=PDFICCProfile(contents=_srgb_profile(), n=3, alternate="DeviceRGB"),
            info="sRGB IEC61966-2.1",
        )
        footer_text = footer

        def draw_footer() -> None:
            if footer_text:
                pdf.set_y(-MARGIN_MM + 2)
                pdf.set_font(FONT, size=7.5)
                pdf.set_text_color(90)
                pdf.cell(0, 4, f"{footer_text} ／ {pdf.page_no()}/{{nb}}", new_x=XPos.LMARGIN, new_y=YPos.NEXT)
                pdf.set_text_color(0)

        pdf.footer = draw_footer  # type: ignore[method-assign]
        pdf.add_page()
        self.pdf = pdf

    @property
    def body_width(self) -> float:
        return float(self.pdf.epw)

    def text(self, text: str, *, size: float = 10.5, align: str = "L", gap_mm: float = 2.0) -> None:
        self.pdf.set_font(FONT, size=size)
        self.pdf.multi_cell(0, size * LINE_FACTOR * PT_TO_MM, text or "", align=align, wrapmode=WrapMode.CHAR,
                            new_x=XPos.LMARGIN, new_y=YPos.NEXT)
        self.pdf.ln(gap_mm)

    def keep_together(self, height_mm: float) -> None:
        """Start a new page unless the next `height_mm` fit on this one (a block no taller than a page)."""
        fits_a_page = height_mm <= self.pdf.page_break_trigger - self.pdf.t_margin
        if fits_a_page and self.pdf.get_y() + height_mm > self.pdf.page_break_trigger:
            self.pdf.add_page()

    def text_height(self, text: str, *, size: float = 10.5, gap_mm: float = 2.0) -> float:
        """The height text() will take."""
        self.pdf.set_font(FONT, size=size)
        return self._line_count(0, size * LINE_FACTOR * PT_TO_MM, text) * size * LINE_FACTOR * PT_TO_MM + gap_mm

    def rows_height(self, rows: list[tuple[str, str]], *, label_width_mm: float = LABEL_WIDTH_MM,
                    size: float = 10.5, gap_mm: float = 5.0) -> float:
        """The height rows() will take (at most: fpdf2 may wrap a little later than this estimate)."""
        self.pdf.set_font(FONT, size=size)
        line = size * 1.45 * PT_TO_MM
        widths = (label_width_mm - 2 * ROW_PADDING_MM, self.body_width - label_width_mm - 2 * ROW_PADDING_MM)
        total = gap_mm
        for row in rows:
            count = max(self._line_count(width, line, text) for width, text in zip(widths, row, strict=True))
            total += count * line + 2 * ROW_PADDING_MM
        return total

    def _line_count(self, width: float, line_height: float, text: str) -> int:
        lines = self.pdf.multi_cell(width, line_height, text or "", wrapmode=WrapMode.CHAR, dry_run=True,
                                    output="LINES")
        return len(lines) if isinstance(lines, list) else 1

    def heading(self, text: str, *, size: float = HEADING_SIZE) -> None:
        self.text(text, size=size, gap_mm=HEADING_GAP)

    def rows(self, rows: list[tuple[str, str]], *, label_width_mm: float = LABEL_WIDTH_MM, size: float = 10.5,
             gap_mm: float = 5.0) -> None:
        """A two-column ruled table: label, value; each row as tall as its value needs."""
        self.pdf.set_font(FONT, size=size)
        with self.pdf.table(col_widths=(label_width_mm, self.body_width - label_width_mm), first_row_as_headings=False,
                            wrapmode=WrapMode.CHAR, line_height=size * 1.45 * PT_TO_MM, padding=ROW_PADDING_MM,
                            v_align="MIDDLE") as table:
            for label, value in rows:
                row = table.row()
                row.cell(label)
                row.cell(value or "")
        self.pdf.ln(gap_mm)

    def rule(self, gap_mm: float = 3.0) -> None:
        y = self.pdf.get_y()
        self.pdf.set_line_width(0.3)
        self.pdf.line(MARGIN_MM, y, MARGIN_MM + self.body_width, y)
        self.pdf.ln(gap_mm)

    def output(self) -> bytes:
        buffer = io.BytesIO()
        self.pdf.output(buffer)
        return buffer.getvalue()
