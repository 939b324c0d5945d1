"""Worked examples of DESIGN §3: what opening, closing and flipping lock, release and realise.

Binary market, tick 0.001 (1,000 micro-USDC per tick per contract): a price of 600 ticks is
$0.60. A long at p locks p − 0; a short locks 1 − p.
"""

from __future__ import annotations

from .scenario import USDC, Scenario


def test_buy_locks_price_and_short_locks_cap_minus_price() -> None:
    s = Scenario()
    s.fund("alice", 1_000)
    s.fund("bob", 1_000)
    s.buy("alice", 100, 600)  # rests: reserves 100 × $0.60 = $60
    assert s.reserved("alice") == 60 * USDC
    assert s.available("alice") == 940 * USDC

    s.sell("bob", 100, 600)  # takes it: bob short 100 at $0.60, locks 100 × $0.40 = $40
    assert (s.size("alice"), s.size("bob")) == (100, -100)
    assert s.collateral("alice") == 60 * USDC
    assert s.collateral("bob") == 40 * USDC
    # The pair locks exactly cap − floor per contract: $60 + $40 = 100 × $1.
    assert s.engine.markets["m"].open_interest == 100
    assert s.total("alice") == 1_000 * USDC  # nothing realised yet: cost basis is still money
    assert s.available("bob") == 960 * USDC


def test_closing_a_long_releases_collateral_and_realises_pnl() -> None:
    s = Scenario()
    for name in ("alice", "bob", "carol"):
        s.fund(name, 1_000)
    s.buy("alice", 100, 600)
    s.sell("bob", 100, 600)  # alice long 100 @ 0.60 (locks $60)
    s.buy("carol", 100, 700)  # carol bids 0.70
    s.sell("alice", 100, 700)  # alice sells her long into it: no new collateral needed
    assert s.size("alice") == 0
    assert s.collateral("alice") == 0
    # $60 back plus 100 × (0.70 − 0.60) = $10 profit.
    assert s.available("alice") == 1_010 * USDC
    assert s.engine.position("alice", "m").realized_pnl == 10 * USDC  # type: ignore[union-attr]
    # Carol holds the long now, bob still the short: one pair open, $1 a pair in the pot.
    market = s.engine.markets["m"]
    assert market.open_interest == 100
    pot = s.collateral("carol") + s.collateral("bob") + s.engine.ledger.balance("clearing:m")
    assert pot == 100 * USDC


def test_selling_what_you_are_long_needs_no_new_collateral() -> None:
    s = Scenario()
    s.fund("alice", 60)  # exactly enough for 100 @ 0.60
    s.fund("bob", 1_000)
    s.buy("alice", 100, 600)
    s.sell("bob", 100, 600)
    assert s.available("alice") == 0
    s.sell("alice", 100, 900)  # a resting sell covered by the long: reserves nothing
    assert s.available("alice") == 0
    assert s.reserved("alice") == 60 * USDC


def test_one_position_does_not_cover_two_orders() -> None:
    s = Scenario()
    s.fund("alice", 60)
    s.fund("bob", 1_000)
    s.buy("alice", 100, 600)
    s.sell("bob", 100, 600)  # alice long 100, $0 available
    s.sell("alice", 100, 900)  # covered by the long
    # A second sell of the same 100 could open a short. The two sells could lock
    # 100 × $0.10 + 100 × $0.05 = $15; the long covers 100 contracts, credited at the cheaper
    # lock ($0.05, whichever order fills first): $15 − $5 = $10, which she lacks.
    events_before = s.engine.seq
    try:
        s.sell("alice", 100, 950)
    except Exception as error:
        assert getattr(error, "code", None) == "INSUFFICIENT_BALANCE"
        assert error.details == {"required": 10 * USDC, "available": 0}  # type: ignore[attr-defined]
    else:
        raise AssertionError("the long must not cover two orders")
    assert s.engine.seq == events_before


def test_flip_long_to_short_in_one_order() -> None:
    s = Scenario()
    for name in ("alice", "bob", "carol"):
        s.fund(name, 1_000)
    s.buy("alice", 100, 600)
    s.sell("bob", 100, 600)  # alice long 100 @ 0.60
    s.buy("carol", 250, 500)  # carol bids 250 @ 0.50
    s.sell("alice", 250, 500)  # alice sells 250: closes 100, opens 150 short
    assert s.size("alice") == -150
    # Closing: $60 back, 100 × 0.50 paid out → −$10 realised. Opening: 150 × 0.50 = $75 locked.
    assert s.engine.position("alice", "m").realized_pnl == -10 * USDC  # type: ignore[union-attr]
    assert s.collateral("alice") == 75 * USDC
    assert s.available("alice") == (1_000 - 10 - 75) * USDC
    assert s.total("alice") == 990 * USDC


def test_price_improvement_is_refunded_at_the_fill() -> None:
    s = Scenario()
    s.fund("alice", 1_000)
    s.fund("bob", 1_000)
    s.sell("bob", 100, 550)  # resting ask 0.55
    s.buy("alice", 100, 700)  # willing to pay 0.70, reserved $70, fills at 0.55
    assert s.size("alice") == 100
    assert s.collateral("alice") == 55 * USDC
    assert s.reserved("alice") == 55 * USDC  # the $15 difference went straight back
    assert s.available("alice") == 945 * USDC


def test_taker_fee_and_maker_rebate() -> None:
    # Taker pays 20 bps, maker earns a 5 bps rebate, both on fill notional.
    s = Scenario(taker_fee_bps=20, maker_fee_bps=-5)
    s.fund("maker", 1_000)
    s.fund("taker", 1_000)
    s.sell("maker", 1_000, 400)  # ask 1,000 @ 0.40 reserves 1,000 × 0.60 + 20 bps of $400
    assert s.reserved("maker") == 600 * USDC + 800_000
    s.buy("taker", 1_000, 400)
    # Notional $400: taker fee $0.80, maker rebate $0.20, the venue keeps $0.60.
    assert s.available("taker") == (1_000 - 400) * USDC - 800_000
    assert s.available("maker") == (1_000 - 600) * USDC + 200_000
    assert s.fees() == 600_000


def test_fees_round_in_the_venues_favour_and_never_overdraw() -> None:
    # 1 contract at 0.001 with a 10 bps fee: notional 1,000 micro → fee 1 micro (0.999...
    # rounded up), rebate 0 (0.2 micro rounded down).
    s = Scenario(taker_fee_bps=10, maker_fee_bps=-2)
    s.fund("a", 1)
    s.fund("b", 1)
    s.sell("a", 1, 1)
    events = s.buy("b", 1, 1)
    fees = [(e.maker_fee, e.taker_fee) for e in events if type(e).__name__ == "Trade"]
    assert fees == [(0, 1)]
    assert s.fees() == 1
