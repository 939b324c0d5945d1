"""Trading and account calls through the SDK against a real server."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import httpx

from ballast import (
    BallastClient,
    InsufficientBalanceError,
    InvalidPriceError,
    MarketNotFoundError,
    OrderRequest,
)
from tests.live_server import LiveServer
from tests.sdk.conftest import AccountFactory, ClientFactory, MarketFactory


def test_place_order_and_read_it_back(new_market: MarketFactory, new_client: ClientFactory) -> None:
    market = new_market()
    client = new_client()
    order = client.place_order(
        market_id=market, side="buy", order_type="limit", price=0.87, size=1000
    )
    assert order.id == order.order_id and order.id.startswith("ord_")
    assert (order.status, order.filled_size, order.remaining_size, order.size) == (
        "open",
        0,
        1000,
        1000,
    )
    assert order.price == Decimal("0.87") and isinstance(order.price, Decimal)
    assert (order.side, order.type, order.time_in_force, order.stp) == (
        "buy",
        "limit",
        "GTC",
        "cancel_newest",
    )
    assert order.client_order_id is not None and order.client_order_id.startswith("py-")
    assert order.created_at is not None and order.created_at.tzinfo is not None
    assert order.fills == [] and order.is_open

    again = client.get_order(order.id)
    assert (again.id, again.price, again.status, again.client_order_id) == (
        order.id,
        Decimal("0.87"),
        "open",
        order.client_order_id,
    )
    assert again.extra == {}


def test_fills_positions_balance_and_ledger(
    new_market: MarketFactory, new_client: ClientFactory
) -> None:
    market = new_market(taker_fee_bps=20)
    alice, bob = new_client(), new_client()
    resting = alice.place_order(market, "buy", price="0.87", size=1000)
    taken = bob.place_order(market, "sell", price=Decimal("0.86"), size=400)
    assert (taken.status, taken.filled_size, taken.remaining_size) == ("filled", 400, 0)
    (fill,) = taken.fills
    assert (fill.price, fill.size) == (Decimal("0.87"), 400)
    assert fill.trade_id.startswith("trd_")
    assert fill.fee == Decimal("0.696")  # 20 bps of 400 × 0.87

    order = alice.get_order(resting.id)
    assert (order.status, order.filled_size, order.remaining_size) == ("open", 400, 600)

    (position,) = alice.get_positions()
    assert (position.market_id, position.size) == (market, 400)
    assert position.average_price == Decimal("0.87")
    assert position.margin_used == Decimal("348")
    assert isinstance(position.unrealized_pnl, Decimal)
    assert bob.get_positions()[0].size == -400

    balance = alice.get_balance()
    assert balance.currency == "USDC"
    assert isinstance(balance.available, Decimal)
    assert balance.total_balance == balance.available + balance.reserved == Decimal(10_000)
    # 348 collateral + 600 × 0.87 for the open rest + its 20 bps taker-fee reserve (1.044).
    assert balance.reserved == Decimal("871.044")

    (alice_fill,) = alice.get_fills()
    assert (alice_fill.order_id, alice_fill.side, alice_fill.liquidity) == (
        resting.id,
        "buy",
        "maker",
    )
    assert (alice_fill.price, alice_fill.size) == (Decimal("0.87"), 400)
    assert alice_fill.created_at is not None and alice_fill.created_at.tzinfo is not None
    assert bob.get_fills(market_id=market)[0].liquidity == "taker"
    assert bob.get_fills(start_date=date.today() + timedelta(days=2)) == []

    ledger = bob.get_ledger()
    kinds = {entry.kind for entry in ledger}
    assert "deposit" in kinds or any(e.amount == Decimal(10_000) for e in ledger)
    assert all(isinstance(e.amount, Decimal) and e.created_at is not None for e in ledger)
    assert all(isinstance(e.entry_id, int) for e in ledger)
    first_kind = ledger[-1].kind
    assert all(e.kind == first_kind for e in bob.get_ledger(kind=first_kind))
    assert len(bob.get_ledger(limit=2)) == 2


def test_get_orders_walks_every_page(
    server: LiveServer, new_market: MarketFactory, new_account: AccountFactory
) -> None:
    market = new_market()
    account = new_account()
    sent: list[httpx.Request] = []
    http = httpx.Client(event_hooks={"request": [sent.append]})
    with BallastClient(
        account["api_key"], account["api_secret"], base_url=server.api, http_client=http
    ) as client:
        ids = [client.place_order(market, "buy", price=f"0.1{i}", size=1).id for i in range(7)]
        sent.clear()
        orders = client.get_orders(status="all", page_size=3)
        assert [o.id for o in orders] == list(reversed(ids))  # newest first, each once
        pages = [r for r in sent if r.url.path == "/v1/orders"]
        assert len(pages) == 3
        assert "cursor" not in pages[0].url.params and "cursor" in pages[2].url.params

        sent.clear()
        assert [o.id for o in client.get_orders(status="open", limit=5, page_size=3)] == list(
            reversed(ids)
        )[:5]
        assert [r.url.params["limit"] for r in sent] == ["3", "2"]

        assert [o.id for o in client.get_orders(market_id=market)] == list(reversed(ids))
        today = datetime.now(UTC).date()
        assert len(client.get_orders(start_date=today, end_date=today)) == 7
        assert client.get_orders(end_date=today - timedelta(days=1)) == []
        since = datetime.now(UTC) + timedelta(minutes=5)
        assert client.get_orders(start_date=since) == []
        client.cancel_order(ids[0])
        assert [o.id for o in client.get_orders(status="canceled")] == [ids[0]]
    http.close()


def test_amend_cancel_and_cancel_all(new_market: MarketFactory, new_client: ClientFactory) -> None:
    market, other = new_market(), new_market()
    client = new_client()
    order = client.place_order(market, "buy", price="0.40", size=100)
    smaller = client.amend_order(order.id, size=60)
    assert (smaller.id, smaller.size, smaller.remaining_size, smaller.price) == (
        order.id,
        60,
        60,
        Decimal("0.4"),
    )
    moved = client.amend_order(order.id, price=0.45)
    assert moved.price == Decimal("0.45")
    both = client.amend_order(order.id, price=Decimal("0.44"), size=80)
    assert (both.price, both.size) == (Decimal("0.44"), 80)

    canceled = client.cancel_order(order.id)
    assert (canceled.id, canceled.status, canceled.cancel_reason) == (order.id, "canceled", "user")
    assert canceled.remaining_size == 0

    in_market = [client.place_order(market, "sell", price="0.9", size=1).id for _ in range(2)]
    elsewhere = client.place_order(other, "sell", price="0.9", size=1).id
    result = client.cancel_all(market_id=market)
    assert (sorted(result.canceled), result.count) == (sorted(in_market), 2)
    assert client.get_order(elsewhere).status == "open"
    rest = client.cancel_all()
    assert (rest.canceled, rest.count) == ([elsewhere], 1)
    assert client.cancel_all().count == 0


def test_order_options_reach_the_server(
    new_market: MarketFactory, new_client: ClientFactory
) -> None:
    market = new_market()
    maker, taker = new_client(), new_client()
    expiry = datetime.now(UTC).replace(microsecond=0) + timedelta(hours=2)
    gtd = maker.place_order(
        market,
        "sell",
        price="0.70",
        size=10,
        time_in_force="GTD",
        expire_at=expiry,
        post_only=True,
        stp="cancel_both",
        client_order_id="desk-1:gtd.order_1",
    )
    assert (gtd.time_in_force, gtd.expire_at, gtd.post_only, gtd.stp, gtd.client_order_id) == (
        "GTD",
        expiry,
        True,
        "cancel_both",
        "desk-1:gtd.order_1",
    )
    bought = taker.place_order(market, "buy", order_type="market", size=4)
    assert (bought.type, bought.time_in_force, bought.status, bought.filled_size) == (
        "market",
        "IOC",
        "filled",
        4,
    )
    assert [(f.price, f.size) for f in bought.fills] == [(Decimal("0.7"), 4)]
    closing = taker.place_order(
        market, "sell", price="0.5", size=4, reduce_only=True, time_in_force="IOC"
    )
    assert closing.reduce_only and closing.time_in_force == "IOC"
    assert closing.status in ("canceled", "expired")  # nothing to trade against at 0.5


def test_client_order_id_retry_returns_the_first_order(
    new_market: MarketFactory, new_client: ClientFactory
) -> None:
    market = new_market()
    client = new_client()
    first = client.place_order(market, "buy", price="0.3", size=5, client_order_id="retry-me")
    second = client.place_order(market, "buy", price="0.3", size=5, client_order_id="retry-me")
    assert second.id == first.id
    assert len(client.get_orders(status="all")) == 1


def test_batch_orders_succeed_or_fail_alone(
    new_market: MarketFactory, new_client: ClientFactory
) -> None:
    market = new_market()
    client = new_client(deposit=100)
    results = client.place_orders(
        [
            OrderRequest(market, "buy", price="0.2", size=10),
            {"market_id": market, "side": "buy", "type": "limit", "price": "0.2005", "size": 1},
            {"market_id": market, "side": "buy", "price": 0.5, "size": 1000},
            {"market_id": "no-such-market", "side": "buy", "price": 0.5, "size": 1},
            {
                "market_id": market,
                "side": "sell",
                "price": 0.9,
                "size": 3,
                "client_order_id": "b-1",
            },
        ]
    )
    assert [r.status for r in results] == [201, 400, 400, 404, 201]
    assert [r.ok for r in results] == [True, False, False, False, True]
    assert results[0].order is not None and results[0].order.price == Decimal("0.2")
    assert isinstance(results[1].error, InvalidPriceError)
    assert isinstance(results[2].error, InsufficientBalanceError)
    assert results[2].error.details["available"] == Decimal("98")
    assert isinstance(results[3].error, MarketNotFoundError)
    assert results[4].order is not None and results[4].order.client_order_id == "b-1"
    ids = {r.order.id for r in results if r.order is not None}
    assert {o.id for o in client.get_orders(status="all")} == ids
    # The batch is safe to retry: every order carries a client_order_id.
    again = client.place_orders(
        [{"market_id": market, "side": "sell", "price": 0.9, "size": 3, "client_order_id": "b-1"}]
    )
    assert [(r.status, r.order.id if r.order else None) for r in again] == [
        (200, results[4].order.id)
    ]
