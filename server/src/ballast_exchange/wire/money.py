"""Decimal JSON on the outside, integers inside (DESIGN §2).

Prices become ticks of the market's grid and money becomes micro-USDC. A value off the grid is
refused, never rounded.
"""

from __future__ import annotations

from decimal import Decimal, InvalidOperation, localcontext
from typing import Any

from .errors import ApiError, invalid_request
from .usdc import MICRO

MAX_TICKS = 10**12  # beyond any market's cap; keeps absurd inputs out of arithmetic
# No price or amount needs more: a value with more significant digits, or further from 1,
# is refused before any arithmetic, so the exact arithmetic below can neither overflow nor
# round (its precision exceeds the digits of any admitted value divided by any grid step).
MAX_DIGITS = 40
MAX_MAGNITUDE = 18  # |adjusted exponent|: 1e18 and 1e-18 are the extremes admitted
EXACT_PRECISION = 120


def parse_decimal(value: Any, field: str) -> Decimal:
    """A JSON number or a decimal string; booleans, NaN and infinities are not numbers here."""
    not_a_number = f"{field} must be a number or a decimal string"
    if isinstance(value, bool) or value is None:
        raise invalid_request(field, not_a_number)
    try:
        number = Decimal(str(value)) if isinstance(value, float) else Decimal(value)
    except (InvalidOperation, TypeError, ValueError):
        raise invalid_request(field, not_a_number) from None
    if not number.is_finite():
        raise invalid_request(field, f"{field} must be finite")
    return number


def admissible(number: Decimal) -> bool:
    """Within the digits and magnitude any price or amount can have (zero always is)."""
    if not number:
        return True
    return len(number.as_tuple().digits) <= MAX_DIGITS and abs(number.adjusted()) <= MAX_MAGNITUDE


def exact_quotient(number: Decimal, step: Decimal) -> Decimal:
    """``number / step`` computed exactly (both admissible), so off-grid stays off-grid."""
    with localcontext() as context:
        context.prec = EXACT_PRECISION
        return number / step


def price_to_ticks(value: Any, tick_size: Decimal, field: str = "price") -> int:
    number = parse_decimal(value, field)
    if not admissible(number):
        raise ApiError(
            "INVALID_PRICE",
            f"{field} {value} has more digits than any market's tick grid or range allows",
            {"field": field, "price": str(value)},
        )
    ticks = exact_quotient(number, tick_size)
    if abs(ticks) > MAX_TICKS:
        raise ApiError(
            "INVALID_PRICE",
            f"{field} {value} is outside any market's range",
            {"field": field, "price": str(value)},
        )
    if ticks != ticks.to_integral_value():
        raise ApiError(
            "INVALID_PRICE",
            f"{field} {number} is not on the market's tick grid of {tick_size}",
            {"field": field, "price": str(number), "tick_size": str(tick_size)},
        )
    return int(ticks)


def ticks_to_price(ticks: int | None, tick_size: Decimal) -> float | None:
    return None if ticks is None else float(ticks * tick_size)


def usdc_to_micro(value: Any, field: str = "amount") -> int:
    number = parse_decimal(value, field)
    if not admissible(number) or abs(number) >= 10**MAX_MAGNITUDE:
        raise invalid_request(field, f"{field} is out of range")
    micro = exact_quotient(number, 1 / MICRO)
    if micro != micro.to_integral_value():
        raise invalid_request(field, f"{field} has more than 6 decimal places")
    return int(micro)
