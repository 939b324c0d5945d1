"""Worked examples of DESIGN §4: order types, time in force, flags and amend."""

from __future__ import annotations

import pytest

from ballast_exchange.domain import DomainError, OrderType, TimeInForce
from ballast_exchange.domain import commands as c

from .scenario import USDC, Scenario, closed, order_id, trades


def funded(*names: str) -> Scenario:
    s = Scenario()
    for name in names:
        s.fund(name, 10_000)
    return s


def test_price_time_priority_fifo_at_a_level_then_walk() -> None:
    s = funded("a", "b", "c", "t")
    first = order_id(s.sell("a", 10, 500))
    second = order_id(s.sell("b", 10, 500))
    better = order_id(s.sell("c", 5, 490))
    taker = s.buy("t", 20, 500)
    t = order_id(taker)
    # Best price first, then the older order at the same price.
    assert trades(taker) == [(better, t, 490, 5), (first, t, 500, 10), (second, t, 500, 5)]
    assert s.book() == ([], [(500, 5)])


def test_fok_that_cannot_fill_changes_nothing_but_records_the_order() -> None:
    s = funded("a", "t")
    s.sell("a", 10, 500)
    before = s.available("t")
    events = s.buy("t", 11, 500, time_in_force=TimeInForce.FOK)
    assert trades(events) == []
    assert closed(events) == {order_id(events): ("canceled", "fok_unfilled")}
    assert s.available("t") == before
    assert s.book() == ([], [(500, 10)])
    # Exactly enough: fills completely.
    events = s.buy("t", 10, 500, time_in_force=TimeInForce.FOK)
    assert sum(t[3] for t in trades(events)) == 10


def test_ioc_remainder_is_canceled() -> None:
    s = funded("a", "t")
    s.sell("a", 4, 500)
    events = s.buy("t", 10, 510, time_in_force=TimeInForce.IOC)
    assert sum(t[3] for t in trades(events)) == 4
    assert closed(events)[order_id(events)] == ("canceled", "ioc_remainder")
    assert s.book() == ([], [])
    assert s.reserved("t") == 4 * 500 * 1_000  # only the filled contracts' collateral


def test_post_only_that_would_cross_is_rejected() -> None:
    s = funded("a", "t")
    s.sell("a", 10, 500)
    seq = s.engine.seq
    with pytest.raises(DomainError) as error:
        s.buy("t", 5, 500, post_only=True)
    assert error.value.code == "POST_ONLY_WOULD_CROSS"
    assert s.engine.seq == seq
    s.buy("t", 5, 499, post_only=True)  # below the ask: rests
    assert s.book() == ([(499, 5)], [(500, 10)])


def test_market_order_walks_the_book_and_respects_protection() -> None:
    s = funded("a", "t")
    s.sell("a", 5, 500)
    s.sell("a", 5, 520)
    s.sell("a", 5, 600)
    events = s.buy("t", 20, 520, order_type=OrderType.MARKET)  # protection price 0.52
    assert [(p, q) for _, _, p, q in trades(events)] == [(500, 5), (520, 5)]
    assert closed(events)[order_id(events)] == ("canceled", "ioc_remainder")
    assert s.book() == ([], [(600, 5)])


def test_market_order_is_bounded_by_collateral() -> None:
    s = Scenario()
    s.fund("a", 10_000)
    s.fund("t", 3)  # $3 buys 6 contracts at 0.50
    s.sell("a", 100, 500)
    events = s.buy("t", 100)
    assert sum(t[3] for t in trades(events)) == 6
    assert closed(events)[order_id(events)] == ("canceled", "insufficient_balance")
    assert s.available("t") == 0


def test_market_order_that_cannot_afford_one_contract_is_rejected() -> None:
    s = Scenario()
    s.fund("a", 10_000)
    s.run(c.CreateAccount(s.tick(), "t"))  # no money at all
    s.sell("a", 100, 500)
    with pytest.raises(DomainError) as error:
        s.buy("t", 10)
    assert error.value.code == "INSUFFICIENT_BALANCE"
    assert error.value.details == {"required": 500 * 1_000, "available": 0}


def test_gtd_order_expires_at_its_time_and_never_trades_after() -> None:
    s = funded("a", "t")
    s.sell("a", 10, 500, time_in_force=TimeInForce.GTD, expire_at=s.time + 5)
    assert s.reserved("a") == 10 * 500 * 1_000
    s.time += 10
    # Not yet swept, but due: the buy must not trade with it and it expires on contact.
    events = s.buy("t", 10, 500)
    assert trades(events) == []
    assert ("expired", "expired") in closed(events).values()
    assert s.reserved("a") == 0
    assert s.book() == ([(500, 10)], [])


def test_expiry_sweep_closes_due_orders_only() -> None:
    s = funded("a")
    due = order_id(s.sell("a", 1, 500, time_in_force=TimeInForce.GTD, expire_at=100))
    later = order_id(s.sell("a", 1, 510, time_in_force=TimeInForce.GTD, expire_at=200))
    events = s.run(c.ExpireOrders(150))
    assert closed(events) == {due: ("expired", "expired")}
    assert later in s.engine.orders


def test_expiry_sweep_can_stop_short_of_its_time() -> None:
    """A server catching up after downtime expires what fell due before a market's close."""
    s = funded("a")
    due = order_id(s.sell("a", 1, 500, time_in_force=TimeInForce.GTD, expire_at=100))
    later = order_id(s.sell("a", 1, 510, time_in_force=TimeInForce.GTD, expire_at=200))
    events = s.run(c.ExpireOrders(300, up_to=150))
    assert closed(events) == {due: ("expired", "expired")}
    assert later in s.engine.orders
    with pytest.raises(DomainError):
        s.run(c.ExpireOrders(300, up_to="150"))  # type: ignore[arg-type]


def test_reduce_only_cannot_open_and_is_capped_by_the_position() -> None:
    s = funded("a", "b", "c")
    s.buy("a", 10, 500)
    s.sell("b", 10, 500)  # a long 10
    with pytest.raises(DomainError) as error:
        s.sell("a", 11, 600, reduce_only=True)
    assert error.value.code == "REDUCE_ONLY_WOULD_INCREASE"
    with pytest.raises(DomainError):
        s.buy("a", 1, 400, reduce_only=True)  # buying adds to a long
    ro = order_id(s.sell("a", 10, 600, reduce_only=True))
    s.sell("a", 5, 590)  # an ordinary sell ahead of it in the queue
    events = s.buy("c", 20, 600)
    # 5 @ 0.59 flattens half; the reduce-only order may only close the other 5.
    assert [(p, q) for _, _, p, q in trades(events)] == [(590, 5), (600, 5)]
    assert s.size("a") == 0
    assert s.engine.orders.get(ro) is None


def test_client_order_id_is_unique_among_live_orders() -> None:
    s = funded("a")
    s.buy("a", 1, 400, client_order_id="q-1")
    with pytest.raises(DomainError) as error:
        s.buy("a", 1, 401, client_order_id="q-1")
    assert error.value.code == "DUPLICATE_CLIENT_ORDER_ID"
    s.run(c.CancelAll(s.tick(), "a"))
    s.buy("a", 1, 401, client_order_id="q-1")  # free again once the first is gone


def test_amend_down_keeps_priority_and_reprice_requeues() -> None:
    s = funded("a", "b", "t")
    first = order_id(s.sell("a", 10, 500))
    second = order_id(s.sell("b", 10, 500))
    s.run(c.AmendOrder(s.tick(), "a", first, size=6))  # smaller: stays first
    assert s.book() == ([], [(500, 16)])
    assert s.reserved("a") == 6 * 500 * 1_000
    events = s.buy("t", 6, 500)
    assert trades(events)[0][0] == first
    # Re-price the second away and back: it goes behind anything that arrived meanwhile.
    s.run(c.AmendOrder(s.tick(), "b", second, price=510))
    third = order_id(s.sell("a", 3, 510))
    s.run(c.AmendOrder(s.tick(), "b", second, size=11))  # larger: re-queued too
    events = s.buy("t", 3, 510)
    assert trades(events)[0][0] == third


def test_amend_to_a_crossing_price_trades() -> None:
    s = funded("a", "b")
    s.sell("a", 5, 500)
    bid = order_id(s.buy("b", 5, 450))
    events = s.run(c.AmendOrder(s.tick(), "b", bid, price=500))
    assert [(p, q) for _, _, p, q in trades(events)] == [(500, 5)]
    assert closed(events)[bid] == ("filled", None)


def test_cancel_returns_the_reservation_and_unknown_orders_are_not_found() -> None:
    s = funded("a", "b")
    bid = order_id(s.buy("a", 10, 450))
    with pytest.raises(DomainError) as error:
        s.run(c.CancelOrder(s.tick(), "b", bid))  # someone else's order
    assert error.value.code == "ORDER_NOT_FOUND"
    events = s.run(c.CancelOrder(s.tick(), "a", bid))
    assert closed(events) == {bid: ("canceled", "user")}
    assert s.available("a") == 10_000 * USDC
    with pytest.raises(DomainError):
        s.run(c.CancelOrder(s.tick(), "a", bid))


def test_cancel_all_optionally_per_market() -> None:
    s = funded("a")
    s.run(c.CreateMarket(s.tick(), "n", s.engine.markets["m"].kind, 1_000, 0, 1_000, 10**13))
    s.run(c.ChangeMarketStatus(s.tick(), "n", "open"))  # type: ignore[arg-type]
    s.buy("a", 1, 400)
    s.run(c.PlaceOrder(s.tick(), "a", "n", "buy", 1, 400))  # type: ignore[arg-type]
    events = s.run(c.CancelAll(s.tick(), "a", "m"))
    assert len(closed(events)) == 1
    assert len(s.engine.orders) == 1
    s.run(c.CancelAll(s.tick(), "a"))
    assert s.engine.orders == {}
    assert s.reserved("a") == 0
