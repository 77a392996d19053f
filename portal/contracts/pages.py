"""Page images of stored PDFs, rendered server-side with pypdfium2 so that a phone needs no PDF viewer.

Rendering costs tens of milliseconds per page; images are cached per (SHA-256, page, width) in
process memory: the bytes of a revision never change, so a cached image never goes stale.
"""

from __future__ import annotations

import io
import threading
from collections import OrderedDict

import pypdfium2 as pdfium

from portal.errors import NotFound
from portal.signing.errors import InvalidPdf

_CACHE_ENTRIES = 512
_cache: OrderedDict[tuple[str, int, int], bytes] = OrderedDict()
_lock = threading.Lock()
# pdfium is not thread-safe: one document operation at a time per process.
_pdfium_lock = threading.Lock()


def page_count(data: bytes) -> int:
    """Number of pages. Raises InvalidPdf when pdfium cannot open the file."""
    with _pdfium_lock:
        try:
            document = pdfium.PdfDocument(data)
        except pdfium.PdfiumError as exc:
            raise InvalidPdf() from exc
        try:
            return len(document)
        finally:
            document.close()


def page_image(data: bytes, sha256: str, index: int, *, width: int) -> bytes:
    """JPEG of page `index` (0-based), `width` pixels wide. Raises NotFound for a page that is not there."""
    key = (sha256, index, width)
    with _lock:
        if key in _cache:
            _cache.move_to_end(key)
            return _cache[key]
    image = _render(data, index, width)
    with _lock:
        _cache[key] = image
        while len(_cache) > _CACHE_ENTRIES:
            _cache.popitem(last=False)
    return image


def _render(data: bytes, index: int, width: int) -> bytes:
    with _pdfium_lock:
        document = pdfium.PdfDocument(data)
        try:
            if not 0 <= index < len(document):
                raise NotFound("指定されたページはありません。")
            page = document[index]
            bitmap = page.render(scale=width / page.get_width(), may_draw_forms=True)
            picture = bitmap.to_pil()
            page.close()
        finally:
            document.close()
    output = io.BytesIO()
    picture.convert("RGB").save(output, format="JPEG", quality=85, optimize=True)
    return output.getvalue()
