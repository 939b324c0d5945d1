"""What the engine reports outward: one dataclass per kind of change, each with a global seq.

Events are the only output of the domain (DESIGN §1). The service layer stores them and turns
them into replies and market data; replaying the commands reproduces them exactly.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(slots=True)
class Event:
    seq: int
    time: int


@dataclass(slots=True)
class AccountCreated(Event):
    account_id: str


@dataclass(slots=True)
class MarketCreated(Event):
    market_id: str
    kind: str
    floor: int
    cap: int
    tick_value: int
    close_time: int


@dataclass(slots=True)
class MarketStatusChanged(Event):
    market_id: str
    old_status: str
    new_status: str


@dataclass(slots=True)
class LedgerEntry(Event):
    """Money moved from one ledger account to another (double entry: one amount, two sides)."""

    debit: str
    credit: str
    amount: int
    kind: str
    ref: str


@dataclass(slots=True)
class OrderAccepted(Event):
    order_id: int
    account_id: str
    market_id: str
    side: str
    order_type: str
    price: int
    size: int
    time_in_force: str
    expire_at: int | None
    post_only: bool
    reduce_only: bool
    client_order_id: str | None
    stp: str
    order_group_id: str | None


@dataclass(slots=True)
class OrderAmended(Event):
    order_id: int
    account_id: str
    market_id: str
    price: int
    size: int
    remaining: int
    requeued: bool


@dataclass(slots=True)
class OrderClosed(Event):
    """The order left the book for good: filled, canceled or expired."""

    order_id: int
    account_id: str
    market_id: str
    status: str
    reason: str | None
    filled: int
    remaining: int


@dataclass(slots=True)
class Trade(Event):
    trade_id: int
    market_id: str
    price: int
    size: int
    taker_side: str
    maker_order_id: int
    taker_order_id: int
    maker_account_id: str
    taker_account_id: str
    maker_fee: int
    taker_fee: int


@dataclass(slots=True)
class PositionChanged(Event):
    account_id: str
    market_id: str
    size: int
    collateral: int
    realized_pnl: int


@dataclass(slots=True)
class BookLevelChanged(Event):
    """The aggregated size resting at one price after a command; size 0 means the level is gone."""

    market_id: str
    side: str
    price: int
    size: int


@dataclass(slots=True)
class SettlementProposed(Event):
    market_id: str
    value: int
    evidence_hash: str
    proposer: str
    final_after: int  # the end of the dispute window: finalizing is refused before it


@dataclass(slots=True)
class SettlementOverturned(Event):
    market_id: str
    value: int
    evidence_hash: str
    by: str


@dataclass(slots=True)
class SettlementFinalized(Event):
    market_id: str
    value: int
    evidence_hash: str
    payout_total: int
