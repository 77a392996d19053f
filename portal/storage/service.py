"""FileStore implementations. Stored files are never overwritten: a new revision is a new key."""

from __future__ import annotations

import hashlib
import json
import os
import secrets
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from cryptography.exceptions import InvalidTag
from flask import current_app

from portal.storage import crypto

MAGIC = b"KPS1\n"


class StorageError(Exception):
    """The store cannot complete the operation (missing file, key reused)."""


class TamperedFile(StorageError):
    """The stored bytes do not decrypt to what was put: changed on disk or swapped."""


@dataclass(frozen=True)
class StoredObject:
    key: str
    sha256: str
    size: int


class FileStore(Protocol):
    def put(self, data: bytes) -> StoredObject: ...

    def get(self, key: str) -> bytes: ...

    def exists(self, key: str) -> bool: ...

    def destroy_after_retention(self, key: str) -> None: ...


class LocalEncryptedStore:
    """Files under a directory, each sealed with its own data key; the header holds the wrapped key.

    Layout of a file: MAGIC, one JSON header line (wrapped data key, SHA-256, size), sealed body.
    The key name is bound into both AES-GCM operations, so swapping two files is detected too.
    """

    def __init__(self, root: Path, master_key: bytes) -> None:
        self.root = root
        self._master_key = master_key

    def put(self, data: bytes) -> StoredObject:
        key = secrets.token_hex(16)
        digest = hashlib.sha256(data).hexdigest()
        data_key = crypto.new_data_key()
        context = key.encode()
        header = {
            "wrapped_key": crypto.seal(self._master_key, data_key, context).hex(),
            "sha256": digest,
            "size": len(data),
        }
        body = crypto.seal(data_key, data, context + digest.encode())
        path = self._path(key)
        path.parent.mkdir(parents=True, exist_ok=True)
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o400)
        except FileExistsError:
            raise StorageError(f"stored file {key} already exists") from None
        with os.fdopen(fd, "wb") as handle:
            handle.write(MAGIC + json.dumps(header).encode() + b"\n" + body)
            handle.flush()
            os.fsync(handle.fileno())
        return StoredObject(key=key, sha256=digest, size=len(data))

    def get(self, key: str) -> bytes:
        """Return the plaintext. Raises StorageError if missing, TamperedFile if altered."""
        path = self._path(key)
        try:
            raw = path.read_bytes()
        except FileNotFoundError:
            raise StorageError(f"stored file {key} is missing") from None
        try:
            if not raw.startswith(MAGIC):
                raise ValueError("bad magic")
            header_line, body = raw[len(MAGIC) :].split(b"\n", 1)
            header = json.loads(header_line)
            context = key.encode()
            data_key = crypto.open_sealed(self._master_key, bytes.fromhex(header["wrapped_key"]), context)
            data = crypto.open_sealed(data_key, body, context + header["sha256"].encode())
        except (InvalidTag, ValueError, KeyError) as exc:
            raise TamperedFile(f"stored file {key} failed its integrity check") from exc
        if hashlib.sha256(data).hexdigest() != header["sha256"]:
            raise TamperedFile(f"stored file {key} failed its integrity check")
        return data

    def exists(self, key: str) -> bool:
        return self._path(key).exists()

    def destroy_after_retention(self, key: str) -> None:
        """Remove a file for good. Only for records whose legal retention has ended (電帳法 7-10 years);
        the caller has already committed a tombstone with the file's SHA-256. A missing file is fine."""
        self._path(key).unlink(missing_ok=True)

    def _path(self, key: str) -> Path:
        if len(key) != 32 or not all(c in "0123456789abcdef" for c in key):
            raise StorageError("invalid storage key")
        return self.root / key[:2] / key


def get_store() -> FileStore:
    """The configured store of the current app (one instance per app)."""
    store = current_app.extensions.get("portal.store")
    if store is None:
        backend = current_app.config["STORAGE_BACKEND"]
        if backend != "local":
            raise StorageError(f"unknown STORAGE_BACKEND {backend!r}")
        store = LocalEncryptedStore(
            Path(current_app.config["STORAGE_DIR"]),
            crypto.master_key_from_hex(current_app.config["MASTER_KEY"]),
        )
        current_app.extensions["portal.store"] = store
    return store
