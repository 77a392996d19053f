"""合意締結証明書 (completion certificate): a one-page-or-more A4 PDF listing the contract,
every delivered document with its SHA-256, and each signer's name, e-mail, time, IP and
authentication methods.

Written directly as PDF objects: Japanese text uses the predefined Adobe-Japan1 font
HeiseiKakuGo-W5 with the UniJIS-UCS2-HW-H CMap (ISO 32000-1 §9.7.5.2), which Acrobat and poppler
resolve without embedding a font file.
"""

from __future__ import annotations

import io
from dataclasses import dataclass

PAGE_WIDTH, PAGE_HEIGHT = 595, 842  # A4 in points
MARGIN = 56
LINE_HEIGHT = 15
WRAP_UNITS = 96  # half-width units (5 pt each at 10 pt) within the 483 pt between the margins


@dataclass(frozen=True)
class Line:
    text: str
    size: int = 10
    gap_before: int = 0


def _units(char: str) -> int:
    return 1 if ord(char) < 0x7F or 0xFF61 <= ord(char) <= 0xFF9F else 2


def _wrap(text: str, limit: int) -> list[str]:
    lines, current, used = [], "", 0
    for char in text:
        width = _units(char)
        if used + width > limit and current:
            lines.append(current)
            current, used = "  ", 2
        current += char
        used += width
    lines.append(current)
    return lines


def _encode(text: str) -> str:
    # UCS-2: characters beyond the BMP cannot be shown with this CMap; 〓 (geta) marks them.
    safe = "".join(c if ord(c) <= 0xFFFF else "〓" for c in text)
    return safe.encode("utf-16-be").hex().upper()


def render(lines: list[Line], *, title: str = "合意締結証明書") -> bytes:
    """A PDF of the given lines, wrapped and paginated."""
    pages: list[list[str]] = [[]]
    y = PAGE_HEIGHT - MARGIN
    for line in lines:
        for chunk in _wrap(line.text, WRAP_UNITS * 10 // line.size):
            y -= line.gap_before + LINE_HEIGHT * line.size // 10
            if y < MARGIN:
                pages.append([])
                y = PAGE_HEIGHT - MARGIN - LINE_HEIGHT
            pages[-1].append(f"BT /F1 {line.size} Tf {MARGIN} {y} Td <{_encode(chunk)}> Tj ET")
            line = Line(line.text, line.size)  # the gap applies to the first chunk only
    return _write(["\n".join(ops) for ops in pages], title)


def _write(contents: list[str], title: str) -> bytes:
    objects: list[bytes] = []

    def add(body: str | bytes) -> int:
        objects.append(body.encode() if isinstance(body, str) else body)
        return len(objects)

    catalog = add("<< /Type /Catalog /Pages 2 0 R >>")
    pages_id = add("")  # filled below
    font = add("<< /Type /Font /Subtype /Type0 /BaseFont /HeiseiKakuGo-W5 /Encoding /UniJIS-UCS2-HW-H "
               "/DescendantFonts [4 0 R] >>")
    add("<< /Type /Font /Subtype /CIDFontType0 /BaseFont /HeiseiKakuGo-W5 "
        "/CIDSystemInfo << /Registry (Adobe) /Ordering (Japan1) /Supplement 2 >> /FontDescriptor 5 0 R "
        "/DW 1000 /W [231 389 500 631 [500]] >>")
    add("<< /Type /FontDescriptor /FontName /HeiseiKakuGo-W5 /Flags 4 /FontBBox [-92 -250 1010 922] "
        "/ItalicAngle 0 /Ascent 880 /Descent -120 /CapHeight 737 /StemV 114 >>")
    info = add(f"<< /Title <FEFF{_encode(title)}> /Producer (keiyaku-portal) >>")
    kids = []
    for content in contents:
        stream = content.encode("ascii")
        stream_id = add(b"<< /Length %d >>\nstream\n" % len(stream) + stream + b"\nendstream")
        kids.append(add(f"<< /Type /Page /Parent {pages_id} 0 R /MediaBox [0 0 {PAGE_WIDTH} {PAGE_HEIGHT}] "
                        f"/Resources << /Font << /F1 {font} 0 R >> >> /Contents {stream_id} 0 R >>"))
    objects[pages_id - 1] = (f"<< /Type /Pages /Kids [{' '.join(f'{k} 0 R' for k in kids)}] "
                             f"/Count {len(kids)} >>").encode()
    out = io.BytesIO()
    out.write(b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n")
    offsets = []
    for number, body in enumerate(objects, start=1):
        offsets.append(out.tell())
        out.write(b"%d 0 obj\n" % number + body + b"\nendobj\n")
    xref = out.tell()
    out.write(b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1))
    for offset in offsets:
        out.write(b"%010d 00000 n \n" % offset)
    out.write(b"trailer\n<< /Size %d /Root %d 0 R /Info %d 0 R >>\nstartxref\n%d\n%%%%EOF\n"
              % (len(objects) + 1, catalog, info, xref))
    return out.getvalue()
