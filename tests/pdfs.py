"""The one PDF maker of the test suite (and of bench/): small valid PDFs written object by object.

The same arguments give the same bytes, so two calls can stand for "the same file uploaded twice".
Hostile PDFs are built in tests/signing/hostile_pdfs.py; everything here must be accepted by
portal.signing.inputs.check_pdf.
"""

from __future__ import annotations

import io
import random

JAPANESE_FONT = "HeiseiMin-W3"  # one of the standard Japanese fonts every PDF reader maps (not embedded)
JAPANESE_LINES = (
    "発注者 岡山県（以下「甲」という。）と受注者 株式会社けいやく商事（以下「乙」という。）は、",
    "次の条項により契約を締結する。",
    "第1条（目的） 乙は、甲の庁舎の清掃業務を誠実に履行するものとする。",
    "第2条（期間） 契約期間は、契約締結の日から令和9年3月31日までとする。",
    "第3条（代金） 契約金額は金1,100,000円（うち消費税及び地方消費税の額 金100,000円）とする。",
)
_HELVETICA = "<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>"
# A non-embedded CID font with the Unicode (UCS-2) encoding, as reportlab's UnicodeCIDFont writes it.
_JAPANESE = (
    f"<< /Type /Font /Subtype /Type0 /BaseFont /{JAPANESE_FONT} /Encoding /UniJIS-UCS2-H /DescendantFonts [ "
    f"<< /Type /Font /Subtype /CIDFontType0 /BaseFont /{JAPANESE_FONT} "
    "/CIDSystemInfo << /Registry (Adobe) /Ordering (Japan1) /Supplement 2 >> /DW 1000 "
    f"/FontDescriptor << /Type /FontDescriptor /FontName /{JAPANESE_FONT} /Flags 6 "
    "/FontBBox [-123 -257 1001 910] /ItalicAngle 0 /Ascent 723 /Descent -241 /CapHeight 709 /StemV 69 >> >> ] >>"
)


def make_pdf(text: str = "Contract", pages: int = 1, *, title: str | None = None, japanese: bool = False,
             size: int = 0) -> bytes:
    """An A4 PDF of `pages` pages, each with the line "<text> page N" in Helvetica.

    title: a heading on every page (in the Japanese font) and the document's /Info /Title.
    japanese: the pages also carry five lines of a Japanese contract and "N / pages" at the foot.
    size: incompressible filler (a comment in the first page's content) until the file has at
    least `size` bytes, like a scanned document.
    """
    fonts = 3 + 2 * pages
    objects = ["<< /Type /Catalog /Pages 2 0 R >>",
               f"<< /Type /Pages /Kids [{' '.join(f'{3 + 2 * i} 0 R' for i in range(pages))}] /Count {pages} >>"]
    streams = [_page_content(text, number, pages, title=title, japanese=japanese) for number in range(1, pages + 1)]
    for index, content in enumerate(streams):
        resources = f"<< /Font << /F1 {fonts} 0 R /F2 {fonts + 1} 0 R >> >>"
        objects.append(f"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 595 842] /Resources {resources} "
                       f"/Contents {4 + 2 * index} 0 R >>")
        objects.append(_stream(content))
    objects += [_HELVETICA, _JAPANESE]
    trailer = ""
    if title is not None:
        objects.append(f"<< /Title {_text_string(title)} >>")
        trailer = f"/Info {len(objects)} 0 R"
    data = build(objects, trailer_extra=trailer)
    if len(data) < size:
        # hex of seeded random bytes: the same filler every time, and nothing a compressor could shrink
        filler = b"%" + random.Random(size).randbytes(size // 2 + 1).hex().encode()[: size - len(data)] + b"\n"
        objects[3] = _stream(streams[0] + filler)
        data = build(objects, trailer_extra=trailer)
    return data


def build(objects: list[str | bytes], *, root: int = 1, trailer_extra: str = "") -> bytes:
    """A PDF with `objects` numbered from 1, a correct xref table and /Root `root` (also used to
    write the hostile PDFs of tests/signing/hostile_pdfs.py)."""
    out = io.BytesIO()
    out.write(b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n")
    offsets = []
    for number, body in enumerate(objects, start=1):
        offsets.append(out.tell())
        out.write(f"{number} 0 obj\n".encode())
        out.write(body.encode() if isinstance(body, str) else body)
        out.write(b"\nendobj\n")
    xref = out.tell()
    out.write(f"xref\n0 {len(objects) + 1}\n0000000000 65535 f \n".encode())
    for offset in offsets:
        out.write(f"{offset:010d} 00000 n \n".encode())
    out.write(f"trailer\n<< /Size {len(objects) + 1} /Root {root} 0 R {trailer_extra}>>\n"
              f"startxref\n{xref}\n%%EOF\n".encode())
    return out.getvalue()


def _page_content(text: str, number: int, pages: int, *, title: str | None, japanese: bool) -> bytes:
    lines = [f"BT /F1 24 Tf 72 720 Td ({_escape(text)} page {number}) Tj ET"]
    if title is not None:
        lines.append(f"BT /F2 20 Tf 60 770 Td {_ucs2(title)} Tj ET")
    if japanese:
        lines += [f"BT /F2 11 Tf 60 {680 - 22 * i} Td {_ucs2(line)} Tj ET" for i, line in enumerate(JAPANESE_LINES)]
        lines.append(f"BT /F1 11 Tf 500 40 Td ({number} / {pages}) Tj ET")
    return "\n".join(lines).encode() + b"\n"


def _stream(content: bytes) -> bytes:
    return f"<< /Length {len(content)} >>\nstream\n".encode() + content + b"\nendstream"


def _escape(text: str) -> str:
    if not text.isascii():
        raise ValueError("Helvetica text must be ASCII: use title= or japanese=True for Japanese")
    return text.replace("\\", "\\\\").replace("(", "\\(").replace(")", "\\)")


def _ucs2(text: str) -> str:
    return "<" + text.encode("utf-16-be").hex().upper() + ">"


def _text_string(text: str) -> str:
    """A PDF text string (UTF-16BE with its byte order mark), for /Info entries."""
    return "<FEFF" + text.encode("utf-16-be").hex().upper() + ">"

