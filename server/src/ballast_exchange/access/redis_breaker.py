"""A circuit breaker for the shared Redis (rate limits, the replay cache).

Redis is an optimisation across processes, never a dependency of trading: a Redis that refuses
or stops answering must cost a request at most one short timeout, after which every caller uses
its per-process fallback at once. One caller retries Redis per interval; the first success
closes the breaker again. The state is logged once per change and exposed to ``/readyz`` and
``/metrics``.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

import redis.asyncio as aioredis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff

log = logging.getLogger(__name__)

# Loopback or LAN Redis answers in well under a millisecond; a quarter second is a failure.
REDIS_TIMEOUT_S = 0.25
RETRY_INTERVAL_S = 5.0


def redis_client(url: str, timeout_s: float = REDIS_TIMEOUT_S) -> aioredis.Redis:
    """A client that fails fast: short timeouts and no retries of its own (the breaker's job)."""
    client: aioredis.Redis = aioredis.Redis.from_url(
        url,
        socket_timeout=timeout_s,
        socket_connect_timeout=timeout_s,
        retry=Retry(NoBackoff(), 0),
    )
    return client


class RedisBreaker:
    """Whether to try Redis now: closed (use it), open (use the fallback until the next probe)."""

    def __init__(
        self,
        retry_interval_s: float = RETRY_INTERVAL_S,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.retry_interval_s = retry_interval_s
        self._clock = clock
        self.down_since: float | None = None
        self.last_error = ""
        self.failures = 0  # calls that found Redis failing (each served by the fallback)
        self._next_probe = 0.0

    @property
    def up(self) -> bool:
        return self.down_since is None

    def allows(self) -> bool:
        """True if this call should try Redis; while open, one call per interval probes it."""
        if self.down_since is None:
            return True
        now = self._clock()
        if now < self._next_probe:
            return False
        self._next_probe = now + self.retry_interval_s  # the others keep to the fallback
        return True

    def failed(self, error: BaseException) -> None:
        self.failures += 1
        self.last_error = f"{type(error).__name__}: {error}"
        now = self._clock()
        self._next_probe = now + self.retry_interval_s
        if self.down_since is None:
            self.down_since = now
            log.warning(
                "redis unavailable (%s); rate limits, the replay cache and stream connection "
                "slots are per process until it answers again (retried every %gs)",
                self.last_error,
                self.retry_interval_s,
            )

    def succeeded(self) -> None:
        if self.down_since is not None:
            log.info(
                "redis answers again after %.1fs; shared rate limits and replay cache resumed",
                self._clock() - self.down_since,
            )
            self.down_since = None

    def describe(self) -> str:
        """``ok``, or what is degraded, for ``/readyz``."""
        if self.down_since is None:
            return "ok"
        return f"redis unavailable ({self.last_error}); limiting per process"
