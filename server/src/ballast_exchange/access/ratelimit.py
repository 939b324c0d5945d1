"""Fixed-window rate limiting with a per-process and a Redis backend (DESIGN §7, §8).

Windows are aligned to multiples of ``window_s`` in Unix time, so every process (and Redis)
agrees on where a window starts as long as the hosts' clocks agree. Every hit is counted,
refused ones included: a client hammering through a 429 gains nothing, and the count resets
with the window anyway.

The caller chooses buckets (``ip:127.0.0.1`` for public endpoints, ``key:bmkt_…`` for
private ones) and limits; this module only counts. A bucket is meant to be used with a single
window size: both backends key counters on ``(bucket, window_start)``.
"""

from __future__ import annotations

import logging
import math
import time
from dataclasses import dataclass
from typing import Protocol

import redis.asyncio as aioredis
from redis.exceptions import RedisError

from .redis_breaker import REDIS_TIMEOUT_S, RedisBreaker, redis_client

__all__ = [
    "Decision",
    "MemoryRateLimiter",
    "RateLimitBackendError",
    "RateLimiter",
    "RedisRateLimiter",
    "SharedRateLimiter",
    "rate_limiter_from_url",
]

KEY_PREFIX = "ballast:rl"
log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Decision:
    """The outcome of one hit: whether it is allowed and what to tell the client."""

    allowed: bool
    limit: int
    remaining: int
    reset: int  # Unix seconds at which the current window ends.
    retry_after: int  # Seconds until ``reset``; 0 when allowed.

    def headers(self) -> dict[str, str]:
        """The ``X-RateLimit-*`` headers, plus ``Retry-After`` on a refusal."""
        headers = {
            "X-RateLimit-Limit": str(self.limit),
            "X-RateLimit-Remaining": str(self.remaining),
            "X-RateLimit-Reset": str(self.reset),
        }
        if not self.allowed:
            headers["Retry-After"] = str(self.retry_after)
        return headers


class RateLimiter(Protocol):
    """Counts hits per bucket in fixed windows."""

    async def hit(
        self, bucket: str, limit: int, window_s: int = 60, now: float | None = None
    ) -> Decision:
        """Count one request against ``bucket`` and decide whether it is within ``limit``."""
        ...

    async def close(self) -> None:
        """Release connections; the limiter is not used afterwards."""
        ...


class RateLimitBackendError(RuntimeError):
    """The shared backend could not be reached; the caller decides to fail open or closed."""


def _window(now: float, window_s: int) -> tuple[int, int]:
    """``(window_start, window_end)`` in whole Unix seconds, aligned to ``window_s``."""
    start = math.floor(now / window_s) * window_s
    return start, start + window_s


def _check(limit: int, window_s: int) -> None:
    if limit < 0:
        raise ValueError(f"limit must be >= 0, got {limit}")
    if window_s < 1:
        raise ValueError(f"window_s must be >= 1, got {window_s}")


def _decide(count: int, limit: int, now: float, reset: int) -> Decision:
    allowed = count <= limit
    # Round up so a client that waits Retry-After seconds lands in the next window; a refusal
    # never says "retry in 0 seconds".
    retry_after = 0 if allowed else max(1, math.ceil(reset - now))
    return Decision(
        allowed=allowed,
        limit=limit,
        remaining=max(0, limit - count),
        reset=reset,
        retry_after=retry_after,
    )


class MemoryRateLimiter:
    """Per-process counters; right for a single server process (the default deployment).

    Not thread-safe: meant for one asyncio loop, where ``hit`` never yields mid-update.
    """

    def __init__(self, prune_interval_s: float = 1.0) -> None:
        # (bucket, window_start) -> [count, window_end]
        self._counts: dict[tuple[str, int], list[int]] = {}
        self._prune_interval_s = prune_interval_s
        self._next_prune = -math.inf

    def __len__(self) -> int:
        """Number of live counters (for tests and metrics)."""
        return len(self._counts)

    async def hit(
        self, bucket: str, limit: int, window_s: int = 60, now: float | None = None
    ) -> Decision:
        """Count one request against ``bucket``; ``now`` (Unix seconds) defaults to the clock."""
        _check(limit, window_s)
        now = time.time() if now is None else now
        self._prune(now)
        start, end = _window(now, window_s)
        entry = self._counts.setdefault((bucket, start), [0, end])
        entry[0] += 1
        return _decide(entry[0], limit, now, end)

    def _prune(self, now: float) -> None:
        # Sweeping at most once per interval keeps hit() O(1) amortised, and memory bounded by
        # the buckets seen in the current windows rather than by every bucket ever seen.
        if now < self._next_prune:
            return
        self._next_prune = now + self._prune_interval_s
        expired = [key for key, (_, end) in self._counts.items() if end <= now]
        for key in expired:
            del self._counts[key]

    async def close(self) -> None:
        """Drop all counters."""
        self._counts.clear()


# INCR and EXPIRE in one script so a crash between them cannot leave a counter without a TTL.
# Checking TTL rather than "count == 1" also repairs a key that somehow lost its expiry.
_HIT_SCRIPT = """
local count = redis.call('INCR', KEYS[1])
if redis.call('TTL', KEYS[1]) < 0 then
    redis.call('EXPIRE', KEYS[1], ARGV[1])
end
return count
"""


class RedisRateLimiter:
    """Counters in Redis, shared by every server process that points at the same instance."""

    def __init__(
        self, url: str, *, key_prefix: str = KEY_PREFIX, timeout_s: float = REDIS_TIMEOUT_S
    ) -> None:
        self._redis: aioredis.Redis = redis_client(url, timeout_s)
        self._script = self._redis.register_script(_HIT_SCRIPT)
        self._key_prefix = key_prefix

    def key(self, bucket: str, window_start: int) -> str:
        """The Redis key counting ``bucket`` in the window starting at ``window_start``."""
        return f"{self._key_prefix}:{bucket}:{window_start}"

    async def hit(
        self, bucket: str, limit: int, window_s: int = 60, now: float | None = None
    ) -> Decision:
        """Count one request against ``bucket``; ``now`` (Unix seconds) defaults to the clock.

        Raises :class:`RateLimitBackendError` when Redis cannot be reached.
        """
        _check(limit, window_s)
        now = time.time() if now is None else now
        start, end = _window(now, window_s)
        # Keep the key for two windows: it is dead after one, but the slack covers hosts whose
        # clocks run a little behind the one that created it.
        ttl = 2 * window_s
        try:
            count = int(await self._script(keys=[self.key(bucket, start)], args=[ttl]))
        except RedisError as exc:
            raise RateLimitBackendError(f"rate-limit backend unavailable: {exc}") from exc
        return _decide(count, limit, now, end)

    async def close(self) -> None:
        """Close the connection pool."""
        await self._redis.aclose()


class SharedRateLimiter:
    """Redis counters behind a breaker, with per-process counters whenever Redis fails.

    Neither refuses trading nor lets traffic through unlimited while Redis is away: a failure
    costs one short timeout, then the per-process limiter answers until Redis is back.
    """

    def __init__(self, url: str, breaker: RedisBreaker | None = None) -> None:
        self.redis = RedisRateLimiter(url)
        self.fallback = MemoryRateLimiter()
        self.breaker = breaker if breaker is not None else RedisBreaker()

    async def hit(
        self, bucket: str, limit: int, window_s: int = 60, now: float | None = None
    ) -> Decision:
        breaker = self.breaker
        if breaker.allows():
            try:
                decision = await self.redis.hit(bucket, limit, window_s, now)
            except RateLimitBackendError as error:
                breaker.failed(error)
            else:
                breaker.succeeded()
                return decision
        return await self.fallback.hit(bucket, limit, window_s, now)

    async def close(self) -> None:
        await self.redis.close()
        await self.fallback.close()


def rate_limiter_from_url(
    redis_url: str | None, breaker: RedisBreaker | None = None
) -> RateLimiter:
    """Redis-backed for ``redis://``, ``rediss://`` or ``unix://`` URLs; in memory without one.

    ``memory://`` also selects the in-process backend, so configuration can name it explicitly.
    """
    if not redis_url or redis_url.strip() in ("", "memory://"):
        return MemoryRateLimiter()
    url = redis_url.strip()
    if url.startswith(("redis://", "rediss://", "unix://")):
        return SharedRateLimiter(url, breaker)
    raise ValueError("rate limiter URL must start with redis://, rediss://, unix:// or memory://")
