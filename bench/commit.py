"""Durable-commit benchmark: what a group commit costs per command, on SQLite and PostgreSQL.

    .venv/bin/python bench/commit.py                       # prints JSON, a table on stderr
    .venv/bin/python bench/commit.py --commands 20000 --no-postgres

The engine's benchmark stream (``command_stream``: deep book, then limits, cancels, market
orders and amends) is run through the engine once, untimed, to get each command's events.
Then the same journal items are stored in group-commit transactions of 1, 32, 128 and 512, into
a fresh database per run, three ways:

- ``journal+projection``: journal rows and the folded query tables in one transaction (what
  the durable commit did before it went journal-first);
- ``journal``: journal rows only (the durable commit an acknowledgement waits for now);
- ``projection``: the query tables and the watermark alone (the projector, off that path).

SQLite runs as the server runs it: WAL, ``synchronous=FULL`` for the journal, ``NORMAL`` for
the projection. Each figure is commands per second over the whole run (best of ``--repeat``).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from command_stream import generate
from engine import DEPOSIT, MARKET, BallastReplay

from ballast_exchange.domain import DomainError, Engine, MarketKind, MarketStatus
from ballast_exchange.domain import commands as c
from ballast_exchange.domain.events import OrderAccepted
from ballast_exchange.domain.state import MAX_SIZE, MAX_TIME_MS
from ballast_exchange.store.database import Database, begin_write
from ballast_exchange.store.projection import (
    JournalItem,
    project,
    write_batch,
    write_journal,
)

ACCOUNTS = 200
BATCHES = (1, 32, 128, 512)
POSTGRES_ADMIN = os.environ.get("BALLAST_BENCH_POSTGRES", "postgresql://127.0.0.1:5432/test")
Write = Callable[[Any, Sequence[JournalItem]], None]


def setup_commands() -> list[c.Command]:
    """The benchmark market (as ``bench/engine.py`` lists it) and funded accounts."""
    commands: list[c.Command] = [
        c.CreateMarket(
            0,
            MARKET,
            MarketKind.BINARY,
            1_000,
            0,
            1_000,
            MAX_TIME_MS,
            max_order_size=10**9,
            max_position=MAX_SIZE,
            maker_fee_bps=-2,
            taker_fee_bps=10,
        ),
        c.ChangeMarketStatus(0, MARKET, MarketStatus.OPEN),
    ]
    for account in range(ACCOUNTS):
        commands += [c.CreateAccount(0, f"acct{account}"), c.Deposit(0, f"acct{account}", DEPOSIT)]
    return commands


def journal_items(commands: int, seed: int) -> list[JournalItem]:
    """The set-up and the stream as accepted commands with their events, numbered 1, 2, ..."""
    engine = Engine()
    items: list[JournalItem] = []

    def accept(command: c.Command) -> list[Any] | None:
        try:
            events = engine.execute(command)
        except DomainError:
            return None
        items.append(JournalItem(len(items) + 1, command, events, command.time))
        return events

    for command in setup_commands():
        accept(command)
    replay = BallastReplay(engine, ACCOUNTS)
    for now, item in enumerate(generate(commands, seed=seed), 1):
        command = replay.command(item, now)
        events = accept(command) if command is not None else None
        if events is not None and type(command) is c.PlaceOrder:
            first = events[0]
            assert isinstance(first, OrderAccepted)
            replay.ids[item[1]] = first.order_id
    return items


@contextmanager
def fresh_database(kind: str) -> Iterator[Database]:
    if kind == "sqlite":
        with tempfile.TemporaryDirectory() as folder:
            database = Database(f"sqlite:///{folder}/bench.db")
            database.upgrade()
            try:
                yield database
            finally:
                database.dispose()
        return
    import psycopg

    name = f"ballast_bench_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(POSTGRES_ADMIN, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    database = Database(POSTGRES_ADMIN.rsplit("/", 1)[0] + f"/{name}")
    try:
        database.upgrade()
        yield database
    finally:
        database.dispose()
        with psycopg.connect(POSTGRES_ADMIN, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def store(database: Database, items: Sequence[JournalItem], batch: int, mode: str) -> float:
    """Seconds to store ``items`` in transactions of ``batch`` the ``mode`` way."""
    sql = database.projection_engine if mode == "projection" else database.engine
    write: Write = {"journal+projection": write_batch, "journal": write_journal}.get(mode, project)
    if mode == "projection":  # the projector projects what is already journaled
        with begin_write(database.engine) as conn:
            write_journal(conn, items)
    started = time.perf_counter()
    for start in range(0, len(items), batch):
        with begin_write(sql) as conn:
            write(conn, items[start : start + batch])
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--commands", type=int, default=30_000, help="stream length")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--repeat", type=int, default=1)
    parser.add_argument("--no-postgres", action="store_true")
    args = parser.parse_args()
    items = journal_items(args.commands, args.seed)
    events = sum(len(item.events) for item in items)
    kinds = ["sqlite"] + ([] if args.no_postgres else ["postgresql"])
    modes = ("journal+projection", "journal", "projection")
    results: dict[str, Any] = {
        "commands": len(items),
        "events_per_command": round(events / len(items), 2),
        "per_second": {},
    }
    for kind in kinds:
        for batch in BATCHES:
            # One fsync per transaction: a batch of 1 gets a slice of the stream, not all of it.
            sample = items if batch >= 32 else items[: min(len(items), 3_000)]
            for mode in modes:
                best = min(_timed(kind, sample, batch, mode) for _ in range(max(1, args.repeat)))
                rate = round(len(sample) / best)
                results["per_second"][f"{kind}/{batch}/{mode}"] = rate
                print(f"{kind:10} batch {batch:4}  {mode:19} {rate:8,}/s", file=sys.stderr)
            base = results["per_second"][f"{kind}/{batch}/journal+projection"]
            gain = results["per_second"][f"{kind}/{batch}/journal"] / base
            results["per_second"][f"{kind}/{batch}/journal_vs_before"] = round(gain, 2)
    print(json.dumps(results, indent=2))


def _timed(kind: str, items: Sequence[JournalItem], batch: int, mode: str) -> float:
    with fresh_database(kind) as database:
        return store(database, items, batch, mode)


if __name__ == "__main__":
    main()
