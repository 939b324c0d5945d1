"""The sequencer lease: which process may write to a PostgreSQL store (docs/adr/0023).

One row holds the epoch and its holder; another, the heartbeat, holds the epoch's expiry in the
database's own clock. The holder also keeps a session advisory lock, whose session says at once
whether it is alive (``kill -9`` closes it), and renews the expiry every third of the lease's
term. (Two rows, so that a renewal never waits behind the write transactions holding the epoch
row ``FOR SHARE``: under steady writes it could starve, and a healthy holder would expire.)
Another process takes over when the advisory lock comes free (the holder died) or the expiry
passes (the holder stopped: SIGSTOP, a hung host, a partition). A takeover first terminates the
old holder's connections, so that a stopped holder's open transaction cannot hold it up, and
then increments the epoch.

Every write transaction of the holder begins by reading the epoch ``FOR SHARE``
(``store.database.begin_write``). An old holder that wakes up finds a newer epoch and writes
nothing; and the takeover's update waits for any transaction that read the old epoch, so the
new holder, which reads the journal only after it holds the lease, sees all such writes.

The lease's table precedes the schema (a standby must not migrate under a running leader), so
it is created here, not by a migration.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Connection, create_engine, text
from sqlalchemy.engine import make_url
from sqlalchemy.pool import NullPool

from .instance_lock import StoreInUse

log = logging.getLogger(__name__)

TABLE = "ballast_sequencer_lease"
HEARTBEAT = "ballast_sequencer_heartbeat"
# The session advisory lock's key ("BALLAST1" in ASCII), and the key that serialises creating
# the table (two first starts at once).
ADVISORY_KEY = 0x42414C4C41535431
CREATE_KEY = 0x42414C4C41535432
# A server killed a moment ago may still own its session until PostgreSQL reads the closed
# socket: a server that is not a standby tries for this long before the store counts as taken.
TAKEN_AFTER_S = 3.0
POLL_S = 0.1


class LeaseLost(Exception):
    """Another sequencer holds a newer epoch: this process must not write."""


@dataclass(frozen=True, slots=True)
class Holder:
    epoch: int
    holder: dict[str, Any]
    application_name: str
    live: bool  # the expiry has not passed

    def describe(self) -> str:
        who = f"pid {self.holder.get('pid', '?')}"
        if self.holder.get("url"):
            who += f" at {self.holder['url']}"
        return f"epoch {self.epoch}, held by {who}"


def _execute(conn: Connection, sql: str, **params: Any) -> Any:
    return conn.execute(text(sql), params)


def ensure_table(conn: Connection) -> None:
    # A transaction of its own (``conn`` is in autocommit): the transaction lock must hold
    # until the tables are created.
    with conn.engine.begin() as tx:
        _execute(tx, "SELECT pg_advisory_xact_lock(:key)", key=CREATE_KEY)
        _execute(
            tx,
            f"CREATE TABLE IF NOT EXISTS {TABLE} ("
            " id integer PRIMARY KEY CHECK (id = 1),"
            " epoch bigint NOT NULL,"
            " holder text NOT NULL,"
            " application_name text NOT NULL)",
        )
        _execute(
            tx,
            f"CREATE TABLE IF NOT EXISTS {HEARTBEAT} ("
            " id integer PRIMARY KEY CHECK (id = 1),"
            " epoch bigint NOT NULL,"
            " expires_at timestamptz NOT NULL)",
        )


def current_holder(conn: Connection) -> Holder | None:
    row = _execute(
        conn,
        f"SELECT l.epoch, l.holder, l.application_name, coalesce(h.expires_at > now(), false)"
        f" FROM {TABLE} l LEFT JOIN {HEARTBEAT} h ON h.id = 1 AND h.epoch = l.epoch"
        " WHERE l.id = 1",
    ).first()
    if row is None:
        return None
    return Holder(int(row[0]), json.loads(row[1]), str(row[2]), bool(row[3]))


@dataclass
class SequencerLease:
    """Held from ``acquire`` until ``release``; ``check`` is the write fence."""

    url: str
    what: str
    application_name: str  # every connection of this process carries it (for a takeover)
    standby: bool = False  # wait for the holder to die or stop, rather than refuse
    ttl_s: float = 5.0
    on_lost: Callable[[LeaseLost], None] | None = None
    # A standby's work between two looks at the lease (keeping its engine level, service/
    # standby.py); it may take long the first time, and a takeover then waits for it.
    while_waiting: Callable[[], None] | None = None
    epoch: int = field(default=0, init=False)
    waiting_for: Holder | None = field(default=None, init=False)  # while a standby waits
    lost: LeaseLost | None = field(default=None, init=False)
    _conn: Connection | None = field(default=None, init=False)
    _stop: threading.Event = field(default_factory=threading.Event, init=False)
    _renewer: threading.Thread | None = field(default=None, init=False)

    def acquire(self, holder: dict[str, Any]) -> None:
        """Take the lease (a standby waits for it); ``StoreInUse`` if taken and not a standby."""
        conn = self._connect()
        try:
            ensure_table(conn)
            deadline = time.monotonic() + TAKEN_AFTER_S
            while not _execute(conn, "SELECT pg_try_advisory_lock(:k)", k=ADVISORY_KEY).scalar():
                found = current_holder(conn)
                if self.standby:
                    self.waiting_for = found
                    if found is not None and not found.live:
                        log.warning("the lease expired (%s): taking over", found.describe())
                        self._terminate(conn, found.application_name)
                elif time.monotonic() > deadline:
                    raise StoreInUse(self.what, found.holder if found else {})
                if self.standby and self.while_waiting is not None:
                    self.while_waiting()
                time.sleep(POLL_S)
            self.epoch = self._take(conn, holder)
        except BaseException:
            conn.close()
            conn.engine.dispose()
            raise
        self._conn = conn
        self.waiting_for = None
        log.info("holding the sequencer lease, epoch %d", self.epoch)
        self._renewer = threading.Thread(target=self._renew, name="ballast-lease", daemon=True)
        self._renewer.start()

    def check(self, conn: Connection) -> int:
        """The fence, first in every write transaction: the epoch, or ``LeaseLost``."""
        if self.lost is not None:
            raise self.lost
        found = _execute(conn, f"SELECT epoch FROM {TABLE} WHERE id = 1 FOR SHARE").scalar()
        if found != self.epoch:
            self._lose(LeaseLost(f"epoch {found} took over from this server's epoch {self.epoch}"))
            assert self.lost is not None
            raise self.lost
        return self.epoch

    def release(self) -> None:
        self._stop.set()
        if self._renewer is not None:
            self._renewer.join(timeout=10)
            self._renewer = None
        conn, self._conn = self._conn, None
        if conn is not None:
            try:
                if self.lost is None:  # the next holder need not wait for the expiry
                    _execute(
                        conn,
                        f"UPDATE {HEARTBEAT} SET expires_at = now() WHERE id = 1 AND epoch = :e",
                        e=self.epoch,
                    )
                _execute(conn, "SELECT pg_advisory_unlock(:k)", k=ADVISORY_KEY)
            except Exception:  # the session may be gone already
                log.debug("lease release", exc_info=True)
            conn.close()
            conn.engine.dispose()

    def _connect(self) -> Connection:
        # Outside the server's pool: this session must live exactly as long as the lease.
        engine = create_engine(
            self.url,
            poolclass=NullPool,
            connect_args={"application_name": self.application_name},
        )
        return engine.connect().execution_options(isolation_level="AUTOCOMMIT")

    def _take(self, conn: Connection, holder: dict[str, Any]) -> int:
        # Both rows in one transaction, off the autocommit session that holds the lock.
        with conn.engine.begin() as tx:
            # The update waits for any write transaction that read the old epoch FOR SHARE.
            epoch = int(
                _execute(
                    tx,
                    f"INSERT INTO {TABLE} AS l (id, epoch, holder, application_name)"
                    " VALUES (1, 1, :holder, :name)"
                    " ON CONFLICT (id) DO UPDATE SET epoch = l.epoch + 1,"
                    " holder = excluded.holder, application_name = excluded.application_name"
                    " RETURNING epoch",
                    holder=json.dumps(holder),
                    name=self.application_name,
                ).scalar_one()
            )
            _execute(
                tx,
                f"INSERT INTO {HEARTBEAT} (id, epoch, expires_at)"
                " VALUES (1, :e, now() + make_interval(secs => :ttl))"
                " ON CONFLICT (id) DO UPDATE SET epoch = excluded.epoch,"
                " expires_at = excluded.expires_at",
                e=epoch,
                ttl=self.ttl_s,
            )
        return epoch

    def _terminate(self, conn: Connection, application_name: str) -> None:
        """End every session of a holder that stopped: its locks and open transactions go."""
        ended = _execute(
            conn,
            "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity"
            " WHERE application_name = :name AND datname = current_database()"
            " AND pid <> pg_backend_pid()",
            name=application_name,
        ).scalar()
        log.warning("terminated %s session(s) of the previous sequencer", ended)

    def _renew(self) -> None:
        while not self._stop.wait(self.ttl_s / 3):
            try:
                conn = self._conn
                if conn is None or conn.closed or conn.invalidated:
                    conn = self._reconnect()
                renewed = _execute(
                    conn,
                    f"UPDATE {HEARTBEAT} SET expires_at = now() + make_interval(secs => :ttl)"
                    " WHERE id = 1 AND epoch = :e",
                    ttl=self.ttl_s,
                    e=self.epoch,
                ).rowcount
            except LeaseLost as lost:
                self._lose(lost)
                return
            except Exception as error:  # the database is unreachable: the fence still holds
                log.warning("could not renew the sequencer lease: %r", error)
                self._drop_connection()
                continue
            if renewed != 1:
                self._lose(LeaseLost(f"another sequencer took over from epoch {self.epoch}"))
                return

    def _reconnect(self) -> Connection:
        """A new session after the old one broke (PostgreSQL restarted): the advisory lock is
        ours again unless a successor took it, and then the epoch tells."""
        self._drop_connection()
        conn = self._connect()
        self._conn = conn
        if not _execute(conn, "SELECT pg_try_advisory_lock(:k)", k=ADVISORY_KEY).scalar():
            found = current_holder(conn)
            if found is None or found.epoch != self.epoch:
                raise LeaseLost(f"epoch {found.epoch if found else '?'} took over")
        return conn

    def _drop_connection(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            try:
                conn.close()
                conn.engine.dispose()
            except Exception:
                log.debug("closing a broken lease session", exc_info=True)

    def _lose(self, lost: LeaseLost) -> None:
        if self.lost is not None:
            return
        self.lost = lost
        log.error("lost the sequencer lease (%s): this server stops writing", lost)
        if self.on_lost is not None:
            self.on_lost(lost)


def lease_for(
    url: str,
    application_name: str,
    standby: bool = False,
    ttl_s: float = 5.0,
    on_lost: Callable[[LeaseLost], None] | None = None,
) -> SequencerLease | None:
    """The lease of a PostgreSQL store; None for SQLite (one host: its file lock suffices)."""
    parsed = make_url(url)
    if parsed.get_backend_name() != "postgresql":
        return None
    shown = parsed.render_as_string(hide_password=True)
    return SequencerLease(url, f"the database {shown}", application_name, standby, ttl_s, on_lost)
