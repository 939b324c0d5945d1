"""The exchange engine: a deterministic state machine over markets, books, positions and money.

``Engine.execute(command)`` validates the command completely before it changes anything, so a
rejected command (a ``DomainError``) leaves the state exactly as it was and uses no sequence
number. An accepted command returns its events, numbered by one global sequence.
"""

from __future__ import annotations

import heapq
from collections.abc import Callable
from typing import Any

from . import commands as cmd
from .errors import DomainError, ErrorCode, invalid
from .events import (
    AccountCreated,
    BookLevelChanged,
    Event,
    LedgerEntry,
    MarketCreated,
    MarketStatusChanged,
    OrderAccepted,
    OrderAmended,
    OrderClosed,
    PositionChanged,
    SettlementFinalized,
    SettlementOverturned,
    SettlementProposed,
    Trade,
)
from .ledger import (
    EXTERNAL,
    Ledger,
    cash_key,
    clearing_key,
    collateral_key,
    fees_key,
    orders_key,
)
from .market import Market, Settlement
from .order import Order
from .position import Position
from .types import (
    CancelReason,
    MarketKind,
    MarketStatus,
    OrderStatus,
    OrderType,
    SelfTradePrevention,
    Side,
    TimeInForce,
)

MICRO = 1_000_000
MAX_FEE_BPS = 1_000
MIN_TICK_VALUE = 100
MAX_CLIENT_ORDER_ID = 64

BUY = Side.BUY
SELL = Side.SELL
STP_NEWEST = SelfTradePrevention.CANCEL_NEWEST
STP_OLDEST = SelfTradePrevention.CANCEL_OLDEST
STP_BOTH = SelfTradePrevention.CANCEL_BOTH
STP_DECREMENT = SelfTradePrevention.DECREMENT


class Account:
    __slots__ = ("account_id", "cash_key", "client_order_ids", "orders_key", "positions")

    def __init__(self, account_id: str) -> None:
        self.account_id = account_id
        self.cash_key = cash_key(account_id)
        self.orders_key = orders_key(account_id)
        self.positions: dict[str, Position] = {}
        # client_order_id -> order_id, for live orders only.
        self.client_order_ids: dict[str, int] = {}


def _is_int(value: object) -> bool:
    return type(value) is int


def _enum(enum: Any, value: object, field: str) -> Any:
    try:
        return enum(value)
    except ValueError:
        raise invalid(field, f"must be one of {[m.value for m in enum]}") from None


class Engine:
    def __init__(self) -> None:
        self.seq = 0
        self.next_order_id = 1
        self.next_trade_id = 1
        self.ledger = Ledger()
        self.accounts: dict[str, Account] = {}
        self.markets: dict[str, Market] = {}
        self.orders: dict[int, Order] = {}  # live orders only
        self._gtd: list[tuple[int, int]] = []  # (expire_at, order_id), stale entries skipped
        self._out: list[Event] = []
        self._handlers: dict[type, Callable[[Any], None]] = {
            cmd.CreateAccount: self._create_account,
            cmd.Deposit: self._deposit,
            cmd.Withdraw: self._withdraw,
            cmd.CreateMarket: self._create_market,
            cmd.ChangeMarketStatus: self._change_market_status,
            cmd.PlaceOrder: self._place_order,
            cmd.CancelOrder: self._cancel_order,
            cmd.CancelAll: self._cancel_all,
            cmd.AmendOrder: self._amend_order,
            cmd.ExpireOrders: self._expire_orders,
            cmd.ProposeSettlement: self._propose_settlement,
            cmd.OverturnSettlement: self._overturn_settlement,
            cmd.FinalizeSettlement: self._finalize_settlement,
        }

    # ------------------------------------------------------------------ entry point

    def execute(self, command: cmd.Command) -> list[Event]:
        """Apply one command; return its events, or raise ``DomainError`` having changed nothing."""
        handler = self._handlers.get(type(command))
        if handler is None:
            raise invalid("command", f"unknown command {type(command).__name__}")
        if not _is_int(command.time) or command.time < 0:
            raise invalid("time", "must be a non-negative integer of milliseconds")
        self._out = out = []
        handler(command)
        return out

    # ------------------------------------------------------------------ queries

    def account(self, account_id: str) -> Account:
        account = self.accounts.get(account_id)
        if account is None:
            raise DomainError(
                ErrorCode.ACCOUNT_NOT_FOUND,
                f"account {account_id!r} does not exist",
                {"account_id": account_id},
            )
        return account

    def market(self, market_id: str) -> Market:
        market = self.markets.get(market_id) if isinstance(market_id, str) else None
        if market is None:
            raise DomainError(
                ErrorCode.MARKET_NOT_FOUND,
                f"market {market_id!r} does not exist",
                {"market_id": market_id},
            )
        return market

    def available(self, account_id: str) -> int:
        return self.ledger.balance(self.account(account_id).cash_key)

    def reserved(self, account_id: str) -> int:
        """Open-order reservations plus the collateral behind every position."""
        account = self.account(account_id)
        balance = self.ledger.balance
        return balance(account.orders_key) + sum(
            balance(p.collateral_key) for p in account.positions.values()
        )

    def total_balance(self, account_id: str) -> int:
        return self.available(account_id) + self.reserved(account_id)

    def position(self, account_id: str, market_id: str) -> Position | None:
        return self.account(account_id).positions.get(market_id)

    # ------------------------------------------------------------------ accounts and money

    def _create_account(self, c: cmd.CreateAccount) -> None:
        if not isinstance(c.account_id, str) or not c.account_id:
            raise invalid("account_id", "must be a non-empty string")
        if c.account_id in self.accounts:
            raise DomainError(
                ErrorCode.ACCOUNT_EXISTS,
                f"account {c.account_id!r} already exists",
                {"account_id": c.account_id},
            )
        self.accounts[c.account_id] = Account(c.account_id)
        self.seq += 1
        self._out.append(AccountCreated(self.seq, c.time, c.account_id))

    def _deposit(self, c: cmd.Deposit) -> None:
        account = self.account(c.account_id)
        self._check_amount(c.amount)
        self._move(EXTERNAL, account.cash_key, c.amount, "deposit", c.ref, c.time)

    def _withdraw(self, c: cmd.Withdraw) -> None:
        account = self.account(c.account_id)
        self._check_amount(c.amount)
        available = self.ledger.balance(account.cash_key)
        if c.amount > available:
            raise DomainError(
                ErrorCode.INSUFFICIENT_BALANCE,
                "insufficient available balance for this withdrawal",
                {"required": c.amount, "available": available},
            )
        self._move(account.cash_key, EXTERNAL, c.amount, "withdrawal", c.ref, c.time)

    @staticmethod
    def _check_amount(amount: object) -> None:
        if not _is_int(amount) or amount <= 0:  # type: ignore[operator]
            raise invalid("amount", "must be a positive integer of micro-USDC")

    def _move(self, debit: str, credit: str, amount: int, kind: str, ref: str, time: int) -> None:
        self.ledger.move(debit, credit, amount)
        self.seq += 1
        self._out.append(LedgerEntry(self.seq, time, debit, credit, amount, kind, ref))

    # ------------------------------------------------------------------ market lifecycle

    def _create_market(self, c: cmd.CreateMarket) -> None:
        if not isinstance(c.market_id, str) or not c.market_id:
            raise invalid("market_id", "must be a non-empty string")
        if c.market_id in self.markets:
            raise DomainError(
                ErrorCode.MARKET_EXISTS,
                f"market {c.market_id!r} already exists",
                {"market_id": c.market_id},
            )
        kind = _enum(MarketKind, c.kind, "kind")
        for field in ("tick_value", "floor", "cap", "close_time", "min_size", "max_order_size",
                      "max_position", "maker_fee_bps", "taker_fee_bps"):  # fmt: skip
            if not _is_int(getattr(c, field)):
                raise invalid(field, "must be an integer")
        if c.tick_value < MIN_TICK_VALUE:
            raise invalid("tick_value", f"must be at least {MIN_TICK_VALUE} micro-USDC")
        if c.floor < 0 or c.cap <= c.floor:
            raise invalid("cap", "floor must be >= 0 and cap above floor")
        if kind is MarketKind.BINARY and (c.floor != 0 or c.cap * c.tick_value != MICRO):
            raise invalid("cap", "a binary market runs from 0 to 1")
        if c.min_size < 1:
            raise invalid("min_size", "must be at least 1")
        if c.max_order_size < c.min_size:
            raise invalid("max_order_size", "must be at least min_size")
        if c.max_position < 1:
            raise invalid("max_position", "must be at least 1")
        if not 0 <= c.taker_fee_bps <= MAX_FEE_BPS:
            raise invalid("taker_fee_bps", f"must be between 0 and {MAX_FEE_BPS}")
        # Rebates are paid out of the taker fee of the same fill, so they can never exceed it.
        if not -c.taker_fee_bps <= c.maker_fee_bps <= MAX_FEE_BPS:
            raise invalid("maker_fee_bps", "a rebate may not exceed the taker fee")
        market = Market(
            c.market_id,
            kind,
            c.tick_value,
            c.floor,
            c.cap,
            c.close_time,
            c.min_size,
            c.max_order_size,
            c.max_position,
            c.maker_fee_bps,
            c.taker_fee_bps,
        )
        self.markets[c.market_id] = market
        self.seq += 1
        self._out.append(
            MarketCreated(
                self.seq, c.time, c.market_id, kind.value, c.floor, c.cap, c.tick_value,
                c.close_time,
            )  # fmt: skip
        )

    def _change_market_status(self, c: cmd.ChangeMarketStatus) -> None:
        market = self.market(c.market_id)
        status = _enum(MarketStatus, c.status, "status")
        if status not in (MarketStatus.OPEN, MarketStatus.HALTED, MarketStatus.CLOSED):
            raise DomainError(
                ErrorCode.INVALID_TRANSITION,
                "resolving and settled are reached through settlement commands",
                {"market_id": market.market_id, "status": str(market.status), "to": str(status)},
            )
        market.check_transition(status)
        self._set_status(market, status, c.time)
        if status is MarketStatus.CLOSED:
            for order in list(market.book.orders()):
                self._cancel(order, CancelReason.MARKET_CLOSED, c.time)
            self._flush_book(market, c.time)

    def _set_status(self, market: Market, status: MarketStatus, time: int) -> None:
        old = market.status
        market.status = status
        self.seq += 1
        self._out.append(
            MarketStatusChanged(self.seq, time, market.market_id, old.value, status.value)
        )

    def _check_trading(self, market: Market, time: int) -> None:
        if market.status is not MarketStatus.OPEN or time >= market.close_time:
            status = market.status if time < market.close_time else MarketStatus.CLOSED
            raise DomainError(
                ErrorCode.MARKET_CLOSED,
                f"market {market.market_id} is not open for trading ({status})",
                {"market_id": market.market_id, "status": str(status)},
            )

    # ------------------------------------------------------------------ orders

    def _check_price(self, market: Market, price: object, field: str = "price") -> int:
        if not _is_int(price):
            raise DomainError(
                ErrorCode.INVALID_PRICE, f"{field} must be a whole number of ticks", {"field": field}
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
        if not _is_int(size) or size <= 0:  # type: ignore[operator]
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

    def _closable(self, position: Position, is_buy: bool) -> int:
        size = position.size
        if is_buy:
            return -size if size < 0 else 0
        return size if size > 0 else 0

    def _place_order(self, c: cmd.PlaceOrder) -> None:
        account = self.account(c.account_id)
        market = self.market(c.market_id)
        self._check_trading(market, c.time)
        side = _enum(Side, c.side, "side")
        order_type = _enum(OrderType, c.order_type, "type")
        tif = _enum(TimeInForce, c.time_in_force, "time_in_force")
        stp = _enum(SelfTradePrevention, c.stp, "stp")
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
            if not _is_int(c.expire_at) or c.expire_at <= c.time:  # type: ignore[operator]
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
            self.next_order_id, account.account_id, market.market_id, side, order_type, price,
            size, tif, c.expire_at, c.post_only, c.reduce_only, c.client_order_id, stp, c.time,
        )  # fmt: skip
        order.unit_lock = market.lock_per_contract(is_buy, price)
        order.unit_fee = market.fee_reserve_per_contract(price)
        cap_reason = None
        if order_type is OrderType.MARKET:
            # Reserve at the worst price the order would reach, for no more than it can afford:
            # from then on it is an IOC limit order at that price.
            fillable, worst = self._market_order_reach(market, order)
            order.price = worst
            order.unit_lock = market.lock_per_contract(is_buy, worst)
            order.unit_fee = market.fee_reserve_per_contract(worst)
            affordable = self._affordable(account, position, order, fillable)
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
                self.seq, c.time, order.order_id, account.account_id, market.market_id,
                side.value, order_type.value, order.price, size, tif.value, c.expire_at,
                c.post_only, c.reduce_only, c.client_order_id, stp.value,
            )  # fmt: skip
        )
        if fok_unfillable:
            self._close(order, OrderStatus.CANCELED, CancelReason.FOK_UNFILLED, c.time)
            return
        if market.market_id not in account.positions:
            account.positions[market.market_id] = position
            market.positions[account.account_id] = position
        self.orders[order.order_id] = order
        if c.client_order_id is not None:
            account.client_order_ids[c.client_order_id] = order.order_id
        position.add_order(order)
        self._reconcile(account, position, c.time)
        self._take(market, account, position, order, c.time, cap_reason)

    def _take(
        self,
        market: Market,
        account: Account,
        position: Position,
        order: Order,
        time: int,
        cap_reason: CancelReason | None = None,
    ) -> None:
        """Match an incoming (or re-priced) order, then rest or close what is left of it."""
        stop_reason = self._match(market, order, time)
        if order.status is OrderStatus.OPEN:
            if order.filled == order.size:
                self._close_live(order, OrderStatus.FILLED, None, time)
            elif stop_reason is not None:
                self._close_live(order, OrderStatus.CANCELED, stop_reason, time)
            elif order.remaining and order.time_in_force in (TimeInForce.GTC, TimeInForce.GTD):
                market.book.add(order)
                if order.expire_at is not None:
                    heapq.heappush(self._gtd, (order.expire_at, order.order_id))
            else:
                reason = cap_reason or CancelReason.IOC_REMAINDER
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

    def _market_order_reach(self, market: Market, order: Order) -> tuple[int, int]:
        """How much of a market order the book could fill within its protection price, and the
        worst price it would reach doing so."""
        is_buy = order.is_buy
        limit = order.price
        book = market.book
        keys = book.ask_keys_best_last() if is_buy else book.bid_keys_best_last()
        levels = book.asks if is_buy else book.bids
        wanted = order.remaining
        reached = 0
        worst = limit
        for index in range(len(keys) - 1, -1, -1):
            price = -keys[index] if is_buy else keys[index]
            if (price > limit) if is_buy else (price < limit):
                break
            reached += levels[price].total
            worst = price
            if reached >= wanted:
                return wanted, worst
        return reached, worst

    def _affordable(
        self, account: Account, position: Position, order: Order, quantity: int
    ) -> int:
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
                self.seq, time, trade_id, market.market_id, price, quantity, taker.side.value,
                maker.order_id, taker.order_id, maker.account_id, taker.account_id, maker_fee,
                taker_fee,
            )  # fmt: skip
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
                position.collateral
                if closing == held
                else position.collateral * closing // held
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
                self.seq, time, position.account_id, position.market_id, position.size,
                position.collateral, position.realized_pnl,
            )  # fmt: skip
        )

    def _reconcile(self, account: Account, position: Position, time: int) -> None:
        """Bring the reservations held for the position's orders to what they need now."""
        need = position.need(True)
        delta = need - position.held_buy
        if delta:
            self._reserve(account, delta, time)
            position.held_buy = need
        need = position.need(False)
        delta = need - position.held_sell
        if delta:
            self._reserve(account, delta, time)
            position.held_sell = need

    def _reserve(self, account: Account, delta: int, time: int) -> None:
        if delta > 0:
            self._move(account.cash_key, account.orders_key, delta, "reserve", "", time)
        else:
            self._move(account.orders_key, account.cash_key, -delta, "release", "", time)

    def _cancel(self, order: Order, reason: CancelReason, time: int) -> None:
        """Take a resting order off the book and close it (reservations settle on reconcile)."""
        market = self.markets[order.market_id]
        market.book.remove(order)
        self._close_live(order, OrderStatus.CANCELED, reason, time)
        account = self.accounts[order.account_id]
        self._reconcile(account, account.positions[order.market_id], time)

    def _close_live(
        self, order: Order, status: OrderStatus, reason: CancelReason | None, time: int
    ) -> None:
        """Forget a live order that is off the book (or never rested) and report its end."""
        account = self.accounts[order.account_id]
        account.positions[order.market_id].remove_order(order)
        del self.orders[order.order_id]
        if order.client_order_id is not None:
            del account.client_order_ids[order.client_order_id]
        self._close(order, status, reason, time)

    def _close(
        self, order: Order, status: OrderStatus, reason: CancelReason | None, time: int
    ) -> None:
        order.status = status
        self.seq += 1
        self._out.append(
            OrderClosed(
                self.seq, time, order.order_id, order.account_id, order.market_id, status.value,
                reason.value if reason is not None else None, order.filled, order.size - order.filled,
            )  # fmt: skip
        )

    def _owned_order(self, account: Account, order_id: object) -> Order:
        order = self.orders.get(order_id) if _is_int(order_id) else None  # type: ignore[arg-type]
        if order is None or order.account_id != account.account_id:
            raise DomainError(
                ErrorCode.ORDER_NOT_FOUND,
                f"no open order {order_id!r} for this account",
                {"order_id": order_id},
            )
        return order

    def _cancel_order(self, c: cmd.CancelOrder) -> None:
        account = self.account(c.account_id)
        order = self._owned_order(account, c.order_id)
        self._cancel(order, CancelReason.USER, c.time)
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

    def _emit_amended(self, order: Order, requeued: bool, time: int) -> None:
        self.seq += 1
        self._out.append(
            OrderAmended(
                self.seq, time, order.order_id, order.account_id, order.market_id, order.price,
                order.size, order.remaining, requeued,
            )  # fmt: skip
        )

    def _expire_orders(self, c: cmd.ExpireOrders) -> None:
        self._sweep_expired(c.time)

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

    def _expire(self, order: Order, time: int) -> None:
        self.markets[order.market_id].book.remove(order)
        self._close_live(order, OrderStatus.EXPIRED, CancelReason.EXPIRED, time)
        account = self.accounts[order.account_id]
        self._reconcile(account, account.positions[order.market_id], time)

    def _flush_book(self, market: Market, time: int) -> None:
        book = market.book
        if not book.touched:
            return
        out = self._out
        market_id = market.market_id
        for is_buy, price in book.touched:
            self.seq += 1
            out.append(
                BookLevelChanged(
                    self.seq, time, market_id, "buy" if is_buy else "sell", price,
                    book.level_size(is_buy, price),
                )  # fmt: skip
            )
        book.touched.clear()

    # ------------------------------------------------------------------ settlement

    def _propose_settlement(self, c: cmd.ProposeSettlement) -> None:
        market = self.market(c.market_id)
        if market.status is not MarketStatus.CLOSED:
            raise DomainError(
                ErrorCode.INVALID_TRANSITION,
                "a settlement is proposed for a closed market",
                {"market_id": market.market_id, "status": str(market.status)},
            )
        if not _is_int(c.value):
            raise DomainError(
                ErrorCode.INVALID_SETTLEMENT,
                "the settlement value must be an integer of micro price units",
                {"value": c.value},
            )
        if not isinstance(c.evidence_hash, str) or len(c.evidence_hash) != 64:
            raise invalid("evidence_hash", "must be the hex SHA-256 of the canonical evidence")
        if not isinstance(c.proposer, str) or not c.proposer:
            raise invalid("proposer", "must name who proposes")
        low = market.floor * market.tick_value
        high = market.cap * market.tick_value
        if market.kind is MarketKind.BINARY:
            if c.value not in (low, high):
                raise DomainError(
                    ErrorCode.INVALID_SETTLEMENT,
                    "a binary market settles to exactly 0 or 1",
                    {"value": c.value},
                )
            value = c.value
        else:
            value = min(max(c.value, low), high)
        self._set_status(market, MarketStatus.RESOLVING, c.time)
        market.settlement = Settlement(value, c.evidence_hash, c.proposer, c.time)
        self.seq += 1
        self._out.append(
            SettlementProposed(
                self.seq, c.time, market.market_id, value, c.evidence_hash, c.proposer
            )
        )

    def _overturn_settlement(self, c: cmd.OverturnSettlement) -> None:
        market = self.market(c.market_id)
        if market.status is not MarketStatus.RESOLVING or market.settlement is None:
            raise DomainError(
                ErrorCode.INVALID_TRANSITION,
                "only a proposed settlement can be overturned",
                {"market_id": market.market_id, "status": str(market.status)},
            )
        if not isinstance(c.by, str) or not c.by:
            raise invalid("by", "must name who overturns")
        settlement = market.settlement
        market.settlement = None
        self._set_status(market, MarketStatus.CLOSED, c.time)
        self.seq += 1
        self._out.append(
            SettlementOverturned(
                self.seq, c.time, market.market_id, settlement.value, settlement.evidence_hash,
                c.by,
            )  # fmt: skip
        )

    def _finalize_settlement(self, c: cmd.FinalizeSettlement) -> None:
        market = self.market(c.market_id)
        settlement = market.settlement
        if market.status is not MarketStatus.RESOLVING or settlement is None:
            raise DomainError(
                ErrorCode.INVALID_TRANSITION,
                "only a proposed settlement can be finalized",
                {"market_id": market.market_id, "status": str(market.status)},
            )
        value = settlement.value
        long_value = value - market.floor * market.tick_value
        short_value = market.cap * market.tick_value - value
        clearing = clearing_key(market.market_id)
        ref = f"settle:{market.market_id}"
        total = 0
        for position in market.positions.values():
            size = position.size
            if size == 0:
                continue
            payout = long_value * size if size > 0 else short_value * -size
            cash = cash_key(position.account_id)
            if position.collateral:
                self._move(position.collateral_key, cash, position.collateral, "settlement", ref,
                           c.time)  # fmt: skip
            pnl = payout - position.collateral
            if pnl > 0:
                self._move(clearing, cash, pnl, "settlement_pnl", ref, c.time)
            elif pnl < 0:
                self._move(cash, clearing, -pnl, "settlement_pnl", ref, c.time)
            position.realized_pnl += pnl
            position.collateral = 0
            position.size = 0
            total += payout
            self.seq += 1
            self._out.append(
                PositionChanged(
                    self.seq, c.time, position.account_id, market.market_id, 0, 0,
                    position.realized_pnl,
                )  # fmt: skip
            )
        market.open_interest = 0
        self._set_status(market, MarketStatus.SETTLED, c.time)
        self.seq += 1
        self._out.append(
            SettlementFinalized(
                self.seq, c.time, market.market_id, value, settlement.evidence_hash, total
            )
        )
