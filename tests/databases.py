"""Fresh databases for tests: a SQLite file, or a new PostgreSQL database dropped afterwards.

A new PostgreSQL database is a copy of a template already migrated to this checkout's schema
(``ballast_template_<hash of the migrations>``), built once by whichever test process needs it
first, under an advisory lock: the server's own ``upgrade()`` then finds nothing to do, instead
of running every migration again for each test. Databases are dropped in the background, as
dropping one waits on PostgreSQL for most of a second; ``finish()`` waits for those drops.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
import uuid
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path

import psycopg

from ballast_exchange.store.database import MIGRATIONS_DIR, Database

from .services import require_postgres

# SQLite files go to tmpfs where there is one: each commit is an fsync (synchronous=FULL), and
# on a disk shared with other work those waits are most of a small test's time. A process
# killed by a test loses nothing either way: the data is in the kernel's page cache.
_TMPFS = Path("/dev/shm")

_templates: dict[str, str] = {}  # admin URL -> the template built or found this run
_drops = ThreadPoolExecutor(max_workers=1, thread_name_prefix="drop-database")
_dropping: list[Future[None]] = []


def _sqlite_dir(fallback: Path) -> tuple[Path, bool]:
    if _TMPFS.is_dir() and os.access(_TMPFS, os.W_OK):
        return Path(tempfile.mkdtemp(prefix="ballast-test-", dir=_TMPFS)), True
    return fallback, False


def _schema_hash() -> str:
    """Changes whenever a migration (or the migration environment) does."""
    digest = hashlib.sha256()
    for path in sorted(MIGRATIONS_DIR.rglob("*.py")):
        digest.update(path.relative_to(MIGRATIONS_DIR).as_posix().encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()[:12]


def _url(admin_url: str, name: str) -> str:
    return admin_url.rsplit("/", 1)[0] + f"/{name}"


def _exists(conn: psycopg.Connection[tuple[object, ...]], name: str) -> bool:
    found = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone()
    return found is not None


def template(admin_url: str) -> str:
    """The migrated template's name, built now unless this run or another already has."""
    if admin_url in _templates:
        return _templates[admin_url]
    name = f"ballast_template_{_schema_hash()}"
    with psycopg.connect(admin_url, autocommit=True) as conn:
        # Session-level: released when this connection closes, even if the process dies.
        conn.execute("SELECT pg_advisory_lock(hashtext(%s))", (name,))
        if not _exists(conn, name):
            # Migrated under another name and renamed when complete, so the template's name
            # never stands for a half-migrated database (a run killed mid-way leaves this).
            building = f"{name}_building"
            conn.execute(f'DROP DATABASE IF EXISTS "{building}" WITH (FORCE)')
            conn.execute(f'CREATE DATABASE "{building}"')
            database = Database(_url(admin_url, building))
            try:
                database.upgrade()
            finally:
                database.dispose()
            conn.execute(f'ALTER DATABASE "{building}" RENAME TO "{name}"')
            # A connection to a template makes every copy of it fail: none are allowed.
            conn.execute(f'ALTER DATABASE "{name}" WITH IS_TEMPLATE true ALLOW_CONNECTIONS false')
    _templates[admin_url] = name
    return name


def _drop(admin_url: str, name: str) -> None:
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@contextmanager
def fresh_database(kind: str, tmp_path: Path, *, durable: bool = False) -> Iterator[str]:
    """A database URL for one test (or module): nothing in it but the current schema on
    PostgreSQL, no file yet on SQLite.

    Commits skip the disk unless ``durable``: a SQLite file on tmpfs, PostgreSQL's
    ``synchronous_commit`` off. ``durable`` keeps both as in production (the SQLite file in
    ``tmp_path``), for tests whose timing must stay a real store's.
    """
    if kind == "sqlite":
        directory, temporary = (tmp_path, False) if durable else _sqlite_dir(tmp_path)
        try:
            yield f"sqlite:///{directory / 'ballast.db'}"
        finally:
            if temporary:
                shutil.rmtree(directory, ignore_errors=True)
        return
    admin_url = require_postgres()
    name = f"ballast_test_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}" TEMPLATE "{template(admin_url)}"')
        if not durable:
            # Nothing in a test database must outlive PostgreSQL itself crashing (the tests
            # kill our servers, never PostgreSQL): a commit need not wait for its WAL flush.
            conn.execute(f'ALTER DATABASE "{name}" SET synchronous_commit = off')
    try:
        yield _url(admin_url, name)
    finally:
        _dropping.append(_drops.submit(_drop, admin_url, name))


def finish() -> None:
    """Wait for the background drops (at the end of a test session)."""
    for future in _dropping:
        future.exception()  # a failed drop leaves a database behind; it fails no test
    _dropping.clear()
