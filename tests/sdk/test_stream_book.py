"""The stream's market data against a real server: LocalOrderBook equal to the REST book under
random order flow, a stream that survives a server restart, and every way of resyncing."""

from __future__ import annotations

import asyncio
import json
import random
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from ballast import (
    AsyncBallastClient,
    BallastClient,
    ChannelMessage,
    Connected,
    Disconnected,
    InvalidRequestError,
    OrderBookMessage,
    OrdersMessage,
    Resynced,
    TickerMessage,
    TradesMessage,
)
from tests.live_server import NO_LIMITS, LiveServer, free_port, live_server
from tests.sdk.conftest import AccountFactory, MarketFactory
from tests.sdk.stream_helpers import (
    assert_book_matches_rest,
    data_messages,
    levels,
    random_flow,
    read_until,
    rebuild,
)
from tests.signed_client import Admin


def clients(api: str, accounts: list[dict[str, Any]]) -> list[AsyncBallastClient]:
    return [AsyncBallastClient(a["api_key"], a["api_secret"], base_url=api) for a in accounts]


def test_local_order_book_equals_the_rest_book_under_random_flow(
    server: LiveServer, new_market: MarketFactory, new_account: AccountFactory
) -> None:
    market = new_market()
    accounts = [new_account(100_000) for _ in range(3)]
    rng = random.Random(5)

    async def run() -> None:
        traders = clients(server.api, accounts)
        public = AsyncBallastClient(base_url=server.api)
        async with public.stream() as top, public.stream() as deep:
            await top.order_book(market, depth=5)
            await top.subscribe("trades", market)
            await top.subscribe("ticker", market)
            deep_book = await deep.order_book(market, depth=100)
            assert deep_book.synced and len(deep_book) == 0
            late = None
            for round_no in range(4):
                await random_flow(rng, traders, market, 90)
                if round_no == 1:
                    # A stream that joins mid-flow starts from the book as it stands.
                    late = public.stream()
                    await late.connect()
                    await late.order_book(market, depth=5)
                book = await assert_book_matches_rest(top, public, market, 5)
                await assert_book_matches_rest(deep, public, market, 100)
                if late is not None:
                    await late.ping()
                    assert levels(late.book(market)) == levels(book)
            assert late is not None
            await late.close()

            # What iteration yielded: gap-free, and it rebuilds the same book.
            seen = top.drain()
            assert isinstance(seen[0], Connected)
            books = data_messages(seen, "orderbook")
            assert len(books) > 20
            assert rebuild(seen, market) == levels(top.book(market))
            assert rebuild(deep.drain(), market) == levels(deep.book(market))
            exchange_seqs = [m.exchange_seq for m in books]
            assert exchange_seqs == sorted(exchange_seqs)

            # Trades: typed, and every trade REST lists, in order.
            trades = [t for m in seen if isinstance(m, TradesMessage) for t in m.trades]
            listed = await public.get_trades(market)
            assert trades == list(reversed(listed))
            assert all(isinstance(t.price, Decimal) and t.created_at.tzinfo for t in trades)

            # Ticker: its last word agrees with the market as REST shows it.
            ticker = [m for m in seen if isinstance(m, TickerMessage)][-1].ticker
            shown = await public.get_market(market)
            fields = ("bid", "ask", "midpoint", "last_price", "change_24h", "volume_24h")
            assert [getattr(ticker, f) for f in fields] == [getattr(shown, f) for f in fields]
        for client in [*traders, public]:
            await client.close()

    asyncio.run(asyncio.wait_for(run(), 60))


def test_the_sync_client_streams_too(
    server: LiveServer, new_market: MarketFactory, new_account: AccountFactory
) -> None:
    market = new_market()
    account = new_account()
    client = BallastClient(account["api_key"], account["api_secret"], base_url=server.api)
    with client.stream() as stream:
        assert stream.account_id == account["account_id"]
        snapshot = stream.subscribe("orderbook", market, depth=10)
        assert isinstance(snapshot, OrderBookMessage) and snapshot.depth == 10
        client.place_order(market, "buy", price="0.41", size=3)
        order = stream.place_order(market, "sell", price="0.45", size=2)
        assert order.status == "open"
        pong = stream.ping()
        book = stream.book(market)  # a copy, safe to read in this thread
        assert book.exchange_seq == pong.exchange_seq
        assert levels(book) == ([(Decimal("0.41"), 3)], [(Decimal("0.45"), 2)])
        assert levels(book) == levels(client.get_orderbook(market, depth=10))
        first = next(iter(stream))
        assert isinstance(first, Connected) and first.reconnect is False
        rest = stream.drain()
        assert [m.type for m in rest] == ["snapshot", "update", "update"]
        assert stream.receive(timeout=0.05) is None
    assert client.get_order(order.id).status == "open"  # no cancel on disconnect by default
    client.close()


def test_a_stream_survives_a_server_restart_and_resyncs(tmp_path: Path) -> None:
    port = free_port()
    data_dir = tmp_path / "var"
    settings: dict[str, Any] = {**NO_LIMITS, "stream_heartbeat_s": 0.5}

    async def run() -> None:
        starting = live_server(data_dir, port=port, **settings)
        first = await asyncio.to_thread(starting.__enter__)
        admin = Admin(first.api, first.admin_token)
        market = "restart"
        admin.market(market)
        accounts = [admin.post("/accounts", {"name": f"r{i}", "deposit": 100_000}) for i in (1, 2)]
        traders = clients(first.api, accounts)
        await random_flow(random.Random(1), traders, market, 40)
        stream = traders[0].stream(heartbeat_interval=0.5, backoff_base=0.05, backoff_max=0.5)
        async with stream:
            await stream.order_book(market, depth=50)
            orders = await stream.subscribe("orders")
            assert isinstance(orders, OrdersMessage)
            await assert_book_matches_rest(stream, traders[0], market, 50)
            before = levels(stream.book(market))
            stream.drain()

            await asyncio.to_thread(starting.__exit__, None, None, None)
            seen = await read_until(stream, lambda m: isinstance(m, Disconnected))
            gone = seen[-1]
            assert isinstance(gone, Disconnected) and gone.reconnecting and gone.error is None
            assert not stream.connected and not stream.book(market).synced

            restarting = live_server(data_dir, port=port, **settings)
            second = await asyncio.to_thread(restarting.__enter__)
            try:
                seen = await read_until(stream, lambda m: isinstance(m, Connected), timeout=15)
                assert seen[-1] == Connected(
                    url=stream.url,
                    account_id=accounts[0]["account_id"],
                    reconnect=True,
                    time=seen[-1].time,
                )
                seen = []
                while sum(isinstance(m, Resynced) for m in seen) < 2:
                    seen += await read_until(stream, lambda m: isinstance(m, Resynced))
                resynced = [m for m in seen if isinstance(m, Resynced)]
                assert {(m.channel, m.reason) for m in resynced} == {
                    ("orders", "reconnect"),
                    ("orderbook", "reconnect"),
                }
                # Each Resynced follows its subscription's fresh snapshot.
                for event in resynced:
                    snapshot = seen[seen.index(event) - 1]
                    assert isinstance(snapshot, (OrderBookMessage, OrdersMessage))
                    assert snapshot.is_snapshot and snapshot.channel == event.channel
                assert levels(stream.book(market)) == before
                assert stream.reconnects == 1
                start = (before, stream.book(market).seq or 0)

                # The new server's orders reach the same book.
                await random_flow(random.Random(2), clients(second.api, accounts), market, 40)
                await assert_book_matches_rest(stream, traders[0], market, 50)
                seen = stream.drain()
                assert rebuild(seen, market, start) == levels(stream.book(market))
            finally:
                await stream.close()
                await asyncio.to_thread(restarting.__exit__, None, None, None)
        for trader in traders:
            await trader.close()

    asyncio.run(asyncio.wait_for(run(), 60))


def test_a_slow_consumer_cut_reconnects_with_fresh_snapshots(tmp_path: Path) -> None:
    # The server cuts a connection with more than 1 KiB it could not hand to the socket, and
    # the socket takes 8 KiB (a congested link): one order sweeping 300 others is one fills
    # message of some 75 KB, which backs up however fast the client reads.
    settings: dict[str, Any] = {**NO_LIMITS, "stream_send_buffer_bytes": 1024}
    with live_server(tmp_path / "var", socket_send_buffer=4096, **settings) as live:
        admin = Admin(live.api, live.admin_token)
        market = "slow"
        admin.market(market)
        maker, taker = (
            admin.post("/accounts", {"name": name, "deposit": 100_000}) for name in ("m", "t")
        )

        async def run() -> None:
            client, sweeper = clients(live.api, [maker, taker])
            for batch in range(15):
                asks = [
                    {"market_id": market, "side": "sell", "price": f"0.{300 + i}", "size": 1}
                    for i in range(batch * 20, batch * 20 + 20)
                ]
                assert all(r.ok for r in await client.place_orders(asks))
            async with sweeper.stream(backoff_base=0.05) as stream:
                await stream.order_book(market, depth=10)
                await stream.subscribe("fills")
                await stream.subscribe("orders")
                sweep = await sweeper.place_order(market, "buy", price="0.9", size=300)
                assert sweep.status == "filled" and len(sweep.fills) == 300
                seen = await read_until(stream, lambda m: isinstance(m, Connected) and m.reconnect)
                cut = [m for m in seen if isinstance(m, Disconnected)]
                assert [(c.code, c.reason, c.reconnecting) for c in cut] == [
                    (4008, "slow consumer", True)
                ]
                seen = []
                while sum(isinstance(m, Resynced) for m in seen) < 3:
                    seen += await read_until(stream, lambda m: isinstance(m, Resynced))
                assert {m.reason for m in seen if isinstance(m, Resynced)} == {"reconnect"}
                assert stream.reconnects == 1
                await client.place_order(market, "sell", price="0.7", size=3)
                await client.place_order(market, "buy", price="0.2", size=2)
                book = await assert_book_matches_rest(stream, client, market, 10)
                assert levels(book) == ([(Decimal("0.2"), 2)], [(Decimal("0.7"), 3)])
            await client.close()
            await sweeper.close()

        asyncio.run(asyncio.wait_for(run(), 30))


def test_a_gap_in_seq_resubscribes_for_a_fresh_snapshot(
    server: LiveServer, new_market: MarketFactory, new_account: AccountFactory
) -> None:
    market = new_market()
    account = new_account()

    async def run() -> None:
        client = AsyncBallastClient(account["api_key"], account["api_secret"], base_url=server.api)
        async with client.stream() as stream:
            book = await stream.order_book(market, depth=10)
            await client.place_order(market, "buy", price="0.3", size=5)
            await assert_book_matches_rest(stream, client, market, 10)
            assert book.seq == 1
            # A message is lost: the next one read skips a seq (forged here, as the server
            # never skips). The stream drops it and asks the server for a fresh snapshot.
            lost = {
                "type": "update",
                "channel": "orderbook",
                "market_id": market,
                "seq": book.seq + 2,
                "exchange_seq": 10**9,
                "time": "2026-01-01T00:00:00Z",
                "data": {"bids": [{"price": 0.99, "size": 1}], "asks": []},
            }
            stream._dispatch(json.dumps(lost))
            assert not book.synced
            seen = await read_until(stream, lambda m: isinstance(m, Resynced))
            event = seen[-1]
            assert isinstance(event, Resynced) and event.reason == "gap"
            assert event.channel == "orderbook" and event.market_id == market
            assert all(m.seq != book.seq + 2 for m in seen if isinstance(m, OrderBookMessage))
            assert book.synced and levels(book) == ([(Decimal("0.3"), 5)], [])
            await client.place_order(market, "sell", price="0.6", size=4)
            await assert_book_matches_rest(stream, client, market, 10)
            assert stream.connected and stream.reconnects == 0
        await client.close()

    asyncio.run(asyncio.wait_for(run(), 30))


def test_unsubscribe_and_one_depth_a_market(
    server: LiveServer, new_market: MarketFactory, new_account: AccountFactory
) -> None:
    market = new_market()
    account = new_account()

    async def run() -> None:
        client = AsyncBallastClient(account["api_key"], account["api_secret"], base_url=server.api)
        async with client.stream() as stream:
            await stream.order_book(market, depth=10)
            with pytest.raises(InvalidRequestError):
                await stream.subscribe("orderbook", market, depth=20)
            await stream.subscribe("ticker", market)
            await stream.unsubscribe("orderbook", market)
            with pytest.raises(KeyError):
                stream.book(market)
            with pytest.raises(InvalidRequestError):
                await stream.unsubscribe("orderbook", market)
            stream.drain()
            await client.place_order(market, "buy", price="0.4", size=1)
            await stream.ping()
            assert {m.channel for m in stream.drain() if isinstance(m, ChannelMessage)} == {
                "ticker"
            }
            book = await stream.order_book(market, depth=20)  # another depth, now
            assert levels(book) == ([(Decimal("0.4"), 1)], [])
            assert [(s.channel, s.depth, s.synced) for s in stream.subscriptions] == [
                ("ticker", None, True),
                ("orderbook", 20, True),
            ]
        await client.close()

    asyncio.run(asyncio.wait_for(run(), 30))


def test_unread_messages_overflowing_the_buffer_resync(
    server: LiveServer, new_market: MarketFactory, new_account: AccountFactory
) -> None:
    market = new_market()
    account = new_account()

    async def run() -> None:
        client = AsyncBallastClient(account["api_key"], account["api_secret"], base_url=server.api)
        async with client.stream(max_queue=5) as stream:
            await stream.order_book(market, depth=20)
            for i in range(8):  # nobody reads meanwhile
                await client.place_order(market, "buy", price=f"0.{20 + i}", size=1)
            # The book is current all the same; the unread messages were dropped, and the
            # next read asks for a fresh snapshot rather than hand over a gap.
            await assert_book_matches_rest(stream, client, market, 20)
            assert [type(m) for m in stream.drain()] == [Connected]
            seen = await read_until(stream, lambda m: isinstance(m, Resynced))
            assert [type(m) for m in seen] == [OrderBookMessage, Resynced]
            assert isinstance(seen[1], Resynced) and seen[1].reason == "overflow"
            await client.place_order(market, "buy", price="0.1", size=1)
            book = await assert_book_matches_rest(stream, client, market, 20)
            assert len(book.bids) == 9
            assert rebuild([*seen, *stream.drain()], market) == levels(book)
        async with client.stream(max_queue=0) as quiet:  # books only: nothing is buffered
            await quiet.order_book(market, depth=20)
            await client.place_order(market, "sell", price="0.9", size=1)
            await assert_book_matches_rest(quiet, client, market, 20)
            assert [type(m) for m in quiet.drain()] == [Connected]
        await client.close()

    asyncio.run(asyncio.wait_for(run(), 30))


def test_a_silent_feed_is_taken_for_dead_and_reconnected(
    server: LiveServer, new_market: MarketFactory
) -> None:
    market = new_market()

    async def run() -> None:
        client = AsyncBallastClient(base_url=server.api)
        # The server beats every 5 s; a client expecting 0.1 s sees silence after 0.3 s.
        async with client.stream(heartbeat_interval=0.1, backoff_base=0.01) as stream:
            await stream.order_book(market, depth=5)
            seen = await read_until(stream, lambda m: isinstance(m, Resynced), timeout=10)
            gone = next(m for m in seen if isinstance(m, Disconnected))
            assert gone.code is None and "no message for 0.3 s" in gone.reason
            assert gone.reconnecting
            assert any(isinstance(m, Connected) and m.reconnect for m in seen)
            resynced = seen[-1]
            assert isinstance(resynced, Resynced) and resynced.reason == "reconnect"
        await client.close()

    asyncio.run(asyncio.wait_for(run(), 30))
