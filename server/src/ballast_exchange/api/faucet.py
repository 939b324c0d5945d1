"""The sandbox faucet: test USDC on demand, capped per account per UTC day.

It deposits through the same engine command an operator's deposit uses; the ledger ref names
the day, so the cap is counted from stored entries and holds across restarts.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from ..domain import commands as c
from ..store import queries
from ..wire.errors import ApiError, invalid_request
from ..wire.usdc import to_usdc
from ..wire.views import balance_view, iso
from .state import AppState


def day_of(now_ms: int) -> datetime:
    return datetime.fromtimestamp(now_ms / 1000, UTC).replace(
        hour=0, minute=0, second=0, microsecond=0
    )


async def drip(state: AppState, account_id: str, amount: int | None = None) -> dict[str, Any]:
    """Deposit ``amount`` micro-USDC (the configured default when None) within today's cap."""
    settings = state.settings
    if settings.env != "sandbox":  # belt and braces: the route only exists in the sandbox
        raise ApiError("NOT_FOUND", "the faucet exists only in the sandbox")
    state.reads.require_account(account_id)
    amount = settings.faucet_amount if amount is None else amount
    if amount <= 0:
        raise invalid_request("amount", "amount must be positive")
    cap = settings.faucet_daily_cap
    # One drip at a time, so two requests cannot both pass the cap check.
    async with state.faucet_lock:
        now = state.exchange.clock()
        day = day_of(now)
        ref = f"faucet:{day:%Y-%m-%d}"
        granted = await state.read(queries.deposited_with_ref, account_id, ref)
        if granted + amount > cap:
            resets = day + timedelta(days=1)
            raise ApiError(
                "FAUCET_LIMIT_EXCEEDED",
                f"the faucet gives at most {to_usdc(cap):,.2f} USDC per account per UTC day",
                {
                    "daily_cap": to_usdc(cap),
                    "granted_today": to_usdc(granted),
                    "requested": to_usdc(amount),
                    "resets_at": iso(int(resets.timestamp() * 1000)),
                },
                headers={"Retry-After": str(max(1, int(resets.timestamp() - now / 1000)))},
            )
        await state.exchange.submit(lambda t: c.Deposit(t, account_id, amount, ref))
    reads = state.reads
    balance = await state.view(lambda: balance_view(reads.balance(account_id)))
    return {
        "amount": to_usdc(amount),
        "granted_today": to_usdc(granted + amount),
        "daily_cap": to_usdc(cap),
        "balance": balance,
    }
