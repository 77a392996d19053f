"""Database: typed declarative Base, one engine per app, one session per request on flask.g.

SQLite is the embedded default (WAL, foreign keys on); PostgreSQL is selected by
PORTAL_DATABASE_URL=postgresql+psycopg://... The schema is created and changed only by alembic.
"""

from __future__ import annotations

import enum
import logging
import os
import random
import sqlite3
import time
from collections.abc import Callable
from typing import Any, TypeVar

from flask import Flask, current_app, g, has_request_context
from sqlalchemy import Engine, MetaData, create_engine, event, make_url, text
from sqlalchemy.exc import DBAPIError, OperationalError
from sqlalchemy.orm import DeclarativeBase, Session, sessionmaker

log = logging.getLogger(__name__)
T = TypeVar("T")

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
        _private_sqlite_file(make_url(url).database)
        engine = create_engine(url, connect_args={"timeout": 30}, **kwargs)
        _configure_sqlite(engine)
        return engine
    return create_engine(url, pool_pre_ping=True, **kwargs)


def _private_sqlite_file(path: str | None) -> None:
    """The database holds personal data: create its file 0600 (like the secrets in instance/), before
    SQLite creates it with the umask, and take group and other access away from an existing one.

    SQLite gives its -wal and -shm files the mode of the database file.
    """
    if not path or path == ":memory:" or path.startswith("file:"):
        return
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        for name in (path, f"{path}-wal", f"{path}-shm"):
            try:
                mode = os.stat(name).st_mode & 0o777
            except FileNotFoundError:
                continue
            if mode & 0o077:
                try:
                    os.chmod(name, mode & 0o700)
                except PermissionError:
                    log.warning("cannot restrict the permissions of %s (mode %o)", name, mode)
        return
    except FileNotFoundError:
        return  # its directory does not exist: SQLite will say so when connecting
    os.close(fd)


# How a SQLite transaction began, kept in the DBAPI connection's info by _configure_sqlite.
_TX_KEY = "portal.sqlite_tx"
_TX_PENDING, _TX_READ, _TX_WRITE = "pending", "read", "write"
_WRITE_VERBS = ("INSERT", "UPDATE", "DELETE", "REPLACE", "SAVEPOINT", "CREATE", "DROP", "ALTER")


def _configure_sqlite(engine: Engine) -> None:
    """Run SQLite the way production frameworks do (Django 5.1 IMMEDIATE mode, Rails 8).

    pysqlite's own transaction handling is switched off and the BEGIN is ours, issued lazily
    before the transaction's first statement:
    - a transaction whose first statement writes (or takes a row lock, or opens a savepoint)
      begins IMMEDIATE: it takes the write lock at once, and concurrent writers wait their turn
      (busy_timeout) instead of failing;
    - a transaction that starts by reading begins deferred: in WAL mode it never blocks anyone.
      When such a transaction then writes, it commits its read-only part and begins IMMEDIATE
      before the write. SQLite would otherwise have to upgrade the read snapshot to a write lock,
      which it refuses at once (`database is locked`, busy_timeout cannot help) whenever another
      connection committed in between: that is what a page view writing its audit row after
      reading the page used to hit. The reads before the first write and the statements after it
      may thus see different snapshots, exactly as under PostgreSQL's READ COMMITTED, which the
      services are written for (conditional updates, SELECT ... FOR UPDATE).
    """

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
        connection.connection.info[_TX_KEY] = _TX_PENDING

    @event.listens_for(engine, "commit")
    @event.listens_for(engine, "rollback")
    def on_end(connection: Any) -> None:
        connection.connection.info.pop(_TX_KEY, None)

    @event.listens_for(engine, "before_cursor_execute")
    def before_execute(connection: Any, cursor: Any, statement: str, _params: Any, context: Any,
                       _executemany: bool) -> None:
        info = connection.connection.info
        state = info.get(_TX_KEY)
        if state is None or state == _TX_WRITE:
            return
        writes = _is_write(statement, context)
        raw = connection.connection.dbapi_connection
        if state == _TX_PENDING:
            raw.execute("BEGIN IMMEDIATE" if writes else "BEGIN")
            info[_TX_KEY] = _TX_WRITE if writes else _TX_READ
        elif writes:
            raw.execute("COMMIT")  # nothing written yet: this only ends the read snapshot
            raw.execute("BEGIN IMMEDIATE")
            info[_TX_KEY] = _TX_WRITE


def _is_write(statement: str, context: Any) -> bool:
    if statement.lstrip()[:9].upper().startswith(_WRITE_VERBS):
        return True
    if statement.lstrip()[:4].upper() == "WITH" and any(verb in statement.upper() for verb in _WRITE_VERBS[:4]):
        return True
    # SQLite has no SELECT ... FOR UPDATE; a statement that asked for one wants the write lock.
    compiled = getattr(context, "compiled", None)
    return getattr(getattr(compiled, "statement", None), "_for_update_arg", None) is not None


def check_connection(engine: Engine) -> None:
    """Raise DatabaseUnavailable with a one-line reason when the database does not answer."""
    try:
        with engine.connect() as connection:
            connection.execute(text("SELECT 1"))
    except OperationalError as exc:
        reason = str(exc.orig).strip().splitlines()[0] if exc.orig else str(exc)
        safe_url = engine.url.render_as_string(hide_password=True)
        raise DatabaseUnavailable(f"データベースに接続できません ({safe_url}): {reason}") from None


def is_transient(exc: BaseException) -> bool:
    """A failure that trying the same transaction again can cure: a lock wait that ran out
    (SQLite `database is locked`), a PostgreSQL serialization failure or deadlock."""
    if not isinstance(exc, OperationalError | DBAPIError):
        return False
    orig = exc.orig
    if isinstance(orig, sqlite3.OperationalError):
        text_ = str(orig).lower()
        return "locked" in text_ or "busy" in text_
    sqlstate = getattr(orig, "sqlstate", None)
    return sqlstate in {"40001", "40P01", "55P03"}


def run_transaction(factory: Callable[[], Session], work: Callable[[Session], T], *, attempts: int = 5) -> T:
    """Run work(session) in a fresh session and commit; a transient failure rolls back and tries again."""
    for attempt in range(1, attempts + 1):
        with factory() as session:
            try:
                result = work(session)
                session.commit()
                return result
            except Exception as exc:
                session.rollback()
                if attempt == attempts or not is_transient(exc):
                    raise
                log.warning("transient database error, retrying (%s/%s): %s", attempt, attempts,
                            getattr(exc, "orig", exc))
        time.sleep(_backoff(attempt))
    raise AssertionError("unreachable")


def _backoff(attempt: int) -> float:
    return min(0.05 * 2**attempt, 1.0) * (0.5 + random.random())  # noqa: S311 (jitter, not a secret)


def init_app(app: Flask) -> None:
    engine = make_engine(app.config["DATABASE_URL"])
    app.extensions["portal.engine"] = engine
    factory = sessionmaker(bind=engine, expire_on_commit=False)
    event.listen(factory, "after_commit", _note_commit)
    app.extensions.setdefault("portal.session_factory", factory)
    app.teardown_appcontext(_close_session)
    _retry_requests_on_transient_errors(app)


# The answer when every retry failed, set by portal.errors: the Japanese 503 page.
TRANSIENT_FAILURE_PAGE = "portal.transient_failure_page"


def _retry_requests_on_transient_errors(app: Flask) -> None:
    """A request hit by a transient database error is run again with a fresh session.

    With IMMEDIATE write transactions this is a safety net only (a lock wait longer than
    busy_timeout, a PostgreSQL deadlock). The request's form and files are parsed once and kept
    by Werkzeug, so the second run sees the same input; whatever the first run did was rolled back.
    When every attempt fails, the person gets a Japanese 503 asking to try again, never a 500.
    """
    dispatch = app.full_dispatch_request
    attempts = int(app.config.get("DATABASE_RETRY_ATTEMPTS", 4))

    def full_dispatch_request() -> Any:
        from flask import request

        for attempt in range(1, attempts + 1):
            try:
                return dispatch()
            except Exception as exc:
                if not is_transient(exc):
                    raise
                _discard_session()
                log.warning("transient database error on %s %s (%s/%s): %s", request.method, request.path,
                            attempt, attempts, getattr(exc, "orig", exc))
                for upload in request.files.values():
                    upload.stream.seek(0)
                if attempt < attempts:
                    time.sleep(_backoff(attempt))
        give_up = app.extensions.get(TRANSIENT_FAILURE_PAGE)
        response = app.make_response(give_up() if give_up else ("しばらくしてからもう一度お試しください。", 503))
        response.headers["Retry-After"] = "2"
        return app.finalize_request(response)

    app.full_dispatch_request = full_dispatch_request  # type: ignore[method-assign]


def _note_commit(_session: Session) -> None:
    if has_request_context():
        g.portal_committed = True


def committed_in_request() -> bool:
    """Whether this request has committed anything yet (an error page may then not say "nothing changed")."""
    return bool(g.get("portal_committed"))


def reset_request_session() -> None:
    """Roll back the request's session after a failure, so that rendering the error page can query again.

    A session that cannot even roll back (the connection is gone) is dropped; the next db() opens a new one.
    """
    session: Session | None = g.get("db_session")
    if session is None:
        return
    try:
        session.rollback()
    except Exception:
        log.warning("rollback after a failed request failed; the session is discarded", exc_info=True)
        g.pop("db_session", None)
        try:
            session.close()
        except Exception:
            log.debug("closing the discarded session failed", exc_info=True)


def _discard_session() -> None:
    session: Session | None = g.pop("db_session", None)
    if session is not None:
        try:
            session.rollback()
        finally:
            session.close()


def db() -> Session:
    """The session of the current request or app context."""
    if "db_session" not in g:
        factory: Callable[[], Session] = current_app.extensions["portal.session_factory"]
        g.db_session = factory()
    return g.db_session


def engine() -> Engine:
    return current_app.extensions["portal.engine"]


def _close_session(_exc: BaseException | None) -> None:
    session: Session | None = g.pop("db_session", None)
    if session is not None:
        session.close()
