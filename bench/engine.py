"""Engine benchmark: a seeded stream through the full Ballast domain, and through the
open-source engines from PyPI for comparison.

    make bench-engine                       # 1,000,000 commands, prints JSON
    .venv/bin/python bench/engine.py --commands 200000 --no-third-party

"Full domain" means every command goes through ``Engine.execute``: validation, risk checks,
reservations, the double-entry ledger, positions, fees and events. Throughput is measured on
one pass without per-command timers; the latency percentiles come from a second pass that times
every command. Memory per resting order is measured apart, with tracemalloc, on a book built
of resting orders only.
"""

from __future__ import annotations

import argparse
import gc
import json
import platform
import resource
import sys
import time
import tracemalloc
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from command_stream import generate

from ballast_exchange.domain import (
    DomainError,
    Engine,
    MarketKind,
    MarketStatus,
    OrderType,
    Side,
    TimeInForce,
)
from ballast_exchange.domain import commands as c
from ballast_exchange.domain.events import OrderAccepted
from ballast_exchange.domain.state import MAX_SIZE, MAX_TIME_MS

MARKET = "bench"
DEPOSIT = 10**13  # micro-USDC: ten million USDC an account, so risk checks run but rarely bind


def fresh_engine(accounts: int) -> Engine:
    engine = Engine()
    engine.execute(
        c.CreateMarket(
            0,
            MARKET,
            MarketKind.BINARY,
            1_000,
            0,
            1_000,
            MAX_TIME_MS,  # never closes during the run
            max_order_size=10**9,
            max_position=MAX_SIZE,
            maker_fee_bps=-2,
            taker_fee_bps=10,
        )
    )
    engine.execute(c.ChangeMarketStatus(0, MARKET, MarketStatus.OPEN))
    for account in range(accounts):
        engine.execute(c.CreateAccount(0, f"acct{account}"))
        engine.execute(c.Deposit(0, f"acct{account}", DEPOSIT))
    return engine


class BallastReplay:
    """Turns the neutral tuples into engine commands as the service layer would."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.ids: dict[int, int] = {}  # stream order id -> engine order id
        self.rejected = 0

    def command(self, item: tuple[Any, ...], now: int) -> c.Command | None:
        kind = item[0]
        if kind == "limit":
            _, _, account, side, price, size = item
            return c.PlaceOrder(now, f"acct{account}", MARKET, Side(side), size, price)
        if kind == "market":
            _, _, account, side, size = item
            return c.PlaceOrder(
                now,
                f"acct{account}",
                MARKET,
                Side(side),
                size,
                None,
                OrderType.MARKET,
                TimeInForce.IOC,
            )
        order_id = self.ids.get(item[1])
        order = self.engine.orders.get(order_id) if order_id is not None else None
        if order is None:
            return None  # already filled or canceled here: the stream only approximates
        if kind == "cancel":
            return c.CancelOrder(now, order.account_id, order.order_id)
        # The stream gives the new open size; the engine's amend takes the new total size.
        return c.AmendOrder(now, order.account_id, order.order_id, size=order.filled + item[2])

    def apply(self, item: tuple[Any, ...], now: int) -> None:
        command = self.command(item, now)
        if command is None:
            self.rejected += 1
            return
        try:
            events = self.engine.execute(command)
        except DomainError:
            self.rejected += 1
            return
        if type(command) is c.PlaceOrder:
            first = events[0]
            assert isinstance(first, OrderAccepted)
            self.ids[item[1]] = first.order_id


def throughput(stream: list[tuple[Any, ...]], accounts: int) -> dict[str, Any]:
    replay = BallastReplay(fresh_engine(accounts))
    apply = replay.apply
    gc.collect()
    start = time.perf_counter()
    for now, item in enumerate(stream, 1):
        apply(item, now)
    seconds = time.perf_counter() - start
    book = replay.engine.markets[MARKET].book
    return {
        "commands": len(stream),
        "seconds": round(seconds, 3),
        "commands_per_s": round(len(stream) / seconds),
        "skipped_or_rejected": replay.rejected,
        "resting_orders_at_end": sum(1 for _ in book.orders()),
        "events_last_seq": replay.engine.seq,
    }


def latency(stream: list[tuple[Any, ...]], accounts: int) -> dict[str, Any]:
    replay = BallastReplay(fresh_engine(accounts))
    apply = replay.apply
    clock = time.perf_counter_ns
    samples = []
    gc.collect()
    for now, item in enumerate(stream, 1):
        start = clock()
        apply(item, now)
        samples.append(clock() - start)
    samples.sort()

    def pct(q: float) -> float:
        return round(samples[min(len(samples) - 1, int(q * len(samples)))] / 1000, 2)

    return {"p50_us": pct(0.50), "p99_us": pct(0.99), "p999_us": pct(0.999)}


def memory_per_resting_order(orders: int = 100_000) -> dict[str, Any]:
    """Bytes allocated per resting order: orders on both sides that never cross."""
    engine = fresh_engine(100)
    commands = [
        c.PlaceOrder(
            i,
            f"acct{i % 100}",
            MARKET,
            Side.BUY if i % 2 else Side.SELL,
            1 + i % 50,
            1 + (i % 400) if i % 2 else 600 + (i % 399),
        )
        for i in range(orders)
    ]
    gc.collect()
    tracemalloc.start()
    before = tracemalloc.get_traced_memory()[0]
    for command in commands:
        engine.execute(command)
    gc.collect()
    after = tracemalloc.get_traced_memory()[0]
    tracemalloc.stop()
    resting = sum(1 for _ in engine.markets[MARKET].book.orders())
    return {"resting_orders": resting, "bytes_per_resting_order": round((after - before) / resting)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--commands", type=int, default=1_000_000)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--accounts", type=int, default=100)
    parser.add_argument("--no-third-party", action="store_true")
    args = parser.parse_args()

    stream = generate(args.commands, seed=args.seed, accounts=args.accounts)
    result: dict[str, Any] = {
        "benchmark": "engine",
        "python": platform.python_version(),
        "machine": f"{platform.machine()}, {len(__import__('os').sched_getaffinity(0))} cores",
        "seed": args.seed,
        "accounts": args.accounts,
        "mix": dict(sorted(__import__("collections").Counter(i[0] for i in stream).items())),
    }
    result["ballast"] = throughput(stream, args.accounts)
    result["ballast"].update(latency(stream, args.accounts))
    result["ballast"].update(memory_per_resting_order())
    result["peak_rss_mb"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)
    if not args.no_third_party:
        from third_party_engines import run_all

        ours = result["ballast"]["commands_per_s"]
        others = run_all(stream)
        for row in others:
            if row.get("commands_per_s"):
                row["ballast_ratio"] = round(ours / row["commands_per_s"], 2)
        result["third_party"] = others
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
