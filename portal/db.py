"""Database: typed declarative Base, one engine per app, one session per request on flask.g.

SQLite is the embedded default (WAL, foreign keys on); PostgreSQL is selected by
PORTAL_DATABASE_URL=postgresql+psycopg://... The schema is created and changed only by alembic.
"""

from __future__ import annotations

import enum
from collections.abc import Callable
from typing import Any

from flask import Flask, current_app, g
from sqlalchemy import Engine, MetaData, create_engine, event, text
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import DeclarativeBase, Session, sessionmaker

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)


def str_enum_type(enum_class: type[enum.StrEnum]) -> Any:
    """StrEnums stored by value as plain strings (no native ENUM: migrations stay simple)."""
    from sqlalchemy import Enum

    return Enum(
        enum_class,
        native_enum=False,
        create_constraint=False,
        length=32,
        values_callable=lambda members: [member.value for member in members],
    )


class DatabaseUnavailable(RuntimeError):
    """The configured database does not answer; the message is one line for the console."""


def make_engine(url: str, **kwargs: Any) -> Engine:
    if url.startswith("sqlite"):
        engine = create_engine(url, connect_args={"timeout": 30}, **kwargs)
        _configure_sqlite(engine)
        return engine
    return create_engine(url, pool_pre_ping=True, **kwargs)


def _configure_sqlite(engine: Engine) -> None:
    # pysqlite opens transactions lazily and breaks SAVEPOINT semantics; take over BEGIN so that
    # transactions (and the per-test savepoints) behave as on PostgreSQL.
    @event.listens_for(engine, "connect")
    def on_connect(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA busy_timeout=30000")
        cursor.close()

    @event.listens_for(engine, "begin")
    def on_begin(connection: Any) -> None:
        # Deferred: readers never wait (WAL). Code that must serialise a read-then-write (a double
        # click on the signing button) starts its transaction with a conditional UPDATE instead.
        connection.exec_driver_sql("BEGIN")


def check_connection(engine: Engine) -> None:
    """Raise DatabaseUnavailable with a one-line reason when the database does not answer."""
    try:
        with engine.connect() as connection:
            connection.execute(text("SELECT 1"))
    except OperationalError as exc:
        reason = str(exc.orig).strip().splitlines()[0] if exc.orig else str(exc)
        safe_url = engine.url.render_as_string(hide_password=True)
        raise DatabaseUnavailable(f"データベースに接続できません ({safe_url}): {reason}") from None


def init_app(app: Flask) -> None:
    engine = make_engine(app.config["DATABASE_URL"])
    app.extensions["portal.engine"] = engine
    factory = sessionmaker(bind=engine, expire_on_commit=False)
    app.extensions.setdefault("portal.session_factory", factory)
    app.teardown_appcontext(_close_session)


def db() -> Session:
    """The session of the current request or app context."""
    if "db_session" not in g:
        factory: Callable[[], Session] = current_app.extensions["portal.session_factory"]
        g.db_session = factory()
    return g.db_session  # type: ignore[no-any-return]


def engine() -> Engine:
    return current_app.extensions["portal.engine"]  # type: ignore[no-any-return]


def _close_session(_exc: BaseException | None) -> None:
    session: Session | None = g.pop("db_session", None)
    if session is not None and not current_app.extensions.get("portal.session_shared"):
        session.close()
