"""AsyncBallastClient: the same methods and signatures as BallastClient, and the same
behaviour against a real server."""

from __future__ import annotations

import asyncio
import inspect
from datetime import date
from decimal import Decimal
from typing import Any

import httpx
import pytest

from ballast import (
    AsyncBallastClient,
    BallastClient,
    InsufficientBalanceError,
    InvalidPriceError,
    OrderNotCancelableError,
    RateLimitError,
)
from tests.live_server import LiveServer
from tests.sdk.conftest import TIGHT_LIMIT, AccountFactory, MarketFactory, fresh_window
from tests.signed_client import Admin

LIFECYCLE = {"close", "aclose", "__enter__", "__exit__", "__aenter__", "__aexit__"}


def public_methods(cls: type) -> dict[str, Any]:
    return {
        name: member
        for name, member in inspect.getmembers(cls, inspect.isfunction)
        if not name.startswith("_") and name not in LIFECYCLE
    }


def test_same_methods_and_signatures() -> None:
    sync, asynchronous = public_methods(BallastClient), public_methods(AsyncBallastClient)
    assert set(sync) == set(asynchronous)
    expected = {
        "get_markets", "get_market", "get_orderbook", "get_trades", "get_candles",
        "get_server_time", "sync_clock", "place_order", "place_orders", "amend_order",
        "cancel_order", "cancel_all", "get_order", "get_orders", "get_balance", "get_positions",
        "get_fills", "get_ledger", "get_settlement", "request_faucet",
    }  # fmt: skip
    assert expected <= set(sync)
    for name in expected:
        assert not inspect.iscoroutinefunction(sync[name]), name
        assert inspect.iscoroutinefunction(asynchronous[name]), name
        assert inspect.signature(sync[name]) == inspect.signature(asynchronous[name]), name
    init_sync = inspect.signature(BallastClient.__init__).parameters
    init_async = inspect.signature(AsyncBallastClient.__init__).parameters
    assert list(init_sync) == list(init_async)
    for name in init_sync:
        if name != "http_client":
            assert init_sync[name] == init_async[name], name
    assert inspect.iscoroutinefunction(AsyncBallastClient.close)


class LosesResponses(httpx.AsyncHTTPTransport):
    def __init__(self, method: str) -> None:
        super().__init__()
        self.method = method
        self.left = 1

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        response = await super().handle_async_request(request)
        if request.method == self.method and self.left > 0:
            self.left -= 1
            await response.aread()
            await response.aclose()
            raise httpx.ReadTimeout("the response was lost", request=request)
        return response


def test_every_method_against_the_server(
    server: LiveServer, new_market: MarketFactory, new_account: AccountFactory
) -> None:
    market = new_market()
    maker_account, taker_account = new_account(), new_account(deposit=100)

    async def scenario() -> None:
        network = LosesResponses("POST")
        async with (
            AsyncBallastClient(
                maker_account["api_key"],
                maker_account["api_secret"],
                base_url=server.api,
                http_client=httpx.AsyncClient(transport=network),
            ) as maker,
            AsyncBallastClient(
                taker_account["api_key"], taker_account["api_secret"], base_url=server.api
            ) as taker,
        ):
            assert (await maker.get_server_time()).server_time.tzinfo is not None
            maker.clock_offset_ms = -90_000
            assert market in {m.id for m in await maker.get_markets()}  # skew corrected
            assert abs(maker.clock_offset_ms) < 2000
            assert abs(await maker.sync_clock()) < 2000
            rules = (await maker.get_market(market)).rules
            assert rules is not None and rules.tick_size == Decimal("0.001")

            ask = await maker.place_order(market, "sell", price=0.61, size=10)  # response lost
            assert network.left == 0
            assert ask.price == Decimal("0.61")
            results = await maker.place_orders(
                [
                    {"market_id": market, "side": "sell", "price": "0.62", "size": 10},
                    {"market_id": market, "side": "sell", "price": "0.6205", "size": 10},
                ]
            )
            assert results[0].ok and isinstance(results[1].error, InvalidPriceError)
            orders = await maker.get_orders(status="open", page_size=1)
            assert len(orders) == 2  # the lost-response retry placed one order, not two
            book = await maker.get_orderbook(market, depth=1)
            assert [(lvl.price, lvl.size) for lvl in book.asks] == [(Decimal("0.61"), 10)]

            bought = await taker.place_order(market, "buy", price="0.62", size=15)
            assert (bought.status, [f.size for f in bought.fills]) == ("filled", [10, 5])
            with pytest.raises(InsufficientBalanceError):
                await taker.place_order(market, "buy", price="0.62", size=1000)
            assert len(await taker.get_trades(market)) == 2
            (candle,) = await taker.get_candles(market, "1m")
            assert candle.volume == 15
            assert [p.size for p in await taker.get_positions()] == [15]
            assert (await taker.get_balance()).total_balance <= Decimal(100)
            assert [f.liquidity for f in await taker.get_fills(start_date=date.today())] == [
                "taker",
                "taker",
            ]
            assert len(await taker.get_ledger(limit=3)) == 3

            rest = await maker.get_order(results[0].order.id if results[0].order else "")
            amended = await maker.amend_order(rest.id, size=7)
            assert (amended.size, amended.filled_size) == (7, 5)
            canceled = await maker.cancel_order(rest.id)
            assert canceled.status == "canceled"
            with pytest.raises(OrderNotCancelableError):
                await maker.cancel_order(rest.id)
            assert (await maker.cancel_all(market)).count == 0
            assert maker.rate_limit is not None

    asyncio.run(scenario())


def test_async_rate_limit_error(tight: tuple[LiveServer, Admin]) -> None:
    server, boss = tight
    account = boss.post("/accounts", {"name": "async-limited", "deposit": 10})
    fresh_window()

    async def scenario() -> None:
        async with AsyncBallastClient(
            account["api_key"], account["api_secret"], base_url=server.api, max_retries=0
        ) as client:
            for _ in range(TIGHT_LIMIT):
                await client.get_balance()
            with pytest.raises(RateLimitError) as caught:
                await client.get_balance()
            assert caught.value.retry_after is not None and caught.value.retry_after >= 1
            assert client.rate_limit is not None and client.rate_limit.remaining == 0

    asyncio.run(scenario())
