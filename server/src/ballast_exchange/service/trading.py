"""Trading: place, cancel, amend and cancel-all, for every entrypoint (REST, stream, dashboard).

Each method runs its command on the engine *now*, in the order it is called, and returns a
``Pending``: its ``result()`` is the outcome once the command is stored. REST awaits it straight
away; the stream executes a connection's requests in arrival order and lets the answers follow
as their commits land, so a client may pipeline.

An outcome describes the state its own command produced: it is built from the order as it stood
just before the command and the command's own events, never read back later.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, replace
from typing import Generic, TypeVar

from ..domain import CancelReason, DomainError
from ..domain import commands as c
from ..domain.events import Event, OrderAccepted, OrderClosed, Trade
from ..store.order_records import FillRecord, OrderRecord, TradeRecord
from .exchange import Exchange
from .reads import Reads

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class OrderOutcome:
    """An order as its command left it; for a placement, also what it traded on arrival."""

    order: OrderRecord
    fills: tuple[FillRecord, ...] = ()
    replayed: bool = False  # a client_order_id retry: the first order as it is now, nothing new


@dataclass(frozen=True, slots=True)
class CancelAllOutcome:
    canceled: tuple[int, ...]


class Pending(Generic[T]):
    """A command executed now; ``result()`` gives its outcome once it is stored, or raises
    the ``DomainError`` that refused it once everything executed before it is stored."""

    __slots__ = ("_error", "_exchange", "_stored", "_value")

    def __init__(
        self,
        exchange: Exchange,
        value: T | None = None,
        stored: asyncio.Future[None] | None = None,
        error: DomainError | None = None,
    ) -> None:
        self._exchange = exchange
        self._value = value
        self._stored = stored
        self._error = error

    async def result(self) -> T:
        if self._stored is not None:
            await self._exchange.durable(self._stored)
        else:  # a refusal (or a retry) is answered only once what ran before it is stored
            await self._exchange.barrier()
        if self._error is not None:
            raise self._error
        assert self._value is not None
        return self._value


class _FromStore(Pending[OrderOutcome]):
    """An answer the store gives once it holds everything executed so far: a retried
    ``client_order_id``'s first order, or why an order could not be changed."""

    __slots__ = ("_account_id", "_order_id", "_reads", "_retry")

    def __init__(
        self, reads: Reads, account_id: str, order_id: int, retry: c.PlaceOrder | None
    ) -> None:
        super().__init__(reads.exchange)
        self._reads, self._account_id, self._order_id, self._retry = (
            reads,
            account_id,
            order_id,
            retry,
        )

    async def result(self) -> OrderOutcome:
        found = await self._reads.order(self._account_id, self._order_id)
        retry = self._retry
        if retry is not None:
            assert found is not None
            if not same_request(found, retry):
                raise DomainError(
                    "DUPLICATE_CLIENT_ORDER_ID",
                    "this client_order_id was used before for a different order",
                    {"client_order_id": retry.client_order_id, "order_id": self._order_id},
                )
            return OrderOutcome(found, replayed=True)
        if found is None:
            raise DomainError("ORDER_NOT_FOUND", "no such order", {"order_id": self._order_id})
        raise DomainError(
            "ORDER_NOT_CANCELABLE",
            f"the order is {found.status}",
            {"order_id": self._order_id, "status": found.status},
        )


def same_request(first: OrderRecord, retry: c.PlaceOrder) -> bool:
    """Whether a retried placement asks for the order its ``client_order_id`` first placed."""
    return (
        first.market_id == retry.market_id
        and first.side == retry.side
        and first.order_type == retry.order_type
        and first.size == retry.size
        and (retry.price is None or first.price == retry.price)
        and first.time_in_force == retry.time_in_force
        and first.expire_at == retry.expire_at
        and first.post_only == retry.post_only
        and first.reduce_only == retry.reduce_only
        and first.stp == retry.stp
        and first.order_group_id == retry.order_group_id
    )


def placed(account_id: str, events: list[Event]) -> OrderOutcome:
    """A placement's outcome, from its own events (all of them in one command)."""
    accepted = events[0]
    assert isinstance(accepted, OrderAccepted)
    order = OrderRecord.accepted(accepted).folded(events)
    order_id = accepted.order_id
    fills = tuple(
        TradeRecord.of(e).fill_for(account_id)
        for e in events
        if isinstance(e, Trade) and e.taker_order_id == order_id
    )
    return OrderOutcome(order, fills)


class Trading:
    def __init__(self, exchange: Exchange, reads: Reads) -> None:
        self.exchange = exchange
        self.reads = reads

    def _run(
        self, command: c.Command, guarded: bool = False
    ) -> tuple[list[Event], asyncio.Future[None]]:
        """Execute now with the exchange's time; raises ``DomainError`` for a rejection."""
        return self.exchange.execute(lambda now: replace(command, time=now), guarded)

    def place(self, order: c.PlaceOrder, guarded: bool = False) -> Pending[OrderOutcome]:
        """Place ``order`` (its ``time`` is stamped here). ``guarded``: under cancel-on-
        disconnect, stored so should it rest. A retry of a ``client_order_id`` answers the first
        order as it is now (``replayed``), or ``DUPLICATE_CLIENT_ORDER_ID`` if it differs."""
        if order.client_order_id is not None:
            first = self.exchange.client_orders.get((order.account_id, order.client_order_id))
            if first is not None:
                return _FromStore(self.reads, order.account_id, first, order)
        try:
            events, stored = self._run(order, guarded)
        except DomainError as error:
            return Pending(self.exchange, error=error)
        return Pending(self.exchange, placed(order.account_id, events), stored)

    def cancel(
        self, account_id: str, order_id: int, reason: CancelReason = CancelReason.USER
    ) -> Pending[OrderOutcome]:
        return self._change(account_id, order_id, c.CancelOrder(0, account_id, order_id, reason))

    def amend(
        self, account_id: str, order_id: int, price: int | None, size: int | None
    ) -> Pending[OrderOutcome]:
        """``price`` in ticks and ``size`` the new total; either may stay as it is."""
        return self._change(
            account_id, order_id, c.AmendOrder(0, account_id, order_id, price, size)
        )

    def _change(self, account_id: str, order_id: int, command: c.Command) -> Pending[OrderOutcome]:
        before = self.reads.open_order(account_id, order_id)
        try:
            events, stored = self._run(command)
        except DomainError as error:
            if error.code == "ORDER_NOT_FOUND":  # not open: say whether it finished or isn't theirs
                return _FromStore(self.reads, account_id, order_id, None)
            return Pending(self.exchange, error=error)
        assert before is not None  # the engine changed it, so it was open and theirs
        return Pending(self.exchange, OrderOutcome(before.folded(events)), stored)

    def cancel_all(
        self, account_id: str, market_id: str | None = None
    ) -> Pending[CancelAllOutcome]:
        if market_id is not None:
            self.reads.market(market_id)
        try:
            events, stored = self._run(c.CancelAll(0, account_id, market_id))
        except DomainError as error:
            return Pending(self.exchange, error=error)
        canceled = tuple(e.order_id for e in events if isinstance(e, OrderClosed))
        return Pending(self.exchange, CancelAllOutcome(canceled), stored)
