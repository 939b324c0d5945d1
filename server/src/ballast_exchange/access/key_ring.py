"""API keys as the exchange holds them in memory: each key's account, secret, scopes and tier.

Loaded from the store at start and updated by key issuing in the same process, so checking a
signature needs no I/O and a revocation takes effect on the very next request.
"""

from __future__ import annotations

from dataclasses import dataclass

TIERS: dict[str, int] = {"standard": 300, "market_maker": 3_000}


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

    def used(self, api_key: str, now_ms: int) -> None:
        self._used[api_key] = now_ms

    def take_used(self) -> dict[str, int]:
        used, self._used = self._used, {}
        return used

    def put(self, record: KeyRecord) -> None:
        self._keys[record.api_key] = record

    def get(self, api_key: str) -> KeyRecord | None:
        return self._keys.get(api_key)

    def revoke(self, api_key: str) -> None:
        record = self._keys.get(api_key)
        if record is not None:
            record.revoked = True

    def set_tier(self, api_key: str, tier: str | None) -> None:
        record = self._keys.get(api_key)
        if record is not None:
            record.tier = tier
