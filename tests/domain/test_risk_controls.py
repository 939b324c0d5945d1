"""The dead-man switch's cancel reason and an order's place in its level's queue."""

from __future__ import annotations

import pytest

from ballast_exchange.domain import CancelReason, DomainError
from ballast_exchange.domain import commands as c

from .scenario import Scenario, closed, order_id


def funded(*names: str) -> Scenario:
    s = Scenario()
    for name in names:
        s.fund(name, 10_000)
    return s


def test_a_cancel_may_say_the_heartbeat_expired() -> None:
    s = funded("a")
    resting = order_id(s.buy("a", 10, 400))
    events = s.run(c.CancelOrder(s.tick(), "a", resting, CancelReason.HEARTBEAT_EXPIRED))
    assert closed(events) == {resting: ("canceled", "heartbeat_expired")}
    other = order_id(s.buy("a", 10, 400))
    # The engine's own reasons stay its own.
    with pytest.raises(DomainError) as refused:
        s.run(c.CancelOrder(s.tick(), "a", other, CancelReason.EXPIRED))
    assert refused.value.code == "INVALID_REQUEST"


def test_queue_ahead_counts_older_orders_at_the_same_price() -> None:
    s = funded("a", "b", "c", "t")
    first = order_id(s.sell("a", 10, 500))
    second = order_id(s.sell("b", 7, 500))
    third = order_id(s.sell("c", 3, 500))
    elsewhere = order_id(s.sell("a", 4, 510))
    book = s.engine.markets["m"].book
    assert book.queue_ahead(False, 500, first) == (0, 0)
    assert book.queue_ahead(False, 500, second) == (10, 1)
    assert book.queue_ahead(False, 500, third) == (17, 2)
    assert book.queue_ahead(False, 510, elsewhere) == (0, 0)
    assert book.queue_ahead(True, 500, first) is None  # not on that side
    assert book.queue_ahead(False, 510, first) is None  # not at that price
    # A partial fill of the head shrinks what is ahead; a cancel moves the queue up.
    s.buy("t", 4, 500)
    assert book.queue_ahead(False, 500, third) == (13, 2)
    s.run(c.CancelOrder(s.tick(), "b", second))
    assert book.queue_ahead(False, 500, third) == (6, 1)
    assert book.queue_ahead(False, 500, second) is None
