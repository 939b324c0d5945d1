"""How domain and store records look on the wire: the spec's field names, decimal numbers,
ISO-8601 times and prefixed ids."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from ..domain import MarketStatus
from ..domain.market import Market
from ..service.faucet import FaucetGrant
from ..service.key_issuing import IssuedKey
from ..service.reads import Balance, PositionRecord, Reads
from ..store.order_records import FillRecord, OrderRecord, TradeRecord
from .money import ticks_to_price
from .refs import iso, order_ref, trade_ref
from .usdc import micro_price, to_usdc


def tick_size(market: Market) -> Decimal:
    return Decimal(market.tick_value) / Decimal(1_000_000)


def book_levels(market: Market, is_buy: bool, depth: int) -> list[dict[str, Any]]:
    """One side of the aggregated book, best first, as REST and the stream show it."""
    step = tick_size(market)
    return [{"price": float(p * step), "size": s} for p, s in market.book.depth(is_buy, depth)]


def order_view(order: OrderRecord, market: Market) -> dict[str, Any]:
    step = tick_size(market)
    return {
        "order_id": order_ref(order.order_id),
        "client_order_id": order.client_order_id,
        "order_group_id": order.order_group_id,
        "market_id": order.market_id,
        "side": order.side,
        "type": order.order_type,
        "price": ticks_to_price(order.price, step),
        "size": order.size,
        "filled_size": order.filled,
        "remaining_size": order.remaining if order.status == "open" else 0,
        "status": order.status,
        "cancel_reason": order.reason,
        "time_in_force": order.time_in_force,
        "expire_at": iso(order.expire_at),
        "post_only": order.post_only,
        "reduce_only": order.reduce_only,
        "stp": order.stp,
        "created_at": iso(order.created_at),
        "updated_at": iso(order.updated_at),
    }


def fill_view(fill: FillRecord, market: Market) -> dict[str, Any]:
    return {
        "trade_id": trade_ref(fill.trade_id),
        "order_id": order_ref(fill.order_id),
        "market_id": fill.market_id,
        "side": fill.side,
        "price": ticks_to_price(fill.price, tick_size(market)),
        "size": fill.size,
        "liquidity": fill.liquidity,
        "fee": to_usdc(fill.fee),
        "created_at": iso(fill.created_at),
    }


def trade_view(trade: TradeRecord, market: Market) -> dict[str, Any]:
    return {
        "trade_id": trade_ref(trade.trade_id),
        "market_id": trade.market_id,
        "price": ticks_to_price(trade.price, tick_size(market)),
        "size": trade.size,
        "taker_side": trade.taker_side,
        "created_at": iso(trade.created_at),
    }


def midpoint(bid: int | None, ask: int | None, step: Decimal) -> float | None:
    """The mid of the best bid and ask (ticks); None when a side is empty. Half a tick when the
    spread is odd: the mid is shown exactly, not rounded to the grid."""
    return None if bid is None or ask is None else float((bid + ask) * step / 2)


def change_24h(last: int | None, day_ago: int | None, step: Decimal) -> float | None:
    """The last trade price less the one a day ago (ticks); None without a trade either time."""
    return None if last is None or day_ago is None else float((last - day_ago) * step)


def market_view(
    market: Market,
    details: dict[str, Any] | None,
    volume_24h: int,
    price_24h_ago: int | None = None,
) -> dict[str, Any]:
    """A market as REST shows it; ``price_24h_ago`` is its last trade price (ticks) a day ago,
    the reference of ``change_24h`` (None: it had not traded by then)."""
    step = tick_size(market)
    book = market.book
    details = details or {}
    bid, ask = book.best_bid(), book.best_ask()
    last = market.last_price
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
        "last_price": ticks_to_price(last, step),
        "bid": ticks_to_price(bid, step),
        "ask": ticks_to_price(ask, step),
        "midpoint": midpoint(bid, ask, step),
        "change_24h": change_24h(last, price_24h_ago, step),
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
        **discovery_fields(details),
    }


def discovery_fields(details: dict[str, Any]) -> dict[str, Any]:
    """A market's category, tags, series and event from its descriptive columns."""
    tags = details.get("tags")
    series_id, event_id = details.get("series_id"), details.get("event_id")
    return {
        "category": details.get("category"),
        "tags": json.loads(tags) if tags else [],
        "series": None
        if series_id is None
        else {"id": series_id, "title": details["series_title"]},
        "event": None if event_id is None else {"id": event_id, "title": details["event_title"]},
    }


def discovery_columns(fields: dict[str, Any]) -> dict[str, Any]:
    """The columns of request fields ``category``, ``tags``, ``series``, ``event`` (only those
    given; a null clears); the inverse of ``discovery_fields``."""
    columns: dict[str, Any] = {}
    if "category" in fields:
        columns["category"] = fields["category"]
    if "tags" in fields:
        tags = fields["tags"]
        # One spelling per tag, in the order first given.
        columns["tags"] = None if tags is None else json.dumps(list(dict.fromkeys(tags)))
    for grouping in ("series", "event"):
        if grouping in fields:
            ref = fields[grouping]
            columns[f"{grouping}_id"] = None if ref is None else ref["id"]
            columns[f"{grouping}_title"] = None if ref is None else ref["title"]
    return columns


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


def balance_view(balance: Balance) -> dict[str, Any]:
    return {
        "total_balance": to_usdc(balance.total),
        "available": to_usdc(balance.available),
        "reserved": to_usdc(balance.reserved),
        "currency": "USDC",
    }


def position_view(position: PositionRecord, market: Market) -> dict[str, Any]:
    return position_fields(
        position.market_id,
        position.size,
        micro_price(position.average_price_micro),
        position.mark,
        tick_size(market),
        position.unrealized_pnl,
        position.realized_pnl,
        position.margin,
    )


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


def positions_view(reads: Reads, account_id: str) -> dict[str, Any]:
    """The account's open positions, rendered now from the live engine."""
    return {
        "positions": [
            position_view(position, reads.market(position.market_id))
            for position in reads.positions(account_id)
        ]
    }


def settled_position_view(row: dict[str, Any]) -> dict[str, Any]:
    """One position a settlement paid out (``GET /v1/settlements``)."""
    return {
        "market_id": row["market_id"],
        "final_value": micro_price(row["value"]),
        "size": row["size"],
        "cost_basis": to_usdc(row["cost"]),
        "payout": to_usdc(row["payout"]),
        "settlement_pnl": to_usdc(row["payout"] - row["cost"]),
        "realized_pnl": to_usdc(row["realized_pnl"]),
        "settled_at": iso(row["settled_at"]),
    }


def settled_position_fields(row: dict[str, Any], market: Market) -> dict[str, Any]:
    """A paid-out position in the positions list: as it stood when it settled, marked at the
    final value, with nothing unrealized or held any more."""
    size, cost, tv = row["size"], row["cost"], market.tick_value
    average: int | None = None
    if size > 0:
        average = market.floor * tv + cost // size
    elif size < 0:
        average = market.cap * tv - cost // -size
    return {
        "market_id": row["market_id"],
        "status": "settled",
        "size": size,
        "average_price": micro_price(average),
        "current_price": micro_price(row["value"]),
        "unrealized_pnl": 0.0,
        "realized_pnl": to_usdc(row["realized_pnl"]),
        "margin_used": 0.0,
        "payout": to_usdc(row["payout"]),
        "settled_at": iso(row["settled_at"]),
    }


def period_start(day_ms: int, period: str) -> int:
    """The first ms of the UTC day or month holding ``day_ms``."""
    if period == "day":
        return day_ms
    day = datetime.fromtimestamp(day_ms / 1000, UTC)
    return int(datetime(day.year, day.month, 1, tzinfo=UTC).timestamp() * 1000)


def period_end(start_ms: int, period: str) -> int:
    if period == "day":
        return start_ms + 86_400_000
    start = datetime.fromtimestamp(start_ms / 1000, UTC)
    year, month = (start.year + 1, 1) if start.month == 12 else (start.year, start.month + 1)
    return int(datetime(year, month, 1, tzinfo=UTC).timestamp() * 1000)


def fee_periods(rows: list[dict[str, Any]], period: str) -> list[dict[str, Any]]:
    """Per-day fee and rebate sums (``queries.fees_by_day``) rolled into periods, newest first,
    in micro-USDC: ``start``, ``fees``, ``rebates``, ``fee_count``, ``rebate_count``."""
    periods: dict[int, dict[str, int]] = {}
    for row in rows:
        start = period_start(row["day"], period)
        totals = periods.setdefault(
            start, {"start": start, "fees": 0, "rebates": 0, "fee_count": 0, "rebate_count": 0}
        )
        if row["kind"] == "fee":
            totals["fees"] += int(row["amount"])
            totals["fee_count"] += int(row["entries"])
        else:
            totals["rebates"] += int(row["amount"])
            totals["rebate_count"] += int(row["entries"])
    return [periods[start] for start in sorted(periods, reverse=True)]


def fee_period_view(totals: dict[str, int], period: str) -> dict[str, Any]:
    return {
        "period_start": iso(totals["start"]),
        "period_end": iso(period_end(totals["start"], period)),
        "fees_paid": to_usdc(totals["fees"]),
        "rebates_earned": to_usdc(totals["rebates"]),
        "net_fees": to_usdc(totals["fees"] - totals["rebates"]),
        "fee_count": totals["fee_count"],
        "rebate_count": totals["rebate_count"],
    }


def faucet_grant_view(grant: FaucetGrant) -> dict[str, Any]:
    return {
        "amount": to_usdc(grant.amount),
        "granted_today": to_usdc(grant.granted_today),
        "daily_cap": to_usdc(grant.daily_cap),
        "balance": balance_view(grant.balance),
    }


def issued_key_view(key: IssuedKey) -> dict[str, Any]:
    """A new key, with the only sight of its secret."""
    return {
        "api_key": key.api_key,
        "api_secret": key.api_secret,
        "account_id": key.account_id,
        "scopes": list(key.scopes),
        "label": key.label,
        "tier": key.tier,
        "created_at": iso(key.created_at),
    }


def key_view(row: dict[str, Any]) -> dict[str, Any]:
    """A stored key as listed: never its secret."""
    return {
        "api_key": row["api_key"],
        "account_id": row["account_id"],
        "scopes": row["scopes"].split(","),
        "label": row["label"],
        "tier": row["tier"],
        "created_at": iso(row["created_at"]),
        "revoked_at": iso(row["revoked_at"]),
        "last_used_at": iso(row["last_used_at"]),
    }
