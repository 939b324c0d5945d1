"""The sequencer's side of the bus: it takes the gateways' calls and publishes what it commits.

Subjects, under the venue's prefix (``ballast`` unless ``--nats-subject`` says otherwise):
``<prefix>.calls`` (request/reply: a service call from a gateway, or a batch of them, answered
with their outcomes; ``<prefix>.calls.<instance>`` takes a gateway's retries to this process
alone), ``<prefix>.committed`` (each stored batch of journal rows, in journal order, before any
answer to its commands is sent), ``<prefix>.keys`` (an API key issued, changed or revoked:
every process reloads it from the store) and ``<prefix>.gateways`` (gateways' heartbeats, for
``GatewayWatch``). Only the lease holder subscribes to the calls, so gateways follow a takeover
without restarting (docs/adr/0025).

A call runs the same service method a REST route runs in the one-process server, in the order
the calls arrive; a command it executes is answered once stored, with the journal position
the gateway must reach before it answers its own client.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from nats.aio.client import Client as Nats
from nats.aio.msg import Msg

from ..domain import DomainError
from ..domain.commands import Command
from ..store.journal import encode_command
from ..store.projection import JournalItem
from .bus import KeyNews, connect, subjects
from .bus_codec import (
    BusMessageInvalid,
    decode,
    encode,
    error_to_wire,
    from_wire,
    to_wire,
)
from .exchange import ServiceUnavailable, at_time
from .gateway_watch import GatewayWatch
from .trading import OrderOutcome, Pending
from .venue import Venue

log = logging.getLogger(__name__)
ANSWERS_KEPT = 100_000  # answers kept for gateways' retries: minutes of calls at full load

# Which methods a gateway may call, per service: the entrypoints' own, nothing internal.
CALLS: dict[str, frozenset[str]] = {
    "trading": frozenset({"place", "cancel", "amend", "cancel_all"}),
    "exchange": frozenset({"submit", "ping"}),
    "dead_man": frozenset({"heartbeat", "disarm"}),
    "order_groups": frozenset({"create", "reset", "delete", "state_of", "states_of"}),
    "faucet": frozenset({"drip"}),
}


def committed_rows(items: Sequence[JournalItem]) -> list[list[Any]]:
    """A stored batch as the gateways' replicas execute it: each row's command number, kind,
    payload and the order groups it triggered (which a replica cannot work out itself)."""
    rows: list[list[Any]] = []
    for item in items:
        kind, payload = item.encoded or encode_command(item.command)
        rows.append([item.command_no, kind, payload, to_wire(item.group_triggers)])
    return rows


class _ExchangeCalls:
    """``exchange.submit`` as a gateway calls it: with a command, stamped here."""

    def __init__(self, venue: Venue) -> None:
        self._exchange = venue.exchange

    async def submit(self, command: Command) -> None:
        await self._exchange.submit(at_time(command))

    def ping(self) -> bool:
        """A gateway's readiness check: a sequencer answers, and takes commands."""
        return self._exchange.healthy


class SequencerLink:
    def __init__(self, venue: Venue, url: str, prefix: str) -> None:
        self.venue = venue
        self.url = url
        self.calls_subject, self.committed_subject, keys_subject, self.gateways_subject = subjects(
            prefix
        )
        self.key_news = KeyNews(keys_subject)
        self.watch = GatewayWatch(venue.trading, venue.reads)
        self._sweeper: asyncio.Task[None] | None = None
        self._targets: dict[str, Any] = {
            "trading": venue.trading,
            "exchange": _ExchangeCalls(venue),
            "dead_man": venue.dead_man,
            "order_groups": venue.order_groups,
            "faucet": venue.faucet,
        }
        self._nats: Nats | None = None
        self._answers: set[asyncio.Task[None]] = set()
        self.calls = 0
        self.retries = 0  # calls answered again from ``_answered``
        #: This process on the bus: retries of a call go to it alone (``<calls>.<instance>``).
        self.instance = f"sequencer-{secrets.token_hex(6)}"
        self._answered: OrderedDict[str, asyncio.Future[bytes]] = OrderedDict()
        #: The last command stored (and published): an answer is sent once its command is.
        self.stored_through = venue.exchange.command_no
        self.publish_failures = 0
        metrics = venue.exchange.metrics
        for name, text, read in (
            ("ballast_bus_calls", "Gateways' calls taken (a running count)", lambda: self.calls),
            (
                "ballast_bus_call_retries",
                "Calls a gateway sent again after a lost reply, answered with the first answer",
                lambda: self.retries,
            ),
            (
                "ballast_bus_publish_failures",
                "Committed batches that could not be published (gateways read them from the "
                "journal)",
                lambda: self.publish_failures,
            ),
            (
                "ballast_gateway_guards_canceled",
                "Cancel-on-disconnect orders canceled because their gateway fell silent",
                lambda: self.watch.canceled,
            ),
        ):
            metrics.gauge(name, text, (), _sample(read))

    async def start(self) -> None:
        self._nats = await connect(self.url, "ballast-sequencer")
        # A burst of calls waits in the subscription instead of being dropped (NATS's
        # slow-consumer limit): a dropped call is a client's order left unanswered.
        for subject in (self.calls_subject, f"{self.calls_subject}.{self.instance}"):
            await self._nats.subscribe(subject, cb=self._on_call, pending_msgs_limit=1_000_000)
        await self.key_news.attach(self._nats)
        await self._nats.subscribe(self.gateways_subject, cb=self._on_beat)
        self._sweeper = asyncio.ensure_future(self._sweep())

    async def stop(self) -> None:
        if self._sweeper is not None:
            self._sweeper.cancel()
        nc, self._nats = self._nats, None
        if nc is not None:
            await nc.drain()

    @property
    def connected(self) -> bool:
        return self._nats is not None and self._nats.is_connected

    def committed(self, items: Sequence[JournalItem], stored_at: int) -> None:
        """A commit listener: publish the batch before any of its commands is answered."""
        if items:
            self.stored_through = items[-1].command_no
        nc = self._nats
        if nc is None or not items:
            return
        payload = encode({"stored_at": stored_at, "rows": committed_rows(items)})
        task = asyncio.ensure_future(nc.publish(self.committed_subject, payload))
        task.add_done_callback(self._published)

    def _published(self, task: asyncio.Future[None]) -> None:
        # A lost batch is not lost data: gateways read the gap from the journal.
        if not task.cancelled() and task.exception() is not None:
            self.publish_failures += 1
            log.warning("publishing a committed batch failed: %r", task.exception())

    async def _on_beat(self, msg: Msg) -> None:
        self.watch.heard(msg.data.decode())

    async def _sweep(self) -> None:
        while True:
            await asyncio.sleep(1.0)
            try:
                await self.watch.sweep()
            except Exception:  # a failed sweep must not end the sweeping
                log.exception("sweeping silent gateways' guarded orders failed")

    async def _on_call(self, msg: Msg) -> None:
        """One call, or a gateway's batch of them (``{"batch": [...]}``: the calls its
        clients made in one turn of its loop), run now in order; answered once all are."""
        try:
            message = decode(msg.data)
        except BusMessageInvalid as error:
            await self._respond(msg, encode({"invalid": str(error)}))
            return
        batch = message.get("batch")
        if batch is None:
            answers = [self._take(message)]
        elif isinstance(batch, list):
            answers = [self._take(call) for call in batch]
        else:
            await self._respond(msg, encode({"invalid": "a batch is a list of calls"}))
            return
        if all(answer.done() for answer in answers):
            await self._respond_all(msg, batch is not None, answers)
        else:
            # The commands ran (or were refused) now, in arrival order; the answer follows
            # their commit, on its own, so that calls behind it need not wait for the disk.
            task = asyncio.ensure_future(self._respond_all(msg, batch is not None, answers))
            self._answers.add(task)
            task.add_done_callback(self._answers.discard)

    async def _respond_all(
        self, msg: Msg, batch: bool, answers: list[asyncio.Future[bytes]]
    ) -> None:
        bodies = [await asyncio.shield(answer) for answer in answers]
        body = b'{"answers":[' + b",".join(bodies) + b"]}" if batch else bodies[0]
        await self._respond(msg, body)

    def _take(self, call: Any) -> asyncio.Future[bytes]:
        """Run one call now; the future of its encoded answer. A call seen before (a
        gateway's retry after a lost reply) gets its first answer, run once."""
        self.calls += 1
        loop = asyncio.get_running_loop()
        try:
            call_id = str(call.get("id", ""))
            kept = self._answered.get(call_id) if call_id else None
            if kept is not None:
                self.retries += 1
                return kept
            answer = self._keep(call_id) if call_id else loop.create_future()
        except AttributeError:
            answer = loop.create_future()
            answer.set_result(encode({"invalid": "a call is an object"}))
            return answer
        try:
            service, method = str(call["service"]), str(call["method"])
            if method not in CALLS.get(service, frozenset()):
                raise BusMessageInvalid(f"{service}.{method} is not a call")
            args = [from_wire(arg) for arg in call["args"]]
            gateway = str(call.get("gateway", ""))
            outcome = getattr(self._targets[service], method)(*args)
        except (BusMessageInvalid, KeyError, TypeError, ValueError) as error:
            answer.set_result(encode({"invalid": str(error)}))
            return answer
        except Exception as error:  # DomainError, ServiceUnavailable: answered like the rest
            self._settle(answer, _failed(error))
            return answer
        if isinstance(outcome, Pending):
            if service == "trading" and method == "place" and args[1] is True:
                outcome = self._guarded(gateway, outcome)
            else:
                outcome = outcome.result()
        if isinstance(outcome, Awaitable):
            task = asyncio.ensure_future(self._settle_later(answer, outcome))
            self._answers.add(task)
            task.add_done_callback(self._answers.discard)
        else:
            self._settle(answer, lambda: outcome)
        return answer

    def _keep(self, call_id: str) -> asyncio.Future[bytes]:
        """Where the call's answer is kept for a retry of it (the newest ``ANSWERS_KEPT``)."""
        kept: asyncio.Future[bytes] = asyncio.get_running_loop().create_future()
        self._answered[call_id] = kept
        while len(self._answered) > ANSWERS_KEPT:
            self._answered.popitem(last=False)
        return kept

    async def _guarded(self, gateway: str, placing: Pending[OrderOutcome]) -> OrderOutcome:
        """A placement under cancel-on-disconnect: should it rest, its gateway guards it."""
        placed = await placing.result()
        if placed.order.status == "open":
            self.watch.guarded(gateway, placed.order.account_id, placed.order.order_id)
        return placed

    async def _settle_later(self, answer: asyncio.Future[bytes], outcome: Awaitable[Any]) -> None:
        try:
            value = await outcome
        except Exception as error:
            self._settle(answer, _failed(error))
            return
        self._settle(answer, lambda: value)

    def _settle(self, answer: asyncio.Future[bytes], value: Callable[[], Any]) -> None:
        """Encode a call's outcome (or refusal) as its answer, with the stored position."""
        stored, me = self.stored_through, self.instance
        try:
            body = {"value": to_wire(value()), "through": stored, "sequencer": me}
        except DomainError as error:
            body = {"error": error_to_wire(error), "through": stored, "sequencer": me}
        except ServiceUnavailable as error:
            body = {"unavailable": str(error), "sequencer": me}
        except Exception as error:
            log.exception("a gateway's call failed")
            body = {"unavailable": f"the sequencer failed the call ({type(error).__name__})"}
        if not answer.done():
            answer.set_result(encode(body))

    async def _respond(self, msg: Msg, body: bytes) -> None:
        try:
            await msg.respond(body)
        except Exception as error:  # the gateway retries the call, to this sequencer
            log.warning("answering a gateway failed: %r", error)


def _sample(read: Callable[[], int]) -> Callable[[], list[tuple[tuple[()], float]]]:
    return lambda: [((), float(read()))]


def _failed(error: Exception) -> Callable[[], Any]:
    def reraise() -> Any:
        raise error

    return reraise
