"""The engine's state and the bookkeeping every command shares.

``EngineState`` holds accounts, markets, live orders, the ledger and the event sequence, and the
primitives that change them consistently: ledger moves, reservation reconciling, closing orders,
book-level events. The command handlers build on it (matching, order entry, settlement).
"""

from __future__ import annotations

import heapq
from typing import Any

from .errors import DomainError, ErrorCode, invalid
from .events import (
    BookLevelChanged,
    Event,
    LedgerEntry,
    MarketStatusChanged,
    OrderAmended,
    OrderClosed,
)
from .ledger import (
    Ledger,
    cash_key,
    orders_key,
)
from .market import Market
from .order import Order
from .position import Position
from .types import (
    CancelReason,
    MarketStatus,
    OrderStatus,
    SelfTradePrevention,
    Side,
)

MICRO = 1_000_000
MAX_FEE_BPS = 1_000
# Bounds that keep every stored integer inside a signed 64-bit column, whatever the input:
# a contract is worth at most 1,000 USDC and a size at most 10⁹, so no notional, reservation or
# collateral passes 10¹⁸ micro-USDC.
MAX_TIME_MS = 253_402_300_799_999  # 9999-12-31T23:59:59.999Z
MAX_AMOUNT = 10**15  # micro-USDC in one deposit or withdrawal (a billion USDC)
MAX_CONTRACT_VALUE = 10**9  # micro-USDC a contract pays at its cap
MAX_SIZE = 10**9
MIN_TICK_VALUE = 100
MAX_CLIENT_ORDER_ID = 64
MAX_ORDER_GROUP_ID = 64

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


def is_int(value: object) -> bool:
    return type(value) is int


def parse_enum(enum: Any, value: object, field: str) -> Any:
    if type(value) is enum:
        return value
    try:
        return enum(value)
    except ValueError:
        raise invalid(field, f"must be one of {[m.value for m in enum]}") from None


class EngineState:
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

    def account(self, account_id: str) -> Account:
        # Not a string (an unhashable one included) is not found, never a TypeError.
        account = self.accounts.get(account_id) if isinstance(account_id, str) else None
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

    def next_expiry(self) -> int | None:
        """When the next GTD order falls due, if any (drops stale heap entries on the way)."""
        gtd = self._gtd
        while gtd:
            expire_at, order_id = gtd[0]
            order = self.orders.get(order_id)
            if order is not None and order.expire_at == expire_at:
                return expire_at
            heapq.heappop(gtd)
        return None

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

    def _move(self, debit: str, credit: str, amount: int, kind: str, ref: str, time: int) -> None:
        self.ledger.move(debit, credit, amount)
        self.seq += 1
        self._out.append(LedgerEntry(self.seq, time, debit, credit, amount, kind, ref))

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

    def _closable(self, position: Position, is_buy: bool) -> int:
        size = position.size
        if is_buy:
            return -size if size < 0 else 0
        return size if size > 0 else 0

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
                self.seq,
                time,
                order.order_id,
                order.account_id,
                order.market_id,
                status.value,
                reason.value if reason is not None else None,
                order.filled,
                order.size - order.filled,
            )
        )

    def _expire(self, order: Order, time: int) -> None:
        self.markets[order.market_id].book.remove(order)
        self._close_live(order, OrderStatus.EXPIRED, CancelReason.EXPIRED, time)
        account = self.accounts[order.account_id]
        self._reconcile(account, account.positions[order.market_id], time)

    def _emit_amended(self, order: Order, requeued: bool, time: int) -> None:
        """Report an order's new price, size or remaining size."""
        self.seq += 1
        self._out.append(
            OrderAmended(
                self.seq,
                time,
                order.order_id,
                order.account_id,
                order.market_id,
                order.price,
                order.size,
                order.remaining,
                requeued,
            )
        )

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
                    self.seq,
                    time,
                    market_id,
                    "buy" if is_buy else "sell",
                    price,
                    book.level_size(is_buy, price),
                )
            )
        book.touched.clear()
