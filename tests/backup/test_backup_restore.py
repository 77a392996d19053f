"""Backups restore: completed contracts (signed, certificate, corrections, audit events) are backed up
while the portal writes, restored into an empty instance with another database, and everything checks
out there; a changed, incomplete or wrongly keyed backup is reported by verify and refused by restore."""

from __future__ import annotations

import json
import subprocess
import threading
from pathlib import Path

import pytest
from sqlalchemy import func, select

from portal import clock
from portal.audit.models import AuditEvent
from portal.audit.service import SYSTEM, record
from portal.backup import checks, service, snapshot
from portal.backup.models import BackupRun, BackupStatus
from portal.contracts.documents import read_revision
from portal.contracts.models import Contract, ContractStatus, DocumentRevision
from portal.search.criteria import SearchCriteria
from portal.signing import pades
from portal.signing.service import get_context
from tests.backup.conftest import MASTER_KEY
from tests.conftest import require_tool, reread
from tests.pdfs import make_pdf


def _completed_world(app, world) -> list[int]:
    """Two completed contracts (3 documents and 1), a metadata correction, and a draft."""
    from portal.preservation.service import correct_metadata

    first = world.completed_contract(make_pdf("Agreement", 2), make_pdf("Specification"), make_pdf("Annex", 3))
    second = world.completed_contract(make_pdf("Lease"), counterparty_name="有限会社 岡山印刷",
                                      business_name="広報誌印刷業務")
    world.create_id(business_name="下書きの契約")
    with app.app_context():
        contract = reread(world.session).get(Contract, second)
        correct_metadata(world.session, contract, {"business_name": "広報誌印刷業務（訂正）"}, reason="誤記の訂正",
                         actor=world.staff, now=clock.now())
        world.session.commit()
    return [first, second]


def _only_backup(directory: Path) -> Path:
    [path] = [p for p in directory.iterdir() if p.name.startswith("keiyaku-")]
    return path


def test_a_backup_made_while_the_portal_writes_restores_into_an_empty_instance_and_checks_out(
        app, world, cli, key_file, empty_database, tmp_path):
    contract_ids = _completed_world(app, world)
    stop = threading.Event()
    written = []

    def keep_writing() -> None:  # the portal goes on working during the backup
        factory = app.extensions["portal.session_factory"]
        while not stop.is_set():
            with app.app_context(), factory() as session:
                record(session, actor=SYSTEM, action="test:backup:concurrent-write", n=len(written))
                session.commit()
            written.append(1)

    writer = threading.Thread(target=keep_writing)
    writer.start()
    try:
        result = cli("create", "--key-file", str(key_file))
    finally:
        stop.set()
        writer.join()
    assert result.exit_code == 0, result.output
    assert "読み戻して検証しました: 問題はありません" in result.output
    assert written, "the writer thread never wrote during the backup"
    backup = _only_backup(Path(app.config["BACKUP_DIR"]))

    target = tmp_path / "restored-instance"
    result = cli("restore", backup.name, "--into", str(target), "--database", empty_database,
                 "--key-file", str(key_file))
    assert result.exit_code == 0, result.output
    assert "復元後の確認: すべて問題ありません" in result.output
    assert "pdfsig でも確認しました" in result.output

    # Independently of the command's own checks: the restored portal holds the same contracts, its
    # master key opens the documents, the signatures validate there and in pdfsig, search finds them.
    assert (target / "master_key").read_text() == MASTER_KEY
    restored = checks.restored_app(target, empty_database, {"MASTER_KEY": MASTER_KEY})
    original_counts = {
        "contracts": world.session.scalar(select(func.count()).select_from(Contract)),
        "completed": world.session.scalar(select(func.count()).select_from(Contract)
                                          .where(Contract.status == ContractStatus.COMPLETED)),
    }
    factory = restored.extensions["portal.session_factory"]
    pdfsig = require_tool("pdfsig")
    try:
        with restored.app_context(), factory() as session:
            assert session.scalar(select(func.count()).select_from(Contract)) == original_counts["contracts"] == 3
            revisions = session.scalars(select(DocumentRevision).order_by(DocumentRevision.id.desc())).all()
            latest = revisions[0]
            data = read_revision(latest)
            report = pades.verify(data, context=get_context())
            assert report.is_valid, report
            path = tmp_path / "restored.pdf"
            path.write_bytes(data)
            output = subprocess.run([pdfsig, str(path)], capture_output=True, text=True, check=False).stdout
            assert output.count("Signature is Valid.") >= 2, output
            from portal.search.service import search_contracts

            page = search_contracts(session, SearchCriteria(counterparty="岡山印刷"), actor=checks.contents._auditor())
            assert [c.id for c in page.items] == [contract_ids[1]]
            page = search_contracts(session, SearchCriteria(business_name="訂正"), actor=checks.contents._auditor())
            assert [c.id for c in page.items] == [contract_ids[1]]
            restored_event = session.scalar(select(AuditEvent).where(AuditEvent.action == "system:backup:restored"))
            assert restored_event is not None
            assert restored_event.details["ok"] is True
    finally:
        restored.extensions["portal.engine"].dispose()

    run = reread(world.session).scalar(select(BackupRun))
    assert run.status is BackupStatus.SUCCEEDED
    assert run.verification_ok is True
    assert run.counts["contracts"] == 3
    assert run.counts["completed_contracts"] == 2
    assert run.counts["documents"] == 4
    assert world.session.scalar(select(AuditEvent).where(AuditEvent.action == "system:backup:created"))


def test_without_the_key_nothing_in_the_backup_is_readable(app, world, cli, key_file):
    world.completed_contract(make_pdf("Secret agreement"))
    assert cli("create", "--key-file", str(key_file)).exit_code == 0
    backup = _only_backup(Path(app.config["BACKUP_DIR"]))
    needles = [MASTER_KEY.encode(), b"SQLite format", b"%PDF", "庁舎清掃業務委託".encode(), b"BEGIN", b"KPS1"]
    for part in backup.iterdir():
        content = part.read_bytes()
        for needle in needles:
            assert needle not in content, (part.name, needle)
    header = json.loads((backup / "header.json").read_text())
    assert set(header) == {"format", "version", "name", "created_at", "kdf", "key_check"}


def _backup(app, cli, key_file) -> Path:
    result = cli("create", "--key-file", str(key_file))
    assert result.exit_code == 0, result.output
    return _only_backup(Path(app.config["BACKUP_DIR"]))


def _flip_byte(path: Path, offset: int) -> None:
    data = bytearray(path.read_bytes())
    data[offset] ^= 0x01
    path.write_bytes(bytes(data))


@pytest.mark.parametrize(("damage", "reported"), [
    (lambda b: _flip_byte(b / "files.enc", 200), "files.enc"),
    (lambda b: _flip_byte(b / "database.enc", -5), "database.enc"),
    (lambda b: _flip_byte(b / "manifest.enc", 40), "manifest.enc"),
    (lambda b: (b / "pki.enc").unlink(), "pki.enc（pki）がありません"),
    (lambda b: (b / "secrets.enc").write_bytes((b / "secrets.enc").read_bytes()[:-10]), "secrets.enc"),
], ids=["byte-in-documents", "byte-in-database", "byte-in-manifest", "missing-part", "cut-short"])
def test_a_damaged_backup_is_reported_by_verify_and_refused_by_restore(app, world, cli, key_file, tmp_path,
                                                                      empty_database, damage, reported):
    world.create_id()
    backup = _backup(app, cli, key_file)
    damage(backup)

    result = cli("verify", backup.name, "--key-file", str(key_file))
    assert result.exit_code == 1, result.output
    assert reported in result.output
    assert "復元には使えません" in result.output

    target = tmp_path / "target"
    result = cli("restore", backup.name, "--into", str(target), "--key-file", str(key_file),
                 "--database", empty_database)
    assert result.exit_code == 1, result.output
    assert reported.split("（")[0] in result.output
    assert "復元しませんでした" in result.output
    assert not target.exists() or list(target.iterdir()) == []
    assert snapshot.is_empty_database(empty_database)
    run = reread(world.session).scalar(select(BackupRun))
    assert run.verification_ok is False
    assert reported.split("（")[0] in run.verification_problems


def test_a_wrong_key_is_reported_and_refused(app, world, cli, key_file, tmp_path, empty_database):
    world.create_id()
    backup = _backup(app, cli, key_file)
    wrong = tmp_path / "keys" / "wrong.key"
    wrong.write_text("not the backup passphrase at all\n")

    result = cli("verify", backup.name, "--key-file", str(wrong))
    assert result.exit_code == 1
    assert "バックアップ鍵が違います" in result.output
    target = tmp_path / "target"
    result = cli("restore", backup.name, "--into", str(target), "--database", empty_database,
                 "--key-file", str(wrong))
    assert result.exit_code == 1
    assert "バックアップ鍵が違います" in result.output
    assert not target.exists()


def test_restore_refuses_a_target_that_is_not_empty_unless_forced(app, world, cli, key_file, tmp_path,
                                                                  empty_database):
    world.create_id()
    backup = _backup(app, cli, key_file)
    target = tmp_path / "target"
    args = ("restore", backup.name, "--into", str(target), "--database", empty_database, "--key-file", str(key_file),
            "--skip-signatures")
    assert cli(*args).exit_code == 0

    again = cli(*args)
    assert again.exit_code == 1
    assert "復元先が空ではありません" in again.output
    forced = cli(*args, "--force")
    assert forced.exit_code == 0, forced.output
    assert "すべて問題ありません" in forced.output

    other = tmp_path / "occupied"
    other.mkdir()
    (other / "notes.txt").write_text("someone's files")
    occupied = cli("restore", backup.name, "--into", str(other), "--key-file", str(key_file),
                   "--database", empty_database)
    assert occupied.exit_code == 1
    assert (other / "notes.txt").read_text() == "someone's files"


def test_the_key_must_not_lie_beside_the_backups(app, cli):
    directory = Path(app.config["BACKUP_DIR"])
    directory.mkdir(parents=True)
    inside = directory / "backup.key"
    inside.write_text("a passphrase long enough\n")
    result = cli("create", "--key-file", str(inside))
    assert result.exit_code == 2
    assert "別の場所に保管してください" in result.output
    assert list(directory.iterdir()) == [inside]


def test_a_backup_without_a_key_is_refused(app, cli):
    result = cli("create")
    assert result.exit_code == 2
    assert "バックアップ鍵がありません" in result.output


def test_restore_with_a_broken_document_store_reports_it(app, world, cli, key_file, tmp_path, empty_database):
    """The checks after a restore can fail: a stored document changed before the backup is found."""
    world.completed_contract(make_pdf("Agreement"))
    revision = reread(world.session).scalars(select(DocumentRevision).order_by(DocumentRevision.id.desc())).first()
    stored = Path(app.config["STORAGE_DIR"]) / revision.storage_key[:2] / revision.storage_key
    stored.chmod(0o600)
    _flip_byte(stored, -20)
    backup = _backup(app, cli, key_file)
    result = cli("restore", backup.name, "--into", str(tmp_path / "target"), "--database", empty_database,
                 "--key-file", str(key_file))
    assert result.exit_code == 1, result.output
    assert "復号できません" in result.output
    assert "復元後の確認で問題が見つかりました" in result.output


def test_list_shows_the_backups_and_their_generations(app, world, cli, key_file):
    backup = _backup(app, cli, key_file)
    result = cli("list")
    assert result.exit_code == 0
    assert backup.name in result.output
    assert "日次・月次・年次" in result.output
    assert service.list_backups(Path(app.config["BACKUP_DIR"]))[0].name == backup.name


def test_two_backups_started_in_the_same_second_give_one_backup_and_a_clear_refusal(app, world, key_file):
    world.create_id()
    sources = service.BackupSources.from_config(app.config, app.instance_path)
    directory = Path(app.config["BACKUP_DIR"])
    moment = clock.now()
    outcomes: list[str] = []
    barrier = threading.Barrier(2)

    def create() -> None:
        barrier.wait()
        try:
            service.create_backup(sources, into=directory, secret=key_file.read_bytes().strip(), now=moment)
            outcomes.append("created")
        except service.BackupError as exc:
            outcomes.append(exc.message)

    threads = [threading.Thread(target=create) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(outcomes)[0] == "created"
    assert "がすでにあります" in sorted(outcomes)[1]
    assert [p.name for p in directory.iterdir()] == [_only_backup(directory).name]  # no partial directory left
    _, problems = service.verify_backup(_only_backup(directory), key_file.read_bytes().strip())
    assert problems == []


@pytest.mark.parametrize("name", ["../../etc", "/etc/passwd", "keiyaku-../../x", "keiyaku-2026\x00", "",
                                  "ｋｅｉｙａｋｕ-1"])
def test_hostile_backup_names_are_not_found(app, cli, key_file, name):
    result = cli("verify", name, "--key-file", str(key_file))
    assert result.exit_code == 1
    assert "が見つかりません" in result.output


def test_an_empty_or_unreadable_key_file_is_refused(app, cli, tmp_path):
    empty = tmp_path / "empty.key"
    empty.write_text("\n")
    for key in (empty, tmp_path / "missing.key", tmp_path):
        result = cli("create", "--key-file", str(key))
        assert result.exit_code == 2, result.output
        assert "バックアップ鍵" in result.output
