"""An account's paged histories (orders, fills, settlements, ledger, fees) for REST and the
dashboard."""

from __future__ import annotations

from typing import Any, Literal

from ..service.venue import Venue
from ..store import queries
from .errors import invalid_request
from .refs import iso
from .timeutil import parse_time_param
from .usdc import to_usdc
from .views import fee_period_view, fee_periods, fill_view, order_view, settled_position_view

FeePeriod = Literal["day", "month"]
StatusFilter = Literal["open", "filled", "canceled", "expired", "rejected", "all"]


def _window(start_date: str | None, end_date: str | None) -> tuple[int | None, int | None]:
    return (
        parse_time_param(start_date, "start_date"),
        parse_time_param(end_date, "end_date", end=True),
    )


async def orders_page(
    venue: Venue,
    account_id: str,
    *,
    status: StatusFilter | None = None,
    market_id: str | None = None,
    start_date: str | None = None,
    end_date: str | None = None,
    limit: int = 100,
    cursor: str | None = None,
    client_order_id: str | None = None,
) -> dict[str, Any]:
    if market_id is not None:
        venue.market(market_id)
    start_ms, end_ms = _window(start_date, end_date)
    page = await venue.page(
        queries.list_orders,
        account_id,
        status=status,
        market_id=market_id,
        client_order_id=client_order_id,
        start_ms=start_ms,
        end_ms=end_ms,
        limit=limit,
        cursor=cursor,
    )
    return {
        "orders": [order_view(order, venue.market(order.market_id)) for order in page.items],
        "next_cursor": page.next_cursor,
    }


async def fills_page(
    venue: Venue,
    account_id: str,
    *,
    market_id: str | None = None,
    start_date: str | None = None,
    end_date: str | None = None,
    limit: int = 100,
    cursor: str | None = None,
) -> dict[str, Any]:
    if market_id is not None:
        venue.market(market_id)
    start_ms, end_ms = _window(start_date, end_date)
    page = await venue.page(
        queries.list_fills,
        account_id,
        market_id=market_id,
        start_ms=start_ms,
        end_ms=end_ms,
        limit=limit,
        cursor=cursor,
    )
    return {
        "fills": [fill_view(fill, venue.market(fill.market_id)) for fill in page.items],
        "next_cursor": page.next_cursor,
    }


async def settlements_page(
    venue: Venue,
    account_id: str,
    *,
    market_id: str | None = None,
    start_date: str | None = None,
    end_date: str | None = None,
    limit: int = 100,
    cursor: str | None = None,
) -> dict[str, Any]:
    """Positions a settlement paid out, newest first."""
    if market_id is not None:
        venue.market(market_id)
    start_ms, end_ms = _window(start_date, end_date)
    page = await venue.page(
        queries.list_position_settlements,
        account_id,
        market_id=market_id,
        start_ms=start_ms,
        end_ms=end_ms,
        limit=limit,
        cursor=cursor,
    )
    return {
        "settlements": [settled_position_view(row) for row in page.items],
        "next_cursor": page.next_cursor,
    }


async def ledger_page(
    venue: Venue,
    account_id: str,
    *,
    kind: str | None = None,
    start_date: str | None = None,
    end_date: str | None = None,
    limit: int = 100,
    cursor: str | None = None,
) -> dict[str, Any]:
    start_ms, end_ms = _window(start_date, end_date)
    page = await venue.page(
        queries.list_ledger,
        account_id,
        start_ms=start_ms,
        end_ms=end_ms,
        kind=kind,
        limit=limit,
        cursor=cursor,
    )
    return {
        "entries": [
            {
                "entry_id": row["seq"],
                "kind": row["kind"],
                "amount": to_usdc(row["amount"]),
                "debit": row["debit"],
                "credit": row["credit"],
                "market_id": row["market_id"],
                "ref": row["ref"] or None,
                "created_at": iso(row["created_at"]),
            }
            for row in page.items
        ],
        "next_cursor": page.next_cursor,
    }


async def fees_page(
    venue: Venue,
    account_id: str,
    *,
    period: FeePeriod = "day",
    start_date: str | None = None,
    end_date: str | None = None,
    limit: int = 100,
    cursor: str | None = None,
) -> dict[str, Any]:
    """Fees paid and rebates earned per UTC day or month, newest first."""
    start_ms, end_ms = _window(start_date, end_date)
    rows = await venue.read(queries.fees_by_day, account_id, start_ms=start_ms, end_ms=end_ms)
    periods = fee_periods(rows, period)
    if cursor:
        try:
            before = queries.decode_cursor(f"fees_{period}", cursor)
        except ValueError:
            raise invalid_request("cursor", "the cursor is not one this server gave out") from None
        periods = [p for p in periods if p["start"] < before]
    shown = periods[:limit]
    return {
        "period": period,
        "periods": [fee_period_view(totals, period) for totals in shown],
        "next_cursor": queries.encode_cursor(f"fees_{period}", shown[-1]["start"])
        if len(periods) > limit
        else None,
    }
