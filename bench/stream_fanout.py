"""Stream fan-out and socket order entry, against a real `ballast serve` (docs/benchmarks.md).

Part 1, fan-out: SUBSCRIBERS WebSocket clients (in a separate process) subscribe to one
market's `orderbook` and `trades` while market makers send orders over the socket at RATE/s.
Each subscriber notes, for every message, arrival time minus the message's `time` (when the
server published it, right after the commit). Printed: messages delivered per second, latency
p50/p99, gaps in `seq` (must be 0), and how many subscribers were cut as slow.

With ``--gateways N``, the fan-out is measured a second time against gateways in front of one
sequencer (docs/adr/0025): ``ballast sequencer`` and N ``ballast gateway`` processes, each
gateway on a port of its own (the same data dir, a NATS subject prefix of this run's own, the
machine's Redis), the subscribers split evenly over the gateways' ports (subscriber i on gateway
i mod N) and the market makers too. A message's ``time`` is when the sequencer stored the batch,
so the latency is commit → subscriber across the bus and the gateway's replica.
``--only-gateways`` skips the one-process fan-out.

Part 2, order entry: placements per second over the socket (pipelined on a few connections)
against REST (wrk with pre-signed requests, as bench/http_load.py), same order mix, no
subscribers (one process only).

    .venv/bin/python bench/stream_fanout.py                         # 1,000 subscribers, 2,000/s
    .venv/bin/python bench/stream_fanout.py --subscribers 100 --duration 10
    .venv/bin/python bench/stream_fanout.py --gateways 2 --skip-entry   # and over 2 gateways
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import json
import os
import random
import re
import shlex
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import uvloop
import websockets

sys.path.insert(0, str(Path(__file__).resolve().parent))
from http_load import (
    BALLAST,
    FAR_FUTURE_MS,
    HIGH_LIMIT,
    MARKET,
    NATS_URL,
    REDIS_URL,
    Account,
    Server,
    free_port,
    order_body,
    pid_cpu_seconds,
    run_wrk,
    serve,
    sign,
    write_order_requests,
)


def stream_url(server: Server) -> str:
    return server.base.replace("http://", "ws://") + "/stream"


def auth(account: Account, nonce: str) -> str:
    """``auth`` over the connection's nonce (the ``welcome`` the server sends first)."""
    ts = str(int(time.time() * 1000))
    signature = sign(account.api_secret, ts, "GET", "/stream", nonce)
    return json.dumps(
        {"op": "auth", "api_key": account.api_key, "timestamp": ts, "signature": signature}
    )


def percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


# ---------------------------------------------------------------- subscriber process

# A thousand full WebSocket clients in Python would measure themselves, not the server: the
# subscribers here speak just enough of RFC 6455 over a bare asyncio protocol (server frames
# are unmasked text, pings get a pong) and read only each message's head.
HEAD = re.compile(rb'"type":"(\w+)","channel":"(\w+)".*?"seq":(\d+).*?"time":"([^"]+)"')


def masked(opcode: int, payload: bytes) -> bytes:
    """A client frame (clients must mask; RFC 6455 §5.3)."""
    key = os.urandom(4)
    size = len(payload)
    header = bytes((0x80 | opcode,))
    if size < 126:
        header += bytes((0x80 | size,))
    else:
        header += bytes((0x80 | 126,)) + size.to_bytes(2, "big")
    body = bytes(b ^ key[i % 4] for i, b in enumerate(payload))
    return header + key + body


class Subscriber(asyncio.Protocol):
    def __init__(self, path: str, host: str, stats: dict[str, Any], sample: bool) -> None:
        self.request = (
            f"GET {path} HTTP/1.1\r\nHost: {host}\r\nUpgrade: websocket\r\n"
            "Connection: Upgrade\r\nSec-WebSocket-Version: 13\r\n"
            f"Sec-WebSocket-Key: {base64.b64encode(os.urandom(16)).decode()}\r\n\r\n"
        ).encode()
        self.stats = stats
        self.sample = sample
        self.buffer = b""
        self.upgraded = False
        self.last: dict[bytes, int] = {}
        self.ready = asyncio.get_running_loop().create_future()
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        self.transport.write(self.request)

    def send_text(self, text: str) -> None:
        assert self.transport is not None
        self.transport.write(masked(0x1, text.encode()))

    def data_received(self, data: bytes) -> None:
        buffer = self.buffer + data
        if not self.upgraded:
            end = buffer.find(b"\r\n\r\n")
            if end < 0:
                self.buffer = buffer
                return
            if not buffer.startswith(b"HTTP/1.1 101"):
                self.ready.set_exception(RuntimeError(buffer[:200].decode(errors="replace")))
                return
            self.upgraded = True
            self.ready.set_result(None)
            buffer = buffer[end + 4 :]
        pos = 0
        n = len(buffer)
        while n - pos >= 2:
            opcode = buffer[pos] & 0x0F
            size = buffer[pos + 1] & 0x7F
            start = pos + 2
            if size == 126:
                if n - pos < 4:
                    break
                size = int.from_bytes(buffer[pos + 2 : pos + 4], "big")
                start = pos + 4
            elif size == 127:
                if n - pos < 10:
                    break
                size = int.from_bytes(buffer[pos + 2 : pos + 10], "big")
                start = pos + 10
            if n - start < size:
                break
            payload = buffer[start : start + size]
            pos = start + size
            if opcode == 0x1:
                self.message(payload)
            elif opcode == 0x9 and self.transport is not None:
                self.transport.write(masked(0xA, payload))
            elif opcode == 0x8:
                self.stats["closed"] += 1
        self.buffer = buffer[pos:]

    def message(self, payload: bytes) -> None:
        head = HEAD.search(payload, 0, 400)
        if head is None:
            return
        kind, channel, seq, stamp = head.groups()
        number = int(seq)
        stats = self.stats
        if kind == b"update" and stats["on"]:
            stats["messages"] += 1
            if number != self.last.get(channel, -1) + 1:
                stats["gaps"] += 1
            if self.sample:
                sent = datetime.fromisoformat(stamp.decode()).timestamp()
                stats["latencies"].append((time.time() - sent) * 1000)
        self.last[channel] = number

    def connection_lost(self, exc: Exception | None) -> None:
        self.stats["lost"] += 1


async def subscribers(urls: list[str], count: int, seconds: float) -> dict[str, Any]:
    """Open ``count`` connections (subscriber i to ``urls[i % len(urls)]``), subscribe, read
    for ``seconds``; report what arrived."""
    stats: dict[str, Any] = {"messages": 0, "gaps": 0, "closed": 0, "lost": 0}
    stats["latencies"] = []
    stats["on"] = False
    loop = asyncio.get_running_loop()
    clients = []
    for i in range(count):
        parsed = urlsplit(urls[i % len(urls)])
        host, port = parsed.hostname or "127.0.0.1", parsed.port or 80
        _, client = await loop.create_connection(
            lambda i=i, path=parsed.path, address=f"{host}:{port}": Subscriber(
                path, address, stats, i % 10 == 0
            ),
            host,
            port,
        )
        await client.ready
        for channel in ("orderbook", "trades"):
            request = {"op": "subscribe", "channel": channel, "market_id": MARKET}
            client.send_text(json.dumps(request))
        clients.append(client)
    print("READY", flush=True)
    # The parent starts the order flow now; measure after a second of warm-up.
    await asyncio.sleep(1)
    stats["on"] = True
    started, cpu = time.monotonic(), time.process_time()
    await asyncio.sleep(seconds)
    stats["on"] = False
    elapsed = time.monotonic() - started
    cpu = time.process_time() - cpu
    for client in clients:
        if client.transport is not None:
            client.transport.close()
    latencies: list[float] = stats["latencies"]
    return {
        "subscribers": count,
        "subscribers_per_address": {u: len(range(i, count, len(urls))) for i, u in enumerate(urls)},
        "messages_per_s": round(stats["messages"] / elapsed),
        "latency_ms_p50": round(percentile(latencies, 0.50), 1),
        "latency_ms_p99": round(percentile(latencies, 0.99), 1),
        "latency_ms_max": round(max(latencies, default=float("nan")), 1),
        "latency_samples": len(latencies),
        "seq_gaps": stats["gaps"],
        "closed_by_server": stats["closed"],
        # The subscribers share the machine with the server: near 1.0 they, not it, set the pace.
        "subscriber_cpu_cores": round(cpu / elapsed, 2),
    }


# ---------------------------------------------------------------- order flow over the socket


def order_request(rng: random.Random, n: int) -> dict[str, Any]:
    """The n-th request of http_load's mix: 7 resting, 2 crossing IOC, then a cancel-all."""
    if n % 10 == 0:
        return {"op": "cancel_all", "id": n, "params": {"market_id": MARKET}}
    params = json.loads(order_body(rng, crossing=n % 10 in (3, 7)))
    return {"op": "place_order", "id": n, "params": params}


async def order_flow(
    urls: list[str], makers: list[Account], rate: int, seconds: float, seed: int
) -> dict[str, Any]:
    """Send orders at ``rate``/s spread over the makers' connections (maker i to
    ``urls[i % len(urls)]``); count the answers."""
    rng = random.Random(seed)
    counts = {"sent": 0, "ok": 0, "errors": 0}
    sockets = []
    for i, maker in enumerate(makers):
        ws = await websockets.connect(urls[i % len(urls)], max_queue=None)
        welcome = json.loads(await ws.recv())
        await ws.send(auth(maker, welcome["nonce"]))
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
            await ws.send(json.dumps(order_request(rng, n)))
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
            welcome = json.loads(await ws.recv())
            await ws.send(auth(account, welcome["nonce"]))
            json.loads(await ws.recv())
            in_flight = 0
            n = 0
            while time.monotonic() < stop or in_flight:
                while in_flight < window and time.monotonic() < stop:
                    n += 1
                    await ws.send(json.dumps(order_request(rng, n)))
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


def open_market(server: Server, traders: int) -> list[Account]:
    """The bench market, open, and ``traders`` funded accounts."""
    market = {"id": MARKET, "name": "Stream bench", "type": "binary", "close_time": FAR_FUTURE_MS}
    server.admin_post("/markets", market)
    server.admin_post(f"/markets/{MARKET}/open")
    accounts = []
    for i in range(traders):
        made = server.admin_post("/accounts", {"name": f"trader-{i}", "deposit": "100000000"})
        accounts.append(Account(made["account_id"], made["api_key"], made["api_secret"]))
    return accounts


@dataclass
class Layout:
    """Where the subscribers and makers connect, and whose CPU is the server's."""

    admin: Server  # the admin API and the data dir (the one process, or the sequencer)
    stream_urls: list[str]
    pids: dict[str, list[int]]  # by role: server, or sequencer and gateway


def start(command: list[str], env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    with open(log, "ab") as out:
        return subprocess.Popen(
            command, stdout=out, stderr=subprocess.STDOUT, env=env, start_new_session=True
        )


def wait_ready(process: subprocess.Popen[bytes], base: str, log: Path) -> None:
    deadline = time.monotonic() + 90
    while True:
        if process.poll() is not None:
            raise RuntimeError(f"exited {process.returncode}: {log.read_text()[-3000:]}")
        with contextlib.suppress(httpx.HTTPError):
            if httpx.get(base + "/readyz", timeout=2).status_code == 200:
                return
        if time.monotonic() > deadline:
            raise RuntimeError(f"not ready: {log.read_text()[-3000:]}")
        time.sleep(0.1)


def stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@contextlib.contextmanager
def gateways_layout(args: argparse.Namespace, data_dir: Path) -> Iterator[Layout]:
    """``ballast sequencer`` and ``args.gateways`` × ``ballast gateway``, each on its own
    loopback port, sharing the data dir (SQLite, the secret key), NATS and Redis."""
    env = dict(os.environ)
    env["BALLAST_PUBLIC_RATE_LIMIT"] = env["BALLAST_PRIVATE_RATE_LIMIT"] = str(HIGH_LIMIT)
    env["BALLAST_REDIS_URL"] = args.redis_url
    env["BALLAST_NATS_URL"] = NATS_URL
    env["BALLAST_NATS_SUBJECT"] = f"bench-{uuid.uuid4().hex[:10]}"
    common = ["--data-dir", str(data_dir), "--no-demo"]
    started: list[subprocess.Popen[bytes]] = []
    try:
        port = free_port()
        log = data_dir.parent / "sequencer.log"
        sequencer = start(
            [*shlex.split(args.ballast), "sequencer", *common, "--port", str(port)], env, log
        )
        started.append(sequencer)
        base = f"http://127.0.0.1:{port}"
        wait_ready(sequencer, base, log)
        admin = Server(sequencer, base, data_dir, log)
        gateways = []
        for n in range(args.gateways):
            port = free_port()
            log = data_dir.parent / f"gateway-{n}.log"
            process = start(
                [*shlex.split(args.ballast), "gateway", *common, "--port", str(port)], env, log
            )
            started.append(process)
            gateways.append((process, f"http://127.0.0.1:{port}", log))
        for process, gateway_base, log in gateways:
            wait_ready(process, gateway_base, log)
        try:
            yield Layout(
                admin,
                [b.replace("http://", "ws://") + "/stream" for _, b, _ in gateways],
                {"sequencer": [sequencer.pid], "gateway": [p.pid for p, _, _ in gateways]},
            )
        finally:
            admin.admin.close()
    finally:
        for process in reversed(started):
            stop(process)


@contextlib.contextmanager
def one_process_layout(args: argparse.Namespace, data_dir: Path) -> Iterator[Layout]:
    with serve(args.ballast, data_dir, None) as server:
        yield Layout(server, [stream_url(server)], {"server": [server.process.pid]})


def fanout(args: argparse.Namespace, work: Path, gateways: int = 0) -> dict[str, Any]:
    name = f"fanout-gateways-{gateways}" if gateways else "fanout"
    data_dir = work / name / "var"
    data_dir.mkdir(parents=True)
    os.environ["BALLAST_STREAM_CONNECTIONS_PER_IP"] = str(args.subscribers + 100)
    os.environ["BALLAST_STREAM_SEND_BUFFER_BYTES"] = str(args.send_buffer_bytes)
    layout = gateways_layout(args, data_dir) if gateways else one_process_layout(args, data_dir)
    with layout as venue:
        makers = open_market(venue.admin, args.makers)
        child = subprocess.Popen(
            [
                sys.executable,
                __file__,
                "--subscriber-process",
                ",".join(venue.stream_urls),
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
        cpu0 = {r: [pid_cpu_seconds(p) for p in pids] for r, pids in venue.pids.items()}
        flow = asyncio.run(
            order_flow(venue.stream_urls, makers, args.rate, args.duration + 2, args.seed)
        )
        seconds = args.duration + 4  # the flow's run and the 2 s it waits for answers
        cores = {
            r: [
                round((pid_cpu_seconds(p) - c) / seconds, 2)
                for p, c in zip(pids, cpu0[r], strict=True)
            ]
            for r, pids in venue.pids.items()
        }
        out, _ = child.communicate(timeout=120)
        result = json.loads(out.strip().splitlines()[-1])
        result["layout"] = (
            f"ballast sequencer + {gateways} ballast gateway, each gateway on its own port"
            if gateways
            else "ballast serve (one process)"
        )
        result["order_flow"] = flow
        result["server_cpu_cores"] = round(sum(sum(c) for c in cores.values()), 2)
        result["cpu_cores_by_role"] = cores
        return result


def entry(args: argparse.Namespace, work: Path) -> dict[str, Any]:
    data_dir = work / "entry" / "var"
    data_dir.mkdir(parents=True)
    with serve(args.ballast, data_dir, None) as server:
        accounts = open_market(server, max(args.connections, args.rest_connections))
        socket = asyncio.run(
            socket_throughput(
                stream_url(server), accounts[: args.connections], args.entry_seconds, 64, args.seed
            )
        )
        prefix = work / "entry" / "rest-orders"
        host = server.base.removeprefix("http://")
        rest_accounts = accounts[: args.rest_connections]
        write_order_requests(prefix, host, rest_accounts, 1, args.seed)
        rest = run_wrk(args.wrk, server.base, prefix, 1, args.rest_connections, args.entry_seconds)
        rest_placements = rest["statuses"].get("201", 0) / rest["duration_s"]
        return {
            "socket_connections": args.connections,
            "socket_placements_per_s": socket["placements_per_s"],
            "socket_errors": socket["errors"],
            "rest_connections": args.rest_connections,
            "rest_placements_per_s": round(rest_placements),
            "rest_statuses": rest["statuses"],
            "ratio": round(socket["placements_per_s"] / rest_placements, 2),
        }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--subscribers", type=int, default=1000)
    parser.add_argument("--rate", type=int, default=2000, help="orders a second during fan-out")
    parser.add_argument("--duration", type=float, default=15)
    parser.add_argument("--makers", type=int, default=4)
    parser.add_argument("--send-buffer-bytes", type=int, default=1 << 20)
    parser.add_argument("--connections", type=int, default=8, help="socket order-entry connections")
    parser.add_argument("--rest-connections", type=int, default=32, help="wrk connections")
    parser.add_argument("--entry-seconds", type=int, default=10)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--ballast", default=str(BALLAST))
    parser.add_argument("--wrk", default=shutil.which("wrk") or "wrk")
    parser.add_argument("--skip-entry", action="store_true")
    parser.add_argument(
        "--gateways", type=int, default=0, help="also fan out through N gateways (0: not)"
    )
    parser.add_argument("--only-gateways", action="store_true", help="skip the one process")
    parser.add_argument("--redis-url", default=REDIS_URL, help="the gateways' shared Redis")
    parser.add_argument("--work-dir", type=Path, help="keep data and logs here (must not exist)")
    parser.add_argument("--subscriber-process", nargs=3, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.subscriber_process:
        urls, count, seconds = args.subscriber_process
        found = uvloop.run(subscribers(urls.split(","), int(count), float(seconds)))
        print(json.dumps(found), flush=True)
        return 0
    with tempfile.TemporaryDirectory(prefix="ballast-fanout-") as tmp:
        work = Path(args.work_dir or tmp)  # --work-dir keeps the servers' logs
        result: dict[str, Any] = {}
        if not args.only_gateways:
            result["fanout"] = fanout(args, work)
        if args.gateways:
            result[f"fanout_gateways_{args.gateways}"] = fanout(args, work, args.gateways)
        if not args.skip_entry:
            result["order_entry"] = entry(args, work)
    result["machine"] = {"cores": os.cpu_count(), "python": sys.version.split()[0]}
    print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
