"""The exchange as stored, kept by folding committed events: what the stream may show (DESIGN §6).

The live engine runs ahead of its group commit, so the stream cannot read it when a commit lands.
Instead it keeps small read models of its own, built from the live engine once at start (before
the exchange takes its first command, when live and stored agree) and moved on only by the events
of stored commands (``Models.apply``, called by the hub in commit order):

- per market: the aggregated book levels of each side, the last trade price, its status and
  settlement, the recent trades and the traded volume per second of the last 24 hours;
- per account: its open orders (as ``orders`` rows), positions, and the ledger balances behind
  its ``balance``.

The orders open at start are not copied into records then (seconds and half a GB at a million):
they stay the engine's compact columns (``Seed``) until an account's orders are read
(``open_orders``) or an event touches an order of a watched account; an event on a seeded order
of an account nobody watches waits in ``pending`` and is folded into the record when it is made.
Either way a record shows the order as the stored events left it, at the models' ``seq``.

``seq`` is the event seq of the last stored event: the ``exchange_seq`` every message carries
(a command without events leaves it where it was).
"""

from __future__ import annotations

import array
import sys
from bisect import bisect_left, bisect_right, insort
from collections import deque
from collections.abc import Container, Iterator
from dataclasses import dataclass, field, replace
from decimal import Decimal
from typing import Any

from sqlalchemy import Connection

from ..domain import Engine
from ..domain import events as ev
from ..domain import snapshot_codec as codec
from ..domain.ledger import cash_key, collateral_key, orders_key
from ..store import queries
from ..store.order_groups import GroupTrigger
from ..store.order_records import OrderRecord, TradeRecord
from ..store.projection import JournalItem, ledger_owner

RECENT_TRADES = 50
DAY_S = 86_400
MICRO = Decimal(1_000_000)


class Volume:
    """Contracts traded in a sliding 24-hour window, kept per second."""

    __slots__ = ("buckets", "total")

    def __init__(self) -> None:
        self.buckets: deque[list[int]] = deque()  # [second, contracts], oldest first
        self.total = 0

    def add(self, time_ms: int, size: int) -> None:
        second = time_ms // 1000
        if self.buckets and self.buckets[-1][0] == second:
            self.buckets[-1][1] += size
        else:
            self.buckets.append([second, size])
        self.total += size

    def since(self, now_ms: int) -> int:
        """Volume of the 24 hours before ``now_ms``, dropping what has aged out."""
        cutoff = now_ms // 1000 - DAY_S
        buckets = self.buckets
        while buckets and buckets[0][0] < cutoff:
            self.total -= buckets.popleft()[1]
        return self.total


class LastPrices:
    """The last trade price as it stood at the end of each second of the last 24 hours, kept
    only where it changed, and ``reference``: the last price at or before a day ago (the base
    of ``change_24h``; to the second, like ``Volume``)."""

    __slots__ = ("buckets", "reference")

    def __init__(self) -> None:
        self.buckets: deque[list[int]] = deque()  # [second, price in ticks], oldest first
        self.reference: int | None = None

    def add(self, time_ms: int, price: int) -> None:
        second = time_ms // 1000
        buckets = self.buckets
        if buckets and buckets[-1][0] == second:
            buckets[-1][1] = price
        elif (buckets[-1][1] if buckets else self.reference) != price:
            buckets.append([second, price])

    def day_ago(self, now_ms: int) -> int | None:
        """The last trade price of a day before ``now_ms`` (None: nothing had traded then)."""
        cutoff = now_ms // 1000 - DAY_S
        buckets = self.buckets
        while buckets and buckets[0][0] <= cutoff:
            self.reference = buckets.popleft()[1]
        return self.reference


class Side:
    """One side of a market's aggregated book: price (ticks) → size, and the prices in order."""

    __slots__ = ("best_high", "prices", "sizes")

    def __init__(self, best_high: bool) -> None:
        self.best_high = best_high  # bids: the highest price is best
        self.sizes: dict[int, int] = {}
        self.prices: list[int] = []  # ascending

    def set(self, price: int, size: int) -> None:
        sizes = self.sizes
        if size:
            if price not in sizes:
                insort(self.prices, price)
            sizes[price] = size
        elif price in sizes:
            del sizes[price]
            del self.prices[bisect_left(self.prices, price)]

    def best(self) -> int | None:
        prices = self.prices
        if not prices:
            return None
        return prices[-1] if self.best_high else prices[0]

    def depth(self, levels: int) -> list[tuple[int, int]]:
        """Up to ``levels`` (price, size), best first (as ``Book.depth``)."""
        sizes = self.sizes
        if self.best_high:
            return [(p, sizes[p]) for p in reversed(self.prices[-levels:])]
        return [(p, sizes[p]) for p in self.prices[:levels]]


@dataclass(slots=True)
class Settlement:
    value: int
    evidence_hash: str
    proposed_at: int
    final_after: int


@dataclass(slots=True)
class MarketModel:
    """A market as the stream shows it. ``tick_value`` is all the API's views read of a market."""

    market_id: str
    tick_value: int
    floor: int
    cap: int
    close_time: int
    status: str
    last_price: int | None = None
    settlement: Settlement | None = None
    bids: Side = field(default_factory=lambda: Side(True))
    asks: Side = field(default_factory=lambda: Side(False))
    recent: deque[TradeRecord] = field(default_factory=lambda: deque(maxlen=RECENT_TRADES))
    volume: Volume = field(default_factory=Volume)
    prices: LastPrices = field(default_factory=LastPrices)

    @property
    def step(self) -> Decimal:
        return Decimal(self.tick_value) / MICRO


@dataclass(slots=True)
class PositionModel:
    size: int = 0
    collateral: int = 0
    realized_pnl: int = 0


@dataclass(slots=True)
class AccountModel:
    account_id: str
    orders: dict[int, OrderRecord] = field(default_factory=dict)  # the open ones
    positions: dict[str, PositionModel] = field(default_factory=dict)
    collateral_keys: set[str] = field(default_factory=set)


@dataclass(slots=True)
class Batch:
    """What one group commit changed on the public side, for the public channels."""

    touched: dict[str, None] = field(default_factory=dict)  # markets whose book or trades moved
    trades: dict[str, list[ev.Trade]] = field(default_factory=dict)
    lifecycle: list[tuple[str, str]] = field(default_factory=list)  # (market id, event name)


@dataclass(slots=True)
class AccountChanges:
    """What one command changed for one watched account, for the private channels."""

    # (lifecycle event name, the order as that event left it)
    orders: list[tuple[str, OrderRecord]] = field(default_factory=list)
    fills: list[ev.Trade] = field(default_factory=list)
    positions: dict[str, None] = field(default_factory=dict)
    balance: bool = False
    order_groups: list[GroupTrigger] = field(default_factory=list)  # groups it triggered


def lifecycle_event(event: ev.Event) -> str | None:
    """The ``markets`` channel's name for a lifecycle event (None: not one to announce)."""
    kind = type(event)
    if kind is ev.MarketCreated:
        return "listed"
    if kind is ev.SettlementProposed:
        return "resolving"
    if kind is ev.SettlementOverturned:
        return "overturned"
    if kind is ev.SettlementFinalized:
        return "settled"
    if isinstance(event, ev.MarketStatusChanged):
        new, old = event.new_status, event.old_status
        if new == "open":
            return "resumed" if old == "halted" else "opened"
        if new in ("halted", "closed"):
            return new
    return None


_SIDES = tuple(m.value for m in codec.SIDES)
_TYPES = tuple(m.value for m in codec.ORDER_TYPES)
_TIFS = tuple(m.value for m in codec.TIFS)
_STPS = tuple(m.value for m in codec.STPS)
_POST_ONLY, _REDUCE_ONLY, _HAS_EXPIRY = 1 << 16, 1 << 17, 1 << 18


class Seed:
    """Rows of per-market int64 columns as the engine exported them when the models were
    built (the snapshot codec's, which the compiled twin writes itself: a fraction of a second
    at a million orders), each row belonging to one account.

    ``rows_of`` finds an account's rows by searching one account column of all markets as
    bytes (big-endian int32: an index's low byte last, so the search skips ahead on it): a few
    ms at a million rows, once per account read; nothing is indexed at start.
    """

    __slots__ = (
        "_bytes",
        "account_bytes",
        "accounts",
        "index",
        "markets",
        "owners",
        "parts",
        "starts",
    )

    def __init__(self, accounts: list[str], index: dict[str, int]) -> None:
        self.accounts = accounts  # by the index the account column holds
        self.index = index
        self.markets: list[str] = []
        self.parts: list[Any] = []  # a market's columns and whatever else its rows need
        self.starts: list[int] = []  # each market's first row
        self._bytes: list[bytes] = []
        self.account_bytes = b""
        self.owners: set[int] = set()  # the indexes of the accounts with rows

    def add(self, market_id: str, accounts: array.array[int], part: Any) -> None:
        if not accounts:
            return
        self.markets.append(market_id)
        self.parts.append(part)
        self.starts.append(len(self))
        self.owners.update(accounts)
        column = array.array("i", accounts)
        if sys.byteorder == "little":
            column.byteswap()
        self._bytes.append(column.tobytes())

    def finish(self) -> None:
        self.account_bytes = b"".join(self._bytes)
        self._bytes = []

    def __len__(self) -> int:
        return (len(self.account_bytes) + sum(len(b) for b in self._bytes)) // 4

    def account_ids(self) -> set[str]:
        """The accounts with rows here."""
        accounts = self.accounts
        return {accounts[i] for i in self.owners}

    def rows_of(self, account_id: str) -> Iterator[tuple[str, Any, int]]:
        """(market id, its part, the row within it) of each of one account's rows."""
        pattern = self.index[account_id].to_bytes(4, "big")
        data, starts = self.account_bytes, self.starts
        at = data.find(pattern)
        while at >= 0:
            if at % 4:  # straddles two rows
                at = data.find(pattern, at + 1)
                continue
            row = at // 4
            m = bisect_right(starts, row) - 1
            yield self.markets[m], self.parts[m], row - starts[m]
            at = data.find(pattern, at + 4)


def seed_orders(engine: Engine, seed: Seed) -> Seed:
    """Each market's open orders: ``(columns, client order ids, order group ids)`` a part."""
    for market_id, market in engine.markets.items():
        part = codec.open_order_columns(engine, market, seed.index)
        seed.add(market_id, part[0][1], part)
    seed.finish()
    return seed


def order_record(market_id: str, part: Any, i: int, account_id: str) -> OrderRecord:
    """A seeded order as it stood (``OrderRecord.live`` of the engine's order then)."""
    columns, coids, gids = part
    order_id, _, price, size, remaining, filled, expire, created, flags = (
        column[i] for column in columns
    )
    return OrderRecord(
        order_id,
        account_id,
        market_id,
        _SIDES[flags & 15],
        _TYPES[flags >> 4 & 15],
        price,
        size,
        filled,
        remaining,
        "open",
        None,
        _TIFS[flags >> 8 & 15],
        expire if flags & _HAS_EXPIRY else None,
        bool(flags & _POST_ONLY),
        bool(flags & _REDUCE_ONLY),
        coids[i],
        _STPS[flags >> 12 & 15],
        created,
        created,
        gids[i],
    )


def seed_positions(engine: Engine, seed: Seed) -> Seed:
    """Each market's positions: (account index, size, collateral, realized pnl) columns."""
    for market_id, market in engine.markets.items():
        columns = codec.position_columns(engine, market, seed.index)[:4]
        seed.add(market_id, columns[0], columns)
    seed.finish()
    return seed


class Models:
    def __init__(self, live: Engine) -> None:
        # Built before the exchange takes its first command, when live and stored agree. Read
        # straight from the live engine (either twin answers these reads alike): a copy through
        # snapshot and restore took a minute at a million resting orders.
        engine = live
        self.seq = engine.seq
        self.balances: dict[str, int] = dict(engine.ledger.balances)
        self.markets: dict[str, MarketModel] = {}
        self.accounts: dict[str, AccountModel] = {}
        self.orders: dict[int, OrderRecord] = {}  # every open order, by id
        for market in engine.markets.values():
            model = self.markets[market.market_id] = MarketModel(
                market.market_id,
                market.tick_value,
                market.floor,
                market.cap,
                market.close_time,
                market.status.value,
                market.last_price,
            )
            settlement = market.settlement
            if settlement is not None:
                model.settlement = Settlement(
                    settlement.value,
                    settlement.evidence_hash,
                    settlement.proposed_at,
                    settlement.final_after,
                )
            for price, size in market.book.depth(True, len(market.book.bids)):
                model.bids.set(price, size)
            for price, size in market.book.depth(False, len(market.book.asks)):
                model.asks.set(price, size)
        # The open orders and the positions stay in the engine's compact columns until a read
        # or an event needs an account's (``_unseed``): a record per order and per position
        # at start cost seconds and half a GB at a million orders.
        accounts = list(engine.accounts)
        if len(accounts) >= 2**31:
            raise ValueError("too many accounts for the seed's int32 account column")
        index = {account_id: i for i, account_id in enumerate(accounts)}
        for account_id in accounts:
            self.accounts[account_id] = AccountModel(account_id)
        self.seed = seed_orders(engine, Seed(accounts, index))
        self.position_seed = seed_positions(engine, Seed(accounts, index))
        self.seed_below = engine.next_order_id  # every seeded order's id is lower
        # the accounts with orders or positions still seeded
        self.seeded = self.seed.account_ids() | self.position_seed.account_ids()
        self.pending: dict[int, list[ev.Event]] = {}  # events of seeded orders, not yet folded
        self.closed: set[int] = set()  # seeded orders closed before their account was needed

    def load(self, conn: Connection, now_ms: int) -> None:
        """Recent trades and the last day's volume and last prices from the store, once at
        start."""
        for market_id, market in self.markets.items():
            page = queries.list_trades(conn, market_id, limit=RECENT_TRADES)
            market.recent.extend(reversed(page.items))
        for market_id, second, size in queries.volume_by_second(conn, now_ms - DAY_S * 1000):
            found = self.markets.get(market_id)
            if found is not None:
                found.volume.add(second * 1000, size)
        # The reference as of the end of the second a day ago, then each later second's price.
        since = (now_ms // 1000 - DAY_S + 1) * 1000
        for market_id, price in queries.prices_at(conn, since - 1).items():
            found = self.markets.get(market_id)
            if found is not None:
                found.prices.reference = price
        for market_id, second, price in queries.last_prices_by_second(conn, since):
            found = self.markets.get(market_id)
            if found is not None:
                found.prices.add(second * 1000, price)

    # ------------------------------------------------------------ reading

    def available(self, account_id: str) -> int:
        return self.balances.get(cash_key(account_id), 0)

    def reserved(self, account_id: str) -> int:
        """Open-order reservations plus the collateral behind every position."""
        balances = self.balances
        if account_id in self.seeded:
            self._unseed(account_id)
        account = self.accounts[account_id]
        return balances.get(orders_key(account_id), 0) + sum(
            balances.get(key, 0) for key in account.collateral_keys
        )

    def volume_24h(self, market_id: str, now_ms: int) -> int:
        return self.markets[market_id].volume.since(now_ms)

    def open_orders(self, account_id: str) -> dict[int, OrderRecord]:
        """An account's open orders by id (in no particular order)."""
        if account_id in self.seeded:
            self._unseed(account_id)
        account = self.accounts.get(account_id)
        return {} if account is None else account.orders

    def positions(self, account_id: str) -> dict[str, PositionModel]:
        """An account's positions by market (in no particular order)."""
        if account_id in self.seeded:
            self._unseed(account_id)
        account = self.accounts.get(account_id)
        return {} if account is None else account.positions

    # ------------------------------------------------------------ seeded orders

    def _unseed(self, account_id: str) -> None:
        """Make records of an account's seeded orders, moved on by the events they missed,
        and its seeded positions; from here on they are all in the account's model."""
        self.seeded.discard(account_id)
        orders, closed, pending = self.orders, self.closed, self.pending
        account = self.accounts[account_id]
        mine = account.orders
        for market_id, part, i in self.seed.rows_of(account_id):
            order_id = part[0][0][i]
            if order_id in closed:
                closed.discard(order_id)
                continue
            record = order_record(market_id, part, i, account_id)
            for e in pending.pop(order_id, ()):
                record.fold(e)
            orders[order_id] = mine[order_id] = record
        positions = account.positions
        for market_id, columns, i in self.position_seed.rows_of(account_id):
            if market_id not in positions:  # else an event since set it as it is now
                positions[market_id] = PositionModel(columns[1][i], columns[2][i], columns[3][i])
                account.collateral_keys.add(collateral_key(account_id, market_id))
        if not self.seeded:  # nothing left in the columns: let them go
            self.seed = self.position_seed = Seed([], {})

    def _order(
        self, e: ev.Event, order_id: int, account_id: str, watched: Container[str]
    ) -> OrderRecord | None:
        """The record of an open order an event moves on. A seeded order's is made now if its
        account is watched (its changes are sent); otherwise the event waits in ``pending``
        and None is returned."""
        row = self.orders.get(order_id)
        if row is None and order_id < self.seed_below and account_id in self.seeded:
            if account_id in watched:
                self._unseed(account_id)
                row = self.orders.get(order_id)
            else:
                found = self.pending.get(order_id)
                if found is None:
                    self.pending[order_id] = [e]
                else:
                    found.append(e)
        return row

    def _close(self, order_id: int, account_id: str, watched: Container[str]) -> OrderRecord | None:
        """Take a closed order's record out (None: none kept, or seeded and not watched)."""
        row = self.orders.pop(order_id, None)
        if row is None and order_id < self.seed_below and account_id in self.seeded:
            if account_id in watched:
                self._unseed(account_id)
                row = self.orders.pop(order_id, None)
            else:
                self.pending.pop(order_id, None)
                self.closed.add(order_id)
        return row

    # ------------------------------------------------------------ folding

    def apply(
        self, item: JournalItem, watched: Container[str], batch: Batch
    ) -> dict[str, AccountChanges]:
        """Fold one stored command's events; note what changed on the public side in ``batch``
        and return what changed for the ``watched`` accounts."""
        changes: dict[str, AccountChanges] = {}

        def of(account_id: str) -> AccountChanges:
            found = changes.get(account_id)
            if found is None:
                found = changes[account_id] = AccountChanges()
            return found

        markets = self.markets
        orders = self.orders
        for e in item.events:
            kind = type(e)
            if kind is ev.BookLevelChanged:
                assert isinstance(e, ev.BookLevelChanged)
                market = markets[e.market_id]
                (market.bids if e.side == "buy" else market.asks).set(e.price, e.size)
                batch.touched[e.market_id] = None
            elif kind is ev.LedgerEntry:
                assert isinstance(e, ev.LedgerEntry)
                balances = self.balances
                balances[e.debit] = balances.get(e.debit, 0) - e.amount
                balances[e.credit] = balances.get(e.credit, 0) + e.amount
                owner = ledger_owner(e.debit, e.credit)[0]
                if owner is not None and owner in watched:
                    of(owner).balance = True
            elif kind is ev.Trade:
                assert isinstance(e, ev.Trade)
                market_id = e.market_id
                market = markets[market_id]
                market.last_price = e.price
                market.recent.append(TradeRecord.of(e))
                market.volume.add(e.time, e.size)
                market.prices.add(e.time, e.price)
                batch.touched[market_id] = None
                new = batch.trades.get(market_id)
                if new is None:
                    batch.trades[market_id] = [e]
                else:
                    new.append(e)
                for order_id, account_id in (
                    (e.maker_order_id, e.maker_account_id),
                    (e.taker_order_id, e.taker_account_id),
                ):
                    row = self._order(e, order_id, account_id, watched)
                    if row is not None:
                        row.fold(e)
                    if account_id in watched:
                        noted = of(account_id)
                        noted.fills.append(e)
                        if row is not None and row.remaining != 0:
                            # A fill that completes the order is told by its close, next.
                            noted.orders.append(("filled", replace(row)))
            elif kind is ev.OrderAccepted:
                assert isinstance(e, ev.OrderAccepted)
                row = orders[e.order_id] = OrderRecord.accepted(e)
                self.accounts[e.account_id].orders[e.order_id] = row
                if e.account_id in watched:
                    of(e.account_id).orders.append(("accepted", replace(row)))
            elif kind is ev.OrderAmended:
                assert isinstance(e, ev.OrderAmended)
                row = self._order(e, e.order_id, e.account_id, watched)
                if row is not None:
                    row.fold(e)
                    if e.account_id in watched:
                        of(e.account_id).orders.append(("amended", replace(row)))
            elif kind is ev.OrderClosed:
                assert isinstance(e, ev.OrderClosed)
                row = self._close(e.order_id, e.account_id, watched)
                if row is not None:
                    del self.accounts[e.account_id].orders[e.order_id]
                    row.fold(e)
                    if e.account_id in watched:
                        of(e.account_id).orders.append((str(e.status), row))
            elif kind is ev.PositionChanged:
                assert isinstance(e, ev.PositionChanged)
                account = self.accounts[e.account_id]
                position = account.positions.get(e.market_id)
                if position is None:
                    account.positions[e.market_id] = PositionModel(
                        e.size, e.collateral, e.realized_pnl
                    )
                    account.collateral_keys.add(collateral_key(e.account_id, e.market_id))
                else:
                    position.size = e.size
                    position.collateral = e.collateral
                    position.realized_pnl = e.realized_pnl
                if e.account_id in watched:
                    of(e.account_id).positions[e.market_id] = None
            elif kind is ev.AccountCreated:
                assert isinstance(e, ev.AccountCreated)
                self.accounts[e.account_id] = AccountModel(e.account_id)
            elif kind is ev.MarketCreated:
                assert isinstance(e, ev.MarketCreated)
                markets[e.market_id] = MarketModel(
                    e.market_id, e.tick_value, e.floor, e.cap, e.close_time, "pending"
                )
                batch.lifecycle.append((e.market_id, "listed"))
            else:
                self._lifecycle(e, batch)
        for trigger in item.group_triggers:
            if trigger.group.account_id in watched:
                of(trigger.group.account_id).order_groups.append(trigger)
        if item.events:
            self.seq = item.events[-1].seq
        return changes

    def _lifecycle(self, e: ev.Event, batch: Batch) -> None:
        if isinstance(e, ev.MarketStatusChanged):
            self.markets[e.market_id].status = e.new_status
        elif isinstance(e, ev.SettlementProposed):
            self.markets[e.market_id].settlement = Settlement(
                e.value, e.evidence_hash, e.time, e.final_after
            )
        elif isinstance(e, ev.SettlementOverturned):
            self.markets[e.market_id].settlement = None
        elif not isinstance(e, ev.SettlementFinalized):
            return
        name = lifecycle_event(e)
        if name is not None:
            batch.lifecycle.append((e.market_id, name))
