"""Reads: what every entrypoint may know of the exchange, from the live engine or the store.

The only code outside the domain that looks at engine state. A read of the live engine is taken
on the event loop between commands, so it is consistent; the caller then waits for
``Exchange.barrier`` before showing it (``Reads.settled``), so it never shows state a crash could
lose. A read of the store waits for the projector first, so it shows the caller's own writes.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any, TypeVar

from sqlalchemy.exc import OperationalError
from starlette.concurrency import run_in_threadpool

from ..domain import DomainError
from ..domain.market import Market
from ..domain.selection import engine_name
from ..store import queries
from ..store.database import Database, begin_write, is_lock_wait
from ..store.order_records import OrderRecord
from .exchange import Exchange, ServiceUnavailable

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class Balance:
    """An account's cash in micro-USDC: free, and held for open orders and positions."""

    available: int
    reserved: int

    @property
    def total(self) -> int:
        return self.available + self.reserved


@dataclass(frozen=True, slots=True)
class PositionRecord:
    """A position marked at the mid when both sides quote, else at the last trade."""

    market_id: str
    size: int
    average_price_micro: int | None  # micro price units; None when flat
    mark: int | None  # ticks
    unrealized_pnl: int
    realized_pnl: int
    margin: int


@dataclass(frozen=True, slots=True)
class QueuePositionRecord:
    """Where a resting order waits at its price: what rests before it, by time priority."""

    order_id: int
    market_id: str
    price: int  # ticks
    contracts_ahead: int
    orders_ahead: int


class Reads:
    def __init__(self, exchange: Exchange, database: Database) -> None:
        self.exchange = exchange
        self.database = database

    # ---- the live engine ----------------------------------------------------------------------

    def market(self, market_id: str) -> Market:
        """A listed market (read-only to the caller), or ``MARKET_NOT_FOUND``."""
        market = self.exchange.engine.markets.get(market_id)
        if market is None:
            raise DomainError(
                "MARKET_NOT_FOUND", f"market {market_id!r} does not exist", {"market_id": market_id}
            )
        return market

    def find_market(self, market_id: str) -> Market | None:
        return self.exchange.engine.markets.get(market_id)

    def markets(self) -> list[Market]:
        return list(self.exchange.engine.markets.values())

    def has_account(self, account_id: str) -> bool:
        return account_id in self.exchange.engine.accounts

    def require_account(self, account_id: str) -> None:
        """``ACCOUNT_NOT_FOUND`` unless the account exists."""
        self.exchange.engine.account(account_id)

    def balance(self, account_id: str) -> Balance:
        engine = self.exchange.engine
        return Balance(engine.available(account_id), engine.reserved(account_id))

    def position(self, account_id: str, market_id: str) -> PositionRecord:
        engine = self.exchange.engine
        position = engine.account(account_id).positions.get(market_id)
        market = self.market(market_id)
        bid, ask = market.book.best_bid(), market.book.best_ask()
        mark = (bid + ask) // 2 if bid is not None and ask is not None else market.last_price
        if position is None or position.size == 0:
            realized = 0 if position is None else position.realized_pnl
            return PositionRecord(market_id, 0, None, mark, 0, realized, 0)
        floor, cap, tv = market.floor, market.cap, market.tick_value
        return PositionRecord(
            market_id,
            position.size,
            position.average_price_micro(floor, cap, tv),
            mark,
            position.unrealized_pnl(mark, floor, cap, tv) if mark is not None else 0,
            position.realized_pnl,
            position.collateral,
        )

    def positions(self, account_id: str) -> list[PositionRecord]:
        """The account's open (non-zero) positions, by market id."""
        held = self.exchange.engine.account(account_id).positions
        return [self.position(account_id, m) for m in sorted(held) if held[m].size != 0]

    def open_order(self, account_id: str, order_id: int) -> OrderRecord | None:
        """The account's order if it is still open (resting) now."""
        order = self.exchange.engine.orders.get(order_id)
        if order is None or order.account_id != account_id:
            return None
        return OrderRecord.live(order)

    def queue_position(self, account_id: str, order_id: int) -> QueuePositionRecord | None:
        """The account's resting order's place in its level's queue; None unless it is the
        account's and open."""
        order = self.exchange.engine.orders.get(order_id)
        if order is None or order.account_id != account_id:
            return None
        book = self.exchange.engine.markets[order.market_id].book
        ahead = book.queue_ahead(order.is_buy, order.price, order_id)
        if ahead is None:
            return None
        contracts, orders = ahead
        return QueuePositionRecord(order_id, order.market_id, order.price, contracts, orders)

    def account_open_order_ids(self, account_id: str) -> list[int]:
        """Every resting order of the account, in all markets, oldest first."""
        account = self.exchange.engine.accounts.get(account_id)
        if account is None:
            return []
        return sorted(
            order_id
            for position in account.positions.values()
            for order_id in (*position.buys, *position.sells)
        )

    def grouped_open_orders(self, account_ids: Iterable[str]) -> list[tuple[str, int, str]]:
        """``(account_id, order_id, order_group_id)`` of every resting order of these accounts
        that was placed in an order group."""
        accounts = self.exchange.engine.accounts
        found = []
        for account_id in account_ids:
            account = accounts.get(account_id)
            if account is None:
                continue
            for position in account.positions.values():
                for order in (*position.buys.values(), *position.sells.values()):
                    if order.order_group_id is not None:
                        found.append((account_id, order.order_id, order.order_group_id))
        return found

    def resting(
        self, account_id: str, market_id: str
    ) -> tuple[list[OrderRecord], list[OrderRecord]]:
        """The account's resting buys and sells in one market."""
        account = self.exchange.engine.accounts.get(account_id)
        position = None if account is None else account.positions.get(market_id)
        if position is None:
            return [], []
        return (
            [OrderRecord.live(o) for o in position.buys.values()],
            [OrderRecord.live(o) for o in position.sells.values()],
        )

    @property
    def engine_name(self) -> str:
        """Which engine twin holds the state: ``compiled`` or ``reference``."""
        return engine_name(self.exchange.engine)

    @property
    def next_trade_id(self) -> int:
        """The id the next trade will have."""
        return self.exchange.engine.next_trade_id

    @property
    def seq(self) -> int:
        """The last event's sequence number."""
        return self.exchange.engine.seq

    def next_expiry(self) -> int | None:
        return self.exchange.engine.next_expiry()

    async def settled(self, render: Callable[[], T]) -> T:
        """Render from the live engine now, then answer once all it shows is stored.

        Rendering first and then waiting for the last command executed so far is what keeps a
        reply from describing commands that ran while it waited (DESIGN §6). On a gateway the
        replica first reaches everything stored, so a read shows any gateway's writes.
        """
        await self.exchange.caught_up()
        result = render()
        await self.exchange.barrier()
        return result

    # ---- the store ----------------------------------------------------------------------------

    async def stored(self, query: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """Run a store query in the thread pool, once the query tables hold everything
        executed so far (so it shows the caller's own writes, and only stored state)."""
        await self.exchange.projected()

        def run() -> T:
            with self.database.engine.connect() as conn:
                return query(conn, *args, **kwargs)

        return await run_in_threadpool(run)

    async def write(self, action: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """Run a store write outside the journal (keys, market details) in one transaction,
        once the query tables hold everything executed so far (it may name an account or a
        market that a command just created)."""
        await self.exchange.projected()

        def run() -> T:
            with begin_write(self.database.engine) as conn:
                return action(conn, *args, **kwargs)

        try:
            return await run_in_threadpool(run)
        except OperationalError as error:
            if is_lock_wait(error):  # contention, not a broken store: the client may retry
                raise ServiceUnavailable("the database is busy; retry shortly") from None
            raise

    async def order(self, account_id: str, order_id: int) -> OrderRecord | None:
        """One of the account's orders as stored (None: not theirs, or no such order)."""
        return await self.stored(queries.get_order, account_id, order_id)
