"""One server per data directory and per database (docs/adr/0015-one-server-per-store.md).

Two servers on one store each replay the journal into their own engine and then both append
to it: the second one dies on a journal unique violation, after it has printed a banner and
rewritten ``server.json`` to point at itself. So a server takes, before it touches anything:

- an OS lock (``flock``) on ``ballast.lock`` in its data directory, and on ``<file>.lock`` next
  to a SQLite database kept elsewhere. The kernel drops it when the process ends however it
  ends, so a crash never leaves a stale lock behind; the file's text (pid and URL) only words
  the refusal.
- on PostgreSQL, the sequencer lease (``sequencer_lease.py``): a session advisory lock that goes
  when the session does, and an epoch that fences a holder that stopped and was taken over.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any, Protocol

from sqlalchemy.engine import make_url

LOCK_FILE = "ballast.lock"


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


class StoreLock(Protocol):
    def acquire(self, holder: dict[str, Any]) -> None: ...
    def release(self) -> None: ...


@dataclass
class InstanceLock:
    """The locks of one server's store: its data directory and its database."""

    data_dir: Path
    database_url: str
    # A PostgreSQL store's lock, the sequencer lease, built by the caller (which knows whether
    # this server is a standby); None on SQLite.
    database_lock: StoreLock | None = None
    _held: list[StoreLock] = field(default_factory=list, init=False)

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

    def _locks(self) -> list[StoreLock]:
        data_dir = self.data_dir.resolve()
        locks: list[StoreLock] = [FileLock(data_dir / LOCK_FILE, f"the data directory {data_dir}")]
        if self.database_lock is not None:
            locks.append(self.database_lock)
        parsed = make_url(self.database_url)
        if parsed.get_backend_name() == "sqlite":
            name = parsed.database
            if name and name != ":memory:" and not name.startswith("file:"):
                path = Path(name).resolve()
                if path.parent != data_dir:  # a database in the data dir shares its lock
                    lock_path = path.with_name(path.name + ".lock")
                    locks.append(FileLock(lock_path, f"the database {path}"))
        return locks
