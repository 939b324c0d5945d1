"""Money on the way out: integer micro-USDC inside, decimal USDC in answers (DESIGN §2)."""

from __future__ import annotations

from decimal import Decimal

MICRO = Decimal(1_000_000)


def to_usdc(micro: int) -> float:
    return float(Decimal(micro) / MICRO)


def micro_price(micro: int | None) -> float | None:
    """A price or index value held in micro price units (settlement values)."""
    return None if micro is None else float(Decimal(micro) / MICRO)
