"""FileStore implementations. Stored files are never overwritten: a new revision is a new key.

Every file is bound to its owner, a string naming the row that holds its key (for instance
"contract/12/document/34/revision/2"): the owner is authenticated data of both AES-GCM operations,
and a read names the owner it expects and the SHA-256 the database recorded. A key pointed at
another row's file, a changed SHA-256 or a changed bit is refused (TamperedFile), never served.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import secrets
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from cryptography.exceptions import InvalidTag
from flask import current_app

from portal.storage import crypto
from portal.storage.backends import Backend, BackendError, LocalBackend, s3_backend_from_settings

MAGIC_UNBOUND = b"KPS1\n"  # written before owners were bound: only the key name is authenticated
MAGIC = b"KPS2\n"  # the key name and the owner are authenticated


class StorageError(Exception):
    """The store cannot complete the operation (missing file, key reused)."""


class TamperedFile(StorageError):
    """The stored bytes are not what the database recorded for this owner: changed in the store, the key
    points at another row's file, or the recorded SHA-256 was changed."""

    def __init__(self, key: str, owner: str, why: str) -> None:
        super().__init__(f"stored file {key} (owner {owner}) failed its integrity check: {why}")
        self.key = key
        self.owner = owner
        self.why = why


@dataclass(frozen=True)
class StoredObject:
    key: str
    sha256: str
    size: int


class FileStore(Protocol):
    def put(self, data: bytes, *, owner: str) -> StoredObject: ...

    def put_many(self, items: Sequence[tuple[bytes, str]]) -> list[StoredObject]: ...

    def get(self, key: str, *, owner: str, sha256: str | None) -> bytes: ...

    def exists(self, key: str) -> bool: ...

    def destroy_after_retention(self, key: str) -> None: ...

    def keys(self) -> Iterator[str]: ...

    def probe(self) -> None:
        """Write, read back and remove a small object outside the documents (the readiness check).

        Raises StorageError when the store cannot do all three.
        """
        ...

    def objects(self) -> Iterator[tuple[str, dt.datetime]]: ...

    def remove_unreferenced(self, name: str) -> None: ...


class LocalEncryptedStore:
    """Files in a backend (a directory, or an S3 bucket), each sealed with its own data key; the header holds
    the wrapped key.

    Layout of a file: MAGIC, one JSON header line (wrapped data key, SHA-256, size, owner), sealed body.
    The key name and the owner are bound into both AES-GCM operations, so swapping two files, or pointing
    one row's key at another row's file, is detected.
    """

    def __init__(self, root: Path | None, master_key: bytes, backend: Backend | None = None) -> None:
        if backend is None:
            if root is None:
                raise ValueError("a local store needs its directory")
            backend = LocalBackend(root)
        self.backend = backend
        self._master_key = master_key

    def put(self, data: bytes, *, owner: str) -> StoredObject:
        """Seal and write `data` for `owner` under a new key. Raises StorageError."""
        return self.put_many([(data, owner)])[0]

    def put_many(self, items: Sequence[tuple[bytes, str]]) -> list[StoredObject]:
        """put() each (data, owner), written together (a local store flushes them to disk at once).

        Raises StorageError; then some of them may have been written, as after that many put() calls.
        """
        sealed, stored = [], []
        for data, owner in items:
            key = secrets.token_hex(16)
            digest = hashlib.sha256(data).hexdigest()
            data_key = crypto.new_data_key()
            context = _context(key, owner)
            header = {
                "wrapped_key": crypto.seal(self._master_key, data_key, context).hex(),
                "sha256": digest,
                "size": len(data),
                "owner": owner,
            }
            body = crypto.seal(data_key, data, context + digest.encode())
            self._check_key(key)
            sealed.append((key, MAGIC + json.dumps(header).encode() + b"\n" + body))
            stored.append(StoredObject(key=key, sha256=digest, size=len(data)))
        try:
            self.backend.put_many(sealed)
        except BackendError as exc:
            raise StorageError(str(exc)) from exc
        return stored

    def get(self, key: str, *, owner: str, sha256: str | None) -> bytes:
        """The plaintext of the file `owner` holds, whose SHA-256 the database recorded as `sha256`.

        Raises StorageError if missing, TamperedFile if altered, another owner's, or not that SHA-256.
        Files written before owners were bound (KPS1) are opened with the key name alone as context;
        their recorded SHA-256 still has to match.
        """
        self._check_key(key)
        try:
            raw = self.backend.get(key)
        except BackendError as exc:
            raise StorageError(str(exc)) from exc
        try:
            if raw.startswith(MAGIC):
                context = _context(key, owner)
            elif raw.startswith(MAGIC_UNBOUND):
                context = key.encode()
            else:
                raise ValueError("bad magic")
            header_line, body = raw[len(MAGIC) :].split(b"\n", 1)
            header = json.loads(header_line)
            data_key = crypto.open_sealed(self._master_key, bytes.fromhex(header["wrapped_key"]), context)
            data = crypto.open_sealed(data_key, body, context + header["sha256"].encode())
        except (InvalidTag, ValueError, KeyError, TypeError) as exc:
            raise TamperedFile(key, owner, "does not decrypt for this key and owner") from exc
        digest = hashlib.sha256(data).hexdigest()
        if digest != header["sha256"]:
            raise TamperedFile(key, owner, "content does not match its header")
        if sha256 is not None and digest != sha256:
            raise TamperedFile(key, owner, f"SHA-256 {digest} is not the recorded {sha256}")
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

    def objects(self) -> Iterator[tuple[str, dt.datetime]]:
        """(name, last modified) of every object in the backend: stored files and writes a killed process
        left behind (portal.storage.gc decides what no row references)."""
        try:
            yield from self.backend.objects()
        except BackendError as exc:
            raise StorageError(str(exc)) from exc

    def remove_unreferenced(self, name: str) -> None:
        """Remove an object no row references: only portal.storage.gc calls this."""
        try:
            self.backend.delete_unreferenced(name)
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


def _context(key: str, owner: str) -> bytes:
    return json.dumps([key, owner]).encode()


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
