"""The sandbox faucet: test USDC on demand, capped per account per UTC day.

It deposits through the same engine command an operator's deposit uses; the ledger ref names
the day, so the cap is counted from stored entries and holds across restarts.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from datetime import UTC, datetime

from ..config import Settings
from ..domain import DomainError
from ..domain import commands as c
from ..store import queries
from .exchange import Exchange
from .reads import Balance, Reads

MS_PER_DAY = 86_400_000


@dataclass(frozen=True, slots=True)
class FaucetGrant:
    """What one drip gave, in micro-USDC, and the balance it left."""

    amount: int
    granted_today: int
    daily_cap: int
    balance: Balance


def day_of(now_ms: int) -> datetime:
    return datetime.fromtimestamp(now_ms / 1000, UTC).replace(
        hour=0, minute=0, second=0, microsecond=0
    )


class Faucet:
    def __init__(self, settings: Settings, exchange: Exchange, reads: Reads) -> None:
        self.settings = settings
        self.exchange = exchange
        self.reads = reads
        # One drip at a time, so two requests cannot both pass the cap check.
        self._lock = asyncio.Lock()

    async def drip(self, account_id: str, amount: int | None = None) -> FaucetGrant:
        """Deposit ``amount`` micro-USDC (the configured default when None) within today's cap.

        ``FAUCET_LIMIT_EXCEEDED`` past it: its details carry the amounts in micro-USDC,
        ``resets_at`` in ms and ``retry_after`` in seconds.
        """
        settings = self.settings
        if settings.env != "sandbox":  # belt and braces: the routes exist only in the sandbox
            raise DomainError("NOT_FOUND", "the faucet exists only in the sandbox")
        self.reads.require_account(account_id)
        amount = settings.faucet_amount if amount is None else amount
        if amount <= 0:
            raise DomainError("INVALID_REQUEST", "amount must be positive", {"field": "amount"})
        cap = settings.faucet_daily_cap
        async with self._lock:
            now = self.exchange.clock()
            day = day_of(now)
            ref = f"faucet:{day:%Y-%m-%d}"
            granted = await self.reads.stored(queries.deposited_with_ref, account_id, ref)
            if granted + amount > cap:
                resets_ms = int(day.timestamp() * 1000) + MS_PER_DAY
                raise DomainError(
                    "FAUCET_LIMIT_EXCEEDED",
                    f"the faucet gives at most {cap / 1_000_000:,.2f} USDC per account per UTC day",
                    {
                        "daily_cap": cap,
                        "granted_today": granted,
                        "requested": amount,
                        "resets_at": resets_ms,
                        "retry_after": max(1, (resets_ms - now) // 1000),
                    },
                )
            await self.exchange.submit(lambda t: c.Deposit(t, account_id, amount, ref))
        balance = await self.reads.settled(lambda: self.reads.balance(account_id))
        return FaucetGrant(amount, granted + amount, cap, balance)
