"""The market object's convenience reads and market discovery through the SDK, sync and async,
against a real server."""

from __future__ import annotations

import asyncio
from decimal import Decimal

from ballast import AsyncBallastClient, BallastClient
from tests.live_server import LiveServer
from tests.sdk.conftest import ClientFactory, MarketFactory


def test_midpoint_and_change(
    server: LiveServer, new_market: MarketFactory, new_client: ClientFactory
) -> None:
    market_id = new_market()
    maker, taker = new_client(), new_client()
    maker.place_order(market_id, "buy", "limit", "0.4", size=5)
    maker.place_order(market_id, "sell", "limit", "0.61", size=5)
    public = BallastClient(base_url=server.api)
    market = public.get_market(market_id)
    assert (market.bid, market.ask, market.midpoint) == (
        Decimal("0.4"),
        Decimal("0.61"),
        Decimal("0.505"),
    )
    assert market.last_price is None and market.change_24h is None
    taker.place_order(market_id, "sell", "limit", "0.4", size=5)
    [listed] = [m for m in public.get_markets() if m.id == market_id]
    assert listed.last_price == Decimal("0.4") and listed.midpoint is None
    assert listed.change_24h is None  # no trade a day ago to compare with

    async def read() -> None:
        async with AsyncBallastClient(base_url=server.api) as client:
            again = await client.get_market(market_id)
            assert (again.last_price, again.midpoint, again.change_24h) == (
                Decimal("0.4"),
                None,
                None,
            )

    asyncio.run(read())
    public.close()
