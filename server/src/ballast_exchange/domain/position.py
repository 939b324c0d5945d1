"""An account's stake in one market: its signed position and the open orders that may change it.

The reservation rule of DESIGN §3 lives here. An open order reserves what its whole remaining
size could lock, plus its fee; an opposite position covers contracts that would close it
instead of opening. Coverage goes to the orders in book priority (best price first, then
oldest), which is the order they fill in, so one position never covers two orders twice and a
fill never raises what the remaining orders need.
"""

from __future__ import annotations

from .order import Order


def _buy_priority(order: Order) -> tuple[int, int]:
    return (-order.price, order.order_id)


def _sell_priority(order: Order) -> tuple[int, int]:
    return (order.price, order.order_id)


class Position:
    __slots__ = (
        "account_id",
        "buys",
        "collateral",
        "collateral_key",
        "fee_buy",
        "fee_sell",
        "full_buy",
        "full_sell",
        "held_buy",
        "held_sell",
        "market_id",
        "realized_pnl",
        "rem_buy",
        "rem_sell",
        "sells",
        "size",
    )

    def __init__(self, account_id: str, market_id: str, collateral_key: str) -> None:
        self.account_id = account_id
        self.market_id = market_id
        self.collateral_key = collateral_key
        self.size = 0  # signed contracts: negative is short
        self.collateral = 0  # micro-USDC locked behind the position: its cost basis
        self.realized_pnl = 0
        self.buys: dict[int, Order] = {}
        self.sells: dict[int, Order] = {}
        # Reservations currently held in the ledger for each side's open orders.
        self.held_buy = 0
        self.held_sell = 0
        # Running sums over each side's orders: remaining contracts, fee reserve, full need.
        self.rem_buy = 0
        self.rem_sell = 0
        self.fee_buy = 0
        self.fee_sell = 0
        self.full_buy = 0
        self.full_sell = 0

    def add_order(self, order: Order) -> None:
        r = order.remaining
        if order.is_buy:
            self.buys[order.order_id] = order
            self.rem_buy += r
            self.fee_buy += r * order.unit_fee
            self.full_buy += r * (order.unit_fee + order.unit_lock)
        else:
            self.sells[order.order_id] = order
            self.rem_sell += r
            self.fee_sell += r * order.unit_fee
            self.full_sell += r * (order.unit_fee + order.unit_lock)

    def remove_order(self, order: Order) -> None:
        if order.is_buy:
            del self.buys[order.order_id]
        else:
            del self.sells[order.order_id]
        self.shrink_order(order, order.remaining)

    def shrink_order(self, order: Order, quantity: int) -> None:
        """Account for ``quantity`` contracts of ``order`` no longer being open (call first)."""
        if order.is_buy:
            self.rem_buy -= quantity
            self.fee_buy -= quantity * order.unit_fee
            self.full_buy -= quantity * (order.unit_fee + order.unit_lock)
        else:
            self.rem_sell -= quantity
            self.fee_sell -= quantity * order.unit_fee
            self.full_sell -= quantity * (order.unit_fee + order.unit_lock)

    def need(self, is_buy: bool) -> int:
        """What this side's open orders must have reserved, after the position's coverage."""
        size = self.size
        if is_buy:
            cover = -size if size < 0 else 0
            if cover == 0:
                return self.full_buy
            if cover >= self.rem_buy:
                return self.fee_buy
            need = self.fee_buy
            ranked = sorted(self.buys.values(), key=_buy_priority)
        else:
            cover = size if size > 0 else 0
            if cover == 0:
                return self.full_sell
            if cover >= self.rem_sell:
                return self.fee_sell
            need = self.fee_sell
            ranked = sorted(self.sells.values(), key=_sell_priority)
        for order in ranked:
            remaining = order.remaining
            if cover >= remaining:
                cover -= remaining
            else:
                need += (remaining - cover) * order.unit_lock
                cover = 0
        return need

    def open_size(self, is_buy: bool) -> int:
        return self.rem_buy if is_buy else self.rem_sell

    def unrealized_pnl(self, mark: int, floor: int, cap: int, tick_value: int) -> int:
        """What closing at ``mark`` (ticks) would realise: the position's value less its cost."""
        if self.size > 0:
            return (mark - floor) * tick_value * self.size - self.collateral
        if self.size < 0:
            return (cap - mark) * tick_value * -self.size - self.collateral
        return 0

    def average_price_micro(self, floor: int, cap: int, tick_value: int) -> int | None:
        """Average entry price in micro price units, derived from the collateral (cost basis)."""
        if self.size > 0:
            return floor * tick_value + self.collateral // self.size
        if self.size < 0:
            return cap * tick_value - self.collateral // -self.size
        return None
