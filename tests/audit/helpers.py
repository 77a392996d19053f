"""Writing audit events, running `flask audit …`, and tampering with the log as an intruder with
database access would (on PostgreSQL as superuser, past the trigger)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from flask import Flask
from sqlalchemy import Connection, Table, select, update
from sqlalchemy.orm import Session

from portal import clock
from portal.audit.models import AuditChainHead, AuditCheckpoint, AuditEvent
from portal.audit.service import Actor, record

EVENTS: Table = AuditEvent.__table__  # type: ignore[assignment]
HEAD: Table = AuditChainHead.__table__  # type: ignore[assignment]
CHECKPOINTS: Table = AuditCheckpoint.__table__  # type: ignore[assignment]


def append_events(app: Flask, count: int, *, per_commit: int = 1, label: str = "event", pause: float = 0) -> None:
    """`count` events, committed `per_commit` at a time, through record() like any feature.

    pause: seconds between commits, so that processes appending at once overlap for long enough.
    """
    factory = app.extensions["portal.session_factory"]
    with app.app_context(), factory() as session:
        for number in range(count):
            record(session, actor=Actor("staff", f"{label}{number}@pref.example.jp"), action="staff:test:event",
                   subject=("contracts", number % 3 + 1), ip="192.0.2.1", user_agent="pytest",
                   now=clock.now() + timedelta(microseconds=number), number=number, label=label)
            if (number + 1) % per_commit == 0:
                session.commit()
                time.sleep(pause)
        session.commit()


@dataclass
class CliResult:
    exit_code: int
    output: str


def flask_audit(app: Flask, *args: str) -> CliResult:
    result = app.test_cli_runner().invoke(args=["audit", *args])
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        raise result.exception
    return CliResult(result.exit_code, result.output)


def chain_rows(session: Session) -> list[Any]:
    session.rollback()
    return list(session.execute(select(EVENTS).order_by(EVENTS.c.chain_seq)))


@contextmanager
def tampering(app: Flask) -> Iterator[Connection]:
    """A connection that writes to the log as the intruder would: SQLite directly, PostgreSQL as
    superuser with triggers off (session_replication_role = replica)."""
    engine = app.extensions["portal.engine"]
    with engine.begin() as connection:
        if engine.dialect.name == "postgresql":
            connection.exec_driver_sql("SET LOCAL session_replication_role = replica")
        yield connection


def edit_details(app: Flask, event_id: int, details: dict[str, Any]) -> None:
    with tampering(app) as connection:
        connection.execute(update(EVENTS).where(EVENTS.c.id == event_id).values(details=details))
