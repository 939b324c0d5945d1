"""The market object's convenience reads and market discovery through the SDK, sync and async,
against a real server."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from decimal import Decimal

from ballast import AsyncBallastClient, BallastClient, MarketGroup, MarketGroupRef
from tests.live_server import LiveServer
from tests.sdk.conftest import ClientFactory, MarketFactory, unique
from tests.signed_client import Admin


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


def test_discovery_filters_series_and_events(server: LiveServer, admin: Admin) -> None:
    series_id, event_id = unique("series"), unique("event")
    series = {"id": series_id, "title": "Suez Canal weekly availability"}
    event = {"id": event_id, "title": "Chokepoints - Week 49"}
    first, second = unique("suez"), unique("suez")
    admin.market(
        first, category="Chokepoints", tags=["suez", series_id], series=series, event=event
    )
    admin.market(second, tags=[series_id], series=series, question="Open all week?")
    public = BallastClient(base_url=server.api)
    [market] = public.get_markets(tag=series_id, category="chokepoints")
    assert market.id == first and market.category == "Chokepoints"
    assert market.tags == ["suez", series_id]
    assert market.series == MarketGroupRef(id=series_id, title=series["title"])
    assert market.event is not None and market.event.id == event_id
    assert [m.id for m in public.get_markets(series=series_id)] == [first, second]
    assert [m.id for m in public.get_markets(tag=series_id, q="OPEN ALL")] == [second]
    assert public.get_markets(tag=series_id, close_before=datetime(2000, 1, 1, tzinfo=UTC)) == []
    assert len(public.get_markets(tag=series_id, close_after="2000-01-01", status="open")) == 2
    [listed] = [s for s in public.get_series() if s.id == series_id]
    assert isinstance(listed, MarketGroup) and listed.market_ids == [first, second]
    assert listed.title == series["title"]
    [grouped] = [e for e in public.get_events() if e.id == event_id]
    assert grouped.market_ids == [first]

    async def read() -> None:
        async with AsyncBallastClient(base_url=server.api) as client:
            assert [m.id for m in await client.get_markets(event=event_id)] == [first]
            assert series_id in {s.id for s in await client.get_series()}
            assert event_id in {e.id for e in await client.get_events()}

    asyncio.run(read())
    public.close()
