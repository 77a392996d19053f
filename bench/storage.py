"""The document store's cost per file, local directory against an S3 server, printed (never asserted).

    .venv/bin/python bench/storage.py                          # 200 files of 1 MB and 200 of 100 KB
    .venv/bin/python bench/storage.py --files 1000 --sizes 10000000
    .venv/bin/python bench/storage.py --endpoint https://minio.internal:9000 --bucket bench --region us-east-1

Without --endpoint an S3 server is started on loopback (moto's standalone server: a protocol peer, slower
than MinIO or Ceph RGW, so its figures are an upper bound of the portal's own share). Each file is
sealed (AES-256-GCM, its own key) and written, then read back and checked; p50/p95 per operation and
MB/s are printed for both backends. Credentials for a real store come from AWS_ACCESS_KEY_ID and
AWS_SECRET_ACCESS_KEY.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from portal.storage import LocalEncryptedStore
from portal.storage.backends import Backend, LocalBackend
from portal.storage.crypto import master_key_from_hex
from portal.storage.service import backend_from_settings


def measure(name: str, backend: Backend, files: int, size: int) -> None:
    store = LocalEncryptedStore(None, master_key_from_hex("ab" * 32), backend=backend)
    data = os.urandom(size)
    puts, gets, keys = [], [], []
    for _ in range(files):
        started = time.perf_counter()
        keys.append(store.put(data, owner="bench/file").key)
        puts.append(time.perf_counter() - started)
    for key in keys:
        started = time.perf_counter()
        assert store.get(key, owner="bench/file", sha256=None) == data
        gets.append(time.perf_counter() - started)
    for label, times in (("put", puts), ("get", gets)):
        p95 = statistics.quantiles(times, n=20)[-1] if len(times) > 1 else times[0]
        print(f"  {name:6} {label}  {size / 1e6:6.2f} MB  p50 {statistics.median(times) * 1000:7.1f} ms  "
              f"p95 {p95 * 1000:7.1f} ms  {size * len(times) / sum(times) / 1e6:7.1f} MB/s")
    for key in keys:
        store.destroy_after_retention(key)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--files", type=int, default=200)
    parser.add_argument("--sizes", type=int, nargs="+", default=[1_000_000, 100_000])
    parser.add_argument("--endpoint", default="")
    parser.add_argument("--bucket", default="")
    parser.add_argument("--region", default="ap-northeast-1")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        server: Any = None
        settings = {"STORAGE_BACKEND": "s3", "STORAGE_S3_ENDPOINT_URL": args.endpoint,
                    "STORAGE_S3_BUCKET": args.bucket, "STORAGE_S3_REGION": args.region}
        if not args.endpoint:
            from tests.services.s3 import S3Server

            server = S3Server(Path(tmp) / "moto.log")
            server.start()
            settings = server.settings(server.new_bucket())
            print(f"S3: moto_server on {server.url}")
        try:
            s3 = backend_from_settings(settings)
            for size in args.sizes:
                print(f"{args.files} files of {size:,} bytes")
                measure("local", LocalBackend(Path(tmp) / "files"), args.files, size)
                measure("s3", s3, args.files, size)
        finally:
            if server is not None:
                server.stop()


if __name__ == "__main__":
    main()
