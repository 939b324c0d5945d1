"""Public market data over real HTTP, in the spec's shapes."""

from __future__ import annotations

import time

import httpx

from tests.live_server import LiveServer
from tests.signed_client import Admin


def test_markets_list_and_detail(server: LiveServer, admin: Admin) -> None:
    admin.market("suez-apr2025", question="Will the Suez Canal be open in April?")
    admin.market("shanghai-may", kind="index", maker_fee_bps=-5, taker_fee_bps=20)
    admin.post(
        "/markets",
        {"id": "later", "name": "Later", "type": "binary", "close_time": 4_102_444_800_000},
    )  # listed, not yet open
    markets = httpx.get(f"{server.api}/markets").json()["markets"]
    spec_fields = {
        "id",
        "name",
        "type",
        "settlement_date",
        "last_price",
        "bid",
        "ask",
        "volume_24h",
    }
    assert all(spec_fields <= m.keys() for m in markets)
    assert {m["id"] for m in markets} == {"suez-apr2025", "shanghai-may", "later"}
    only_open = httpx.get(f"{server.api}/markets?status=open").json()["markets"]
    assert {m["id"] for m in only_open} == {"suez-apr2025", "shanghai-may"}
    index = httpx.get(f"{server.api}/markets?type=index").json()["markets"]
    assert [m["id"] for m in index] == ["shanghai-may"]

    detail = httpx.get(f"{server.api}/markets/shanghai-may").json()
    assert detail["type"] == "index"
    assert detail["status"] == "open"
    assert detail["rules"] == {
        "tick_size": 0.1,
        "floor": 0.0,
        "cap": 100.0,
        "min_size": 1,
        "max_order_size": 1_000_000,
        "max_position": 10_000_000,
        "maker_fee_bps": -5,
        "taker_fee_bps": 20,
    }
    assert detail["settlement"] is None
    assert httpx.get(f"{server.api}/markets?status=bogus").status_code == 400


def test_orderbook_depth_and_shape(server: LiveServer, admin: Admin) -> None:
    admin.market("suez-apr2025")
    maker = admin.account("maker", 100_000)
    for i in range(25):
        maker.post(
            "/orders",
            {"market_id": "suez-apr2025", "side": "buy", "price": f"0.{40 + i}", "size": 10 + i},
        )
        maker.post(
            "/orders",
            {"market_id": "suez-apr2025", "side": "sell", "price": f"0.{70 + i}", "size": 5},
        )
    book = httpx.get(f"{server.api}/markets/suez-apr2025/orderbook").json()
    assert book["market_id"] == "suez-apr2025"
    assert book["timestamp"].endswith("Z")
    assert len(book["bids"]) == len(book["asks"]) == 20  # default depth
    assert book["bids"][0] == {"price": 0.64, "size": 34}  # best bid first
    assert book["asks"][0] == {"price": 0.7, "size": 5}
    assert [b["price"] for b in book["bids"]] == sorted(
        (b["price"] for b in book["bids"]), reverse=True
    )
    shallow = httpx.get(f"{server.api}/markets/suez-apr2025/orderbook?depth=3").json()
    assert len(shallow["bids"]) == 3
    for bad in ("0", "101", "x"):
        response = httpx.get(f"{server.api}/markets/suez-apr2025/orderbook?depth={bad}")
        assert response.status_code == 400
        assert response.json()["error"]["code"] == "INVALID_REQUEST"
        assert response.json()["error"]["details"]["field"] == "depth"
    missing = httpx.get(f"{server.api}/markets/nope/orderbook")
    assert (missing.status_code, missing.json()["error"]["code"]) == (404, "MARKET_NOT_FOUND")


def test_trades_candles_and_ticker_fields(server: LiveServer, admin: Admin) -> None:
    admin.market("suez-apr2025")
    buyer, seller = admin.account("buyer"), admin.account("seller")
    for price, size in [("0.50", 10), ("0.55", 5), ("0.45", 7), ("0.52", 3)]:
        seller.post(
            "/orders", {"market_id": "suez-apr2025", "side": "sell", "price": price, "size": size}
        )
        buyer.post(
            "/orders", {"market_id": "suez-apr2025", "side": "buy", "price": price, "size": size}
        )
    trades = httpx.get(f"{server.api}/markets/suez-apr2025/trades?limit=2").json()
    assert [(t["price"], t["size"]) for t in trades["trades"]] == [(0.52, 3), (0.45, 7)]
    assert trades["next_cursor"]
    older = httpx.get(
        f"{server.api}/markets/suez-apr2025/trades?limit=2&cursor={trades['next_cursor']}"
    ).json()
    assert [(t["price"], t["size"]) for t in older["trades"]] == [(0.55, 5), (0.5, 10)]

    candles = httpx.get(f"{server.api}/markets/suez-apr2025/candles?interval=1d").json()["candles"]
    assert len(candles) == 1
    day = candles[0]
    assert (day["open"], day["high"], day["low"], day["close"], day["volume"]) == (
        0.5,
        0.55,
        0.45,
        0.52,
        25,
    )
    market = httpx.get(f"{server.api}/markets/suez-apr2025").json()
    assert market["last_price"] == 0.52
    assert market["volume_24h"] == 25
    assert httpx.get(f"{server.api}/markets/suez-apr2025/candles?interval=2m").status_code == 400


def test_server_time(server: LiveServer) -> None:
    before = int(time.time() * 1000)
    body = httpx.get(f"{server.api}/time").json()
    assert before - 1000 <= body["server_time"] <= int(time.time() * 1000) + 1000
    assert body["iso"].endswith("Z")


def test_openapi_document_and_docs(server: LiveServer) -> None:
    document = httpx.get(f"{server.api}/openapi.json").json()
    assert document["openapi"].startswith("3.1")
    paths = document["paths"]
    for path in (
        "/v1/markets",
        "/v1/markets/{market_id}",
        "/v1/markets/{market_id}/orderbook",
        "/v1/orders",
        "/v1/orders/{order_id}",
        "/v1/account/balance",
        "/v1/positions",
    ):
        assert path in paths, path
    assert httpx.get(f"{server.url}/docs").status_code == 200
