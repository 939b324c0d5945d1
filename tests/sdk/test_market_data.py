"""Market data through the SDK against a real server: typed, Decimal prices, aware times."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from ballast import BallastClient, UnauthorizedError
from tests.live_server import LiveServer
from tests.sdk.conftest import ClientFactory, MarketFactory
from tests.signed_client import Admin


def aware(moment: datetime | None) -> datetime:
    assert isinstance(moment, datetime)
    assert moment.tzinfo is not None and moment.utcoffset() == timedelta(0)
    return moment


def test_server_time_and_clock_sync(new_client: ClientFactory) -> None:
    client = new_client()
    before = datetime.now(UTC)
    served = client.get_server_time()
    after = datetime.now(UTC)
    assert (
        before - timedelta(seconds=1) <= aware(served.server_time) <= after + timedelta(seconds=1)
    )
    assert served.iso.endswith("Z")
    assert abs(served.timestamp_ms - time.time() * 1000) < 2000
    client.clock_offset_ms = 999_999
    offset = client.sync_clock()
    assert offset == client.clock_offset_ms
    assert abs(offset) < 1000  # same host: the clocks agree


def test_markets_with_rules_and_filters(
    admin: Admin, new_market: MarketFactory, new_client: ClientFactory
) -> None:
    binary = new_market("binary", tick_size="0.001", min_size=5, maker_fee_bps=-5, taker_fee_bps=20)
    index = new_market("index", question="Where will the index read?")
    client = new_client()

    markets = {m.id: m for m in client.get_markets()}
    assert {binary, index} <= set(markets)
    suez = markets[binary]
    assert (suez.type, suez.status, suez.market_id) == ("binary", "open", binary)
    assert suez.rules is not None
    assert suez.rules.tick_size == Decimal("0.001")
    assert isinstance(suez.rules.tick_size, Decimal)
    assert (suez.rules.floor, suez.rules.cap) == (Decimal(0), Decimal(1))
    assert (suez.rules.min_size, suez.rules.maker_fee_bps, suez.rules.taker_fee_bps) == (5, -5, 20)
    aware(suez.close_time)
    assert suez.last_price is None and suez.bid is None and suez.volume_24h == 0

    assert index in {m.id for m in client.get_markets(type="index")}
    assert all(m.type == "index" for m in client.get_markets(type="index"))
    assert binary not in {m.id for m in client.get_markets(type="index")}

    admin.post(f"/markets/{index}/halt")
    halted = client.get_markets(status="halted")
    assert index in {m.id for m in halted}
    assert all(m.status == "halted" for m in halted)

    one = client.get_market(index)
    assert (one.id, one.type, one.status, one.question) == (
        index,
        "index",
        "halted",
        "Where will the index read?",
    )
    assert one.rules is not None
    assert (one.rules.tick_size, one.rules.cap) == (Decimal("0.1"), Decimal(100))
    assert client.market_rules(index) == one.rules  # cached for order checks


def test_orderbook_depth_and_levels(new_market: MarketFactory, new_client: ClientFactory) -> None:
    market = new_market()
    maker = new_client()
    for price, size in (("0.41", 10), ("0.42", 20), ("0.42", 5), ("0.43", 7)):
        maker.place_order(market, "buy", price=price, size=size)
    maker.place_order(market, "sell", price=Decimal("0.47"), size=3)
    maker.place_order(market, "sell", price=0.465, size=4)

    book = maker.get_orderbook(market)
    assert book.market_id == market
    aware(book.timestamp)
    assert isinstance(book.seq, int)
    assert [(lvl.price, lvl.size) for lvl in book.bids] == [
        (Decimal("0.43"), 7),
        (Decimal("0.42"), 25),
        (Decimal("0.41"), 10),
    ]
    assert [(lvl.price, lvl.size) for lvl in book.asks] == [
        (Decimal("0.465"), 4),
        (Decimal("0.47"), 3),
    ]
    assert all(isinstance(lvl.price, Decimal) for lvl in book.bids + book.asks)
    assert (book.best_bid, book.best_ask, book.spread) == (
        Decimal("0.43"),
        Decimal("0.465"),
        Decimal("0.035"),
    )
    assert book.mid == Decimal("0.4475")

    shallow = maker.get_orderbook(market, depth=2)
    assert [lvl.price for lvl in shallow.bids] == [Decimal("0.43"), Decimal("0.42")]
    assert len(shallow.asks) == 2


def test_trades_and_candles(new_market: MarketFactory, new_client: ClientFactory) -> None:
    market = new_market()
    maker, taker = new_client(), new_client()
    maker.place_order(market, "sell", price="0.61", size=10)
    maker.place_order(market, "sell", price="0.62", size=10)
    taker.place_order(market, "buy", price="0.62", size=15)  # 10 @ 0.61, then 5 @ 0.62

    trades = taker.get_trades(market)
    assert [(t.price, t.size, t.taker_side) for t in trades] == [
        (Decimal("0.62"), 5, "buy"),
        (Decimal("0.61"), 10, "buy"),
    ]
    assert all(t.trade_id.startswith("trd_") and t.market_id == market for t in trades)
    aware(trades[0].created_at)
    assert [t.trade_id for t in taker.get_trades(market, limit=1)] == [trades[0].trade_id]
    assert [t.trade_id for t in taker.get_trades(market, page_size=1)] == [
        t.trade_id for t in trades
    ]

    candles = taker.get_candles(market, interval="1m")
    assert len(candles) == 1
    (candle,) = candles
    assert (candle.open, candle.high, candle.low, candle.close, candle.volume) == (
        Decimal("0.61"),
        Decimal("0.62"),
        Decimal("0.61"),
        Decimal("0.62"),
        15,
    )
    assert isinstance(candle.open, Decimal)
    assert aware(candle.start) <= datetime.now(UTC)
    later = datetime.now(UTC) + timedelta(hours=1)
    assert taker.get_candles(market, "1h", start=later, end=later + timedelta(hours=2)) == []

    market_now = taker.get_market(market)
    assert market_now.last_price == Decimal("0.62")
    assert market_now.volume_24h == 15


def test_market_data_without_a_key(server: LiveServer, new_market: MarketFactory) -> None:
    market = new_market()
    with BallastClient(base_url=server.api) as anonymous:
        assert anonymous.api_key is None
        assert market in {m.id for m in anonymous.get_markets()}
        assert anonymous.get_orderbook(market).bids == []
        assert anonymous.rate_limit is not None  # counted per IP
        with pytest.raises(UnauthorizedError):
            anonymous.get_balance()
