"""The stream's CPU per committed command, in process (docs/benchmarks.md, "Stream read models").

Runs bench/command_stream.py's order flow (a deep book built first, then limits, cancels, market
orders and amends from 100 accounts) through a live engine, groups the stored commands 32 to a
commit, and times ``Hub.committed`` alone over them: what the stream costs the event loop per
command. Subscribers are in-memory sinks: the market's book (depths 20 and 5), trades, ticker
and the markets channel, and all four private channels of 20 accounts; more sinks subscribe
along the way, so snapshots are rendered mid-flow too. At the end the market is halted,
resumed, closed, proposed, overturned, proposed again and settled.

    .venv/bin/python bench/stream_committed.py                    # time it
    .venv/bin/python bench/stream_committed.py --bare             # no subscribers at all
    .venv/bin/python bench/stream_committed.py --dump frames.txt  # and write every frame

``--dump`` is how the change was checked byte for byte: run it against the code before (a
``git archive`` of the earlier commit on PYTHONPATH) and after, and diff the two files.
"""

from __future__ import annotations

import argparse
import gc
import inspect
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from command_stream import BUILD_COMMANDS, generate
from engine import MARKET, BallastReplay, fresh_engine

from ballast_exchange.config import Settings
from ballast_exchange.domain import DomainError, MarketStatus
from ballast_exchange.domain import commands as c
from ballast_exchange.domain.events import OrderAccepted
from ballast_exchange.service.metrics import Metrics
from ballast_exchange.store.projection import JournalItem
from ballast_exchange.stream.hub import Hub

BATCH = 32
T0 = 1_800_000_000_000
PRIVATE = ("orders", "fills", "positions", "balance")


class FakeExchange:
    def __init__(self, engine: Any) -> None:
        self.engine = engine
        self.metrics = Metrics()
        self.now = T0

    def clock(self) -> int:
        return self.now


class Sink:
    """A subscriber that keeps what it is sent (the hub's Subscriber, before and after)."""

    def __init__(self, hub: Any, name: str, keep: bool) -> None:
        self.hub = hub
        self.name = name
        self.ip = "127.0.0.1"
        self.api_key: str | None = None
        self.keep = keep
        self.frames: list[bytes] = []
        self.held: list[bytes] = []  # the earlier hub's hold/flush
        self.streams: dict[Any, Any] = {}

    def push(self, text: str) -> None:
        if self.keep:
            self.frames.append(text.encode())

    def send(self, frame: bytes) -> None:
        if self.keep:
            self.frames.append(frame)

    def hold(self, frame: bytes) -> None:
        if not self.held:
            self.hub.holding.append(self)
        self.held.append(frame)

    def flush(self) -> None:
        frames, self.held = self.held, []
        self.send(b"".join(frames))

    def close_soon(self, code: int, reason: str) -> None:
        raise AssertionError(f"hub closed {self.name}: {code} {reason}")

    async def close(self, code: int, reason: str) -> None:
        pass

    def heartbeat(self, now: str | None, exchange_seq: int) -> None:
        pass


def subscribe(hub: Any, sink: Sink, channel: str, owner: str, depth: int = 0) -> None:
    if len(inspect.signature(hub.subscribe).parameters) == 2:
        sink.streams[(channel, owner, depth)] = hub.subscribe(sink, (channel, owner, depth))
    else:
        sink.streams[(channel, owner, depth)] = hub.subscribe(sink, channel, owner, depth)


def attach(hub: Any, sinks: list[Sink], tag: str, keep: bool) -> None:
    public = Sink(hub, f"{tag}-public", keep)
    hub.admit(public)
    for channel, depth in (("orderbook", 20), ("trades", 0), ("ticker", 0)):
        subscribe(hub, public, channel, MARKET, depth)
    shallow = Sink(hub, f"{tag}-book5", keep)
    hub.admit(shallow)
    subscribe(hub, shallow, "orderbook", MARKET, 5)
    subscribe(hub, shallow, "markets", "")
    sinks += [public, shallow]
    for account in range(1, 21):
        sink = Sink(hub, f"{tag}-acct{account}", keep)
        hub.admit(sink)
        for channel in PRIVATE:
            subscribe(hub, sink, channel, f"acct{account}")
        sinks.append(sink)


def lifecycle(now: int) -> list[c.Command]:
    return [
        c.ChangeMarketStatus(now, MARKET, MarketStatus.HALTED),
        c.ChangeMarketStatus(now + 1, MARKET, MarketStatus.OPEN),
        c.ChangeMarketStatus(now + 2, MARKET, MarketStatus.CLOSED),
        c.ProposeSettlement(now + 3, MARKET, 1_000_000, "a" * 64, "bench", 10),
        c.OverturnSettlement(now + 4, MARKET, "bench"),
        c.ProposeSettlement(now + 5, MARKET, 0, "b" * 64, "bench", 10),
        c.FinalizeSettlement(now + 100, MARKET),
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--commands", type=int, default=BUILD_COMMANDS + 20_000)
    parser.add_argument("--dump", type=Path, help="write every frame each sink received")
    parser.add_argument("--bare", action="store_true", help="no subscribers: the fold alone")
    args = parser.parse_args()

    accounts = 100
    engine = fresh_engine(accounts)
    exchange = FakeExchange(engine)
    hub = Hub(exchange, Settings(), exchange.metrics)  # type: ignore[arg-type]
    keep = args.dump is not None
    sinks: list[Sink] = []
    if not args.bare:
        attach(hub, sinks, "start", keep)

    replay = BallastReplay(engine, accounts)
    flow = generate(args.commands, accounts=accounts)
    items: list[JournalItem] = []
    elapsed = steady = 0.0
    commands = steady_commands = 0
    committed = hub.committed

    def commit(now: int) -> None:
        nonlocal elapsed, steady, commands, steady_commands
        exchange.now = now
        gc.disable()
        start = time.perf_counter()
        committed(items, now)
        spent = time.perf_counter() - start
        gc.enable()
        elapsed += spent
        commands += len(items)
        if commands > BUILD_COMMANDS:
            steady += spent
            steady_commands += len(items)
        items.clear()

    def run(command: c.Command) -> None:
        try:
            events = engine.execute(command)
        except DomainError:
            return
        items.append(JournalItem(len(items), command, events, command.time))

    now = T0
    for number, entry in enumerate(flow, 1):
        now = T0 + number * 7
        command = replay.command(entry, now)
        if command is not None:
            before = len(items)
            run(command)
            if type(command) is c.PlaceOrder and len(items) > before:
                first = items[-1].events[0]
                assert isinstance(first, OrderAccepted)
                replay.ids[entry[1]] = first.order_id
        if len(items) >= BATCH:
            commit(now)
        if number % 10_000 == 0 and not args.bare:
            commit(now)
            exchange.now = now
            attach(hub, sinks, f"at{number}", keep)
    for command in lifecycle(now + 10):
        run(command)
        commit(command.time)
    commit(now + 200)

    print(
        f"{commands} commands stored; Hub.committed {elapsed * 1e6 / commands:.1f} µs/command "
        f"overall, {steady * 1e6 / max(steady_commands, 1):.1f} µs/command in the steady mix "
        f"({len(sinks)} subscribers)"
    )
    if args.dump is not None:
        with args.dump.open("wb") as out:
            for sink in sinks:
                out.write(f"== {sink.name}\n".encode())
                for frame in sink.frames:
                    out.write(frame + b"\n")
        print(f"frames written to {args.dump}")


if __name__ == "__main__":
    main()
