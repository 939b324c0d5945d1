"""After a restart the private channels start from the orders and positions the server recovered
(the read models keep them as the engine's columns until an account is read or watched), and an
event on such an order, watched or not, is told as REST then shows it."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from tests.live_server import live_server
from tests.signed_client import Admin, SignedClient
from tests.stream.stream_client import StreamClient

MARKET = "rst-stream"
PRIVATE = ("orders", "positions", "balance")


def place(client: SignedClient, side: str, price: float, size: int) -> dict[str, Any]:
    body = {"market_id": MARKET, "side": side, "price": price, "size": size}
    response = client.post("/orders", body)
    assert response.status_code == 201, response.text
    data: dict[str, Any] = response.json()
    return data


def open_orders(client: SignedClient) -> dict[str, tuple[Any, ...]]:
    orders = client.get("/orders?status=open&limit=1000").json()["orders"]
    return {o["order_id"]: shown(o) for o in orders}


def shown(order: dict[str, Any]) -> tuple[Any, ...]:
    return (order["status"], order["price"], order["size"], order["filled_size"])


async def watch(url: str, trader: SignedClient) -> StreamClient:
    client = await StreamClient.connect(url)
    reply = await client.auth(trader.api_key, trader.api_secret)
    assert reply["type"] == "authenticated", reply
    for channel in PRIVATE:
        await client.subscribe(channel)
    return client


def agrees(client: StreamClient, trader: SignedClient) -> None:
    """The channels' snapshots are what REST shows."""
    orders = client.data("orders")[0]["data"]["orders"]
    assert {o["order_id"]: shown(o) for o in orders} == open_orders(trader)
    positions = client.data("positions")[0]["data"]["positions"]
    assert positions == trader.get("/positions").json()["positions"]
    assert client.data("balance")[0]["data"] == trader.get("/account/balance").json()


def test_private_channels_after_a_restart(tmp_path: Path) -> None:
    data_dir = tmp_path / "var"
    keys: dict[str, tuple[str, str]] = {}
    with live_server(data_dir) as server:
        admin = Admin(server.api, server.admin_token)
        admin.market(MARKET)
        traders = {name: admin.account(name, 5_000) for name in ("alice", "bob", "carol")}
        alice, bob, carol = traders["alice"], traders["bob"], traders["carol"]
        for price in (0.40, 0.41, 0.42):
            place(alice, "buy", price, 10)
        place(bob, "sell", 0.42, 4)  # alice's best bid partly filled: both hold a position
        place(carol, "sell", 0.60, 10)
        place(carol, "sell", 0.65, 3)
        keys = {name: (t.api_key, t.api_secret) for name, t in traders.items()}
        for trader in traders.values():
            trader.close()
    with live_server(data_dir, port=None) as server:
        alice, bob, carol = (SignedClient(server.api, *keys[n]) for n in ("alice", "bob", "carol"))

        async def run() -> None:
            watched = await watch(server.url, alice)
            agrees(watched, alice)
            # Carol, whom nobody watches, is filled; then Bob sells into Alice's bids.
            place(bob, "buy", 0.60, 4)
            place(bob, "sell", 0.41, 8)
            await watched.sync()
            told = [o for m in watched.data("orders")[1:] for o in m["data"]["orders"]]
            assert [o["event"] for o in told] == ["filled", "filled"]
            rest = open_orders(alice)
            for order in told:
                if order["order_id"] in rest:
                    assert shown(order) == rest[order["order_id"]]
            later = await watch(server.url, carol)
            agrees(later, carol)
            assert sorted(f for _, _, _, f in open_orders(carol).values()) == [0, 4]
            await watched.close()
            await later.close()

        try:
            asyncio.run(run())
        finally:
            for trader in (alice, bob, carol):
                trader.close()
