"""Private channels: each account sees its own orders, fills, positions and balance, and REST
agrees with what they say."""

from __future__ import annotations

import asyncio
import random

from tests.live_server import LiveServer, sqlite_only
from tests.signed_client import Admin, SignedClient
from tests.stream.stream_client import StreamClient

PRIVATE = ("orders", "fills", "positions", "balance")


async def watcher(live: LiveServer, trader: SignedClient) -> StreamClient:
    client = await StreamClient.connect(live.url)
    reply = await client.auth(trader.api_key, trader.api_secret)
    assert reply["type"] == "authenticated", reply
    assert reply["account_id"] == trader.account_id  # type: ignore[attr-defined]
    for channel in PRIVATE:
        await client.subscribe(channel)
    return client


def own_order_ids(trader: SignedClient) -> set[str]:
    orders = trader.get("/orders?status=all&limit=1000").json()["orders"]
    return {o["order_id"] for o in orders}


def test_each_account_sees_only_its_own(live: LiveServer) -> None:
    admin = Admin(live.api, live.admin_token)
    market = f"priv-{random.randrange(10**9)}"
    admin.market(market)
    alice, bob = admin.account("alice", 5_000), admin.account("bob", 5_000)

    async def run() -> None:
        a, b = await watcher(live, alice), await watcher(live, bob)
        snapshot = a.data("balance")[0]["data"]
        assert snapshot == alice.get("/account/balance").json()
        rest = alice.post("/orders", {"market_id": market, "side": "buy", "price": 0.6, "size": 30})
        resting = rest.json()["order_id"]
        bob.post("/orders", {"market_id": market, "side": "sell", "price": 0.55, "size": 20})
        bob.post("/orders", {"market_id": market, "side": "sell", "price": 0.7, "size": 5})
        alice.patch(f"/orders/{resting}", {"size": 25})
        alice.delete(f"/orders/{resting}")
        await a.sync()
        await b.sync()
        for client, trader in ((a, alice), (b, bob)):
            mine = own_order_ids(trader)
            seen = {o["order_id"] for m in client.data("orders") for o in m["data"]["orders"]}
            assert seen and seen <= mine
            for message in client.data("fills"):
                assert {f["order_id"] for f in message["data"]["fills"]} <= mine
            assert client.data("balance")[-1]["data"] == trader.get("/account/balance").json()
            positions = {
                p["market_id"]: p for m in client.data("positions") for p in m["data"]["positions"]
            }
            assert list(positions.values()) == trader.get("/positions").json()["positions"]
            for channel in PRIVATE:
                messages = client.data(channel)
                seqs = [m["seq"] for m in messages]
                assert seqs == list(range(seqs[0], seqs[0] + len(seqs)))

        # Alice's order, event by event, ends as REST shows it.
        events = [
            (o["event"], o["status"], o["filled_size"], o["remaining_size"])
            for m in a.data("orders")
            for o in m["data"]["orders"]
            if o["order_id"] == resting
        ]
        assert events == [
            ("accepted", "open", 0, 30),
            ("filled", "open", 20, 10),
            ("amended", "open", 20, 5),
            ("canceled", "canceled", 20, 0),
        ]
        last = [o for m in a.data("orders") for o in m["data"]["orders"]][-1]
        stored = alice.get(f"/orders/{resting}").json()
        assert {k: v for k, v in last.items() if k != "event"} == stored
        fills = [f for m in a.data("fills") for f in m["data"]["fills"]]
        assert fills == alice.get("/fills").json()["fills"]
        assert [p["size"] for m in b.data("positions") for p in m["data"]["positions"]] == [-20]
        await a.close()
        await b.close()

    asyncio.run(run())


@sqlite_only
def test_private_channels_need_auth_and_the_read_scope(live: LiveServer) -> None:
    admin = Admin(live.api, live.admin_token)
    trader = admin.account("scoped", 100)
    trade_only = admin.post(
        "/keys",
        {"account_id": trader.account_id, "scopes": ["trade"]},  # type: ignore[attr-defined]
    )

    async def run() -> None:
        client = await StreamClient.connect(live.url)
        for channel in PRIVATE:
            reply = await client.request({"op": "subscribe", "channel": channel})
            assert reply["type"] == "error" and reply["error"]["code"] == "UNAUTHORIZED"
        reply = await client.auth(trade_only["api_key"], trade_only["api_secret"])
        assert reply["error"]["code"] == "FORBIDDEN", reply
        assert (await client.auth(trader.api_key, trader.api_secret))["type"] == "authenticated"
        await client.close()

    asyncio.run(run())


def test_an_order_that_fills_completely_says_so(live: LiveServer) -> None:
    """docs/websocket.md: a fill that completes an order shows ``status`` ``filled`` (its close,
    in the same command, says it), for the resting maker and for the taker alike."""
    admin = Admin(live.api, live.admin_token)
    market = f"full-{random.randrange(10**9)}"
    admin.market(market)
    maker, taker = admin.account("maker", 5_000), admin.account("taker", 5_000)

    async def run() -> None:
        m, t = await watcher(live, maker), await watcher(live, taker)
        resting = maker.post(
            "/orders", {"market_id": market, "side": "sell", "price": 0.5, "size": 10}
        ).json()["order_id"]
        taken = taker.post(
            "/orders", {"market_id": market, "side": "buy", "price": 0.5, "size": 10}
        ).json()["order_id"]
        await m.sync()
        await t.sync()
        for client, trader, order_id in ((m, maker, resting), (t, taker, taken)):
            views = [
                o
                for msg in client.data("orders")
                for o in msg["data"]["orders"]
                if o["order_id"] == order_id
            ]
            assert [(o["event"], o["status"], o["filled_size"]) for o in views] == [
                ("accepted", "open", 0),
                ("filled", "filled", 10),
            ]
            stored = trader.get(f"/orders/{order_id}").json()
            assert {k: v for k, v in views[-1].items() if k != "event"} == stored
        await m.close()
        await t.close()

    asyncio.run(run())
