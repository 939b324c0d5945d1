"""Portfolio history over real HTTP: a settled position stays in the account's history
(``GET /v1/settlements``, ``GET /v1/positions?status=settled|all``), and fees paid and rebates
earned are summarised per day or month (``GET /v1/account/fees``)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.live_server import LiveServer, live_server
from tests.signed_client import Admin, SignedClient

EVIDENCE = {"source": "Suez Canal Authority", "transits": 1_204}


@pytest.fixture
def server(tmp_path: Path, database_url: str) -> Iterator[LiveServer]:
    # No dispute window: a proposal can be finalized at once.
    with live_server(tmp_path / "var", database_url=database_url, dispute_window_s=0) as live:
        yield live


def ok(response: httpx.Response) -> dict[str, Any]:
    assert response.status_code == 200, response.text
    data: dict[str, Any] = response.json()
    return data


def trade(admin: Admin, market_id: str, buyer: SignedClient, seller: SignedClient) -> None:
    """The buyer rests 10 at 0.6 (maker); the seller takes them (taker)."""
    resting = {"market_id": market_id, "side": "buy", "type": "limit", "price": "0.6", "size": 10}
    assert buyer.post("/orders", resting).status_code in (200, 201)
    taking = {**resting, "side": "sell"}
    placed = seller.post("/orders", taking)
    assert placed.status_code in (200, 201), placed.text
    assert placed.json()["filled_size"] == 10


def settle(admin: Admin, market_id: str, value: int) -> None:
    admin.post(f"/markets/{market_id}/close")
    admin.post(f"/markets/{market_id}/settlement/propose", {"value": value, "evidence": EVIDENCE})
    admin.post(f"/markets/{market_id}/settlement/finalize")


def test_a_settled_position_stays_in_the_history(server: LiveServer, admin: Admin) -> None:
    admin.market("suez", taker_fee_bps=100, maker_fee_bps=-20)
    alice, bob = admin.account("alice"), admin.account("bob")
    trade(admin, "suez", alice, bob)
    [held] = ok(alice.get("/positions"))["positions"]
    assert (held["market_id"], held["size"]) == ("suez", 10)
    assert "status" not in held  # the default answer is as it was
    [listed] = ok(alice.get("/positions?status=all"))["positions"]
    assert listed == {**held, "status": "open"}
    assert ok(alice.get("/settlements")) == {"settlements": [], "next_cursor": None}

    settle(admin, "suez", 1)  # YES: the long is paid 1 per contract, the short nothing

    assert ok(alice.get("/positions")) == {"positions": []}
    [won] = ok(alice.get("/settlements"))["settlements"]
    assert won["market_id"] == "suez" and won["final_value"] == 1.0
    assert won["size"] == 10
    assert won["cost_basis"] == 6.0 and won["payout"] == 10.0
    assert won["settlement_pnl"] == 4.0 and won["realized_pnl"] == 4.0
    assert won["settled_at"].endswith("Z")
    [lost] = ok(bob.get("/settlements"))["settlements"]
    assert (lost["size"], lost["cost_basis"], lost["payout"]) == (-10, 4.0, 0.0)
    assert lost["settlement_pnl"] == -4.0 and lost["realized_pnl"] == -4.0

    [settled] = ok(alice.get("/positions?status=settled"))["positions"]
    assert settled["status"] == "settled" and settled["size"] == 10
    assert settled["average_price"] == 0.6 and settled["current_price"] == 1.0
    assert settled["payout"] == 10.0 and settled["unrealized_pnl"] == 0.0
    assert settled["margin_used"] == 0.0 and settled["realized_pnl"] == 4.0
    [short] = ok(bob.get("/positions?status=settled"))["positions"]
    assert short["size"] == -10 and short["average_price"] == 0.6
    every = ok(alice.get("/positions?status=all"))
    assert [p["status"] for p in every["positions"]] == ["settled"]
    alice.close()
    bob.close()


def test_settlements_page_and_filter(server: LiveServer, admin: Admin) -> None:
    alice, bob = admin.account("alice"), admin.account("bob")
    for market_id in ("m1", "m2", "m3"):
        admin.market(market_id)
        trade(admin, market_id, alice, bob)
    admin.market("live")
    trade(admin, "live", alice, bob)
    for market_id in ("m1", "m2", "m3"):
        settle(admin, market_id, 0)

    first = ok(alice.get("/settlements?limit=2"))
    assert [s["market_id"] for s in first["settlements"]] == ["m3", "m2"]
    rest = ok(alice.get(f"/settlements?limit=2&cursor={first['next_cursor']}"))
    assert [s["market_id"] for s in rest["settlements"]] == ["m1"]
    assert rest["next_cursor"] is None
    assert [s["market_id"] for s in ok(alice.get("/settlements?market_id=m2"))["settlements"]] == [
        "m2"
    ]
    assert all(s["payout"] == 0.0 and s["realized_pnl"] == -6.0 for s in first["settlements"])

    every = ok(alice.get("/positions?status=all&limit=2"))
    assert [(p["market_id"], p["status"]) for p in every["positions"]] == [
        ("live", "open"),
        ("m3", "settled"),
        ("m2", "settled"),
    ]
    more = ok(alice.get(f"/positions?status=all&limit=2&cursor={every['next_cursor']}"))
    assert [(p["market_id"], p["status"]) for p in more["positions"]] == [("m1", "settled")]

    for path, code in (
        ("/settlements?market_id=nope", "MARKET_NOT_FOUND"),
        ("/settlements?cursor=bogus", "INVALID_REQUEST"),
        ("/positions?status=closed", "INVALID_REQUEST"),
        (
            f"/settlements?cursor={ok(alice.get('/fills?limit=1'))['next_cursor']}",
            "INVALID_REQUEST",
        ),
    ):
        response = alice.get(path)
        assert response.status_code in (400, 404), (path, response.text)
        assert response.json()["error"]["code"] == code, path
    alice.close()
    bob.close()


def test_fees_and_rebates_per_period(server: LiveServer, admin: Admin) -> None:
    admin.market("suez", taker_fee_bps=100, maker_fee_bps=-20)
    alice, bob = admin.account("alice"), admin.account("bob")
    trade(admin, "suez", alice, bob)
    trade(admin, "suez", alice, bob)
    today = datetime.now(UTC).strftime("%Y-%m-%d")

    taker = ok(bob.get("/account/fees"))
    assert taker["period"] == "day" and taker["next_cursor"] is None
    [day] = taker["periods"]
    assert day["period_start"] == f"{today}T00:00:00.000Z"
    # 1% of 10 × 0.6 per fill, twice; the taker earns no rebate.
    assert (day["fees_paid"], day["rebates_earned"], day["net_fees"]) == (0.12, 0.0, 0.12)
    assert (day["fee_count"], day["rebate_count"]) == (2, 0)
    ledger = ok(bob.get("/account/ledger?kind=fee"))["entries"]
    assert sum(e["amount"] for e in ledger) == pytest.approx(day["fees_paid"])

    maker = ok(alice.get("/account/fees?period=month"))
    [month] = maker["periods"]
    assert month["period_start"] == f"{today[:8]}01T00:00:00.000Z"
    assert month["period_end"] > month["period_start"]
    assert (month["fees_paid"], month["rebates_earned"], month["net_fees"]) == (0.0, 0.024, -0.024)
    assert month["rebate_count"] == 2

    assert ok(bob.get("/account/fees?end_date=2020-01-01"))["periods"] == []
    assert len(ok(bob.get(f"/account/fees?start_date={today}"))["periods"]) == 1
    bad = bob.get("/account/fees?period=week")
    assert bad.status_code == 400 and bad.json()["error"]["code"] == "INVALID_REQUEST"
    alice.close()
    bob.close()
