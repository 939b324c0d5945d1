"""Connecting to the store: one SQLAlchemy engine, SQLite or PostgreSQL, plus migrations.

SQLite runs in WAL mode with ``synchronous=FULL`` so that a committed group is on disk before
the exchange acknowledges it (DESIGN §6), and with real ``BEGIN`` transactions so that
migrations and batches are atomic (the sqlite3 module's own transaction handling is not).

A transaction that will write opens with ``begin_write``: on SQLite that is ``BEGIN IMMEDIATE``,
which takes the write lock up front (waiting up to the busy timeout for it). A deferred
transaction that reads first and then writes cannot wait: if another writer committed since
its read, SQLite refuses it at once with "database is locked" (docs/adr/0010).
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from weakref import WeakKeyDictionary

from alembic import command
from alembic.config import Config
from sqlalchemy import Connection, Engine, create_engine, event
from sqlalchemy.engine import make_url
from sqlalchemy.exc import OperationalError
from sqlalchemy.pool import ConnectionPoolEntry

MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"

SQLITE_BUSY_TIMEOUT_MS = 5_000
_BEGIN_MODE = "ballast_sqlite_begin"  # the execution option naming SQLite's BEGIN mode


# Per engine, the check that opens each of its write transactions (the sequencer lease's
# fence, store/sequencer_lease.py): it raises if this process may no longer write, else gives
# the epoch the transaction writes under.
_WRITE_FENCES: WeakKeyDictionary[Engine, Callable[[Connection], int]] = WeakKeyDictionary()
_EPOCH = "ballast_write_epoch"


def fence_writes(engine: Engine, check: Callable[[Connection], int]) -> None:
    """Open every ``begin_write`` transaction on ``engine`` with ``check``."""
    _WRITE_FENCES[engine] = check


@contextmanager
def begin_write(engine: Engine) -> Iterator[Connection]:
    """A transaction that writes: on SQLite it holds the write lock from its first statement;
    on a fenced engine it first passes the fence."""
    with engine.execution_options(**{_BEGIN_MODE: "IMMEDIATE"}).begin() as conn:
        check = _WRITE_FENCES.get(engine)
        conn.info[_EPOCH] = None if check is None else check(conn)
        yield conn


def write_epoch(conn: Connection) -> int | None:
    """The lease epoch this ``begin_write`` transaction writes under (None: no lease)."""
    epoch: int | None = conn.info.get(_EPOCH)
    return epoch


def is_lock_wait(error: BaseException) -> bool:
    """SQLite's busy or locked answer: another writer held the lock past the busy timeout.

    That is contention, not a broken store: the transaction can simply be tried again.
    """
    if not isinstance(error, OperationalError):
        return False
    text = str(error.orig).lower()
    return "database is locked" in text or "database is busy" in text


def normalize_url(url: str) -> str:
    """Pick the psycopg 3 driver for plain ``postgresql://`` (and ``postgres://``) URLs."""
    for prefix in ("postgresql://", "postgres://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix) :]
    return url


class Database:
    """The store's connection settings, engine and schema migrations."""

    def __init__(self, url: str, application_name: str | None = None) -> None:
        """``application_name`` names every PostgreSQL session (a successor that takes the
        sequencer lease over ends this process's sessions by it)."""
        self.url = normalize_url(url)
        parsed = make_url(self.url)
        self.dialect = parsed.get_backend_name()
        if self.dialect == "sqlite":
            database = parsed.database
            path = None
            if database and database != ":memory:" and not database.startswith("file:"):
                path = Path(database)
            self.engine: Engine = create_engine(self.url)
            _configure_sqlite(self.engine, path)
            # The projector's connections: its commits need no fsync of their own (what a
            # crash takes back is projected again from the journal, watermark and all), and
            # the next journal commit's fsync carries them to disk anyway (one WAL).
            self.projection_engine: Engine = create_engine(self.url)
            _configure_sqlite(self.projection_engine, path, synchronous="NORMAL")
        elif self.dialect == "postgresql":
            # pre_ping: a restarted PostgreSQL must not make the next group commit fail.
            args = {"application_name": application_name} if application_name else {}
            self.engine = create_engine(self.url, pool_pre_ping=True, connect_args=args)
            self.projection_engine = self.engine
        else:
            raise ValueError(f"unsupported database URL {parsed.render_as_string()!r}")

    def alembic_config(self) -> Config:
        """An Alembic config built in code: works from an installed package and any cwd."""
        # stdout looked up now: Alembic's default is bound once, at import.
        config = Config(stdout=sys.stdout)
        config.set_main_option("script_location", str(MIGRATIONS_DIR))
        # Percent signs would be read as interpolation by configparser.
        config.set_main_option("sqlalchemy.url", self.url.replace("%", "%%"))
        return config

    def is_current(self) -> bool:
        """Whether the schema is at this version's head (nothing to migrate)."""
        from alembic.runtime.migration import MigrationContext
        from alembic.script import ScriptDirectory

        head = ScriptDirectory.from_config(self.alembic_config()).get_current_head()
        with self.engine.connect() as conn:
            return bool(MigrationContext.configure(conn).get_current_revision() == head)

    def upgrade(self, revision: str = "head") -> None:
        """Run ``alembic upgrade`` to ``revision`` on this database, in one transaction."""
        self._migrate(command.upgrade, revision)

    def downgrade(self, revision: str) -> None:
        """Run ``alembic downgrade`` to ``revision`` (``"base"`` drops everything)."""
        self._migrate(command.downgrade, revision)

    def _migrate(self, step: Any, revision: str) -> None:
        config = self.alembic_config()
        with begin_write(self.engine) as connection:
            config.attributes["connection"] = connection
            step(config, revision)

    def dispose(self) -> None:
        """Close every pooled connection."""
        self.engine.dispose()
        self.projection_engine.dispose()


def private_database_file(path: Path) -> None:
    """Make the SQLite file (and its WAL and shared-memory files) readable by its owner only.

    It holds password and session hashes, encrypted API secrets and every trade. SQLite gives
    the -wal and -shm files the database file's mode, so creating that one 0600 is enough;
    files left by an older version are tightened.
    """
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    os.close(os.open(path, os.O_RDWR | os.O_CREAT, 0o600))
    for name in (path, path.with_name(path.name + "-wal"), path.with_name(path.name + "-shm")):
        if name.exists() and name.stat().st_mode & 0o077:
            os.chmod(name, 0o600)


def _configure_sqlite(engine: Engine, path: Path | None, synchronous: str = "FULL") -> None:
    if path is not None:

        @event.listens_for(engine, "do_connect")
        def _private_file(*_: Any) -> None:
            # Before SQLite opens (and so would create) the file: the first connection makes
            # it, owner-only; nothing is created until something connects.
            private_database_file(path)

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: ConnectionPoolEntry) -> None:
        # Autocommit at the driver level; SQLAlchemy's "begin" below issues BEGIN itself.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        try:
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute(f"PRAGMA synchronous={synchronous}")
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
        finally:
            cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(connection: Any) -> None:
        mode = connection.get_execution_options().get(_BEGIN_MODE, "DEFERRED")
        connection.exec_driver_sql(f"BEGIN {mode}")
