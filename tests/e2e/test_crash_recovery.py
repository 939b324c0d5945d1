"""The crash test (DESIGN §6): `ballast serve` as a subprocess under concurrent signed order
load is killed with SIGKILL mid-load and restarted on the same data dir and database. Every
acknowledged order and fill must survive, the ledger must balance, and the restarted server must
report exactly the state the journal rebuilds."""

from __future__ import annotations

import os
import random
import subprocess
import threading
import time
from collections import defaultdict
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import pytest

from ballast_exchange.domain import Engine, digest
from ballast_exchange.service.exchange import recover
from ballast_exchange.store.database import Database
from tests.databases import fresh_database
from tests.live_server import free_port
from tests.signed_client import SignedClient

ROOT = Path(__file__).resolve().parents[2]
BALLAST = ROOT / ".venv" / "bin" / "ballast"
MARKET = "crash"
DEPOSIT = 10_000
WITHDRAWAL = 100
ACCOUNTS = 3
THREADS_PER_ACCOUNT = 2
KILL_AFTER_REQUESTS = 150  # answered requests before the kill: the traders are mid-way then
MAX_REQUESTS_PER_THREAD = 250  # at most 6 × 250 + the reader's = well under 2,000
MICRO = Decimal(1_000_000)
TERMINAL = ("filled", "canceled", "expired", "rejected")


@pytest.fixture(params=["sqlite", "postgres"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    # Commits wait for the disk, as in production: the snapshot test catches a write of many
    # small chunks in the middle, which without those waits is often over too soon.
    with fresh_database(request.param, tmp_path, durable=True) as url:
        yield url


# ------------------------------------------------------------------------ the server process


@dataclass
class Served:
    process: subprocess.Popen[bytes]
    api: str
    log: Path


@contextmanager
def serve(data_dir: Path, database_url: str, log: Path) -> Iterator[Served]:
    """`ballast serve` in a child process; killed (SIGKILL) on the way out whatever happens."""
    port = free_port()
    env = dict(os.environ)
    env.update(BALLAST_PRIVATE_RATE_LIMIT="1000000", BALLAST_PUBLIC_RATE_LIMIT="1000000")
    # The bytecode `make bytecode` compiled next to the sources is used as it is; a module
    # edited since is compiled by the first child and written back for the next ones (with
    # PYTHONDONTWRITEBYTECODE every child would compile it again). A PYTHONPYCACHEPREFIX of
    # the run's own would instead make each worker's first child compile everything.
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    command = [str(BALLAST), "serve", "--data-dir", str(data_dir), "--port", str(port)]
    command += ["--no-demo", "--database-url", database_url]
    with log.open("ab") as out:
        process = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT, env=env)
    served = Served(process, f"http://127.0.0.1:{port}/v1", log)
    try:
        wait_ready(served)
        yield served
    finally:
        kill(process)


def wait_ready(served: Served, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    ready = served.api.removesuffix("/v1") + "/readyz"
    while True:
        if served.process.poll() is not None:
            pytest.fail(
                f"ballast serve exited with {served.process.returncode}:\n{tail(served.log)}"
            )
        try:
            if httpx.get(ready, timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        if time.monotonic() > deadline:
            pytest.fail(f"ballast serve was not ready within {timeout}s:\n{tail(served.log)}")
        time.sleep(0.05)


def kill(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.kill()  # SIGKILL: no shutdown, no final commit, no cleanup
    process.wait(timeout=30)


def tail(log: Path, lines: int = 40) -> str:
    return "\n".join(log.read_text(errors="replace").splitlines()[-lines:]) if log.exists() else ""


# ------------------------------------------------------------------------ what was acknowledged


@dataclass
class Acked:
    """What the server acknowledged about one order, merged over every reply that named it."""

    account: int
    terminal: str | None = None
    filled: int = 0
    size: int = 0
    remaining: int = 0
    cancel_attempted: bool = False
    exact: bool = False  # a full view in a terminal status fixed the filled size for good


@dataclass
class Record:
    lock: threading.Lock = field(default_factory=threading.Lock)
    orders: dict[str, Acked] = field(default_factory=dict)
    fills: dict[int, set[str]] = field(default_factory=lambda: defaultdict(set))
    conflicts: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)  # the harness's own failures, if any
    requests: int = 0
    failed_in_flight: int = 0
    replies: dict[int, int] = field(default_factory=lambda: defaultdict(int))
    samples: dict[int, str] = field(default_factory=dict)  # one reply body per status

    def order(self, account: int, view: dict[str, Any]) -> None:
        """Merge an acknowledged order view (placement, cancel, amend or read)."""
        with self.lock:
            acked = self.orders.setdefault(view["order_id"], Acked(account))
            acked.filled = max(acked.filled, view["filled_size"])
            acked.size = view["size"]
            status = view["status"]
            if status in TERMINAL:
                if acked.terminal not in (None, status):
                    self.conflicts.append(f"{view['order_id']}: {acked.terminal} then {status}")
                acked.terminal = status
                acked.exact = True
            elif acked.terminal is None:
                acked.remaining = view["remaining_size"]
            for fill in view.get("fills", ()):
                self.fills[account].add(fill["trade_id"])

    def cancel_attempt(self, order_id: str) -> None:
        with self.lock:
            self.orders[order_id].cancel_attempted = True

    def open_orders(self, account: int) -> list[str]:
        with self.lock:
            return [
                order_id
                for order_id, acked in self.orders.items()
                if acked.account == account and acked.terminal is None
            ]


# ------------------------------------------------------------------------ the load


class Trader(threading.Thread):
    """Places resting and crossing orders, some IOC, cancels and amends some, until stopped or
    the server goes away (the request in flight then has no answer, which is expected)."""

    def __init__(
        self,
        n: int,
        account: int,
        creds: dict[str, str],
        api: str,
        record: Record,
        stop: threading.Event,
        deadline: float,
    ) -> None:
        super().__init__(daemon=True, name=f"trader-{n}")
        self.account = account
        self.client = SignedClient(api, creds["api_key"], creds["api_secret"])
        self.record = record
        self.stop = stop
        self.deadline = deadline
        self.rng = random.Random(1_000 + n)

    def run(self) -> None:
        try:
            for _ in range(MAX_REQUESTS_PER_THREAD):
                if self.stop.is_set() or time.monotonic() > self.deadline:
                    return
                try:
                    self.step()
                except httpx.TransportError:
                    with self.record.lock:
                        self.record.failed_in_flight += 1
                    return
        except Exception as error:  # surfaced by the test, not lost in a thread
            self.record.errors.append(f"{self.name}: {error!r}")
        finally:
            self.client.close()

    def step(self) -> None:
        rng, record = self.rng, self.record
        roll = rng.random()
        opens = record.open_orders(self.account)
        if roll < 0.2 and opens:
            order_id = rng.choice(opens)
            record.cancel_attempt(order_id)
            self.reply(self.client.delete(f"/orders/{order_id}"))
        elif roll < 0.25 and opens:
            order_id = rng.choice(opens)
            acked = record.orders[order_id]
            if acked.remaining >= 2:
                self.reply(self.client.patch(f"/orders/{order_id}", {"size": acked.size - 1}))
        else:
            side = rng.choice(("buy", "sell"))
            crossing = rng.random() < 0.35
            ticks = rng.randint(56, 60) if crossing else rng.randint(45, 55)
            if side == "sell":
                ticks = 100 - ticks
            body: dict[str, Any] = {
                "market_id": MARKET,
                "side": side,
                "price": f"0.{ticks:02d}",
                "size": rng.randint(1, 10),
            }
            if rng.random() < 0.15:
                body["time_in_force"] = "IOC"
            self.reply(self.client.post("/orders", body))

    def reply(self, response: httpx.Response) -> None:
        record = self.record
        with record.lock:
            record.requests += 1
            record.replies[response.status_code] += 1
            record.samples.setdefault(response.status_code, response.text[:300])
        data = response.json()
        if response.status_code in (200, 201):
            record.order(self.account, data)
        elif data.get("error", {}).get("code") == "ORDER_NOT_CANCELABLE":
            details = data["error"]["details"]
            with record.lock:
                acked = record.orders[details["order_id"]]
                if acked.terminal not in (None, details["status"]):
                    record.conflicts.append(
                        f"{details['order_id']}: {acked.terminal} then {details}"
                    )
                acked.terminal = details["status"]


class Reader(threading.Thread):
    """Reads fills and order history while the load runs: what a read showed is acknowledged."""

    def __init__(
        self, clients: list[SignedClient], record: Record, stop: threading.Event, deadline: float
    ) -> None:
        super().__init__(daemon=True, name="reader")
        self.clients = clients
        self.record = record
        self.stop = stop
        self.deadline = deadline

    def run(self) -> None:
        try:
            while not self.stop.is_set() and time.monotonic() < self.deadline:
                for account, client in enumerate(self.clients):
                    try:
                        fills = client.get("/fills?limit=1000")
                        orders = client.get("/orders?status=all&limit=1000")
                    except httpx.TransportError:
                        return
                    with self.record.lock:
                        self.record.fills[account].update(
                            f["trade_id"] for f in fills.json()["fills"]
                        )
                    for view in orders.json()["orders"]:
                        self.record.order(account, view)
                time.sleep(0.1)
        except Exception as error:
            self.record.errors.append(f"{self.name}: {error!r}")
        finally:
            for client in self.clients:
                client.close()


@dataclass
class Load:
    """Traders and a reader on one server, from ``start_load`` until ``end``."""

    traders: list[Trader]
    threads: list[threading.Thread]
    stop: threading.Event
    deadline: float  # the load is bounded even if the kill never came

    def under_way(self, record: Record) -> None:
        """Wait until ``KILL_AFTER_REQUESTS`` were answered (or every trader is done): a count,
        not a guessed time, as on a loaded machine the traders may take seconds to get going."""
        while record.requests < KILL_AFTER_REQUESTS and any(t.is_alive() for t in self.traders):
            time.sleep(0.01)

    def end(self) -> None:
        self.stop.set()
        for thread in self.threads:
            thread.join(timeout=30)


def start_load(
    api: str, accounts: list[dict[str, str]], record: Record, first: int = 0, reader: bool = True
) -> Load:
    """Traders ``first``… (each its own random stream) and, with ``reader``, a reader.

    Two loads on one venue's keys take different ``first`` and one reader: the same request
    signed by two clients in one millisecond is, rightly, refused as a replay."""
    stop = threading.Event()
    deadline = time.monotonic() + 120
    traders = [
        Trader(n, n % ACCOUNTS, accounts[n % ACCOUNTS], api, record, stop, deadline)
        for n in range(first, first + ACCOUNTS * THREADS_PER_ACCOUNT)
    ]
    threads: list[threading.Thread] = [*traders]
    if reader:
        readers = [SignedClient(api, a["api_key"], a["api_secret"]) for a in accounts]
        threads.append(Reader(readers, record, stop, deadline))
    for thread in threads:
        thread.start()
    return Load(traders, threads, stop, deadline)


# ------------------------------------------------------------------------ helpers


def micro(value: Any) -> int:
    return int(Decimal(str(value)) * MICRO)


def all_pages(client: SignedClient, path: str, key: str) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = []
    cursor: str | None = None
    while True:
        sep = "&" if "?" in path else "?"
        page_path = f"{path}{sep}limit=1000" + (f"&cursor={cursor}" if cursor else "")
        response = client.get(page_path)
        assert response.status_code == 200, response.text
        page = response.json()
        items += page[key]
        cursor = page["next_cursor"]
        if not cursor:
            return items


def recovered(url: str) -> Engine:
    database = Database(url)
    try:
        return recover(database.engine)[0]
    finally:
        database.dispose()


def setup_exchange(served: Served, data_dir: Path) -> list[dict[str, str]]:
    token = (data_dir / "admin.token").read_text().strip()
    with httpx.Client(timeout=30, headers={"Authorization": f"Bearer {token}"}) as admin:

        def post(path: str, body: dict[str, Any] | None = None) -> dict[str, Any]:
            response = admin.post(f"{served.api}/admin{path}", json=body or {})
            assert response.status_code < 300, response.text
            data: dict[str, Any] = response.json()
            return data

        market = {"id": MARKET, "name": MARKET, "type": "binary", "close_time": 4_102_444_800_000}
        post("/markets", {**market, "maker_fee_bps": -5, "taker_fee_bps": 20})
        post(f"/markets/{MARKET}/open")
        accounts = [
            post("/accounts", {"name": f"desk-{n}", "deposit": DEPOSIT}) for n in range(ACCOUNTS)
        ]
        post(f"/accounts/{accounts[0]['account_id']}/withdraw", {"amount": WITHDRAWAL})
    return accounts


# ------------------------------------------------------------------------ the test


def test_sigkill_mid_load_loses_nothing_acknowledged(tmp_path: Path, database_url: str) -> None:
    data_dir = tmp_path / "var"
    log = tmp_path / "server.log"
    record = Record()

    with serve(data_dir, database_url, log) as served:
        accounts = setup_exchange(served, data_dir)
        load = start_load(served.api, accounts, record)
        load.under_way(record)  # the kill comes once the load is well under way
        still_loading = sum(t.is_alive() for t in load.traders)
        kill(served.process)  # mid-load, with requests in flight
        load.end()
        assert not any(t.is_alive() for t in load.threads)

    assert not record.errors, record.errors
    assert still_loading > 0, "the load finished before the kill: nothing was in flight"
    assert record.failed_in_flight > 0
    assert not record.conflicts, record.conflicts
    assert record.replies[201] >= 20, dict(record.replies)
    assert 0 < record.requests <= 2_000
    acked_fills = sum(len(v) for v in record.fills.values())
    assert acked_fills > 0, "the load made no trades"

    # The journal rebuilds the same state every time.
    first = recovered(database_url)
    assert digest(first) == digest(recovered(database_url))

    with serve(data_dir, database_url, log) as served:
        clients = [SignedClient(served.api, a["api_key"], a["api_secret"]) for a in accounts]
        try:
            check_acknowledged(clients, record)
            check_ledger(first, clients, accounts)
            check_matches_journal(first, clients, accounts, served)
            # The restarted server ran no command of its own: the journal still rebuilds `first`.
            assert digest(recovered(database_url)) == digest(first)
            check_still_trades(clients[0])
        finally:
            for client in clients:
                client.close()


def check_acknowledged(clients: list[SignedClient], record: Record) -> None:
    """Every acknowledged order exists with a status its acknowledgements allow; every
    acknowledged fill is listed."""
    orders = [
        {o["order_id"]: o for o in all_pages(c, "/orders?status=all", "orders")} for c in clients
    ]
    fills = [all_pages(c, "/fills", "fills") for c in clients]
    problems = []
    for order_id, acked, response in fetch_each(clients, record.orders):
        if response.status_code != 200:
            problems.append(f"{order_id} acknowledged, now {response.status_code} {response.text}")
            continue
        now = response.json()
        assert now == orders[acked.account][order_id]
        if acked.terminal is not None:
            ok = now["status"] == acked.terminal and (
                now["filled_size"] == acked.filled
                if acked.exact
                else now["filled_size"] >= acked.filled
            )
        else:
            ok = now["filled_size"] >= acked.filled and (
                now["status"] in ("open", "filled")
                or (now["status"] == "canceled" and acked.cancel_attempted)
            )
        if not ok:
            problems.append(f"{order_id}: acknowledged {acked}, now {now}")
    assert not problems, "\n".join(problems[:10])
    for account, acked_fills in record.fills.items():
        listed = {f["trade_id"] for f in fills[account]}
        missing = acked_fills - listed
        assert not missing, f"account {account} lost acknowledged fills {sorted(missing)[:10]}"
    # The projection agrees with itself: an order's fills add up to its filled size.
    for account, client_fills in enumerate(fills):
        per_order: dict[str, int] = defaultdict(int)
        for fill in client_fills:
            per_order[fill["order_id"]] += fill["size"]
        for order_id, order in orders[account].items():
            assert per_order.get(order_id, 0) == order["filled_size"], order


def fetch_each(
    clients: list[SignedClient], orders: dict[str, Acked]
) -> list[tuple[str, Acked, httpx.Response]]:
    """GET /orders/{id} for every acknowledged order, a few requests at a time."""
    local = threading.local()
    made: list[SignedClient] = []

    def get(item: tuple[str, Acked]) -> tuple[str, Acked, httpx.Response]:
        order_id, acked = item
        mine: dict[int, SignedClient] = getattr(local, "clients", {})
        if acked.account not in mine:
            base = clients[acked.account]
            mine[acked.account] = SignedClient(base.api, base.api_key, base.api_secret)
            made.append(mine[acked.account])
            local.clients = mine
        return order_id, acked, mine[acked.account].get(f"/orders/{order_id}")

    try:
        with ThreadPoolExecutor(max_workers=4) as pool:
            return list(pool.map(get, orders.items()))
    finally:
        for client in made:
            client.close()


def check_ledger(
    engine: Engine, clients: list[SignedClient], accounts: list[dict[str, str]]
) -> None:
    """Double entry holds; money is only where it should be; no account is overdrawn."""
    ledger = engine.ledger
    deposits = ACCOUNTS * DEPOSIT * 1_000_000 - WITHDRAWAL * 1_000_000
    assert ledger.total() == 0
    assert -ledger.balance("external") == deposits
    assert sum(v for k, v in ledger.balances.items() if k != "external") == deposits
    venue = sum(v for k, v in ledger.balances.items() if k.startswith(("fees:", "clearing:")))
    assert sum(v for k, v in ledger.balances.items() if k.startswith("fees:")) > 0
    totals = 0
    for client in clients:
        balance = client.get("/account/balance").json()
        available, reserved = micro(balance["available"]), micro(balance["reserved"])
        assert micro(balance["total_balance"]) == available + reserved
        assert available >= 0
        totals += available + reserved
    assert totals + venue == deposits
    for account in accounts:
        assert engine.available(account["account_id"]) >= 0


def check_matches_journal(
    engine: Engine, clients: list[SignedClient], accounts: list[dict[str, str]], served: Served
) -> None:
    """What the restarted server reports equals the engine the journal rebuilds."""
    for client, account in zip(clients, accounts, strict=True):
        account_id = account["account_id"]
        balance = client.get("/account/balance").json()
        assert micro(balance["available"]) == engine.available(account_id)
        assert micro(balance["reserved"]) == engine.reserved(account_id)
        positions = {p["market_id"]: p for p in client.get("/positions").json()["positions"]}
        expected = {m: p for m, p in engine.account(account_id).positions.items() if p.size != 0}
        assert positions.keys() == expected.keys()
        for market_id, position in expected.items():
            assert positions[market_id]["size"] == position.size
            assert micro(positions[market_id]["margin_used"]) == position.collateral
        open_now = {o["order_id"] for o in all_pages(client, "/orders?status=open", "orders")}
        live = {f"ord_{i}" for i, o in engine.orders.items() if o.account_id == account_id}
        assert open_now == live
    book = httpx.get(f"{served.api}/markets/{MARKET}/orderbook?depth=100", timeout=30).json()
    market = engine.markets[MARKET]
    step = Decimal("0.001")
    assert book["seq"] == engine.seq
    assert [(Decimal(str(b["price"])), b["size"]) for b in book["bids"]] == [
        (p * step, s) for p, s in market.book.depth(True, 100)
    ]
    assert [(Decimal(str(a["price"])), a["size"]) for a in book["asks"]] == [
        (p * step, s) for p, s in market.book.depth(False, 100)
    ]
    # The book is not crossed after recovery.
    if book["bids"] and book["asks"]:
        assert book["bids"][0]["price"] < book["asks"][0]["price"]


def check_still_trades(client: SignedClient) -> None:
    """After the restart the exchange takes orders again, with ids never given out before."""
    before = all_pages(client, "/orders?status=all", "orders")
    response = client.post(
        "/orders", {"market_id": MARKET, "side": "buy", "price": "0.01", "size": 1}
    )
    assert response.status_code == 201, response.text
    new_id = int(response.json()["order_id"].removeprefix("ord_"))
    assert all(new_id > int(o["order_id"].removeprefix("ord_")) for o in before)


# ------------------------------------------------------------------------ cancel-on-disconnect


def test_cancel_on_disconnect_holds_across_a_sigkill(tmp_path: Path, database_url: str) -> None:
    """An order placed over the socket with cancel_on_disconnect is canceled at recovery when
    the server was killed under it (its connection can no longer exist), journaled with the
    reason ``disconnect``; an order placed over REST stays on the book."""
    import asyncio
    import json

    from tests.signed_client import Admin
    from tests.stream.stream_client import StreamClient

    data_dir = tmp_path / "var"
    log = tmp_path / "serve.log"
    with serve(data_dir, database_url, log) as served:
        admin = Admin(served.api, (data_dir / "admin.token").read_text().strip())
        admin.market(MARKET)
        trader = admin.account("guarded")
        rest = trader.post("/orders", {"market_id": MARKET, "side": "buy", "price": 0.3, "size": 1})
        assert rest.status_code == 201, rest.text

        async def place_guarded() -> str:
            client = await StreamClient.connect(served.api.removesuffix("/v1"))
            reply = await client.auth(trader.api_key, trader.api_secret, cancel_on_disconnect=True)
            assert reply["type"] == "authenticated", reply
            params = {"market_id": MARKET, "side": "buy", "price": 0.2, "size": 1}
            answer = await client.request({"op": "place_order", "params": params})
            assert answer["type"] == "result" and answer["status"] == 201, answer
            kill(served.process)  # with the socket still open: no goodbye reaches the server
            return str(answer["data"]["order_id"])

        guarded = asyncio.run(place_guarded())
    with serve(data_dir, database_url, log) as served:
        again = SignedClient(served.api, trader.api_key, trader.api_secret)
        order = again.get(f"/orders/{guarded}").json()
        assert order["status"] == "canceled", json.dumps(order)
        assert order["cancel_reason"] == "disconnect", json.dumps(order)
        assert again.get(f"/orders/{rest.json()['order_id']}").json()["status"] == "open"
        # Once canceled, the guard is gone: a second restart cancels nothing more.
        kill(served.process)
    with serve(data_dir, database_url, log):
        pass
    assert log.read_text().count("cancel-on-disconnect orders of connections lost") == 1
