"""The ``ticker`` channel carries the market object's price fields: ``midpoint`` and
``change_24h`` beside the bid, ask, last price and volume, as ``GET /v1/markets/{id}`` shows
them, in its snapshot and in its updates.

A day of history cannot be made through the API in a test, so the venue's journal is written
first, with commands stamped in the past, and a real server is started on it: the stream's read
models load that day from the store as after any restart."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from ballast_exchange.stream.models import DAY_S, LastPrices
from tests.databases import fresh_database
from tests.live_server import NO_LIMITS, LiveServer, live_server
from tests.signed_client import Admin
from tests.store.helpers import day_of_trades, write_history
from tests.stream.stream_client import StreamClient

FIELDS = ("bid", "ask", "midpoint", "last_price", "change_24h", "volume_24h")


@pytest.fixture(scope="module", params=["sqlite", "postgres"])
def live(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[LiveServer]:
    tmp = tmp_path_factory.mktemp(f"ticker-{request.param}")
    with fresh_database(request.param, tmp) as url:
        write_history(url, day_of_trades(int(time.time() * 1000)))
        with live_server(tmp / "var", database_url=url, **NO_LIMITS) as server:
            yield server


def shown(live: LiveServer, market_id: str) -> dict[str, Any]:
    market = httpx.get(f"{live.api}/markets/{market_id}", timeout=30).json()
    return {field: market[field] for field in FIELDS}


def test_ticker_snapshot_and_updates_carry_midpoint_and_change(live: LiveServer) -> None:
    admin = Admin(live.api, live.admin_token)
    taker = admin.account("taker", 1_000)

    async def run() -> None:
        client = await StreamClient.connect(live.url)
        try:
            snapshot = (await client.subscribe("ticker", market_id="suez"))["data"]
            assert snapshot == {
                "bid": 0.5,
                "ask": 0.611,
                "midpoint": 0.5555,  # half a tick: shown exactly
                "last_price": 0.55,
                "change_24h": pytest.approx(0.15),  # 0.55 now, 0.40 a day ago
                "volume_24h": 10,
            }
            assert snapshot == shown(live, "suez")

            # A trade now moves the last price, the change and the volume in one update.
            placed = taker.post(
                "/orders", {"market_id": "suez", "side": "buy", "price": 0.611, "size": 3}
            )
            assert placed.status_code == 201, placed.text
            update = await client.wait_for(
                lambda m: m["type"] == "update" and m["data"]["last_price"] == 0.611
            )
            assert update["data"] == {
                "bid": 0.5,
                "ask": 0.611,
                "midpoint": 0.5555,
                "last_price": 0.611,
                "change_24h": pytest.approx(0.211),
                "volume_24h": 13,
            }
            assert update["data"] == shown(live, "suez")

            # The book empties on one side: no midpoint; the change stays.
            cleared = taker.post(
                "/orders", {"market_id": "suez", "side": "buy", "price": 0.611, "size": 1}
            )
            assert cleared.status_code == 201, cleared.text
            update = await client.wait_for(
                lambda m: m["type"] == "update" and m["data"]["ask"] is None
            )
            assert update["data"]["midpoint"] is None
            assert update["data"]["change_24h"] == pytest.approx(0.211)
            assert update["data"] == shown(live, "suez")

            for market_id, expected in (
                ("fresh", {"midpoint": None, "last_price": 0.42, "change_24h": None}),
                ("empty", {"midpoint": None, "last_price": None, "change_24h": None}),
            ):
                data = (await client.subscribe("ticker", market_id=market_id))["data"]
                assert {k: data[k] for k in expected} == expected, market_id
                assert data == shown(live, market_id)
        finally:
            await client.close()
            taker.close()
            admin.http.close()

    asyncio.run(run())


def test_last_prices_a_day_ago_slide_with_the_clock() -> None:
    """The reference is the last price at or before the second a day ago; a price repeated
    adds nothing, and a second's last trade is the one that counts."""
    day_ms = DAY_S * 1000
    t0 = 1_800_000_000_000
    prices = LastPrices()
    assert prices.day_ago(t0) is None
    prices.add(t0, 400)
    prices.add(t0 + 200, 420)  # the same second: its last trade counts
    prices.add(t0 + 5_000, 420)  # unchanged: nothing kept
    prices.add(t0 + 10_000, 450)
    assert [tuple(b) for b in prices.buckets] == [(t0 // 1000, 420), (t0 // 1000 + 10, 450)]
    assert prices.day_ago(t0 + day_ms - 1_000) is None  # a day ago is still before the first
    assert prices.day_ago(t0 + day_ms) == 420
    assert prices.day_ago(t0 + day_ms + 9_999) == 420
    assert prices.day_ago(t0 + day_ms + 10_000) == 450
    assert not prices.buckets  # what aged out is only the reference now
    prices.add(t0 + day_ms + 20_000, 450)  # the reference's price again: nothing kept
    assert not prices.buckets
    prices.add(t0 + day_ms + 30_000, 470)
    assert prices.day_ago(t0 + 2 * day_ms + 29_000) == 450
    assert prices.day_ago(t0 + 2 * day_ms + 30_000) == 470
