"""Ids and times as the API writes them: ``ord_17``, ``trd_9``, ISO 8601 UTC in milliseconds."""

from __future__ import annotations

from datetime import UTC, datetime

ORDER_PREFIX = "ord_"
TRADE_PREFIX = "trd_"


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


def iso(ms: int | None) -> str | None:
    if ms is None:
        return None
    moment = datetime.fromtimestamp(ms / 1000, tz=UTC)
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")
