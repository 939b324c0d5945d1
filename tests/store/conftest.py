"""Every store test runs twice: on a SQLite file and on the real PostgreSQL.

PostgreSQL isolation: one throwaway database per test session (``ballast_test_<random>``,
dropped at the end, with ``synchronous_commit`` off since nothing in it must survive) and,
inside it, a schema per database fixture, selected through ``search_path``. Tests that write
get ``db`` (emptied before each test), read-only tests share a ``module_db``, and migration
tests get an empty ``db_url`` to migrate from scratch.
"""

from __future__ import annotations

import os
import secrets
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from sqlalchemy.engine import make_url

from ballast_exchange.store import Database
from ballast_exchange.store.schema import metadata
from tests.services import require_postgres

BACKENDS = ["sqlite", "postgresql"]


@pytest.fixture(scope="session")
def postgres_database() -> Iterator[str]:
    """The URL of a database created for this session (dropped afterwards)."""
    admin_url = require_postgres()
    name = f"ballast_test_{secrets.token_hex(6)}"
    with psycopg.connect(admin_url, autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
        admin.execute(f'ALTER DATABASE "{name}" SET synchronous_commit = off')
    try:
        yield make_url(admin_url).set(database=name).render_as_string(hide_password=False)
    finally:
        with psycopg.connect(admin_url, autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


# SQLite files go to tmpfs where there is one: with synchronous=FULL every commit is an fsync,
# and on a busy disk those dominated the suite's time without testing anything of ours.
_TMPFS = Path("/dev/shm")


def _sqlite_dir(directory: Path) -> Path:
    if _TMPFS.is_dir() and os.access(_TMPFS, os.W_OK):
        return Path(tempfile.mkdtemp(prefix="ballast-store-", dir=_TMPFS))
    return directory


def _empty_database_url(request: pytest.FixtureRequest, backend: str, directory: Path) -> str:
    if backend == "sqlite":
        path = _sqlite_dir(directory)
        if path != directory:
            request.addfinalizer(lambda: shutil.rmtree(path, ignore_errors=True))
        return f"sqlite:///{path / 'store' / 'ballast.db'}"
    base = request.getfixturevalue("postgres_database")
    # Schemas are left for the session's DROP DATABASE: cheaper than dropping each one.
    schema = f"t_{secrets.token_hex(6)}"
    with psycopg.connect(base, autocommit=True) as conn:
        conn.execute(f'CREATE SCHEMA "{schema}"')
    url = make_url(base).update_query_dict({"options": f"-csearch_path={schema}"})
    return url.render_as_string(hide_password=False)


@pytest.fixture(params=BACKENDS)
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """An empty database (no tables) on each backend."""
    return _empty_database_url(request, request.param, tmp_path)


@pytest.fixture(scope="session", params=BACKENDS)
def session_db(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Database]:
    """One migrated database per backend for the whole session (see ``db``)."""
    url = _empty_database_url(request, request.param, tmp_path_factory.mktemp("session_db"))
    database = Database(url)
    database.upgrade()
    try:
        yield database
    finally:
        database.dispose()


@pytest.fixture
def db(session_db: Database) -> Database:
    """A migrated database holding no rows, for one test.

    Emptying the session's database is much cheaper than migrating a new one per test; the
    migrations themselves are tested from scratch in ``test_migrations``.
    """
    with session_db.engine.begin() as conn:
        for table in reversed(metadata.sorted_tables):  # children first: foreign keys hold
            conn.execute(table.delete())
    return session_db


@pytest.fixture(scope="module", params=BACKENDS)
def module_db(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Database]:
    """A migrated database shared by a module's read-only tests."""
    url = _empty_database_url(request, request.param, tmp_path_factory.mktemp("module_db"))
    database = Database(url)
    database.upgrade()
    try:
        yield database
    finally:
        database.dispose()
