from __future__ import annotations

import hashlib
import os
import stat

import pytest

from portal.storage import LocalEncryptedStore, StorageError, TamperedFile
from portal.storage.backends import Backend, BackendError, LocalBackend
from portal.storage.crypto import master_key_from_hex
from portal.storage.service import backend_from_settings

OWNER = "contract/1/document/1/revision/1"
PLAINTEXT = "契約書 第1条 ㈱髙橋工務店 金1,100,000円".encode() * 50


@pytest.fixture(params=["local", "s3"])
def backend(request, tmp_path) -> Backend:
    """The same suite on both backends: a directory, and moto's S3 server on loopback."""
    if request.param == "local":
        return LocalBackend(tmp_path / "files")
    server = request.getfixturevalue("s3_server")
    return backend_from_settings(server.settings(server.new_bucket()))


@pytest.fixture
def store(backend):
    return LocalEncryptedStore(None, master_key_from_hex("ab" * 32), backend=backend)


def raw(store, key: str) -> bytes:
    """The bytes as the backend holds them."""
    return store.backend.get(key)


def overwrite(store, key: str, blob: bytes) -> None:
    """Change stored bytes behind the portal's back (someone with access to the disk or the bucket)."""
    if isinstance(store.backend, LocalBackend):
        path = store.backend.path(key)
        os.chmod(path, stat.S_IWUSR | stat.S_IRUSR)
        path.write_bytes(blob)
    else:
        store.backend._client.put_object(Bucket=store.backend.bucket, Key=store.backend._key(key), Body=blob)


def test_round_trip_records_sha256(store):
    stored = store.put(PLAINTEXT, owner=OWNER)
    assert stored.sha256 == hashlib.sha256(PLAINTEXT).hexdigest()
    assert stored.size == len(PLAINTEXT)
    assert store.get(stored.key, owner=OWNER, sha256=None) == PLAINTEXT


def test_bytes_stored_are_not_the_plaintext(store):
    stored = store.put(PLAINTEXT, owner=OWNER)
    blob = raw(store, stored.key)
    assert PLAINTEXT[:40] not in blob
    assert "髙橋".encode() not in blob


def test_each_file_gets_its_own_data_key(store):
    first, second = store.put(PLAINTEXT, owner=OWNER), store.put(PLAINTEXT, owner=OWNER)
    assert first.key != second.key
    assert raw(store, first.key) != raw(store, second.key)


def test_tampered_file_is_detected(store):
    stored = store.put(PLAINTEXT, owner=OWNER)
    data = bytearray(raw(store, stored.key))
    data[-20] ^= 0x01
    overwrite(store, stored.key, bytes(data))
    with pytest.raises(TamperedFile):
        store.get(stored.key, owner=OWNER, sha256=None)


def test_swapped_files_are_detected(store):
    first, second = store.put(b"first", owner=OWNER), store.put(b"second", owner=OWNER)
    overwrite(store, first.key, raw(store, second.key))
    with pytest.raises(TamperedFile):
        store.get(first.key, owner=OWNER, sha256=None)


def test_wrong_master_key_cannot_read(store):
    stored = store.put(PLAINTEXT, owner=OWNER)
    other = LocalEncryptedStore(None, master_key_from_hex("cd" * 32), backend=store.backend)
    with pytest.raises(TamperedFile):
        other.get(stored.key, owner=OWNER, sha256=None)


def test_stored_files_are_never_overwritten(store):
    stored = store.put(PLAINTEXT, owner=OWNER)
    with pytest.raises(BackendError):
        store.backend.put(stored.key, b"other bytes")
    assert store.get(stored.key, owner=OWNER, sha256=None) == PLAINTEXT
    assert not hasattr(store, "delete")
    assert not hasattr(store, "replace")


def test_local_files_are_read_only(tmp_path):
    store = LocalEncryptedStore(tmp_path / "files", master_key_from_hex("ab" * 32))
    stored = store.put(PLAINTEXT, owner=OWNER)
    mode = stat.S_IMODE(store._path(stored.key).stat().st_mode)
    assert mode & 0o222 == 0


def test_keys_lists_every_stored_file(store):
    keys = {store.put(f"file {n}".encode(), owner=OWNER).key for n in range(3)}
    assert set(store.keys()) == keys


def test_destroy_after_retention_removes_the_file(store):
    stored = store.put(PLAINTEXT, owner=OWNER)
    store.destroy_after_retention(stored.key)
    assert not store.exists(stored.key)
    with pytest.raises(StorageError):
        store.get(stored.key, owner=OWNER, sha256=None)


def test_missing_and_malformed_keys(store):
    with pytest.raises(StorageError):
        store.get("0" * 32, owner=OWNER, sha256=None)
    with pytest.raises(StorageError):
        store.get("../../etc/passwd", owner=OWNER, sha256=None)


def test_app_store_uses_instance_folder(app):
    from portal.storage import get_store

    with app.app_context():
        stored = get_store().put(b"%PDF-1.7 test", owner=OWNER)
        assert get_store().get(stored.key, owner=OWNER, sha256=None) == b"%PDF-1.7 test"
    assert app.config["STORAGE_DIR"].startswith(app.instance_path)
    assert os.path.isdir(app.config["STORAGE_DIR"])


def test_app_store_on_s3(app_config, database_url, tmp_path, s3_server):
    from portal import create_app
    from portal.storage import get_store
    from tests.conftest import test_config

    bucket = s3_server.new_bucket()
    app = create_app(test_config(database_url, tmp_path / "instance", **s3_server.settings(bucket)))
    with app.app_context():
        stored = get_store().put(b"%PDF-1.7 test", owner=OWNER)
        assert get_store().get(stored.key, owner=OWNER, sha256=None) == b"%PDF-1.7 test"
    assert [item["Key"] for item in s3_server.client().list_objects_v2(Bucket=bucket)["Contents"]] == [stored.key]
    assert not os.path.exists(app.config["STORAGE_DIR"])
    app.extensions["portal.engine"].dispose()


def test_object_lock_keeps_each_object_in_compliance_mode(s3_server):
    import datetime as dt

    bucket = s3_server.new_bucket(object_lock=True)
    backend = backend_from_settings(s3_server.settings(bucket, STORAGE_S3_OBJECT_LOCK_DAYS=2555))
    store = LocalEncryptedStore(None, master_key_from_hex("ab" * 32), backend=backend)
    stored = store.put(PLAINTEXT, owner=OWNER)
    client = s3_server.client()
    head = client.head_object(Bucket=bucket, Key=stored.key)
    assert head["ObjectLockMode"] == "COMPLIANCE"
    assert head["ObjectLockRetainUntilDate"] > dt.datetime.now(dt.UTC) + dt.timedelta(days=2554)
    version = head["VersionId"]
    with pytest.raises(client.exceptions.ClientError):  # nobody removes a locked version before its date
        client.delete_object(Bucket=bucket, Key=stored.key, VersionId=version)
    store.destroy_after_retention(stored.key)  # hidden at once; the locked version waits for its date
    assert not store.exists(stored.key)
    with pytest.raises(StorageError):
        store.get(stored.key, owner=OWNER, sha256=None)
    assert client.get_object(Bucket=bucket, Key=stored.key, VersionId=version)["Body"].read()


def test_object_lock_on_a_bucket_without_it_is_refused(s3_server):
    bucket = s3_server.new_bucket()
    backend = backend_from_settings(s3_server.settings(bucket, STORAGE_S3_OBJECT_LOCK_DAYS=30))
    store = LocalEncryptedStore(None, master_key_from_hex("ab" * 32), backend=backend)
    with pytest.raises(StorageError, match="オブジェクトロックが有効ではありません"):
        store.put(PLAINTEXT, owner=OWNER)
    assert s3_server.client().list_objects_v2(Bucket=bucket).get("KeyCount") == 0


def test_object_lock_longer_than_the_shortest_retention_is_refused(s3_server):
    settings = s3_server.settings("any", STORAGE_S3_OBJECT_LOCK_DAYS=7 * 365 + 1, RETENTION_YEARS_MINIMUM=7)
    with pytest.raises(StorageError, match="0 から 2555"):
        backend_from_settings(settings)
    with pytest.raises(StorageError, match="0 から 2555"):
        backend_from_settings({**settings, "STORAGE_S3_OBJECT_LOCK_DAYS": -1})


def test_s3_settings_missing_or_unknown_backend(tmp_path):
    with pytest.raises(StorageError, match="PORTAL_STORAGE_S3_BUCKET"):
        backend_from_settings({"STORAGE_BACKEND": "s3"})
    with pytest.raises(StorageError, match="local または s3"):
        backend_from_settings({"STORAGE_BACKEND": "ftp", "STORAGE_DIR": str(tmp_path)})


def test_unreachable_s3_is_a_storage_error():
    from tests.services.smtp import free_port

    backend = backend_from_settings({"STORAGE_BACKEND": "s3", "STORAGE_S3_BUCKET": "b",
                                     "STORAGE_S3_ENDPOINT_URL": f"http://127.0.0.1:{free_port()}",
                                     "STORAGE_S3_REGION": "ap-northeast-1", "STORAGE_S3_ACCESS_KEY_ID": "x",
                                     "STORAGE_S3_SECRET_ACCESS_KEY": "y", "STORAGE_S3_TIMEOUT_SECONDS": 1})
    store = LocalEncryptedStore(None, master_key_from_hex("ab" * 32), backend=backend)
    with pytest.raises(StorageError):
        store.put(b"x", owner=OWNER)


def test_probe_writes_reads_and_removes_beside_the_documents(store):
    stored = store.put(PLAINTEXT, owner=OWNER)
    store.backend.probe()
    assert list(store.keys()) == [stored.key]
    assert list(store.backend.list()) == [stored.key]


def test_probe_of_an_unwritable_store_fails(tmp_path):
    from portal.storage.backends import BackendError

    (tmp_path / "files").write_text("not a directory")
    with pytest.raises(BackendError):
        LocalBackend(tmp_path / "files").probe()


def test_a_file_is_bound_to_its_owner(store):
    stored = store.put(PLAINTEXT, owner="contract/1/document/1/revision/1")
    with pytest.raises(TamperedFile, match="does not decrypt"):
        store.get(stored.key, owner="contract/2/document/5/revision/1", sha256=stored.sha256)
    assert store.get(stored.key, owner="contract/1/document/1/revision/1", sha256=stored.sha256) == PLAINTEXT


def test_the_recorded_sha256_must_match(store):
    stored = store.put(PLAINTEXT, owner=OWNER)
    with pytest.raises(TamperedFile, match="is not the recorded"):
        store.get(stored.key, owner=OWNER, sha256="0" * 64)


def _put_unbound(store, data: bytes) -> str:
    """A file as the store wrote it before owners were bound (format KPS1: the key name alone as context)."""
    import json
    import secrets

    from portal.storage import crypto

    key = secrets.token_hex(16)
    digest = hashlib.sha256(data).hexdigest()
    data_key = crypto.new_data_key()
    header = {"wrapped_key": crypto.seal(store._master_key, data_key, key.encode()).hex(), "sha256": digest,
              "size": len(data)}
    store.backend.put(key, b"KPS1\n" + json.dumps(header).encode() + b"\n"
                      + crypto.seal(data_key, data, key.encode() + digest.encode()))
    return key


def test_files_written_before_owners_were_bound_stay_readable(store):
    key = _put_unbound(store, PLAINTEXT)
    digest = hashlib.sha256(PLAINTEXT).hexdigest()
    assert store.get(key, owner="contract/7/document/9/revision/1", sha256=digest) == PLAINTEXT
    with pytest.raises(TamperedFile):  # the recorded SHA-256 is still checked
        store.get(key, owner="contract/7/document/9/revision/1", sha256=hashlib.sha256(b"other").hexdigest())
    data = bytearray(raw(store, key))
    data[-20] ^= 0x01
    overwrite(store, key, bytes(data))
    with pytest.raises(TamperedFile):
        store.get(key, owner="contract/7/document/9/revision/1", sha256=digest)


# The disk stalls before the data is durable (fsync never returns), and the process is then SIGKILLed.
KILLED_WRITER = """
import os, sys, time
from pathlib import Path
from portal.storage.backends import LocalBackend
os.fsync = lambda fd: time.sleep(3600)
LocalBackend(Path(sys.argv[1])).put(sys.argv[2], b"x" * (1 << 20))
"""


def test_a_write_killed_midway_leaves_nothing_at_its_key(tmp_path):
    import signal
    import subprocess
    import sys
    import time

    root, key = tmp_path / "files", "ab" * 16
    writer = subprocess.Popen([sys.executable, "-c", KILLED_WRITER, str(root), key])
    deadline = time.monotonic() + 60
    while not any(p.stat().st_size for p in root.glob("ab/*")) and time.monotonic() < deadline:
        time.sleep(0.01)
    writer.send_signal(signal.SIGKILL)
    writer.wait()
    backend = LocalBackend(root)
    assert not backend.exists(key)
    assert list(backend.list()) == []
    [(partial, _)] = backend.objects()
    assert partial.startswith(".tmp-" + key)


def test_gc_finds_only_old_files_no_row_references(store):
    import datetime as dt

    from portal.storage.gc import find_orphans, remove_orphans

    kept, orphan = store.put(b"kept", owner=OWNER), store.put(b"orphan", owner=OWNER)
    now = dt.datetime.now(dt.UTC)
    assert find_orphans(store, {kept.key}, now=now) == []  # younger than an hour: maybe an upload under way
    later = now + dt.timedelta(hours=1, minutes=1)
    orphans = find_orphans(store, {kept.key}, now=later)
    assert [o.name for o in orphans] == [orphan.key]
    assert remove_orphans(store, orphans) == 1
    assert not store.exists(orphan.key)
    assert store.get(kept.key, owner=OWNER, sha256=kept.sha256) == b"kept"


def test_gc_removes_a_partial_write_left_by_a_killed_process(tmp_path):
    import datetime as dt

    from portal.storage.gc import find_orphans, remove_orphans

    store = LocalEncryptedStore(tmp_path / "files", master_key_from_hex("ab" * 32))
    kept = store.put(b"kept", owner=OWNER)
    partial = store.backend.path(kept.key).with_name(f".tmp-{kept.key[:2]}{'c' * 30}-0badf00d")
    partial.write_bytes(b"KPS2\n{half a header")
    later = dt.datetime.now(dt.UTC) + dt.timedelta(hours=2)
    orphans = find_orphans(store, {kept.key}, now=later)
    assert [(o.name, o.is_partial_write) for o in orphans] == [(partial.name, True)]
    remove_orphans(store, orphans)
    assert not partial.exists()
    assert store.exists(kept.key)


def test_put_many_stores_each_file_for_its_owner(store):
    owners = [f"contract/1/document/{n}/revision/2" for n in range(1, 4)]
    stored = store.put_many([(f"document {n}".encode() * 100, owner) for n, owner in enumerate(owners)])
    assert len({s.key for s in stored}) == 3
    for n, (owner, item) in enumerate(zip(owners, stored, strict=True)):
        assert store.get(item.key, owner=owner, sha256=item.sha256) == f"document {n}".encode() * 100
    with pytest.raises(TamperedFile):
        store.get(stored[0].key, owner=owners[1], sha256=None)


def test_put_many_flushes_every_file_before_its_rename_and_every_directory_after(tmp_path, monkeypatch):
    """Durability as put() gives it, one file at a time: each file's bytes are on disk before it is
    renamed to its name, and each directory is flushed after the renames into it."""
    backend = LocalBackend(tmp_path / "files")
    events: list[tuple[str, str]] = []
    real_fsync, real_replace = os.fsync, os.replace

    def fsync(fd: int) -> None:
        real_fsync(fd)
        events.append(("fsync", os.readlink(f"/proc/self/fd/{fd}")))

    def replace(source, target) -> None:
        real_replace(source, target)
        events.append(("rename", str(source)))
        events.append(("named", str(target)))

    monkeypatch.setattr(os, "fsync", fsync)
    monkeypatch.setattr(os, "replace", replace)
    names = ["ab" + "0" * 30, "ab" + "1" * 30, "cd" + "0" * 30]
    backend.put_many([(name, name.encode()) for name in names])
    assert [backend.get(name) for name in names] == [name.encode() for name in names]
    renamed = [path for kind, path in events if kind == "rename"]
    assert len(renamed) == 3
    for temporary in renamed:  # flushed under its temporary name before the rename
        assert events.index(("fsync", temporary)) < events.index(("rename", temporary))
    last_rename = max(i for i, (kind, _) in enumerate(events) if kind == "rename")
    flushed_directories = [path for kind, path in events[last_rename:] if kind == "fsync"]
    assert sorted(flushed_directories) == sorted({str(backend.path(name).parent) for name in names})


def test_put_many_of_a_taken_name_leaves_no_partial_write(tmp_path):
    backend = LocalBackend(tmp_path / "files")
    backend.put("ab" * 16, b"first")
    with pytest.raises(BackendError):
        backend.put_many([("cd" * 16, b"new"), ("ab" * 16, b"again")])
    assert backend.get("ab" * 16) == b"first"
    assert [name for name, _ in backend.objects()] == ["ab" * 16]
