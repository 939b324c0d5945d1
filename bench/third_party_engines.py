"""Replay the neutral command stream through open-source matching engines from PyPI.

Adapters for `lightmatchingengine`, `pyclob` and `liquibook` (SWIG wrapper of C++ LiquiBook),
and `price_time_loop`, ours: the least a pure-Python price-time book can do (the floor).
Each adapter drives the engine only through its own API; where the engine lacks a command
(amend, market orders, ...) the adapter uses the closest honest equivalent and says so in
`skips`. None of them is a full exchange domain, so their numbers are an upper bound on what a
bare book costs, not a like-for-like comparison with Ballast.

Usage: `run_all(stream)` -> one result dict per engine. Adapters are created in `ENGINES`; a
missing or broken package makes an adapter report `available = False` with a reason.
"""

from __future__ import annotations

import importlib
import importlib.metadata
import time
from collections.abc import Sequence
from typing import Any

MIN_TICK = 1
MAX_TICK = 999
GRID = 1000  # ticks per 1.0 of price (binary contract pays GRID ticks)


def _load(module: str) -> tuple[Any | None, str]:
    """Import `module`, returning (module or None, reason it is unavailable)."""
    try:
        return importlib.import_module(module), ""
    except Exception as exc:  # any import failure (incl. a bad binary) = "not available"
        return None, f"cannot import {module}: {type(exc).__name__}: {exc}"


def _version(dist: str) -> str | None:
    if not dist:
        return None  # ours, not a distribution
    try:
        return importlib.metadata.version(dist)
    except importlib.metadata.PackageNotFoundError:
        return None


class EngineAdapter:
    """Common shape: `reset()` builds a fresh book (untimed), `replay()` applies commands.

    `rejected` counts commands the engine refused or that were no-ops on its book (e.g. a
    cancel of an order this engine already filled); they still count as applied.
    `volume` is contracts traded, a cheap cross-engine sanity check.
    """

    name: str = ""
    dist: str = ""  # PyPI distribution name
    module: str = ""
    skips: str = ""

    def __init__(self) -> None:
        self.mod, self.reason = _load(self.module)
        self.available = self.mod is not None
        self.version = _version(self.dist)
        self.rejected = 0
        self.volume = 0
        if self.available:
            try:
                self.reset()
            except Exception as exc:  # a broken build is "not available" too
                self.available = False
                self.reason = f"{self.module} imported but unusable: {type(exc).__name__}: {exc}"

    def reset(self) -> None:
        """Start from an empty book."""
        raise NotImplementedError

    def replay(self, stream: Sequence[tuple]) -> int:
        """Apply every command to the current book; return how many were applied."""
        raise NotImplementedError

    def _require(self) -> None:
        if not self.available:
            raise RuntimeError(f"{self.name} unavailable: {self.reason}")


class LightMatchingEngineAdapter(EngineAdapter):
    name = "lightmatchingengine"
    dist = "lightmatchingengine"
    module = "lightmatchingengine.lightmatchingengine"
    skips = (
        "Bare price-time book in pure Python (dict of price -> list). No accounts at all, so no "
        "collateral/risk checks, ledger, positions, fees or self-trade prevention (account ids "
        "are dropped). No events or market data beyond the Trade list returned per order; no "
        "price/size validation. No amend: amend = cancel + new order at the same price (loses "
        "time priority, new engine id). Market orders are price=0 orders whose unfilled "
        "remainder would rest in the book at price 0, so the adapter cancels any remainder "
        "(IOC emulation). Filled orders are never dropped from its id map and cancelling one "
        "can trip an AssertionError, so the adapter checks leaves_qty first and counts such "
        "cancels as rejected."
    )
    _INSTMT = "BALLAST"

    def reset(self) -> None:
        self.engine = self.mod.LightMatchingEngine()
        self._sides = {"buy": self.mod.Side.BUY, "sell": self.mod.Side.SELL}
        self.orders: dict[int, Any] = {}  # stream id -> engine Order (leaves_qty stays live)
        self.rejected = 0
        self.volume = 0

    def replay(self, stream: Sequence[tuple]) -> int:
        self._require()
        engine = self.engine
        add = engine.add_order
        cancel = engine.cancel_order
        instmt = self._INSTMT
        sides = self._sides
        orders = self.orders
        applied = 0
        for cmd in stream:
            kind = cmd[0]
            if kind == "limit":
                _, oid, _acct, side, tick, size = cmd
                order, _trades = add(instmt, tick, size, sides[side])
                self.volume += order.cum_qty
                if order.leaves_qty:
                    orders[oid] = order
            elif kind == "cancel":
                order = orders.pop(cmd[1], None)
                # Check leaves_qty first: cancelling a filled order can trip its assertions.
                if order is None or not order.leaves_qty or cancel(order.order_id, instmt) is None:
                    self.rejected += 1
            elif kind == "market":
                _, oid, _acct, side, size = cmd
                order, _trades = add(instmt, 0, size, sides[side])  # price 0 = market
                self.volume += order.cum_qty
                if order.leaves_qty:
                    cancel(order.order_id, instmt)
            elif kind == "amend":
                _, oid, new_size = cmd
                order = orders.get(oid)
                if order is None or order.leaves_qty <= new_size:
                    self.rejected += 1  # gone, or already below the requested size
                else:
                    cancel(order.order_id, instmt)
                    new, _trades = add(instmt, order.price, new_size, order.side)
                    orders[oid] = new
            else:
                raise ValueError(f"unknown command {cmd!r}")
            applied += 1
        return applied


class PyclobAdapter(EngineAdapter):
    name = "pyclob"
    dist = "pyclob"
    module = "pyclob"
    skips = (
        "Pure-Python binary-contract book; the closest in scope: it does per-order cash reserve "
        "(collateral) checks with refunds, per-account positions with average cost and "
        "realized P&L, skip-style self-trade prevention and Fill records. It has no fees, no "
        "double-entry ledger (just mutable balances), no event stream/sequence numbers, no "
        "market orders and no amend. Native prices are cents 1..99: the adapter subclasses "
        "Order/OrderBook to accept ticks 1..999 and scale reserves to 1000 (matching code "
        "unchanged). Accounts get an effectively unlimited bankroll, so the reserve check runs "
        "but never rejects. Market = limit at the worst tick (999 buy / 1 sell) then cancel of "
        "any remainder (IOC emulation). Amend = cancel + new order at the same price with the "
        "same id (loses time priority). Cancels of filled/unknown orders raise ValueError and "
        "count as rejected. Quirk: if a level holds only the taker's own orders, matching stops "
        "there and the remainder rests, which can leave the book crossed."
    )
    _MARKET = "BALLAST"
    _BANKROLL = 10**15  # cents-equivalent; large enough that no order is refused for funds

    def reset(self) -> None:
        pyclob = self.mod
        grid = GRID

        class TickOrder(pyclob.Order):
            """pyclob Order on a 1..999 tick grid instead of 1..99 cents."""

            def __post_init__(self) -> None:
                if not MIN_TICK <= self.price <= MAX_TICK:
                    raise ValueError(f"Price must be {MIN_TICK}-{MAX_TICK} ticks, got {self.price}")
                if self.qty < 1:
                    raise ValueError(f"Quantity must be >= 1, got {self.qty}")
                self.remaining_qty = self.qty - self.filled_qty

        class TickBook(pyclob.OrderBook):
            """pyclob OrderBook whose reserve uses the 1000-tick payout instead of 100."""

            @staticmethod
            def _compute_reserve(side: Any, price: int, qty: int) -> int:
                return price * qty if side == pyclob.Side.BUY else (grid - price) * qty

        bankroll = self._BANKROLL

        class Accounts(dict):
            """Creates pyclob Accounts on first use, so any account id in the stream works."""

            def __missing__(self, account_id: str) -> Any:
                acct = self[account_id] = pyclob.Account(account_id, starting_bankroll_c=bankroll)
                return acct

        self._order_cls = TickOrder
        self.book = TickBook(self._MARKET)
        self.accounts = Accounts()
        self._sides = {"buy": pyclob.Side.BUY, "sell": pyclob.Side.SELL}
        self.orders: dict[int, Any] = {}  # stream id -> pyclob Order (remaining_qty is live)
        self.rejected = 0
        self.volume = 0

    def replay(self, stream: Sequence[tuple]) -> int:
        self._require()
        book = self.book
        place = book.place_order
        cancel = book.cancel_order
        accounts = self.accounts
        order_cls = self._order_cls
        sides = self._sides
        buy = sides["buy"]
        orders = self.orders
        applied = 0
        for cmd in stream:
            kind = cmd[0]
            if kind == "limit":
                _, oid, acct, side, tick, size = cmd
                order = order_cls(
                    account_id=str(acct), side=sides[side], price=tick, qty=size, id=str(oid)
                )
                place(order, accounts)
                if order.remaining_qty:
                    orders[oid] = order
            elif kind == "cancel":
                orders.pop(cmd[1], None)
                try:
                    cancel(str(cmd[1]), accounts)
                except ValueError:
                    self.rejected += 1  # unknown, already filled or cancelled
            elif kind == "market":
                _, oid, acct, side, size = cmd
                s = sides[side]
                order = order_cls(
                    account_id=str(acct),
                    side=s,
                    price=MAX_TICK if s is buy else MIN_TICK,
                    qty=size,
                    id=str(oid),
                )
                place(order, accounts)
                if order.remaining_qty:
                    cancel(order.id, accounts)
            elif kind == "amend":
                _, oid, new_size = cmd
                order = orders.get(oid)
                if order is None or order.remaining_qty <= new_size:
                    self.rejected += 1  # gone, or already below the requested size
                else:
                    cancel(order.id, accounts)
                    new = order_cls(
                        account_id=order.account_id,
                        side=order.side,
                        price=order.price,
                        qty=new_size,
                        id=order.id,
                    )
                    place(new, accounts)
                    orders[oid] = new
            else:
                raise ValueError(f"unknown command {cmd!r}")
            applied += 1
        self.volume = book.volume
        return applied


class LiquibookAdapter(EngineAdapter):
    name = "liquibook"
    dist = "liquibook"
    module = "liquibook"
    skips = (
        "C++ LiquiBook price-time book (DepthOrderBook, 5-level depth kept up to date) driven "
        "through its SWIG wrapper. Pure matching: no accounts, so no collateral/risk checks, "
        "ledger, positions, fees or self-trade prevention (account ids are dropped); no "
        "persistence or sequence numbers. Events: accept/fill/cancel/replace callbacks go to a "
        "Python OrderListener that mirrors them into the SimpleOrder objects (what LiquiBook's "
        "C++ SimpleOrderBook and the package's own example do) and sums volume, so that "
        "Python callback cost is included. Market orders are native (price 0 + "
        "immediate-or-cancel). Amend is native replace(size_delta), but LiquiBook re-queues "
        "the order on any replace, so a size-down loses time priority. Cancels/amends of "
        "orders it already filled are rejected by the engine and counted as rejected."
    )
    _SYMBOL = "BALLAST"

    def reset(self) -> None:
        lb = self.mod

        class Listener(lb.OrderListener):
            """Keeps SimpleOrder state in step with the book; every hook is pure virtual."""

            def __init__(self) -> None:
                lb.OrderListener.__init__(self)
                self.volume = 0
                self.rejected = 0

            def on_accept(self, order: Any) -> None:
                order.accept()

            def on_reject(self, order: Any, reason: str) -> None:
                self.rejected += 1

            def on_fill(self, order: Any, matched: Any, qty: int, price: int) -> None:
                order.fill(qty, qty * price, 0)
                matched.fill(qty, qty * price, 0)
                self.volume += qty

            def on_cancel(self, order: Any) -> None:
                order.cancel()

            def on_cancel_reject(self, order: Any, reason: str) -> None:
                self.rejected += 1

            def on_replace(self, order: Any, size_delta: int, new_price: int) -> None:
                order.replace(size_delta, new_price)

            def on_replace_reject(self, order: Any, reason: str) -> None:
                self.rejected += 1

            def on_trigger_stop(self, order: Any) -> None:
                pass

        listener = Listener()
        book = lb.DepthOrderBook(self._SYMBOL)
        book.set_order_listener(listener)
        # Swap the book before its listener: the C++ book only holds a raw listener pointer,
        # so the listener must outlive the book that points at it.
        self.book = book
        self.listener = listener
        self._ioc = lb.oc_immediate_or_cancel
        self.orders: dict[int, Any] = {}  # stream id -> SimpleOrder
        self.rejected = 0
        self.volume = 0

    def replay(self, stream: Sequence[tuple]) -> int:
        self._require()
        new_order = self.mod.SimpleOrder
        book = self.book
        add = book.add
        ioc = self._ioc
        orders = self.orders
        applied = 0
        rejected = 0
        for cmd in stream:
            kind = cmd[0]
            if kind == "limit":
                _, oid, _acct, side, tick, size = cmd
                order = new_order(side == "buy", tick, size)
                orders[oid] = order
                add(order)
            elif kind == "cancel":
                order = orders.pop(cmd[1], None)
                if order is None:
                    rejected += 1
                else:
                    book.cancel(order)
            elif kind == "market":
                _, oid, _acct, side, size = cmd
                # Price 0 is LiquiBook's market price; IOC stops the remainder from resting.
                add(new_order(side == "buy", 0, size, 0, ioc), ioc)
            elif kind == "amend":
                _, oid, new_size = cmd
                order = orders.get(oid)
                open_qty = order.open_qty() if order is not None else 0
                if open_qty <= new_size:
                    rejected += 1  # gone, or already below the requested size
                else:
                    book.replace(order, new_size - open_qty)
            else:
                raise ValueError(f"unknown command {cmd!r}")
            applied += 1
        self.rejected += rejected + self.listener.rejected
        self.listener.rejected = 0
        self.volume = self.listener.volume
        return applied


class PriceTimeLoopAdapter(EngineAdapter):
    """Ours, not from PyPI: the least a pure-Python price-time book can do (the floor).

    A dict of price -> FIFO of [order id, open qty] per side, best prices kept as plain ints,
    cancels marking the entry dead (removed when matching reaches it). No validation, no ids
    issued, no events: only what the stream needs to match correctly.
    """

    name = "price_time_loop"
    dist = ""
    module = "collections"  # always importable: this adapter needs nothing installed
    skips = (
        "Ours: a minimal pure-Python price-time loop, the floor for any pure-Python book. No "
        "accounts, validation, ids, events or self-trade prevention; cancel marks the entry dead "
        "and matching drops it; amend lowers the open quantity in place (keeps priority); a "
        "market order walks the opposite side and drops its remainder."
    )

    def reset(self) -> None:
        self.levels: tuple[dict[int, Any], dict[int, Any]] = ({}, {})  # buy, sell
        self.live: dict[int, list[int]] = {}  # id -> [id, open qty, side index, price]
        self.best = [0, GRID]  # best bid (0 = none), best ask (GRID = none)
        self.rejected = 0
        self.volume = 0

    def _take(self, s: int, limit: int, qty: int) -> int:
        """Match ``qty`` from side ``s`` (0 buys from asks) up to ``limit``; return the rest."""
        o = 1 - s
        book = self.levels[o]
        best = self.best
        live = self.live
        while qty:
            price = best[o]
            if (price > limit) if s == 0 else (price < limit):
                break
            if price <= 0 or price >= GRID:
                break
            queue = book.get(price)
            while queue and qty:
                entry = queue[0]
                if entry[1] == 0:
                    queue.popleft()
                    continue
                fill = min(qty, entry[1])
                entry[1] -= fill
                qty -= fill
                self.volume += fill
                if entry[1] == 0:
                    queue.popleft()
                    del live[entry[0]]
            if not queue:
                book.pop(price, None)
                if s == 0:
                    best[1] = min(book) if book else GRID
                else:
                    best[0] = max(book) if book else 0
        return qty

    def replay(self, stream: Sequence[tuple]) -> int:
        from collections import deque

        levels = self.levels
        live = self.live
        best = self.best
        take = self._take
        applied = 0
        for cmd in stream:
            kind = cmd[0]
            if kind == "limit":
                _, oid, _acct, side, tick, size = cmd
                s = 0 if side == "buy" else 1
                size = take(s, tick, size)
                if size:
                    entry = [oid, size, s, tick]
                    live[oid] = entry
                    queue = levels[s].get(tick)
                    if queue is None:
                        queue = levels[s][tick] = deque()
                        if s == 0:
                            if tick > best[0]:
                                best[0] = tick
                        elif tick < best[1]:
                            best[1] = tick
                    queue.append(entry)
            elif kind == "cancel":
                entry = live.pop(cmd[1], None)
                if entry is None:
                    self.rejected += 1
                else:
                    entry[1] = 0  # dropped when matching reaches it, or the level empties
            elif kind == "market":
                _, oid, _acct, side, size = cmd
                s = 0 if side == "buy" else 1
                take(s, GRID if s == 0 else 0, size)
            elif kind == "amend":
                _, oid, new_size = cmd
                entry = live.get(oid)
                if entry is None or entry[1] <= new_size:
                    self.rejected += 1
                else:
                    entry[1] = new_size
            else:
                raise ValueError(f"unknown command {cmd!r}")
            applied += 1
        return applied


ENGINES: list[EngineAdapter] = [
    PriceTimeLoopAdapter(),
    LightMatchingEngineAdapter(),
    PyclobAdapter(),
    LiquibookAdapter(),
]


def run_all(stream: Sequence[tuple]) -> list[dict[str, Any]]:
    """Replay `stream` on a fresh book of every engine; time `replay` only."""
    results: list[dict[str, Any]] = []
    for adapter in ENGINES:
        row: dict[str, Any] = {
            "engine": adapter.name,
            "available": adapter.available,
            "version": adapter.version,
        }
        if not adapter.available:
            row["reason"] = adapter.reason
            results.append(row)
            continue
        adapter.reset()  # untimed: fresh, empty book
        t0 = time.perf_counter()
        n = adapter.replay(stream)
        seconds = time.perf_counter() - t0
        row.update(
            skips=adapter.skips,
            commands=n,
            seconds=round(seconds, 4),
            commands_per_s=round(n / seconds) if seconds > 0 else None,
            rejected=adapter.rejected,
            volume=adapter.volume,
        )
        results.append(row)
    return results


if __name__ == "__main__":
    import json
    import sys
    from pathlib import Path

    # Run as a script (python bench/third_party_engines.py) or as bench.third_party_engines.
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from command_stream import generate

    print(json.dumps(run_all(generate(200_000)), indent=2))
