"""Self-trade prevention: the incoming order's mode decides what happens when it meets its own."""

from __future__ import annotations

from ballast_exchange.domain import SelfTradePrevention as Stp

from .scenario import Scenario, closed, order_id, trades


def setup() -> tuple[Scenario, int, int]:
    """Own ask 5 @ 0.50 at the front, someone else's 5 @ 0.50 behind it."""
    s = Scenario()
    s.fund("me", 10_000)
    s.fund("other", 10_000)
    own = order_id(s.sell("me", 5, 500))
    theirs = order_id(s.sell("other", 5, 500))
    return s, own, theirs


def test_cancel_newest_stops_the_incoming_order() -> None:
    s, own, _ = setup()
    events = s.buy("me", 8, 500, stp=Stp.CANCEL_NEWEST)
    assert trades(events) == []
    assert closed(events) == {order_id(events): ("canceled", "self_trade")}
    assert own in s.engine.orders
    assert s.book() == ([], [(500, 10)])


def test_cancel_oldest_removes_the_resting_order_and_keeps_matching() -> None:
    s, own, theirs = setup()
    events = s.buy("me", 8, 500, stp=Stp.CANCEL_OLDEST)
    taker = order_id(events)
    assert closed(events)[own] == ("canceled", "self_trade")
    assert trades(events) == [(theirs, taker, 500, 5)]
    assert s.book() == ([(500, 3)], [])  # the rest of the incoming order rests


def test_cancel_both() -> None:
    s, own, _ = setup()
    events = s.buy("me", 8, 500, stp=Stp.CANCEL_BOTH)
    assert closed(events) == {
        own: ("canceled", "self_trade"),
        order_id(events): ("canceled", "self_trade"),
    }
    assert s.book() == ([], [(500, 5)])


def test_decrement_shrinks_both_by_the_overlap_without_trading() -> None:
    s, own, theirs = setup()
    events = s.buy("me", 8, 500, stp=Stp.DECREMENT)
    taker = order_id(events)
    # Own 5 and incoming 8 overlap by 5: own order gone, incoming down to 3, which then trades.
    assert closed(events)[own] == ("canceled", "self_trade")
    assert trades(events) == [(theirs, taker, 500, 3)]
    assert closed(events)[taker] == ("filled", None)
    assert s.book() == ([], [(500, 2)])
    assert s.size("me") == 3
