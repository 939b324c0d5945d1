"""Market data over the stream against the REST API of the same server, under random order flow."""

from __future__ import annotations

import asyncio
import random
from typing import Any

from tests.live_server import LiveServer
from tests.signed_client import Admin, SignedClient
from tests.stream.stream_client import StreamClient

LIVE_SETTINGS = {"stream_heartbeat_s": 0.3}


def apply_book(book: dict[str, dict[float, int]], message: dict[str, Any]) -> None:
    data = message["data"]
    if message["type"] == "snapshot":
        book["bids"] = {level["price"]: level["size"] for level in data["bids"]}
        book["asks"] = {level["price"]: level["size"] for level in data["asks"]}
        return
    for side in ("bids", "asks"):
        for level in data[side]:
            if level["size"] == 0:
                del book[side][level["price"]]  # a removal names a level the client holds
            else:
                book[side][level["price"]] = level["size"]


def rebuilt(messages: list[dict[str, Any]]) -> dict[str, list[dict[str, Any]]]:
    book: dict[str, dict[float, int]] = {"bids": {}, "asks": {}}
    for message in messages:
        apply_book(book, message)
    return {
        "bids": [{"price": p, "size": book["bids"][p]} for p in sorted(book["bids"], reverse=True)],
        "asks": [{"price": p, "size": book["asks"][p]} for p in sorted(book["asks"])],
    }


def assert_gap_free(messages: list[dict[str, Any]]) -> None:
    assert messages[0]["type"] == "snapshot"
    seqs = [m["seq"] for m in messages]
    assert seqs == list(range(seqs[0], seqs[0] + len(seqs))), seqs
    exchange_seqs = [m["exchange_seq"] for m in messages]
    assert exchange_seqs == sorted(exchange_seqs)


def random_flow(rng: random.Random, traders: list[SignedClient], market: str, n: int) -> None:
    """Limit orders around 0.50 from several accounts, crossing now and then, and cancels."""
    open_orders: list[tuple[SignedClient, str]] = []
    for _ in range(n):
        trader = rng.choice(traders)
        if open_orders and rng.random() < 0.25:
            owner, order_id = open_orders.pop(rng.randrange(len(open_orders)))
            owner.delete(f"/orders/{order_id}")
            continue
        side = rng.choice(["buy", "sell"])
        price = round(rng.randint(35, 65) / 100, 2)
        body: dict[str, Any] = {"market_id": market, "side": side, "price": price}
        body["size"] = rng.randint(1, 40)
        if rng.random() < 0.1:
            body.update(type="market", price=None)
            del body["price"]
        response = trader.post("/orders", body)
        assert response.status_code in (200, 201, 400), response.text
        if response.status_code == 201 and response.json()["status"] == "open":
            open_orders.append((trader, response.json()["order_id"]))
    if rng.random() < 0.5 and open_orders:
        trader, _ = open_orders[0]
        trader.delete(f"/orders?market_id={market}")


def test_snapshot_and_updates_rebuild_the_rest_book(live: LiveServer) -> None:
    admin = Admin(live.api, live.admin_token)
    market = f"book-{random.randrange(10**9)}"
    admin.market(market)
    traders = [admin.account(f"t{i}", 100_000) for i in range(3)]
    rng = random.Random(11)

    async def run() -> None:
        early = await StreamClient.connect(live.url)
        await early.subscribe("orderbook", market_id=market, depth=5)
        await early.subscribe("trades", market_id=market)
        await early.subscribe("ticker", market_id=market)
        full = await StreamClient.connect(live.url)
        await full.subscribe("orderbook", market_id=market, depth=100)
        late = None
        for round_no in range(4):
            await asyncio.to_thread(random_flow, rng, traders, market, 120)
            if round_no == 1:
                # A subscriber that joins mid-flow starts from the book as it is now.
                late = await StreamClient.connect(live.url)
                await late.subscribe("orderbook", market_id=market, depth=5)
            seq = await early.sync()
            await full.sync()
            rest5 = traders[0].get(f"/markets/{market}/orderbook?depth=5").json()
            rest100 = traders[0].get(f"/markets/{market}/orderbook?depth=100").json()
            assert rest5["seq"] == seq == rest100["seq"]
            book5 = rebuilt(early.data("orderbook", market))
            assert book5 == {"bids": rest5["bids"], "asks": rest5["asks"]}
            assert rebuilt(full.data("orderbook", market)) == {
                "bids": rest100["bids"],
                "asks": rest100["asks"],
            }
            if late is not None:
                await late.sync()
                assert rebuilt(late.data("orderbook", market)) == book5
        for client in (early, full):
            assert_gap_free(client.data("orderbook", market))
        assert len(early.data("orderbook", market)) > 20

        # Trades: the snapshot (empty) and the updates are every trade REST lists, in order.
        streamed = [t for m in early.data("trades", market) for t in m["data"]["trades"]]
        listed = traders[0].get(f"/markets/{market}/trades?limit=1000").json()["trades"]
        assert streamed == list(reversed(listed))
        assert_gap_free(early.data("trades", market))

        # Ticker: its last word agrees with the market as REST shows it.
        ticker = early.data("ticker", market)[-1]["data"]
        shown = traders[0].get(f"/markets/{market}").json()
        for field in ("bid", "ask", "midpoint", "last_price", "change_24h", "volume_24h"):
            assert ticker[field] == shown[field], field
        assert_gap_free(early.data("ticker", market))

        # A second snapshot of trades holds the recent ones, oldest first.
        again = await StreamClient.connect(live.url)
        snapshot = await again.subscribe("trades", market_id=market)
        assert snapshot["data"]["trades"] == streamed[-50:]
        for client in (early, full, again, late):
            assert client is not None
            await client.close()

    asyncio.run(run())


def test_heartbeats_carry_each_subscriptions_last_seq(live: LiveServer) -> None:
    admin = Admin(live.api, live.admin_token)
    market = f"hb-{random.randrange(10**9)}"
    admin.market(market)
    trader = admin.account("hb", 10_000)

    async def run() -> None:
        client = await StreamClient.connect(live.url)
        await client.subscribe("orderbook", market_id=market, depth=3)
        await client.subscribe("markets")
        trader.post("/orders", {"market_id": market, "side": "buy", "price": 0.4, "size": 5})
        trader.post("/orders", {"market_id": market, "side": "buy", "price": 0.41, "size": 5})
        await client.sync()
        beat = await client.wait_for(lambda m: m["type"] == "heartbeat", timeout=5)
        last_book = client.data("orderbook", market)[-1]
        assert {"channel": "orderbook", "market_id": market, "seq": last_book["seq"]} in beat[
            "subscriptions"
        ]
        assert last_book["seq"] == 2
        assert beat["exchange_seq"] >= last_book["exchange_seq"]
        await client.close()

    asyncio.run(run())


def test_markets_channel_follows_the_lifecycle(live: LiveServer) -> None:
    admin = Admin(live.api, live.admin_token)
    market = f"life-{random.randrange(10**9)}"

    async def run() -> None:
        client = await StreamClient.connect(live.url)
        snapshot = await client.subscribe("markets")
        assert market not in {m["market_id"] for m in snapshot["data"]["markets"]}
        admin.market(market)  # listed, then opened
        admin.post(f"/markets/{market}/halt")
        admin.post(f"/markets/{market}/resume")
        admin.post(f"/markets/{market}/close")
        await client.sync()
        seen = [
            (state["event"], state["status"])
            for m in client.data("markets")[1:]
            for state in m["data"]["markets"]
            if state["market_id"] == market
        ]
        assert seen == [
            ("listed", "pending"),
            ("opened", "open"),
            ("halted", "halted"),
            ("resumed", "open"),
            ("closed", "closed"),
        ]
        await client.close()

    asyncio.run(run())


def test_one_book_depth_per_market_and_connection(live: LiveServer) -> None:
    admin = Admin(live.api, live.admin_token)
    market = f"depth-{random.randrange(10**9)}"
    admin.market(market)

    async def run() -> None:
        client = await StreamClient.connect(live.url)
        await client.subscribe("orderbook", market_id=market, depth=10)
        # Updates do not say which depth they are for, so a second depth is refused...
        again = {"op": "subscribe", "channel": "orderbook", "market_id": market, "depth": 5}
        assert (await client.request(again))["error"]["code"] == "INVALID_REQUEST"
        wrong = {"op": "unsubscribe", "channel": "orderbook", "market_id": market, "depth": 5}
        assert (await client.request(wrong))["error"]["code"] == "INVALID_REQUEST"
        # ...and leaving needs no depth.
        leave = {"op": "unsubscribe", "channel": "orderbook", "market_id": market}
        reply = await client.request(leave)
        assert reply == {**reply, "type": "unsubscribed", "depth": 10}
        snapshot = await client.subscribe("orderbook", market_id=market, depth=5)
        assert snapshot["data"]["depth"] == 5
        await client.close()

    asyncio.run(run())
