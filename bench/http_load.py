"""HTTP load benchmark: signed order placement and cancellation against ``ballast serve``.

Starts ``ballast serve`` (a single uvicorn process) on a loopback port, once per database
(SQLite in a temporary data dir; PostgreSQL in a fresh database created and dropped here),
raises the rate limits so they do not bind, creates one binary market and one funded account
per connection through the admin API, then drives it with ``wrk`` (the load generator, written
in C, so it is not the bottleneck; one or two threads on the core the server does not use):

0. a bare ASGI "hello world" (``bench/hello_asgi.py``: uvicorn, httptools, uvloop, as the
   server runs them) for the same threads, connections and duration: the yardstick of the
   issue's target, placements at half its rate or more, measured in the same run;
1. ``GET /v1/time`` for the same threads, connections and duration (the server's ceiling for a
   request that does no work), after a short warm-up;
2. pre-signed ``POST /v1/orders`` and ``DELETE /v1/orders?market_id=…`` requests, signed right
   before the run (timestamps are valid for ±30 s, hence ``--duration`` ≤ 25 s). Each account
   repeats a cycle of resting limit orders that do not cross, crossing IOC orders that trade
   against other accounts' resting orders, and a cancel-all that clears what rests.

The server acknowledges an order only once its group commit is durable (SQLite WAL with
``synchronous=FULL``, or a PostgreSQL commit), so a 201 is a durable placement. 4xx/5xx are
counted separately and never as placements. After the run the orders are counted through the
API (``GET /v1/orders?status=all``) and compared with the 201s wrk saw (the API may show up to
one more order per connection: requests in flight when wrk stops are not counted by wrk).

Besides throughput and latency it reports the CPU the server, wrk, PostgreSQL and other
processes used during each run, and the server's CPU per request (which does not depend on how
busy the machine is). ``ratio_vs_hello`` is 2xx placements/s over the hello world's requests/s
(the target: ≥ 0.5), ``ratio`` the same over ``GET /v1/time`` requests/s.

Each database is measured in two layouts, one after the other on the same port settings:
``one_process`` (``ballast serve``) and, with ``--gateways N`` (default 2; 0 skips it),
``gateways_N`` (``ballast serve --gateways N``: a sequencer and N gateway processes sharing the
port, over NATS, with Redis for the replay cache and rate limits the gateways share; docs/adr/
0025). There the CPU is also split by role (``/proc/<pid>/stat`` utime+stime of each child of
the serve process, before and after the run) and turned into a projected ceiling on
``--ceiling-cores`` (16) cores: the sequencer is one process (one core at most, its threads
sharing one GIL), the gateways scale out over the rest less what the database, Redis and NATS
need at that rate::

    ceiling = min(1e6 / sequencer_us, (cores - 1) * 1e6 / (gateway_us + infra_us))

(µs of CPU per order request; ``infra_us`` is PostgreSQL + Redis + NATS; with SQLite the
database's work is in the sequencer's process). It is the rate at which either the sequencer's
core or the other cores run out, whichever comes first.

Prints one JSON object, and a summary per layout on stderr. Run from the repository root::

    .venv/bin/python bench/http_load.py [--duration 15] [--connections 32] [--threads 1]
                                        [--databases sqlite,postgresql] [--gateways 2]

``--py-spy PATH`` adds an extra, unmeasured orders run with py-spy attached to the server
(raw stacks to ``--profile-out``-<db>.txt; with gateways, one profile of the sequencer and one
of the first gateway, -<db>-sequencer.txt and -<db>-gateway.txt, taken together);
``--ballast CMD`` runs another server command.
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import hmac
import json
import os
import random
import resource
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx

ROOT = Path(__file__).resolve().parent.parent
LUA = Path(__file__).resolve().with_suffix(".lua")
BALLAST = ROOT / ".venv" / "bin" / "ballast"
POSTGRES_ADMIN_URL = os.environ.get(
    "BALLAST_BENCH_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/postgres"
)
NATS_URL = os.environ.get("BALLAST_BENCH_NATS_URL", "nats://127.0.0.1:4222")
REDIS_URL = os.environ.get("BALLAST_BENCH_REDIS_URL", "redis://127.0.0.1:6379/0")
MARKET = "bench-load"
FAR_FUTURE_MS = 4_102_444_800_000  # 2100-01-01
HIGH_LIMIT = 10_000_000  # requests a minute: far above anything this machine can do

# One account's cycle of requests, repeated with fresh random prices and sizes.
RESTING = 7  # GTC limit orders that do not cross: buys 0.400–0.499, sells 0.501–0.600
CROSSING = 2  # IOC orders at 0.600 (buy) / 0.400 (sell) that take other accounts' orders
CANCELS = 1  # DELETE /v1/orders?market_id=… (cancel-all for the account in the market)
# Distinct cycles per account in the pre-signed file: enough that wrk never wraps round to a
# request it already sent in one run (a signature is good once: a replay answers 401).
CYCLES = 300


# ---------------------------------------------------------------- signing and raw requests


def sign(secret: str, timestamp: str, method: str, path: str, body: str) -> str:
    """hex HMAC-SHA256(secret, timestamp + METHOD + path_with_query + body) (spec)."""
    message = f"{timestamp}{method}{path}{body}".encode()
    return hmac.new(secret.encode(), message, hashlib.sha256).hexdigest()


@dataclass(slots=True)
class Account:
    account_id: str
    api_key: str
    api_secret: str


def raw_request(host: str, method: str, path: str, headers: dict[str, str], body: str) -> bytes:
    """A complete keep-alive HTTP/1.1 request, as wrk sends it byte for byte."""
    lines = [f"{method} {path} HTTP/1.1", f"Host: {host}"]
    lines += [f"{k}: {v}" for k, v in headers.items()]
    if body or method in ("POST", "PUT", "PATCH"):
        lines.append(f"Content-Length: {len(body.encode())}")
    return ("\r\n".join(lines) + "\r\n\r\n" + body).encode()


def signed_raw(host: str, account: Account, method: str, path: str, body: str, ts: str) -> bytes:
    headers = {
        "Authorization": f"Bearer {account.api_key}",
        "X-BM-Timestamp": ts,
        "X-BM-Signature": sign(account.api_secret, ts, method, path, body),
    }
    if body:
        headers["Content-Type"] = "application/json"
    return raw_request(host, method, path, headers, body)


def order_body(rng: random.Random, crossing: bool) -> str:
    side = rng.choice(("buy", "sell"))
    if crossing:
        price, tif = ("0.600" if side == "buy" else "0.400"), "IOC"
    else:
        tick = rng.randint(400, 499) if side == "buy" else rng.randint(501, 600)
        price, tif = f"0.{tick:03d}", "GTC"
    body = {
        "market_id": MARKET,
        "side": side,
        "type": "limit",
        "price": price,
        "size": rng.randint(1, 10),
        "time_in_force": tif,
    }
    return json.dumps(body, separators=(",", ":"))


def account_cycle(rng: random.Random) -> list[tuple[str, str, str]]:
    """One cycle as (method, path, body): orders in random order, then the cancel-all."""
    kinds = [False] * RESTING + [True] * CROSSING
    rng.shuffle(kinds)
    cycle = [("POST", "/v1/orders", order_body(rng, crossing)) for crossing in kinds]
    cycle += [("DELETE", f"/v1/orders?market_id={MARKET}", "")] * CANCELS
    return cycle


def write_order_requests(
    prefix: Path, host: str, accounts: list[Account], threads: int, seed: int
) -> None:
    """Sign now and write one request file per wrk thread; a thread interleaves its accounts."""
    rng = random.Random(seed)
    start_ms = int(time.time() * 1000)
    for t in range(threads):
        mine = accounts[t::threads]
        cycles = {
            a.account_id: [r for _ in range(CYCLES) for r in account_cycle(rng)] for a in mine
        }
        with open(f"{prefix}.{t + 1}", "wb") as out:
            for i in range(CYCLES * (RESTING + CROSSING + CANCELS)):
                for account in mine:
                    method, path, body = cycles[account.account_id][i]
                    # Each request its own millisecond, so no two signatures are alike.
                    raw = signed_raw(host, account, method, path, body, str(start_ms + i))
                    out.write(b"%d\n" % len(raw) + raw)


def write_time_requests(prefix: Path, host: str, threads: int, path: str = "/v1/time") -> None:
    raw = raw_request(host, "GET", path, {}, "")
    for t in range(threads):
        Path(f"{prefix}.{t + 1}").write_bytes(b"%d\n" % len(raw) + raw)


# ---------------------------------------------------------------- wrk


def busy_cpu_seconds() -> float:
    """CPU seconds the whole machine has spent busy (all cores, Linux /proc/stat)."""
    values = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = values[3] + values[4]  # idle + iowait
    return (sum(values[:8]) - idle) / os.sysconf("SC_CLK_TCK")


def named_cpu_seconds(name: str) -> float:
    """CPU seconds of the machine's processes called ``name`` that are alive now (Linux /proc)."""
    total = 0
    for stat in Path("/proc").glob("[0-9]*/stat"):
        with contextlib.suppress(OSError):
            text = stat.read_text()
            if text[text.index("(") + 1 : text.rindex(")")] == name:
                fields = text.rsplit(")", 1)[1].split()
                total += int(fields[11]) + int(fields[12])
    return total / os.sysconf("SC_CLK_TCK")


def postgres_cpu_seconds() -> float:
    return named_cpu_seconds("postgres")


def pid_cpu_seconds(pid: int) -> float:
    """utime + stime of one process, all its threads (0 if it is gone)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def pid_system_seconds(pid: int) -> float:
    """stime alone: the kernel's share (socket writes and reads, fsync), 0 if gone."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return int(fields[12]) / os.sysconf("SC_CLK_TCK")


def child_pids(pid: int) -> list[int]:
    """The processes whose parent is ``pid`` (Linux /proc)."""
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        with contextlib.suppress(OSError, ValueError):
            if int(stat.read_text().rsplit(")", 1)[1].split()[1]) == pid:
                found.append(int(stat.parent.name))
    return sorted(found)


def listeners(port: int) -> int:
    """Sockets listening on ``port`` (with SO_REUSEPORT, one per gateway that serves)."""
    count = 0
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        with contextlib.suppress(OSError):
            for line in Path(table).read_text().splitlines()[1:]:
                local, state = line.split()[1], line.split()[3]
                if state == "0A" and int(local.rsplit(":", 1)[1], 16) == port:
                    count += 1
    return count


def children_cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def run_wrk(
    wrk: str, url: str, prefix: Path, threads: int, connections: int, duration: int
) -> dict[str, Any]:
    command = [
        wrk,
        f"-t{threads}",
        f"-c{connections}",
        f"-d{duration}s",
        "--timeout",
        "10s",
        "--latency",
        "-s",
        str(LUA),
        url,
        "--",
        str(prefix),
    ]
    done = subprocess.run(command, capture_output=True, text=True, timeout=duration + 60)
    for line in done.stdout.splitlines():
        if line.startswith("WRK_JSON "):
            result: dict[str, Any] = json.loads(line[len("WRK_JSON ") :])
            result["duration_s"] = result.pop("duration_us") / 1e6
            return result
    raise RuntimeError(f"wrk gave no result (exit {done.returncode}):\n{done.stdout}{done.stderr}")


# ---------------------------------------------------------------- the server


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def reachable(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=1):
            return True
    except OSError:
        return False


@contextlib.contextmanager
def postgres_database() -> Iterator[str]:
    """A fresh PostgreSQL database for one server, dropped afterwards."""
    import psycopg

    name = f"ballast_bench_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(POSTGRES_ADMIN_URL, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    try:
        yield POSTGRES_ADMIN_URL.rsplit("/", 1)[0] + f"/{name}"
    finally:
        with psycopg.connect(POSTGRES_ADMIN_URL, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@dataclass
class Server:
    process: subprocess.Popen[bytes]
    base: str
    data_dir: Path
    log: Path
    gateways: int = 0  # 0: one process (``ballast serve``); N: ``serve --gateways N``
    admin: httpx.Client = field(init=False)

    def __post_init__(self) -> None:
        token = (self.data_dir / "admin.token").read_text().strip()
        self.admin = httpx.Client(
            base_url=self.base + "/v1/admin",
            headers={"Authorization": f"Bearer {token}"},
            timeout=30,
        )

    def cpu_seconds(self) -> float:
        """User + system CPU time of the server: every process of its layout (Linux /proc)."""
        return sum(self.cpu_by_role().values())

    def roles(self) -> dict[str, list[int]]:
        """Pids by role: ``server``, or ``sequencer``, ``gateway`` and ``supervisor`` (the
        ``serve --gateways`` process itself), told apart by each child's command line."""
        if not self.gateways:
            return {"server": [self.process.pid]}
        found: dict[str, list[int]] = {"supervisor": [self.process.pid]}
        for pid in child_pids(self.process.pid):
            with contextlib.suppress(OSError):
                argv = Path(f"/proc/{pid}/cmdline").read_bytes().rstrip(b"\0").split(b"\0")
                role = argv[-1].decode()
                if role in ("sequencer", "gateway"):
                    found.setdefault(role, []).append(pid)
        return found

    def cpu_by_role(self, roles: dict[str, list[int]] | None = None) -> dict[str, float]:
        found = roles if roles is not None else self.roles()
        return {role: sum(pid_cpu_seconds(p) for p in pids) for role, pids in found.items()}

    def admin_post(self, path: str, body: dict[str, Any] | None = None) -> dict[str, Any]:
        response = self.admin.post(path, json=body or {})
        if response.status_code >= 300:
            raise RuntimeError(f"POST /v1/admin{path}: {response.status_code} {response.text}")
        data: dict[str, Any] = response.json()
        return data


@contextlib.contextmanager
def serve(
    ballast: str,
    data_dir: Path,
    database_url: str | None,
    gateways: int = 0,
    redis_url: str | None = None,
) -> Iterator[Server]:
    """``ballast serve`` on a free port; with ``gateways``, ``serve --gateways N`` on NATS
    (a subject prefix of this run's own) and ``redis_url``, ready once every gateway listens."""
    port = free_port()
    command = [*shlex.split(ballast), "serve", "--data-dir", str(data_dir), "--port", str(port)]
    command += ["--no-demo"]
    if database_url:
        command += ["--database-url", database_url]
    if gateways:
        command += ["--gateways", str(gateways), "--nats-url", NATS_URL]
        command += ["--nats-subject", f"bench-{uuid.uuid4().hex[:10]}"]
    env = dict(os.environ)
    env["BALLAST_PUBLIC_RATE_LIMIT"] = str(HIGH_LIMIT)
    env["BALLAST_PRIVATE_RATE_LIMIT"] = str(HIGH_LIMIT)
    if redis_url:
        env["BALLAST_REDIS_URL"] = redis_url
    log = data_dir.parent / "server.log"
    with open(log, "wb") as out:
        process = subprocess.Popen(
            command, stdout=out, stderr=subprocess.STDOUT, env=env, start_new_session=True
        )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 90
        while True:
            if process.poll() is not None:
                raise RuntimeError(f"ballast serve exited {process.returncode}: {log.read_text()}")
            if (data_dir / "server.json").exists():
                with contextlib.suppress(httpx.HTTPError):
                    if httpx.get(base + "/v1/time", timeout=2).status_code == 200 and (
                        # Every gateway up, or wrk's connections would all go to the first.
                        not gateways
                        or (
                            log.read_text(errors="replace").count("Ballast exchange gateway")
                            >= gateways
                            and listeners(port) >= gateways
                        )
                    ):
                        break
            if time.monotonic() > deadline:
                raise RuntimeError(f"ballast serve did not start: {log.read_text()}")
            time.sleep(0.1)
        server = Server(process, base, data_dir, log, gateways)
        try:
            yield server
        finally:
            server.admin.close()
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                # The layout's children share the session: end all of it, ours only.
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(process.pid, signal.SIGKILL)
                process.wait()


HELLO = Path(__file__).resolve().with_name("hello_asgi.py")


def measure_hello(args: argparse.Namespace, root: Path) -> dict[str, Any]:
    """The bare hello world's rate with the same wrk settings, and its CPU per request."""
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, str(HELLO), str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        deadline = time.monotonic() + 30
        while not reachable("127.0.0.1", port):
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("the hello world server did not start")
            time.sleep(0.05)
        base = f"http://127.0.0.1:{port}"
        prefix = root / "hello-requests"
        write_time_requests(prefix, base.removeprefix("http://"), args.threads, "/")
        run_wrk(args.wrk, base, prefix, args.threads, args.connections, args.warmup)
        stat = Path(f"/proc/{process.pid}/stat")

        def cpu() -> float:
            fields = stat.read_text().rsplit(")", 1)[1].split()
            return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

        cpu0 = cpu()
        result = run_wrk(args.wrk, base, prefix, args.threads, args.connections, args.duration)
        used = cpu() - cpu0
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
    seconds = result["duration_s"]
    return {
        "requests_per_s": round(result["requests"] / seconds, 1),
        "latency_ms": result["latency_ms"],
        "cpu_cores": round(used / seconds, 2),
        "server_cpu_us_per_request": round(used / result["requests"] * 1e6),
        "errors": {k: v for k, v in result["statuses"].items() if not k.startswith("2")},
    }


def signed_call(
    client: httpx.Client, account: Account, method: str, path: str, body: str = ""
) -> httpx.Response:
    ts = str(int(time.time() * 1000))
    raw_headers = {
        "Authorization": f"Bearer {account.api_key}",
        "X-BM-Timestamp": ts,
        "X-BM-Signature": sign(account.api_secret, ts, method, path, body),
    }
    if body:
        raw_headers["Content-Type"] = "application/json"
    return client.request(method, path, content=body or None, headers=raw_headers)


def count_orders(base: str, accounts: list[Account]) -> int:
    """Every order of every account in the bench market, through the API (all statuses)."""
    total = 0
    with httpx.Client(base_url=base, timeout=60) as client:
        for account in accounts:
            cursor = None
            while True:
                path = f"/v1/orders?status=all&market_id={MARKET}&limit=1000"
                if cursor:
                    path += f"&cursor={cursor}"
                response = signed_call(client, account, "GET", path)
                response.raise_for_status()
                page = response.json()
                total += len(page["orders"])
                cursor = page.get("next_cursor")
                if not cursor:
                    break
    return total


# ---------------------------------------------------------------- one database


def layout_name(gateways: int) -> str:
    return f"gateways_{gateways}" if gateways else "one_process"


def ceiling(us: dict[str, float], cores: int, database: str) -> dict[str, Any]:
    """The projected ceiling of the gateways layout on ``cores`` cores (see the module doc)."""
    infra = us.get("redis", 0.0) + us.get("nats", 0.0)
    if database == "postgresql":
        infra += us.get("postgres", 0.0)
    sequencer_cap = 1e6 / us["sequencer"] if us["sequencer"] else float("inf")
    gateway_cap = (cores - 1) * 1e6 / (us["gateway"] + infra)
    at = min(sequencer_cap, gateway_cap)
    return {
        "order_requests_per_s": round(at),
        "placements_per_s": round(at * (RESTING + CROSSING) / (RESTING + CROSSING + CANCELS)),
        "bound_by": "sequencer" if sequencer_cap <= gateway_cap else "gateways",
        "sequencer_cap": round(sequencer_cap),
        "gateways_cap": round(gateway_cap),
        "arithmetic": (
            f"min(1e6 / {us['sequencer']:.0f} sequencer µs, ({cores} - 1) cores * 1e6 / "
            f"({us['gateway']:.0f} gateway µs + {infra:.0f} µs of "
            f"{'PostgreSQL + ' if database == 'postgresql' else ''}Redis + NATS)) = "
            f"min({sequencer_cap:,.0f}, {gateway_cap:,.0f}) order requests/s"
        ),
        "gateway_cores_at_ceiling": round(at * us["gateway"] / 1e6, 1),
        "infra_cores_at_ceiling": round(at * infra / 1e6, 1),
    }


def bench_layout(
    kind: str, gateways: int, args: argparse.Namespace, root: Path, hello: dict[str, Any]
) -> dict[str, Any]:
    """One layout on one database: GET /v1/time, then the signed orders, then the checks."""
    nats = urlsplit(NATS_URL)
    if gateways and not reachable(nats.hostname or "127.0.0.1", nats.port or 4222):
        return {"skipped": f"NATS is not reachable at {NATS_URL}"}
    if kind == "postgresql":
        database: contextlib.AbstractContextManager[str | None] = postgres_database()
    else:
        database = contextlib.nullcontext(None)
    root.mkdir(parents=True)
    data_dir = root / "var"
    data_dir.mkdir()
    load_at_start = [round(x, 2) for x in os.getloadavg()]
    redis_url = args.redis_url if gateways else None
    with (
        database as url,
        serve(args.ballast, data_dir, url, gateways=gateways, redis_url=redis_url) as server,
    ):
        host = server.base.removeprefix("http://")
        market = {"id": MARKET, "name": "HTTP load", "type": "binary", "close_time": FAR_FUTURE_MS}
        server.admin_post("/markets", market)
        server.admin_post(f"/markets/{MARKET}/open")
        accounts = []
        for i in range(args.connections):
            made = server.admin_post("/accounts", {"name": f"bench-{i}", "deposit": "100000000"})
            accounts.append(Account(made["account_id"], made["api_key"], made["api_secret"]))

        # Fail fast if signing is wrong: one placement and one cancel-all, checked by status.
        with httpx.Client(base_url=server.base, timeout=30) as client:
            body = order_body(random.Random(0), crossing=False)
            placed = signed_call(client, accounts[0], "POST", "/v1/orders", body)
            assert placed.status_code == 201, placed.text
            cancel = signed_call(client, accounts[0], "DELETE", f"/v1/orders?market_id={MARKET}")
            assert cancel.status_code == 200, cancel.text

        def measured(prefix: Path) -> dict[str, Any]:
            """One wrk run, with the CPU each server role, wrk and everything else used."""
            roles = server.roles()
            role0, wrk0, busy0 = (
                server.cpu_by_role(roles),
                children_cpu_seconds(),
                busy_cpu_seconds(),
            )
            gateway0 = [pid_cpu_seconds(p) for p in roles.get("gateway", [])]
            system0 = {r: sum(pid_system_seconds(p) for p in pids) for r, pids in roles.items()}
            infra0 = {name: named_cpu_seconds(name) for name in INFRA}
            result = run_wrk(
                args.wrk, server.base, prefix, args.threads, args.connections, args.duration
            )
            seconds, requests = result["duration_s"], max(result["requests"], 1)
            role_cpu = {r: c - role0[r] for r, c in server.cpu_by_role(roles).items()}
            wrk_cpu = children_cpu_seconds() - wrk0
            infra = {n: max(named_cpu_seconds(n) - c, 0.0) for n, c in infra0.items()}
            server_cpu = sum(role_cpu.values())
            other = busy_cpu_seconds() - busy0 - server_cpu - wrk_cpu - sum(infra.values())
            cores = {r: round(c / seconds, 2) for r, c in role_cpu.items()}
            cores["wrk"] = round(wrk_cpu / seconds, 2)
            cores.update({INFRA[n]: round(c / seconds, 2) for n, c in infra.items()})
            cores["other_processes"] = round(max(other, 0.0) / seconds, 2)
            result["cpu_cores"] = cores
            # Independent of how much CPU the server got: its cost per request (µs of CPU).
            result["server_cpu_us_per_request"] = round(server_cpu / requests * 1e6)
            us = {r: c / requests * 1e6 for r, c in role_cpu.items()}
            us.update({INFRA[n]: c / requests * 1e6 for n, c in infra.items()})
            result["cpu_us_per_request"] = {k: round(v) for k, v in us.items()}
            # How much of each role's CPU the kernel spent (system time over user + system).
            result["system_share"] = {
                r: round((sum(pid_system_seconds(p) for p in pids) - system0[r]) / role_cpu[r], 2)
                for r, pids in roles.items()
                if role_cpu[r] > 0
            }
            if gateways:
                result["gateway_cores_each"] = [
                    round((pid_cpu_seconds(p) - c) / seconds, 2)
                    for p, c in zip(roles.get("gateway", []), gateway0, strict=True)
                ]
                # A gateway that died and was started again is not in this run's sums.
                result["roles_unchanged"] = server.roles() == roles
                result["ceiling"] = ceiling(us, args.ceiling_cores, kind)
            else:
                # One process: its request path holds one GIL, so one core at most.
                result["ceiling"] = {"order_requests_per_s": round(1e6 / us["server"])}
            return result

        time_prefix = root / "time-requests"
        write_time_requests(time_prefix, host, args.threads)
        run_wrk(args.wrk, server.base, time_prefix, args.threads, args.connections, args.warmup)
        time_run = measured(time_prefix)

        orders_before = count_orders(server.base, accounts)
        order_prefix = root / "order-requests"
        write_order_requests(order_prefix, host, accounts, args.threads, args.seed)
        order_run = measured(order_prefix)
        time.sleep(1)  # let requests in flight when wrk stopped finish
        orders_after = count_orders(server.base, accounts)
        alive = server.process.poll() is None
        if args.py_spy:  # an extra, unmeasured orders run with the sampling profiler attached
            roles = server.roles()
            # With gateways: the sequencer and one gateway, sampled during the same run.
            targets = (
                {"-sequencer": roles["sequencer"][0], "-gateway": roles["gateway"][0]}
                if gateways
                else {"": roles["server"][0]}
            )
            spies = []
            for suffix, pid in targets.items():
                profile = Path(f"{args.profile_out}-{kind}{suffix}.txt").resolve()
                spy_command = [args.py_spy, "record", "--pid", str(pid)]
                spy_command += ["--nonblocking", "--threads", "--rate", "250"]
                spy_command += ["--duration", str(args.duration), "--format", "raw"]
                if args.py_spy_gil:  # only samples holding the GIL: who keeps the others waiting
                    spy_command.append("--gil")
                spies.append(
                    subprocess.Popen(
                        [*spy_command, "--output", str(profile)],
                        stdout=subprocess.DEVNULL,
                        stderr=subprocess.DEVNULL,
                    )
                )
            write_order_requests(order_prefix, host, accounts, args.threads, args.seed + 1)
            run_wrk(
                args.wrk, server.base, order_prefix, args.threads, args.connections, args.duration
            )
            for spy in spies:
                spy.wait(timeout=60)

    seconds = order_run["duration_s"]
    statuses = order_run["statuses"]
    placed_2xx = statuses.get("201", 0)
    canceled_2xx = statuses.get("200", 0)
    errors = {k: v for k, v in statuses.items() if not k.startswith("2")}
    socket_errors = {k: v for k, v in order_run["socket_errors"].items() if v}
    time_rps = time_run["requests"] / time_run["duration_s"]
    requests_rps = order_run["requests"] / seconds
    time_errors = {k: v for k, v in time_run["statuses"].items() if not k.startswith("2")}
    latency = order_run["latency_ms"]
    found: dict[str, Any] = {
        "layout": (
            f"ballast serve --gateways {gateways} (a sequencer, {gateways} gateways on one port, "
            "NATS, Redis)"
            if gateways
            else "ballast serve (one process)"
        ),
        "database": "sqlite (WAL, synchronous=FULL)" if kind == "sqlite" else "postgresql",
        "orders_per_s": round(placed_2xx / seconds, 1),
        "cancels_per_s": round(canceled_2xx / seconds, 1),
        "requests_per_s": round(requests_rps, 1),
        "p50_ms": latency["p50"],
        "p99_ms": latency["p99"],
        "p999_ms": latency["p999"],
        "latency_ms": latency,
        "errors": {"http": errors, "socket": socket_errors},
        "time_per_s": round(time_rps, 1),
        "time_latency_ms": time_run["latency_ms"],
        "time_errors": {
            "http": time_errors,
            "socket": {k: v for k, v in time_run["socket_errors"].items() if v},
        },
        "hello_per_s": hello["requests_per_s"],
        "ratio_vs_hello": round(placed_2xx / seconds / hello["requests_per_s"], 3),
        "ratio": round(placed_2xx / seconds / time_rps, 3),  # placements/s ÷ GET /time/s
        "ratio_all_requests": round(requests_rps / time_rps, 3),
        "cpu_cores": {"orders_run": order_run["cpu_cores"], "time_run": time_run["cpu_cores"]},
        "server_cpu_us_per_request": {
            "orders_run": order_run["server_cpu_us_per_request"],
            "time_run": time_run["server_cpu_us_per_request"],
        },
        "cpu_us_per_order_request": order_run["cpu_us_per_request"],
        "cpu_us_per_time_request": time_run["cpu_us_per_request"],
        "system_share_of_cpu": order_run["system_share"],
        "ceiling": order_run["ceiling"],
        "check": {
            "placements_2xx": placed_2xx,
            "orders_in_api_delta": orders_after - orders_before,
            "server_alive_after": alive,
        },
        "load_average": {"start": load_at_start, "end": [round(x, 2) for x in os.getloadavg()]},
        "target": {
            "placements_ge_0.5x_hello": placed_2xx / seconds >= 0.5 * hello["requests_per_s"],
            "p99_le_25ms": latency["p99"] <= 25,
            "orders_per_s_ge_5000": placed_2xx / seconds >= 5000,
        },
    }
    if gateways:
        found["gateway_cores_each"] = order_run["gateway_cores_each"]
        found["check"]["roles_unchanged"] = order_run["roles_unchanged"]
    return found


INFRA = {"postgres": "postgres", "redis-server": "redis", "nats-server": "nats"}


def bench_database(kind: str, args: argparse.Namespace, work: Path) -> dict[str, Any]:
    if kind == "postgresql" and not reachable("127.0.0.1", 5432):
        return {"skipped": "PostgreSQL is not reachable on 127.0.0.1:5432"}
    root = work / kind
    root.mkdir(parents=True)
    hello = measure_hello(args, root)
    found: dict[str, Any] = {"hello": hello}
    for gateways in args.layouts:
        name = layout_name(gateways)
        try:
            found[name] = bench_layout(kind, gateways, args, root / name, hello)
        except Exception as error:  # report and go on to the next layout
            log = root / name / "server.log"
            tail = log.read_text(errors="replace")[-2000:] if log.exists() else ""
            found[name] = {"failed": f"{type(error).__name__}: {error}", "server_log": tail}
    return found


def summary(results: dict[str, Any]) -> str:
    """One line per database and layout: what the issue's targets are about."""
    lines = []
    for kind in ("sqlite", "postgresql"):
        found = results.get(kind)
        if not isinstance(found, dict) or "hello" not in found:
            continue
        lines.append(f"{kind}: hello world {found['hello']['requests_per_s']:,.0f}/s")
        for name, run in found.items():
            if name == "hello":
                continue
            if "failed" in run or "skipped" in run:
                lines.append(f"  {name}: {run.get('failed') or run['skipped']}")
                continue
            us = run["cpu_us_per_order_request"]
            line = (
                f"  {name}: {run['orders_per_s']:,.0f} placements/s, "
                f"{run['ratio_vs_hello']:.3f}x hello (target >= 0.5), "
                f"p50 {run['p50_ms']} / p99 {run['p99_ms']} ms (target p99 <= 25), "
                f"CPU µs/order request: " + ", ".join(f"{k} {v}" for k, v in us.items())
            )
            lines.append(line)
            if "arithmetic" in run["ceiling"]:
                ceil = run["ceiling"]
                lines.append(
                    f"    ceiling on {results['settings']['ceiling_cores']} cores: "
                    f"{ceil['arithmetic']} -> {ceil['order_requests_per_s']:,} order requests/s "
                    f"({ceil['placements_per_s']:,} placements/s), bound by {ceil['bound_by']}"
                )
            else:
                server_us = run["server_cpu_us_per_request"]["orders_run"]
                lines.append(
                    f"    one process (one GIL): 1e6 / {server_us} µs = "
                    f"{run['ceiling']['order_requests_per_s']:,} order requests/s"
                )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--duration", type=int, default=15, help="seconds per run (≤ 25)")
    parser.add_argument("--warmup", type=int, default=2, help="seconds of GET /v1/time first")
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--databases", default="sqlite,postgresql")
    parser.add_argument("--wrk", default=shutil.which("wrk") or "/usr/bin/wrk")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--ballast", default=str(BALLAST), help="the server command to run")
    parser.add_argument("--py-spy", help="path to py-spy: profile an extra orders run")
    parser.add_argument("--profile-out", default="http_load-profile", help="py-spy output prefix")
    parser.add_argument("--py-spy-gil", action="store_true", help="py-spy: GIL holders only")
    parser.add_argument(
        "--gateways",
        type=int,
        default=2,
        help="after the one-process run, serve --gateways N (0: the one process only)",
    )
    parser.add_argument("--only-gateways", action="store_true", help="skip the one-process layout")
    parser.add_argument("--redis-url", default=REDIS_URL, help="the gateways' shared Redis")
    parser.add_argument("--ceiling-cores", type=int, default=16, help="cores of the projection")
    args = parser.parse_args(argv)
    args.layouts = ([] if args.only_gateways else [0]) + ([args.gateways] if args.gateways else [])
    if not args.layouts:
        parser.error("--only-gateways needs --gateways N")
    if not 1 <= args.duration <= 25:
        parser.error("--duration must be 1–25 s: signed timestamps are valid for ±30 s")
    if args.connections < args.threads or args.connections % args.threads:
        parser.error("--connections must be a multiple of --threads")
    kinds = [k.strip() for k in args.databases.split(",") if k.strip()]
    for kind in kinds:
        if kind not in ("sqlite", "postgresql"):
            parser.error(f"unknown database {kind!r}")

    results: dict[str, Any] = {
        "settings": {
            "load_generator": "wrk (C, epoll) with pre-signed keep-alive requests",
            "threads": args.threads,
            "connections": args.connections,
            "accounts": args.connections,
            "duration_s": args.duration,
            "warmup_s": args.warmup,
            "mix": {
                "per_account_cycle": {
                    "resting_gtc_orders": RESTING,
                    "crossing_ioc_orders": CROSSING,
                    "cancel_all": CANCELS,
                },
                "order_size": "1-10",
                "latency": "over all requests (placements and cancels together)",
            },
            "server": "ballast serve: 1 uvicorn process (uvloop, httptools), no access log",
            "layouts": [layout_name(g) for g in args.layouts],
            "gateways_layout": (
                f"ballast serve --gateways N --nats-url {NATS_URL}: a sequencer process and N "
                f"gateway processes (SO_REUSEPORT on the one port), Redis {args.redis_url}"
            ),
            "ceiling_cores": args.ceiling_cores,
            "yardstick": "bench/hello_asgi.py: bare ASGI hello world, uvicorn + httptools + uvloop",
        },
        "machine": {
            "cores": os.cpu_count(),
            "platform": sys.platform,
            "load_average_at_start": [round(x, 2) for x in os.getloadavg()],
        },
    }
    work = Path(tempfile.mkdtemp(prefix="ballast-http-load-"))
    try:
        for kind in kinds:
            try:
                results[kind] = bench_database(kind, args, work)
            except Exception as error:  # report and go on to the next database
                log = work / kind / "server.log"
                tail = log.read_text(errors="replace")[-2000:] if log.exists() else ""
                results[kind] = {"failed": f"{type(error).__name__}: {error}", "server_log": tail}
    finally:
        shutil.rmtree(work, ignore_errors=True)
    print(json.dumps(results, indent=2))
    print(summary(results), file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
