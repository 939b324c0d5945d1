"""A deliberately naive price-time-priority matcher for one market, used as a test oracle.

It is written from the matching rules alone (DESIGN §4 and the engine brief) and imports nothing
from ``ballast_exchange``, so the property tests can run it beside the engine and demand that the
two agree step by step. It knows nothing about money: collateral, fees and position limits are
tested elsewhere. Clarity beats speed: every resting order sits in one plain list, and the next
maker is found by scanning that list for the best (price, arrival) pair.

Sizes follow one convention throughout: an order's *size* is what it has filled plus what
remains, so an amend's ``size`` is the new total and its new remaining is ``size - filled``.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass

BUY = "buy"
SELL = "sell"
LIMIT = "limit"
MARKET = "market"
GTC = "GTC"
IOC = "IOC"
FOK = "FOK"
CANCEL_NEWEST = "cancel_newest"
CANCEL_OLDEST = "cancel_oldest"
CANCEL_BOTH = "cancel_both"
DECREMENT = "decrement"
STP_MODES = (CANCEL_NEWEST, CANCEL_OLDEST, CANCEL_BOTH, DECREMENT)

# The rejection codes of the API (DESIGN §7) that matching rules alone can produce.
INVALID_REQUEST = "INVALID_REQUEST"
INVALID_PRICE = "INVALID_PRICE"
ORDER_NOT_FOUND = "ORDER_NOT_FOUND"
POST_ONLY_WOULD_CROSS = "POST_ONLY_WOULD_CROSS"


class Rejected(Exception):
    """The command is invalid; like the engine, the matcher is left exactly as it was."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code


@dataclass(frozen=True)
class Fill:
    """One trade, always at the maker's price."""

    maker_order_id: int
    taker_order_id: int
    price: int
    size: int


@dataclass
class RefOrder:
    order_id: int
    account: str
    side: str
    price: int | None  # None only for a market order without a protection price
    remaining: int
    filled: int
    stp: str
    post_only: bool
    arrival: int  # time priority: smaller arrived earlier


class ReferenceMatcher:
    """One market's book. ``place``/``cancel``/``cancel_all``/``amend`` mirror the engine's
    commands and raise ``Rejected`` for what the rules forbid."""

    def __init__(self, floor: int = 0, cap: int = 1000) -> None:
        self.floor = floor
        self.cap = cap
        self.resting: list[RefOrder] = []  # both sides, in no particular order
        self._next_id = 1
        self._clock = 0

    # ------------------------------------------------------------------ queries

    def book(self, side: str) -> dict[int, int]:
        """Aggregated book for one side: price -> total resting size."""
        levels: dict[int, int] = {}
        for order in self.resting:
            if order.side == side:
                assert order.price is not None
                levels[order.price] = levels.get(order.price, 0) + order.remaining
        return levels

    def live_orders(self) -> dict[int, int]:
        """Every resting order's remaining size, by order id."""
        return {order.order_id: order.remaining for order in self.resting}

    # ------------------------------------------------------------------ commands

    def place(
        self,
        account: str,
        side: str,
        size: int,
        price: int | None = None,
        order_type: str = LIMIT,
        time_in_force: str = GTC,
        post_only: bool = False,
        stp: str = CANCEL_NEWEST,
    ) -> tuple[int, list[Fill]]:
        """Accept a new order; return its id and the fills it took (in order)."""
        if side not in (BUY, SELL) or stp not in STP_MODES:
            raise Rejected(INVALID_REQUEST, "bad side or stp")
        if size <= 0:
            raise Rejected(INVALID_REQUEST, "size must be positive")
        if order_type == LIMIT:
            if time_in_force not in (GTC, IOC, FOK):
                raise Rejected(INVALID_REQUEST, "unsupported time in force")
            if price is None:
                raise Rejected(INVALID_REQUEST, "a limit order needs a price")
        elif order_type == MARKET:
            # A market order is an IOC; its optional price only bounds how far it walks.
            if time_in_force != IOC:
                raise Rejected(INVALID_REQUEST, "a market order is immediate-or-cancel")
        else:
            raise Rejected(INVALID_REQUEST, "unknown order type")
        if price is not None:
            self._check_price(price)
        if post_only and time_in_force != GTC:
            raise Rejected(INVALID_REQUEST, "a post-only order must be able to rest")
        if post_only and self._would_cross(side, price):
            raise Rejected(POST_ONLY_WOULD_CROSS, "a post-only order may not take liquidity")

        order = RefOrder(
            order_id=self._next_id,
            account=account,
            side=side,
            price=price,
            remaining=size,
            filled=0,
            stp=stp,
            post_only=post_only,
            arrival=self._tick(),
        )
        # An accepted order uses its id even when FOK then kills it without trading.
        self._next_id += 1
        if time_in_force == FOK and not self._fills_completely(order):
            return order.order_id, []
        fills, stopped = self._match(order)
        if order.remaining > 0 and time_in_force == GTC and not stopped:
            self.resting.append(order)
        return order.order_id, fills

    def cancel(self, account: str, order_id: int) -> None:
        self.resting.remove(self._owned(account, order_id))

    def cancel_all(self, account: str) -> None:
        self.resting = [o for o in self.resting if o.account != account]

    def amend(
        self, account: str, order_id: int, price: int | None = None, size: int | None = None
    ) -> list[Fill]:
        """Change a resting order's price and/or total size; return the fills a re-queue took."""
        order = self._owned(account, order_id)
        if price is None and size is None:
            raise Rejected(INVALID_REQUEST, "an amend needs a new price or a new size")
        if price is not None:
            self._check_price(price)
        if size is not None and size <= 0:
            raise Rejected(INVALID_REQUEST, "size must be positive")
        new_price = order.price if price is None else price
        new_size = order.filled + order.remaining if size is None else size
        new_remaining = new_size - order.filled
        if new_remaining <= 0:
            raise Rejected(INVALID_REQUEST, "size must exceed what has already filled")
        if new_price == order.price and new_remaining <= order.remaining:
            # Smaller (or the same) at the same price: it keeps its place in the queue.
            order.remaining = new_remaining
            return []
        if order.post_only and self._would_cross(order.side, new_price):
            raise Rejected(POST_ONLY_WOULD_CROSS, "a post-only order may not take liquidity")
        # A new price or a larger size: it leaves the book and arrives again, as a taker.
        self.resting.remove(order)
        order.price = new_price
        order.remaining = new_remaining
        order.arrival = self._tick()
        fills, stopped = self._match(order)
        if order.remaining > 0 and not stopped:
            self.resting.append(order)
        return fills

    # ------------------------------------------------------------------ matching

    def _match(self, taker: RefOrder) -> tuple[list[Fill], bool]:
        """Trade ``taker`` against the book. Returns the fills and whether self-trade
        prevention stopped the taker (its remainder is then canceled, whatever its TIF)."""
        fills: list[Fill] = []
        while taker.remaining > 0:
            maker = self._best_opposite(taker.side)
            if maker is None or not self._acceptable(taker, maker):
                break
            if maker.account == taker.account:
                # Self-trade prevention is the incoming (taker) order's choice.
                if taker.stp == CANCEL_NEWEST:
                    return fills, True
                if taker.stp == CANCEL_OLDEST:
                    self.resting.remove(maker)
                    continue
                if taker.stp == CANCEL_BOTH:
                    self.resting.remove(maker)
                    return fills, True
                # DECREMENT: both shrink by the overlap without trading.
                overlap = min(maker.remaining, taker.remaining)
                maker.remaining -= overlap
                taker.remaining -= overlap
                if maker.remaining == 0:
                    self.resting.remove(maker)
                continue
            quantity = min(maker.remaining, taker.remaining)
            assert maker.price is not None
            fills.append(Fill(maker.order_id, taker.order_id, maker.price, quantity))
            maker.remaining -= quantity
            maker.filled += quantity
            taker.remaining -= quantity
            taker.filled += quantity
            if maker.remaining == 0:
                self.resting.remove(maker)
        return fills, False

    def _fills_completely(self, taker: RefOrder) -> bool:
        """FOK test: run the match on a throw-away copy and see whether all of it traded."""
        trial = copy.deepcopy(self)
        trial_taker = copy.deepcopy(taker)
        fills, _ = trial._match(trial_taker)
        return sum(f.size for f in fills) == taker.remaining

    def _best_opposite(self, side: str) -> RefOrder | None:
        """The next maker for a taker on ``side``: best price first, then earliest arrival."""
        opposite = SELL if side == BUY else BUY
        makers = [o for o in self.resting if o.side == opposite]
        return min(makers, key=_priority, default=None)

    @staticmethod
    def _acceptable(taker: RefOrder, maker: RefOrder) -> bool:
        """Whether the taker's limit (or protection price) allows trading at the maker's price."""
        assert maker.price is not None
        if taker.price is None:
            return True
        return maker.price <= taker.price if taker.side == BUY else maker.price >= taker.price

    def _would_cross(self, side: str, price: int | None) -> bool:
        best = self._best_opposite(side)
        if best is None or price is None:
            return False
        assert best.price is not None
        return price >= best.price if side == BUY else price <= best.price

    # ------------------------------------------------------------------ helpers

    def _check_price(self, price: int) -> None:
        if not self.floor < price < self.cap:
            raise Rejected(INVALID_PRICE, "price must lie strictly between floor and cap")

    def _owned(self, account: str, order_id: int) -> RefOrder:
        for order in self.resting:
            if order.order_id == order_id and order.account == account:
                return order
        raise Rejected(ORDER_NOT_FOUND, f"no open order {order_id} for {account}")

    def _tick(self) -> int:
        self._clock += 1
        return self._clock


def _priority(order: RefOrder) -> tuple[int, int]:
    """Sort key among one side's resting orders: the better price first, then the earlier."""
    assert order.price is not None  # only limit orders rest
    return (order.price if order.side == SELL else -order.price, order.arrival)
