"""Recovery benchmark (issue 17): restart time with a snapshot, the matching pause a snapshot
causes, snapshot size per resting order, database growth per million orders.

    .venv/bin/python bench/recovery.py                      # 1M orders, SQLite and PostgreSQL
    .venv/bin/python bench/recovery.py --orders 100000 --tail 10000 --no-postgres

For each database:

1. **Build.** 10,000 accounts and 50 binary markets, then ``--orders`` resting limit orders
   (bids 0.100-0.480, asks 0.520-0.900, half with a client order id) run through the compiled
   engine and stored as the server stores them: journal rows and the projected query tables
   (``write_batch``, 2,000 commands a transaction). The database's size before and after gives
   its growth per million orders.
2. **Snapshot.** The state after the last order, encoded (``snapshot_codec``) and stored in
   chunks, as the server's snapshotter does: encode time, bytes, bytes per resting order.
3. **Tail.** ``--tail`` more commands after the snapshot, journaled and projected: new resting
   orders (40 %), cancels (30 %), amends (10 %) and crossing orders that trade (20 %).
4. **Restart.** ``ballast serve`` on that database; process start to ``/readyz`` 200, and the
   recovery it reports (snapshot used, commands replayed). Then, on that live server, one
   snapshot through the admin API: the fork pause and the duration it reports.

To compare builds on the same data, build once and restart as often as needed:

    .venv/bin/python bench/recovery.py --keep /tmp/rb --no-pause          # build, keep, restart
    .venv/bin/python bench/recovery.py --reuse /tmp/rb --restarts 3       # restart copies of it
    .venv/bin/python bench/recovery.py --reuse /tmp/rb --server-src /tmp/old/server/src

``--reuse`` restarts a fresh copy of the kept database each time (the SQLite file copied, a
PostgreSQL ``CREATE DATABASE ... TEMPLATE``), so a restart's own writes (the live snapshot)
never reach the next. ``--server-src`` runs the server from another source tree (its
``PYTHONPATH``), e.g. an export of an older commit with its compiled engine.

And once, in this process, **the matching pause**: the same engine executes a steady stream of
placements and cancels while a snapshot is forked every ``--pause-every`` seconds (the
snapshotter's own ``fork_encoder``, child encoding and sending its bytes back, read by a thread
as in the server). Reported: the fork time, the longest command (execution plus any stall) in
the second after each fork, and the longest without snapshots, over the same number of commands.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import random
import resource
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import psycopg
from sqlalchemy import text

from ballast_exchange.domain import DomainError, MarketKind, MarketStatus, select_engine
from ballast_exchange.domain import commands as c
from ballast_exchange.domain import snapshot_codec as codec
from ballast_exchange.domain.events import OrderAccepted
from ballast_exchange.domain.types import Side
from ballast_exchange.service import forking
from ballast_exchange.service.exchange import ClientOrders, remember_client_order
from ballast_exchange.service.forking import fork_encoder, freeze_recovered, wait_child
from ballast_exchange.store import snapshots as snapshot_store
from ballast_exchange.store.database import Database, begin_write
from ballast_exchange.store.projection import JournalItem, write_batch
from ballast_exchange.store.schema import projection_state

ROOT = Path(__file__).resolve().parents[1]
BALLAST = ROOT / ".venv" / "bin" / "ballast"
POSTGRES_ADMIN = os.environ.get("BALLAST_BENCH_POSTGRES", "postgresql://127.0.0.1:5432/test")
BATCH = 2_000
PYCACHE = Path(tempfile.gettempdir()) / "ballast-bench-pycache"
T0 = 1_800_000_000_000  # command times (ms): 2027


@dataclass
class State:
    engine: Any
    client_orders: ClientOrders = field(default_factory=dict)
    command_no: int = 0
    time: int = T0
    resting_ids: list[int] = field(default_factory=list)


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


# ------------------------------------------------------------------------------ commands


def setup_commands(accounts: int, markets: int) -> Iterator[c.Command]:
    for n in range(accounts):
        yield c.CreateAccount(T0, f"acct{n:05d}")
        yield c.Deposit(T0, f"acct{n:05d}", 10**13, "bench")
    for m in range(markets):
        market = f"mkt{m:02d}"
        yield c.CreateMarket(T0, market, MarketKind.BINARY, 1_000, 0, 1_000, 4_102_444_800_000)
        yield c.ChangeMarketStatus(T0, market, MarketStatus.OPEN)


def resting_order(rng: random.Random, n: int, accounts: int, markets: int) -> c.PlaceOrder:
    buy = rng.random() < 0.5
    return c.PlaceOrder(
        T0,
        f"acct{rng.randrange(accounts):05d}",
        f"mkt{rng.randrange(markets):02d}",
        Side.BUY if buy else Side.SELL,
        rng.randint(1, 100),
        rng.randint(100, 480) if buy else rng.randint(520, 900),
        client_order_id=f"r{n}" if rng.random() < 0.5 else None,
    )


def tail_command(rng: random.Random, n: int, state: State, args: argparse.Namespace) -> c.Command:
    roll = rng.random()
    orders = state.engine.orders
    if roll < 0.4:
        for _ in range(20):  # a random live order (ids of closed ones are skipped)
            order_id = rng.choice(state.resting_ids)
            order = orders.get(order_id)
            if order is not None:
                if roll < 0.3:
                    return c.CancelOrder(T0, order.account_id, order_id)
                return c.AmendOrder(T0, order.account_id, order_id, size=order.remaining + 1)
    if roll < 0.6:  # crossing: takes from the touch of one market
        buy = rng.random() < 0.5
        return c.PlaceOrder(
            T0,
            f"acct{rng.randrange(args.accounts):05d}",
            f"mkt{rng.randrange(args.markets):02d}",
            Side.BUY if buy else Side.SELL,
            rng.randint(1, 30),
            600 if buy else 400,
        )
    return resting_order(rng, 10**9 + n, args.accounts, args.markets)


def execute(state: State, command: c.Command) -> JournalItem | None:
    state.time += 1
    command = command.__class__(**{**_fields(command), "time": state.time})
    try:
        events = state.engine.execute(command)
    except DomainError:
        return None
    remember_client_order(state.client_orders, command, events)
    if events and isinstance(events[0], OrderAccepted) and isinstance(command, c.PlaceOrder):
        state.resting_ids.append(events[0].order_id)
    state.command_no += 1
    return JournalItem(state.command_no, command, events, command.time)


def _fields(command: c.Command) -> dict[str, Any]:
    return {name: getattr(command, name) for name in command.__dataclass_fields__}


def store(database: Database, state: State, commands: Iterator[c.Command]) -> int:
    """Execute and store (journal + projection, as the server ends up with); how many."""
    stored = 0
    batch: list[JournalItem] = []
    for command in commands:
        item = execute(state, command)
        if item is None:
            continue
        batch.append(item)
        if len(batch) == BATCH:
            with begin_write(database.engine) as conn:
                write_batch(conn, batch)
            stored += len(batch)
            batch = []
    if batch:
        with begin_write(database.engine) as conn:
            write_batch(conn, batch)
        stored += len(batch)
    return stored


# ------------------------------------------------------------------------------ databases


KEPT_POSTGRES = "ballast_bench_kept"  # the database --keep builds and --reuse copies


def _postgres_url(name: str) -> str:
    return POSTGRES_ADMIN.rsplit("/", 1)[0] + f"/{name}"


@contextmanager
def fresh_database(
    kind: str, directory: Path, keep: bool = False, template: str | None = None
) -> Iterator[str]:
    """An empty database (or a copy of ``template``'s), dropped after unless ``keep``."""
    if kind == "sqlite":
        if template is not None:
            for path in Path(template).parent.glob("ballast.db*"):
                shutil.copyfile(path, directory / path.name)
        yield f"sqlite:///{directory / 'ballast.db'}"
        return
    name = KEPT_POSTGRES if keep else f"ballast_bench_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(POSTGRES_ADMIN, autocommit=True) as conn:
        if keep:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        copy = f' TEMPLATE "{template}"' if template is not None else ""
        conn.execute(f'CREATE DATABASE "{name}"{copy}')
    try:
        yield _postgres_url(name)
    finally:
        if not keep:
            with psycopg.connect(POSTGRES_ADMIN, autocommit=True) as conn:
                conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def database_bytes(database: Database, directory: Path) -> int:
    if database.dialect == "sqlite":
        with database.engine.connect() as conn:
            conn.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")
        return sum(p.stat().st_size for p in directory.glob("ballast.db*"))
    with database.engine.connect() as conn:
        conn.execute(text("CHECKPOINT"))
        return int(conn.execute(text("SELECT pg_database_size(current_database())")).scalar_one())


# ------------------------------------------------------------------------------ the restart


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def warm_bytecode() -> None:
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    env["PYTHONPYCACHEPREFIX"] = str(PYCACHE)
    subprocess.run(
        [sys.executable, "-c", "import ballast_exchange.app, ballast_exchange.cli"],
        env=env,
        check=True,
    )


def restart(url: str, directory: Path, server_src: str | None = None) -> dict[str, Any]:
    port = free_port()
    env = dict(os.environ)
    if server_src is not None:
        env["PYTHONPATH"] = server_src
    env.update(BALLAST_SNAPSHOT_EVERY_COMMANDS="0", BALLAST_SNAPSHOT_EVERY_S="0")
    env.update(BALLAST_JOURNAL_RETENTION="keep")
    # Bytecode compiled once, as an installed server has it (PYTHONDONTWRITEBYTECODE would
    # make every start compile every module: seconds, and not recovery's).
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    env["PYTHONPYCACHEPREFIX"] = str(PYCACHE)
    data_dir = directory / "var"
    command = [str(BALLAST), "serve", "--data-dir", str(data_dir), "--port", str(port)]
    command += ["--no-demo", "--database-url", url]
    logfile = directory / "serve.log"
    started = time.monotonic()
    with logfile.open("ab") as out:
        process = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT, env=env)
    base = f"http://127.0.0.1:{port}"
    try:
        while True:
            if process.poll() is not None:
                raise RuntimeError(f"ballast serve exited:\n{logfile.read_text()[-3000:]}")
            try:
                response = httpx.get(f"{base}/readyz", timeout=1)
                if response.status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            time.sleep(0.02)
        ready_s = time.monotonic() - started
        load = os.getloadavg()[0]
        cpu_s = _cpu_s(process.pid)
        recovery = response.json()["recovery"]
        token = (data_dir / "admin.token").read_text().strip()
        taken = httpx.post(
            f"{base}/v1/admin/snapshots",
            headers={"Authorization": f"Bearer {token}"},
            timeout=600,
        ).json()["snapshot"]
        rss = _rss_mb(process.pid)
        metrics = httpx.get(f"{base}/metrics", timeout=30).text
        recovery_s = next(
            float(line.split()[-1])
            for line in metrics.splitlines()
            if line.startswith("ballast_recovery_seconds ")
        )
        recovery["exchange_recovery_s"] = round(recovery_s, 2)
        return {
            "ready_s": round(ready_s, 2),
            "load_average_1m": round(load, 2),
            # CPU the server used until ready: steadier than wall time on a shared machine.
            "cpu_s_to_ready": round(cpu_s, 2),
            "recovery": recovery,
            "live_snapshot": taken,
            "server_rss_mb": rss,
        }
    finally:
        process.kill()
        process.wait()
        kept = Path(tempfile.gettempdir()) / f"ballast-bench-recovery-{directory.name}.log"
        kept.write_bytes(logfile.read_bytes())


def _cpu_s(pid: int) -> float:
    """User and system CPU seconds of a process so far (its waited-for children included)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    ticks = sum(int(f) for f in fields[11:15])  # utime, stime, cutime, cstime
    return ticks / os.sysconf("SC_CLK_TCK")


def _rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return round(int(line.split()[1]) / 1024, 1)
    return 0.0


# ------------------------------------------------------------------------------ the pause


def matching_pause(state: State, args: argparse.Namespace) -> dict[str, Any]:
    """The longest command while snapshots fork every ``--pause-every`` s, and without.

    The state is frozen out of the cycle collector first, as the server does after recovery.
    Reported per snapshot: the fork, and the longest command from the fork until the child has
    sent its bytes (so copy-on-write faults while it runs count too).
    """
    rng = random.Random(7)
    freeze_recovered()
    # As the server: free pages handed back after recovery, and the heap readied for each
    # fork in a worker thread while commands run on (older builds have neither).
    if hasattr(forking, "trim_heap"):
        forking.trim_heap()
    trim = None if args.no_ready_to_fork else getattr(forking, "ready_to_fork", None)

    def run(seconds: float, snapshots: bool) -> dict[str, Any]:
        forks: list[float] = []
        while_child: list[float] = []
        took_all: list[float] = []
        executed = 0
        waiter: threading.Thread | None = None
        trimmer: threading.Thread | None = None
        readied: list[tuple[float, float]] = []  # (its time, the longest command meanwhile)
        ready_started = ready_max = 0.0
        deadline = time.perf_counter() + seconds
        next_fork = time.perf_counter() + args.pause_every / 2
        window_max = 0.0
        while True:
            now = time.perf_counter()
            if now > deadline and (waiter is None or not waiter.is_alive()):
                break
            if waiter is not None and not waiter.is_alive():
                while_child.append(window_max)
                waiter = None
            due = snapshots and waiter is None and now >= next_fork and now < deadline
            if due and trim is not None and trimmer is None:
                trimmer = threading.Thread(target=trim)
                ready_started, ready_max = now, 0.0
                trimmer.start()
            if due and (trimmer is None or not trimmer.is_alive()):
                if trimmer is not None:
                    readied.append((now - ready_started, ready_max))
                trimmer = None
                started = time.perf_counter()
                pid, fd = fork_encoder(state, state.command_no)
                forks.append(time.perf_counter() - started)
                waiter = threading.Thread(target=wait_child, args=(pid, fd, 600.0))
                waiter.start()
                window_max = forks[-1]
                next_fork = now + args.pause_every
            command = tail_command(rng, executed, state, args)
            started = time.perf_counter()
            execute(state, command)
            took = time.perf_counter() - started
            took_all.append(took)
            if waiter is not None:
                window_max = max(window_max, took)
            if trimmer is not None:
                ready_max = max(ready_max, took)
            executed += 1
        took_all.sort()
        return {
            "commands": executed,
            "longest_command_ms": round(took_all[-1] * 1000, 2),
            "p99_command_ms": round(took_all[len(took_all) * 99 // 100] * 1000, 3),
            "commands_over_5ms": sum(1 for t in took_all if t > 0.005),
            "fork_ms": [round(f * 1000, 2) for f in forks],
            "longest_while_child_runs_ms": [round(w * 1000, 2) for w in while_child],
            # ready_to_fork in its worker thread, and the longest command while it ran
            "ready_to_fork_s": [round(r, 2) for r, _ in readied],
            "longest_while_readying_ms": [round(m * 1000, 2) for _, m in readied],
        }

    gc.collect()
    baseline = run(args.pause_seconds, snapshots=False)
    with_snapshots = run(args.pause_seconds, snapshots=True)
    return {"without_snapshots": baseline, "with_snapshots": with_snapshots}


# ------------------------------------------------------------------------------ main


def bench(kind: str, args: argparse.Namespace) -> tuple[dict[str, Any], State | None]:
    """Build (or, with ``--reuse``, take the kept build) and restart ``--restarts`` times."""
    if args.reuse is not None:
        kept = Path(args.reuse)
        result = json.loads((kept / f"{kind}.json").read_text())
        template = str(kept / "sqlite" / "ballast.db") if kind == "sqlite" else KEPT_POSTGRES
        result["restarts"] = [restart_copy(kind, template, args) for _ in range(args.restarts)]
        return result, None
    if args.keep is not None:
        directory = Path(args.keep) / kind
        directory.mkdir(parents=True, exist_ok=True)
        for old in directory.glob("ballast.db*"):
            old.unlink()
        with fresh_database(kind, directory, keep=True) as url:
            result, state = build(kind, url, directory, args)
        (Path(args.keep) / f"{kind}.json").write_text(json.dumps(result, indent=2))
        template = str(directory / "ballast.db") if kind == "sqlite" else KEPT_POSTGRES
        result["restarts"] = [restart_copy(kind, template, args) for _ in range(args.restarts)]
        return result, state
    with tempfile.TemporaryDirectory(prefix="ballast-recovery-") as tmp:
        directory = Path(tmp)
        with fresh_database(kind, directory) as url:
            result, state = build(kind, url, directory, args)
            result["restarts"] = [restart_copy(kind, url, args) for _ in range(args.restarts)]
    return result, state


def restart_copy(kind: str, template: str, args: argparse.Namespace) -> dict[str, Any]:
    """``ballast serve`` on a fresh copy of a built database (sqlite: its file; postgresql:
    the database to copy)."""
    with tempfile.TemporaryDirectory(prefix="ballast-recovery-") as tmp:
        directory = Path(tmp)
        if kind == "sqlite" and template.startswith("sqlite:///"):
            template = template.removeprefix("sqlite:///")
        elif kind == "postgresql" and "/" in template:
            template = template.rsplit("/", 1)[1]
        with fresh_database(kind, directory, template=template) as url:
            log(f"{kind}: restarting ballast serve on a copy")
            found = restart(url, directory, args.server_src)
            log(
                f"{kind}: ready in {found['ready_s']} s, {found['cpu_s_to_ready']} CPU s "
                f"(load average {found['load_average_1m']})"
            )
            return found


def build(
    kind: str, url: str, directory: Path, args: argparse.Namespace
) -> tuple[dict[str, Any], State]:
    """The database with ``--orders`` resting orders, a snapshot of them and the tail."""
    result: dict[str, Any] = {"database": kind}
    database = Database(url)
    database.upgrade()
    empty = database_bytes(database, directory)
    state = State(select_engine().new())
    rng = random.Random(1)
    started = time.monotonic()
    store(database, state, setup_commands(args.accounts, args.markets))
    before_orders = database_bytes(database, directory)
    log(f"{kind}: storing {args.orders} resting orders")
    store(
        database,
        state,
        (resting_order(rng, n, args.accounts, args.markets) for n in range(args.orders)),
    )
    built = database_bytes(database, directory)
    result["build_s"] = round(time.monotonic() - started, 1)
    result["resting_orders"] = len(state.engine.orders)
    result["database_bytes"] = {
        "empty": empty,
        "accounts_and_markets": before_orders,
        "with_orders": built,
    }
    result["database_growth_per_million_orders_mb"] = round(
        (built - before_orders) / args.orders * 1_000_000 / 2**20, 1
    )
    log(f"{kind}: snapshot of {len(state.engine.orders)} orders")
    started = time.perf_counter()
    encoded = codec.encode(state.engine, state.client_orders, state.command_no)
    encode_s = time.perf_counter() - started
    started = time.perf_counter()
    chunks = snapshot_store.write_chunks(database.engine, state.command_no, encoded.data)
    snapshot_store.publish(
        database.engine,
        snapshot_store.StoredSnapshot(
            command_no=state.command_no,
            version=codec.VERSION,
            checksum=encoded.checksum,
            digest=encoded.digest,
            size_bytes=len(encoded.data),
            payload_bytes=encoded.payload_bytes,
            chunks=chunks,
            engine="compiled",
            created_at=int(time.time() * 1000),
            duration_ms=int(encode_s * 1000),
        ),
    )
    write_s = time.perf_counter() - started
    result["snapshot"] = {
        "command_no": state.command_no,
        "bytes": len(encoded.data),
        "payload_bytes": encoded.payload_bytes,
        "bytes_per_resting_order": round(len(encoded.data) / len(state.engine.orders), 1),
        "encode_s": round(encode_s, 2),
        "write_s": round(write_s, 2),
        "client_orders": len(state.client_orders),
    }
    log(f"{kind}: storing a tail of {args.tail} commands")
    tail = store(database, state, (tail_command(rng, n, state, args) for n in range(args.tail)))
    with database.engine.connect() as conn:
        projected = conn.execute(projection_state.select().where(projection_state.c.id == 1)).one()
    assert projected.command_no == state.command_no
    result["tail_commands"] = tail
    result["journal_commands"] = state.command_no
    result["database_bytes"]["with_snapshot_and_tail"] = database_bytes(database, directory)
    database.dispose()
    return result, state


def kept_state(kept: Path) -> State:
    """The state a ``--keep`` build snapshotted, restored from that snapshot (for the pause:
    minutes faster than executing a million orders again)."""
    sqlite = kept / "sqlite" / "ballast.db"
    url = f"sqlite:///{sqlite}" if sqlite.exists() else _postgres_url(KEPT_POSTGRES)
    database = Database(url)
    with database.engine.connect() as conn:
        found = snapshot_store.newest(conn)
        assert found is not None, "the kept build has no snapshot"
        data = snapshot_store.read(conn, found)
    database.dispose()
    log(f"restoring the kept snapshot of command {found.command_no}")
    engine, client_orders, header = codec.decode(data, select_engine().restorer)
    del data
    return State(
        engine,
        client_orders,
        header.command_no,
        T0 + 10 * header.command_no,
        list(engine.orders),
    )


def main() -> None:
    # Building a million orders with the cycle collector on costs minutes of full collections.
    gc.disable()
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--orders", type=int, default=1_000_000)
    parser.add_argument("--accounts", type=int, default=10_000)
    parser.add_argument("--markets", type=int, default=50)
    parser.add_argument("--tail", type=int, default=100_000)
    parser.add_argument("--pause-seconds", type=float, default=20.0)
    parser.add_argument("--pause-every", type=float, default=4.0)
    parser.add_argument("--no-postgres", action="store_true")
    parser.add_argument("--no-sqlite", action="store_true")
    parser.add_argument("--no-pause", action="store_true", help="restarts only")
    parser.add_argument("--only-pause", action="store_true", help="the matching pause alone")
    parser.add_argument(
        "--no-ready-to-fork", action="store_true", help="the pause without ready_to_fork"
    )
    parser.add_argument("--restarts", type=int, default=1, help="restarts per database")
    parser.add_argument("--keep", metavar="DIR", help="build into DIR and keep it for --reuse")
    parser.add_argument("--reuse", metavar="DIR", help="restart copies of a --keep build")
    parser.add_argument("--server-src", metavar="PATH", help="the server's source (PYTHONPATH)")
    args = parser.parse_args()
    results: dict[str, Any] = {"args": vars(args), "runs": []}
    warm_bytecode()
    state = None
    if args.only_pause:  # the engine alone, no database
        state = State(select_engine().new())
        rng = random.Random(1)
        for command in setup_commands(args.accounts, args.markets):
            execute(state, command)
        for n in range(args.orders):
            execute(state, resting_order(rng, n, args.accounts, args.markets))
    kinds = ([] if args.no_sqlite else ["sqlite"]) + ([] if args.no_postgres else ["postgresql"])
    for kind in [] if args.only_pause else kinds:
        run, built = bench(kind, args)
        state = built or state
        results["runs"].append(run)
        print(json.dumps(run), file=sys.stderr, flush=True)
    if state is None and args.reuse is not None and not args.no_pause:
        state = kept_state(Path(args.reuse))
    if state is None:  # --reuse --no-pause: nothing built in this process
        print(json.dumps(results, indent=2))
        return
    gc.enable()
    gc.collect()
    if args.no_pause:
        print(json.dumps(results, indent=2))
        return
    log("matching pause")
    results["pause"] = matching_pause(state, args)
    # What else a start spends per resting order: the stream's read models (stream/models.py).
    from ballast_exchange.stream.models import Models

    started = time.perf_counter()
    Models(state.engine)
    results["stream_models_build_s"] = round(time.perf_counter() - started, 2)
    results["allocator"] = {
        name: os.environ.get(name, "") for name in ("PYTHONMALLOC", "GLIBC_TUNABLES")
    }
    results["bench_rss_mb"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
