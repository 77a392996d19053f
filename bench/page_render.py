"""Page images and the upload check, timed and printed (never asserted).

    .venv/bin/python bench/page_render.py

- rendering in the separate process (render_child.py, RLIMIT_AS): one page on demand, and a 20-page
  document in one process, against rendering in this process with pypdfium2 directly;
- the hostile amplifiers: the 20 × 1200 pt strip and a 1 GB flate bomb, with the child's peak RSS;
- pades.check_upload() (scan + dry-run of the incremental write) on a 20-page and a 300-page PDF.
"""

from __future__ import annotations

import contextlib
import resource
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import pypdfium2 as pdfium

from portal import create_app
from portal.contracts import pages
from portal.signing.pades import UploadRules, check_upload
from tests.conftest import test_config
from tests.pdfs import make_pdf
from tests.signing import hostile_pdfs


def _timed(label: str, run, repeat: int = 3) -> None:
    best = float("inf")
    for _ in range(repeat):
        start = time.perf_counter()
        run()
        best = min(best, time.perf_counter() - start)
    child_peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss // 1024
    print(f"{label:<58} {best * 1000:8.0f} ms   (children's peak RSS so far {child_peak} MB)")


def _in_process(data: bytes, width: int = 1000) -> None:
    document = pdfium.PdfDocument(data)
    for page in document:
        page.render(scale=width / page.get_width()).to_pil().convert("RGB")
    document.close()


def main() -> None:
    with tempfile.TemporaryDirectory() as instance:
        app = create_app(test_config(f"sqlite:///{instance}/bench.sqlite3", Path(instance)))
        one, twenty, many = make_pdf("bench"), make_pdf("bench", 20), make_pdf("bench", 300)
        with app.app_context():
            _timed("one page on demand, child process", lambda: pages._render(one, 0, 1000))
            _timed("one page, in this process (no limit)", lambda: _in_process(one))
            _timed("20 pages in one child process", lambda: list(pages._render_pages(twenty, 1000, skip=set())))
            _timed("20 pages, in this process (no limit)", lambda: _in_process(twenty))
            strip = hostile_pdfs.tall_page()
            _timed("20 x 1200 pt strip at 1000 px (pixel cap)", lambda: pages._render(strip, 0, 1000))
            bomb = hostile_pdfs.flate_bomb(1 << 30)

            def refused() -> None:
                with contextlib.suppress(pages.RenderFailed):
                    pages._render(bomb, 0, 1000)

            _timed("1 GB flate bomb (memory limit 1 GB: refused)", refused, repeat=1)
        rules = UploadRules(max_bytes=50 << 20)
        _timed("check_upload, 20 pages", lambda: check_upload(twenty, rules))
        _timed("check_upload, 300 pages", lambda: check_upload(many, rules))
        print(f"this process's peak RSS {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024} MB")


if __name__ == "__main__":
    main()
