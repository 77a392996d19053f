"""`flask --app app storage gc --dry-run|--delete`: files no row references, older than an hour, listed
or removed (with an audit event); the files rows hold are never touched."""

from __future__ import annotations

import os
import time
from pathlib import Path

from sqlalchemy import select

from portal.audit.models import AuditEvent
from portal.storage import get_store
from tests.pdfs import make_pdf


def _age(app, key: str, hours: float) -> Path:
    path = Path(app.config["STORAGE_DIR"]) / key[:2] / key
    past = time.time() - hours * 3600
    os.utime(path, (past, past))
    return path


def test_gc_lists_then_removes_only_old_unreferenced_files(app, world):
    contract_id = world.create_id()
    assert world.upload(contract_id, (make_pdf("kept"), "kept.pdf")).status_code == 200
    kept = world.contract(contract_id).documents[0].original
    with app.app_context():
        old = get_store().put(b"left by a killed completion", owner="contract/999/certificate").key
        young = get_store().put(b"an upload under way", owner="contract/999/certificate").key
    kept_path, old_path, young_path = _age(app, kept.storage_key, 5), _age(app, old, 2), _age(app, young, 0.5)
    runner = app.test_cli_runner()

    listed = runner.invoke(args=["storage", "gc", "--dry-run"])
    assert listed.exit_code == 0, listed.output
    assert old in listed.output
    assert young not in listed.output
    assert kept.storage_key not in listed.output
    assert "1 件" in listed.output
    assert old_path.exists()

    deleted = runner.invoke(args=["storage", "gc", "--delete"])
    assert deleted.exit_code == 0, deleted.output
    assert "1 件を削除しました。" in deleted.output
    assert not old_path.exists()
    assert kept_path.exists()
    assert young_path.exists()
    world.refresh()
    [event] = world.session.scalars(select(AuditEvent).where(AuditEvent.action == "system:storage:gc-deleted"))
    assert event.details["names"] == [old]


def test_gc_needs_a_mode(app):
    result = app.test_cli_runner().invoke(args=["storage", "gc"])
    assert result.exit_code == 2
    assert "--dry-run" in result.output
