"""Checks for the PDFs the portal writes: every font embedded, text read back by poppler, PDF/A-2b markers.

No PDF/A validator is installable here from the package registries (veraPDF ships outside them), so the
PDF/A check is on the markers ISO 19005-2 requires: XMP with pdfaid part 2 / conformance B, an sRGB
output intent with its ICC profile, embedded fonts, a file identifier, no encryption and no JavaScript.
"""

from __future__ import annotations

import io
import subprocess
import tempfile
from pathlib import Path
from xml.etree import ElementTree

from pyhanko.pdf_utils.reader import PdfFileReader

from portal.printing import archival
from tests.conftest import require, require_tool

RARE_NAMES = ("𠮷野家", "髙橋", "﨑")


def require_font() -> None:
    require(any(Path(p).is_file() for p in archival.FONT_CANDIDATES),
            "IPAmj明朝 is not installed (apt-get install fonts-ipamj-mincho)")


def run_tool(tool: str, data: bytes, *args: str) -> str:
    """Run a poppler tool on the PDF (they need a seekable file) and return what it printed."""
    binary = require_tool(tool)
    with tempfile.NamedTemporaryFile(suffix=".pdf") as file:
        file.write(data)
        file.flush()
        command = [binary, *args, file.name] + (["-"] if tool == "pdftotext" else [])
        return subprocess.run(command, capture_output=True, check=True).stdout.decode("utf-8")


def fonts_of(data: bytes) -> list[tuple[str, str]]:
    """(font name, emb column) for every font pdffonts lists."""
    lines = run_tool("pdffonts", data).splitlines()[2:]
    rows = []
    for line in lines:
        columns = line.split()
        # name type… encoding emb sub uni object ID: emb is the fifth column from the end.
        rows.append((columns[0], columns[-5]))
    return rows


XMP_NAMESPACES = {
    "rdf": "http://www.w3.org/1999/02/22-rdf-syntax-ns#",
    "pdfaid": "http://www.aiim.org/pdfa/ns/id/",
}
ANNOT_PRINT, ANNOT_HIDDEN, ANNOT_INVISIBLE, ANNOT_NOVIEW = 4, 2, 1, 32


def pdfa_identification(xmp: str) -> tuple[str, str]:
    """(part, conformance) from the XMP packet, written as elements or as attributes (both are RDF)."""
    description = ElementTree.fromstring(xmp.split("?>", 1)[1].rsplit("<?xpacket", 1)[0]).find(
        ".//rdf:Description", XMP_NAMESPACES)
    assert description is not None, xmp
    found = []
    for name in ("part", "conformance"):
        key = f"{{{XMP_NAMESPACES['pdfaid']}}}{name}"
        element = description.find(f"pdfaid:{name}", XMP_NAMESPACES)
        found.append(description.get(key) if element is None else (element.text or ""))
    return found[0] or "", found[1] or ""


def assert_archival(data: bytes) -> None:
    fonts = fonts_of(data)
    assert fonts, "no font at all"
    assert [name for name, emb in fonts if emb != "yes"] == []
    reader = PdfFileReader(io.BytesIO(data))
    assert not reader.encrypted
    root = reader.root
    assert str(root["/Lang"]) == "ja"
    intents = root["/OutputIntents"]
    assert str(intents[0]["/S"]) == "/GTS_PDFA1"
    profile = intents[0]["/DestOutputProfile"]
    assert profile.data[36:40] == b"acsp"  # an ICC profile header
    metadata = root["/Metadata"]
    assert "/Filter" not in metadata, "the XMP stream must be readable without decoding"
    xmp = metadata.data.decode("utf-8")
    assert "bytes=" not in xmp.split("?>", 1)[0]
    assert pdfa_identification(xmp) == ("2", "B")
    assert reader.trailer["/ID"]
    assert "/JavaScript" not in root.get("/Names", {})
    assert "/AA" not in root
    open_action = root.get("/OpenAction")
    assert open_action is None or isinstance(open_action, list), "an open action other than a destination"
    for page in reader.root["/Pages"]["/Kids"]:
        for annotation in page.get_object().get("/Annots", []):
            annotation = annotation.get_object()
            flags = int(annotation.get("/F", 0))
            assert flags & ANNOT_PRINT, annotation
            assert not flags & (ANNOT_HIDDEN | ANNOT_INVISIBLE | ANNOT_NOVIEW), annotation
            rect = [float(v) for v in annotation["/Rect"]]
            assert "/AP" in annotation or (rect[2] - rect[0]) * (rect[3] - rect[1]) == 0, annotation
    info = run_tool("pdfinfo", data)
    assert "Encrypted:       no" in info
