"""Encrypted, immutable document store: put(data) -> StoredObject, get(key) -> bytes."""

from portal.storage.service import (
    FileStore,
    LocalEncryptedStore,
    StorageError,
    StoredObject,
    TamperedFile,
    get_store,
)

__all__ = ["FileStore", "LocalEncryptedStore", "StorageError", "StoredObject", "TamperedFile", "get_store"]
