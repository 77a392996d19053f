"""Page images of stored PDFs, rendered server-side with pypdfium2 so that a phone needs no PDF viewer.

When a document is uploaded, a worker job renders every page and stores the JPEGs encrypted in the
document store (they show the document, so they are kept like it), one PageImage row each. A
request then reads only the small image, never the whole revision; images are also cached per
(SHA-256, page, width) in process memory. A page not rendered yet (a job still queued, a width
other than the default) is rendered from the revision on the spot. The bytes of a revision never
change, so an image never goes stale.

Drawing happens in a child process (render_child.py) with an address-space limit, so a page that
amplifies memory (a 586-byte strip 60,000 px tall, a flate bomb) costs that process, not the web
worker, and whatever it took is returned when it exits; no image has more than PAGE_IMAGE_MAX_PIXELS.
"""

from __future__ import annotations

import contextlib
import struct
import subprocess
import sys
import threading
from collections import OrderedDict
from collections.abc import Callable, Iterator
from datetime import datetime
from pathlib import Path

import pypdfium2 as pdfium
from flask import Flask, current_app
from sqlalchemy import select
from sqlalchemy.orm import Session

from portal import clock
from portal.contracts.documents import page_image_owner
from portal.contracts.models import DocumentRevision, PageImage
from portal.errors import DomainError, NotFound
from portal.signing.errors import InvalidPdf

RENDER_JOB = "contracts.page_images"
RENDER_CHILD = Path(__file__).with_name("render_child.py")

_CACHE_ENTRIES = 512
_cache: OrderedDict[tuple[str, int, int], bytes] = OrderedDict()
_lock = threading.Lock()
# pdfium is not thread-safe: one document operation at a time per process.
_pdfium_lock = threading.Lock()


class RenderFailed(DomainError):
    """The rendering process could not draw the page (memory limit, time limit, unreadable PDF)."""

    def __init__(self) -> None:
        super().__init__("このページの画像を作成できませんでした（PDF が複雑すぎるか、壊れています）。"
                         "PDF をダウンロードしてご確認ください。")


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


def revision_page_image(session: Session, revision: DocumentRevision, index: int, *, width: int,
                        page_count: int, read: Callable[[DocumentRevision], bytes]) -> bytes:
    """JPEG of page `index` (0-based) of a stored revision: memory cache, then the stored image, then
    rendered from the revision (`read` returns its bytes). Raises NotFound for a page that is not there."""
    if not 0 <= index < page_count:
        raise NotFound("指定されたページはありません。")
    key = (revision.sha256, index, width)
    with _lock:
        if key in _cache:
            _cache.move_to_end(key)
            return _cache[key]
    from portal.storage import StorageError, get_store

    stored = session.scalar(select(PageImage).where(
        PageImage.sha256 == revision.sha256, PageImage.page_index == index, PageImage.width == width))
    try:
        image = get_store().get(stored.storage_key, owner=page_image_owner(revision.sha256, index, width),
                                sha256=None) if stored is not None else None
    except StorageError:  # the stored image is unreadable (or another's): the document itself is the source
        image = None
    if image is None:
        return page_image(read(revision), revision.sha256, index, width=width)
    with _lock:
        _cache[key] = image
        while len(_cache) > _CACHE_ENTRIES:
            _cache.popitem(last=False)
    return image


def queue_rendering(session: Session, revision: DocumentRevision, *, now: datetime) -> None:
    """Have a worker render and store every page of `revision` (in the caller's transaction)."""
    from portal.jobs import enqueue

    session.flush()
    enqueue(session, RENDER_JOB, revision.id, now=now)


def render_and_store(session: Session, revision_id: int, *, width: int) -> int:
    """Render every page not stored yet and store it; returns how many were added."""
    from portal.contracts.documents import read_revision
    from portal.storage import get_store

    revision = session.get(DocumentRevision, revision_id)
    if revision is None:
        return 0
    done = set(session.scalars(select(PageImage.page_index).where(
        PageImage.sha256 == revision.sha256, PageImage.width == width)))
    store = get_store()
    added = 0
    for index, image in _render_pages(read_revision(revision), width, skip=done):
        stored = store.put(image, owner=page_image_owner(revision.sha256, index, width))
        session.add(PageImage(sha256=revision.sha256, page_index=index, width=width, storage_key=stored.key,
                              size=stored.size, created_at=clock.now()))
        session.commit()  # each page is visible as soon as it is there
        added += 1
    return added


def forget_images(session: Session, sha256s: list[str]) -> list[str]:
    """Drop the stored images of PDFs no revision holds any more (deleted after retention); returns
    their storage keys, for the caller to destroy once this is committed."""
    from sqlalchemy import delete

    still_held = set(session.scalars(select(DocumentRevision.sha256).where(DocumentRevision.sha256.in_(sha256s))))
    gone = [digest for digest in set(sha256s) if digest not in still_held]
    if not gone:
        return []
    keys = list(session.scalars(select(PageImage.storage_key).where(PageImage.sha256.in_(gone))))
    session.execute(delete(PageImage).where(PageImage.sha256.in_(gone)))
    with _lock:
        for key in [k for k in _cache if k[0] in gone]:
            del _cache[key]
    return keys


def register(app: Flask) -> None:
    from portal.jobs import register_handler

    def render_job(session: Session, job: object) -> None:
        render_and_store(session, int(job.key), width=current_app.config["PAGE_IMAGE_WIDTH"])  # type: ignore[attr-defined]

    register_handler(app, RENDER_JOB, render_job, max_attempts=5, retry_base_seconds=30)


def _render_pages(data: bytes, width: int, *, skip: set[int]) -> Iterator[tuple[int, bytes]]:
    """Every page but those in `skip`, one at a time as the rendering process draws them."""
    with _pdfium_lock:
        try:
            document = pdfium.PdfDocument(data)
        except pdfium.PdfiumError as exc:
            raise InvalidPdf() from exc
        count = len(document)
        document.close()
    wanted = [index for index in range(count) if index not in skip]
    if wanted:
        yield from _run_renderer(data, width, wanted)


def _render(data: bytes, index: int, width: int) -> bytes:
    for _, image in _run_renderer(data, width, [index]):
        return image
    raise NotFound("指定されたページはありません。")


def _run_renderer(data: bytes, width: int, pages: list[int]) -> Iterator[tuple[int, bytes]]:
    """(index, JPEG) per page from a render_child.py process. Raises RenderFailed when it fails."""
    config = current_app.config
    command = [sys.executable, "-I", str(RENDER_CHILD), str(int(config["PAGE_RENDER_MEMORY_BYTES"])), str(width),
               str(int(config["PAGE_IMAGE_MAX_PIXELS"])), ",".join(map(str, pages))]
    process = subprocess.Popen(command, stdin=subprocess.PIPE, stdout=subprocess.PIPE,  # noqa: S603
                               stderr=subprocess.DEVNULL)
    timer = threading.Timer(float(config["PAGE_RENDER_TIMEOUT_SECONDS"]), process.kill)
    timer.start()
    try:
        assert process.stdin is not None
        assert process.stdout is not None
        try:
            process.stdin.write(data)
            process.stdin.close()
        except BrokenPipeError:
            pass  # the child died first: its exit status says why
        while header := process.stdout.read(8):
            if len(header) < 8:
                break
            index, length = struct.unpack(">II", header)
            image = process.stdout.read(length)
            if len(image) < length:
                break
            yield index, image
        if process.wait() != 0:
            raise RenderFailed()
    finally:
        timer.cancel()
        if process.poll() is None:
            process.kill()
            process.wait()
        for pipe in (process.stdin, process.stdout):
            if pipe is not None and not pipe.closed:
                with contextlib.suppress(BrokenPipeError):
                    pipe.close()
