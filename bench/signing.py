"""Signing speed and memory, printed (never asserted).

    .venv/bin/python bench/signing.py

For 1-page, 1 MB and 10 MB PDFs: median sign_approval (PAdES B-T, built-in TSA) and
finalize (B-LTA) next to the floor measured in the same run (SHA-256 over the file
plus one RSA-2048 signature with `cryptography`), the ratio, and peak RSS; then the
RSS increase while signing a 100 MB file from file handles.  Each case runs in its
own process so that peak RSS belongs to that case alone.
Targets (2 cores): sign 1 MB <= 30 ms; sign 10 MB <= 8x floor; finalize 1 MB <= 80 ms;
100 MB raises RSS by less than 2x its size.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from tests.pdfs import make_pdf

SIZES = {"1-page": 0, "1 MB": 1_000_000, "10 MB": 10_000_000}
RUNS = {"1-page": 30, "1 MB": 30, "10 MB": 10}
MIB = 1024 * 1024


def _status_kib(field: str) -> int:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith(field):
                return int(line.split()[1])
    return 0


def rss_now_kib() -> int:
    return _status_kib("VmRSS:")


def peak_rss_kib() -> int:
    # VmHWM, not getrusage's ru_maxrss: Linux carries ru_maxrss across execve, so a
    # child would report its parent's peak.
    return _status_kib("VmHWM:")


def build_context(pki_dir: str):  # type: ignore[no-untyped-def]
    from portal.signing import service

    return service.build_context(
        {
            "PKI_DIR": pki_dir,
            "PUBLIC_BASE_URL": "http://bench.test",
            "AGENCY_NAME": "ベンチ市",
            "PDF_MAX_BYTES": 200 * MIB,
        }
    )


def median_ms(function, runs: int) -> float:  # type: ignore[no-untyped-def]
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        function()
        times.append((time.perf_counter() - start) * 1000)
    return statistics.median(times)


def run_case(name: str, pki_dir: str) -> dict[str, float]:
    from portal.signing.pades import Approval, finalize, sign_approval

    context = build_context(pki_dir)
    pdf = make_pdf("keiyaku", size=SIZES[name])
    approval = Approval("山田 太郎", "yamada@example.co.jp", dt.datetime.now(dt.UTC))
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    runs = RUNS[name]
    sign_approval(pdf, approval, context=context)  # warm-up: template, reserved sizes, CRL

    def floor() -> None:
        digest = hashlib.sha256(pdf).digest()
        key.sign(digest, padding.PKCS1v15(), hashes.SHA256())

    floor_ms = median_ms(floor, runs)
    sign_ms = median_ms(lambda: sign_approval(pdf, approval, context=context), runs)
    signed = sign_approval(pdf, approval, context=context)
    finalize(signed, context=context)
    finalize_ms = median_ms(lambda: finalize(signed, context=context), runs)
    return {
        "size": len(pdf),
        "floor_ms": floor_ms,
        "sign_ms": sign_ms,
        "finalize_ms": finalize_ms,
        "peak_rss_mib": peak_rss_kib() / 1024,
    }


def run_large(pki_dir: str, path: str) -> dict[str, float]:
    from portal.signing.pades import Approval, sign_approval

    context = build_context(pki_dir)
    approval = Approval("山田 太郎", "yamada@example.co.jp", dt.datetime.now(dt.UTC))
    sign_approval(make_pdf("keiyaku"), approval, context=context)  # warm-up outside the measurement
    before = rss_now_kib()
    start = time.perf_counter()
    with open(path, "rb") as source, open(path + ".signed", "w+b") as output:
        sign_approval(source, approval, context=context, output=output)
    elapsed = (time.perf_counter() - start) * 1000
    size = os.path.getsize(path)
    file_increase = (peak_rss_kib() - before) / 1024
    # For contrast: the same file read into memory and signed to bytes.
    data = Path(path).read_bytes()
    signed = sign_approval(data, approval, context=context)
    memory_increase = (peak_rss_kib() - before) / 1024
    del data, signed
    return {
        "size": size,
        "sign_ms": elapsed,
        "rss_increase_mib": file_increase,
        "memory_increase_mib": memory_increase,
        "before_mib": before / 1024,
    }


def child(args: list[str]) -> dict[str, float]:
    result = subprocess.run([sys.executable, __file__, *args], capture_output=True, text=True, check=True)
    return json.loads(result.stdout.strip().splitlines()[-1])


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        pki_dir = os.path.join(tmp, "pki")
        build_context(pki_dir)
        header = ("file", "size", "floor", "sign B-T", "ratio", "finalize", "ratio", "peak RSS")
        print(" ".join(f"{h:>{w}}" for h, w in zip(header, (7, 10, 8, 9, 6, 9, 6, 9), strict=True)))
        for name in SIZES:
            r = child(["--case", name, pki_dir])
            print(
                f"{name:>7} {r['size']:>10,} {r['floor_ms']:>6.2f}ms {r['sign_ms']:>7.1f}ms "
                f"{r['sign_ms'] / r['floor_ms']:>5.1f}x {r['finalize_ms']:>7.1f}ms "
                f"{r['finalize_ms'] / r['floor_ms']:>5.1f}x {r['peak_rss_mib']:>6.0f}MiB"
            )
        path = os.path.join(tmp, "large.pdf")
        with open(path, "wb") as handle:
            handle.write(make_pdf("keiyaku", size=100 * 1_000_000))
        r = child(["--large", pki_dir, path])
        print(
            f"100 MB from file handles: sign {r['sign_ms']:.0f} ms, RSS {r['before_mib']:.0f} MiB before, "
            f"+{r['rss_increase_mib']:.0f} MiB peak increase for a {r['size'] / MIB:.0f} MiB file "
            f"({r['rss_increase_mib'] / (r['size'] / MIB):.2f}x its size; target < 2x)"
        )
        print(
            f"100 MB read into memory, signed to bytes (for contrast): +{r['memory_increase_mib']:.0f} MiB "
            f"({r['memory_increase_mib'] / (r['size'] / MIB):.2f}x its size)"
        )


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "--case":
        print(json.dumps(run_case(sys.argv[2], sys.argv[3])))
    elif len(sys.argv) > 1 and sys.argv[1] == "--large":
        print(json.dumps(run_large(sys.argv[2], sys.argv[3])))
    else:
        main()
