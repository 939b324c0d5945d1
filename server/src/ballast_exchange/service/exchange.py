"""The Exchange: the single writer in front of the engine (DESIGN §1, §6).

Commands run on the event loop, one at a time, so the engine needs no locks. Each accepted
command's journal item goes to the group committer, and the caller gets its events only once
they are stored. A rejection or a read first waits for everything executed before it to be
stored too, so no answer ever describes state a crash could lose.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from time import perf_counter
from typing import Protocol

from sqlalchemy import Connection
from sqlalchemy import Engine as SqlEngine

from ..domain import DomainError, Engine, EngineChoice, select_engine
from ..domain import snapshot_codec as codec
from ..domain.commands import Command, PlaceOrder
from ..domain.events import Event, OrderAccepted
from ..store import snapshots as snapshot_store
from ..store.journal import load_commands
from ..store.journal_archive import journal_bounds, journal_time
from ..store.projection import JournalItem, projected_through
from .committer import Committer, StorageFailed
from .forking import ChildFailed, fork_digest, freeze_recovered, wait_child
from .metrics import Metrics
from .projector import Projector, project_now

log = logging.getLogger(__name__)


class ServiceUnavailable(Exception):
    """The exchange has stopped taking commands (its storage failed, or it is shutting down)."""


class Policy(Protocol):
    """A risk policy the exchange consults on every command it runs (``order_groups``)."""

    def admit(self, command: Command) -> None:
        """Raise ``DomainError`` to refuse ``command`` before it runs."""

    def executed(self, item: JournalItem) -> Sequence[Command]:
        """Hear of an accepted command before it is stored: add to ``item`` what must be
        stored with it, and return commands to run right after it, before any other."""


def at_time(command: Command) -> Callable[[int], Command]:
    """A builder that stamps a prepared command with the exchange's command time."""
    return lambda time: replace(command, time=time)


def now_ms() -> int:
    return time.time_ns() // 1_000_000


ClientOrders = dict[tuple[str, str], int]
MAX_BACKLOG = 250  # commands waiting for the commit thread before intake pauses
PROJECTION_WAIT_S = 30.0  # a read waits this long for the projector before answering 503
DIGEST_CHECK_TIMEOUT_S = 600.0  # a restored snapshot's digest check, in a forked child


def remember_client_order(
    client_orders: ClientOrders, command: Command, events: list[Event]
) -> None:
    """client_order_id stays bound to its first order for good: a retry returns that order."""
    if type(command) is PlaceOrder and command.client_order_id is not None:
        accepted = events[0]
        assert isinstance(accepted, OrderAccepted)
        client_orders[(command.account_id, command.client_order_id)] = accepted.order_id


def replay_command(
    engine: Engine,
    client_orders: ClientOrders,
    command_no: int,
    command: Command,
    projected: int,
    unprojected: list[JournalItem],
) -> None:
    """Execute one journaled command again: its client order id remembered, and its events
    kept in ``unprojected`` if the query tables (through ``projected``) do not hold it."""
    events = engine.execute(command)
    remember_client_order(client_orders, command, events)
    if command_no > projected:
        unprojected.append(JournalItem(command_no, command, events, command.time))


@dataclass
class Recovery:
    """The engine rebuilt from the journal, and what the query tables still lack."""

    engine: Engine
    client_orders: ClientOrders
    command_no: int  # the last command journaled
    time: int  # and its time
    projected: int  # the last command the query tables hold
    unprojected: list[JournalItem]  # the journaled commands after it, with their events
    snapshot: int = 0  # the command the snapshot it started from covers (0: none, a full replay)


@dataclass
class RecoveryProgress:
    """Where a recovery is, for ``/readyz`` while it runs (written by the recovering thread)."""

    phase: str = "starting"  # restoring snapshot, replaying journal, projecting, done
    snapshot: int = 0
    replayed: int = 0
    to_replay: int = 0
    skipped: list[str] = field(default_factory=list)  # snapshots refused, and why
    seconds: dict[str, float] = field(default_factory=dict)  # each phase's wall time

    def describe(self) -> dict[str, object]:
        return {
            "phase": self.phase,
            "snapshot": self.snapshot,
            "replayed": self.replayed,
            "to_replay": self.to_replay,
            "skipped_snapshots": list(self.skipped),
            "seconds": {name: round(value, 3) for name, value in self.seconds.items()},
        }

    def took(self, phase: str, started: float) -> None:
        self.seconds[phase] = self.seconds.get(phase, 0.0) + perf_counter() - started


class JournalGap(RuntimeError):
    """The journal no longer reaches back to where recovery must start (it was archived)."""


def replay(
    sql: SqlEngine,
    engine: Engine | None = None,
    *,
    choice: EngineChoice | None = None,
    use_snapshots: bool = True,
    progress: RecoveryProgress | None = None,
) -> Recovery:
    """Rebuild the engine: the latest valid snapshot, then the journal after it.

    ``engine`` (an empty engine to replay into) asks for a full replay from the first command.
    A snapshot is used only if it covers no more than both the journal and the query tables
    hold (so every command the tables lack is replayed and its events recomputed), its bytes
    pass their checksum, and the state restored from them re-encodes to the recorded digest;
    otherwise the one before it is tried, then a full replay (docs/adr/0016-engine-snapshots.md).
    The re-encoding is checked by a forked child while this process replays the journal tail.
    """
    progress = progress if progress is not None else RecoveryProgress()
    refused: set[int] = set()
    while True:
        found = _replay_once(sql, engine, choice, use_snapshots, progress, refused)
        if found is not None:
            return found
        # The snapshot restored does not re-encode to its digest: again, without it.


def _replay_once(
    sql: SqlEngine,
    engine: Engine | None,
    choice: EngineChoice | None,
    use_snapshots: bool,
    progress: RecoveryProgress,
    refused: set[int],
) -> Recovery | None:
    client_orders: ClientOrders = {}
    start = 0
    check: tuple[int, int, str] | None = None  # the digest child's pid and pipe, and the digest
    with sql.connect() as conn:
        projected = projected_through(conn)
        head, first = journal_bounds(conn)
        if engine is None:
            choice = choice if choice is not None else select_engine()
            started = perf_counter()
            found = (
                _from_snapshot(conn, choice, min(head, projected), first, progress, refused)
                if use_snapshots
                else None
            )
            progress.took("restore", started)
            if found is None:
                engine = choice.new()
            else:
                engine, client_orders, start, expected, version = found
                freeze_recovered()  # the replay below must not walk the restored heap
                state = _State(engine, client_orders)
                check = (*fork_digest(state, version), expected)
        if first > start + 1:
            raise JournalGap(
                f"the journal starts at command {first}, recovery needs it from {start + 1}: "
                "restore the archived journal (`ballast admin journal restore`)"
            )
        last_no = start
        last_time = 0
        unprojected: list[JournalItem] = []
        progress.phase = "replaying journal"
        progress.replayed = 0
        progress.to_replay = max(0, head - start)
        started = perf_counter()
        for command_no, command in load_commands(conn, after=start):
            replay_command(engine, client_orders, command_no, command, projected, unprojected)
            last_no = command_no
            last_time = command.time
            progress.replayed += 1
        if last_no == start and start:
            last_time = journal_time(conn, start)
        progress.took("replay", started)
    if check is not None:
        pid, fd, expected = check
        started = perf_counter()
        try:
            digest = str(wait_child(pid, fd, DIGEST_CHECK_TIMEOUT_S)[0]["digest"])
        except ChildFailed as error:
            digest = f"not computed ({error})"
        progress.took("digest_check_wait", started)
        if digest != expected:
            why = f"the restored state re-encodes to {digest}, not {expected}"
            progress.skipped.append(f"{start}: {why}")
            log.warning("snapshot of command %d skipped: %s", start, why)
            refused.add(start)
            return None
    freeze_recovered()
    return Recovery(
        engine, client_orders, last_no, last_time, projected, unprojected, snapshot=start
    )


@dataclass
class _State:
    engine: Engine
    client_orders: ClientOrders


def _from_snapshot(
    conn: Connection,
    choice: EngineChoice,
    through: int,
    first: int,
    progress: RecoveryProgress,
    refused: set[int],
) -> tuple[Engine, ClientOrders, int, str, int] | None:
    """The newest usable snapshot restored into ``choice``'s twin, its digest and format
    version, or None."""
    progress.phase = "restoring snapshot"
    restorer = None if choice.name == "reference" else choice.restorer
    for found in snapshot_store.candidates(conn, through):
        if found.command_no in refused:
            continue
        if first > found.command_no + 1:
            why = f"the journal after it was archived (it starts at {first})"
        else:
            try:
                data = snapshot_store.read(conn, found)
                engine, client_orders, header = codec.decode(data, restorer)
                if header.command_no != found.command_no or header.digest != found.digest:
                    raise ValueError("its header does not match its row")
            except ValueError as error:  # SnapshotUnreadable and SnapshotUnsupported included
                why = str(error)
            else:
                progress.snapshot = found.command_no
                log.info(
                    "restored snapshot of command %d (%d bytes, %d resting orders)",
                    found.command_no,
                    found.size_bytes,
                    len(engine.orders),
                )
                return engine, client_orders, found.command_no, found.digest, header.version
        progress.skipped.append(f"{found.command_no}: {why}")
        log.warning("snapshot of command %d skipped: %s", found.command_no, why)
    progress.snapshot = 0
    return None


def recover(sql: SqlEngine) -> tuple[Engine, ClientOrders, int, int]:
    """Rebuild the engine from the latest snapshot and the journal after it.

    Returns the engine, the client order ids seen, the last command number and its time.
    """
    found = replay(sql)
    return found.engine, found.client_orders, found.command_no, found.time


class Exchange:
    def __init__(
        self,
        sql: SqlEngine,
        *,
        projection_sql: SqlEngine | None = None,
        clock: Callable[[], int] = now_ms,
        on_committed: Callable[[Sequence[JournalItem], int], None] | None = None,
        metrics: Metrics | None = None,
        progress: RecoveryProgress | None = None,
        recovered: Recovery | None = None,
    ) -> None:
        """``recovered``: the state to start from, already rebuilt (a hot standby's, taking
        over); otherwise the latest snapshot and the journal after it are replayed."""
        self.sql = sql
        # The projector's own connections (on SQLite without an fsync per commit: what it
        # writes can be projected again from the journal after a crash).
        self.projection_sql = projection_sql if projection_sql is not None else sql
        self.clock = clock
        self.metrics = metrics if metrics is not None else Metrics()
        self.metrics.gauge(
            "ballast_exchange_healthy",
            "1 while the exchange takes commands; 0 before it starts and once it stops "
            "(a failed commit, shutdown)",
            (),
            lambda: [((), 1.0 if self.healthy else 0.0)],
        )
        self.metrics.gauge(
            "ballast_commit_backlog",
            "Commands executed and not yet taken into a commit transaction",
            (),
            lambda: [((), float(self._committer.backlog if self._committer else 0))],
        )
        self.metrics.gauge(
            "ballast_commit_lock_waits",
            "Group commits that found the database's write lock held by another writer and "
            "were tried again (contention, not failure; a running count)",
            (),
            lambda: [((), float(self._committer.stats.lock_waits if self._committer else 0))],
        )
        self.metrics.gauge(
            "ballast_open_orders",
            "Orders resting on the books",
            (),
            lambda: [((), float(len(self.engine.orders)))],
        )
        started = perf_counter()
        #: Which engine twin runs, and why (the banner, /readyz and /metrics say it).
        self.engine_choice = select_engine()
        #: How far recovery has come (``/readyz`` reports it while the server recovers).
        self.recovery = progress if progress is not None else RecoveryProgress()
        found = recovered or replay(sql, choice=self.engine_choice, progress=self.recovery)
        self.recovered_from_snapshot = found.snapshot
        self.engine, self.client_orders = found.engine, found.client_orders
        self._command_no, self._last_time = found.command_no, found.time
        choice = self.engine_choice
        self.metrics.gauge(
            "ballast_engine_info",
            "1 for the engine twin that runs: compiled, or the pure-Python reference",
            ("engine",),
            lambda: [((choice.name,), 1.0)],
        )
        # The query tables catch up with the journal before anything reads them.
        self.recovery.phase = "projecting"
        projecting = perf_counter()
        project_now(self.projection_sql, found.unprojected)
        self.recovery.took("project", projecting)
        self.recovery.phase = "done"
        self._projected_at_start = found.command_no
        recovery = [((), perf_counter() - started)]
        self.metrics.gauge(
            "ballast_recovery_seconds",
            "Time this process took to rebuild the engine from the journal at start",
            (),
            lambda: recovery,
        )
        self.metrics.gauge(
            "ballast_projection_lag",
            "Commands stored in the journal and not yet projected into the query tables",
            (),
            lambda: [((), float(self._command_no - self.projected_through))],
        )
        self.on_committed = on_committed
        #: Consulted on every command, in order (``Policy``).
        self.policies: list[Policy] = []
        self._committer: Committer | None = None
        self._projector: Projector | None = None
        self._last_future: asyncio.Future[None] | None = None
        self.accepting = False

    def start(self) -> None:
        """Start the committer and the projector on the running loop; take commands."""
        loop = asyncio.get_running_loop()
        self._projector = Projector(self.projection_sql, loop, self._projected_at_start)
        self._committer = Committer(
            self.sql,
            loop,
            self.on_committed,
            metrics=self.metrics,
            handoff=self._projector.submit,
        )
        self.accepting = True

    def stop(self) -> None:
        self.accepting = False
        if self._committer is not None:
            self._committer.stop()
        if self._projector is not None:
            self._projector.stop()

    @property
    def command_no(self) -> int:
        """The last command executed (journaled, or about to be)."""
        return self._command_no

    @property
    def projected_through(self) -> int:
        """The last command the query tables hold."""
        projector = self._projector
        return projector.projected if projector is not None else self._projected_at_start

    @property
    def projection_failure(self) -> str | None:
        """The error a projection is being retried for, while one is."""
        return self._projector.failure if self._projector is not None else None

    async def projected(self) -> None:
        """Wait until the query tables hold everything executed so far (and so stored).

        Raises ``ServiceUnavailable`` if the projection stays behind for ``PROJECTION_WAIT_S``
        (it is being retried after a failure: ``/readyz`` says so).
        """
        if self._projector is not None and self._projector.projected < self._command_no:
            target = self._command_no
            await self.barrier()  # a failed commit must end the wait, not leave it hanging
            try:
                await asyncio.wait_for(self._projector.reached(target), PROJECTION_WAIT_S)
            except TimeoutError:
                raise ServiceUnavailable(
                    "the query tables are behind the journal; retry shortly"
                ) from None

    @property
    def committer(self) -> Committer:
        assert self._committer is not None, "Exchange.start() has not run"
        return self._committer

    @property
    def healthy(self) -> bool:
        return self.accepting and self._committer is not None and self._committer.failure is None

    def time(self) -> int:
        """Command time: the wall clock, but never behind the last command's."""
        self._last_time = max(self._last_time, self.clock())
        return self._last_time

    def execute(
        self, build: Callable[[int], Command], guarded: bool = False
    ) -> tuple[list[Event], asyncio.Future[None]]:
        """Run one command now; return its events and the future of their commit.

        ``build`` receives the command time. ``guarded`` stores a placement that rests as under
        cancel-on-disconnect, in the same commit. Raises ``DomainError`` for a rejection
        (nothing was changed or journaled) and ``ServiceUnavailable`` when the exchange is not
        taking commands.
        """
        metrics = self.metrics
        if not self.healthy:
            metrics.refused += 1
            raise ServiceUnavailable("the exchange is not taking commands")
        command = build(self.time())
        kind = type(command)
        if type(command) is PlaceOrder and command.client_order_id is not None:
            first = self.client_orders.get((command.account_id, command.client_order_id))
            if first is not None:
                metrics.rejected(kind, "DUPLICATE_CLIENT_ORDER_ID")
                raise DomainError(
                    "DUPLICATE_CLIENT_ORDER_ID",
                    "this client_order_id was used before",
                    {"client_order_id": command.client_order_id, "order_id": first},
                )
        policies = self.policies
        for policy in policies:
            try:
                policy.admit(command)
            except DomainError as error:
                metrics.rejected(kind, error.code)
                raise
        started = perf_counter()
        try:
            events = self.engine.execute(command)
        except DomainError as error:
            metrics.rejected(kind, error.code, perf_counter() - started)
            raise
        metrics.executed(kind, events, perf_counter() - started)
        remember_client_order(self.client_orders, command, events)
        self._command_no += 1
        item = JournalItem(self._command_no, command, events, command.time, guarded=guarded)
        follow_ups: list[Command] = []
        for policy in policies:
            try:
                follow_ups += policy.executed(item)
            except Exception:  # the engine has moved on: the command must be stored regardless
                log.exception("policy %r failed on command %d", policy, item.command_no)
        future = self.committer.submit(item)
        self._last_future = future
        for follow_up in follow_ups:
            # Journaled after the command and before anything else; one that can no longer
            # apply (or a store that failed meanwhile) leaves the rest to run.
            with contextlib.suppress(DomainError, ServiceUnavailable):
                self.execute(at_time(follow_up))
        return events, future

    async def submit(self, build: Callable[[int], Command]) -> list[Event]:
        """Run one command and return its events once they are stored."""
        try:
            events, future = self.execute(build)
        except DomainError:
            await self.barrier()
            raise
        await self.durable(future)
        return events

    async def room(self) -> None:
        """Wait while storage is far behind, before taking a trading request.

        The loop can take orders faster than the commit thread, which shares the GIL, can store
        them; left alone, the backlog (and every reply's wait) grows without bound. Pausing
        intake until the backlog is stored keeps commits, and so replies, flowing.
        """
        if self._committer is not None and self._committer.backlog > MAX_BACKLOG:
            await self.barrier()

    async def caught_up(self) -> None:
        """Before a read of the engine renders: here, the engine is the writer's and holds
        everything already (a gateway's replica first reaches what is stored)."""

    async def barrier(self) -> None:
        """Wait until everything executed so far is stored."""
        future = self._last_future
        if future is not None:
            await self.durable(future)

    async def durable(self, future: asyncio.Future[None]) -> None:
        try:
            await asyncio.shield(future)
        except StorageFailed as error:
            self.accepting = False
            raise ServiceUnavailable(
                "storage failed; the exchange stopped taking commands"
            ) from error
