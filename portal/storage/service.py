"""FileStore implementations. Stored files are never overwritten: a new revision is a new key."""

from __future__ import annotations

import hashlib
import json
import secrets
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from cryptography.exceptions import InvalidTag
from flask import current_app

from portal.storage import crypto
from portal.storage.backends import Backend, BackendError, LocalBackend, s3_backend_from_settings

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

    def keys(self) -> Iterator[str]: ...

    def probe(self) -> None:
        """Write, read back and remove a small object outside the documents (the readiness check).

        Raises StorageError when the store cannot do all three.
        """
        ...


class LocalEncryptedStore:
    """Files in a backend (a directory, or an S3 bucket), each sealed with its own data key; the header holds
    the wrapped key.

    Layout of a file: MAGIC, one JSON header line (wrapped data key, SHA-256, size), sealed body.
    The key name is bound into both AES-GCM operations, so swapping two files is detected too.
    """

    def __init__(self, root: Path | None, master_key: bytes, backend: Backend | None = None) -> None:
        if backend is None:
            if root is None:
                raise ValueError("a local store needs its directory")
            backend = LocalBackend(root)
        self.backend = backend
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
        self._check_key(key)
        try:
            self.backend.put(key, MAGIC + json.dumps(header).encode() + b"\n" + body)
        except BackendError as exc:
            raise StorageError(str(exc)) from exc
        return StoredObject(key=key, sha256=digest, size=len(data))

    def get(self, key: str) -> bytes:
        """Return the plaintext. Raises StorageError if missing, TamperedFile if altered."""
        self._check_key(key)
        try:
            raw = self.backend.get(key)
        except BackendError as exc:
            raise StorageError(str(exc)) from exc
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
        self._check_key(key)
        try:
            return self.backend.exists(key)
        except BackendError as exc:
            raise StorageError(str(exc)) from exc

    def destroy_after_retention(self, key: str) -> None:
        """Remove a file for good. Only for records whose legal retention has ended (電帳法 7-10 years);
        the caller has already committed a tombstone with the file's SHA-256. A missing file is fine."""
        self._check_key(key)
        try:
            self.backend.delete(key)
        except BackendError as exc:
            raise StorageError(str(exc)) from exc

    def keys(self) -> Iterator[str]:
        """Every stored key (documents, page images, certificates), for backups and checks."""
        try:
            yield from (name for name in self.backend.list() if _is_key(name))
        except BackendError as exc:
            raise StorageError(str(exc)) from exc

    def _check_key(self, key: str) -> None:
        if not _is_key(key):
            raise StorageError("invalid storage key")

    def probe(self) -> None:
        try:
            self.backend.probe()
        except BackendError as exc:
            raise StorageError(str(exc)) from exc

    def _path(self, key: str) -> Path:
        """The file of `key` in a local store."""
        self._check_key(key)
        if not isinstance(self.backend, LocalBackend):
            raise StorageError("not a local store")
        return self.backend.path(key)


def _is_key(key: str) -> bool:
    return len(key) == 32 and all(c in "0123456789abcdef" for c in key)


def backend_from_settings(settings: Mapping[str, Any]) -> Backend:
    """The backend STORAGE_BACKEND names. Raises StorageError for an unknown one or a missing setting."""
    name = settings.get("STORAGE_BACKEND", "local")
    try:
        if name == "local":
            return LocalBackend(Path(settings["STORAGE_DIR"]))
        if name == "s3":
            return s3_backend_from_settings(settings)
    except BackendError as exc:
        raise StorageError(str(exc)) from exc
    raise StorageError(f"PORTAL_STORAGE_BACKEND は local または s3 です（{name!r} は使えません）。")


def get_store() -> FileStore:
    """The configured store of the current app (one instance per app)."""
    store = current_app.extensions.get("portal.store")
    if store is None:
        store = LocalEncryptedStore(None, crypto.master_key_from_hex(current_app.config["MASTER_KEY"]),
                                    backend=backend_from_settings(current_app.config))
        current_app.extensions["portal.store"] = store
    return store
