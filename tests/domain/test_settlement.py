"""Market lifecycle and settlement, with the payout arithmetic written out."""

from __future__ import annotations

import pytest

from ballast_exchange.domain import DomainError, MarketKind, MarketStatus
from ballast_exchange.domain import commands as c

from .scenario import USDC, Scenario, closed

HASH = "ab" * 32
INDEX_TICK = 100_000  # tick 0.1 on a $1-a-point index: 100,000 micro-USDC per tick


def close(s: Scenario) -> None:
    s.run(c.ChangeMarketStatus(s.tick(), "m", MarketStatus.CLOSED))


def settle(s: Scenario, value: int) -> list[object]:
    close(s)
    s.run(c.ProposeSettlement(s.tick(), "m", value, HASH, "ops"))
    return list(s.run(c.FinalizeSettlement(s.tick(), "m")))


def binary_pair() -> Scenario:
    """yes long 100 @ 0.70, no short 100 @ 0.70, both after 10 bps taker fees."""
    s = Scenario(taker_fee_bps=10)
    s.fund("yes", 1_000)
    s.fund("no", 1_000)
    s.buy("yes", 100, 700)  # maker: no fee (maker 0 bps)
    s.sell("no", 100, 700)  # taker: 10 bps of $70 = $0.07
    return s


def test_binary_settles_yes() -> None:
    s = binary_pair()
    settle(s, 1 * USDC)
    assert s.total("yes") == 1_030 * USDC  # paid $70, receives $100
    assert s.total("no") == 970 * USDC - 70_000  # locked $30, receives 0, fee not refunded
    assert s.fees() == 70_000
    assert s.engine.ledger.balance("clearing:m") == 0
    assert s.engine.markets["m"].status is MarketStatus.SETTLED


def test_binary_settles_no() -> None:
    s = binary_pair()
    settle(s, 0)
    assert s.total("yes") == 930 * USDC
    assert s.total("no") == 1_070 * USDC - 70_000
    assert s.reserved("yes") == s.reserved("no") == 0


def test_binary_accepts_only_zero_or_one() -> None:
    s = binary_pair()
    close(s)
    with pytest.raises(DomainError) as error:
        s.run(c.ProposeSettlement(s.tick(), "m", 500_000, HASH, "ops"))
    assert error.value.code == "INVALID_SETTLEMENT"


def index_pair() -> Scenario:
    """A 0–100 index, tick 0.1: long 10 @ 40.0, short 10 @ 40.0."""
    s = Scenario(MarketKind.INDEX, tick_value=INDEX_TICK, floor=0, cap=1_000)
    s.fund("long", 10_000)
    s.fund("short", 10_000)
    s.buy("long", 10, 400)
    s.sell("short", 10, 400)
    # long locks 10 × $40 = $400, short 10 × $60 = $600.
    assert (s.collateral("long"), s.collateral("short")) == (400 * USDC, 600 * USDC)
    return s


def test_index_settles_inside_its_range() -> None:
    s = index_pair()
    settle(s, 57_330_000)  # 57.33: the value need not sit on the tick grid
    # long receives 10 × $57.33, short 10 × $42.67; together the $1,000 locked.
    assert s.total("long") == 10_000 * USDC + 10 * 17_330_000
    assert s.total("short") == 10_000 * USDC - 10 * 17_330_000
    assert s.engine.ledger.balance("clearing:m") == 0


def test_index_outside_its_range_is_clamped() -> None:
    s = index_pair()
    events = settle(s, 130 * USDC)  # reads 130 on a 0–100 index: settles at 100
    finalized = [e for e in events if type(e).__name__ == "SettlementFinalized"]
    assert finalized[0].value == 100 * USDC  # type: ignore[attr-defined]
    assert s.total("long") == 10_600 * USDC
    assert s.total("short") == 9_400 * USDC


def test_overturn_then_repropose() -> None:
    s = binary_pair()
    close(s)
    s.run(c.ProposeSettlement(s.tick(), "m", 0, HASH, "ops"))
    assert s.engine.markets["m"].settlement.value == 0  # type: ignore[union-attr]
    s.run(c.OverturnSettlement(s.tick(), "m", "supervisor"))
    assert s.engine.markets["m"].status is MarketStatus.CLOSED
    assert s.engine.markets["m"].settlement is None
    s.run(c.ProposeSettlement(s.tick(), "m", 1 * USDC, "cd" * 32, "ops"))
    s.run(c.FinalizeSettlement(s.tick(), "m"))
    assert s.total("yes") == 1_030 * USDC


def test_realised_profit_passed_between_traders_still_settles_exactly() -> None:
    s = Scenario()
    for name in ("a", "b", "c"):
        s.fund(name, 1_000)
    s.buy("a", 100, 500)
    s.sell("b", 100, 500)  # a long @ 0.50, b short @ 0.50
    s.buy("c", 100, 700)
    s.sell("a", 100, 700)  # a takes $20 profit; c long @ 0.70
    settle(s, 1 * USDC)
    assert s.total("a") == 1_020 * USDC
    assert s.total("b") == 950 * USDC
    assert s.total("c") == 1_030 * USDC
    assert s.engine.ledger.balance("clearing:m") == 0


def test_closing_cancels_resting_orders_and_stops_trading() -> None:
    s = Scenario()
    s.fund("a", 1_000)
    s.buy("a", 10, 400)
    s.run(c.ChangeMarketStatus(s.tick(), "m", MarketStatus.HALTED))
    with pytest.raises(DomainError) as error:
        s.buy("a", 1, 400)
    assert error.value.code == "MARKET_CLOSED"
    s.run(c.ChangeMarketStatus(s.tick(), "m", MarketStatus.OPEN))
    s.run(c.ChangeMarketStatus(s.tick(), "m", MarketStatus.HALTED))
    events = s.run(c.ChangeMarketStatus(s.tick(), "m", MarketStatus.CLOSED))
    assert list(closed(events).values()) == [("canceled", "market_closed")]
    assert s.reserved("a") == 0
    assert s.book() == ([], [])


def test_trading_stops_at_close_time_even_before_the_close_command() -> None:
    s = Scenario(close_time=1_000)
    s.fund("a", 1_000)
    s.time = 998  # the next order is placed at 999 ms
    s.buy("a", 1, 400)  # at 1,000 ms the cut-off is exact
    with pytest.raises(DomainError) as error:
        s.buy("a", 1, 400)
    assert error.value.code == "MARKET_CLOSED"


@pytest.mark.parametrize(
    ("start", "to"),
    [
        (MarketStatus.OPEN, MarketStatus.PENDING),
        (MarketStatus.OPEN, MarketStatus.SETTLED),
        (MarketStatus.OPEN, MarketStatus.RESOLVING),
        (MarketStatus.CLOSED, MarketStatus.OPEN),
    ],
)
def test_illegal_transitions_are_refused(start: MarketStatus, to: MarketStatus) -> None:
    s = Scenario()
    if start is MarketStatus.CLOSED:
        close(s)
    seq = s.engine.seq
    with pytest.raises(DomainError) as error:
        s.run(c.ChangeMarketStatus(s.tick(), "m", to))
    assert error.value.code == "INVALID_TRANSITION"
    assert s.engine.seq == seq


def test_finalize_needs_a_proposal() -> None:
    s = binary_pair()
    close(s)
    with pytest.raises(DomainError) as error:
        s.run(c.FinalizeSettlement(s.tick(), "m"))
    assert error.value.code == "INVALID_TRANSITION"


def test_finalize_waits_for_the_dispute_window() -> None:
    s = binary_pair()
    close(s)
    proposed_at = s.tick()
    s.run(c.ProposeSettlement(proposed_at, "m", 1 * USDC, HASH, "ops", dispute_window=60_000))
    settlement = s.engine.markets["m"].settlement
    assert settlement is not None and settlement.final_after == proposed_at + 60_000
    with pytest.raises(DomainError) as error:
        s.run(c.FinalizeSettlement(proposed_at + 59_999, "m"))
    assert error.value.code == "INVALID_TRANSITION"
    assert error.value.details["final_after"] == proposed_at + 60_000
    assert s.engine.markets["m"].status is MarketStatus.RESOLVING
    # Still open to dispute inside the window; final from its last millisecond on.
    s.run(c.FinalizeSettlement(proposed_at + 60_000, "m"))
    assert s.engine.markets["m"].status is MarketStatus.SETTLED
    assert s.total("yes") == 1_030 * USDC


def test_a_negative_dispute_window_is_refused() -> None:
    s = binary_pair()
    close(s)
    with pytest.raises(DomainError) as error:
        s.run(c.ProposeSettlement(s.tick(), "m", 0, HASH, "ops", dispute_window=-1))
    assert error.value.code == "INVALID_REQUEST"
    assert s.engine.markets["m"].status is MarketStatus.CLOSED
