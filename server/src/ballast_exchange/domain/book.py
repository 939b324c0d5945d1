"""One market's order book: price levels in price-time priority.

Each level is an insertion-ordered dict of orders, so time priority is iteration order and a
cancel by id is O(1). The sorted price lists keep the best price at their end, so the touch is
read and popped without scanning.
"""

from __future__ import annotations

from bisect import bisect_left, insort
from collections.abc import Iterator

from .order import Order


class PriceLevel:
    __slots__ = ("orders", "price", "total")

    def __init__(self, price: int) -> None:
        self.price = price
        self.orders: dict[int, Order] = {}
        self.total = 0


class Book:
    __slots__ = ("_ask_keys", "_bid_keys", "asks", "bids", "touched")

    def __init__(self) -> None:
        self.bids: dict[int, PriceLevel] = {}
        self.asks: dict[int, PriceLevel] = {}
        # Bid prices ascending; ask prices negated and ascending: the best is always last.
        self._bid_keys: list[int] = []
        self._ask_keys: list[int] = []
        # (is_buy, price) of levels changed since the engine last flushed them, in order.
        self.touched: dict[tuple[bool, int], None] = {}

    def best_bid(self) -> int | None:
        return self._bid_keys[-1] if self._bid_keys else None

    def best_ask(self) -> int | None:
        return -self._ask_keys[-1] if self._ask_keys else None

    def add(self, order: Order) -> None:
        price = order.price
        if order.is_buy:
            levels, keys, key = self.bids, self._bid_keys, price
        else:
            levels, keys, key = self.asks, self._ask_keys, -price
        level = levels.get(price)
        if level is None:
            level = levels[price] = PriceLevel(price)
            insort(keys, key)
        level.orders[order.order_id] = order
        level.total += order.remaining
        self.touched[(order.is_buy, price)] = None

    def remove(self, order: Order) -> None:
        """Take a resting order out of the book (its ``remaining`` is left as it is)."""
        price = order.price
        is_buy = order.is_buy
        levels = self.bids if is_buy else self.asks
        level = levels[price]
        del level.orders[order.order_id]
        level.total -= order.remaining
        if not level.orders:
            del levels[price]
            keys = self._bid_keys if is_buy else self._ask_keys
            key = price if is_buy else -price
            if keys[-1] == key:
                keys.pop()
            else:
                del keys[bisect_left(keys, key)]
        self.touched[(is_buy, price)] = None

    def reduce(self, order: Order, quantity: int) -> None:
        """Lower a resting order's remaining size in place, keeping its priority."""
        order.remaining -= quantity
        levels = self.bids if order.is_buy else self.asks
        levels[order.price].total -= quantity
        self.touched[(order.is_buy, order.price)] = None

    def level_size(self, is_buy: bool, price: int) -> int:
        level = (self.bids if is_buy else self.asks).get(price)
        return level.total if level is not None else 0

    def queue_ahead(self, is_buy: bool, price: int, order_id: int) -> tuple[int, int] | None:
        """(contracts, orders) resting before ``order_id`` at its level, by time priority;
        None when it does not rest there."""
        level = (self.bids if is_buy else self.asks).get(price)
        if level is None or order_id not in level.orders:
            return None
        contracts = 0
        for count, resting in enumerate(level.orders.values()):
            if resting.order_id == order_id:
                return contracts, count
            contracts += resting.remaining
        return None

    def bid_keys_best_last(self) -> list[int]:
        """Bid prices ascending (read only)."""
        return self._bid_keys

    def ask_keys_best_last(self) -> list[int]:
        """Ask prices, negated, ascending (read only)."""
        return self._ask_keys

    def best_opposite(self, taker_is_buy: bool) -> PriceLevel | None:
        """The level a taker on this side meets first, or None when that side is empty."""
        if taker_is_buy:
            return self.asks[-self._ask_keys[-1]] if self._ask_keys else None
        return self.bids[self._bid_keys[-1]] if self._bid_keys else None

    def depth(self, is_buy: bool, levels: int) -> list[tuple[int, int]]:
        """Aggregated (price, size) for up to ``levels`` prices, best first."""
        if is_buy:
            return [(p, self.bids[p].total) for p in reversed(self._bid_keys[-levels:])]
        return [(-k, self.asks[-k].total) for k in reversed(self._ask_keys[-levels:])]

    def orders(self) -> Iterator[Order]:
        """Every resting order: bids best first, then asks best first, each level in time order."""
        for key in reversed(self._bid_keys):
            yield from self.bids[key].orders.values()
        for key in reversed(self._ask_keys):
            yield from self.asks[-key].orders.values()

    def is_crossed(self) -> bool:
        bid, ask = self.best_bid(), self.best_ask()
        return bid is not None and ask is not None and bid >= ask
