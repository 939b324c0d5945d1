"""How the command lines write numbers for people: one rule for the trader's and the operator's.

- A price is written at its market's tick precision: ``0.5`` on a 0.001 tick reads ``0.500``,
  an index value on a 0.1 tick ``52.3``.
- Money (USDC) has two decimals, and more only where they carry something (a fee of
  ``0.004`` stays ``0.004``, never ``0.00``); thousands are grouped: ``50,000.00``.
- Contract counts are whole numbers as they are.
- A binary market's price is the chance of YES: ``0.625`` reads ``62.5%`` (as many decimals as
  the tick has beyond the percent), and NO is ``1 - price``: ``YES 62.5% / NO 37.5%``.

The dashboard writes numbers by the same rule (``dashboard/static/lib.js`` in the server).
``--json`` never goes through here: machines get the API's own numbers.
"""

from __future__ import annotations

from decimal import Decimal, InvalidOperation

__all__ = [
    "as_decimal",
    "chance_text",
    "money_text",
    "no_price",
    "price_text",
    "tick_places",
    "yes_no_text",
]

MONEY_PLACES = 2
#: USDC's own precision (micro-USDC): no amount carries more.
USDC_PLACES = 6


def as_decimal(value: Decimal | float | int | str | None) -> Decimal | None:
    """``value`` as an exact decimal (a float through its shortest text), or None."""
    if value is None or isinstance(value, bool):
        return None
    try:
        found = value if isinstance(value, Decimal) else Decimal(str(value))
    except InvalidOperation:
        return None
    return found if found.is_finite() else None


def _places(value: Decimal) -> int:
    """Decimal places ``value`` needs, trailing zeros aside."""
    exponent = value.normalize().as_tuple().exponent
    return max(0, -exponent) if isinstance(exponent, int) else 0


def money_text(value: Decimal | float | int | str | None) -> str:
    """USDC for people: ``1,234.50``, ``0.004``, ``-0.80``; ``-`` for nothing."""
    amount = as_decimal(value)
    if amount is None:
        return "-"
    places = min(max(MONEY_PLACES, _places(amount)), USDC_PLACES)
    return f"{amount:,.{places}f}"


def tick_places(tick: Decimal | float | int | str | None) -> int | None:
    """The decimal places of a market's tick (``0.001`` → 3), or None when unknown."""
    step = as_decimal(tick)
    return None if step is None or step <= 0 else _places(step)


def price_text(
    value: Decimal | float | int | str | None, tick: Decimal | float | int | str | None = None
) -> str:
    """A price at its market's tick precision (as given when the tick is unknown)."""
    price = as_decimal(value)
    if price is None:
        return "-"
    places = tick_places(tick)
    if places is None:
        return format(price, "f")
    # Never drop digits a price has beyond its tick: that would show another price.
    return f"{price:.{max(places, _places(price))}f}"


def no_price(value: Decimal | float | int | str | None) -> Decimal | None:
    """What a binary price makes NO cost: ``1 - price`` (None stays None)."""
    price = as_decimal(value)
    return None if price is None else 1 - price


def chance_text(
    value: Decimal | float | int | str | None, tick: Decimal | float | int | str | None = None
) -> str:
    """A binary price as the chance of YES: ``0.625`` → ``62.5%``; ``-`` for nothing."""
    price = as_decimal(value)
    if price is None:
        return "-"
    percent = price * 100
    known = tick_places(tick)
    places = max(0, (2 if known is None else known) - 2, _places(percent))
    return f"{percent:.{places}f}%"


def yes_no_text(
    value: Decimal | float | int | str | None, tick: Decimal | float | int | str | None = None
) -> str:
    """``YES 62.5% / NO 37.5%`` for a binary price; ``-`` for nothing."""
    if as_decimal(value) is None:
        return "-"
    return f"YES {chance_text(value, tick)} / NO {chance_text(no_price(value), tick)}"
