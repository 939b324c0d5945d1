"""A market's whole life on a real server, restarted between every step: listed, traded by two
accounts, closed on time while the server was down, proposed (with the operator CLI and an
evidence file), overturned inside the dispute window, proposed again, refused before the window
ends, finalized. Payouts are the arithmetic written out here, and the ledger balances."""

from __future__ import annotations

import asyncio
import hashlib
import json
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import pytest
import rfc8785

from ballast_exchange.service.exchange import recover
from ballast_exchange.store.database import Database
from tests.databases import fresh_database
from tests.live_server import LiveServer, free_port, live_server
from tests.signed_client import Admin, SignedClient
from tests.stream.stream_client import StreamClient

MARKET = "la-congestion-test"
WINDOW_S = 1.5
FIRST = {"source": "Port of LA dashboard", "reading": 61.0, "observed_at": "2026-11-30T23:59Z"}
SECOND = {
    "source": "Port of LA dashboard (corrected)",
    "reading": 52.3,
    "observed_at": "2026-11-30T23:59Z",
    "note": "the first reading double-counted anchored vessels",
}


@pytest.fixture(params=["sqlite", "postgres"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    with fresh_database(request.param, tmp_path) as url:
        yield url


class Venue:
    """One exchange's data dir, database and port; ``up()`` (re)starts a server on them."""

    def __init__(self, data_dir: Path, database_url: str) -> None:
        self.data_dir = data_dir
        self.database_url = database_url
        self.port = free_port()

    @contextmanager
    def up(self) -> Iterator[LiveServer]:
        with live_server(
            self.data_dir,
            port=self.port,
            database_url=self.database_url,
            dispute_window_s=WINDOW_S,
        ) as server:
            yield server

    def admin_cli(self, *args: str) -> subprocess.CompletedProcess[str]:
        command = [sys.executable, "-m", "ballast_exchange.cli", "admin"]
        command += ["--data-dir", str(self.data_dir), "--url", f"http://127.0.0.1:{self.port}"]
        return subprocess.run(
            [*command, *args], capture_output=True, text=True, timeout=60, check=False
        )


def usdc(value: Any) -> Decimal:
    return Decimal(str(value))


def market(server: LiveServer) -> dict[str, Any]:
    data: dict[str, Any] = httpx.get(f"{server.api}/markets/{MARKET}").json()
    return data


def settlement(server: LiveServer) -> dict[str, Any]:
    data: dict[str, Any] = httpx.get(f"{server.api}/markets/{MARKET}/settlement").json()
    return data


def client(server: LiveServer, keys: dict[str, str]) -> SignedClient:
    return SignedClient(server.api, keys["api_key"], keys["api_secret"])


def total(server: LiveServer, keys: dict[str, str]) -> Decimal:
    trader = client(server, keys)
    try:
        return usdc(trader.get("/account/balance").json()["total_balance"])
    finally:
        trader.close()


def canonical_hash(evidence: dict[str, Any]) -> str:
    return hashlib.sha256(rfc8785.dumps(evidence)).hexdigest()


class MarketsWatcher:
    """A thread that reads the ``markets`` channel and keeps this market's lifecycle events."""

    def __init__(self, server: LiveServer) -> None:
        self.server = server
        self.seen: list[dict[str, Any]] = []
        self.ready = threading.Event()
        self.stop = threading.Event()
        self.thread = threading.Thread(target=lambda: asyncio.run(self._run()), daemon=True)
        self.thread.start()
        assert self.ready.wait(10), "the markets subscription did not start"

    async def _run(self) -> None:
        stream = await StreamClient.connect(self.server.url)
        try:
            await stream.subscribe("markets")
            self.ready.set()
            while not self.stop.is_set():
                try:
                    message = await stream.receive(timeout=0.2)
                except TimeoutError:
                    continue
                for state in message.get("data", {}).get("markets", []):
                    if state["market_id"] == MARKET and "event" in state:
                        self.seen.append(state)
        finally:
            await stream.close()

    def close(self) -> None:
        self.stop.set()
        self.thread.join(10)


def test_list_trade_close_propose_overturn_finalize_across_restarts(
    tmp_path: Path, database_url: str
) -> None:
    venue = Venue(tmp_path / "var", database_url)

    # 1. List an index market and trade it from two accounts.
    with venue.up() as server:
        # Room for the set-up below on a loaded machine, counted once the server is up: the GTD
        # order must still be live when placed (it expires 2 s before the close), and the close
        # must pass while the server is down.
        close_at = int(time.time() * 1000) + 8_000
        admin = Admin(server.api, server.admin_token)
        admin.post(
            "/markets",
            {
                "id": MARKET,
                "name": "Los Angeles Port Congestion Index - test",
                "type": "index",
                "close_time": close_at,
                "taker_fee_bps": 20,
            },
        )
        admin.post(f"/markets/{MARKET}/open")
        long_keys = admin.post("/accounts", {"name": "long desk", "deposit": 10_000})
        short_keys = admin.post("/accounts", {"name": "short desk", "deposit": 10_000})
        buyer, seller = client(server, long_keys), client(server, short_keys)
        bid = buyer.post("/orders", {"market_id": MARKET, "side": "buy", "price": 40, "size": 10})
        assert bid.status_code == 201, bid.text
        hit = seller.post("/orders", {"market_id": MARKET, "side": "sell", "price": 40, "size": 10})
        assert hit.json()["status"] == "filled", hit.text
        # A GTD order due before the close, and a resting order the close will cancel.
        gtd = buyer.post(
            "/orders",
            {
                "market_id": MARKET,
                "side": "buy",
                "price": 30,
                "size": 1,
                "time_in_force": "GTD",
                "expire_at": close_at - 2_000,
            },
        ).json()
        resting = seller.post(
            "/orders", {"market_id": MARKET, "side": "sell", "price": 70, "size": 1}
        ).json()
        buyer.close()
        seller.close()
        assert market(server)["status"] == "open"

    # 2. The close time passes while the server is down: on restart it is done, once.
    time.sleep(max(0.0, close_at / 1000 - time.time()) + 0.3)
    with venue.up() as server:
        assert market(server)["status"] == "closed"
        buyer, seller = client(server, long_keys), client(server, short_keys)
        assert buyer.get(f"/orders/{gtd['order_id']}").json()["status"] == "expired"
        assert seller.get(f"/orders/{resting['order_id']}").json()["status"] == "canceled"
        late = buyer.post("/orders", {"market_id": MARKET, "side": "buy", "price": 41, "size": 1})
        assert late.status_code == 409 and late.json()["error"]["code"] == "MARKET_CLOSED"
        buyer.close()
        seller.close()
        assert settlement(server)["proposals"] == []

        # 3. Propose from an evidence file with the operator CLI; the hash is published on the
        # market, on the settlement record and on the markets channel.
        watcher = MarketsWatcher(server)
        evidence_file = tmp_path / "first.json"
        evidence_file.write_text(json.dumps(FIRST, indent=4))
        done = venue.admin_cli(
            "settle", "propose", MARKET, "--value", "61", "--evidence", str(evidence_file), "--json"
        )
        assert done.returncode == 0, done.stderr
        first_hash = canonical_hash(FIRST)
        assert json.loads(done.stdout)["current"]["evidence_hash"] == first_hash
        published = market(server)
        assert published["status"] == "resolving"
        assert published["settlement"]["evidence_hash"] == first_hash
        assert published["settlement"]["value"] == 61.0
        _wait(lambda: any(s["event"] == "resolving" for s in watcher.seen))
        watcher.close()
        resolving = next(s for s in watcher.seen if s["event"] == "resolving")
        assert resolving["settlement"]["evidence_hash"] == first_hash
        assert (
            resolving["settlement"]["dispute_ends_at"] == published["settlement"]["dispute_ends_at"]
        )

    # 4. After a restart the proposal is there once; overturn it inside the window.
    with venue.up() as server:
        record = settlement(server)
        assert [p["outcome"] for p in record["proposals"]] == ["proposed"]
        assert record["current"]["evidence"] == FIRST
        canonical = record["current"]["evidence_canonical"].encode()
        assert hashlib.sha256(canonical).hexdigest() == first_hash
        overturned = venue.admin_cli("settle", "overturn", MARKET)
        assert overturned.returncode == 0, overturned.stderr
        assert market(server)["status"] == "closed"
        assert market(server)["settlement"] is None
        again = venue.admin_cli("settle", "overturn", MARKET)
        assert again.returncode == 1 and "INVALID_TRANSITION" in again.stderr

    # 5. Propose the corrected value; finalizing inside the window is refused.
    with venue.up() as server:
        assert [p["outcome"] for p in settlement(server)["proposals"]] == ["overturned"]
        admin = Admin(server.api, server.admin_token)
        proposed = admin.post(
            f"/markets/{MARKET}/settlement/propose", {"value": "52.3", "evidence": SECOND}
        )
        second_hash = canonical_hash(SECOND)
        assert proposed["current"]["evidence_hash"] == second_hash
        early = httpx.post(
            f"{server.api}/admin/markets/{MARKET}/settlement/finalize",
            headers={"Authorization": f"Bearer {server.admin_token}"},
        )
        assert early.status_code == 409, early.text
        error = early.json()["error"]
        assert error["code"] == "INVALID_TRANSITION"
        assert error["details"]["dispute_ends_at"] == proposed["current"]["dispute_ends_at"]
        assert market(server)["status"] == "resolving"

    # 6. After the window, finalize (restarted first) and check every cent.
    time.sleep(WINDOW_S)
    with venue.up() as server:
        final = venue.admin_cli("settle", "finalize", MARKET)
        assert final.returncode == 0, final.stderr
        shown = venue.admin_cli("settle", "show", MARKET)
        assert shown.returncode == 0, shown.stdout + shown.stderr
        assert shown.stdout.count("(matches the evidence)") == 2
        record = settlement(server)
        assert [p["outcome"] for p in record["proposals"]] == ["overturned", "finalized"]
        assert record["current"]["value"] == 52.3
        assert record["status"] == "settled"
        settled_totals = (total(server, long_keys), total(server, short_keys))

    with venue.up() as server:
        assert market(server)["status"] == "settled"
        assert (total(server, long_keys), total(server, short_keys)) == settled_totals
        again = venue.admin_cli("settle", "finalize", MARKET)
        assert again.returncode == 1 and "INVALID_TRANSITION" in again.stderr

    # Long 10 at 40 locked $400 and is paid 52.3 × 10 = $523. Short 10 at 40 locked
    # (100 - 40) × 10 = $600, paid (100 - 52.3) × 10 = $477, and paid the taker fee:
    # 20 bps of $400 = $0.80.
    long_total, short_total = settled_totals
    assert long_total == Decimal(10_000) - 400 + 523
    assert short_total == Decimal(10_000) - 600 + 477 - Decimal("0.80")

    database = Database(database_url)
    try:
        engine = recover(database.engine)[0]
    finally:
        database.dispose()
    ledger = engine.ledger
    assert ledger.total() == 0
    assert ledger.balance(f"clearing:{MARKET}") == 0
    assert ledger.balance(f"fees:{MARKET}") == 800_000
    assert -ledger.balance("external") == 20_000 * 1_000_000


def _wait(condition: Any, timeout: float = 10) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)
