"""How domain and store records look on the wire: the spec's field names, decimal numbers,
ISO-8601 times and prefixed ids."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from ..domain import Engine, MarketStatus
from ..domain.market import Market
from .money import ticks_to_price
from .usdc import micro_price, to_usdc

ORDER_PREFIX = "ord_"
TRADE_PREFIX = "trd_"


def iso(ms: int | None) -> str | None:
    if ms is None:
        return None
    moment = datetime.fromtimestamp(ms / 1000, tz=UTC)
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def order_ref(order_id: int) -> str:
    return f"{ORDER_PREFIX}{order_id}"


def trade_ref(trade_id: int) -> str:
    return f"{TRADE_PREFIX}{trade_id}"


def parse_order_ref(value: str) -> int | None:
    digits = value[len(ORDER_PREFIX) :] if value.startswith(ORDER_PREFIX) else ""
    # ASCII only: str.isdigit() also takes superscripts (int() refuses them) and other
    # scripts' digits (int() reads them, so "ord_" + Arabic-Indic one would be ord_1).
    ok = digits.isascii() and digits.isdigit() and len(digits) < 19
    return int(digits) if ok else None


def tick_size(market: Market) -> Decimal:
    return Decimal(market.tick_value) / Decimal(1_000_000)


def book_levels(market: Market, is_buy: bool, depth: int) -> list[dict[str, Any]]:
    """One side of the aggregated book, best first, as REST and the stream show it."""
    step = tick_size(market)
    return [{"price": float(p * step), "size": s} for p, s in market.book.depth(is_buy, depth)]


def order_view(row: dict[str, Any], market: Market) -> dict[str, Any]:
    """An order from the store's ``orders`` row."""
    step = tick_size(market)
    return {
        "order_id": order_ref(row["order_id"]),
        "client_order_id": row["client_order_id"],
        "market_id": row["market_id"],
        "side": row["side"],
        "type": row["order_type"],
        "price": ticks_to_price(row["price"], step),
        "size": row["size"],
        "filled_size": row["filled"],
        "remaining_size": row["remaining"] if row["status"] == "open" else 0,
        "status": row["status"],
        "cancel_reason": row["reason"],
        "time_in_force": row["time_in_force"],
        "expire_at": iso(row["expire_at"]),
        "post_only": bool(row["post_only"]),
        "reduce_only": bool(row["reduce_only"]),
        "stp": row["stp"],
        "created_at": iso(row["created_at"]),
        "updated_at": iso(row["updated_at"]),
    }


def fill_view(row: dict[str, Any], market: Market, account_id: str) -> dict[str, Any]:
    maker = row["maker_account_id"] == account_id
    taker_side = row["taker_side"]
    side = taker_side if not maker else ("sell" if taker_side == "buy" else "buy")
    return {
        "trade_id": trade_ref(row["trade_id"]),
        "order_id": order_ref(row["maker_order_id"] if maker else row["taker_order_id"]),
        "market_id": row["market_id"],
        "side": side,
        "price": ticks_to_price(row["price"], tick_size(market)),
        "size": row["size"],
        "liquidity": "maker" if maker else "taker",
        "fee": to_usdc(row["maker_fee"] if maker else row["taker_fee"]),
        "created_at": iso(row["created_at"]),
    }


def trade_view(row: dict[str, Any], market: Market) -> dict[str, Any]:
    return {
        "trade_id": trade_ref(row["trade_id"]),
        "market_id": row["market_id"],
        "price": ticks_to_price(row["price"], tick_size(market)),
        "size": row["size"],
        "taker_side": row["taker_side"],
        "created_at": iso(row["created_at"]),
    }


def market_view(market: Market, details: dict[str, Any] | None, volume_24h: int) -> dict[str, Any]:
    step = tick_size(market)
    book = market.book
    details = details or {}
    return {
        "id": market.market_id,
        "name": details.get("name") or market.market_id,
        "type": market.kind.value,
        "status": market.status.value,
        "question": details.get("question"),
        "description": details.get("description"),
        "resolution_source": details.get("resolution_source"),
        "settlement_date": iso(details.get("settlement_date") or market.close_time),
        "close_time": iso(market.close_time),
        "last_price": ticks_to_price(market.last_price, step),
        "bid": ticks_to_price(book.best_bid(), step),
        "ask": ticks_to_price(book.best_ask(), step),
        "volume_24h": volume_24h,
        "open_interest": market.open_interest,
        "rules": {
            "tick_size": float(step),
            "floor": float(market.floor * step),
            "cap": float(market.cap * step),
            "min_size": market.min_size,
            "max_order_size": market.max_order_size,
            "max_position": market.max_position,
            "maker_fee_bps": market.maker_fee_bps,
            "taker_fee_bps": market.taker_fee_bps,
        },
        "settlement": settlement_summary(market),
    }


def settlement_summary(market: Market) -> dict[str, Any] | None:
    """The market's current proposal (or final settlement) as published on it."""
    settlement = market.settlement
    if settlement is None:
        return None
    return {
        "value": micro_price(settlement.value),
        "evidence_hash": settlement.evidence_hash,
        "proposed_at": iso(settlement.proposed_at),
        "dispute_ends_at": iso(settlement.final_after),
        "final": market.status is MarketStatus.SETTLED,
    }


def proposal_view(row: dict[str, Any]) -> dict[str, Any]:
    """One stored proposal with its evidence, so anyone can check the hash."""
    body = row.get("evidence")
    return {
        "value": micro_price(row["value"]),
        "evidence_hash": row["evidence_hash"],
        "evidence": None if body is None else json.loads(body),
        "evidence_canonical": body,
        "proposer": row["proposer"],
        "proposed_at": iso(row["proposed_at"]),
        "dispute_ends_at": iso(row["final_after"]),
        "outcome": row["outcome"],
        "decided_by": row["decided_by"],
        "decided_at": iso(row["decided_at"]),
    }


def settlement_view(market: Market, rows: list[dict[str, Any]]) -> dict[str, Any]:
    """``GET /v1/markets/{id}/settlement``: the current proposal and every earlier one."""
    proposals = [proposal_view(row) for row in rows]
    current = next(
        (p for p in reversed(proposals) if p["outcome"] in ("proposed", "finalized")), None
    )
    return {
        "market_id": market.market_id,
        "status": market.status.value,
        "hash_algorithm": "sha256 of the evidence canonicalized per RFC 8785 (JCS)",
        "current": current,
        "proposals": proposals,
    }


def balance_view(engine: Engine, account_id: str) -> dict[str, Any]:
    available = engine.available(account_id)
    reserved = engine.reserved(account_id)
    return {
        "total_balance": to_usdc(available + reserved),
        "available": to_usdc(available),
        "reserved": to_usdc(reserved),
        "currency": "USDC",
    }


def position_view(engine: Engine, account_id: str, market_id: str) -> dict[str, Any]:
    """One position with its PnL, marked at the mid when both sides quote, else the last trade."""
    position = engine.account(account_id).positions.get(market_id)
    market = engine.markets[market_id]
    step = tick_size(market)
    bid, ask = market.book.best_bid(), market.book.best_ask()
    mark = (bid + ask) // 2 if bid is not None and ask is not None else market.last_price
    if position is None or position.size == 0:
        size, average, unrealized, realized, margin = 0, None, 0, 0, 0
        if position is not None:
            realized = position.realized_pnl
    else:
        floor, cap, tv = market.floor, market.cap, market.tick_value
        size = position.size
        average = micro_price(position.average_price_micro(floor, cap, tv))
        unrealized = position.unrealized_pnl(mark, floor, cap, tv) if mark is not None else 0
        realized, margin = position.realized_pnl, position.collateral
    return position_fields(market_id, size, average, mark, step, unrealized, realized, margin)


def position_fields(
    market_id: str,
    size: int,
    average: float | None,
    mark: int | None,
    step: Decimal,
    unrealized: int,
    realized: int,
    margin: int,
) -> dict[str, Any]:
    """A position as REST and the stream show it: money in USDC, the mark as a price."""
    return {
        "market_id": market_id,
        "size": size,
        "average_price": average,
        "current_price": ticks_to_price(mark, step),
        "unrealized_pnl": to_usdc(unrealized),
        "realized_pnl": to_usdc(realized),
        "margin_used": to_usdc(margin),
    }


def positions_view(engine: Engine, account_id: str) -> dict[str, Any]:
    positions = engine.account(account_id).positions
    return {
        "positions": [
            position_view(engine, account_id, market_id)
            for market_id in sorted(positions)
            if positions[market_id].size != 0
        ]
    }
