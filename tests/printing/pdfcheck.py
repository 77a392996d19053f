"""Checks for the PDFs the portal writes: every font embedded, text read back by poppler, PDF/A-2b markers.

No PDF/A validator is installable here from the package registries (veraPDF ships outside them), so the
PDF/A check is on the markers ISO 19005-2 requires: XMP with pdfaid part 2 / conformance B, an sRGB
output intent with its ICC profile, embedded fonts, a file identifier, no encryption and no JavaScript.
"""

from __future__ import annotations

import io
import re
import subprocess
import tempfile
from pathlib import Path

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
    xmp = root["/Metadata"].data.decode("utf-8")
    assert re.search(r"<pdfaid:part>2</pdfaid:part>", xmp)
    assert re.search(r"<pdfaid:conformance>B</pdfaid:conformance>", xmp)
    assert reader.trailer["/ID"]
    assert "/JavaScript" not in root.get("/Names", {})
    open_action = root.get("/OpenAction")
    assert open_action is None or isinstance(open_action, list), "an open action other than a destination"
    info = run_tool("pdfinfo", data)
    assert "Encrypted:       no" in info
