"""Substring search on the normalised counterparty name that does not scan every contract.

PostgreSQL: a pg_trgm GIN index, used by `LIKE '%…%'` for needles of three characters or more.
SQLite: an FTS5 table with the trigram tokenizer over contracts.counterparty_name_normalized
(external content, kept in sync by triggers); needles of three characters or more are looked up
there, shorter ones fall back to LIKE (the trigram index cannot serve them, and they are rare).

Before either, a needle is looked up in search_counterparty_names (portal/search/models.py), the
distinct normalised names, kept by triggers on contracts here: the contracts carry a few ten
thousand names at most, so any needle, two characters too, is matched there, and the contracts
are then taken by their name (names_containing(), service._counterparty_condition()).

ensure() runs after every migration: SQLite drops a table's triggers when alembic's batch mode
recreates the table, so a later migration of `contracts` must not silently stop the sync.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import ColumnElement, Connection, column, inspect, select, table, text
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


NAMES_TABLE = "search_counterparty_names"
_SQLITE_NAME_TRIGGERS = {
    "search_counterparty_names_insert": """CREATE TRIGGER IF NOT EXISTS search_counterparty_names_insert
        AFTER INSERT ON contracts BEGIN
        INSERT OR IGNORE INTO search_counterparty_names(name_normalized) VALUES (new.counterparty_name_normalized);
    END""",
    "search_counterparty_names_update": """CREATE TRIGGER IF NOT EXISTS search_counterparty_names_update
        AFTER UPDATE OF counterparty_name_normalized ON contracts BEGIN
        INSERT OR IGNORE INTO search_counterparty_names(name_normalized) VALUES (new.counterparty_name_normalized);
    END""",
}
_POSTGRES_NAME_TRIGGER = (
    """CREATE OR REPLACE FUNCTION search_counterparty_names_add() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        INSERT INTO search_counterparty_names(name_normalized) VALUES (NEW.counterparty_name_normalized)
        ON CONFLICT (name_normalized) DO NOTHING;
        RETURN NULL;
    END $$""",
    """CREATE OR REPLACE TRIGGER search_counterparty_names_add
        AFTER INSERT OR UPDATE OF counterparty_name_normalized ON contracts
        FOR EACH ROW EXECUTE FUNCTION search_counterparty_names_add()""",
)


def is_unmanaged(name: str | None) -> bool:
    return bool(name) and str(name).startswith(UNMANAGED)


def ensure(connection: Connection) -> None:
    """Create the substring index (and on SQLite the triggers) when missing; rebuild what was out of sync."""
    if inspect(connection).has_table(NAMES_TABLE):  # from 0032_search_names on
        ensure_name_triggers(connection)
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


def ensure_name_triggers(connection: Connection) -> None:
    """Keep search_counterparty_names holding every name a contract is given; when a trigger was
    missing (SQLite's batch mode drops them with the table), add the names written meanwhile."""
    if connection.dialect.name == "postgresql":
        if connection.scalar(text("SELECT count(*) FROM pg_trigger WHERE tgname = 'search_counterparty_names_add'")):
            return
        for statement in _POSTGRES_NAME_TRIGGER:
            connection.execute(text(statement))
    elif connection.dialect.name == "sqlite":
        existing = {row[0] for row in connection.execute(text(
            "SELECT name FROM sqlite_master WHERE type = 'trigger' AND name LIKE 'search_counterparty_names%'"))}
        if all(name in existing for name in _SQLITE_NAME_TRIGGERS):
            return
        for statement in _SQLITE_NAME_TRIGGERS.values():
            connection.execute(text(statement))
    else:
        return
    connection.execute(text(
        "INSERT INTO search_counterparty_names(name_normalized) SELECT DISTINCT c.counterparty_name_normalized "
        "FROM contracts c WHERE NOT EXISTS (SELECT 1 FROM search_counterparty_names n "
        "WHERE n.name_normalized = c.counterparty_name_normalized)"))


def drop_name_triggers(connection: Connection) -> None:
    if connection.dialect.name == "postgresql":
        connection.execute(text("DROP TRIGGER IF EXISTS search_counterparty_names_add ON contracts"))
        connection.execute(text("DROP FUNCTION IF EXISTS search_counterparty_names_add()"))
        return
    for name in _SQLITE_NAME_TRIGGERS:
        connection.execute(text(f"DROP TRIGGER IF EXISTS {name}"))


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
