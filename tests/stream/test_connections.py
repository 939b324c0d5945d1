"""Connection limits, slow consumers, revoked keys and cancel-on-disconnect."""

from __future__ import annotations

import asyncio
import contextlib
import random
import threading
from pathlib import Path

from websockets.exceptions import ConnectionClosed

from tests.live_server import NO_LIMITS, LiveServer, live_server, sqlite_only
from tests.scraped_metrics import scrape, value
from tests.signed_client import Admin
from tests.stream.stream_client import StreamClient

LIVE_SETTINGS = {"stream_heartbeat_s": 0.2, "stream_connections_per_ip": 8}


@sqlite_only
def test_the_sixth_connection_of_a_key_is_refused(live: LiveServer) -> None:
    admin = Admin(live.api, live.admin_token)
    trader = admin.account("five", 100)

    async def run() -> None:
        clients = []
        for _ in range(5):
            client = await StreamClient.connect(live.url)
            assert (await client.auth(trader.api_key, trader.api_secret))["type"] == "authenticated"
            clients.append(client)
        sixth = await StreamClient.connect(live.url)
        reply = await sixth.auth(trader.api_key, trader.api_secret)
        assert reply["error"]["code"] == "TOO_MANY_CONNECTIONS", reply
        assert await sixth.closed_with() == 4029
        # One leaves; the next one gets in.
        await clients.pop().close()
        await asyncio.sleep(0.2)
        again = await StreamClient.connect(live.url)
        assert (await again.auth(trader.api_key, trader.api_secret))["type"] == "authenticated"
        for client in [*clients, again]:
            await client.close()

    asyncio.run(run())


@sqlite_only
def test_unauthenticated_connections_are_limited_per_ip(live: LiveServer) -> None:
    async def run() -> None:
        clients = [await StreamClient.connect(live.url) for _ in range(8)]
        for client in clients:
            await client.sync()
        extra = await StreamClient.connect(live.url)
        refusal = await extra.receive()
        assert refusal["error"]["code"] == "TOO_MANY_CONNECTIONS"
        assert await extra.closed_with() == 4029
        for client in clients:
            await client.close()

    asyncio.run(run())


@sqlite_only
def test_a_revoked_key_is_disconnected(live: LiveServer) -> None:
    admin = Admin(live.api, live.admin_token)
    trader = admin.account("revoked", 100)

    async def run() -> None:
        client = await StreamClient.connect(live.url)
        await client.auth(trader.api_key, trader.api_secret)
        admin.post(f"/keys/{trader.api_key}/revoke")
        assert await client.closed_with() == 4001

    asyncio.run(run())


def test_cancel_on_disconnect_cancels_only_that_connections_orders(live: LiveServer) -> None:
    admin = Admin(live.api, live.admin_token)
    market = f"cod-{random.randrange(10**9)}"
    admin.market(market)
    trader = admin.account("cod", 10_000)
    rest_order = trader.post(
        "/orders", {"market_id": market, "side": "buy", "price": 0.2, "size": 10}
    ).json()["order_id"]

    async def run() -> list[str]:
        guarded = await StreamClient.connect(live.url)
        reply = await guarded.auth(trader.api_key, trader.api_secret, cancel_on_disconnect=True)
        assert reply["cancel_on_disconnect"] is True
        other = await StreamClient.connect(live.url)
        await other.auth(trader.api_key, trader.api_secret)
        placed = []
        for price in (0.3, 0.31, 0.32):
            params = {"market_id": market, "side": "buy", "price": price, "size": 5}
            result = await guarded.request({"op": "place_order", "params": params})
            assert result["status"] == 201, result
            placed.append(result["data"]["order_id"])
        params = {"market_id": market, "side": "buy", "price": 0.25, "size": 5}
        kept = (await other.request({"op": "place_order", "params": params}))["data"]["order_id"]
        guarded.ws.transport.abort()  # the connection drops without a close handshake
        for _ in range(50):
            await asyncio.sleep(0.1)
            statuses = [trader.get(f"/orders/{o}").json()["status"] for o in placed]
            if statuses == ["canceled"] * 3:
                break
        await other.close()
        return [*placed, kept]

    *placed, kept = asyncio.run(run())
    for order_id in placed:
        order = trader.get(f"/orders/{order_id}").json()
        assert order["status"] == "canceled", order
    for order_id in (kept, rest_order):
        assert trader.get(f"/orders/{order_id}").json()["status"] == "open"


def test_a_slow_consumer_is_cut_and_a_fast_one_keeps_up(tmp_path: Path) -> None:
    with live_server(tmp_path / "var", stream_send_buffer_bytes=64 * 1024, **NO_LIMITS) as live:
        admin = Admin(live.api, live.admin_token)
        market = "slow"
        admin.market(market)
        makers = [admin.account(f"m{i}", 100_000) for i in range(2)]

        def flow(orders: int, cut: threading.Event | None = None) -> None:
            """Resting orders; with ``cut``, 200 at least and then until the cut is seen."""
            for i in range(orders):
                if cut is not None and i >= 200 and cut.is_set():
                    return
                price = round(0.01 + (i % 98) / 100, 2)
                side = "buy" if price < 0.5 else "sell"
                body = {"market_id": market, "side": side, "price": price, "size": 1 + i % 7}
                makers[i % 2].post("/orders", body)

        flow(196)  # a deep book: every snapshot at depth 100 is a few kilobytes

        async def run() -> None:
            # The slow client stops reading (a one-message client queue) and keeps asking for
            # snapshots until the server says it cut it: how many it takes depends on the
            # kernel's socket buffers, so the loop waits for the cut, not for a count.
            slow = await StreamClient.connect(live.url, max_queue=1)
            fast = await StreamClient.connect(live.url)
            await fast.subscribe("orderbook", market_id=market, depth=100)
            # The fast client reads all along, until told to stop: a flag, not a cancel (a cancel
            # that lands as recv() completes is swallowed by 3.11's wait_for, and the reader
            # would then read on for its whole timeout).
            reading = asyncio.Event()

            async def read_all() -> None:
                while not reading.is_set():
                    with contextlib.suppress(TimeoutError):
                        await fast.receive(0.2)

            reader = asyncio.create_task(read_all())
            # The updates the fast client must keep up with, while the slow one is being cut.
            slow_cut = threading.Event()
            orders = asyncio.create_task(asyncio.to_thread(flow, 600, slow_cut))
            request = {"op": "subscribe", "channel": "orderbook", "market_id": market}

            def cut_so_far() -> float:
                return value(
                    scrape(live), "ballast_stream_connections_cut_total", reason="slow consumer"
                )

            with contextlib.suppress(ConnectionClosed):
                for pair in range(1, 200_000):
                    await slow.send({**request, "depth": 100})
                    await slow.send({**request, "op": "unsubscribe", "depth": 100})
                    if pair % 250 == 0 and await asyncio.to_thread(cut_so_far) >= 1:
                        break
            # It has been cut by now; it reads what it was sent, up to the close frame.
            slow_cut.set()
            slow_end = asyncio.create_task(slow.closed_with())
            await orders
            reading.set()
            await reader
            await fast.sync()
            updates = fast.data("orderbook", market)
            seqs = [m["seq"] for m in updates]
            assert seqs == list(range(seqs[0], seqs[0] + len(seqs)))
            assert len(updates) > 100
            assert await slow_end == 4008
            assert slow.ws.close_reason == "slow consumer"
            await fast.close()

        asyncio.run(asyncio.wait_for(run(), 300))
        cut = value(scrape(live), "ballast_stream_connections_cut_total", reason="slow consumer")
        assert cut == 1


@sqlite_only
def test_heartbeats_keep_coming_without_data(live: LiveServer) -> None:
    async def run() -> None:
        client = await StreamClient.connect(live.url)
        beats = [await client.wait_for(lambda m: m["type"] == "heartbeat", 3) for _ in range(3)]
        assert all(b["subscriptions"] == [] for b in beats)
        await client.close()

    asyncio.run(run())


def test_subscribers_that_vanish_mid_flow_disturb_no_one(live: LiveServer) -> None:
    admin = Admin(live.api, live.admin_token)
    market = f"vanish-{random.randrange(10**9)}"
    admin.market(market)
    trader = admin.account("vanish", 100_000)

    async def run() -> None:
        steady = await StreamClient.connect(live.url)
        await steady.subscribe("orderbook", market_id=market, depth=100)
        doomed = []
        for _ in range(6):  # within this module's limit of 8 per IP
            client = await StreamClient.connect(live.url)
            await client.subscribe("orderbook", market_id=market, depth=100)
            doomed.append(client)

        def flow() -> None:
            for i in range(300):
                price = round(0.01 + (i % 98) / 100, 2)
                side = "buy" if price < 0.5 else "sell"
                trader.post(
                    "/orders", {"market_id": market, "side": side, "price": price, "size": 1}
                )

        orders = asyncio.create_task(asyncio.to_thread(flow))
        for client in doomed:  # dropped without a close handshake while updates flow
            await asyncio.sleep(0.1)
            client.ws.transport.abort()
        await orders
        await steady.sync()
        updates = steady.data("orderbook", market)
        seqs = [m["seq"] for m in updates]
        assert seqs == list(range(seqs[0], seqs[0] + len(seqs)))
        book = trader.get(f"/markets/{market}/orderbook?depth=100").json()
        assert updates[-1]["exchange_seq"] == book["seq"]
        assert len(live.runtime.hub.connections) == 1
        await steady.close()

    asyncio.run(asyncio.wait_for(run(), 60))


@sqlite_only
def test_publishing_to_a_socket_that_just_died_is_harmless(live: LiveServer) -> None:
    """The moment between a socket dying and its reader leaving the hub: a publish then must
    neither raise (uvloop refuses writes to a closed transport) nor touch other subscribers."""
    admin = Admin(live.api, live.admin_token)
    market = f"dead-{random.randrange(10**9)}"
    admin.market(market)

    async def run() -> None:
        client = await StreamClient.connect(live.url)
        await client.subscribe("orderbook", market_id=market)

        async def kill_then_publish() -> None:
            (connection,) = [c for c in live.runtime.hub.connections if c.streams]
            connection.transport.abort()
            await asyncio.sleep(0)  # the transport is closed; the reader has not run yet
            assert connection.transport.is_closing() and connection in live.runtime.hub.connections
            connection.push('{"type":"test"}')

        live.call(kill_then_publish())
        await client.close()

    asyncio.run(run())
