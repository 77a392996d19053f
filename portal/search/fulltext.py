"""Substring search on the normalised counterparty name that does not scan every contract.

PostgreSQL: a pg_trgm GIN index, used by `LIKE '%…%'` for needles of three characters or more.
SQLite: an FTS5 table with the trigram tokenizer over contracts.counterparty_name_normalized
(external content, kept in sync by triggers); needles of three characters or more are looked up
there, shorter ones fall back to LIKE (the trigram index cannot serve them, and they are rare).

ensure() runs after every migration: SQLite drops a table's triggers when alembic's batch mode
recreates the table, so a later migration of `contracts` must not silently stop the sync.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import ColumnElement, Connection, column, select, table, text
from sqlalchemy.orm import Session
from sqlalchemy.sql import literal_column

FTS_TABLE = "contracts_fts"
TRIGRAM_INDEX = "ix_contracts_counterparty_trgm"
UNMANAGED = (FTS_TABLE, TRIGRAM_INDEX)  # alembic's model comparison leaves these alone

_SQLITE_TRIGGERS = {
    "contracts_fts_insert": """CREATE TRIGGER IF NOT EXISTS contracts_fts_insert AFTER INSERT ON contracts BEGIN
        INSERT INTO contracts_fts(rowid, counterparty_name_normalized)
        VALUES (new.id, new.counterparty_name_normalized);
    END""",
    "contracts_fts_delete": """CREATE TRIGGER IF NOT EXISTS contracts_fts_delete AFTER DELETE ON contracts BEGIN
        INSERT INTO contracts_fts(contracts_fts, rowid, counterparty_name_normalized)
        VALUES ('delete', old.id, old.counterparty_name_normalized);
    END""",
    "contracts_fts_update": """CREATE TRIGGER IF NOT EXISTS contracts_fts_update
        AFTER UPDATE OF counterparty_name_normalized ON contracts BEGIN
        INSERT INTO contracts_fts(contracts_fts, rowid, counterparty_name_normalized)
        VALUES ('delete', old.id, old.counterparty_name_normalized);
        INSERT INTO contracts_fts(rowid, counterparty_name_normalized)
        VALUES (new.id, new.counterparty_name_normalized);
    END""",
}


def is_unmanaged(name: str | None) -> bool:
    return bool(name) and str(name).startswith(UNMANAGED)


def ensure(connection: Connection) -> None:
    """Create the substring index (and on SQLite the triggers) when missing; rebuild what was out of sync."""
    if connection.dialect.name == "postgresql":
        connection.execute(text("CREATE EXTENSION IF NOT EXISTS pg_trgm"))
        connection.execute(text(f"CREATE INDEX IF NOT EXISTS {TRIGRAM_INDEX} ON contracts "
                                "USING gin (counterparty_name_normalized gin_trgm_ops)"))
        return
    if connection.dialect.name != "sqlite":
        return
    existing = {row[0] for row in connection.execute(text(
        "SELECT name FROM sqlite_master WHERE type IN ('table', 'trigger') AND name LIKE 'contracts_fts%'"))}
    missing = FTS_TABLE not in existing or any(name not in existing for name in _SQLITE_TRIGGERS)
    if not missing:
        return
    connection.execute(text("CREATE VIRTUAL TABLE IF NOT EXISTS contracts_fts USING fts5("
                            "counterparty_name_normalized, content='contracts', content_rowid='id', "
                            "tokenize='trigram')"))
    for statement in _SQLITE_TRIGGERS.values():
        connection.execute(text(statement))
    connection.execute(text("INSERT INTO contracts_fts(contracts_fts) VALUES ('rebuild')"))


def refresh_statistics(session: Session) -> None:
    """Daily: let the query planner know how the contracts are distributed now, so that it keeps
    choosing the date, department and substring indexes as the table grows."""
    if session.get_bind().dialect.name == "sqlite":
        session.execute(text("PRAGMA optimize"))
    else:
        session.execute(text("ANALYZE contracts"))


def drop(connection: Connection) -> None:
    if connection.dialect.name == "postgresql":
        connection.execute(text(f"DROP INDEX IF EXISTS {TRIGRAM_INDEX}"))
        return
    for name in _SQLITE_TRIGGERS:
        connection.execute(text(f"DROP TRIGGER IF EXISTS {name}"))
    connection.execute(text(f"DROP TABLE IF EXISTS {FTS_TABLE}"))


def name_contains(id_column: Any, name_column: Any, needle: str, dialect: str) -> ColumnElement[bool]:
    """`name_column` contains `needle` (both normalised), through the substring index where it can."""
    if dialect == "sqlite" and len(needle) >= 3:
        fts = table(FTS_TABLE, column("rowid"))
        phrase = '"' + needle.replace('"', '""') + '"'
        return id_column.in_(select(fts.c.rowid).where(literal_column(FTS_TABLE).op("MATCH")(phrase)))
    escaped = needle.replace("/", "//").replace("%", "/%").replace("_", "/_")
    return name_column.like(f"%{escaped}%", escape="/")
