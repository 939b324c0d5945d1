"""Response shapes for the OpenAPI document: what the SDK and schemathesis hold the server to."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field


class Open(BaseModel):
    # Replies may gain fields; clients should keep what they do not know.
    model_config = ConfigDict(extra="allow")


class ErrorBody(Open):
    code: str = Field(examples=["INSUFFICIENT_BALANCE"])
    message: str = Field(examples=["insufficient collateral for this order"])
    details: dict[str, Any] = Field(examples=[{"required": 1000.0, "available": 850.0}])


class ErrorResponse(Open):
    error: ErrorBody


def errors(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """The ``responses`` entry documenting error statuses in the spec's envelope."""
    described = {
        400: "INVALID_REQUEST or a refusal named by its code",
        401: "UNAUTHORIZED, INVALID_SIGNATURE or TIMESTAMP_EXPIRED",
        403: "FORBIDDEN: the key lacks the scope",
        404: "Not found (see the error code)",
        409: "Conflict with the market's or order's state",
        413: "PAYLOAD_TOO_LARGE",
        415: "UNSUPPORTED_MEDIA_TYPE: send the body as application/json",
        429: "RATE_LIMIT_EXCEEDED (see Retry-After)",
        503: "SERVICE_UNAVAILABLE: not taking requests now; retry shortly",
    }
    return {s: {"model": ErrorResponse, "description": described[s]} for s in statuses}


# What every operation of a kind can answer, whatever its parameters; each route adds the
# statuses its own parameters and refusals give (400, 404, 409) and BODY_ERRORS if it takes a
# body. 503 is everywhere: the connection cap answers it before a request is read. Statuses
# only a request the operation does not take could draw (a body sent to a GET, oversized
# headers) are left out.
MARKET_DATA_ERRORS = errors(429, 503)  # per-IP limit, no key needed
# Market data that checks auth headers a caller chooses to send (and counts it per key).
PUBLIC_ERRORS = errors(401, 403, 429, 503)
PRIVATE_ERRORS = errors(401, 403, 429, 503)  # signed: bad signature, missing scope
ADMIN_ERRORS = errors(401, 503)  # the admin token; not rate limited
# A JSON body: too large, not sent as JSON, or not the request's shape.
BODY_ERRORS = errors(400, 413, 415)
# A body on a DELETE is not held to its media type (FastAPI reads it as JSON regardless).
DELETE_BODY_ERRORS = errors(400, 413)


class Fill(Open):
    trade_id: str
    price: float
    size: int
    fee: float


class Order(Open):
    order_id: str = Field(examples=["ord_123"])
    client_order_id: str | None
    order_group_id: str | None = Field(
        description="the order group it was placed in (its contract limit), if any"
    )
    market_id: str
    side: str
    type: str
    price: float | None
    size: int
    filled_size: int
    remaining_size: int
    status: str = Field(examples=["open"])
    cancel_reason: str | None
    time_in_force: str
    expire_at: str | None
    post_only: bool
    reduce_only: bool
    stp: str
    created_at: str
    updated_at: str


class PlacedOrder(Order):
    fills: list[Fill] = []


class OrderList(Open):
    orders: list[Order]
    next_cursor: str | None


class BatchResult(Open):
    status: int
    order: Order | None = None
    error: ErrorBody | None = None


class BatchResults(Open):
    results: list[BatchResult]


class Canceled(Open):
    canceled: list[str]
    count: int


class Heartbeat(Open):
    armed: bool
    timeout_s: int = Field(examples=[10], description="0 when disarmed")
    deadline: str | None = Field(
        examples=["2026-12-07T01:30:10.000Z"],
        description="When the switch fires unless another heartbeat comes; null when disarmed",
    )


class OrderGroup(Open):
    order_group_id: str = Field(examples=["grp_3f9a1c2b7d4e5f60"])
    status: Literal["active", "triggered"]
    max_filled_size: int = Field(description="the contract limit")
    window_s: int = Field(description="the rolling window the limit applies over")
    filled_in_window: int = Field(description="contracts its orders filled within the window")
    open_orders: int = Field(description="its orders resting now")
    created_at: str
    triggered_at: str | None = Field(description="when it reached its limit; null while active")
    reset_at: str | None = Field(description="its last reset; null if never reset")


class OrderGroups(Open):
    order_groups: list[OrderGroup]


class DeletedOrderGroup(Open):
    order_group_id: str
    deleted: bool
    canceled: list[str] = Field(description="its orders this canceled")
    count: int


class QueuePosition(Open):
    order_id: str = Field(examples=["ord_123"])
    price: float = Field(examples=[0.87])
    contracts_ahead: int = Field(description="Contracts resting before this order at its price")
    orders_ahead: int = Field(description="Orders resting before this order at its price")


class Balance(Open):
    total_balance: float = Field(examples=[50000.0])
    available: float = Field(examples=[42000.0])
    reserved: float = Field(examples=[8000.0])
    currency: str = Field(examples=["USDC"])


class Position(Open):
    market_id: str
    status: Literal["open", "settled"] | None = Field(
        default=None, description="given with status=settled or all"
    )
    size: int
    average_price: float | None
    current_price: float | None
    unrealized_pnl: float
    realized_pnl: float
    margin_used: float


class Positions(Open):
    positions: list[Position]
    next_cursor: str | None = Field(
        default=None, description="more settled positions (status=settled or all)"
    )


class SettledPosition(Open):
    market_id: str
    final_value: float = Field(description="the value the market settled to")
    size: int = Field(description="signed contracts held at settlement")
    cost_basis: float = Field(description="USDC the position had locked (returned to cash)")
    payout: float = Field(description="USDC paid to cash at settlement")
    settlement_pnl: float = Field(description="payout - cost_basis")
    realized_pnl: float = Field(description="the position's realized PnL in the market, fees aside")
    settled_at: str


class SettledPositions(Open):
    settlements: list[SettledPosition]
    next_cursor: str | None


class FeePeriod(Open):
    period_start: str
    period_end: str
    fees_paid: float
    rebates_earned: float
    net_fees: float = Field(description="fees_paid - rebates_earned")
    fee_count: int
    rebate_count: int


class FeeSummary(Open):
    period: Literal["day", "month"]
    periods: list[FeePeriod]
    next_cursor: str | None


class AccountFill(Open):
    trade_id: str
    order_id: str
    market_id: str
    side: str
    price: float
    size: int
    liquidity: str
    fee: float
    created_at: str


class Fills(Open):
    fills: list[AccountFill]
    next_cursor: str | None


class LedgerEntry(Open):
    entry_id: int
    kind: str
    amount: float
    debit: str
    credit: str
    market_id: str | None
    ref: str | None
    created_at: str


class Ledger(Open):
    entries: list[LedgerEntry]
    next_cursor: str | None


class Rules(Open):
    tick_size: float
    floor: float
    cap: float
    min_size: int
    max_order_size: int
    max_position: int
    maker_fee_bps: int
    taker_fee_bps: int


class SettlementView(Open):
    value: float | None
    evidence_hash: str | None
    proposed_at: str | None
    dispute_ends_at: str | None
    final: bool


class Proposal(Open):
    value: float
    evidence_hash: str = Field(description="hex SHA-256 of evidence_canonical")
    evidence: dict[str, Any] | None
    evidence_canonical: str | None = Field(description="the evidence as RFC 8785 JSON")
    proposer: str
    proposed_at: str
    dispute_ends_at: str | None
    outcome: Literal["proposed", "overturned", "finalized"]
    decided_by: str | None
    decided_at: str | None


class SettlementRecord(Open):
    market_id: str
    status: str
    hash_algorithm: str
    current: Proposal | None
    proposals: list[Proposal]


class FaucetGrant(Open):
    amount: float
    granted_today: float
    daily_cap: float
    balance: Balance


class MarketGroupRef(Open):
    id: str
    title: str


class Market(Open):
    id: str = Field(examples=["suez-apr2025"])
    name: str
    type: str
    status: str
    question: str | None
    description: str | None
    resolution_source: str | None
    settlement_date: str | None
    close_time: str | None
    last_price: float | None
    bid: float | None
    ask: float | None
    midpoint: float | None = Field(
        description="mid of the best bid and ask; null if a side is empty"
    )
    change_24h: float | None = Field(
        description="last_price minus the last trade price 24 h ago; null without a trade then"
    )
    volume_24h: int
    open_interest: int
    rules: Rules
    settlement: SettlementView | None
    category: str | None
    tags: list[str]
    series: MarketGroupRef | None = Field(description="the series the market recurs in")
    event: MarketGroupRef | None = Field(description="the event the market belongs to")


class Markets(Open):
    markets: list[Market]


class MarketGroup(Open):
    id: str = Field(examples=["suez-weekly"])
    title: str | None = Field(examples=["Suez Canal weekly availability"])
    market_ids: list[str] = Field(description="its markets, oldest first")


class SeriesList(Open):
    series: list[MarketGroup]


class EventList(Open):
    events: list[MarketGroup]


class Level(Open):
    price: float
    size: int


class OrderBook(Open):
    market_id: str
    timestamp: str
    seq: int
    bids: list[Level]
    asks: list[Level]


class PublicTrade(Open):
    trade_id: str
    market_id: str
    price: float
    size: int
    taker_side: str
    created_at: str


class Trades(Open):
    market_id: str
    trades: list[PublicTrade]
    next_cursor: str | None


class Candle(Open):
    start: str
    open: float
    high: float
    low: float
    close: float
    volume: int


class Candles(Open):
    market_id: str
    interval: str
    candles: list[Candle]


class ServerTime(Open):
    server_time: int = Field(description="Unix milliseconds")
    iso: str
