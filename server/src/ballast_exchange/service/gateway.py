"""A gateway's exchange: the sequencer over the bus for every change, a replica for every read.

A gateway runs the same routes, stream and dashboard as the one-process server, on the same
``Venue``; what differs is behind it. Commands and the calls that change state go to the
sequencer (``service/sequencer_link.py``), which runs them on its services exactly as the one
process would and answers with the outcome. Reads come from the gateway's own engine, a replica
recovered from the store and then executing each batch the sequencer publishes once stored
(the engine is deterministic: the same commands give the same state, events and ``seq``), so
books, balances and streams are served without asking the sequencer (docs/adr/0025).

Read-your-writes, across gateways: before a read renders, the replica reaches the journal's
head as stored, read from the database (a store read waits for the projector to pass it too);
before a gateway answers a command, its replica reaches the journal position the sequencer gave
with the answer, so the gateway's own stream already carries what the command did.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
from collections.abc import Awaitable, Callable, Sequence
from time import monotonic
from typing import Any, Generic, TypeVar

from nats.aio.client import Client as Nats
from nats.aio.msg import Msg
from nats.errors import NoRespondersError
from nats.errors import TimeoutError as NatsTimeout
from sqlalchemy import Engine as SqlEngine
from sqlalchemy import func, select

from ..config import Settings
from ..domain import CancelReason, DomainError, Engine, select_engine
from ..domain.commands import Command
from ..store.journal import decode_command, load_commands
from ..store.projection import JournalItem, projected_through
from ..store.schema import journal
from .bus import KeyNews, connect, subjects
from .bus_codec import decode, encode, error_from_wire, from_wire, to_wire
from .dead_man import DeadMan, Switch
from .exchange import (
    ClientOrders,
    Exchange,
    Recovery,
    RecoveryProgress,
    ServiceUnavailable,
    now_ms,
    remember_client_order,
)
from .faucet import Faucet, FaucetGrant
from .metrics import Metrics
from .order_groups import DeletedGroup, GroupState, OrderGroups
from .reads import Reads
from .trading import CancelAllOutcome, OrderOutcome, Pending, Trading

log = logging.getLogger(__name__)
T = TypeVar("T")

CALL_TRY_S = 4.0  # a call unanswered this long is sent again, to the same sequencer
CALL_TRIES = 3  # then 503, which a client retries with its client_order_id
TAKEOVER_WAIT_S = 5.0  # with no sequencer subscribed, a call waits this long for one to be
REACH_TIMEOUT_S = 10.0  # the replica must reach a stored position within this, or 503
POLL_S = 0.5  # the journal is read directly this often too, should a published batch be lost
PING_TIMEOUT_S = 2.0  # a readiness probe's wait for the sequencer
NUDGE_S = 0.05  # a position not reached from the bus this soon is read from the journal

HEAD = select(func.coalesce(func.max(journal.c.command_no), 0))  # the last command stored


class FreshRead(Generic[T]):
    """A store read that every caller gets fresh (begun after the call), shared by the callers
    that came while the same read was pending: concurrent readers cost one query per round
    trip, not one each, and none sees a head older than its own request."""

    def __init__(self, query: Callable[[], T]) -> None:
        self._query = query
        self._running: asyncio.Future[T] | None = None
        self._next: asyncio.Future[T] | None = None  # for callers that came during _running

    async def __call__(self) -> T:
        if self._running is None:
            return await asyncio.shield(self._start())
        # The pending read may have begun before this call: wait for the next one.
        if self._next is None:
            self._next = asyncio.get_running_loop().create_future()
        return await asyncio.shield(self._next)

    def _start(self) -> asyncio.Future[T]:
        running: asyncio.Future[T] = asyncio.get_running_loop().create_future()
        self._running = running
        task = asyncio.ensure_future(asyncio.to_thread(self._query))
        task.add_done_callback(lambda done: self._finish(running, done))
        return running

    def _finish(self, running: asyncio.Future[T], done: asyncio.Future[T]) -> None:
        self._running = None
        _settle_from(running, done)
        waiting, self._next = self._next, None
        if waiting is not None:
            self._start().add_done_callback(lambda done: _settle_from(waiting, done))


def _settle_from(target: asyncio.Future[T], done: asyncio.Future[T]) -> None:
    if target.done():
        return
    if done.cancelled():
        target.cancel()
    elif done.exception() is not None:
        target.set_exception(done.exception())  # type: ignore[arg-type]
    else:
        target.set_result(done.result())


class Replica:
    """The gateway's engine, one stored batch behind the sequencer at most."""

    def __init__(
        self,
        sql: SqlEngine,
        found: Recovery,
        on_committed: Callable[[Sequence[JournalItem], int], None],
    ) -> None:
        self.sql = sql
        self.engine: Engine = found.engine
        self.client_orders: ClientOrders = found.client_orders
        self.applied = found.command_no
        self.last_time = found.time
        self.on_committed = on_committed
        self.failure: str | None = None
        self._waiters: list[tuple[int, asyncio.Future[None]]] = []
        self._reading: asyncio.Task[None] | None = None
        self.gaps = 0

    def apply(self, rows: Sequence[tuple[int, Command, Any]], stored_at: int) -> bool:
        """Execute stored rows in order (ones already applied are skipped); False at a gap."""
        if self.failure is not None:
            return True  # it serves nothing more; reading the journal would not mend it
        items: list[JournalItem] = []
        whole = True
        try:
            for command_no, command, triggers in rows:
                if command_no <= self.applied:
                    continue
                if command_no != self.applied + 1:
                    whole = False
                    break
                events = self.engine.execute(command)
                remember_client_order(self.client_orders, command, events)
                items.append(
                    JournalItem(command_no, command, events, command.time, group_triggers=triggers)
                )
                self.applied, self.last_time = command_no, command.time
        except DomainError as error:
            # The journal is what the sequencer executed: a refusal here means this replica
            # no longer holds its state. It stops serving rather than show a wrong book.
            self.failure = f"the replica refused stored command {self.applied + 1}: {error}"
            log.error("%s; this gateway stops serving", self.failure)
        if items:
            self.on_committed(items, stored_at)
            self._wake()
        return whole

    def _wake(self) -> None:
        waiting = self._waiters
        if waiting:
            self._waiters = [(n, f) for n, f in waiting if n > self.applied and not f.done()]
            for n, future in waiting:
                if n <= self.applied and not future.done():
                    future.set_result(None)

    def read_journal(self) -> Awaitable[None]:
        """Execute whatever the journal holds past ``applied`` (one read at a time)."""
        if self._reading is None or self._reading.done():
            self._reading = asyncio.ensure_future(self._read_journal())
        return asyncio.shield(self._reading)

    async def _read_journal(self) -> None:
        after = self.applied

        def load() -> list[tuple[int, Command, Any]]:
            with self.sql.connect() as conn:
                return [(n, command, ()) for n, command in load_commands(conn, after=after)]

        rows = await asyncio.to_thread(load)
        if rows:
            self.gaps += 1
            self.apply(rows, now_ms())

    async def reach(self, command_no: int) -> None:
        """Wait until the replica has executed ``command_no`` (from the bus, or the journal)."""
        if self.applied >= command_no:
            return
        if self.failure is not None:
            raise ServiceUnavailable(self.failure)
        future = asyncio.get_running_loop().create_future()
        self._waiters.append((command_no, future))
        deadline = monotonic() + REACH_TIMEOUT_S
        try:
            await asyncio.wait_for(asyncio.shield(future), NUDGE_S)
            return
        except TimeoutError:
            pass
        while monotonic() < deadline and not future.done() and self.failure is None:
            await self.read_journal()
            if future.done():
                break
            try:
                await asyncio.wait_for(asyncio.shield(future), POLL_S)
            except TimeoutError:
                continue
        if not future.done():
            raise ServiceUnavailable(
                self.failure or "this gateway is behind the sequencer; retry shortly"
            )


class GatewayExchange(Exchange):
    """The ``Exchange`` as a gateway's services see it (docs/adr/0025).

    Not the writer: it never executes, journals or projects. ``engine`` is the replica's;
    ``submit`` and the remote services send their calls to the sequencer.
    """

    def __init__(
        self,
        sql: SqlEngine,
        found: Recovery,
        nats_url: str,
        prefix: str,
        *,
        metrics: Metrics | None = None,
        progress: RecoveryProgress | None = None,
        clock: Callable[[], int] = now_ms,
    ) -> None:
        # Exchange.__init__ recovers and projects as the writer does; a gateway does neither.
        self.sql = self.projection_sql = sql
        self.clock = clock
        self.metrics = metrics if metrics is not None else Metrics()
        self.on_committed = None
        self.policies = []
        self.accepting = False
        self.recovered_from_snapshot = found.snapshot
        self.engine_choice = select_engine()
        self.recovery = progress if progress is not None else RecoveryProgress()
        self._committer = None
        self._projector = None
        self._last_future = None
        self.replica = Replica(sql, found, self._committed)
        self.engine, self.client_orders = self.replica.engine, self.replica.client_orders
        self._command_no, self._last_time = found.command_no, found.time
        self.nats_url = nats_url
        self.calls_subject, self.committed_subject, keys_subject, self.gateways_subject = subjects(
            prefix
        )
        self.key_news = KeyNews(keys_subject)
        #: This process on the bus: its heartbeats and calls carry it (``GatewayWatch``).
        self.gateway_id = f"gateway-{secrets.token_hex(6)}"
        self._nats: Nats | None = None
        self._poller: asyncio.Task[None] | None = None
        self._calls = 0
        self._sequencer: str | None = None  # the instance that answered last
        self._outbox: list[tuple[dict[str, Any], asyncio.Future[Any]]] = []
        self._head = FreshRead(self._journal_head)
        self._positions = FreshRead(self._stored_positions)
        self._sending: set[asyncio.Task[None]] = set()
        self.metrics.gauge(
            "ballast_gateway_replica_command",
            "The last journal command this gateway's replica has executed",
            (),
            lambda: [((), float(self.replica.applied))],
        )
        self.metrics.gauge(
            "ballast_gateway_journal_reads",
            "Times the replica read the journal directly (a batch it did not hear of in time)",
            (),
            lambda: [((), float(self.replica.gaps))],
        )

    def _committed(self, items: Sequence[JournalItem], stored_at: int) -> None:
        self._command_no = items[-1].command_no
        if self.on_committed is not None:
            self.on_committed(items, stored_at)

    async def connect(self) -> None:
        """Join the bus and start following; the journal is read once for what came since
        the replica was recovered."""
        self._nats = nc = await connect(self.nats_url, f"ballast-{self.gateway_id}")
        await nc.subscribe(self.committed_subject, cb=self._on_committed_batch)
        await self.key_news.attach(nc)
        await self.replica.read_journal()
        self._poller = asyncio.ensure_future(self._poll())
        self.accepting = True

    def start(self) -> None:
        """Nothing to start on the loop: ``connect`` (awaited) joined the bus."""

    def stop(self) -> None:
        self.accepting = False
        if self._poller is not None:
            self._poller.cancel()

    async def close(self) -> None:
        self.stop()
        nc, self._nats = self._nats, None
        if nc is not None:
            await nc.close()

    async def _poll(self) -> None:
        while True:
            await asyncio.sleep(POLL_S)
            try:
                if self._nats is not None:  # the heartbeat the sequencer's GatewayWatch hears
                    await self._nats.publish(self.gateways_subject, self.gateway_id.encode())
                head = await asyncio.to_thread(self._journal_head)
                if head > self.replica.applied:
                    await self.replica.read_journal()
            except Exception:  # a failed poll must not end the polling
                log.warning("reading the journal failed", exc_info=True)

    async def _on_committed_batch(self, msg: Msg) -> None:
        try:
            batch = decode(msg.data)
            rows = [
                (int(n), decode_command(kind, payload), from_wire(triggers))
                for n, kind, payload, triggers in batch["rows"]
            ]
            stored_at = int(batch["stored_at"])
        except Exception:
            log.exception("a committed batch did not decode; reading the journal instead")
            await self.replica.read_journal()
            return
        if not self.replica.apply(rows, stored_at):
            await self.replica.read_journal()  # a gap: the bus lost a batch, or we joined late
            self.replica.apply(rows, stored_at)

    # ---- the writer's face ---------------------------------------------------------------

    @property
    def healthy(self) -> bool:
        nc = self._nats
        return (
            self.accepting and self.replica.failure is None and nc is not None and nc.is_connected
        )

    @property
    def projected_through(self) -> int:
        return self._command_no

    @property
    def projection_failure(self) -> str | None:
        return self.replica.failure

    def _journal_head(self) -> int:
        with self.sql.connect() as conn:
            return int(conn.execute(HEAD).scalar_one())

    def _stored_positions(self) -> tuple[int, int]:
        with self.sql.connect() as conn:
            return int(conn.execute(HEAD).scalar_one()), projected_through(conn)

    def execute(
        self, build: Callable[[int], Command], guarded: bool = False
    ) -> tuple[list[Any], asyncio.Future[None]]:
        raise ServiceUnavailable("a gateway does not execute commands; the sequencer does")

    async def submit(self, build: Callable[[int], Command]) -> list[Any]:
        """Run a command on the sequencer (stamped there); its events are not sent back."""
        await self.call("exchange", "submit", build(0))
        return []

    async def room(self) -> None:
        """The sequencer paces its own intake; its answers come later when it is behind."""

    async def sequencer_state(self) -> str:
        """For ``/readyz``: "ok" when a sequencer answers and takes commands."""
        try:
            taking = await asyncio.wait_for(self.call("exchange", "ping"), PING_TIMEOUT_S)
        except (ServiceUnavailable, TimeoutError) as error:
            return f"no answer ({error or 'timed out'}); commands wait or fail with 503"
        return "ok" if taking else "the sequencer is not taking commands"

    async def caught_up(self) -> None:
        """Before a read renders: the replica reaches everything stored so far."""
        await self.replica.reach(await self._head())

    async def barrier(self) -> None:
        """What the replica holds is stored already: nothing to wait for."""

    async def projected(self) -> None:
        """Wait until the query tables hold everything stored when the read began."""
        head, projected = await self._positions()
        deadline = monotonic() + 30.0
        pause = 0.002
        while projected < head:
            if monotonic() > deadline:
                raise ServiceUnavailable("the query tables are behind the journal; retry shortly")
            await asyncio.sleep(pause)
            pause = min(pause * 2, 0.05)
            projected = (await self._positions())[1]

    # ---- calls to the sequencer -----------------------------------------------------------

    async def call(self, service: str, method: str, *args: Any) -> Any:
        """Run a service call on the sequencer; its outcome once the replica reached it."""
        if self._nats is None or not self.accepting:
            raise ServiceUnavailable("this gateway is not connected to the sequencer")
        self._calls += 1
        call = {
            "service": service,
            "method": method,
            "args": [to_wire(a) for a in args],
            "gateway": self.gateway_id,
            "id": f"{self.gateway_id}-{self._calls}",
        }
        answered: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self._outbox.append((call, answered))
        if len(self._outbox) == 1:
            asyncio.get_running_loop().call_soon(self._send_outbox)
        answer = await answered
        self._sequencer = str(answer.get("sequencer", "")) or self._sequencer
        if "unavailable" in answer:
            raise ServiceUnavailable(str(answer["unavailable"]))
        if "invalid" in answer:
            raise RuntimeError(f"the sequencer refused the call: {answer['invalid']}")
        await self.replica.reach(int(answer["through"]))
        if "error" in answer:
            raise error_from_wire(answer["error"])
        return from_wire(answer["value"])

    def _send_outbox(self) -> None:
        """The calls made in this turn of the loop, in one message (in the order made): one
        bus round trip, and one message for the sequencer to take, for all of them."""
        outbox, self._outbox = self._outbox, []
        task = asyncio.ensure_future(self._send_batch(outbox))
        self._sending.add(task)
        task.add_done_callback(self._sending.discard)

    async def _send_batch(self, outbox: list[tuple[dict[str, Any], asyncio.Future[Any]]]) -> None:
        nc = self._nats
        try:
            if nc is None:
                raise ServiceUnavailable("this gateway is not connected to the sequencer")
            if len(outbox) == 1:
                msg = await self._send(nc, encode(outbox[0][0]))
                answers = [decode(msg.data)]
            else:
                msg = await self._send(nc, encode({"batch": [call for call, _ in outbox]}))
                answers = list(decode(msg.data)["answers"])
            if len(answers) != len(outbox):
                raise RuntimeError("the sequencer answered a batch with another count")
        except Exception as error:
            for _, answered in outbox:
                if not answered.done():
                    answered.set_exception(error)
            return
        for (_, answered), answer in zip(outbox, answers, strict=True):
            if not answered.done():
                answered.set_result(answer)

    async def _send(self, nc: Nats, request: bytes) -> Msg:
        """The answer to ``request``. Sent to whichever sequencer holds the lease; with no
        answer in time, sent again with its id to the sequencer that answered last, which
        answers a call it has seen with its first answer (a lost reply never places twice).
        One that is gone, or another, is not asked: 503, and the client retries."""
        deadline = monotonic() + TAKEOVER_WAIT_S
        try:
            while True:
                try:
                    return await nc.request(self.calls_subject, request, timeout=CALL_TRY_S)
                except NoRespondersError:
                    # Delivered to no one, so safe to send again: a standby taking over
                    # subscribes within a second or two of the leader's death.
                    if monotonic() > deadline:
                        raise
                    await asyncio.sleep(0.05)
                except NatsTimeout:
                    if self._sequencer is None:
                        raise
                    break
            again = f"{self.calls_subject}.{self._sequencer}"
            for _ in range(CALL_TRIES - 1):
                try:
                    return await nc.request(again, request, timeout=CALL_TRY_S)
                except NatsTimeout:
                    continue
            raise NatsTimeout
        except NoRespondersError:
            raise ServiceUnavailable("no sequencer is taking commands; retry shortly") from None
        except NatsTimeout:
            raise ServiceUnavailable(
                "the sequencer did not answer in time; retry with the same client_order_id"
            ) from None

    def pending(self, service: str, method: str, *args: Any) -> Pending[Any]:
        """``call`` sent now (calls leave in the order they are made), answered later."""
        return _Called(self, asyncio.ensure_future(self.call(service, method, *args)))


class _Called(Pending[T]):
    __slots__ = ("_answer",)

    def __init__(self, exchange: Exchange, answer: asyncio.Future[T]) -> None:
        super().__init__(exchange)
        self._answer = answer

    async def result(self) -> T:
        return await self._answer


class RemoteTrading(Trading):
    """Order entry on a gateway: each command runs on the sequencer's ``Trading``."""

    def __init__(self, exchange: GatewayExchange, reads: Reads) -> None:
        super().__init__(exchange, reads)
        self.gateway = exchange

    def place(self, order: Any, guarded: bool = False) -> Pending[OrderOutcome]:
        return self.gateway.pending("trading", "place", order, guarded)

    def cancel(
        self, account_id: str, order_id: int, reason: CancelReason = CancelReason.USER
    ) -> Pending[OrderOutcome]:
        return self.gateway.pending("trading", "cancel", account_id, order_id, reason)

    def amend(
        self, account_id: str, order_id: int, price: int | None, size: int | None
    ) -> Pending[OrderOutcome]:
        return self.gateway.pending("trading", "amend", account_id, order_id, price, size)

    def cancel_all(
        self, account_id: str, market_id: str | None = None
    ) -> Pending[CancelAllOutcome]:
        if market_id is not None:
            self.reads.market(market_id)
        return self.gateway.pending("trading", "cancel_all", account_id, market_id)


class RemoteDeadMan(DeadMan):
    """Dead-man switches live on the sequencer, which fires them."""

    def __init__(self, exchange: GatewayExchange, reads: Reads, trading: Trading) -> None:
        super().__init__(reads, trading)
        self.gateway = exchange

    async def heartbeat(self, api_key: str, account_id: str, timeout_s: int) -> Switch | None:
        found: Switch | None = await self.gateway.call(
            "dead_man", "heartbeat", api_key, account_id, timeout_s
        )
        return found

    async def disarm(self, api_key: str) -> None:
        await self.gateway.call("dead_man", "disarm", api_key)


class RemoteFaucet(Faucet):
    """The faucet's daily cap holds across gateways: the sequencer's faucet grants."""

    def __init__(self, settings: Settings, exchange: GatewayExchange, reads: Reads) -> None:
        super().__init__(settings, exchange, reads)
        self.gateway = exchange

    async def drip(self, account_id: str, amount: int | None = None) -> FaucetGrant:
        found: FaucetGrant = await self.gateway.call("faucet", "drip", account_id, amount)
        return found


class RemoteOrderGroups(OrderGroups):
    """Order groups live on the sequencer, where fills count toward them as they happen."""

    def __init__(self, exchange: GatewayExchange, reads: Reads, trading: Trading) -> None:
        super().__init__(reads, trading)
        self.gateway = exchange

    async def create(self, account_id: str, max_filled_size: int, window_s: int) -> GroupState:
        found: GroupState = await self.gateway.call(
            "order_groups", "create", account_id, max_filled_size, window_s
        )
        return found

    async def reset(self, account_id: str, group_id: str) -> GroupState:
        found: GroupState = await self.gateway.call("order_groups", "reset", account_id, group_id)
        return found

    async def delete(self, account_id: str, group_id: str) -> DeletedGroup:
        found: DeletedGroup = await self.gateway.call(
            "order_groups", "delete", account_id, group_id
        )
        return found

    async def state_of(self, account_id: str, group_id: str) -> GroupState:
        found: GroupState = await self.gateway.call(
            "order_groups", "state_of", account_id, group_id
        )
        return found

    async def states_of(self, account_id: str) -> list[GroupState]:
        found = await self.gateway.call("order_groups", "states_of", account_id)
        return list(found)
