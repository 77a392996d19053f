"""Hostile PDFs, each built here from raw objects with tests.pdfs.build (no file on disk): active content,
structures that cannot be signed, amplifiers for the page renderer and broken cross-reference tables."""

from __future__ import annotations

import zlib

from tests.pdfs import build

PAGE = "<< /Type /Page /Parent 2 0 R /MediaBox [0 0 595 842] /Resources << >> /Contents 4 0 R >>"
CONTENT = "<< /Length 38 >>\nstream\nBT /F1 24 Tf 72 720 Td (Hostile) Tj ET\nendstream"


def _with_catalog(extra: str, *more: bytes | str) -> bytes:
    return build([f"<< /Type /Catalog /Pages 2 0 R {extra} >>", "<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
                  PAGE, CONTENT, *more])


def javascript_open_action() -> bytes:
    return _with_catalog("/OpenAction << /S /JavaScript /JS (app.alert\\('pwned'\\);) >>")


def javascript_page_aa() -> bytes:
    page = PAGE[:-2] + "/AA << /O 5 0 R >> >>"
    return build(["<< /Type /Catalog /Pages 2 0 R >>", "<< /Type /Pages /Kids [3 0 R] /Count 1 >>", page, CONTENT,
                  "<< /S /JavaScript /JS 6 0 R >>", "<< /Length 19 >>\nstream\napp.alert('again');\nendstream"])


def javascript_names() -> bytes:
    return _with_catalog("/Names << /JavaScript << /Names [(x) 5 0 R] >> >>", "<< /S /JavaScript /JS (1;) >>")


def launch_action() -> bytes:
    return _with_catalog("/OpenAction << /S /Launch /F (calc.exe) >>")


def xfa_form() -> bytes:
    return _with_catalog("/AcroForm << /Fields [] /XFA 5 0 R >>",
                         "<< /Length 19 >>\nstream\n<xdp:xdp></xdp:xdp>\nendstream")


def embedded_file(payload: bytes = b"MZ\x90\x00 an executable") -> bytes:
    stream = f"<< /Type /EmbeddedFile /Length {len(payload)} >>\nstream\n".encode() + payload + b"\nendstream"
    return _with_catalog("/Names << /EmbeddedFiles << /Names [(a.exe) 5 0 R] >> >>",
                         "<< /Type /Filespec /F (a.exe) /EF << /F 6 0 R >> >>", stream)


def embedded_pdf() -> bytes:
    inner = build(["<< /Type /Catalog /Pages 2 0 R >>", "<< /Type /Pages /Kids [3 0 R] /Count 1 >>", PAGE, CONTENT])
    packed = zlib.compress(inner)
    stream = (f"<< /Type /EmbeddedFile /Subtype /application#2Fpdf /Filter /FlateDecode /Length {len(packed)} >>"
              "\nstream\n").encode() + packed + b"\nendstream"
    return _with_catalog("/Names << /EmbeddedFiles << /Names [(appendix.pdf) 5 0 R] >> >>",
                         "<< /Type /Filespec /F (appendix.pdf) /EF << /F 6 0 R >> >>", stream)


def circular_page_tree() -> bytes:
    """The root /Pages node's first kid is a /Pages node whose kid is the root again."""
    return build(["<< /Type /Catalog /Pages 2 0 R >>", "<< /Type /Pages /Kids [5 0 R 3 0 R] /Count 2 >>", PAGE,
                  CONTENT, "<< /Type /Pages /Parent 2 0 R /Kids [2 0 R] /Count 1 >>"])


def _deep_page(nested: str) -> bytes:
    return build(["<< /Type /Catalog /Pages 2 0 R >>", "<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
                  PAGE[:-2] + f"/PieceInfo {nested} >>", CONTENT])


def deep_arrays(depth: int = 200_000) -> bytes:
    return _deep_page("[" * depth + "]" * depth)


def deep_dictionaries(depth: int = 50_000) -> bytes:
    return _deep_page("<< /A " * depth + "1" + " >>" * depth)


def _valid_head() -> tuple[bytes, bytes]:
    good = build(["<< /Type /Catalog /Pages 2 0 R >>", "<< /Type /Pages /Kids [3 0 R] /Count 1 >>", PAGE, CONTENT])
    return good, good.partition(b"xref\n")[0]


def malformed_xref() -> bytes:
    """A cross-reference table with a non-numeric offset and garbage lines in it."""
    _, head = _valid_head()
    return (head + b"xref\n0 5\n0000000000 65535 f \n00000000zz 00000 n \ngarbage here\n"
            b"trailer\n<< /Size 5 /Root 1 0 R >>\nstartxref\n" + str(len(head)).encode() + b"\n%%EOF\n")


def negative_startxref() -> bytes:
    good, head = _valid_head()
    return good.replace(b"startxref\n%d" % len(head), b"startxref\n-5")


def huge_xref_subsection() -> bytes:
    """An xref subsection claiming 99,999,999 entries."""
    good, _ = _valid_head()
    return good.replace(b"xref\n0 5", b"xref\n0 99999999")


def root_not_a_dictionary() -> bytes:
    good, _ = _valid_head()
    return good.replace(b"/Root 1 0 R", b"/Root 7")


def wrong_offsets() -> bytes:
    """xref offsets that point into the middle of other objects."""
    good, _ = _valid_head()
    return good.replace(b"0000000015 00000 n", b"0000000099 00000 n")


def tall_page(width_pt: int = 20, height_pt: int = 1200) -> bytes:
    """586 bytes that a renderer at 1000 px wide turns into a 1000 × 60000 bitmap."""
    return build(["<< /Type /Catalog /Pages 2 0 R >>", "<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
                  PAGE.replace("[0 0 595 842]", f"[0 0 {width_pt} {height_pt}]"), CONTENT])


def flate_bomb(decompressed: int = 1 << 30) -> bytes:
    """A content stream that inflates to `decompressed` bytes of spaces."""
    packer = zlib.compressobj(9)
    chunk = b" " * (1 << 20)
    packed = b"".join(packer.compress(chunk) for _ in range(decompressed // len(chunk))) + packer.flush()
    stream = f"<< /Filter /FlateDecode /Length {len(packed)} >>\nstream\n".encode() + packed + b"\nendstream"
    return build(["<< /Type /Catalog /Pages 2 0 R >>", "<< /Type /Pages /Kids [3 0 R] /Count 1 >>", PAGE, stream])


def many_pages(count: int = 100_000) -> bytes:
    """`count` pages sharing one page object's content: small on disk, huge on the signing page."""
    kids = " ".join(f"{4 + i} 0 R" for i in range(count))
    pages = ["<< /Type /Page /Parent 2 0 R /MediaBox [0 0 595 842] /Contents 3 0 R >>" for _ in range(count)]
    return build(["<< /Type /Catalog /Pages 2 0 R >>", f"<< /Type /Pages /Kids [{kids}] /Count {count} >>",
                  CONTENT, *pages])
