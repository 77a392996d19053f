"""Alembic environment. The URL comes from the app's settings, or a connection handed in by tests."""

from __future__ import annotations

from alembic import context

import portal.models  # noqa: F401 - registers every table on Base.metadata
from portal.db import Base

config = context.config
target_metadata = Base.metadata


def run_migrations_online() -> None:
    connection = config.attributes.get("connection")
    if connection is not None:
        _run(connection)
        return
    from portal.db import make_engine

    url = config.get_main_option("sqlalchemy.url")
    if not url:
        from portal import create_app

        url = create_app({"OUTBOX_WORKER": False}).config["DATABASE_URL"]
    engine = make_engine(url)
    with engine.connect() as conn:
        _run(conn)
        conn.commit()
    engine.dispose()


def _managed(name, type_, parent_names) -> bool:  # type: ignore[no-untyped-def]
    from portal.search import fulltext

    return not fulltext.is_unmanaged(name)


def _run(connection) -> None:  # type: ignore[no-untyped-def]
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
        include_name=_managed,
    )
    with context.begin_transaction():
        context.run_migrations()


if context.is_offline_mode():
    raise SystemExit("offline migrations are not supported; run against a database")
run_migrations_online()
