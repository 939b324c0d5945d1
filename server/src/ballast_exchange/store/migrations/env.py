"""Alembic environment for the Ballast store.

``Database.upgrade`` passes its own connection in ``config.attributes["connection"]`` so that
migrations run with the same engine settings (SQLite pragmas, the psycopg driver) as the
application. Run standalone, it connects to ``sqlalchemy.url`` from the Alembic config.
"""

from __future__ import annotations

from alembic import context
from sqlalchemy import Connection

from ballast_exchange.store.schema import metadata


def _run(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=metadata,
        # SQLite cannot ALTER most things in place: batch mode copies the table instead.
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online() -> None:
    connection = context.config.attributes.get("connection")
    if connection is not None:
        _run(connection)
        return
    from ballast_exchange.store.database import Database, begin_write

    database = Database(context.config.get_main_option("sqlalchemy.url") or "")
    try:
        with begin_write(database.engine) as conn:
            _run(conn)
    finally:
        database.dispose()


if context.is_offline_mode():
    context.configure(
        url=context.config.get_main_option("sqlalchemy.url"),
        target_metadata=metadata,
        literal_binds=True,
    )
    with context.begin_transaction():
        context.run_migrations()
else:
    run_migrations_online()
