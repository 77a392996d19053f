from __future__ import annotations

import hashlib
import os
import stat

import pytest

from portal.storage import LocalEncryptedStore, StorageError, TamperedFile
from portal.storage.crypto import master_key_from_hex

PLAINTEXT = "契約書 第1条 ㈱髙橋工務店 金1,100,000円".encode() * 50


@pytest.fixture
def store(tmp_path):
    return LocalEncryptedStore(tmp_path / "files", master_key_from_hex("ab" * 32))


def test_round_trip_records_sha256(store):
    stored = store.put(PLAINTEXT)
    assert stored.sha256 == hashlib.sha256(PLAINTEXT).hexdigest()
    assert stored.size == len(PLAINTEXT)
    assert store.get(stored.key) == PLAINTEXT


def test_bytes_on_disk_are_not_the_plaintext(store):
    stored = store.put(PLAINTEXT)
    raw = store._path(stored.key).read_bytes()
    assert PLAINTEXT[:40] not in raw
    assert "髙橋".encode() not in raw


def test_each_file_gets_its_own_data_key(store):
    first, second = store.put(PLAINTEXT), store.put(PLAINTEXT)
    assert first.key != second.key
    assert store._path(first.key).read_bytes() != store._path(second.key).read_bytes()


def test_tampered_file_is_detected(store):
    stored = store.put(PLAINTEXT)
    path = store._path(stored.key)
    os.chmod(path, stat.S_IWUSR | stat.S_IRUSR)
    data = bytearray(path.read_bytes())
    data[-20] ^= 0x01
    path.write_bytes(bytes(data))
    with pytest.raises(TamperedFile):
        store.get(stored.key)


def test_swapped_files_are_detected(store):
    first, second = store.put(b"first"), store.put(b"second")
    first_path, second_path = store._path(first.key), store._path(second.key)
    os.chmod(first_path, 0o600)
    first_path.write_bytes(second_path.read_bytes())
    with pytest.raises(TamperedFile):
        store.get(first.key)


def test_wrong_master_key_cannot_read(store, tmp_path):
    stored = store.put(PLAINTEXT)
    other = LocalEncryptedStore(tmp_path / "files", master_key_from_hex("cd" * 32))
    with pytest.raises(TamperedFile):
        other.get(stored.key)


def test_stored_files_are_read_only_and_never_overwritten(store):
    stored = store.put(PLAINTEXT)
    mode = stat.S_IMODE(store._path(stored.key).stat().st_mode)
    assert mode & 0o222 == 0
    assert not hasattr(store, "delete")
    assert not hasattr(store, "replace")


def test_destroy_after_retention_removes_the_file(store):
    stored = store.put(PLAINTEXT)
    store.destroy_after_retention(stored.key)
    assert not store.exists(stored.key)
    with pytest.raises(StorageError):
        store.get(stored.key)


def test_missing_and_malformed_keys(store):
    with pytest.raises(StorageError):
        store.get("0" * 32)
    with pytest.raises(StorageError):
        store.get("../../etc/passwd")


def test_app_store_uses_instance_folder(app):
    from portal.storage import get_store

    with app.app_context():
        stored = get_store().put(b"%PDF-1.7 test")
        assert get_store().get(stored.key) == b"%PDF-1.7 test"
    assert app.config["STORAGE_DIR"].startswith(app.instance_path)
    assert os.path.isdir(app.config["STORAGE_DIR"])
