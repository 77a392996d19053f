"""Archival PDF speed, printed (never asserted).

    .venv/bin/python bench/printing.py [--runs 5]

Median time to write an archival page (PDF/A-2b, IPAmj明朝 embedded as a subset) with fpdf2, split
into loading the font (fpdf2 parses the whole 46 MB TrueType file per document) and the rest; the
blank 別記様式 served from the per-process copy; and a PAdES signature with and without a visible
stamp (HarfBuzz shaping with the same font, read once per process).
Targets (2 cores): a certificate under 5 s in the completion job; the public blank form under 5 ms
once served.
"""

from __future__ import annotations

import argparse
import datetime as dt
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from flask import Flask

from portal.printing.archival import ArchivalPdf, Metadata, font_file
from portal.signing import service
from portal.signing.pades import Approval, Stamp, sign_approval
from portal.usage_requests.pdf import render_blank_form

NAMES = "株式会社𠮷野家 代表取締役 髙橋 一郎 﨑山 花子 "


def timed(make, runs: int) -> tuple[float, object]:
    times, result = [], None
    for _ in range(runs):
        start = time.perf_counter()
        result = make()
        times.append(time.perf_counter() - start)
    return statistics.median(times), result


def page() -> bytes:
    sheet = ArchivalPdf(Metadata(title="合意締結証明書", author="岡山県"))
    for _ in range(12):
        sheet.rows([("氏名", NAMES), ("SHA-256", "ab" * 32)])
    return sheet.output()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=5)
    runs = parser.parse_args().runs
    app = Flask(__name__)
    app.config.update(PDF_FONT_FILE="")
    with app.app_context():
        print(f"font: {font_file()} ({font_file().stat().st_size / 1e6:.0f} MB)")
        load, _ = timed(lambda: ArchivalPdf(Metadata(title="t", author="a")), runs)
        whole, data = timed(page, runs)
        print(f"archival page, 12 tables: median {whole:.2f} s (font loading {load:.2f} s), {len(data):,} bytes")
        first = time.perf_counter()
        render_blank_form(addressee="岡山県知事")
        cold = time.perf_counter() - first
        warm, _ = timed(lambda: render_blank_form(addressee="岡山県知事"), runs * 20)
        print(f"blank 別記様式: first {cold:.2f} s, then median {warm * 1000:.3f} ms")
        context = service.build_context({"PKI_DIR": tempfile.mkdtemp(), "PUBLIC_BASE_URL": "http://127.0.0.1:5000",
                                         "AGENCY_NAME": "岡山県", "SERVICE_NAME": "けいやくポータル"})
        approval = Approval("髙橋 一郎", "t@example.jp", dt.datetime.now(dt.UTC))
        stamp = Stamp(text=f"電子署名 承認\n{NAMES}\n令和8年12月2日 10:00:00", font_file=str(font_file()))
        sign_approval(data, approval, context=context, stamp=stamp)  # the font is read once per process
        plain, _ = timed(lambda: sign_approval(data, approval, context=context), runs)
        stamped, _ = timed(lambda: sign_approval(data, approval, context=context, stamp=stamp), runs)
        print(f"sign_approval: invisible {plain * 1000:.0f} ms, with a stamp {stamped * 1000:.0f} ms")


if __name__ == "__main__":
    main()
