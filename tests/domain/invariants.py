"""DESIGN §3's invariants, checked from the outside of the engine.

Everything here reads the engine's state (books, orders, positions, ledger balances) and
recomputes what it should be independently: nothing calls the engine's own reservation code
(``Position.need``, ``Market.fee_reserve_per_contract`` and friends), so a bug there cannot
hide itself.

Reservations: DESIGN §3 says an opposite position covers open orders "without counting the
same position twice" but not which orders it covers. Two rules are written here: ``priority``
(coverage to orders in book priority, the order they fill in: the least an account can hold)
and ``edge`` (ADR 0002: covered contracts credited at the side's smallest lock), which the
engine implements. Held amounts must equal the chosen rule exactly and never fall below
``priority``.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterable

from ballast_exchange.domain import Engine, MarketStatus, OrderStatus, Side
from ballast_exchange.domain.market import Market
from ballast_exchange.domain.order import Order

BPS = 10_000
EXTERNAL = "external"
# Once a market is closed its book must be empty (closing cancels every open order).
_NO_TRADING = (MarketStatus.CLOSED, MarketStatus.RESOLVING, MarketStatus.SETTLED)


def fee_reserve_per_contract(market: Market, price: int) -> int:
    """ceil(price × tick_value × max(maker, taker, 0) / 10⁴): an order may end either way."""
    bps = max(market.maker_fee_bps, market.taker_fee_bps, 0)
    return -(-price * market.tick_value * bps // BPS)


def lock_per_contract(market: Market, is_buy: bool, price: int) -> int:
    """What one contract opened at ``price`` locks: p − floor long, cap − p short."""
    ticks = price - market.floor if is_buy else market.cap - price
    return ticks * market.tick_value


def priority_need(market: Market, orders: Iterable[Order], is_buy: bool, size: int) -> int:
    """The book-priority rule for one account's orders on one side of one market.

    Each order reserves remaining × (lock + fee reserve); an opposite position covers the lock
    of contracts that would close it, and coverage goes to orders in book priority (best price,
    then lowest id), the order they fill in, so one position never covers two orders.
    """
    cover = max(-size, 0) if is_buy else max(size, 0)
    if is_buy:
        ranked = sorted(orders, key=lambda o: (-o.price, o.order_id))
    else:
        ranked = sorted(orders, key=lambda o: (o.price, o.order_id))
    need = 0
    for order in ranked:
        covered = min(cover, order.remaining)
        cover -= covered
        need += order.remaining * fee_reserve_per_contract(market, order.price)
        need += (order.remaining - covered) * lock_per_contract(market, is_buy, order.price)
    return need


def edge_need(market: Market, orders: Iterable[Order], is_buy: bool, size: int) -> int:
    """ADR 0002's rule: the covered contracts are credited at the side's smallest lock.

    No cover: every order's full lock plus fee reserve. Cover of everything open: fees only.
    Otherwise: full − cover × the smallest per-contract lock among the side's orders (lowest
    buy, highest sell). Never below ``priority_need``, so it is always enough.
    """
    cover = max(-size, 0) if is_buy else max(size, 0)
    orders = list(orders)
    fees = sum(o.remaining * fee_reserve_per_contract(market, o.price) for o in orders)
    locks = [lock_per_contract(market, is_buy, o.price) for o in orders]
    full = fees + sum(o.remaining * lock for o, lock in zip(orders, locks, strict=True))
    open_contracts = sum(o.remaining for o in orders)
    if cover == 0:
        return full
    if cover >= open_contracts:
        return fees
    return full - cover * min(locks)


# What an account's orders must have reserved, by coverage rule (see the module docstring;
# docs/adr/0002-reservation-coverage.md chose "edge").
COVERAGE_RULES: dict[str, Callable[[Market, Iterable[Order], bool, int], int]] = {
    "edge": edge_need,
    "priority": priority_need,
}


def _book_orders(market: Market) -> list[Order]:
    """Every order resting in the book, read straight from the level dicts."""
    book = market.book
    return [
        o for levels in (book.bids, book.asks) for lv in levels.values() for o in lv.orders.values()
    ]


def _check_book(engine: Engine, market: Market) -> list[Order]:
    """Level structure, quantity conservation and no crossing; returns the resting orders."""
    mid = market.market_id
    book = market.book
    for is_buy, levels in ((True, book.bids), (False, book.asks)):
        for price, level in levels.items():
            assert level.price == price, (mid, price, level.price)
            assert level.orders, f"{mid}: empty level left at {price}"
            total = 0
            for order_id, order in level.orders.items():
                assert order.order_id == order_id
                assert order.market_id == mid
                assert order.is_buy is is_buy and order.side is (Side.BUY if is_buy else Side.SELL)
                assert order.price == price, (order, price)
                assert market.floor < order.price < market.cap, order
                assert order.status is OrderStatus.OPEN, order
                assert order.remaining > 0, f"{mid}: resting order with nothing left: {order}"
                assert order.filled >= 0, order
                assert order.filled + order.remaining == order.size, (
                    f"{mid}: filled {order.filled} + remaining {order.remaining}"
                    f" != size {order.size} for {order}"
                )
                assert engine.orders.get(order_id) is order, f"{order} rests but is not live"
                total += order.remaining
            assert level.total == total, f"{mid} {price}: level total {level.total} != {total}"
    # The best-price accessors must agree with the levels they summarise.
    assert book.best_bid() == (max(book.bids) if book.bids else None), mid
    assert book.best_ask() == (min(book.asks) if book.asks else None), mid
    bid, ask = book.best_bid(), book.best_ask()
    assert bid is None or ask is None or bid < ask, f"{mid}: book crossed, bid {bid} >= ask {ask}"
    orders = _book_orders(market)
    if market.status in _NO_TRADING:
        assert not orders, f"{mid} is {market.status} but still has orders: {orders}"
    return orders


def check_invariants(
    engine: Engine, deposits_minus_withdrawals: int, *, coverage: str = "edge"
) -> None:
    """Assert every invariant of DESIGN §3 on ``engine``'s current state.

    ``coverage`` names the reservation rule held amounts must equal exactly (see
    ``COVERAGE_RULES``); whatever the rule, no side may hold less than ``priority_need``.
    """
    rule = COVERAGE_RULES[coverage]
    balances = engine.ledger.balances

    # ---- ledger: double entry sums to zero; what is inside is what came in less what left.
    assert sum(balances.values()) == 0, f"ledger sums to {sum(balances.values())}"
    inside = sum(v for k, v in balances.items() if k != EXTERNAL)
    assert inside == deposits_minus_withdrawals, (
        f"ledger holds {inside}, deposits - withdrawals is {deposits_minus_withdrawals}"
    )
    for key, value in balances.items():
        if key.startswith(("cash:", "orders:", "collateral:", "fees:")):
            assert value >= 0, f"{key} is negative: {value}"
    for account_id in engine.accounts:
        assert engine.available(account_id) >= 0, f"{account_id} available < 0"

    # ---- books, and the live orders they hold.
    resting: list[Order] = []
    for market in engine.markets.values():
        resting.extend(_check_book(engine, market))
    live_ids = sorted(o.order_id for o in resting)
    assert live_ids == sorted(engine.orders), (
        f"live orders {sorted(engine.orders)} but resting {live_ids}"
    )

    # ---- reservations: what is held equals what the open orders need (recomputed here).
    by_stake: dict[tuple[str, str, bool], list[Order]] = defaultdict(list)
    for order in resting:
        by_stake[(order.account_id, order.market_id, order.is_buy)].append(order)
    expected_orders: dict[str, int] = defaultdict(int)
    held_orders: dict[str, int] = defaultdict(int)
    for market in engine.markets.values():
        mid = market.market_id
        for account_id, position in market.positions.items():
            assert position.account_id == account_id and position.market_id == mid
            assert engine.accounts[account_id].positions.get(mid) is position
            for is_buy, held, registered in (
                (True, position.held_buy, position.buys),
                (False, position.held_sell, position.sells),
            ):
                orders = by_stake.pop((account_id, mid, is_buy), [])
                assert sorted(registered) == sorted(o.order_id for o in orders), (
                    f"{account_id}/{mid}: position lists {sorted(registered)}, book has"
                    f" {[o.order_id for o in orders]}"
                )
                need = rule(market, orders, is_buy, position.size)
                floor = priority_need(market, orders, is_buy, position.size)
                side = "buy" if is_buy else "sell"
                what = f"{account_id}/{mid} {side} (position {position.size}, orders {orders})"
                assert held >= floor, f"{what}: held {held} < the least sound reservation {floor}"
                assert held == need, f"{what}: held {held}, {coverage} rule needs {need}"
                expected_orders[account_id] += need
                held_orders[account_id] += held
    assert not by_stake, f"orders without a position: {dict(by_stake)}"
    for account_id in engine.accounts:
        key = f"orders:{account_id}"
        assert balances.get(key, 0) == held_orders[account_id] == expected_orders[account_id], (
            f"{key} = {balances.get(key, 0)}, positions hold {held_orders[account_id]},"
            f" open orders need {expected_orders[account_id]}"
        )

    # ---- collateral: per market it holds exactly open interest × (cap − floor).
    collateral_by_market: dict[str, int] = defaultdict(int)
    for key, value in balances.items():
        if key.startswith("collateral:"):
            collateral_by_market[key.rsplit(":", 1)[1]] += value
    for market in engine.markets.values():
        mid = market.market_id
        longs = sum(p.size for p in market.positions.values() if p.size > 0)
        shorts = sum(-p.size for p in market.positions.values() if p.size < 0)
        assert market.open_interest == longs == shorts, (
            f"{mid}: open interest {market.open_interest}, longs {longs}, shorts {shorts}"
        )
        for account_id, position in market.positions.items():
            key = f"collateral:{account_id}:{mid}"
            assert balances.get(key, 0) == position.collateral, (
                f"{key} = {balances.get(key, 0)} but the position says {position.collateral}"
            )
            assert position.size != 0 or position.collateral == 0, (
                f"{account_id}/{mid}: flat position keeps collateral {position.collateral}"
            )
        locked = collateral_by_market[mid] + balances.get(f"clearing:{mid}", 0)
        full = market.open_interest * (market.cap - market.floor) * market.tick_value
        assert locked == full, f"{mid}: collateral + clearing = {locked}, OI × range = {full}"
        if market.status is MarketStatus.SETTLED:
            for key, value in balances.items():
                if key == f"clearing:{mid}" or (
                    key.startswith("collateral:") and key.endswith(f":{mid}")
                ):
                    assert value == 0, f"{mid} settled but {key} = {value}"
            for position in market.positions.values():
                assert position.size == 0, f"{mid} settled but {position.account_id} holds"
        assert balances.get(f"fees:{mid}", 0) >= 0, f"fees:{mid} negative"
