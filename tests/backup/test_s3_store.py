"""A portal whose documents are in an S3 bucket: the backup holds every object of the bucket, and the
restore brings them back as a local store that the checks read."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

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
