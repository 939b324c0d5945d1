"""Matching: an incoming order against the book, fills, and the money each fill moves.

Price-time priority; a trade happens at the resting order's price. Self-trade prevention follows
the incoming order's mode; reduce-only and GTD expiry are enforced as orders meet.
"""

from __future__ import annotations

import heapq

from .errors import DomainError, ErrorCode
from .events import (
    PositionChanged,
    Trade,
)
from .ledger import (
    cash_key,
    clearing_key,
    fees_key,
)
from .market import Market
from .order import Order
from .position import Position
from .state import STP_BOTH, STP_NEWEST, STP_OLDEST, Account, EngineState
from .types import (
    CancelReason,
    OrderStatus,
    TimeInForce,
)


class Matching(EngineState):
    def _take(
        self,
        market: Market,
        account: Account,
        position: Position,
        order: Order,
        time: int,
        cut_reason: CancelReason | None = None,
    ) -> None:
        """Match an incoming (or re-priced) order, then rest or close what is left of it.

        ``cut_reason`` is why a market order was cut below its requested size; such an order
        never reports ``filled``, even when it fills all it was cut to.
        """
        stop_reason = self._match(market, order, time)
        if order.status is OrderStatus.OPEN:
            if order.remaining == 0 and cut_reason is None:
                self._close_live(order, OrderStatus.FILLED, None, time)
            elif stop_reason is not None:
                self._close_live(order, OrderStatus.CANCELED, stop_reason, time)
            elif order.remaining and order.time_in_force in (TimeInForce.GTC, TimeInForce.GTD):
                market.book.add(order)
                if order.expire_at is not None:
                    heapq.heappush(self._gtd, (order.expire_at, order.order_id))
            else:
                reason = cut_reason or CancelReason.IOC_REMAINDER
                self._close_live(order, OrderStatus.CANCELED, reason, time)
        self._reconcile(account, position, time)
        self._flush_book(market, time)

    def _live_touch(self, market: Market, is_buy: bool, time: int) -> int | None:
        """Best price on one side, looking past GTD orders already due to expire."""
        book = market.book
        keys = book.bid_keys_best_last() if is_buy else book.ask_keys_best_last()
        levels = book.bids if is_buy else book.asks
        for index in range(len(keys) - 1, -1, -1):
            price = keys[index] if is_buy else -keys[index]
            for order in levels[price].orders.values():
                if order.expire_at is None or order.expire_at > time:
                    return price
        return None

    def _reserve_check(self, account: Account, position: Position, order: Order) -> None:
        """Raise INSUFFICIENT_BALANCE unless the account can reserve for ``order`` too."""
        is_buy = order.is_buy
        held = position.held_buy if is_buy else position.held_sell
        position.add_order(order)
        need = position.need(is_buy)
        position.remove_order(order)
        available = self.ledger.balance(account.cash_key)
        if need - held > available:
            raise DomainError(
                ErrorCode.INSUFFICIENT_BALANCE,
                "insufficient collateral for this order",
                {"required": need - held, "available": available},
            )

    def _market_order_reach(self, market: Market, order: Order, time: int) -> tuple[int, int]:
        """How much of a market order the book could fill within its protection price, and the
        worst price it would reach doing so."""
        is_buy = order.is_buy
        limit = order.price
        book = market.book
        keys = book.ask_keys_best_last() if is_buy else book.bid_keys_best_last()
        levels = book.asks if is_buy else book.bids
        wanted = order.remaining
        # With cancel_oldest the account's own orders are canceled, not traded, so they are no
        # liquidity; matching walks past them. (The other modes stop at them or shrink the
        # order by as much, so counting them does no harm there.)
        skip_own = order.stp is STP_OLDEST
        reached = 0
        worst = limit
        for index in range(len(keys) - 1, -1, -1):
            price = -keys[index] if is_buy else keys[index]
            if (price > limit) if is_buy else (price < limit):
                break
            level = levels[price]
            if skip_own:
                reached += sum(
                    o.remaining
                    for o in level.orders.values()
                    if o.account_id != order.account_id
                    and (o.expire_at is None or o.expire_at > time)
                )
            else:
                reached += level.total
            worst = price
            if reached >= wanted:
                return wanted, worst
        return reached, worst

    def _affordable(self, account: Account, position: Position, order: Order, quantity: int) -> int:
        """The largest size up to ``quantity`` the account can reserve ``order`` for."""
        if quantity == 0:
            return 0
        is_buy = order.is_buy
        held = position.held_buy if is_buy else position.held_sell
        budget = self.ledger.balance(account.cash_key) + held

        def fits(size: int) -> bool:
            order.remaining = size
            position.add_order(order)
            need = position.need(is_buy)
            position.remove_order(order)
            return need <= budget

        if fits(quantity):
            return quantity
        low, high = 0, quantity  # fits(low) holds, fits(high) does not
        while high - low > 1:
            mid = (low + high) // 2
            if fits(mid):
                low = mid
            else:
                high = mid
        return low

    def _fok_fillable(self, market: Market, order: Order, time: int) -> bool:
        """Dry run of ``_match``: would the whole order fill right now?"""
        is_buy = order.is_buy
        limit = order.price
        book = market.book
        keys = book.ask_keys_best_last() if is_buy else book.bid_keys_best_last()
        levels = book.asks if is_buy else book.bids
        wanted = order.remaining
        # A reduce-only taker never binds here: it was checked against its position, and each
        # fill lowers what it may close by exactly what it fills.
        closable_left: dict[str, int] = {}
        for index in range(len(keys) - 1, -1, -1):
            price = -keys[index] if is_buy else keys[index]
            if (price > limit) if is_buy else (price < limit):
                return False
            for maker in levels[price].orders.values():
                if maker.expire_at is not None and maker.expire_at <= time:
                    continue
                if maker.account_id == order.account_id:
                    if order.stp is STP_OLDEST:
                        continue
                    return False
                quantity = maker.remaining
                if maker.reduce_only:
                    left = closable_left.get(maker.account_id)
                    if left is None:
                        maker_position = self.accounts[maker.account_id].positions[maker.market_id]
                        left = self._closable(maker_position, maker.is_buy)
                    quantity = min(quantity, left)
                    closable_left[maker.account_id] = left - quantity
                wanted -= quantity
                if wanted <= 0:
                    return True
        return False

    def _match(self, market: Market, taker: Order, time: int) -> CancelReason | None:
        """Trade ``taker`` against the book. Returns why matching stopped early, if it did."""
        book = market.book
        is_buy = taker.is_buy
        limit = taker.price
        accounts = self.accounts
        taker_position = accounts[taker.account_id].positions[market.market_id]
        while taker.remaining > 0:
            level = book.best_opposite(is_buy)
            if level is None:
                return None
            price = level.price
            if (price > limit) if is_buy else (price < limit):
                return None
            maker = next(iter(level.orders.values()))
            if maker.expire_at is not None and maker.expire_at <= time:
                self._expire(maker, time)
                continue
            if maker.account_id == taker.account_id:
                stp = taker.stp
                if stp is STP_NEWEST:
                    return CancelReason.SELF_TRADE
                if stp is STP_OLDEST:
                    self._cancel(maker, CancelReason.SELF_TRADE, time)
                    continue
                if stp is STP_BOTH:
                    self._cancel(maker, CancelReason.SELF_TRADE, time)
                    return CancelReason.SELF_TRADE
                self._decrement(market, maker, taker, time)
                continue
            quantity = min(taker.remaining, maker.remaining)
            maker_position = accounts[maker.account_id].positions[market.market_id]
            if maker.reduce_only:
                quantity = min(quantity, self._closable(maker_position, maker.is_buy))
                if quantity == 0:
                    self._cancel(maker, CancelReason.REDUCE_ONLY, time)
                    continue
            if taker.reduce_only:
                quantity = min(quantity, self._closable(taker_position, is_buy))
                if quantity == 0:
                    return CancelReason.REDUCE_ONLY
            self._fill(market, maker, maker_position, taker, taker_position, price, quantity, time)
        return None

    def _decrement(self, market: Market, maker: Order, taker: Order, time: int) -> None:
        """Self-trade ``decrement``: both orders shrink by the overlap; whichever hits zero goes."""
        quantity = min(maker.remaining, taker.remaining)
        maker_position = self.accounts[maker.account_id].positions[market.market_id]
        maker_position.shrink_order(maker, quantity)
        market.book.reduce(maker, quantity)
        maker.size -= quantity
        taker_position = maker_position  # the same account, the same market
        taker_position.shrink_order(taker, quantity)
        taker.remaining -= quantity
        taker.size -= quantity
        # Both orders changed size without trading: say so, so stored orders stay true.
        self._emit_amended(maker, False, time)
        self._emit_amended(taker, False, time)
        if maker.remaining == 0:
            self._cancel(maker, CancelReason.SELF_TRADE, time)
        if taker.remaining == 0:
            self._close_live(taker, OrderStatus.CANCELED, CancelReason.SELF_TRADE, time)

    def _fill(
        self,
        market: Market,
        maker: Order,
        maker_position: Position,
        taker: Order,
        taker_position: Position,
        price: int,
        quantity: int,
        time: int,
    ) -> None:
        trade_id = self.next_trade_id
        self.next_trade_id += 1
        maker_fee = market.fee(price, quantity, market.maker_fee_bps)
        taker_fee = market.fee(price, quantity, market.taker_fee_bps)
        maker_position.shrink_order(maker, quantity)
        market.book.reduce(maker, quantity)
        maker.filled += quantity
        taker_position.shrink_order(taker, quantity)
        taker.remaining -= quantity
        taker.filled += quantity
        self.seq += 1
        self._out.append(
            Trade(
                self.seq,
                time,
                trade_id,
                market.market_id,
                price,
                quantity,
                taker.side.value,
                maker.order_id,
                taker.order_id,
                maker.account_id,
                taker.account_id,
                maker_fee,
                taker_fee,
            )
        )
        ref = f"trd:{trade_id}"
        longs_before = max(taker_position.size, 0) + max(maker_position.size, 0)
        self._book_fill(market, taker_position, taker.is_buy, price, quantity, taker_fee, ref, time)
        self._book_fill(market, maker_position, maker.is_buy, price, quantity, maker_fee, ref, time)
        market.open_interest += (
            max(taker_position.size, 0) + max(maker_position.size, 0) - longs_before
        )
        market.last_price = price
        if maker.remaining == 0:
            market.book.remove(maker)
            self._close_live(maker, OrderStatus.FILLED, None, time)
        accounts = self.accounts
        self._reconcile(accounts[maker.account_id], maker_position, time)
        self._reconcile(accounts[taker.account_id], taker_position, time)

    def _book_fill(
        self,
        market: Market,
        position: Position,
        is_buy: bool,
        price: int,
        quantity: int,
        fee: int,
        ref: str,
        time: int,
    ) -> None:
        """Move one side's money for a fill: close what is opposite, open the rest, pay fees."""
        cash = cash_key(position.account_id)
        tick_value = market.tick_value
        size = position.size
        if is_buy:
            closing = min(quantity, -size) if size < 0 else 0
        else:
            closing = min(quantity, size) if size > 0 else 0
        if closing:
            held = size if size > 0 else -size
            release = (
                position.collateral if closing == held else position.collateral * closing // held
            )
            payout = (market.cap - price if is_buy else price - market.floor) * tick_value * closing
            if release:
                self._move(position.collateral_key, cash, release, "collateral_release", ref, time)
            pnl = payout - release
            if pnl > 0:
                self._move(clearing_key(market.market_id), cash, pnl, "realized_pnl", ref, time)
            elif pnl < 0:
                self._move(cash, clearing_key(market.market_id), -pnl, "realized_pnl", ref, time)
            position.collateral -= release
            position.realized_pnl += pnl
        opening = quantity - closing
        if opening:
            lock = market.lock_per_contract(is_buy, price) * opening
            if lock:
                self._move(cash, position.collateral_key, lock, "collateral_lock", ref, time)
            position.collateral += lock
        if fee > 0:
            self._move(cash, fees_key(market.market_id), fee, "fee", ref, time)
        elif fee < 0:
            self._move(fees_key(market.market_id), cash, -fee, "rebate", ref, time)
        position.size = size + quantity if is_buy else size - quantity
        self.seq += 1
        self._out.append(
            PositionChanged(
                self.seq,
                time,
                position.account_id,
                position.market_id,
                position.size,
                position.collateral,
                position.realized_pnl,
            )
        )
