"""Driving a real engine and recording what a service would journal."""

from __future__ import annotations

import random
from collections.abc import Iterable, Sequence

from ballast_exchange.domain import (
    DomainError,
    Engine,
    MarketKind,
    MarketStatus,
    OrderType,
    SelfTradePrevention,
    Side,
    TimeInForce,
)
from ballast_exchange.domain import commands as c
from ballast_exchange.domain.events import Event
from ballast_exchange.store import Database, JournalItem, write_batch

USDC = 1_000_000
FAR = 10**13


class Recorder:
    """Runs commands through an engine; keeps the accepted ones as journal items."""

    def __init__(self) -> None:
        self.engine = Engine()
        self.items: list[JournalItem] = []
        self.events: list[Event] = []
        self.rejected = 0

    def run(self, command: c.Command) -> list[Event]:
        try:
            events = self.engine.execute(command)
        except DomainError:
            self.rejected += 1
            return []
        self.items.append(JournalItem(len(self.items) + 1, command, events, command.time))
        self.events.extend(events)
        return events

    def run_all(self, commands: Iterable[c.Command]) -> None:
        for command in commands:
            self.run(command)


HOUR = 3_600_000


def day_of_trades(now: int) -> Recorder:
    """Two days of history ending at ``now``, for the market's price reads: ``suez`` traded 0.30
    and 0.40 before a day ago, 0.45 and 0.55 within it, and rests 3 @ 0.500 / 4 @ 0.611;
    ``fresh`` traded only within the day (0.42) and bids 0.41; ``empty`` never traded."""
    rec = Recorder()
    t = now - 50 * HOUR
    for name in ("alice", "bob"):
        rec.run(c.CreateAccount(t, name))
        rec.run(c.Deposit(t, name, 10_000 * USDC))
    for market_id in ("suez", "fresh", "empty"):
        rec.run(c.CreateMarket(t, market_id, MarketKind.BINARY, 1_000, 0, 1_000, FAR))
        rec.run(c.ChangeMarketStatus(t, market_id, MarketStatus.OPEN))

    def trade(at: int, market_id: str, price: int) -> None:
        rec.run(c.PlaceOrder(at, "alice", market_id, Side.BUY, 5, price))
        rec.run(c.PlaceOrder(at, "bob", market_id, Side.SELL, 5, price))

    trade(now - 48 * HOUR, "suez", 300)
    trade(now - 30 * HOUR, "suez", 400)  # the reference: the last trade before a day ago
    trade(now - 3 * HOUR, "suez", 450)
    trade(now - 2 * HOUR, "suez", 550)
    trade(now - 1 * HOUR, "fresh", 420)  # traded only within the day: no reference
    rec.run(c.PlaceOrder(now - HOUR, "alice", "suez", Side.BUY, 3, 500))
    rec.run(c.PlaceOrder(now - HOUR, "bob", "suez", Side.SELL, 4, 611))
    rec.run(c.PlaceOrder(now - HOUR, "alice", "fresh", Side.BUY, 3, 410))  # one side only
    assert rec.rejected == 0
    return rec


def write_history(database_url: str, rec: Recorder) -> None:
    """Store ``rec``'s journal in a new database, as a server that ran it would have."""
    db = Database(database_url)
    try:
        db.upgrade()
        with db.engine.begin() as conn:
            write_batch(conn, rec.items)
    finally:
        db.dispose()


def store_in_batches(db: Database, items: Sequence[JournalItem], sizes: Sequence[int]) -> None:
    """Commit ``items`` in consecutive batches, cycling through ``sizes``."""
    start = 0
    turn = 0
    while start < len(items):
        size = sizes[turn % len(sizes)]
        with db.engine.begin() as conn:
            write_batch(conn, items[start : start + size])
        start += size
        turn += 1


def order_id_of(events: list[Event]) -> int:
    return next(e.order_id for e in events if type(e).__name__ == "OrderAccepted")


def scripted(rec: Recorder) -> None:
    """A session touching every projection: fills, amends, cancels, expiry, settlement."""
    t = iter(range(1_000, 10**9, 7))
    run = rec.run
    for name in ("alice", "bob", "carol", "dave"):
        run(c.CreateAccount(next(t), name))
        run(c.Deposit(next(t), name, 10_000 * USDC, ref=f"dep-{name}"))
    run(c.Withdraw(next(t), "dave", 1_000 * USDC, ref="wd-1"))
    run(
        c.CreateMarket(
            next(t),
            "bin",
            MarketKind.BINARY,
            1_000,
            0,
            1_000,
            FAR,
            maker_fee_bps=-5,
            taker_fee_bps=20,
        )
    )
    run(
        c.CreateMarket(
            next(t),
            "idx",
            MarketKind.INDEX,
            100_000,
            0,
            1_000,
            FAR,
            min_size=2,
            max_order_size=500,
            max_position=5_000,
            maker_fee_bps=10,
            taker_fee_bps=10,
        )
    )
    run(c.ChangeMarketStatus(next(t), "bin", MarketStatus.OPEN))
    run(c.ChangeMarketStatus(next(t), "idx", MarketStatus.OPEN))

    # Resting orders, partial fills, a fill of several makers at once.
    run(c.PlaceOrder(next(t), "alice", "bin", Side.SELL, 100, 600))  # a1
    run(c.PlaceOrder(next(t), "alice", "bin", Side.SELL, 50, 610, client_order_id="a-2"))
    run(c.PlaceOrder(next(t), "bob", "bin", Side.BUY, 30, 600))  # partial fill of a1
    run(c.PlaceOrder(next(t), "carol", "bin", Side.BUY, 100, 610))  # rest of a1 + part of a-2
    # Amends: smaller at the same price keeps priority; a new price re-queues and trades.
    b1 = order_id_of(run(c.PlaceOrder(next(t), "bob", "bin", Side.BUY, 80, 550)))
    run(c.AmendOrder(next(t), "bob", b1, size=60))
    run(c.AmendOrder(next(t), "bob", b1, price=610))  # crosses a-2's remainder
    # IOC and FOK, post-only, reduce-only, a market order with protection.
    run(c.PlaceOrder(next(t), "dave", "bin", Side.SELL, 40, 500, time_in_force=TimeInForce.IOC))
    run(c.PlaceOrder(next(t), "dave", "bin", Side.SELL, 999, 500, time_in_force=TimeInForce.FOK))
    run(c.PlaceOrder(next(t), "dave", "bin", Side.SELL, 20, 700, post_only=True))
    run(c.PlaceOrder(next(t), "alice", "bin", Side.BUY, 5, 650, reduce_only=True))
    run(
        c.PlaceOrder(
            next(t),
            "carol",
            "bin",
            Side.SELL,
            10,
            order_type=OrderType.MARKET,
            time_in_force=TimeInForce.IOC,
            price=400,
        )
    )
    run(
        c.PlaceOrder(
            next(t),
            "bob",
            "bin",
            Side.BUY,
            15,
            order_type=OrderType.MARKET,
            time_in_force=TimeInForce.IOC,
        )
    )
    # Self-trade prevention (cancel_oldest) and a cancel, a cancel-all.
    run(c.PlaceOrder(next(t), "alice", "bin", Side.BUY, 10, 300))
    run(
        c.PlaceOrder(
            next(t), "alice", "bin", Side.SELL, 10, 300, stp=SelfTradePrevention.CANCEL_OLDEST
        )
    )
    x = order_id_of(run(c.PlaceOrder(next(t), "carol", "bin", Side.BUY, 7, 100)))
    run(c.CancelOrder(next(t), "carol", x))
    run(c.PlaceOrder(next(t), "carol", "bin", Side.BUY, 7, 101))
    run(c.PlaceOrder(next(t), "carol", "bin", Side.BUY, 8, 102))
    run(c.CancelAll(next(t), "carol", "bin"))
    # GTD orders expiring through ExpireOrders.
    now = next(t)
    run(
        c.PlaceOrder(
            now, "bob", "bin", Side.BUY, 9, 200, time_in_force=TimeInForce.GTD, expire_at=now + 50
        )
    )
    run(c.ExpireOrders(now + 60))
    for _ in range(10):
        next(t)
    # The index market: trades, then a full settlement lifecycle with an overturn.
    run(c.PlaceOrder(next(t), "alice", "idx", Side.BUY, 40, 450))
    run(c.PlaceOrder(next(t), "bob", "idx", Side.SELL, 30, 440))
    run(c.PlaceOrder(next(t), "carol", "idx", Side.SELL, 20, 450))
    run(c.PlaceOrder(next(t), "dave", "idx", Side.BUY, 4, 430))
    run(c.ChangeMarketStatus(next(t), "idx", MarketStatus.HALTED))
    run(c.ChangeMarketStatus(next(t), "idx", MarketStatus.OPEN))
    run(c.ChangeMarketStatus(next(t), "idx", MarketStatus.CLOSED))  # cancels dave's order
    run(c.ProposeSettlement(next(t), "idx", 47_300_000, "a" * 64, "oracle"))
    run(c.OverturnSettlement(next(t), "idx", "operator"))
    run(c.ProposeSettlement(next(t), "idx", 52_100_000, "b" * 64, "oracle"))
    run(c.FinalizeSettlement(next(t), "idx"))
    run(c.ExpireOrders(next(t)))  # nothing to expire: a command without events


ACCOUNTS = ("a0", "a1", "a2", "a3", "a4")


def random_session(rec: Recorder, seed: int, steps: int) -> None:
    """A seeded random stream over two markets (rejected commands are simply not journaled)."""
    rng = random.Random(seed)
    t = 1_000
    run = rec.run
    for name in ACCOUNTS:
        run(c.CreateAccount(t, name))
        run(c.Deposit(t, name, 50_000 * USDC))
    run(
        c.CreateMarket(
            t, "m1", MarketKind.BINARY, 1_000, 0, 1_000, FAR, taker_fee_bps=10, maker_fee_bps=-2
        )
    )
    run(c.CreateMarket(t, "m2", MarketKind.INDEX, 100_000, 0, 1_000, FAR, taker_fee_bps=5))
    run(c.ChangeMarketStatus(t, "m1", MarketStatus.OPEN))
    run(c.ChangeMarketStatus(t, "m2", MarketStatus.OPEN))
    stps = [
        SelfTradePrevention.CANCEL_NEWEST,
        SelfTradePrevention.CANCEL_OLDEST,
        SelfTradePrevention.CANCEL_BOTH,
    ]
    for _ in range(steps):
        t += rng.randint(0, 40)
        account = rng.choice(ACCOUNTS)
        market = rng.choice(("m1", "m2"))
        roll = rng.random()
        live = [o for o in rec.engine.orders.values() if o.account_id == account]
        if roll < 0.6:
            tif = rng.choice([TimeInForce.GTC] * 4 + [TimeInForce.IOC, TimeInForce.GTD])
            run(
                c.PlaceOrder(
                    t,
                    account,
                    market,
                    rng.choice((Side.BUY, Side.SELL)),
                    rng.randint(1, 60),
                    rng.randint(470, 530),
                    time_in_force=tif,
                    expire_at=t + rng.randint(1, 500) if tif is TimeInForce.GTD else None,
                    stp=rng.choice(stps),
                )
            )
        elif roll < 0.7:
            run(
                c.PlaceOrder(
                    t,
                    account,
                    market,
                    rng.choice((Side.BUY, Side.SELL)),
                    rng.randint(1, 30),
                    order_type=OrderType.MARKET,
                    time_in_force=TimeInForce.IOC,
                )
            )
        elif roll < 0.8 and live:
            run(c.CancelOrder(t, account, rng.choice(live).order_id))
        elif roll < 0.9 and live:
            order = rng.choice(live)
            if rng.random() < 0.5:
                run(c.AmendOrder(t, account, order.order_id, size=max(1, order.size - 1)))
            else:
                run(c.AmendOrder(t, account, order.order_id, price=rng.randint(470, 530)))
        elif roll < 0.95:
            run(c.ExpireOrders(t))
        else:
            run(c.CancelAll(t, account, rng.choice((None, market))))
