"""Replay protection: a signature is good for one request (DESIGN §7).

A signed request is valid while its timestamp is within the tolerance of server time, so a
captured one could be sent again for up to twice the tolerance. Each verified signature is
remembered for that long and a second use is refused. With Redis configured the memory is
shared (``SET NX`` with an expiry), so a replay to another server process is refused too;
while Redis is away each process remembers its own (the breaker's fallback).

The same Redis call tells a gateway that another process revoked the key (``KeyRevoked``): a
revocation marks the key in Redis before it is answered, so it holds on every gateway from
the very next request, however late the bus's word of it arrives (docs/adr/0025).
"""

from __future__ import annotations

import time
from typing import Protocol

from redis.exceptions import RedisError

from .redis_breaker import RedisBreaker, redis_client

KEY_PREFIX = "ballast:sig"
REVOKED_PREFIX = "ballast:revoked"

# The key's revocation mark and the signature in one round trip; the key in braces puts both
# in one Redis Cluster slot.
_FIRST_USE = """
if redis.call('EXISTS', KEYS[2]) == 1 then return -1 end
if redis.call('SET', KEYS[1], '1', 'NX', 'PX', ARGV[1]) then return 1 end
return 0
"""


class KeyRevoked(Exception):
    """The key was revoked (by this process or another of the venue)."""


class ReplayCache(Protocol):
    async def first_use(self, api_key: str, signature: str, timestamp_ms: int) -> bool:
        """Record a verified signature; False if it was seen before (a replay). Raises
        ``KeyRevoked`` for a key a revocation marked."""
        ...

    async def revoke(self, api_key: str) -> None:
        """Mark the key revoked for every process that shares this cache."""
        ...

    async def close(self) -> None: ...


class MemoryReplayCache:
    """Signatures seen by this process, each kept until its timestamp can no longer verify."""

    def __init__(self, tolerance_ms: int = 30_000, prune_interval_s: float = 1.0) -> None:
        self.tolerance_ms = tolerance_ms
        self._seen: dict[tuple[str, str], float] = {}  # -> Unix seconds it may be forgotten
        self._revoked: set[str] = set()
        self._prune_interval_s = prune_interval_s
        self._next_prune = 0.0

    def __len__(self) -> int:
        return len(self._seen)

    def expiry(self, timestamp_ms: int, now: float) -> float:
        # Valid until timestamp + tolerance of server time; a second of slack for clock steps.
        return max(now, (timestamp_ms + self.tolerance_ms) / 1000) + 1.0

    async def first_use(self, api_key: str, signature: str, timestamp_ms: int) -> bool:
        now = time.time()
        if now >= self._next_prune:
            self._next_prune = now + self._prune_interval_s
            # Bounded by the signatures verified in one validity window, which rate limits cap.
            for entry in [k for k, until in self._seen.items() if until <= now]:
                del self._seen[entry]
        if api_key in self._revoked:
            raise KeyRevoked(api_key)
        entry = (api_key, signature)
        if entry in self._seen:
            return False
        self._seen[entry] = self.expiry(timestamp_ms, now)
        return True

    async def revoke(self, api_key: str) -> None:
        self._revoked.add(api_key)

    async def close(self) -> None:
        self._seen.clear()


class SharedReplayCache:
    """Signatures in Redis, seen by every process; per process while Redis is away."""

    def __init__(self, url: str, breaker: RedisBreaker, tolerance_ms: int = 30_000) -> None:
        self._redis = redis_client(url)
        self._first_use = self._redis.register_script(_FIRST_USE)
        self.breaker = breaker
        self.fallback = MemoryReplayCache(tolerance_ms)

    async def first_use(self, api_key: str, signature: str, timestamp_ms: int) -> bool:
        breaker = self.breaker
        if breaker.allows():
            now = time.time()
            ttl_ms = max(1, int((self.fallback.expiry(timestamp_ms, now) - now) * 1000))
            keys = [f"{KEY_PREFIX}:{{{api_key}}}:{signature}", f"{REVOKED_PREFIX}:{{{api_key}}}"]
            try:
                stored = await self._first_use(keys=keys, args=[ttl_ms])
            except RedisError as error:
                breaker.failed(error)
            else:
                breaker.succeeded()
                if stored == -1:
                    raise KeyRevoked(api_key)
                return bool(stored)
        return await self.fallback.first_use(api_key, signature, timestamp_ms)

    async def revoke(self, api_key: str) -> None:
        """While Redis is away the mark is this process's only; the bus still carries the
        revocation to every gateway, a moment later."""
        await self.fallback.revoke(api_key)
        try:
            await self._redis.set(f"{REVOKED_PREFIX}:{{{api_key}}}", b"1")
        except RedisError as error:
            self.breaker.failed(error)

    async def close(self) -> None:
        await self._redis.aclose()


def replay_cache_from_url(redis_url: str | None, breaker: RedisBreaker) -> ReplayCache:
    if redis_url and redis_url.strip().startswith(("redis://", "rediss://", "unix://")):
        return SharedReplayCache(redis_url.strip(), breaker)
    return MemoryReplayCache()
