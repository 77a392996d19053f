"""Where the sealed bytes of the document store live: a local directory or an S3-compatible bucket.

A backend knows nothing of encryption: LocalEncryptedStore seals every file before `put` and checks it
after `get`. Names are the store's keys (32 hex characters). A name is written once and never replaced.
"""

from __future__ import annotations

import base64
import datetime as dt
import functools
import hashlib
import os
import secrets
import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any, Protocol


class BackendError(Exception):
    """The backend cannot complete the operation (unreachable, refused, name taken)."""


class MissingObject(BackendError):
    """No object of that name."""


class Backend(Protocol):
    description: str

    def put(self, name: str, blob: bytes) -> None:
        """Write a new object. Raises BackendError if the name exists or the write fails."""

    def put_many(self, objects: Sequence[tuple[str, bytes]]) -> None:
        """put() each (name, blob); when it returns, every one is written. Raises as put() (then some of
        them may be written, as after that many put() calls)."""

    def get(self, name: str) -> bytes:
        """Raises MissingObject if there is none."""

    def exists(self, name: str) -> bool: ...

    def delete(self, name: str) -> None:
        """Remove the object; a missing one is fine."""

    def list(self) -> Iterator[str]:
        """Every stored name, in no particular order."""

    def objects(self) -> Iterator[tuple[str, dt.datetime]]:
        """(name, last modified) of every object, including what an interrupted write left behind."""

    def delete_unreferenced(self, name: str) -> None:
        """Remove an object objects() listed (a stored file or a left-over partial write)."""

    def probe(self) -> None:
        """Write, read back and remove a small object beside the documents (never one of them).
        Raises BackendError when any of it fails."""


TEMPORARY_PREFIX = ".tmp-"


class LocalBackend:
    """Files under `root`, in a sub-directory per first two characters, read-only (0400) once written.

    A file is written under a temporary name beside its final one and renamed into place once on disk,
    so a process killed mid-write (SIGKILL, power cut) never leaves a partial file at a name; the
    temporary file it leaves is found by objects() and removed by `flask storage gc`.
    """

    def __init__(self, root: Path) -> None:
        self.root = root
        self.description = f"ローカル（{root}）"

    def path(self, name: str) -> Path:
        return self.root / name[:2] / name

    def put(self, name: str, blob: bytes) -> None:
        self.put_many([(name, blob)])

    def put_many(self, objects: Sequence[tuple[str, bytes]]) -> None:
        """Write every file under its temporary name, flush them all to disk at once, rename each into
        place, then flush their directories (each once) at once.

        The guarantee is put()'s for each file — its bytes, then its name, are on disk before this returns —
        but the fsyncs run side by side (the file system commits them together) instead of one after another.
        """
        opened: dict[Path, int] = {}  # temporary name → descriptor, until closed
        renames: list[tuple[Path, Path]] = []  # (temporary, final), until renamed
        try:
            for name, blob in objects:
                path = self.path(name)
                path.parent.mkdir(parents=True, exist_ok=True)
                if path.exists():
                    raise BackendError(f"stored file {name} already exists")
                temporary = path.with_name(f"{TEMPORARY_PREFIX}{name}-{secrets.token_hex(4)}")
                opened[temporary] = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o400)
                renames.append((temporary, path))
                _write_all(opened[temporary], blob)
            _side_by_side([functools.partial(os.fsync, fd) for fd in opened.values()])
            while opened:
                os.close(opened.popitem()[1])
            while renames:
                os.replace(*renames[0])
                renames.pop(0)
        except BaseException:
            for fd in opened.values():
                os.close(fd)
            for temporary, _ in renames:
                temporary.unlink(missing_ok=True)
            raise
        directories = list(dict.fromkeys(self.path(name).parent for name, _ in objects))
        _side_by_side([functools.partial(_fsync_directory, directory) for directory in directories])

    def get(self, name: str) -> bytes:
        try:
            return self.path(name).read_bytes()
        except FileNotFoundError:
            raise MissingObject(f"stored file {name} is missing") from None

    def exists(self, name: str) -> bool:
        return self.path(name).exists()

    def delete(self, name: str) -> None:
        self.path(name).unlink(missing_ok=True)

    def probe(self) -> None:
        path = self.root / f".probe-{secrets.token_hex(8)}"
        blob = secrets.token_bytes(16)
        try:
            self.root.mkdir(parents=True, exist_ok=True)
            path.write_bytes(blob)
            read = path.read_bytes()
            path.unlink()
        except OSError as exc:
            raise BackendError(f"{self.root}: {exc.strerror or exc}") from exc
        if read != blob:
            raise BackendError(f"{self.root} returned other bytes than were written")

    def list(self) -> Iterator[str]:
        if not self.root.is_dir():
            return
        for directory in sorted(self.root.iterdir()):
            if directory.is_dir() and len(directory.name) == 2:
                yield from (entry.name for entry in directory.iterdir() if entry.name.startswith(directory.name))

    def objects(self) -> Iterator[tuple[str, dt.datetime]]:
        if not self.root.is_dir():
            return
        for directory in sorted(self.root.iterdir()):
            if not (directory.is_dir() and len(directory.name) == 2):
                continue
            for entry in directory.iterdir():
                if entry.name.startswith((directory.name, f"{TEMPORARY_PREFIX}{directory.name}")):
                    yield entry.name, dt.datetime.fromtimestamp(entry.stat().st_mtime, dt.UTC)

    def delete_unreferenced(self, name: str) -> None:
        final = name.removeprefix(TEMPORARY_PREFIX)
        (self.root / final[:2] / name).unlink(missing_ok=True)


def _write_all(fd: int, blob: bytes) -> None:
    view = memoryview(blob)
    while view:
        view = view[os.write(fd, view):]


def _fsync_directory(path: Path) -> None:
    """The renames into `path` are on disk."""
    directory = os.open(path, os.O_RDONLY)
    try:
        os.fsync(directory)
    finally:
        os.close(directory)


def _side_by_side(calls: Sequence[Callable[[], None]]) -> None:
    """Run the calls at once (fsync waits for the disk without holding the GIL), the last one on this
    thread; raise the first failure once all have ended."""
    failures: list[BaseException] = []

    def run(call: Callable[[], None]) -> None:
        try:
            call()
        except BaseException as exc:  # re-raised below, on the caller's thread
            failures.append(exc)

    threads = [threading.Thread(target=run, args=(call,), daemon=True) for call in calls[:-1]]
    for thread in threads:
        thread.start()
    if calls:
        run(calls[-1])
    for thread in threads:
        thread.join()
    if failures:
        raise failures[0]


class S3Backend:
    """Objects in an S3-compatible bucket (MinIO, Ceph RGW, a data centre's S3), under `prefix`.

    With `lock_days` each object is written with Object Lock retention in compliance mode for that many
    days: nobody, not even the bucket's owner, can delete or overwrite it before then. The bucket must
    have been created with Object Lock enabled (which also turns on versioning); that is checked once.
    `delete` hides the object at once; versions still under retention are removed by the bucket's
    lifecycle rule once their retention ends.
    """

    def __init__(self, client: Any, bucket: str, *, prefix: str = "", lock_days: int = 0) -> None:
        self._client = client
        self.bucket = bucket
        self.prefix = prefix.strip("/") + "/" if prefix.strip("/") else ""
        self.lock_days = lock_days
        self._lock_checked = False
        self.description = f"S3（{client.meta.endpoint_url} バケット {bucket}）"

    def _key(self, name: str) -> str:
        return self.prefix + name

    def _error_code(self, exc: Exception) -> str:
        response = getattr(exc, "response", None) or {}
        return str(response.get("Error", {}).get("Code", ""))

    def _call(self, operation: str, name: str, **kwargs: Any) -> Any:
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            return getattr(self._client, operation)(Bucket=self.bucket, **kwargs)
        except ClientError as exc:
            if self._error_code(exc) in ("NoSuchKey", "404", "NotFound"):
                raise MissingObject(f"stored file {name} is missing") from None
            raise BackendError(f"S3 {operation} {name}: {self._error_code(exc) or exc}") from exc
        except BotoCoreError as exc:
            raise BackendError(f"S3 {operation} {name}: {exc}") from exc

    def check_object_lock(self) -> None:
        """Raises BackendError when retention is asked for and the bucket cannot keep it."""
        if not self.lock_days or self._lock_checked:
            return
        try:
            answer = self._call("get_object_lock_configuration", "(bucket)")
        except BackendError as exc:
            raise BackendError(f"バケット {self.bucket} はオブジェクトロックが有効ではありません"
                               f"（PORTAL_STORAGE_S3_OBJECT_LOCK_DAYS を使うには、オブジェクトロックを有効にして"
                               f"作成したバケットが必要です）: {exc}") from None
        if answer.get("ObjectLockConfiguration", {}).get("ObjectLockEnabled") != "Enabled":
            raise BackendError(f"バケット {self.bucket} はオブジェクトロックが有効ではありません。")
        self._lock_checked = True

    def put(self, name: str, blob: bytes) -> None:
        self.check_object_lock()
        extra: dict[str, Any] = {}
        if self.lock_days:
            until = dt.datetime.now(dt.UTC) + dt.timedelta(days=self.lock_days)
            md5 = base64.b64encode(hashlib.md5(blob, usedforsecurity=False).digest()).decode()
            extra = {"ObjectLockMode": "COMPLIANCE", "ObjectLockRetainUntilDate": until, "ContentMD5": md5}
        if self.exists(name):  # names are random: this only guards against a caller reusing one
            raise BackendError(f"stored file {name} already exists")
        self._call("put_object", name, Key=self._key(name), Body=blob, **extra)

    def put_many(self, objects: Sequence[tuple[str, bytes]]) -> None:
        for name, blob in objects:
            self.put(name, blob)

    def get(self, name: str) -> bytes:
        answer = self._call("get_object", name, Key=self._key(name))
        return bytes(answer["Body"].read())

    def exists(self, name: str) -> bool:
        try:
            self._call("head_object", name, Key=self._key(name))
        except MissingObject:
            return False
        return True

    def delete(self, name: str) -> None:
        self._call("delete_object", name, Key=self._key(name))
        if not self.lock_days:
            return
        answer = self._call("list_object_versions", name, Prefix=self._key(name))
        for version in answer.get("Versions", []):  # the delete marker stays: it hides locked versions
            if version["Key"] != self._key(name):
                continue
            try:
                self._call("delete_object", name, Key=self._key(name), VersionId=version["VersionId"])
            except BackendError:
                continue  # still under retention: the bucket's lifecycle rule removes it later

    def probe(self) -> None:
        name = f"probe/{secrets.token_hex(8)}"
        blob = secrets.token_bytes(16)
        self._call("put_object", name, Key=self._key(name), Body=blob)
        try:
            if self.get(name) != blob:
                raise BackendError(f"S3 バケット {self.bucket} が書いたものと違うバイト列を返しました")
        finally:
            self._call("delete_object", name, Key=self._key(name))

    def list(self) -> Iterator[str]:
        yield from (name for name, _ in self.objects())

    def objects(self) -> Iterator[tuple[str, dt.datetime]]:
        token: dict[str, str] = {}
        while True:
            answer = self._call("list_objects_v2", "(list)", Prefix=self.prefix, **token)
            for item in answer.get("Contents", []):
                yield str(item["Key"])[len(self.prefix):], item["LastModified"]
            if not answer.get("IsTruncated"):
                return
            token = {"ContinuationToken": answer["NextContinuationToken"]}

    def delete_unreferenced(self, name: str) -> None:
        self.delete(name)  # a put to S3 is atomic: there are no partial writes to find


def s3_backend_from_settings(settings: Mapping[str, Any]) -> S3Backend:
    """The S3 backend named by the STORAGE_S3_* settings. Raises BackendError when boto3 is missing or a
    required setting is empty."""
    try:
        import boto3
        from botocore.config import Config
    except ImportError:
        raise BackendError("PORTAL_STORAGE_BACKEND=s3 には boto3 が必要です"
                           "（pip install 'keiyaku-portal[s3]'）。") from None
    bucket = str(settings.get("STORAGE_S3_BUCKET") or "")
    if not bucket:
        raise BackendError("PORTAL_STORAGE_S3_BUCKET が設定されていません。")
    client = boto3.session.Session().client(
        "s3",
        endpoint_url=settings.get("STORAGE_S3_ENDPOINT_URL") or None,
        region_name=settings.get("STORAGE_S3_REGION") or None,
        aws_access_key_id=settings.get("STORAGE_S3_ACCESS_KEY_ID") or None,
        aws_secret_access_key=settings.get("STORAGE_S3_SECRET_ACCESS_KEY") or None,
        config=Config(
            s3={"addressing_style": settings.get("STORAGE_S3_ADDRESSING_STYLE") or "path"},
            retries={"max_attempts": 5, "mode": "standard"},
            connect_timeout=float(settings.get("STORAGE_S3_TIMEOUT_SECONDS") or 10),
            read_timeout=float(settings.get("STORAGE_S3_TIMEOUT_SECONDS") or 10) * 6,
            request_checksum_calculation="when_required",
            response_checksum_validation="when_required",
        ),
    )
    lock_days = int(settings.get("STORAGE_S3_OBJECT_LOCK_DAYS") or 0)
    longest = int(settings.get("RETENTION_YEARS_MINIMUM") or 7) * 365
    if not 0 <= lock_days <= longest:
        raise BackendError(f"PORTAL_STORAGE_S3_OBJECT_LOCK_DAYS は 0 から {longest}（保存期間の最短 "
                           "RETENTION_YEARS_MINIMUM 年）までです。"
                           "それより長いと、保存期間を終えた記録を廃棄できません。")
    return S3Backend(client, bucket, prefix=str(settings.get("STORAGE_S3_PREFIX") or ""), lock_days=lock_days)
