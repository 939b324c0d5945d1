"""The commands the engine accepts. Time always arrives on the command (the domain has no clock).

Prices are integer ticks of the market's grid, sizes integer contracts, money integer micro-USDC,
times integer milliseconds since the Unix epoch.
"""

from __future__ import annotations

from dataclasses import dataclass

from .types import (
    CancelReason,
    MarketKind,
    MarketStatus,
    OrderType,
    SelfTradePrevention,
    Side,
    TimeInForce,
)


@dataclass(slots=True, frozen=True)
class Command:
    time: int


@dataclass(slots=True, frozen=True)
class CreateAccount(Command):
    account_id: str


@dataclass(slots=True, frozen=True)
class Deposit(Command):
    account_id: str
    amount: int
    ref: str = ""


@dataclass(slots=True, frozen=True)
class Withdraw(Command):
    account_id: str
    amount: int
    ref: str = ""


@dataclass(slots=True, frozen=True)
class CreateMarket(Command):
    """List a market. ``tick_value`` is micro-USDC per tick per contract (the tick size × 10⁶)."""

    market_id: str
    kind: MarketKind
    tick_value: int
    floor: int
    cap: int
    close_time: int
    min_size: int = 1
    max_order_size: int = 1_000_000
    max_position: int = 10_000_000
    maker_fee_bps: int = 0
    taker_fee_bps: int = 0


@dataclass(slots=True, frozen=True)
class ChangeMarketStatus(Command):
    market_id: str
    status: MarketStatus


@dataclass(slots=True, frozen=True)
class PlaceOrder(Command):
    """``price`` is the limit for a limit order and the optional protection price of a market."""

    account_id: str
    market_id: str
    side: Side
    size: int
    price: int | None = None
    order_type: OrderType = OrderType.LIMIT
    time_in_force: TimeInForce = TimeInForce.GTC
    expire_at: int | None = None
    post_only: bool = False
    reduce_only: bool = False
    client_order_id: str | None = None
    stp: SelfTradePrevention = SelfTradePrevention.CANCEL_NEWEST
    # The service's order group (its contract limit); the engine only carries the tag.
    order_group_id: str | None = None


@dataclass(slots=True, frozen=True)
class CancelOrder(Command):
    """Cancel one order; ``reason`` is one of ``REQUESTED_CANCEL_REASONS`` (``user`` unless a
    service policy cancels it: ``disconnect``, ``heartbeat_expired``, ``order_group_limit``)."""

    account_id: str
    order_id: int
    reason: CancelReason = CancelReason.USER


@dataclass(slots=True, frozen=True)
class CancelAll(Command):
    account_id: str
    market_id: str | None = None


@dataclass(slots=True, frozen=True)
class AmendOrder(Command):
    """Change a resting order's price and/or its total size (filled + remaining).

    Either may be left as it is. A smaller size at the same price keeps the order's place.
    """

    account_id: str
    order_id: int
    price: int | None = None
    size: int | None = None


@dataclass(slots=True, frozen=True)
class ExpireOrders(Command):
    """Expire every GTD order whose ``expire_at`` is at or before ``time`` (or ``up_to``).

    ``up_to`` lets a server that was down catch up in order: orders due before a market's
    close expire first, and the close then cancels the ones due after it.
    """

    up_to: int | None = None


@dataclass(slots=True, frozen=True)
class ProposeSettlement(Command):
    """``value`` is in micro price units (value × 10⁶), so index values need not sit on the grid.

    ``dispute_window`` (ms) is how long the proposal may be overturned before it can be final.
    """

    market_id: str
    value: int
    evidence_hash: str
    proposer: str
    dispute_window: int = 0


@dataclass(slots=True, frozen=True)
class OverturnSettlement(Command):
    market_id: str
    by: str


@dataclass(slots=True, frozen=True)
class FinalizeSettlement(Command):
    market_id: str
