"""Bad commands are refused with the right code and leave the state byte-for-byte unchanged."""

from __future__ import annotations

from typing import Any

import pytest

from ballast_exchange.domain import DomainError, OrderType, Side, TimeInForce, digest
from ballast_exchange.domain import commands as c

from .scenario import USDC, Scenario


def scenario() -> Scenario:
    s = Scenario(min_size=5, max_position=100)
    s.fund("a", 50)
    s.fund("b", 100)
    s.sell("b", 10, 600)  # something on the book, so checks that read it have work to do
    return s


def place(s: Scenario, **fields: Any) -> c.PlaceOrder:
    base: dict[str, Any] = {
        "time": s.tick(),
        "account_id": "a",
        "market_id": "m",
        "side": Side.BUY,
        "size": 10,
        "price": 500,
    }
    base.update(fields)
    return c.PlaceOrder(**base)


CASES: list[tuple[str, dict[str, Any], str]] = [
    ("zero size", {"size": 0}, "INVALID_REQUEST"),
    ("negative size", {"size": -5}, "INVALID_REQUEST"),
    ("fractional size", {"size": 7.5}, "INVALID_REQUEST"),
    ("boolean size", {"size": True}, "INVALID_REQUEST"),
    ("below minimum", {"size": 4}, "ORDER_SIZE_TOO_SMALL"),
    ("price off the grid", {"price": 500.5}, "INVALID_PRICE"),
    ("price as a string", {"price": "500"}, "INVALID_PRICE"),
    ("price at the floor", {"price": 0}, "INVALID_PRICE"),
    ("price at the cap", {"price": 1000}, "INVALID_PRICE"),
    ("price above the cap", {"price": 1500}, "INVALID_PRICE"),
    ("negative price", {"price": -1}, "INVALID_PRICE"),
    ("limit without price", {"price": None}, "INVALID_REQUEST"),
    ("unknown market", {"market_id": "nope"}, "MARKET_NOT_FOUND"),
    ("unknown account", {"account_id": "nobody"}, "ACCOUNT_NOT_FOUND"),
    ("unknown side", {"side": "hold"}, "INVALID_REQUEST"),
    ("unknown type", {"order_type": "stop"}, "INVALID_REQUEST"),
    ("GTD without expiry", {"time_in_force": TimeInForce.GTD}, "INVALID_REQUEST"),
    ("expiry on a GTC order", {"expire_at": 10**12}, "INVALID_REQUEST"),
    ("post-only IOC", {"post_only": True, "time_in_force": TimeInForce.IOC}, "INVALID_REQUEST"),
    ("market GTC", {"order_type": OrderType.MARKET}, "INVALID_REQUEST"),
    ("too expensive", {"size": 90, "price": 990}, "INSUFFICIENT_BALANCE"),
    ("beyond max position", {"size": 101, "price": 1}, "POSITION_LIMIT_EXCEEDED"),
    ("post-only crossing", {"price": 600, "post_only": True}, "POST_ONLY_WOULD_CROSS"),
    ("empty client id", {"client_order_id": ""}, "INVALID_REQUEST"),
]


@pytest.mark.parametrize(
    ("fields", "code"), [(f, code) for _, f, code in CASES], ids=[n for n, _, _ in CASES]
)
def test_bad_orders_are_rejected_without_a_trace(fields: dict[str, Any], code: str) -> None:
    s = scenario()
    before = digest(s.engine)
    with pytest.raises(DomainError) as error:
        s.run(place(s, **fields))
    assert error.value.code == code
    assert digest(s.engine) == before


def test_insufficient_balance_says_what_was_required_and_available() -> None:
    s = scenario()
    with pytest.raises(DomainError) as error:
        s.run(place(s, size=90, price=990))
    # 90 × $0.99 against the $50 deposited.
    assert error.value.details == {"required": 89_100_000, "available": 50 * USDC}


def test_position_limit_counts_open_orders() -> None:
    s = scenario()
    s.run(place(s, size=60, price=100))
    with pytest.raises(DomainError) as error:
        s.run(place(s, size=41, price=100))
    assert error.value.code == "POSITION_LIMIT_EXCEEDED"
    s.run(place(s, size=40, price=100))  # exactly at the limit is fine


@pytest.mark.parametrize(
    ("command", "code"),
    [
        (c.Deposit(1, "a", 0), "INVALID_REQUEST"),
        (c.Deposit(1, "a", -1), "INVALID_REQUEST"),
        (c.Deposit(1, "a", 1.5), "INVALID_REQUEST"),  # type: ignore[arg-type]
        (c.Deposit(1, "ghost", 1), "ACCOUNT_NOT_FOUND"),
        (c.Withdraw(1, "a", 51 * USDC), "INSUFFICIENT_BALANCE"),
        (c.CreateAccount(1, "a"), "ACCOUNT_EXISTS"),
        (c.CancelOrder(1, "a", 999), "ORDER_NOT_FOUND"),
        (c.CancelOrder(1, "a", "1"), "ORDER_NOT_FOUND"),  # type: ignore[arg-type]
        (c.CancelAll(1, "a", "nope"), "MARKET_NOT_FOUND"),
        (c.AmendOrder(1, "a", 999, size=5), "ORDER_NOT_FOUND"),
        (c.ChangeMarketStatus(1, "nope", "open"), "MARKET_NOT_FOUND"),  # type: ignore[arg-type]
        (c.ProposeSettlement(1, "m", 0, "00" * 32, "ops"), "INVALID_TRANSITION"),
        (c.CreateMarket(1, "m", "binary", 1000, 0, 1000, 10), "MARKET_EXISTS"),  # type: ignore[arg-type]
        (c.CreateMarket(1, "x", "binary", 1000, 0, 999, 10), "INVALID_REQUEST"),  # type: ignore[arg-type]
        (c.CreateMarket(1, "x", "index", 1000, 5, 5, 10), "INVALID_REQUEST"),  # type: ignore[arg-type]
        (
            c.CreateMarket(1, "x", "index", 1000, 0, 9, 10, maker_fee_bps=-5, taker_fee_bps=2),  # type: ignore[arg-type]
            "INVALID_REQUEST",
        ),
    ],
)
def test_other_bad_commands(command: c.Command, code: str) -> None:
    s = scenario()
    before = digest(s.engine)
    with pytest.raises(DomainError) as error:
        s.run(command)
    assert error.value.code == code
    assert digest(s.engine) == before


def test_amend_rejections_leave_the_order_exactly_as_it_was() -> None:
    s = scenario()
    events = s.run(place(s, size=10, price=500))
    order_id = events[0].order_id  # type: ignore[attr-defined]
    before = digest(s.engine)
    for fields, code in [
        ({"price": 1000}, "INVALID_PRICE"),
        ({"size": 0}, "INVALID_REQUEST"),
        ({"size": 150, "price": 1}, "POSITION_LIMIT_EXCEEDED"),
        ({"size": 99, "price": 999}, "INSUFFICIENT_BALANCE"),
        ({}, "INVALID_REQUEST"),
    ]:
        with pytest.raises(DomainError) as error:
            s.run(c.AmendOrder(s.tick(), "a", order_id, **fields))
        assert error.value.code == code
        assert digest(s.engine) == before
