"""One server per data directory and per database (docs/adr/0015-one-server-per-store.md).

Two servers on one store each replay the journal into their own engine and then both append
to it: the second one dies on a journal unique violation, after it has printed a banner and
rewritten ``server.json`` to point at itself. So a server takes, before it touches anything:

- an OS lock (``flock``) on ``ballast.lock`` in its data directory, and on ``<file>.lock`` next
  to a SQLite database kept elsewhere. The kernel drops it when the process ends however it
  ends, so a crash never leaves a stale lock behind; the file's text (pid and URL) only words
  the refusal.
- on PostgreSQL, a session advisory lock on the database, held by a connection of its own for
  the process's life (it too goes when the session does).
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from sqlalchemy import Connection, create_engine, text
from sqlalchemy.engine import make_url
from sqlalchemy.pool import NullPool

LOCK_FILE = "ballast.lock"
# The advisory lock's key: any constant unique to Ballast, in the signed 64-bit range
# PostgreSQL takes ("BALLAST1" in ASCII).
ADVISORY_KEY = 0x42414C4C41535431
# A server killed a moment ago may still own its session until PostgreSQL reads the closed
# socket: the lock is tried for this long before the database counts as taken.
ADVISORY_WAIT_S = 3.0


class StoreInUse(Exception):
    """Another server holds the data directory or the database."""

    def __init__(self, what: str, holder: dict[str, Any]) -> None:
        self.what = what
        self.holder = holder
        who = "another Ballast server"
        if holder.get("pid"):
            who += f" (pid {holder['pid']}"
            who += f", {holder['url']})" if holder.get("url") else ")"
        elif holder.get("url"):
            who += f" ({holder['url']})"
        super().__init__(f"{who} is already using {what}")


def _read_holder(handle: IO[str]) -> dict[str, Any]:
    handle.seek(0)
    with contextlib.suppress(ValueError):
        found = json.loads(handle.read() or "{}")
        if isinstance(found, dict):
            return found
    return {}


@dataclass
class FileLock:
    """An exclusive ``flock`` on ``path``, held until ``release`` or the process's end."""

    path: Path
    what: str
    _handle: IO[str] | None = field(default=None, init=False)

    def acquire(self, holder: dict[str, Any]) -> None:
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
        handle = os.fdopen(fd, "r+")
        try:
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            found = _read_holder(handle)
            handle.close()
            raise StoreInUse(self.what, found) from None
        handle.seek(0)
        handle.truncate()
        handle.write(json.dumps(holder) + "\n")
        handle.flush()
        self._handle = handle

    def release(self) -> None:
        if self._handle is not None:
            # Emptied first, so a reader never takes a dead process for the holder.
            with contextlib.suppress(OSError):
                self._handle.truncate(0)
            self._handle.close()  # closing the descriptor drops the flock
            self._handle = None


@dataclass
class AdvisoryLock:
    """A PostgreSQL session advisory lock on the database at ``url``, on its own connection."""

    url: str
    what: str
    _conn: Connection | None = field(default=None, init=False)

    def acquire(self, holder: dict[str, Any]) -> None:
        # Outside the server's pool: the session must live exactly as long as the lock.
        engine = create_engine(self.url, poolclass=NullPool)
        conn = engine.connect().execution_options(isolation_level="AUTOCOMMIT")
        # The holder's identity, for the refusal the next server words (63 characters at most).
        name = f"ballast {holder.get('pid', '')} {holder.get('url', '')}"[:63]
        try:
            deadline = time.monotonic() + ADVISORY_WAIT_S
            while not conn.execute(
                text("SELECT pg_try_advisory_lock(:key)"), {"key": ADVISORY_KEY}
            ).scalar_one():
                if time.monotonic() > deadline:
                    raise StoreInUse(self.what, self._holder(conn))
                time.sleep(0.05)
            conn.execute(text("SELECT set_config('application_name', :n, false)"), {"n": name})
        except BaseException:
            conn.close()
            engine.dispose()
            raise
        self._conn = conn

    def _holder(self, conn: Connection) -> dict[str, Any]:
        found = conn.execute(
            text(
                "SELECT a.application_name FROM pg_locks l JOIN pg_stat_activity a USING (pid) "
                "WHERE l.locktype = 'advisory' AND l.database = "
                "(SELECT oid FROM pg_database WHERE datname = current_database()) "
                "AND l.classid::bigint = :hi AND l.objid::bigint = :lo AND l.granted"
            ),
            {"hi": ADVISORY_KEY >> 32, "lo": ADVISORY_KEY & 0xFFFFFFFF},
        ).scalar_one_or_none()
        parts = (found or "").split(" ")
        if len(parts) != 3 or parts[0] != "ballast":
            return {}
        return {"pid": parts[1], "url": parts[2]}

    def release(self) -> None:
        if self._conn is not None:
            with contextlib.suppress(Exception):  # the session may be gone already
                self._conn.execute(text("SELECT pg_advisory_unlock(:key)"), {"key": ADVISORY_KEY})
            self._conn.close()
            self._conn.engine.dispose()
            self._conn = None


@dataclass
class InstanceLock:
    """The locks of one server's store: its data directory and its database."""

    data_dir: Path
    database_url: str
    _held: list[FileLock | AdvisoryLock] = field(default_factory=list, init=False)

    def acquire(self, url: str) -> None:
        """Take every lock, or none: raises ``StoreInUse`` naming what is taken and by whom."""
        holder = {"pid": os.getpid(), "url": url}
        try:
            for lock in self._locks():
                lock.acquire(holder)
                self._held.append(lock)
        except BaseException:
            self.release()
            raise

    def release(self) -> None:
        while self._held:
            self._held.pop().release()

    def _locks(self) -> list[FileLock | AdvisoryLock]:
        data_dir = self.data_dir.resolve()
        locks: list[FileLock | AdvisoryLock] = [
            FileLock(data_dir / LOCK_FILE, f"the data directory {data_dir}")
        ]
        parsed = make_url(self.database_url)
        backend = parsed.get_backend_name()
        if backend == "postgresql":
            shown = parsed.render_as_string(hide_password=True)
            locks.append(AdvisoryLock(self.database_url, f"the database {shown}"))
        elif backend == "sqlite":
            name = parsed.database
            if name and name != ":memory:" and not name.startswith("file:"):
                path = Path(name).resolve()
                if path.parent != data_dir:  # a database in the data dir shares its lock
                    lock_path = path.with_name(path.name + ".lock")
                    locks.append(FileLock(lock_path, f"the database {path}"))
        return locks
