"""Portfolio history through the SDK, sync and async, against a real server: settled
positions, the positions list by status, and fees and rebates per period."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import pytest

from ballast import AsyncBallastClient, BallastClient, FeePeriod, Position, SettledPosition
from tests.live_server import NO_LIMITS, LiveServer, live_server
from tests.sdk.conftest import unique
from tests.signed_client import Admin

EVIDENCE = {"source": "Suez Canal Authority", "transits": 1204}


@pytest.fixture(scope="module")
def venue(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[LiveServer, Admin]]:
    data_dir: Path = tmp_path_factory.mktemp("history") / "var"
    # No dispute window: a proposal is final at once.
    with live_server(data_dir, dispute_window_s=0, **NO_LIMITS) as live:
        admin = Admin(live.api, live.admin_token)
        yield live, admin
        admin.http.close()


def settled_pair(server: LiveServer, admin: Admin) -> tuple[str, BallastClient, BallastClient]:
    """A market where the long bought 10 at 0.6 as maker from the short, settled YES (the
    clients carry their ``secret`` for tests that reconnect)."""
    market_id = unique("suez")
    admin.market(market_id, taker_fee_bps=100, maker_fee_bps=-20)
    clients = []
    for _ in range(2):
        account = admin.post("/accounts", {"name": unique("trader"), "deposit": 1_000})
        client = BallastClient(account["api_key"], account["api_secret"], base_url=server.api)
        client.secret = account["api_secret"]  # type: ignore[attr-defined]
        clients.append(client)
    long, short = clients
    long.place_order(market_id, "buy", "limit", "0.6", size=10)
    assert short.place_order(market_id, "sell", "limit", "0.6", size=10).filled_size == 10
    admin.post(f"/markets/{market_id}/close")
    admin.post(f"/markets/{market_id}/settlement/propose", {"value": 1, "evidence": EVIDENCE})
    admin.post(f"/markets/{market_id}/settlement/finalize")
    return market_id, long, short


def test_sync_client_reads_the_history(venue: tuple[LiveServer, Admin]) -> None:
    market_id, long, short = settled_pair(*venue)
    with long, short:
        [won] = long.get_settlements()
        assert isinstance(won, SettledPosition)
        assert (won.market_id, won.final_value, won.size) == (market_id, Decimal(1), 10)
        assert (won.cost_basis, won.payout, won.settlement_pnl) == (
            Decimal(6),
            Decimal(10),
            Decimal(4),
        )
        assert won.settled_at is not None and won.settled_at.tzinfo is not None
        [lost] = short.get_settlements(market_id=market_id)
        assert (lost.size, lost.payout, lost.realized_pnl) == (-10, Decimal(0), Decimal(-4))

        assert long.get_positions() == []
        [settled] = long.get_positions("settled")
        assert isinstance(settled, Position)
        assert (settled.status, settled.size, settled.payout) == ("settled", 10, Decimal(10))
        assert long.get_positions("all") == [settled]

        today = datetime.now(UTC).date()
        [day] = short.get_fees(start_date=today)
        assert isinstance(day, FeePeriod)
        assert day.period_start.date() == today
        assert (day.fees_paid, day.rebates_earned, day.fee_count) == (Decimal("0.06"), 0, 1)
        [month] = long.get_fees(period="month")
        assert month.period_start.day == 1
        assert (month.rebates_earned, month.net_fees) == (Decimal("0.012"), Decimal("-0.012"))


def test_async_client_reads_the_history(venue: tuple[LiveServer, Admin]) -> None:
    server, admin = venue
    market_id, long, short = settled_pair(server, admin)
    long.close()
    short.close()

    async def read() -> None:
        secret = long.secret  # type: ignore[attr-defined]
        async with AsyncBallastClient(long.api_key, secret, base_url=server.api) as c:
            [won] = await c.get_settlements(limit=1)
            assert (won.market_id, won.payout) == (market_id, Decimal(10))
            [settled] = await c.get_positions("settled")
            assert settled.settled_at == won.settled_at
            assert [p.status for p in await c.get_positions("all")] == ["settled"]
            [day] = await c.get_fees()
            assert day.rebates_earned == Decimal("0.012")

    asyncio.run(read())
