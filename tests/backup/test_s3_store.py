"""A portal whose documents are in an S3 bucket: the backup holds every object of the bucket, and the
restore brings them back as a local store that the checks read."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from portal.backup.snapshot import is_empty_database
from tests.backup.conftest import MASTER_KEY
from tests.pdfs import make_pdf


@pytest.fixture
def app_config(pki_dir: str, tmp_path: Path, s3_server: Any) -> dict[str, Any]:
    return {"PKI_DIR": pki_dir, "AGENCY_NAME": "岡山県", "CONTACT_PHONE": "086-000-0000", "MASTER_KEY": MASTER_KEY,
            "BACKUP_DIR": str(tmp_path / "backups"), "BACKUP_TIME": "", **s3_server.settings(s3_server.new_bucket())}


def test_documents_in_an_s3_bucket_are_backed_up_and_restored(app, world, cli, key_file, empty_database, tmp_path):
    world.completed_contract(make_pdf("Agreement in a bucket", 2))
    assert not Path(app.config["STORAGE_DIR"]).exists()
    result = cli("create", "--key-file", str(key_file))
    assert result.exit_code == 0, result.output
    [backup] = Path(app.config["BACKUP_DIR"]).iterdir()
    target = tmp_path / "restored"
    result = cli("restore", backup.name, "--into", str(target), "--database", empty_database,
                 "--key-file", str(key_file))
    assert result.exit_code == 0, result.output
    assert "すべて問題ありません" in result.output
    stored = [p for p in (target / "files").rglob("*") if p.is_file()]
    assert len(stored) >= 3  # the original, two signed revisions, the certificate, page images


def _objects(s3_server: Any, bucket: str) -> dict[str, bytes]:
    client = s3_server.client()
    listed = client.list_objects_v2(Bucket=bucket).get("Contents", [])
    return {item["Key"]: client.get_object(Bucket=bucket, Key=item["Key"])["Body"].read() for item in listed}


def test_a_restore_into_the_configured_store_writes_the_documents_to_a_new_bucket(
        app, world, cli, key_file, empty_database, tmp_path, s3_server):
    world.completed_contract(make_pdf("Agreement for the new bucket", 2))
    source = _objects(s3_server, app.config["STORAGE_S3_BUCKET"])
    result = cli("create", "--key-file", str(key_file))
    assert result.exit_code == 0, result.output
    [backup] = Path(app.config["BACKUP_DIR"]).iterdir()
    new_bucket = s3_server.new_bucket()
    app.config["STORAGE_S3_BUCKET"] = new_bucket  # the restoring installation is configured with the new bucket
    target = tmp_path / "restored"
    result = cli("restore", backup.name, "--into", str(target), "--database", empty_database,
                 "--key-file", str(key_file), "--store", "configured")
    assert result.exit_code == 0, result.output
    assert f"S3 バケット {new_bucket}" in result.output
    assert "すべて問題ありません" in result.output  # the checks read every document from the new bucket
    assert _objects(s3_server, new_bucket) == source
    assert not (target / "files").exists()


def test_a_restore_into_a_store_that_holds_other_documents_is_refused_and_changes_nothing(
        app, world, cli, key_file, empty_database, tmp_path, s3_server):
    world.completed_contract(make_pdf("Agreement", 1))
    result = cli("create", "--key-file", str(key_file))
    assert result.exit_code == 0, result.output
    [backup] = Path(app.config["BACKUP_DIR"]).iterdir()
    source = _objects(s3_server, app.config["STORAGE_S3_BUCKET"])
    busy = s3_server.new_bucket()
    name = sorted(source)[0]
    s3_server.client().put_object(Bucket=busy, Key=name, Body=b"another installation's object")
    app.config["STORAGE_S3_BUCKET"] = busy
    target = tmp_path / "restored"
    args = ("restore", backup.name, "--into", str(target), "--database", empty_database, "--key-file",
            str(key_file), "--store", "configured")
    refused = cli(*args)
    assert refused.exit_code != 0
    assert "保存先が空ではありません" in refused.output
    forced = cli(*args, "--force")
    assert forced.exit_code != 0
    assert "同じ名前で内容の違う文書が 1 件あります" in forced.output
    assert _objects(s3_server, busy) == {name: b"another installation's object"}
    assert is_empty_database(empty_database)  # the documents are put first: a refusal leaves no database behind
