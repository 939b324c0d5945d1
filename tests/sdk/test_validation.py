"""Checks before sending: the SDK refuses what the server would refuse, with the same code,
status and details, without sending the order. Each case is sent both ways and compared."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from ballast import BallastClient, BallastError, InvalidPriceError
from tests.live_server import LiveServer
from tests.sdk.conftest import AccountFactory, MarketFactory

CASES: list[tuple[str, dict[str, Any], dict[str, Any], str]] = [
    # (market kind, market fields, order, expected code)
    ("binary", {}, {"price": "0.8705", "size": 10}, "INVALID_PRICE"),
    ("binary", {}, {"price": 0.3 - 0.1, "size": 10}, "INVALID_PRICE"),  # float noise
    ("binary", {}, {"price": 1.5, "size": 10}, "INVALID_PRICE"),
    ("binary", {}, {"price": 1, "size": 10}, "INVALID_PRICE"),  # the cap itself
    ("binary", {}, {"price": 0, "size": 10}, "INVALID_PRICE"),  # the floor itself
    ("binary", {}, {"price": "-0.1", "size": 10, "side": "sell"}, "INVALID_PRICE"),
    ("binary", {}, {"price": "1e13", "size": 10}, "INVALID_PRICE"),  # beyond any market
    ("index", {}, {"price": "50.05", "size": 1}, "INVALID_PRICE"),
    ("index", {}, {"price": 100, "size": 1}, "INVALID_PRICE"),
    ("index", {"tick_size": "0.5", "floor": "10", "cap": "20"}, {"price": 9.5, "size": 1},
     "INVALID_PRICE"),
    ("binary", {"min_size": 10}, {"price": "0.5", "size": 5}, "ORDER_SIZE_TOO_SMALL"),
    ("binary", {"max_order_size": 100}, {"price": "0.5", "size": 101}, "ORDER_SIZE_TOO_LARGE"),
    ("binary", {}, {"size": 1}, "INVALID_REQUEST"),  # a limit order without a price
    ("binary", {}, {"order_type": "market", "price": 1.5, "size": 1}, "INVALID_PRICE"),
    # Which check comes first, as on the server: the grid, then sizes, then the range.
    ("binary", {"min_size": 10}, {"price": "0.5005", "size": 5}, "INVALID_PRICE"),
    ("binary", {"min_size": 10}, {"price": "1.5", "size": 5}, "ORDER_SIZE_TOO_SMALL"),
]  # fmt: skip


@pytest.fixture
def pair(
    server: LiveServer, new_account: AccountFactory
) -> Iterator[tuple[BallastClient, BallastClient, list[httpx.Request]]]:
    """A checking client (recording its requests) and a non-checking one, same account."""
    account = new_account()
    sent: list[httpx.Request] = []
    http = httpx.Client(event_hooks={"request": [sent.append]})
    key, secret = account["api_key"], account["api_secret"]
    checking = BallastClient(key, secret, base_url=server.api, http_client=http)
    trusting = BallastClient(key, secret, base_url=server.api, validate_orders=False)
    yield checking, trusting, sent
    trusting.close()
    http.close()


@pytest.mark.parametrize(("kind", "fields", "order", "code"), CASES)
def test_local_checks_match_the_server(
    pair: tuple[BallastClient, BallastClient, list[httpx.Request]],
    new_market: MarketFactory,
    kind: str,
    fields: dict[str, Any],
    order: dict[str, Any],
    code: str,
) -> None:
    checking, trusting, sent = pair
    market = new_market(kind, **fields)
    arguments = {"side": "buy", **order}

    with pytest.raises(BallastError) as local:
        checking.place_order(market, **arguments)
    assert not [r for r in sent if r.method == "POST"], "the order was sent"

    with pytest.raises(BallastError) as remote:
        trusting.place_order(market, **arguments)

    assert type(local.value) is type(remote.value)
    assert (local.value.code, local.value.status) == (code, 400)
    assert (remote.value.code, remote.value.status) == (code, 400)
    assert local.value.details == remote.value.details
    assert local.value.message == remote.value.message


def test_rules_are_fetched_once_per_market(
    pair: tuple[BallastClient, BallastClient, list[httpx.Request]], new_market: MarketFactory
) -> None:
    checking, _, sent = pair
    market = new_market()
    checking.place_order(market, "buy", price="0.5", size=1)
    checking.place_order(market, "buy", price="0.51", size=1)
    with pytest.raises(InvalidPriceError):
        checking.place_order(market, "buy", price="0.5101", size=1)
    assert [(r.method, r.url.path) for r in sent] == [
        ("GET", f"/v1/markets/{market}"),
        ("POST", "/v1/orders"),
        ("POST", "/v1/orders"),
    ]


def test_batch_checks_match_the_server(
    pair: tuple[BallastClient, BallastClient, list[httpx.Request]], new_market: MarketFactory
) -> None:
    checking, trusting, _ = pair
    market = new_market(min_size=2)
    orders = [
        {"market_id": market, "side": "buy", "price": "0.25", "size": 2},
        {"market_id": market, "side": "buy", "price": "0.2501", "size": 2},
        {"market_id": market, "side": "buy", "price": "0.25", "size": 1},
        {"market_id": market, "side": "buy", "price": "2", "size": 2},
        {"market_id": "nowhere", "side": "buy", "price": "0.25", "size": 2},
        {"market_id": market, "side": "sell", "price": "0.75", "size": 2},
    ]
    local = checking.place_orders(orders)
    remote = trusting.place_orders(orders)
    assert [r.status for r in local] == [r.status for r in remote] == [201, 400, 400, 400, 404, 201]
    for mine, theirs in zip(local, remote, strict=True):
        if mine.error is None or theirs.error is None:
            assert mine.error is None and theirs.error is None
            continue
        assert type(mine.error) is type(theirs.error)
        assert (mine.error.code, mine.error.details) == (theirs.error.code, theirs.error.details)
