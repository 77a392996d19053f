"""An S3 server on loopback: moto's standalone server (`moto_server`) in its own process, a protocol peer
for the S3 backend as MinIO or Ceph RGW would be."""

from __future__ import annotations

import shutil
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid
from pathlib import Path
from typing import Any

from tests.services.smtp import free_port

ACCESS_KEY, SECRET_KEY, REGION = "portal-test", "portal-test-secret", "ap-northeast-1"


def moto_server_path() -> str | None:
    beside = Path(sys.executable).parent / "moto_server"
    return str(beside) if beside.exists() else shutil.which("moto_server")


class S3Server:
    def __init__(self, log: Path) -> None:
        self.port = free_port()
        self._log_path = log
        self._process: subprocess.Popen[bytes] | None = None
        self._log: Any = None
        self._client: Any = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        path = moto_server_path()
        assert path, "moto_server is not installed"
        self._log = self._log_path.open("wb")
        self._process = subprocess.Popen([path, "-H", "127.0.0.1", "-p", str(self.port)], stdout=self._log,
                                         stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                break
            try:
                urllib.request.urlopen(self.url + "/moto-api/", timeout=2).close()
                return
            except (urllib.error.URLError, OSError):
                time.sleep(0.1)
        self.stop()
        raise RuntimeError(f"moto_server did not start:\n{self._log_path.read_text(errors='replace')[-2000:]}")

    def stop(self) -> None:
        if self._process is not None:
            self._process.terminate()
            try:
                self._process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait(timeout=10)
            self._process = None
        if self._log is not None:
            self._log.close()
            self._log = None

    def client(self) -> Any:
        if self._client is None:
            self._client = self._new_client()
        return self._client

    def _new_client(self) -> Any:
        import boto3

        return boto3.session.Session().client("s3", endpoint_url=self.url, region_name=REGION,
                                              aws_access_key_id=ACCESS_KEY, aws_secret_access_key=SECRET_KEY)

    def new_bucket(self, *, object_lock: bool = False) -> str:
        name = f"portal-{uuid.uuid4().hex[:12]}"
        self.client().create_bucket(Bucket=name, ObjectLockEnabledForBucket=object_lock,
                                    CreateBucketConfiguration={"LocationConstraint": REGION})
        return name

    def settings(self, bucket: str, **overrides: Any) -> dict[str, Any]:
        """The portal's settings for a bucket of this server."""
        return {"STORAGE_BACKEND": "s3", "STORAGE_S3_ENDPOINT_URL": self.url, "STORAGE_S3_BUCKET": bucket,
                "STORAGE_S3_REGION": REGION, "STORAGE_S3_ACCESS_KEY_ID": ACCESS_KEY,
                "STORAGE_S3_SECRET_ACCESS_KEY": SECRET_KEY, **overrides}
