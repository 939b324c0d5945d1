"""The vocabulary of orders and markets: sides, order types, statuses, lifecycle states."""

from __future__ import annotations

from enum import StrEnum


class Side(StrEnum):
    BUY = "buy"
    SELL = "sell"


class OrderType(StrEnum):
    LIMIT = "limit"
    MARKET = "market"


class TimeInForce(StrEnum):
    GTC = "GTC"
    IOC = "IOC"
    FOK = "FOK"
    GTD = "GTD"


class SelfTradePrevention(StrEnum):
    CANCEL_NEWEST = "cancel_newest"
    CANCEL_OLDEST = "cancel_oldest"
    CANCEL_BOTH = "cancel_both"
    DECREMENT = "decrement"


class OrderStatus(StrEnum):
    OPEN = "open"
    FILLED = "filled"
    CANCELED = "canceled"
    EXPIRED = "expired"
    REJECTED = "rejected"


class MarketKind(StrEnum):
    BINARY = "binary"
    INDEX = "index"


class MarketStatus(StrEnum):
    PENDING = "pending"
    OPEN = "open"
    HALTED = "halted"
    CLOSED = "closed"
    RESOLVING = "resolving"
    SETTLED = "settled"


# The lifecycle of DESIGN §5. Overturning a proposal goes resolving -> closed.
MARKET_TRANSITIONS: dict[MarketStatus, frozenset[MarketStatus]] = {
    MarketStatus.PENDING: frozenset({MarketStatus.OPEN}),
    MarketStatus.OPEN: frozenset({MarketStatus.HALTED, MarketStatus.CLOSED}),
    MarketStatus.HALTED: frozenset({MarketStatus.OPEN, MarketStatus.CLOSED}),
    MarketStatus.CLOSED: frozenset({MarketStatus.RESOLVING}),
    MarketStatus.RESOLVING: frozenset({MarketStatus.CLOSED, MarketStatus.SETTLED}),
    MarketStatus.SETTLED: frozenset(),
}


class CancelReason(StrEnum):
    """Why an order left the book without filling completely."""

    USER = "user"
    IOC_REMAINDER = "ioc_remainder"
    FOK_UNFILLED = "fok_unfilled"
    SELF_TRADE = "self_trade"
    MARKET_CLOSED = "market_closed"
    REDUCE_ONLY = "reduce_only"
    INSUFFICIENT_BALANCE = "insufficient_balance"
    PROTECTION_PRICE = "protection_price"
    EXPIRED = "expired"
    DISCONNECT = "disconnect"  # cancel-on-disconnect: the connection that placed it is gone
    HEARTBEAT_EXPIRED = "heartbeat_expired"  # the dead-man switch: its key stopped heartbeating
    ORDER_GROUP_LIMIT = "order_group_limit"  # its order group filled its contract limit


# The reasons a CancelOrder command may give; the others are the engine's own.
REQUESTED_CANCEL_REASONS = frozenset(
    {
        CancelReason.USER,
        CancelReason.DISCONNECT,
        CancelReason.HEARTBEAT_EXPIRED,
        CancelReason.ORDER_GROUP_LIMIT,
    }
)
