"""API keys as the exchange holds them in memory: each key's account, secret, scopes and tier.

Loaded from the store at start and updated by key issuing in the same process, so checking a
signature needs no I/O and a revocation takes effect on the very next request. Beside
gateways, a key issued by another process is read from the store on its first use.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

TIERS: dict[str, int] = {"standard": 300, "market_maker": 3_000}
MISS_TTL_S = 2.0  # an unknown key is looked up in the store at most this often
MISSES_KEPT = 10_000


@dataclass(slots=True)
class KeyRecord:
    api_key: str
    account_id: str
    secret: str
    scopes: frozenset[str]
    tier: str | None = None
    revoked: bool = False

    def limit(self, default: int) -> int:
        if self.tier is None:
            return default
        if self.tier.isascii() and self.tier.isdigit():
            return int(self.tier)
        return TIERS.get(self.tier, default)


class KeyRing:
    def __init__(self) -> None:
        self._keys: dict[str, KeyRecord] = {}
        # Last use per key since the last flush: stored in batches, not on every request.
        self._used: dict[str, int] = {}
        #: Reads a key this process does not hold from the store (None: every key is here).
        self.load: Callable[[str], Awaitable[KeyRecord | None]] | None = None
        self._missed: dict[str, float] = {}  # keys the store did not have, until when

    def used(self, api_key: str, now_ms: int) -> None:
        self._used[api_key] = now_ms

    def take_used(self) -> dict[str, int]:
        used, self._used = self._used, {}
        return used

    def put(self, record: KeyRecord) -> None:
        self._keys[record.api_key] = record

    def get(self, api_key: str) -> KeyRecord | None:
        return self._keys.get(api_key)

    async def find(self, api_key: str) -> KeyRecord | None:
        """``get``, or the key as stored if this process has not heard of it yet: a key issued
        through another process of the venue works at once, before word of it arrives."""
        record = self._keys.get(api_key)
        if record is not None or self.load is None:
            return record
        now = time.monotonic()
        if self._missed.get(api_key, 0.0) > now:
            return None
        record = await self.load(api_key)
        if record is None:
            if len(self._missed) >= MISSES_KEPT:
                self._missed.clear()
            self._missed[api_key] = now + MISS_TTL_S
            return None
        self._keys.setdefault(api_key, record)
        return self._keys[api_key]

    def revoke(self, api_key: str) -> None:
        record = self._keys.get(api_key)
        if record is not None:
            record.revoked = True

    def set_tier(self, api_key: str, tier: str | None) -> None:
        record = self._keys.get(api_key)
        if record is not None:
            record.tier = tier
