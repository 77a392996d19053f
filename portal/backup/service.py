"""Backups: create (a consistent snapshot, encrypted), list, verify, restore into an empty instance,
prune to the configured generations.

Services here take plain settings (BackupSources) and the backup key, so that the CLI, the worker
and the tests call them the same way; the caller writes the BackupRun row and the audit event.
"""

from __future__ import annotations

import io
import json
import os
import shutil
import tarfile
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from portal.backup import archive, contents, snapshot
from portal.backup.archive import BackupFormatError, PartWriter, WrongKey
from portal.errors import DomainError
from portal.storage.backends import BackendError
from portal.storage.service import StorageError, backend_from_settings

NAME_PREFIX = "keiyaku-"
PARTS = ("database", "files", "pki", "secrets", "config")
SECRET_NAMES = {"SECRET_KEY": "secret_key", "MASTER_KEY": "master_key"}
CONFIG_RESTORED_AS = "config.py.from-backup"


class BackupError(DomainError):
    """A backup could not be made, read or restored; the message says why in Japanese."""


class BackupInvalid(BackupError):
    """verify found problems: the backup must not be restored."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("バックアップに問題があります: " + " / ".join(problems))
        self.problems = problems


class TargetNotEmpty(BackupError):
    pass


@dataclass(frozen=True)
class BackupSources:
    """What a backup reads, from the portal's settings."""

    database_url: str
    storage: dict[str, Any]  # the STORAGE_* settings: the document store's backend (a directory or a bucket)
    pki_dir: Path
    instance_path: Path
    secrets: dict[str, str]
    pg_dump: str = "pg_dump"
    pg_restore: str = "pg_restore"

    @classmethod
    def from_config(cls, config: Mapping[str, Any], instance_path: str) -> BackupSources:
        return cls(database_url=str(config["DATABASE_URL"]),
                   storage={key: value for key, value in config.items() if key.startswith("STORAGE_")},
                   pki_dir=Path(config["PKI_DIR"]), instance_path=Path(instance_path),
                   secrets={key: str(config[key]) for key in SECRET_NAMES if config.get(key)},
                   pg_dump=str(config.get("BACKUP_PG_DUMP") or "pg_dump"),
                   pg_restore=str(config.get("BACKUP_PG_RESTORE") or "pg_restore"))


@dataclass(frozen=True)
class BackupInfo:
    name: str
    path: Path
    created_at: datetime
    size_bytes: int
    manifest: dict[str, Any] = field(default_factory=dict)


def read_secret(*, key_file: str | None, configured: str | None, backup_dir: Path | None = None) -> bytes:
    """The backup key: the content of `key_file` if given, else the configured passphrase.

    Raises BackupError when there is none, or when the key file lies inside the backup directory
    (a key stored beside the backups protects nothing).
    """
    if key_file:
        path = Path(key_file)
        if backup_dir is not None and _is_inside(path, backup_dir):
            raise BackupError("バックアップ鍵のファイルがバックアップ先の中にあります。鍵はバックアップとは"
                              "別の場所に保管してください。")
        try:
            secret = path.read_bytes().strip()
        except OSError as exc:
            raise BackupError(f"バックアップ鍵のファイル {key_file} を読めません"
                              f"（{exc.__class__.__name__}）。") from None
    else:
        secret = (configured or "").encode()
    if len(secret) < 12:
        raise BackupError("バックアップ鍵がありません（または短すぎます）。--key-file で鍵ファイルを指定するか、"
                          "PORTAL_BACKUP_PASSPHRASE_FILE を設定してください（12 文字以上）。")
    return secret


def _is_inside(path: Path, directory: Path) -> bool:
    try:
        path.resolve().relative_to(directory.resolve())
        return True
    except ValueError:
        return False


def new_key_file(path: Path) -> None:
    """Write a random backup key (base64, 0600). Raises BackupError if the file exists."""
    import base64

    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        raise BackupError(f"{path} はすでにあります。") from None
    with os.fdopen(fd, "w") as handle:
        handle.write(base64.b64encode(os.urandom(32)).decode() + "\n")


def create_backup(sources: BackupSources, *, into: Path, secret: bytes, now: datetime) -> BackupInfo:
    """Write a new backup directory under `into` and return it.

    The database is copied first (one consistent state); the document store is copied after it,
    so it holds every file the copy refers to (stored files are never changed, only added).
    Raises BackupError (and leaves no partial directory behind).
    """
    from datetime import UTC

    name = f"{NAME_PREFIX}{now.astimezone(UTC):%Y%m%d-%H%M%S}"
    into.mkdir(parents=True, exist_ok=True, mode=0o700)
    final = into / name
    if final.exists():
        raise BackupError(f"同じ名前のバックアップ {name} がすでにあります。")
    work = Path(tempfile.mkdtemp(prefix=f".{name}.", dir=into))
    try:
        kdf = archive.new_kdf()
        key = archive.derive_key(secret, kdf)
        parts: dict[str, dict[str, Any]] = {}
        database, measured = _write_database(sources, work, key, name)
        parts["database"] = database
        parts["files"] = _write_store(sources.storage, work / "files.enc", key, name)
        parts["pki"] = _write_tree(sources.pki_dir, work / "pki.enc", key, name, "pki")
        parts["secrets"] = {"file": "secrets.enc", **archive.seal_json(
            work / "secrets.enc", key, backup=name, part="secrets", value=sources.secrets).as_dict()}
        config_file = sources.instance_path / "config.py"
        if config_file.is_file():
            with PartWriter(work / "config.enc", key, backup=name, part="config") as writer:
                writer.write(config_file.read_bytes())
            parts["config"] = {"file": "config.enc", **writer.close().as_dict()}
        manifest = {"name": name, "created_at": now.isoformat(), "format": archive.FORMAT,
                    "version": archive.VERSION, "database": snapshot.describe(sources.database_url), "parts": parts,
                    **measured}
        archive.seal_json(work / archive.MANIFEST_FILE, key, backup=name, part="manifest", value=manifest)
        header = {"format": archive.FORMAT, "version": archive.VERSION, "name": name, "created_at": now.isoformat(),
                  "kdf": kdf, "key_check": archive.key_check(key, name)}
        (work / archive.HEADER_FILE).write_text(json.dumps(header, indent=1), encoding="utf-8")
        work.chmod(0o700)
        try:
            work.rename(final)  # fails when another backup of the same second got there first
        except OSError:
            raise BackupError(f"同じ名前のバックアップ {name} がすでにあります（同時に作成されました）。") from None
    except BackupError:
        shutil.rmtree(work, ignore_errors=True)
        raise
    except (snapshot.SnapshotError, OSError, tarfile.TarError, StorageError) as exc:
        shutil.rmtree(work, ignore_errors=True)
        raise BackupError(f"バックアップを作成できませんでした: {exc}") from exc
    except BaseException:
        shutil.rmtree(work, ignore_errors=True)
        raise
    return BackupInfo(name, final, now, _size(final), manifest)


def _write_database(sources: BackupSources, work: Path, key: bytes, name: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """The database part, and what was measured on exactly that snapshot (counts, searches)."""
    url = sources.database_url
    path = work / "database.enc"
    with PartWriter(path, key, backup=name, part="database") as writer:
        if snapshot.dialect_of(url) == "sqlite":
            # The plain copy stays beside the live database (same protection), never in the backup directory.
            scratch = Path(tempfile.mkdtemp(prefix=".backup-", dir=snapshot.sqlite_path(url).parent))
            try:
                with snapshot.sqlite_snapshot(url, scratch / "copy.sqlite3") as connection:
                    measured = _measure(connection)
                with (scratch / "copy.sqlite3").open("rb") as copy:
                    while chunk := copy.read(archive.CHUNK_BYTES):
                        writer.write(chunk)
            finally:
                shutil.rmtree(scratch, ignore_errors=True)
            tool_version = "sqlite3 " + __import__("sqlite3").sqlite_version
        else:
            pg_dump = snapshot.tool("pg_dump", sources.pg_dump)
            with snapshot.postgresql_snapshot(url, pg_dump, writer.write) as connection:
                measured = _measure(connection)
            tool_version = snapshot.tool_version(pg_dump)
    return {"file": "database.enc", "tool": tool_version, **writer.close().as_dict()}, measured


def _measure(connection: Any) -> dict[str, Any]:
    return {"counts": contents.counts(connection), "search": contents.search_probes(connection)}


def _write_store(storage: dict[str, Any], path: Path, key: bytes, name: str) -> dict[str, Any]:
    """Every object of the document store, as sealed by it, in the layout of a local store (ab/abcd…)."""
    backend = backend_from_settings(storage)
    with (PartWriter(path, key, backup=name, part="files") as writer,
          tarfile.open(fileobj=writer, mode="w|", format=tarfile.PAX_FORMAT) as tar):  # type: ignore[call-overload]
        for object_name in sorted(backend.list()):
            try:
                blob = backend.get(object_name)
            except BackendError as exc:
                raise StorageError(str(exc)) from exc
            member = tarfile.TarInfo(f"{object_name[:2]}/{object_name}")
            member.size, member.mode = len(blob), 0o400
            tar.addfile(member, io.BytesIO(blob))
    return {"file": path.name, **writer.close().as_dict()}


def _write_tree(directory: Path, path: Path, key: bytes, name: str, part: str) -> dict[str, Any]:
    with (PartWriter(path, key, backup=name, part=part) as writer,
          tarfile.open(fileobj=writer, mode="w|", format=tarfile.PAX_FORMAT) as tar):  # type: ignore[call-overload]
        if directory.is_dir():
            tar.add(str(directory), arcname=".", filter=_skip_temporary)
    return {"file": path.name, **writer.close().as_dict()}


def _skip_temporary(member: tarfile.TarInfo) -> tarfile.TarInfo | None:
    return None if member.name.endswith(".tmp") else member


def _size(path: Path) -> int:
    return sum(item.stat().st_size for item in path.iterdir() if item.is_file())


# ---------------------------------------------------------------------------------------------- reading


def backup_path(directory: Path, name: str) -> Path:
    """The directory of backup `name` (a plain name: no path separators). Raises BackupError."""
    if not name.startswith(NAME_PREFIX) or "/" in name or "\\" in name or name in (".", ".."):
        candidate = Path(name)
        if candidate.is_dir() and (candidate / archive.HEADER_FILE).exists():
            return candidate
        raise BackupError(f"バックアップ {name} が見つかりません。")
    path = directory / name
    if not (path / archive.HEADER_FILE).is_file():
        raise BackupError(f"バックアップ {name} が見つかりません（{directory}）。")
    return path


def list_backups(directory: Path) -> list[BackupInfo]:
    """Backups in `directory`, newest first (read from their plain headers; no key needed)."""
    if not directory.is_dir():
        return []
    found = []
    for path in directory.iterdir():
        header_file = path / archive.HEADER_FILE
        if not path.name.startswith(NAME_PREFIX) or not header_file.is_file():
            continue
        try:
            header = json.loads(header_file.read_text(encoding="utf-8"))
            created = datetime.fromisoformat(header["created_at"])
        except (ValueError, KeyError, OSError):
            continue
        found.append(BackupInfo(path.name, path, created, _size(path)))
    return sorted(found, key=lambda info: info.created_at, reverse=True)


def open_backup(path: Path, secret: bytes) -> tuple[bytes, dict[str, Any]]:
    """The key and the decrypted manifest. Raises WrongKey, BackupFormatError."""
    try:
        header = json.loads((path / archive.HEADER_FILE).read_text(encoding="utf-8"))
        kdf = header["kdf"]
    except (OSError, ValueError, KeyError):
        raise BackupFormatError("header.json を読めません。") from None
    if header.get("format") != archive.FORMAT or header.get("name") != path.name:
        raise BackupFormatError("header.json がこのバックアップのものではありません。")
    key = archive.derive_key(secret, kdf)
    if not archive.is_right_key(key, header):
        raise WrongKey("バックアップ鍵が違います（この鍵ではバックアップを開けません）。")
    manifest = archive.open_json(path / archive.MANIFEST_FILE, key, backup=path.name, part="manifest")
    if manifest.get("name") != path.name:
        raise BackupFormatError("manifest がこのバックアップのものではありません。")
    return key, manifest


def verify_backup(path: Path, secret: bytes) -> tuple[dict[str, Any] | None, list[str]]:
    """Read every part back, decrypt it and compare its SHA-256 with the manifest.

    Returns the manifest (None if it could not be opened) and the problems found, one line each.
    """
    try:
        key, manifest = open_backup(path, secret)
    except BackupFormatError as exc:
        return None, [str(exc)]
    problems = []
    for part, entry in manifest["parts"].items():
        problems.extend(_check_part(path, key, part, entry, sink=None))
    return manifest, problems


def _check_part(path: Path, key: bytes, part: str, entry: dict[str, Any], sink: Any) -> list[str]:
    import hashlib

    file = path / entry["file"]
    if not file.is_file():
        return [f"{entry['file']}（{part}）がありません。"]
    stored_size, stored_sha256 = archive.file_sha256(file)
    if (stored_size, stored_sha256) != (entry["stored_size"], entry["stored_sha256"]):
        return [f"{entry['file']}（{part}）の SHA-256 が manifest と一致しません（変更されています）。"]
    digest = hashlib.sha256()
    size = 0
    try:
        for chunk in archive.read_part(file, key, backup=path.name, part=part):
            digest.update(chunk)
            size += len(chunk)
            if sink is not None:
                sink.write(chunk)
    except BackupFormatError as exc:
        return [str(exc)]
    if (size, digest.hexdigest()) != (entry["size"], entry["sha256"]):
        return [f"{entry['file']}（{part}）の内容の SHA-256 が manifest と一致しません。"]
    return []


# ---------------------------------------------------------------------------------------------- restore


@dataclass(frozen=True)
class RestoreTarget:
    """The instance directory and database to restore into; the documents go to `storage` (STORAGE_* settings,
    e.g. a new S3 bucket) when given, else to the instance's own `files` directory."""

    instance: Path
    database_url: str
    storage: Mapping[str, Any] | None = None

    def store_description(self) -> str:
        if self.storage is None:
            return str(self.instance / "files")
        if self.storage.get("STORAGE_BACKEND") == "s3":
            prefix = self.storage.get("STORAGE_S3_PREFIX") or ""
            return f"S3 バケット {self.storage.get('STORAGE_S3_BUCKET')}{'/' + prefix if prefix else ''}"
        return str(self.storage.get("STORAGE_DIR"))


def default_target(manifest: dict[str, Any], into: Path, database_url: str | None,
                   storage: Mapping[str, Any] | None = None) -> RestoreTarget:
    """Where to restore: the instance directory and the database (SQLite: a file in it by default).

    Raises BackupError when a PostgreSQL backup is given no database, or the dialects differ.
    """
    dialect = manifest["database"]["dialect"]
    if not database_url:
        if dialect == "postgresql":
            raise BackupError("PostgreSQL のバックアップです。復元先のデータベースを --database で指定してください"
                              "（空のデータベースを作成しておきます）。")
        database_url = f"sqlite:///{into / 'portal.sqlite3'}"
    if snapshot.dialect_of(database_url) != dialect:
        raise BackupError(f"このバックアップは {dialect} のものです。同じ種類のデータベースに復元してください。")
    return RestoreTarget(into, database_url, storage)


def restore_backup(path: Path, secret: bytes, target: RestoreTarget, *, force: bool,
                   pg_restore: str = "pg_restore") -> dict[str, Any]:
    """Decrypt and check every part, then put the database, documents, PKI and secrets in place.

    Nothing in the target changes unless every part decrypts and matches the manifest. Returns
    the manifest. Raises WrongKey/BackupInvalid (the backup), TargetNotEmpty (unless `force`),
    BackupError.
    """
    try:
        key, manifest = open_backup(path, secret)
    except WrongKey as exc:
        raise BackupInvalid([str(exc)]) from None
    except BackupFormatError as exc:
        raise BackupInvalid([str(exc)]) from None
    instance = target.instance
    if not force:
        sqlite_file = (snapshot.sqlite_path(target.database_url)
                       if snapshot.dialect_of(target.database_url) == "sqlite" else None)
        others = [p for p in instance.iterdir()] if instance.is_dir() else []
        if others or not snapshot.is_empty_database(target.database_url):
            shown = sqlite_file if sqlite_file and sqlite_file.exists() else instance
            raise TargetNotEmpty(f"復元先が空ではありません（{shown if others else target.database_url}）。"
                                 "上書きするときは --force を付けてください。")
        if target.storage is not None and next(iter(_backend(target.storage).list()), None) is not None:
            raise TargetNotEmpty(f"復元先の保存先が空ではありません（{target.store_description()}）。"
                                 "上書きするときは --force を付けてください（既にある文書は書き換えません）。")
    instance.mkdir(parents=True, exist_ok=True, mode=0o700)
    staging = Path(tempfile.mkdtemp(prefix=".restore-", dir=instance))
    try:
        _unpack(path, key, manifest, staging)
        _apply(staging, manifest, target, pg_restore=pg_restore, clean=force)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return manifest


def _unpack(path: Path, key: bytes, manifest: dict[str, Any], staging: Path) -> None:
    problems: list[str] = []
    for part, entry in manifest["parts"].items():
        if part not in PARTS:
            problems.append(f"不明な部分 {part} があります。")
            continue
        with (staging / part).open("wb") as sink:
            problems.extend(_check_part(path, key, part, entry, sink=sink))
    missing = [part for part in ("database", "files", "pki", "secrets") if part not in manifest["parts"]]
    problems.extend(f"{part} が manifest にありません。" for part in missing)
    if problems:
        raise BackupInvalid(problems)


def _apply(staging: Path, manifest: dict[str, Any], target: RestoreTarget, *, pg_restore: str, clean: bool) -> None:
    instance = target.instance
    if target.storage is not None:  # first: a store that refuses the documents leaves the database as it was
        _put_documents(staging / "files", _backend(target.storage))
    if manifest["database"]["dialect"] == "sqlite":
        snapshot.restore_sqlite(staging / "database", target.database_url)
    else:
        snapshot.restore_postgresql(staging / "database", target.database_url,
                                    snapshot.tool("pg_restore", pg_restore), clean=clean)
    parts = (("pki", instance / "pki"),) if target.storage is not None else (
        ("files", instance / "files"), ("pki", instance / "pki"))
    for part, directory in parts:
        if directory.exists():
            shutil.rmtree(directory)
        unpacked = staging / f"{part}.d"
        unpacked.mkdir(mode=0o700)
        with tarfile.open(staging / part, mode="r:") as tar:
            tar.extractall(unpacked, filter="data")
        unpacked.chmod(0o700)
        unpacked.rename(directory)
    secrets = json.loads((staging / "secrets").read_bytes())
    for key, filename in SECRET_NAMES.items():
        if key in secrets:
            file = instance / filename
            file.unlink(missing_ok=True)
            fd = os.open(file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "w") as handle:
                handle.write(secrets[key])
    if (staging / "config").exists() and (staging / "config").stat().st_size:
        shutil.copyfile(staging / "config", instance / CONFIG_RESTORED_AS)
        os.chmod(instance / CONFIG_RESTORED_AS, 0o600)


def _backend(storage: Mapping[str, Any]) -> Any:
    try:
        return backend_from_settings(storage)
    except StorageError as exc:
        raise BackupError(f"復元先の保存先を使えません: {exc}") from exc


def _put_documents(files_part: Path, backend: Any) -> None:
    """Every stored object of the backup into `backend`, sealed as it was (the master key comes back with the
    secrets). An object already there with the same bytes is left; one with other bytes is refused before
    anything is written, since stores may be write-once (S3 Object Lock)."""
    with tarfile.open(files_part, mode="r:") as tar:
        members = [m for m in tar.getmembers() if m.isfile()]
        conflicts: list[str] = []
        missing: list[tarfile.TarInfo] = []
        for member in members:
            name = member.name.rsplit("/", 1)[-1]
            try:
                present = backend.exists(name)
                if present and backend.get(name) != _read_member(tar, member):
                    conflicts.append(name)
            except BackendError as exc:
                raise BackupError(f"復元先の保存先を読めません: {exc}") from exc
            if not present:
                missing.append(member)
        if conflicts:
            raise BackupError(f"復元先の保存先に、同じ名前で内容の違う文書が {len(conflicts)} 件あります"
                              f"（{', '.join(conflicts[:3])} など）。空の保存先に復元してください。")
        for member in missing:
            try:
                backend.put(member.name.rsplit("/", 1)[-1], _read_member(tar, member))
            except BackendError as exc:
                raise BackupError(f"復元先の保存先に書き込めません: {exc}") from exc


def _read_member(tar: tarfile.TarFile, member: tarfile.TarInfo) -> bytes:
    handle = tar.extractfile(member)
    assert handle is not None
    return handle.read()


# ---------------------------------------------------------------------------------------------- prune


def prune(directory: Path, keep: Any, zone: Any, *, dry_run: bool = False) -> tuple[list[BackupInfo], list[BackupInfo]]:
    """Delete the backups no generation keeps. Returns (kept, deleted)."""
    from portal.backup.rotation import to_keep

    backups = list_backups(directory)
    kept_indexes = to_keep(backups, lambda info: info.created_at, keep, zone)
    kept = [b for i, b in enumerate(backups) if i in kept_indexes]
    deleted = [b for i, b in enumerate(backups) if i not in kept_indexes]
    if not dry_run:
        for info in deleted:
            shutil.rmtree(info.path)
    return kept, deleted
