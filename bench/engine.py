"""Engine benchmark: a seeded stream through both Ballast engine twins (the pure-Python
reference and the compiled one), and through the open-source engines from PyPI, in one run.

    make bench-engine                       # 1,000,000 commands, prints JSON
    .venv/bin/python bench/engine.py --commands 200000 --no-third-party

"Full domain" means every command goes through ``Engine.execute``: validation, risk checks,
reservations, the double-entry ledger, positions, fees and events. The neutral stream is first
turned into engine commands (untimed, as the sequencer receives them decoded): cancels and
amends need the engine's order ids, which both twins issue identically. Throughput is the best
of ``--repeat`` passes of ``execute`` per command without per-command timers, and of
``execute_many`` and ``execute_batch`` (events kept as the compiled twin's records, built or
not) in batches (the third-party engines get the same best-of); the latency
percentiles come from another pass that times every command; ``replay``
is the old measure, building each command from the stream inside the timed loop. The stream
and the prepared commands are frozen out of the cycle collector (``gc.freeze``) before any
engine runs. Memory per resting order is measured apart, with tracemalloc, on a book built of
resting orders only.
Every twin must end with the same state digest, or the run fails.
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
    compiled_status,
    digest,
)
from ballast_exchange.domain import commands as c
from ballast_exchange.domain.events import OrderAccepted
from ballast_exchange.domain.state import MAX_SIZE, MAX_TIME_MS

MARKET = "bench"
DEPOSIT = 10**13  # micro-USDC: ten million USDC an account, so risk checks run but rarely bind
BATCH = 32  # commands per execute_many call (a sequencer's batch; see docs/benchmarks.md)


def twins() -> dict[str, Any]:
    """The engine classes to measure: the reference always, the compiled one when built."""
    out: dict[str, Any] = {"reference": Engine}
    available, reason = compiled_status()
    if available:
        from ballast_exchange.domain import compiled

        out["compiled"] = compiled.Engine
    else:
        print(f"compiled engine not measured: {reason}", file=sys.stderr)
    return out


def fresh_engine(accounts: int, factory: Any = Engine) -> Engine:
    engine: Engine = factory()
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

    def __init__(self, engine: Engine, accounts: int) -> None:
        self.engine = engine
        # One string per account, as a server's key lookup hands out (not one per command).
        # The stream numbers accounts 1..accounts; the engine has acct0..acct{accounts-1}, so
        # acct{accounts} is unknown and its orders are rejected (~1% of them), as before.
        self.names = [f"acct{account}" for account in range(accounts + 1)]
        self.ids: dict[int, int] = {}  # stream order id -> engine order id
        self.rejected = 0

    def command(self, item: tuple[Any, ...], now: int) -> c.Command | None:
        kind = item[0]
        if kind == "limit":
            _, _, account, side, price, size = item
            return c.PlaceOrder(now, self.names[account], MARKET, Side(side), size, price)
        if kind == "market":
            _, _, account, side, size = item
            return c.PlaceOrder(
                now,
                self.names[account],
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


def prepare(stream: list[tuple[Any, ...]], accounts: int) -> tuple[list[c.Command], int]:
    """The stream as engine commands (untimed), and how many stream items had no command
    (cancels and amends of orders already gone in this engine)."""
    replay = BallastReplay(fresh_engine(accounts), accounts)
    commands: list[c.Command] = []
    skipped = 0
    for now, item in enumerate(stream, 1):
        command = replay.command(item, now)
        if command is None:
            skipped += 1
            continue
        commands.append(command)
        try:
            events = replay.engine.execute(command)
        except DomainError:
            continue
        if type(command) is c.PlaceOrder:
            first = events[0]
            assert isinstance(first, OrderAccepted)
            replay.ids[item[1]] = first.order_id
    return commands, skipped


def run_execute(
    commands: list[c.Command], accounts: int, factory: Any
) -> tuple[float, Engine, int]:
    """One timed pass of ``execute`` per command: (seconds, the engine, rejections)."""
    engine = fresh_engine(accounts, factory)
    execute = engine.execute
    rejected = 0
    gc.collect()
    start = time.perf_counter()
    for command in commands:
        try:
            execute(command)
        except DomainError:
            rejected += 1
    return time.perf_counter() - start, engine, rejected


def run_execute_many(
    commands: list[c.Command], accounts: int, factory: Any
) -> tuple[float, Engine]:
    """One timed pass of ``execute_many`` over batches of ``BATCH`` commands."""
    engine = fresh_engine(accounts, factory)
    execute_many = engine.execute_many
    gc.collect()
    start = time.perf_counter()
    for first in range(0, len(commands), BATCH):
        execute_many(commands[first : first + BATCH])
    return time.perf_counter() - start, engine


def run_execute_batch(
    commands: list[c.Command], accounts: int, factory: Any, build: bool
) -> tuple[float, Engine]:
    """One timed pass of ``execute_batch`` over batches of ``BATCH`` commands; with ``build``,
    every batch's Python events are built too (``results()``), as a consumer reading them all
    would."""
    engine = fresh_engine(accounts, factory)
    execute_batch = engine.execute_batch
    gc.collect()
    start = time.perf_counter()
    if build:
        for first in range(0, len(commands), BATCH):
            execute_batch(commands[first : first + BATCH]).results()
    else:
        for first in range(0, len(commands), BATCH):
            execute_batch(commands[first : first + BATCH])
    return time.perf_counter() - start, engine


def throughput(
    commands: list[c.Command], accounts: int, factory: Any, repeat: int
) -> dict[str, Any]:
    """The best of ``repeat`` passes of each (other work on the machine only ever slows one),
    alternating the two so that a busy spell does not fall on one of them only."""
    seconds = many_seconds = batch_seconds = built_seconds = float("inf")
    for _ in range(repeat):
        one, engine, rejected = run_execute(commands, accounts, factory)
        many, batched = run_execute_many(commands, accounts, factory)
        batch, unbuilt = run_execute_batch(commands, accounts, factory, build=False)
        built, _ = run_execute_batch(commands, accounts, factory, build=True)
        seconds, many_seconds = min(seconds, one), min(many_seconds, many)
        batch_seconds, built_seconds = min(batch_seconds, batch), min(built_seconds, built)
    assert digest(batched) == digest(engine) == digest(unbuilt)
    book = engine.markets[MARKET].book
    return {
        "commands": len(commands),
        "seconds": round(seconds, 3),
        "commands_per_s": round(len(commands) / seconds),
        "execute_many_commands_per_s": round(len(commands) / many_seconds),
        "execute_many_batch": BATCH,
        # Events kept as the compiled twin's records, never built (docs/adr/0008).
        "execute_batch_commands_per_s": round(len(commands) / batch_seconds),
        "execute_batch_built_commands_per_s": round(len(commands) / built_seconds),
        "best_of": repeat,
        "rejected": rejected,
        "resting_orders_at_end": sum(1 for _ in book.orders()),
        "events_last_seq": engine.seq,
        "digest": digest(engine),
    }


def replay_throughput(stream: list[tuple[Any, ...]], accounts: int, factory: Any) -> int:
    """Commands/s when each command is built from the stream inside the timed loop."""
    replay = BallastReplay(fresh_engine(accounts, factory), accounts)
    apply = replay.apply
    gc.collect()
    start = time.perf_counter()
    for now, item in enumerate(stream, 1):
        apply(item, now)
    return round(len(stream) / (time.perf_counter() - start))


def latency(commands: list[c.Command], accounts: int, factory: Any) -> dict[str, Any]:
    engine = fresh_engine(accounts, factory)
    execute = engine.execute
    clock = time.perf_counter_ns
    samples = []
    gc.collect()
    for command in commands:
        start = clock()
        try:  # noqa: SIM105 (contextlib.suppress costs more than the compiled engine's command)
            execute(command)
        except DomainError:
            pass
        samples.append(clock() - start)
    samples.sort()

    def pct(q: float) -> float:
        return round(samples[min(len(samples) - 1, int(q * len(samples)))] / 1000, 2)

    return {"p50_us": pct(0.50), "p99_us": pct(0.99), "p999_us": pct(0.999)}


def memory_per_resting_order(factory: Any, orders: int = 100_000) -> dict[str, Any]:
    """Bytes allocated per resting order: orders on both sides that never cross."""
    engine = fresh_engine(100, factory)
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
    parser.add_argument(
        "--repeat", type=int, default=3, help="timed passes per engine; the best one counts"
    )
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
    commands, skipped = prepare(stream, args.accounts)
    result["stream_items_without_a_command"] = skipped
    # The stream and the prepared commands live all run: keep the collector from re-scanning
    # them (as a server would freeze what it loads at start), for every engine alike.
    gc.collect()
    gc.freeze()
    engines: dict[str, Any] = {}
    for name, factory in twins().items():
        row = throughput(commands, args.accounts, factory, args.repeat)
        row["replay_commands_per_s"] = replay_throughput(stream, args.accounts, factory)
        row.update(latency(commands, args.accounts, factory))
        row.update(memory_per_resting_order(factory))
        engines[name] = row
    digests = {row.pop("digest") for row in engines.values()}
    assert len(digests) == 1, "the twins ended in different states"
    result["ballast"] = engines
    if "compiled" in engines:
        result["compiled_vs_reference"] = round(
            engines["compiled"]["commands_per_s"] / engines["reference"]["commands_per_s"], 2
        )
    if not args.no_third_party:
        from third_party_engines import run_all

        # Best of --repeat runs per engine too, as for ours.
        others = run_all(stream)
        for _ in range(args.repeat - 1):
            for row, again in zip(others, run_all(stream), strict=True):
                if (again.get("commands_per_s") or 0) > (row.get("commands_per_s") or 0):
                    row.update(again)
        ratios: dict[str, dict[str, float]] = {name: {} for name in engines}
        batch_ratios: dict[str, dict[str, float]] = {name: {} for name in engines}
        for row in others:
            if row.get("commands_per_s"):
                for name, ours in engines.items():
                    ratio = round(ours["commands_per_s"] / row["commands_per_s"], 2)
                    row[f"{name}_ratio"] = ratio
                    ratios[name][row["engine"]] = ratio
                    batch_ratios[name][row["engine"]] = round(
                        ours["execute_batch_commands_per_s"] / row["commands_per_s"], 2
                    )
        result["third_party"] = others
        # Ballast twin ÷ engine, commands/s on the same stream in this run: `execute` per
        # command (Python events), and `execute_batch` (events as records, not built).
        result["ratios"] = ratios
        result["ratios_execute_batch"] = batch_ratios
    result["peak_rss_mb"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
