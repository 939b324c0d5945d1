"""An account's stake in one market: its signed position and the open orders that may change it.

The reservation rule of DESIGN §3 lives here. An open order reserves what its whole remaining
size could lock, plus its fee. An opposite position covers that many contracts, which would
close it instead of opening: if it covers every open contract on the side, only fees are
reserved; otherwise the covered contracts are credited at the side's smallest per-contract lock
(the edge price: lowest buy, highest sell). Crediting the cheapest lock keeps the reservation
sufficient whichever orders fill first and never counts one position for two orders. Each side
keeps its distinct prices sorted, so the edge is read in O(1); a price level that opens or empties
costs a binary search and a list shift over the account's own prices on that side
(docs/adr/0002-reservation-coverage.md).
"""

from __future__ import annotations

from bisect import bisect_left, insort

from .order import Order


class Position:
    __slots__ = (
        "account_id",
        "buy_levels",
        "buy_prices",
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
        "sell_levels",
        "sell_prices",
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
        # price -> [open orders at that price, their per-contract lock], and each side's prices
        # ascending, so the edge (lowest buy, highest sell) is read without a scan.
        self.buy_levels: dict[int, list[int]] = {}
        self.sell_levels: dict[int, list[int]] = {}
        self.buy_prices: list[int] = []
        self.sell_prices: list[int] = []

    def add_order(self, order: Order) -> None:
        r = order.remaining
        levels = self.buy_levels if order.is_buy else self.sell_levels
        level = levels.get(order.price)
        if level is None:
            levels[order.price] = [1, order.unit_lock]
            insort(self.buy_prices if order.is_buy else self.sell_prices, order.price)
        else:
            level[0] += 1
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
            levels, prices = self.buy_levels, self.buy_prices
        else:
            del self.sells[order.order_id]
            levels, prices = self.sell_levels, self.sell_prices
        level = levels[order.price]
        level[0] -= 1
        if not level[0]:
            del levels[order.price]
            del prices[bisect_left(prices, order.price)]
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
            # All buys share the floor, so the lowest price has the smallest lock.
            edge_lock = self.buy_levels[self.buy_prices[0]][1]
            return self.full_buy - cover * edge_lock
        cover = size if size > 0 else 0
        if cover == 0:
            return self.full_sell
        if cover >= self.rem_sell:
            return self.fee_sell
        edge_lock = self.sell_levels[self.sell_prices[-1]][1]
        return self.full_sell - cover * edge_lock

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
