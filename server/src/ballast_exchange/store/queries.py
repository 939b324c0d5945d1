"""Reads for the API: orders, fills, trades, candles, ledger, markets, settlements, API keys.

Every function takes a ``Connection`` and returns plain dicts keyed by column name, in engine
units (ticks, contracts, micro-USDC, ms). Lists page newest first with keyset cursors: the
cursor is the opaque url-safe base64 of the last item's key, so a page never skips or repeats
rows however many are added meanwhile. Time ranges are half-open: ``start_ms <= t < end_ms``.
"""

from __future__ import annotations

import base64
import binascii
import json
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from sqlalchemy import (
    BigInteger,
    ColumnElement,
    Connection,
    Select,
    Table,
    cast,
    func,
    literal_column,
    select,
    union_all,
)

from .order_records import FillRecord, OrderRecord, TradeRecord
from .schema import (
    accounts,
    api_keys,
    evidence,
    ledger_entries,
    markets,
    orders,
    position_settlements,
    settlements,
    trades,
)

DEFAULT_LIMIT = 100
MAX_LIMIT = 1_000
Item = TypeVar("Item")
ORDER_STATUSES = frozenset({"open", "filled", "canceled", "expired", "rejected"})
_MAX_CURSOR_CHARS = 256


@dataclass(slots=True)
class Page(Generic[Item]):
    """One page of a list; ``next_cursor`` is None on the last page."""

    items: list[Item]
    next_cursor: str | None


# ---- cursors ----------------------------------------------------------------------------------


def encode_cursor(kind: str, key: int) -> str:
    """Opaque cursor for the item with ``key`` in a list of ``kind``."""
    raw = json.dumps([kind, key], separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(kind: str, cursor: str) -> int:
    """The key inside a cursor of ``kind``; ``ValueError`` for anything else.

    A cursor from another list (a trades cursor on orders) is refused too: its key would
    page through the wrong sequence.
    """
    if not isinstance(cursor, str) or not 0 < len(cursor) <= _MAX_CURSOR_CHARS:
        raise ValueError("invalid cursor")
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        raw = base64.b64decode(padded, altchars=b"-_", validate=True)
        data = json.loads(raw)
    except (binascii.Error, ValueError, UnicodeDecodeError):
        raise ValueError("invalid cursor") from None
    if (
        not isinstance(data, list)
        or len(data) != 2
        or data[0] != kind
        or type(data[1]) is not int
        or not 0 <= data[1] < 2**63  # keys are signed 64-bit columns
    ):
        raise ValueError("invalid cursor")
    return data[1]


def _check_limit(limit: int) -> int:
    if type(limit) is not int or not 1 <= limit <= MAX_LIMIT:
        raise ValueError(f"limit must be an integer from 1 to {MAX_LIMIT}")
    return limit


def _time_range(column: Any, start_ms: int | None, end_ms: int | None) -> list[ColumnElement[bool]]:
    conditions: list[ColumnElement[bool]] = []
    if start_ms is not None:
        conditions.append(column >= start_ms)
    if end_ms is not None:
        conditions.append(column < end_ms)
    return conditions


def _page(
    conn: Connection, query: Select[Any], key_column: Any, kind: str, limit: int, cursor: str | None
) -> Page[dict[str, Any]]:
    """Newest first by ``key_column``; fetch one row more than asked to know if a page follows."""
    _check_limit(limit)
    if cursor is not None:
        query = query.where(key_column < decode_cursor(kind, cursor))
    rows = conn.execute(query.order_by(key_column.desc()).limit(limit + 1)).mappings().all()
    items = [dict(row) for row in rows[:limit]]
    more = len(rows) > limit
    return Page(items, encode_cursor(kind, items[-1][key_column.name]) if more else None)


def _one(conn: Connection, table: Table, *conditions: ColumnElement[bool]) -> dict[str, Any] | None:
    row = conn.execute(select(table).where(*conditions)).mappings().first()
    return None if row is None else dict(row)


# ---- orders -----------------------------------------------------------------------------------


def get_order(conn: Connection, account_id: str, order_id: int) -> OrderRecord | None:
    """One of the account's orders (None for another account's order: not found either way)."""
    row = _one(conn, orders, orders.c.order_id == order_id, orders.c.account_id == account_id)
    return None if row is None else OrderRecord.from_row(row)


def get_order_by_client_id(
    conn: Connection, account_id: str, client_order_id: str
) -> OrderRecord | None:
    """The account's order with this ``client_order_id``, for idempotent retries."""
    row = _one(
        conn,
        orders,
        orders.c.account_id == account_id,
        orders.c.client_order_id == client_order_id,
    )
    return None if row is None else OrderRecord.from_row(row)


def list_orders(
    conn: Connection,
    account_id: str,
    *,
    status: str | None = None,
    market_id: str | None = None,
    start_ms: int | None = None,
    end_ms: int | None = None,
    limit: int = DEFAULT_LIMIT,
    cursor: str | None = None,
    client_order_id: str | None = None,
) -> Page[OrderRecord]:
    """The account's orders, newest first; ``status`` one of ``ORDER_STATUSES`` or ``"all"``."""
    query = select(orders).where(orders.c.account_id == account_id)
    if status is not None and status != "all":
        if status not in ORDER_STATUSES:
            raise ValueError(f"status must be one of {sorted(ORDER_STATUSES | {'all'})}")
        query = query.where(orders.c.status == status)
    if market_id is not None:
        query = query.where(orders.c.market_id == market_id)
    if client_order_id is not None:
        query = query.where(orders.c.client_order_id == client_order_id)
    query = query.where(*_time_range(orders.c.created_at, start_ms, end_ms))
    page = _page(conn, query, orders.c.order_id, "orders", limit, cursor)
    return Page([OrderRecord.from_row(row) for row in page.items], page.next_cursor)


# ---- trades and fills -------------------------------------------------------------------------


def list_trades(
    conn: Connection,
    market_id: str,
    *,
    start_ms: int | None = None,
    end_ms: int | None = None,
    limit: int = DEFAULT_LIMIT,
    cursor: str | None = None,
) -> Page[TradeRecord]:
    """A market's public trades, newest first."""
    query = select(trades).where(
        trades.c.market_id == market_id, *_time_range(trades.c.created_at, start_ms, end_ms)
    )
    page = _page(conn, query, trades.c.trade_id, "trades", limit, cursor)
    return Page([TradeRecord.from_row(row) for row in page.items], page.next_cursor)


def list_fills(
    conn: Connection,
    account_id: str,
    *,
    market_id: str | None = None,
    start_ms: int | None = None,
    end_ms: int | None = None,
    limit: int = DEFAULT_LIMIT,
    cursor: str | None = None,
) -> Page[FillRecord]:
    """The account's fills, newest first, each as the account saw its trade.

    Maker and taker fills are read as two index-ordered, limited halves combined with UNION
    ALL (a trade never has the same account on both sides: self-trade prevention stops it).
    """
    _check_limit(limit)
    before = decode_cursor("fills", cursor) if cursor is not None else None
    halves = []
    for role, account_column in (
        ("maker", trades.c.maker_account_id),
        ("taker", trades.c.taker_account_id),
    ):
        half = select(trades, literal_column(f"'{role}'").label("liquidity")).where(
            account_column == account_id, *_time_range(trades.c.created_at, start_ms, end_ms)
        )
        if market_id is not None:
            half = half.where(trades.c.market_id == market_id)
        if before is not None:
            half = half.where(trades.c.trade_id < before)
        halves.append(select(half.order_by(trades.c.trade_id.desc()).limit(limit + 1).subquery()))
    both = union_all(*halves).subquery()
    rows = (
        conn.execute(select(both).order_by(both.c.trade_id.desc()).limit(limit + 1))
        .mappings()
        .all()
    )
    items = [TradeRecord.from_row(row).fill_for(account_id) for row in rows[:limit]]
    more = len(rows) > limit
    return Page(items, encode_cursor("fills", items[-1].trade_id) if more else None)


def candles(
    conn: Connection,
    market_id: str,
    interval_ms: int,
    start_ms: int | None = None,
    end_ms: int | None = None,
    limit: int = 500,
) -> list[dict[str, Any]]:
    """OHLCV per ``interval_ms`` bucket from trades: the latest ``limit`` buckets, oldest first.

    Each dict: ``time`` (bucket start, a multiple of the interval), ``open``/``high``/``low``/
    ``close`` (ticks), ``volume`` (contracts), ``trade_count``. Buckets without trades are
    left out. Open and close are the bucket's first and last trade by trade id.
    """
    if type(interval_ms) is not int or interval_ms <= 0:
        raise ValueError("interval_ms must be a positive integer")
    _check_limit(limit)
    # Inline the (validated) interval: a bound parameter would make the GROUP BY expression
    # differ from the SELECT one in PostgreSQL's eyes.
    interval = literal_column(str(interval_ms), BigInteger)
    bucket = (trades.c.created_at - trades.c.created_at % interval).label("bucket")
    agg = (
        select(
            bucket,
            func.min(trades.c.trade_id).label("first_id"),
            func.max(trades.c.trade_id).label("last_id"),
            func.max(trades.c.price).label("high"),
            func.min(trades.c.price).label("low"),
            # SUM of a bigint is numeric on PostgreSQL: bring it back to an integer.
            cast(func.sum(trades.c.size), BigInteger).label("volume"),
            func.count().label("trade_count"),
        )
        .where(trades.c.market_id == market_id, *_time_range(trades.c.created_at, start_ms, end_ms))
        .group_by(bucket)
        .order_by(bucket.desc())
        .limit(limit)
        .subquery()
    )
    first = trades.alias("first_trade")
    last = trades.alias("last_trade")
    query = (
        select(
            agg.c.bucket.label("time"),
            first.c.price.label("open"),
            agg.c.high,
            agg.c.low,
            last.c.price.label("close"),
            agg.c.volume,
            agg.c.trade_count,
        )
        .select_from(agg)
        .join(first, first.c.trade_id == agg.c.first_id)
        .join(last, last.c.trade_id == agg.c.last_id)
        .order_by(agg.c.bucket)
    )
    return [dict(row) for row in conn.execute(query).mappings()]


# ---- ledger -----------------------------------------------------------------------------------


def list_ledger(
    conn: Connection,
    account_id: str,
    *,
    start_ms: int | None = None,
    end_ms: int | None = None,
    kind: str | None = None,
    market_id: str | None = None,
    limit: int = DEFAULT_LIMIT,
    cursor: str | None = None,
) -> Page[dict[str, Any]]:
    """Ledger entries concerning the account, newest first (``kind``: deposit, fee, …)."""
    query = select(ledger_entries).where(
        ledger_entries.c.account_id == account_id,
        *_time_range(ledger_entries.c.created_at, start_ms, end_ms),
    )
    if kind is not None:
        query = query.where(ledger_entries.c.kind == kind)
    if market_id is not None:
        query = query.where(ledger_entries.c.market_id == market_id)
    return _page(conn, query, ledger_entries.c.seq, "ledger", limit, cursor)


DAY_MS = 86_400_000
FEE_KINDS = ("fee", "rebate")


def list_position_settlements(
    conn: Connection,
    account_id: str,
    *,
    market_id: str | None = None,
    start_ms: int | None = None,
    end_ms: int | None = None,
    limit: int = DEFAULT_LIMIT,
    cursor: str | None = None,
) -> Page[dict[str, Any]]:
    """The account's positions paid out by a settlement, newest first."""
    query = select(position_settlements).where(
        position_settlements.c.account_id == account_id,
        *_time_range(position_settlements.c.settled_at, start_ms, end_ms),
    )
    if market_id is not None:
        query = query.where(position_settlements.c.market_id == market_id)
    return _page(conn, query, position_settlements.c.seq, "settlements", limit, cursor)


def fees_by_day(
    conn: Connection, account_id: str, *, start_ms: int | None = None, end_ms: int | None = None
) -> list[dict[str, Any]]:
    """The account's fees paid and rebates earned per UTC day (``day``: its first ms) and kind,
    with how many entries made each; newest day first."""
    # Inlined, as in ``candles``: PostgreSQL must see one GROUP BY expression.
    whole_day = literal_column(str(DAY_MS), BigInteger)
    created = ledger_entries.c.created_at
    day = (created - created % whole_day).label("day")
    query = (
        select(
            day,
            ledger_entries.c.kind,
            cast(func.sum(ledger_entries.c.amount), BigInteger).label("amount"),
            func.count().label("entries"),
        )
        .where(
            ledger_entries.c.account_id == account_id,
            ledger_entries.c.kind.in_(FEE_KINDS),
            *_time_range(ledger_entries.c.created_at, start_ms, end_ms),
        )
        .group_by(day, ledger_entries.c.kind)
        .order_by(day.desc())
    )
    return [dict(row) for row in conn.execute(query).mappings()]


# ---- markets and settlements ------------------------------------------------------------------


def get_market(conn: Connection, market_id: str) -> dict[str, Any] | None:
    return _one(conn, markets, markets.c.market_id == market_id)


def list_markets(
    conn: Connection,
    status: str | None = None,
    kind: str | None = None,
    *,
    category: str | None = None,
    tag: str | None = None,
    series_id: str | None = None,
    event_id: str | None = None,
    text: str | None = None,
    close_before_ms: int | None = None,
    close_after_ms: int | None = None,
) -> list[dict[str, Any]]:
    """Markets in listing order, optionally of one status and/or kind, category (any case),
    tag, series or event, with ``text`` in the name or question (any case), closing before
    or after a time (``close_after_ms < close_time < close_before_ms``)."""
    query = select(markets)
    if status is not None:
        query = query.where(markets.c.status == status)
    if kind is not None:
        query = query.where(markets.c.kind == kind)
    if category is not None:
        query = query.where(func.lower(markets.c.category) == category.lower())
    if tag is not None:
        # Tags are stored as a JSON array: the quoted tag is one whole element.
        query = query.where(markets.c.tags.contains(json.dumps(tag), autoescape=True))
    if series_id is not None:
        query = query.where(markets.c.series_id == series_id)
    if event_id is not None:
        query = query.where(markets.c.event_id == event_id)
    if text is not None:
        needle = text.lower()
        query = query.where(
            func.lower(markets.c.name).contains(needle, autoescape=True)
            | func.lower(func.coalesce(markets.c.question, "")).contains(needle, autoescape=True)
        )
    if close_before_ms is not None:
        query = query.where(markets.c.close_time < close_before_ms)
    if close_after_ms is not None:
        query = query.where(markets.c.close_time > close_after_ms)
    query = query.order_by(markets.c.created_at, markets.c.market_id)
    return [dict(row) for row in conn.execute(query).mappings()]


def list_groupings(conn: Connection, grouping: str) -> list[dict[str, Any]]:
    """The series (``grouping="series"``) or events (``"event"``) markets belong to, in order
    of their first market: ``id``, ``title`` (its newest market's) and ``market_ids``."""
    if grouping not in ("series", "event"):
        raise ValueError("grouping is 'series' or 'event'")
    id_column, title_column = markets.c[f"{grouping}_id"], markets.c[f"{grouping}_title"]
    query = (
        select(id_column, title_column, markets.c.market_id)
        .where(id_column.is_not(None))
        .order_by(markets.c.created_at, markets.c.market_id)
    )
    found: dict[str, dict[str, Any]] = {}
    for group_id, title, market_id in conn.execute(query):
        group = found.setdefault(group_id, {"id": group_id, "title": title, "market_ids": []})
        group["title"] = title or group["title"]
        group["market_ids"].append(market_id)
    return list(found.values())


def list_settlements(conn: Connection, market_id: str) -> list[dict[str, Any]]:
    """Every settlement proposal of a market, oldest first, with its outcome and evidence."""
    query = (
        select(settlements, evidence.c.body.label("evidence"))
        .outerjoin(evidence, evidence.c.evidence_hash == settlements.c.evidence_hash)
        .where(settlements.c.market_id == market_id)
    )
    return [dict(row) for row in conn.execute(query.order_by(settlements.c.id)).mappings()]


# ---- accounts and API keys --------------------------------------------------------------------


def get_account(conn: Connection, account_id: str) -> dict[str, Any] | None:
    return _one(conn, accounts, accounts.c.account_id == account_id)


def get_api_key(conn: Connection, api_key: str) -> dict[str, Any] | None:
    """The key's row (revoked ones too: the caller checks ``revoked_at``)."""
    return _one(conn, api_keys, api_keys.c.api_key == api_key)


def list_api_keys(conn: Connection, account_id: str | None = None) -> list[dict[str, Any]]:
    query = select(api_keys)
    if account_id is not None:
        query = query.where(api_keys.c.account_id == account_id)
    query = query.order_by(api_keys.c.created_at, api_keys.c.api_key)
    return [dict(row) for row in conn.execute(query).mappings()]


def volumes_since(conn: Connection, since_ms: int) -> dict[str, int]:
    """Contracts traded per market since ``since_ms`` (the markets list's ``volume_24h``)."""
    query = (
        select(trades.c.market_id, func.coalesce(func.sum(trades.c.size), 0))
        .where(trades.c.created_at >= since_ms)
        .group_by(trades.c.market_id)
    )
    return {market_id: int(volume) for market_id, volume in conn.execute(query)}


def prices_at(conn: Connection, at_ms: int, market_id: str | None = None) -> dict[str, int]:
    """Each market's last trade price (ticks) at ``at_ms`` (its last trade at or before it), for
    the markets list's ``change_24h``; markets without a trade by then are left out. One
    index-ordered probe per market, never a scan of the trades."""
    probe = (
        select(trades.c.price)
        .where(trades.c.market_id == markets.c.market_id, trades.c.created_at <= at_ms)
        .order_by(trades.c.created_at.desc(), trades.c.trade_id.desc())
        .limit(1)
        .scalar_subquery()
    )
    query = select(markets.c.market_id, probe.label("price"))
    if market_id is not None:
        query = query.where(markets.c.market_id == market_id)
    return {m: int(price) for m, price in conn.execute(query) if price is not None}


def volume_by_second(conn: Connection, since_ms: int) -> list[tuple[str, int, int]]:
    """(market, Unix second, contracts) of every second with trades since ``since_ms``."""
    second = (trades.c.created_at // 1000).label("second")
    query = (
        select(trades.c.market_id, second, func.sum(trades.c.size))
        .where(trades.c.created_at >= since_ms)
        .group_by(trades.c.market_id, second)
        .order_by(second)
    )
    return [(m, int(s), int(v)) for m, s, v in conn.execute(query)]


def last_prices_by_second(conn: Connection, since_ms: int) -> list[tuple[str, int, int]]:
    """(market, Unix second, the price of its last trade in that second, in ticks) of every
    second with trades since ``since_ms``, oldest first: the stream's day of last prices."""
    second = (trades.c.created_at // 1000).label("second")
    last = (
        select(trades.c.market_id, second, func.max(trades.c.trade_id).label("last_id"))
        .where(trades.c.created_at >= since_ms)
        .group_by(trades.c.market_id, second)
        .subquery()
    )
    query = (
        select(last.c.market_id, last.c.second, trades.c.price)
        .select_from(last.join(trades, trades.c.trade_id == last.c.last_id))
        .order_by(last.c.second)
    )
    return [(m, int(s), int(p)) for m, s, p in conn.execute(query)]


def deposited_with_ref(conn: Connection, account_id: str, ref: str) -> int:
    """Micro-USDC deposited to an account under one ref (the faucet's per-day ref, say)."""
    query = select(func.coalesce(func.sum(ledger_entries.c.amount), 0)).where(
        ledger_entries.c.account_id == account_id,
        ledger_entries.c.kind == "deposit",
        ledger_entries.c.ref == ref,
    )
    return int(conn.execute(query).scalar_one())
