"""On PostgreSQL the portal's own connection cannot UPDATE or DELETE audit rows or checkpoints: a
trigger refuses it (filling a new row's chain columns once, at commit, is the one update allowed;
deleting, on the retention path only). On SQLite nothing refuses, and the chain detects the change."""

from __future__ import annotations

from typing import Any

import pytest
from flask import Flask
from sqlalchemy import delete, update
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session

from tests.audit.helpers import CHECKPOINTS, EVENTS, append_events, chain_rows, flask_audit

STATEMENTS = {
    "details": update(EVENTS).values(details={"edited": True}),
    "hash": update(EVENTS).values(event_hash="0" * 64),
    "position": update(EVENTS).values(chain_seq=EVENTS.c.chain_seq + 100),
    "delete": delete(EVENTS).where(EVENTS.c.chain_seq == 2),
    "checkpoint-update": update(CHECKPOINTS).values(head_hash="0" * 64),
    "checkpoint-delete": delete(CHECKPOINTS),
    "update-under-the-retention-flag": update(EVENTS).values(details={}),
}


@pytest.mark.parametrize("name", STATEMENTS)
def test_changes_are_refused_on_postgresql_and_detected_on_sqlite(app: Flask, session: Session, name: str) -> None:
    append_events(app, 3)
    assert flask_audit(app, "checkpoint").exit_code == 0
    engine = app.extensions["portal.engine"]

    def change(connection: Any) -> None:
        if name.endswith("retention-flag") and engine.dialect.name == "postgresql":
            connection.exec_driver_sql("SELECT set_config('portal.audit_retention', 'on', true)")
        connection.execute(STATEMENTS[name])

    if engine.dialect.name == "postgresql":
        with pytest.raises(DBAPIError, match="append-only"), engine.begin() as connection:
            change(connection)
        assert len(chain_rows(session)) == 4
        assert flask_audit(app, "verify").exit_code == 0
    else:
        with engine.begin() as connection:
            change(connection)
        assert flask_audit(app, "verify").exit_code == 1
