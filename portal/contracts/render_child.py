"""The page renderer's own process: `python render_child.py MEMORY_BYTES WIDTH MAX_PIXELS PAGES` with
the PDF on stdin writes, per page, its 0-based index and the JPEG's length (4 bytes each, big-endian)
then the JPEG to stdout.

Run by path, not as `-m portal…`, so that it imports pypdfium2 and Pillow only: the address-space
limit is set before either is loaded. PAGES is "all" or comma-separated indices (pages that are not
there are skipped). A page taller than A4 is drawn narrower so that no image exceeds MAX_PIXELS.
Exit status: 0 done, 2 the PDF cannot be opened, 3 out of memory (the limit was reached).
"""

from __future__ import annotations

import io
import math
import resource
import struct
import sys


def _fit(width_pt: float, height_pt: float, width_px: int, max_pixels: int) -> float:
    """The scale that draws the page `width_px` wide, or narrower so that it stays within `max_pixels`."""
    scale = width_px / width_pt
    if (width_pt * scale) * (height_pt * scale) > max_pixels:
        scale = (max_pixels / (width_pt * height_pt)) ** 0.5
    while math.ceil(width_pt * scale) * math.ceil(height_pt * scale) > max_pixels:  # pdfium rounds up
        scale *= 0.99
    return scale


def main(argv: list[str]) -> int:
    memory_bytes, width, max_pixels, pages = int(argv[1]), int(argv[2]), int(argv[3]), argv[4]
    resource.setrlimit(resource.RLIMIT_AS, (memory_bytes, memory_bytes))
    try:
        import pypdfium2 as pdfium

        data = sys.stdin.buffer.read()
        try:
            document = pdfium.PdfDocument(data)
        except pdfium.PdfiumError:
            return 2
        count = len(document)
        wanted = range(count) if pages == "all" else [int(p) for p in pages.split(",") if p]
        out = sys.stdout.buffer
        for index in wanted:
            if not 0 <= index < count:
                continue
            page = document[index]
            width_pt, height_pt = page.get_size()
            scale = _fit(max(width_pt, 1.0), max(height_pt, 1.0), width, max_pixels)
            picture = page.render(scale=scale, may_draw_forms=True).to_pil()
            page.close()
            buffer = io.BytesIO()
            picture.convert("RGB").save(buffer, format="JPEG", quality=85, optimize=True)
            image = buffer.getvalue()
            out.write(struct.pack(">II", index, len(image)) + image)
            out.flush()
        document.close()
    except MemoryError:
        return 3
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
