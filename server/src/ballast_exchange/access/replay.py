"""Replay protection: a signature is good for one request (DESIGN §7).

A signed request is valid while its timestamp is within the tolerance of server time, so a
captured one could be sent again for up to twice the tolerance. Each verified signature is
remembered for that long and a second use is refused. With Redis configured the memory is
shared (``SET NX`` with an expiry), so a replay to another server process is refused too;
while Redis is away each process remembers its own (the breaker's fallback).
"""

from __future__ import annotations

import time
from typing import Protocol

from redis.exceptions import RedisError

from .redis_breaker import RedisBreaker, redis_client

KEY_PREFIX = "ballast:sig"


class ReplayCache(Protocol):
    async def first_use(self, api_key: str, signature: str, timestamp_ms: int) -> bool:
        """Record a verified signature; False if it was seen before (a replay)."""
        ...

    async def close(self) -> None: ...


class MemoryReplayCache:
    """Signatures seen by this process, each kept until its timestamp can no longer verify."""

    def __init__(self, tolerance_ms: int = 30_000, prune_interval_s: float = 1.0) -> None:
        self.tolerance_ms = tolerance_ms
        self._seen: dict[tuple[str, str], float] = {}  # -> Unix seconds it may be forgotten
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
        entry = (api_key, signature)
        if entry in self._seen:
            return False
        self._seen[entry] = self.expiry(timestamp_ms, now)
        return True

    async def close(self) -> None:
        self._seen.clear()


class SharedReplayCache:
    """Signatures in Redis, seen by every process; per process while Redis is away."""

    def __init__(self, url: str, breaker: RedisBreaker, tolerance_ms: int = 30_000) -> None:
        self._redis = redis_client(url)
        self.breaker = breaker
        self.fallback = MemoryReplayCache(tolerance_ms)

    async def first_use(self, api_key: str, signature: str, timestamp_ms: int) -> bool:
        breaker = self.breaker
        if breaker.allows():
            now = time.time()
            ttl_ms = max(1, int((self.fallback.expiry(timestamp_ms, now) - now) * 1000))
            try:
                stored = await self._redis.set(
                    f"{KEY_PREFIX}:{api_key}:{signature}", b"1", nx=True, px=ttl_ms
                )
            except RedisError as error:
                breaker.failed(error)
            else:
                breaker.succeeded()
                return bool(stored)
        return await self.fallback.first_use(api_key, signature, timestamp_ms)

    async def close(self) -> None:
        await self._redis.aclose()


def replay_cache_from_url(redis_url: str | None, breaker: RedisBreaker) -> ReplayCache:
    if redis_url and redis_url.strip().startswith(("redis://", "rediss://", "unix://")):
        return SharedReplayCache(redis_url.strip(), breaker)
    return MemoryReplayCache()
