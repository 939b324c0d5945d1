"""A clean restart rebuilds identical state from the database (DESIGN §6): every read the API
gives, and the engine's digest, are the same before and after, on SQLite and PostgreSQL."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from ballast_exchange.domain import ENGINE_ENV, digest
from ballast_exchange.service.exchange import recover
from ballast_exchange.store.database import Database
from tests.domain import twins
from tests.live_server import LiveServer, live_server
from tests.signed_client import Admin, SignedClient

LIMITS = {"private_rate_limit": 100_000, "public_rate_limit": 100_000}
MARKETS = ("rst-bin", "rst-idx")


def ok(response: Any, status: int = 200) -> dict[str, Any]:
    assert response.status_code == status, response.text
    data: dict[str, Any] = response.json()
    return data


def place(
    client: SignedClient, market_id: str, side: str, price: Any, size: int, **extra: Any
) -> dict[str, Any]:
    body = {"market_id": market_id, "side": side, "price": price, "size": size, **extra}
    return ok(client.post("/orders", body), 201)


def client_for(server: LiveServer, key: str, secret: str) -> SignedClient:
    return SignedClient(server.api, key, secret)


def trade(server: LiveServer) -> tuple[dict[str, str], dict[str, str]]:
    """Resting orders, fills (both markets), an IOC, cancels, amends, GTD orders (one expired)."""
    admin = Admin(server.api, server.admin_token)
    admin.market("rst-bin", maker_fee_bps=-5, taker_fee_bps=20)
    admin.market("rst-idx", kind="index", taker_fee_bps=10)
    alice = admin.account("alice", deposit=5_000)
    bob = admin.account("bob", deposit=7_000)
    now_ms = int(time.time() * 1000)
    try:
        a1 = place(alice, "rst-bin", "buy", 0.40, 10)
        place(alice, "rst-bin", "buy", "0.42", 5)
        a3 = place(alice, "rst-bin", "sell", 0.60, 8)
        # Bob sells 12 into Alice's bids: 5 @ 0.42 then 7 @ 0.40 (partial fill of a1).
        hit = place(bob, "rst-bin", "sell", 0.40, 12)
        assert hit["status"] == "filled" and [f["size"] for f in hit["fills"]] == [5, 7]
        place(bob, "rst-bin", "sell", 0.55, 4, client_order_id="bob-ask-1")
        ioc = place(alice, "rst-bin", "buy", 0.55, 6, time_in_force="IOC")
        assert ioc["filled_size"] == 4 and ioc["status"] == "canceled"
        ok(alice.delete(f"/orders/{a3['order_id']}"))
        # Amend: the partly filled bid keeps priority at a smaller size, a new price re-queues.
        amended = ok(alice.patch(f"/orders/{a1['order_id']}", {"size": 9}))
        assert amended["remaining_size"] == 2
        a4 = place(alice, "rst-bin", "buy", 0.35, 20)
        ok(alice.patch(f"/orders/{a4['order_id']}", {"price": 0.36}))
        # GTD: one far in the future stays, one falls due and the timer expires it.
        place(bob, "rst-bin", "sell", 0.70, 3, time_in_force="GTD", expire_at=now_ms + 3_600_000)
        # Due soon after it is placed (counted from now, not from the set-up's start: on a loaded
        # machine the orders above can take longer than its whole life).
        soon = int(time.time() * 1000) + 2_000
        short = place(bob, "rst-bin", "sell", 0.71, 3, time_in_force="GTD", expire_at=soon)
        # Index market: Bob bids, Alice sells into it, Bob cancels the rest of his orders there.
        place(bob, "rst-idx", "buy", 50.0, 3)
        place(bob, "rst-idx", "buy", 48.5, 2)
        assert place(alice, "rst-idx", "sell", "49.9", 2)["status"] == "filled"
        assert ok(bob.delete("/orders?market_id=rst-idx"))["count"] == 2
        place(alice, "rst-idx", "sell", 60, 1)
        deadline = time.monotonic() + 60
        while ok(bob.get(f"/orders/{short['order_id']}"))["status"] != "expired":
            assert time.monotonic() < deadline, "the due GTD order was never expired"
            time.sleep(0.1)
    finally:
        alice.close()
        bob.close()
    return (
        {"key": alice.api_key, "secret": alice.api_secret},
        {"key": bob.api_key, "secret": bob.api_secret},
    )


def reads(server: LiveServer, accounts: tuple[dict[str, str], ...]) -> dict[str, Any]:
    """Everything the API says about the accounts and markets (minus the clock)."""
    seen: dict[str, Any] = {}
    for n, creds in enumerate(accounts):
        client = client_for(server, creds["key"], creds["secret"])
        try:
            for path in (
                "/orders?status=all&limit=1000",
                "/orders?limit=1000",
                "/fills?limit=1000",
                "/positions",
                "/account/balance",
                "/account/ledger?limit=1000",
            ):
                seen[f"{n}{path}"] = ok(client.get(path))
        finally:
            client.close()
    with httpx.Client(timeout=30) as http:  # market data needs no key
        for market_id in MARKETS:
            book = ok(http.get(f"{server.api}/markets/{market_id}/orderbook?depth=100"))
            book.pop("timestamp")
            seen[f"book {market_id}"] = book
            seen[f"trades {market_id}"] = ok(http.get(f"{server.api}/markets/{market_id}/trades"))
            seen[f"market {market_id}"] = ok(http.get(f"{server.api}/markets/{market_id}"))
    return seen


def recovered_digest(url: str) -> str:
    database = Database(url)
    try:
        return digest(recover(database.engine)[0])
    finally:
        database.dispose()


def test_restart_rebuilds_identical_state(tmp_path: Path, database_url: str) -> None:
    data_dir = tmp_path / "var"
    with live_server(data_dir, database_url=database_url, **LIMITS) as server:
        accounts = trade(server)
        before = reads(server, accounts)
        before_digest = server.call(_digest_on_loop(server))
    assert recovered_digest(database_url) == before_digest
    with live_server(data_dir, database_url=database_url, **LIMITS) as server:
        after_digest = server.call(_digest_on_loop(server))
        after = reads(server, accounts)
        assert after_digest == before_digest
        assert after.keys() == before.keys()
        for name in before:
            assert after[name] == before[name], name
        # Ids stay unique across the restart: the next order and trade continue the sequence.
        history = [o for k, v in before.items() if "status=all" in k for o in v["orders"]]
        last_order = max(int(o["order_id"][4:]) for o in history)
        alice = client_for(server, accounts[0]["key"], accounts[0]["secret"])
        try:
            fresh = place(alice, "rst-bin", "sell", 0.36, 1)
            # 0.36 crosses Alice's own bid: self-trade prevention cancels the newest.
            assert int(fresh["order_id"][4:]) > last_order
            assert place(alice, "rst-bin", "buy", 0.1, 1, client_order_id="x")["status"] == "open"
        finally:
            alice.close()
        bob = client_for(server, accounts[1]["key"], accounts[1]["secret"])
        try:
            body = {"market_id": "rst-bin", "side": "sell", "price": 0.55, "size": 4}
            again = bob.post("/orders", {**body, "client_order_id": "bob-ask-1"})
            # The client_order_id from before the restart still returns its first result.
            assert again.status_code == 200, again.text
        finally:
            bob.close()


def test_gtd_due_while_down_expires_once_on_restart(tmp_path: Path, database_url: str) -> None:
    """A GTD order that falls due while the server is down is expired at start, its money freed."""
    data_dir = tmp_path / "var"
    with live_server(data_dir, database_url=database_url, **LIMITS) as server:
        admin = Admin(server.api, server.admin_token)
        admin.market("gtd")
        carol = admin.account("carol", deposit=100)
        expire_at = int(time.time() * 1000) + 1_500
        placed = place(carol, "gtd", "buy", 0.5, 100, time_in_force="GTD", expire_at=expire_at)
        assert ok(carol.get("/account/balance"))["available"] == 50
        creds = (carol.api_key, carol.api_secret)
        carol.close()
    time.sleep(max(0.0, expire_at / 1000 - time.time()) + 0.2)
    with live_server(data_dir, database_url=database_url, **LIMITS) as server:
        carol = client_for(server, *creds)
        try:
            order = ok(carol.get(f"/orders/{placed['order_id']}"))
            assert order["status"] == "expired"
            balance = ok(carol.get("/account/balance"))
            assert balance["available"] == 100 and balance["reserved"] == 0
            digest_now = server.call(_digest_on_loop(server))
        finally:
            carol.close()
    assert recovered_digest(database_url) == digest_now


async def _digest_on_loop(server: LiveServer) -> str:
    """The live engine's digest, read on the server's loop once everything is stored."""
    await server.runtime.exchange.barrier()
    return digest(server.runtime.exchange.engine)


def test_a_journal_written_by_one_twin_recovers_identically_with_the_other(
    tmp_path: Path, database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The journal holds commands, not an engine's internals: a server on the reference engine
    and one restarted on the compiled twin (and back) reach the same digest and answer alike."""
    twins.require("compiled")  # skips, or fails under BALLAST_REQUIRE_SERVICES=1, if not built
    data_dir = tmp_path / "var"
    monkeypatch.setenv(ENGINE_ENV, "reference")
    with live_server(data_dir, database_url=database_url, **LIMITS) as server:
        assert server.runtime.exchange.engine_choice.name == "reference"
        accounts = trade(server)
        before = reads(server, accounts)
        before_digest = server.call(_digest_on_loop(server))
    monkeypatch.setenv(ENGINE_ENV, "compiled")
    with live_server(data_dir, database_url=database_url, **LIMITS) as server:
        assert server.runtime.exchange.engine_choice.name == "compiled"
        assert server.call(_digest_on_loop(server)) == before_digest
        after = reads(server, accounts)
        assert {name: after[name] for name in before} == before
