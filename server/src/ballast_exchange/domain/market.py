"""A market: its trading rules, lifecycle state, book and proposed settlement."""

from __future__ import annotations

from .book import Book
from .errors import DomainError, ErrorCode
from .position import Position
from .types import MARKET_TRANSITIONS, MarketKind, MarketStatus

BPS = 10_000


class Settlement:
    """A proposed (and, once final, booked) settlement value with its published evidence hash."""

    __slots__ = ("evidence_hash", "final_after", "proposed_at", "proposer", "value")

    def __init__(
        self, value: int, evidence_hash: str, proposer: str, proposed_at: int, final_after: int
    ) -> None:
        self.value = value
        self.evidence_hash = evidence_hash
        self.proposer = proposer
        self.proposed_at = proposed_at
        self.final_after = final_after


class Market:
    """Prices are ticks; ``tick_value`` is micro-USDC per tick per contract ($1 per price unit).

    ``fee_reserve_bps`` is the larger of the two fees (never below zero): an order may end up
    as maker or taker, so its reservation covers whichever costs more.
    """

    __slots__ = (
        "book",
        "cap",
        "close_time",
        "fee_reserve_bps",
        "floor",
        "kind",
        "last_price",
        "maker_fee_bps",
        "market_id",
        "max_order_size",
        "max_position",
        "min_size",
        "open_interest",
        "positions",
        "settlement",
        "status",
        "taker_fee_bps",
        "tick_value",
    )

    def __init__(
        self,
        market_id: str,
        kind: MarketKind,
        tick_value: int,
        floor: int,
        cap: int,
        close_time: int,
        min_size: int,
        max_order_size: int,
        max_position: int,
        maker_fee_bps: int,
        taker_fee_bps: int,
    ) -> None:
        self.market_id = market_id
        self.kind = kind
        self.tick_value = tick_value
        self.floor = floor
        self.cap = cap
        self.close_time = close_time
        self.min_size = min_size
        self.max_order_size = max_order_size
        self.max_position = max_position
        self.maker_fee_bps = maker_fee_bps
        self.taker_fee_bps = taker_fee_bps
        self.fee_reserve_bps = max(maker_fee_bps, taker_fee_bps, 0)
        self.status = MarketStatus.PENDING
        self.book = Book()
        self.settlement: Settlement | None = None
        self.open_interest = 0
        self.last_price: int | None = None
        # Every account that has ever held a position or an order here, in first-seen order.
        self.positions: dict[str, Position] = {}

    def check_transition(self, new_status: MarketStatus) -> None:
        if new_status not in MARKET_TRANSITIONS[self.status]:
            raise DomainError(
                ErrorCode.INVALID_TRANSITION,
                f"market {self.market_id} cannot go from {self.status} to {new_status}",
                {"market_id": self.market_id, "status": str(self.status), "to": str(new_status)},
            )

    def lock_per_contract(self, is_buy: bool, price: int) -> int:
        """Collateral one contract opened at ``price`` locks: p − floor long, cap − p short."""
        ticks = price - self.floor if is_buy else self.cap - price
        return ticks * self.tick_value

    def fee(self, price: int, size: int, bps: int) -> int:
        """Fee on a fill's notional, rounded up; a negative ``bps`` gives a rebate rounded down."""
        notional = price * self.tick_value * size
        if bps >= 0:
            return -(-notional * bps // BPS)
        return -(notional * -bps // BPS)

    def fee_reserve_per_contract(self, price: int) -> int:
        # Rounded up per contract, so any split into fills costs no more than is reserved.
        return -(-price * self.tick_value * self.fee_reserve_bps // BPS)
