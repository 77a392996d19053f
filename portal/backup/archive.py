"""The encrypted backup format: a directory of parts, each an AES-256-GCM stream under a key derived
from the backup key (a passphrase or a key file's content) with scrypt.

    keiyaku-20261202-023000/
      header.json       plain: format, name, creation time, scrypt salt and cost, a key check
      manifest.enc      the manifest (JSON): every part's SHA-256 and size, the counts
      database.enc      SQLite online-backup copy, or pg_dump -Fc
      files.enc         tar of the document store (encrypted documents, page images, certificates)
      pki.enc           tar of the built-in PKI (keys, certificates, CRL)
      secrets.enc       the secret key and master key that open the documents

A part is a sequence of chunks: 4-byte big-endian length, 12-byte random nonce, ciphertext with tag.
Each chunk's associated data names the backup, the part, the chunk's index and whether it is the
last one, so chunks cannot be reordered, moved between parts or backups, or cut off at the end.
Without the key nothing but header.json can be read, and it holds nothing about the contents.
"""

from __future__ import annotations

import hashlib
import json
import os
import struct
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.scrypt import Scrypt

FORMAT = "keiyaku-portal-backup"
VERSION = 1
HEADER_FILE = "header.json"
MANIFEST_FILE = "manifest.enc"
CHUNK_BYTES = 1024 * 1024
NONCE_BYTES = 12
# scrypt cost: 2**15 × 8 × 128 bytes = 32 MiB of memory and about a tenth of a second per key.
SCRYPT_N, SCRYPT_R, SCRYPT_P = 2**15, 8, 1
_KEY_CHECK = b"keiyaku-portal backup key check"


class BackupFormatError(Exception):
    """A part cannot be read: changed, cut short, missing, or encrypted under another key."""


class WrongKey(BackupFormatError):
    """The backup key given does not open this backup."""


@dataclass(frozen=True)
class PartDigest:
    """What was written for one part: plaintext size and SHA-256, stored size and SHA-256."""

    size: int
    sha256: str
    stored_size: int
    stored_sha256: str

    def as_dict(self) -> dict[str, Any]:
        return {"size": self.size, "sha256": self.sha256, "stored_size": self.stored_size,
                "stored_sha256": self.stored_sha256}


def derive_key(secret: bytes, kdf: dict[str, Any]) -> bytes:
    """The 256-bit AES key for `secret` with the salt and cost recorded in the header."""
    return Scrypt(salt=bytes.fromhex(kdf["salt"]), length=32, n=int(kdf["n"]), r=int(kdf["r"]),
                  p=int(kdf["p"])).derive(secret)


def new_kdf() -> dict[str, Any]:
    return {"name": "scrypt", "salt": os.urandom(16).hex(), "n": SCRYPT_N, "r": SCRYPT_R, "p": SCRYPT_P}


def key_check(key: bytes, name: str) -> str:
    nonce = hashlib.sha256(name.encode()).digest()[:NONCE_BYTES]
    return AESGCM(key).encrypt(nonce, _KEY_CHECK, name.encode()).hex()


def is_right_key(key: bytes, header: dict[str, Any]) -> bool:
    try:
        nonce = hashlib.sha256(header["name"].encode()).digest()[:NONCE_BYTES]
        return AESGCM(key).decrypt(nonce, bytes.fromhex(header["key_check"]), header["name"].encode()) == _KEY_CHECK
    except (InvalidTag, ValueError, KeyError):
        return False


def _associated(backup: str, part: str, index: int, last: bool) -> bytes:
    return f"{backup}\x00{part}\x00{index}\x00{int(last)}".encode()


class PartWriter:
    """A write-only file object that encrypts what it is given into `path`, chunk by chunk."""

    def __init__(self, path: Path, key: bytes, *, backup: str, part: str) -> None:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        self._file: BinaryIO = os.fdopen(fd, "wb")
        self._aead = AESGCM(key)
        self._backup, self._part = backup, part
        self._buffer = bytearray()
        self._index = 0
        self._plain = hashlib.sha256()
        self._stored = hashlib.sha256()
        self._size = 0
        self._stored_size = 0
        self.digest: PartDigest | None = None

    def write(self, data: bytes) -> int:
        self._buffer += data
        self._plain.update(data)
        self._size += len(data)
        while len(self._buffer) > CHUNK_BYTES:
            self._emit(bytes(self._buffer[:CHUNK_BYTES]), last=False)
            del self._buffer[:CHUNK_BYTES]
        return len(data)

    def _emit(self, chunk: bytes, *, last: bool) -> None:
        nonce = os.urandom(NONCE_BYTES)
        sealed = self._aead.encrypt(nonce, chunk, _associated(self._backup, self._part, self._index, last))
        record = struct.pack(">I", len(sealed)) + nonce + sealed
        self._file.write(record)
        self._stored.update(record)
        self._stored_size += len(record)
        self._index += 1

    def close(self) -> PartDigest:
        if self.digest is None:
            self._emit(bytes(self._buffer), last=True)
            self._buffer.clear()
            self._file.flush()
            os.fsync(self._file.fileno())
            self._file.close()
            self.digest = PartDigest(self._size, self._plain.hexdigest(), self._stored_size, self._stored.hexdigest())
        return self.digest

    def __enter__(self) -> PartWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        if exc[0] is None:
            self.close()
        else:
            self._file.close()


def read_part(path: Path, key: bytes, *, backup: str, part: str) -> Iterator[bytes]:
    """Yield the decrypted chunks of a part.

    Raises BackupFormatError when the file is missing, changed, cut short or under another key.
    """
    aead = AESGCM(key)
    try:
        handle = path.open("rb")
    except FileNotFoundError:
        raise BackupFormatError(f"{path.name} がありません。") from None
    with handle:
        index = 0
        while True:
            head = handle.read(4 + NONCE_BYTES)
            if len(head) < 4 + NONCE_BYTES:
                raise BackupFormatError(f"{path.name} が途中で切れています。")
            (length,) = struct.unpack(">I", head[:4])
            if length > CHUNK_BYTES + 16:
                raise BackupFormatError(f"{path.name} の {index + 1} 番目のブロックが壊れています。")
            sealed = handle.read(length)
            last = handle.peek(1) == b"" if hasattr(handle, "peek") else False
            try:
                chunk = aead.decrypt(head[4:], sealed, _associated(backup, part, index, last))
            except InvalidTag:
                raise BackupFormatError(f"{path.name} の {index + 1} 番目のブロックが改ざんされているか、"
                                        "途中で切れています。") from None
            yield chunk
            if last:
                return
            index += 1


class PartReader:
    """A read-only file object over the decrypted content of a part (for tarfile's stream mode)."""

    def __init__(self, chunks: Iterator[bytes]) -> None:
        self._chunks = chunks
        self._buffer = b""

    def read(self, size: int = -1) -> bytes:
        while size < 0 or len(self._buffer) < size:
            try:
                self._buffer += next(self._chunks)
            except StopIteration:
                break
        if size < 0:
            data, self._buffer = self._buffer, b""
        else:
            data, self._buffer = self._buffer[:size], self._buffer[size:]
        return data


def seal_json(path: Path, key: bytes, *, backup: str, part: str, value: Any) -> PartDigest:
    with PartWriter(path, key, backup=backup, part=part) as writer:
        writer.write(json.dumps(value, ensure_ascii=False, sort_keys=True).encode())
    return writer.close()


def open_json(path: Path, key: bytes, *, backup: str, part: str) -> Any:
    return json.loads(b"".join(read_part(path, key, backup=backup, part=part)))


def file_sha256(path: Path) -> tuple[int, str]:
    digest = hashlib.sha256()
    size = 0
    with path.open("rb") as handle:
        while chunk := handle.read(CHUNK_BYTES):
            digest.update(chunk)
            size += len(chunk)
    return size, digest.hexdigest()
