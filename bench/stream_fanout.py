"""Stream fan-out and socket order entry, against a real `ballast serve` (docs/benchmarks.md).

Part 1, fan-out: SUBSCRIBERS WebSocket clients (in a separate process) subscribe to one
market's `orderbook` and `trades` while market makers send orders over the socket at RATE/s.
Each subscriber notes, for every message, arrival time minus the message's `time` (when the
server published it, right after the commit). Printed: messages delivered per second, latency
p50/p99, gaps in `seq` (must be 0), and how many subscribers were cut as slow.

Part 2, order entry: placements per second over the socket (pipelined on a few connections)
against REST (wrk with pre-signed requests, as bench/http_load.py), same order mix, no
subscribers.

    .venv/bin/python bench/stream_fanout.py                         # 1,000 subscribers, 2,000/s
    .venv/bin/python bench/stream_fanout.py --subscribers 100 --duration 10
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import shutil
import subprocess
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path
from typing import Any

import websockets

sys.path.insert(0, str(Path(__file__).resolve().parent))
from http_load import (
    BALLAST,
    FAR_FUTURE_MS,
    MARKET,
    Account,
    Server,
    order_body,
    run_wrk,
    serve,
    sign,
    write_order_requests,
)


def stream_url(server: Server) -> str:
    return server.base.replace("http://", "ws://") + "/stream"


def auth(account: Account) -> str:
    ts = str(int(time.time() * 1000))
    signature = sign(account.api_secret, ts, "GET", "/stream", "")
    return json.dumps(
        {"op": "auth", "api_key": account.api_key, "timestamp": ts, "signature": signature}
    )


def percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


# ---------------------------------------------------------------- subscriber process


async def subscribers(url: str, count: int, seconds: float) -> dict[str, Any]:
    """Open ``count`` connections, subscribe, read for ``seconds``; report what arrived."""
    latencies: list[float] = []
    stats = {"messages": 0, "gaps": 0, "closed": 0, "connected": 0}

    async def one(i: int, ready: asyncio.Event, stop: asyncio.Event) -> None:
        last: dict[str, int] = {}
        async with websockets.connect(url, max_queue=None, open_timeout=60) as ws:
            for channel in ("orderbook", "trades"):
                await ws.send(
                    json.dumps({"op": "subscribe", "channel": channel, "market_id": MARKET})
                )
            stats["connected"] += 1
            if stats["connected"] == count:
                ready.set()
            sample = i % 10 == 0  # every tenth connection times its messages
            try:
                while not stop.is_set():
                    try:
                        raw = await asyncio.wait_for(ws.recv(), 1)
                    except TimeoutError:
                        continue
                    message = json.loads(raw)
                    kind = message.get("type")
                    if kind not in ("update", "snapshot"):
                        continue
                    channel = message["channel"]
                    if kind == "update" and stats_on.is_set():
                        stats["messages"] += 1
                        if message["seq"] != last.get(channel, -1) + 1:
                            stats["gaps"] += 1
                        if sample:
                            sent = datetime.fromisoformat(message["time"]).timestamp()
                            latencies.append((time.time() - sent) * 1000)
                    last[channel] = message["seq"]
            except websockets.ConnectionClosed:
                stats["closed"] += 1

    stats_on = asyncio.Event()
    ready, stop = asyncio.Event(), asyncio.Event()
    tasks = []
    for i in range(count):
        tasks.append(asyncio.create_task(one(i, ready, stop)))
        if i % 50 == 49:
            await asyncio.sleep(0.05)
    await asyncio.wait_for(ready.wait(), 120)
    print("READY", flush=True)
    # The parent starts the order flow now; measure after a second of warm-up.
    await asyncio.sleep(1)
    stats_on.set()
    started = time.monotonic()
    await asyncio.sleep(seconds)
    stats_on.clear()
    elapsed = time.monotonic() - started
    stop.set()
    await asyncio.gather(*tasks, return_exceptions=True)
    return {
        "subscribers": count,
        "messages_per_s": round(stats["messages"] / elapsed),
        "latency_ms_p50": round(percentile(latencies, 0.50), 1),
        "latency_ms_p99": round(percentile(latencies, 0.99), 1),
        "latency_ms_max": round(max(latencies, default=float("nan")), 1),
        "latency_samples": len(latencies),
        "seq_gaps": stats["gaps"],
        "cut_or_closed": stats["closed"],
    }


# ---------------------------------------------------------------- order flow over the socket


async def order_flow(
    url: str, makers: list[Account], rate: int, seconds: float, seed: int
) -> dict[str, Any]:
    """Send orders at ``rate``/s spread over the makers' connections; count the answers."""
    rng = random.Random(seed)
    counts = {"sent": 0, "ok": 0, "errors": 0}
    sockets = []
    for maker in makers:
        ws = await websockets.connect(url, max_queue=None)
        await ws.send(auth(maker))
        json.loads(await ws.recv())
        sockets.append(ws)

    async def drain(ws: Any) -> None:
        async for raw in ws:
            message = json.loads(raw)
            if message.get("type") == "result":
                counts["ok"] += 1
            elif message.get("type") == "error":
                counts["errors"] += 1

    readers = [asyncio.create_task(drain(ws)) for ws in sockets]
    tick = 0.01
    per_tick = rate * tick
    owed = 0.0
    started = time.monotonic()
    n = 0
    while time.monotonic() - started < seconds:
        owed += per_tick
        while owed >= 1:
            owed -= 1
            n += 1
            ws = sockets[n % len(sockets)]
            if n % 10 == 0:
                request = {"op": "cancel_all", "id": n, "params": {"market_id": MARKET}}
            else:
                params = json.loads(order_body(rng, crossing=n % 10 in (3, 7)))
                request = {"op": "place_order", "id": n, "params": params}
            await ws.send(json.dumps(request))
            counts["sent"] += 1
        next_tick = started + (n / rate)
        await asyncio.sleep(max(0.0, next_tick - time.monotonic()))
    elapsed = time.monotonic() - started
    await asyncio.sleep(2)
    for ws in sockets:
        await ws.close()
    for reader in readers:
        reader.cancel()
    return {"requests_per_s": round(counts["sent"] / elapsed), **counts}


async def socket_throughput(
    url: str, accounts: list[Account], seconds: float, window: int, seed: int
) -> dict[str, Any]:
    """Placements as fast as the server answers: each connection keeps ``window`` in flight."""
    rng = random.Random(seed)
    placed = {"ok": 0, "errors": 0}
    stop = time.monotonic() + seconds

    async def one(account: Account) -> None:
        async with websockets.connect(url, max_queue=None) as ws:
            await ws.send(auth(account))
            json.loads(await ws.recv())
            in_flight = 0
            n = 0
            while time.monotonic() < stop or in_flight:
                while in_flight < window and time.monotonic() < stop:
                    n += 1
                    if n % 10 == 0:
                        request = {"op": "cancel_all", "id": n, "params": {"market_id": MARKET}}
                    else:
                        params = json.loads(order_body(rng, crossing=n % 10 in (3, 7)))
                        request = {"op": "place_order", "id": n, "params": params}
                    await ws.send(json.dumps(request))
                    in_flight += 1
                message = json.loads(await ws.recv())
                if message.get("type") in ("result", "error"):
                    in_flight -= 1
                    if message["type"] == "result" and message["op"] == "place_order":
                        placed["ok"] += 1 if message["status"] == 201 else 0
                    elif message["type"] == "error":
                        placed["errors"] += 1

    started = time.monotonic()
    await asyncio.gather(*(one(a) for a in accounts))
    elapsed = time.monotonic() - started
    return {"placements_per_s": round(placed["ok"] / elapsed), **placed}


# ---------------------------------------------------------------- the run


def make_accounts(server: Server, n: int, prefix: str) -> list[Account]:
    accounts = []
    for i in range(n):
        made = server.admin_post("/accounts", {"name": f"{prefix}-{i}", "deposit": "100000000"})
        accounts.append(Account(made["account_id"], made["api_key"], made["api_secret"]))
    return accounts


def fanout(args: argparse.Namespace, work: Path) -> dict[str, Any]:
    data_dir = work / "fanout" / "var"
    data_dir.mkdir(parents=True)
    os.environ["BALLAST_STREAM_CONNECTIONS_PER_IP"] = str(args.subscribers + 100)
    os.environ["BALLAST_STREAM_SEND_BUFFER_BYTES"] = str(args.send_buffer_bytes)
    with serve(args.ballast, data_dir, None) as server:
        market = {"id": MARKET, "name": "Fan-out", "type": "binary", "close_time": FAR_FUTURE_MS}
        server.admin_post("/markets", market)
        server.admin_post(f"/markets/{MARKET}/open")
        makers = make_accounts(server, args.makers, "maker")
        child = subprocess.Popen(
            [
                sys.executable,
                __file__,
                "--subscriber-process",
                stream_url(server),
                str(args.subscribers),
                str(args.duration),
            ],
            stdout=subprocess.PIPE,
            text=True,
        )
        assert child.stdout is not None
        line = child.stdout.readline()
        if line.strip() != "READY":
            raise RuntimeError(f"subscribers did not connect: {line!r}")
        cpu0 = server.cpu_seconds()
        flow = asyncio.run(
            order_flow(stream_url(server), makers, args.rate, args.duration + 2, args.seed)
        )
        server_cores = (server.cpu_seconds() - cpu0) / (args.duration + 4)
        out, _ = child.communicate(timeout=120)
        result = json.loads(out.strip().splitlines()[-1])
        result["order_flow"] = flow
        result["server_cpu_cores"] = round(server_cores, 2)
        return result


def entry(args: argparse.Namespace, work: Path) -> dict[str, Any]:
    data_dir = work / "entry" / "var"
    data_dir.mkdir(parents=True)
    with serve(args.ballast, data_dir, None) as server:
        market = {"id": MARKET, "name": "Entry", "type": "binary", "close_time": FAR_FUTURE_MS}
        server.admin_post("/markets", market)
        server.admin_post(f"/markets/{MARKET}/open")
        accounts = make_accounts(server, args.connections, "entry")
        socket = asyncio.run(
            socket_throughput(stream_url(server), accounts, args.entry_seconds, 64, args.seed)
        )
        prefix = work / "entry" / "rest-orders"
        host = server.base.removeprefix("http://")
        write_order_requests(prefix, host, accounts, 1, args.seed)
        rest = run_wrk(args.wrk, server.base, prefix, 1, args.connections, args.entry_seconds)
        # wrk counts every request (1 in 10 is a cancel-all); count placements alike.
        rest_placements = rest["requests"] * 0.9 / rest["duration_s"]
        return {
            "socket_placements_per_s": socket["placements_per_s"],
            "socket_errors": socket["errors"],
            "rest_placements_per_s": round(rest_placements),
            "rest_non_2xx": rest.get("non_2xx", rest.get("errors")),
            "ratio": round(socket["placements_per_s"] / rest_placements, 2),
        }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--subscribers", type=int, default=1000)
    parser.add_argument("--rate", type=int, default=2000, help="orders a second during fan-out")
    parser.add_argument("--duration", type=float, default=15)
    parser.add_argument("--makers", type=int, default=4)
    parser.add_argument("--send-buffer-bytes", type=int, default=1 << 20)
    parser.add_argument("--connections", type=int, default=8, help="order-entry connections")
    parser.add_argument("--entry-seconds", type=int, default=10)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--ballast", default=str(BALLAST))
    parser.add_argument("--wrk", default=shutil.which("wrk") or "wrk")
    parser.add_argument("--skip-entry", action="store_true")
    parser.add_argument("--subscriber-process", nargs=3, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.subscriber_process:
        url, count, seconds = args.subscriber_process
        print(json.dumps(asyncio.run(subscribers(url, int(count), float(seconds)))), flush=True)
        return 0
    with tempfile.TemporaryDirectory(prefix="ballast-fanout-") as tmp:
        work = Path(tmp)
        result: dict[str, Any] = {"fanout": fanout(args, work)}
        if not args.skip_entry:
            result["order_entry"] = entry(args, work)
    result["machine"] = {"cores": os.cpu_count(), "python": sys.version.split()[0]}
    print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
