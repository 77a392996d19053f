"""Migration 0018 chains the events already logged, in id order, so that the old log verifies."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest
from alembic import command
from sqlalchemy import Engine, create_engine, make_url, select, text
from sqlalchemy.orm import Session

from portal.audit import chain
from portal.db import make_engine
from portal.migrate import alembic_config
from tests.audit.helpers import EVENTS
from tests.conftest import POSTGRES_URL

INSERT = text("INSERT INTO audit_events (occurred_at, action, actor_type, actor_label, subject_type, subject_id,"
              " ip, user_agent, details) VALUES (:at, :action, 'staff', 'a@pref.example.jp', 'contracts', '1',"
              " '192.0.2.1', '', :details)")


@pytest.fixture(params=["sqlite", "postgresql"] if POSTGRES_URL else ["sqlite"])
def old_engine(request: pytest.FixtureRequest, tmp_path) -> Iterator[Engine]:  # type: ignore[no-untyped-def]
    if request.param == "sqlite":
        engine = make_engine(f"sqlite:///{tmp_path / 'old.sqlite3'}")
        yield engine
        engine.dispose()
        return
    admin = create_engine(make_url(POSTGRES_URL), isolation_level="AUTOCOMMIT")
    name = f"keiyaku_migration_{uuid.uuid4().hex[:8]}"
    with admin.connect() as connection:
        connection.execute(text(f'CREATE DATABASE "{name}"'))
    engine = make_engine(make_url(POSTGRES_URL).set(database=name).render_as_string(hide_password=False))
    yield engine
    engine.dispose()
    with admin.connect() as connection:
        connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


def test_existing_events_are_chained_in_id_order_and_verify(old_engine: Engine) -> None:
    with old_engine.begin() as connection:
        command.upgrade(alembic_config(connection), "0017_outbox_masked_links")
        for number in range(5):
            connection.execute(INSERT, {"at": f"2026-11-{number + 1:02d} 00:00:00.{number:06d}",
                                        "action": "staff:contract:sent",
                                        "details": f'{{"number": {number}, "名前": "髙橋"}}'})
    with old_engine.begin() as connection:
        command.upgrade(alembic_config(connection), "0018_audit_chain")

    with Session(old_engine) as session:
        rows = list(session.execute(select(EVENTS).order_by(EVENTS.c.id)))
        assert [row.chain_seq for row in rows] == [1, 2, 3, 4, 5]
        assert chain.head(session) == (5, rows[-1].event_hash)
        verification = chain.verify(session)
    assert verification.is_ok, verification.summary
    assert verification.events == 5
