"""Order entry: place, amend, cancel and expire, each validated in full before it changes state."""

from __future__ import annotations

import heapq

from . import commands as cmd
from .errors import DomainError, ErrorCode, invalid
from .events import (
    OrderAccepted,
)
from .ledger import (
    collateral_key,
)
from .market import Market
from .matching import Matching
from .order import Order
from .position import Position
from .state import (
    BUY,
    MAX_CLIENT_ORDER_ID,
    MAX_ORDER_GROUP_ID,
    MAX_TIME_MS,
    Account,
    is_int,
    parse_enum,
)
from .types import (
    REQUESTED_CANCEL_REASONS,
    CancelReason,
    OrderStatus,
    OrderType,
    SelfTradePrevention,
    Side,
    TimeInForce,
)


class OrderEntry(Matching):
    def _check_price(self, market: Market, price: object, field: str = "price") -> int:
        if not is_int(price):
            raise DomainError(
                ErrorCode.INVALID_PRICE,
                f"{field} must be a whole number of ticks",
                {"field": field},
            )
        assert isinstance(price, int)
        if not market.floor < price < market.cap:
            raise DomainError(
                ErrorCode.INVALID_PRICE,
                f"{field} must lie strictly between the market's floor and cap",
                {"field": field, "price": price, "floor": market.floor, "cap": market.cap},
            )
        return price

    def _check_size(self, market: Market, size: object) -> int:
        if not is_int(size) or size <= 0:  # type: ignore[operator]
            raise invalid("size", "must be a positive whole number of contracts")
        assert isinstance(size, int)
        if size < market.min_size:
            raise DomainError(
                ErrorCode.ORDER_SIZE_TOO_SMALL,
                f"order size {size} is below the market's minimum of {market.min_size}",
                {"size": size, "min_size": market.min_size},
            )
        if size > market.max_order_size:
            raise DomainError(
                ErrorCode.ORDER_SIZE_TOO_LARGE,
                f"order size {size} is above the market's maximum of {market.max_order_size}",
                {"size": size, "max_order_size": market.max_order_size},
            )
        return size

    def _check_position_limit(
        self, market: Market, position: Position, is_buy: bool, extra: int
    ) -> None:
        """Worst case: every open order on this side fills, plus ``extra`` new contracts."""
        if is_buy:
            worst = position.size + position.rem_buy + extra
        else:
            worst = -(position.size - position.rem_sell - extra)
        if worst > market.max_position:
            raise DomainError(
                ErrorCode.POSITION_LIMIT_EXCEEDED,
                f"the order could take the position beyond the limit of {market.max_position}",
                {
                    "max_position": market.max_position,
                    "position": position.size,
                    "open_orders": position.rem_buy if is_buy else position.rem_sell,
                    "requested": extra,
                },
            )

    def _place_order(self, c: cmd.PlaceOrder) -> None:
        account = self.account(c.account_id)
        market = self.market(c.market_id)
        self._check_trading(market, c.time)
        side = parse_enum(Side, c.side, "side")
        order_type = parse_enum(OrderType, c.order_type, "type")
        tif = parse_enum(TimeInForce, c.time_in_force, "time_in_force")
        stp = parse_enum(SelfTradePrevention, c.stp, "stp")
        is_buy = side is BUY
        size = self._check_size(market, c.size)
        if order_type is OrderType.LIMIT:
            if c.price is None:
                raise invalid("price", "a limit order needs a price")
            price = self._check_price(market, c.price)
        else:
            if tif is not TimeInForce.IOC:
                raise invalid("time_in_force", "a market order is immediate-or-cancel")
            price = (
                self._check_price(market, c.price, "protection_price")
                if c.price is not None
                else (market.cap - 1 if is_buy else market.floor + 1)
            )
        if tif is TimeInForce.GTD:
            if not is_int(c.expire_at) or not c.time < c.expire_at <= MAX_TIME_MS:  # type: ignore[operator]
                raise invalid("expire_at", "a GTD order needs an expiry time in the future")
        elif c.expire_at is not None:
            raise invalid("expire_at", "only GTD orders expire")
        if c.post_only and (tif is TimeInForce.IOC or tif is TimeInForce.FOK):
            raise invalid("post_only", "a post-only order must be able to rest")
        if c.client_order_id is not None:
            if not isinstance(c.client_order_id, str) or not (
                0 < len(c.client_order_id) <= MAX_CLIENT_ORDER_ID
            ):
                raise invalid("client_order_id", f"must be 1 to {MAX_CLIENT_ORDER_ID} characters")
            if c.client_order_id in account.client_order_ids:
                raise DomainError(
                    ErrorCode.DUPLICATE_CLIENT_ORDER_ID,
                    "a live order already uses this client_order_id",
                    {
                        "client_order_id": c.client_order_id,
                        "order_id": account.client_order_ids[c.client_order_id],
                    },
                )
        if c.order_group_id is not None and (
            not isinstance(c.order_group_id, str)
            or not 0 < len(c.order_group_id) <= MAX_ORDER_GROUP_ID
        ):
            raise invalid("order_group_id", f"must be 1 to {MAX_ORDER_GROUP_ID} characters")
        if c.post_only:
            touch = self._live_touch(market, not is_buy, c.time)
            if touch is not None and (price >= touch if is_buy else price <= touch):
                raise DomainError(
                    ErrorCode.POST_ONLY_WOULD_CROSS,
                    "a post-only order may not take liquidity",
                    {"price": price, "opposite_best": touch},
                )
        position = account.positions.get(market.market_id)
        if position is None:  # registered only once the order is accepted
            position = Position(
                account.account_id,
                market.market_id,
                collateral_key(account.account_id, market.market_id),
            )
        position_size = position.size
        if c.reduce_only:
            closable = -position_size if is_buy else position_size
            if size > closable:
                raise DomainError(
                    ErrorCode.REDUCE_ONLY_WOULD_INCREASE,
                    "a reduce-only order may not exceed the position it closes",
                    {"size": size, "position": position_size},
                )
        if not c.reduce_only:
            self._check_position_limit(market, position, is_buy, size)

        order = Order(
            self.next_order_id,
            account.account_id,
            market.market_id,
            side,
            order_type,
            price,
            size,
            tif,
            c.expire_at,
            c.post_only,
            c.reduce_only,
            c.client_order_id,
            stp,
            c.time,
            c.order_group_id,
        )
        order.unit_lock = market.lock_per_contract(is_buy, price)
        order.unit_fee = market.fee_reserve_per_contract(price)
        cap_reason = None
        if order_type is OrderType.MARKET:
            # Reserve at the worst price the order would reach, for no more than it can afford:
            # from then on it is an IOC limit order at that price. Matching, not this estimate,
            # decides what it meets (own orders it cancels on the way included).
            fillable, worst = self._market_order_reach(market, order, c.time)
            order.price = worst
            order.unit_lock = market.lock_per_contract(is_buy, worst)
            order.unit_fee = market.fee_reserve_per_contract(worst)
            affordable = self._affordable(account, position, order, size)
            if fillable and affordable == 0:
                order.remaining = 1
                self._reserve_check(account, position, order)  # raises with the figures
            cap_reason = (
                CancelReason.INSUFFICIENT_BALANCE
                if affordable < fillable
                else CancelReason.IOC_REMAINDER
            )
            order.remaining = affordable
        else:
            self._reserve_check(account, position, order)
        fok_unfillable = tif is TimeInForce.FOK and not self._fok_fillable(market, order, c.time)

        # ---- accepted: from here on the command changes state.
        self.next_order_id += 1
        self.seq += 1
        self._out.append(
            OrderAccepted(
                self.seq,
                c.time,
                order.order_id,
                account.account_id,
                market.market_id,
                side.value,
                order_type.value,
                order.price,
                size,
                tif.value,
                c.expire_at,
                c.post_only,
                c.reduce_only,
                c.client_order_id,
                stp.value,
                c.order_group_id,
            )
        )
        if fok_unfillable:
            self._close(order, OrderStatus.CANCELED, CancelReason.FOK_UNFILLED, c.time)
            return
        cut_reason = None
        if order.remaining < size:
            # A market order cut to what it can afford (or reach): the cut part is never open,
            # so the order's size says so at once and filled + remaining = size holds.
            cut_reason = cap_reason
            order.size = order.remaining
            self._emit_amended(order, False, c.time)
        if market.market_id not in account.positions:
            account.positions[market.market_id] = position
            market.positions[account.account_id] = position
        self.orders[order.order_id] = order
        if c.client_order_id is not None:
            account.client_order_ids[c.client_order_id] = order.order_id
        position.add_order(order)
        self._reconcile(account, position, c.time)
        self._take(market, account, position, order, c.time, cut_reason)

    def _owned_order(self, account: Account, order_id: object) -> Order:
        order = self.orders.get(order_id) if isinstance(order_id, int) else None
        if order is None or order.account_id != account.account_id:
            raise DomainError(
                ErrorCode.ORDER_NOT_FOUND,
                f"no open order {order_id!r} for this account",
                {"order_id": order_id},
            )
        return order

    def _cancel_order(self, c: cmd.CancelOrder) -> None:
        reason = parse_enum(CancelReason, c.reason, "reason")
        if reason not in REQUESTED_CANCEL_REASONS:
            raise invalid(
                "reason",
                "a cancel gives the reason user, disconnect, heartbeat_expired or "
                "order_group_limit",
            )
        account = self.account(c.account_id)
        order = self._owned_order(account, c.order_id)
        self._cancel(order, reason, c.time)
        self._flush_book(self.markets[order.market_id], c.time)

    def _cancel_all(self, c: cmd.CancelAll) -> None:
        account = self.account(c.account_id)
        if c.market_id is not None:
            self.market(c.market_id)
            positions = [account.positions[c.market_id]] if c.market_id in account.positions else []
        else:
            # By market id: the order positions were created in is not part of the state.
            positions = [account.positions[m] for m in sorted(account.positions)]
        for position in positions:
            live = sorted([*position.buys, *position.sells])
            for order_id in live:
                self._cancel(self.orders[order_id], CancelReason.USER, c.time)
            if live:
                self._flush_book(self.markets[position.market_id], c.time)

    def _amend_order(self, c: cmd.AmendOrder) -> None:
        account = self.account(c.account_id)
        order = self._owned_order(account, c.order_id)
        market = self.markets[order.market_id]
        self._check_trading(market, c.time)
        if order.expire_at is not None and order.expire_at <= c.time:
            # Due but not yet swept: it may no longer trade, so it may not be re-priced either.
            raise DomainError(
                ErrorCode.ORDER_NOT_CANCELABLE,
                f"order {order.order_id} expired at {order.expire_at}",
                {"order_id": order.order_id, "expire_at": order.expire_at},
            )
        if c.price is None and c.size is None:
            raise invalid("size", "an amend needs a new price or a new size")
        price = order.price if c.price is None else self._check_price(market, c.price)
        size = order.size if c.size is None else self._check_size(market, c.size)
        remaining = size - order.filled
        if remaining <= 0:
            raise invalid("size", f"must exceed the {order.filled} contracts already filled")
        position = account.positions[market.market_id]
        is_buy = order.is_buy
        if price == order.price and remaining <= order.remaining:
            # Smaller at the same price: keeps its place in the queue.
            if remaining < order.remaining:
                reduction = order.remaining - remaining
                position.shrink_order(order, reduction)
                market.book.reduce(order, reduction)
                order.size -= reduction
            self._emit_amended(order, False, c.time)
            self._reconcile(account, position, c.time)
            self._flush_book(market, c.time)
            return
        if order.post_only:
            touch = self._live_touch(market, not is_buy, c.time)
            if touch is not None and (price >= touch if is_buy else price <= touch):
                raise DomainError(
                    ErrorCode.POST_ONLY_WOULD_CROSS,
                    "a post-only order may not take liquidity",
                    {"price": price, "opposite_best": touch},
                )
        if order.reduce_only and remaining > self._closable(position, is_buy):
            raise DomainError(
                ErrorCode.REDUCE_ONLY_WOULD_INCREASE,
                "a reduce-only order may not exceed the position it closes",
                {"size": remaining, "position": position.size},
            )
        # Validate against the order as it would be, then put it back exactly as it was.
        old = (order.price, order.remaining, order.unit_lock, order.unit_fee)
        position.remove_order(order)
        try:
            if not order.reduce_only:
                self._check_position_limit(market, position, is_buy, remaining)
            order.price, order.remaining = price, remaining
            order.unit_lock = market.lock_per_contract(is_buy, price)
            order.unit_fee = market.fee_reserve_per_contract(price)
            self._reserve_check(account, position, order)
        except DomainError:
            order.price, order.remaining, order.unit_lock, order.unit_fee = old
            position.add_order(order)
            raise
        # Accepted: re-queue at the new price (or size) as if newly arrived.
        order.price, order.remaining = old[0], old[1]
        market.book.remove(order)
        order.price, order.remaining = price, remaining
        order.size = size
        position.add_order(order)
        self._emit_amended(order, True, c.time)
        self._reconcile(account, position, c.time)
        self._take(market, account, position, order, c.time)

    def _expire_orders(self, c: cmd.ExpireOrders) -> None:
        if c.up_to is None:
            self._sweep_expired(c.time)
            return
        if not is_int(c.up_to):
            raise invalid("up_to", "must be milliseconds since the Unix epoch")
        self._sweep_expired(min(c.up_to, c.time))

    def _sweep_expired(self, time: int) -> None:
        gtd = self._gtd
        touched: dict[str, Market] = {}
        while gtd and gtd[0][0] <= time:
            expire_at, order_id = heapq.heappop(gtd)
            order = self.orders.get(order_id)
            if order is None or order.expire_at != expire_at:
                continue  # already gone: filled or canceled before its time
            self._expire(order, time)
            touched[order.market_id] = self.markets[order.market_id]
        for market in touched.values():
            self._flush_book(market, time)
