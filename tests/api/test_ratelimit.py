"""Fixed-window rate limiting, in memory and in a real Redis shared by two limiters."""

from __future__ import annotations

import time
import uuid
from collections.abc import AsyncIterator

import anyio
import pytest
import redis.asyncio as aioredis
from hypothesis import given, settings
from hypothesis import strategies as st

from ballast_exchange.access.ratelimit import (
    Decision,
    MemoryRateLimiter,
    RateLimitBackendError,
    RateLimiter,
    RedisRateLimiter,
    SharedRateLimiter,
    rate_limiter_from_url,
)
from ballast_exchange.access.redis_breaker import RedisBreaker
from tests.services import require_redis

# 2025-03-15T10:31:00Z: a multiple of 60, so windows of 60 s start exactly here.
T0 = 1_742_034_660.0


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


def unique_bucket(name: str) -> str:
    # Unique per test run so parallel or repeated runs never share Redis counters.
    return f"test:{uuid.uuid4().hex}:{name}"


@pytest.fixture
def redis_url() -> str:
    return require_redis()


@pytest.fixture
async def redis_pair(redis_url: str) -> AsyncIterator[tuple[RedisRateLimiter, RedisRateLimiter]]:
    """Two limiters with separate connection pools, as two server processes would have.

    Their timeouts are a loaded test machine's, not a server's quarter second: a burst opens
    dozens of connections at once, and what these tests count is hits, not connect times."""
    a, b = RedisRateLimiter(redis_url, timeout_s=10), RedisRateLimiter(redis_url, timeout_s=10)
    try:
        yield a, b
    finally:
        await a.close()
        await b.close()


@pytest.fixture(params=["memory", "redis"])
async def limiter(request: pytest.FixtureRequest) -> AsyncIterator[RateLimiter]:
    """Each backend in turn, for the behaviour both must share."""
    made: RateLimiter = (
        MemoryRateLimiter() if request.param == "memory" else RedisRateLimiter(require_redis())
    )
    try:
        yield made
    finally:
        await made.close()


# --- Decision ------------------------------------------------------------------------------


def test_decision_headers() -> None:
    ok = Decision(allowed=True, limit=300, remaining=287, reset=1678901234, retry_after=0)
    assert ok.headers() == {
        "X-RateLimit-Limit": "300",
        "X-RateLimit-Remaining": "287",
        "X-RateLimit-Reset": "1678901234",
    }
    refused = Decision(allowed=False, limit=300, remaining=0, reset=1678901234, retry_after=17)
    assert refused.headers() == {
        "X-RateLimit-Limit": "300",
        "X-RateLimit-Remaining": "0",
        "X-RateLimit-Reset": "1678901234",
        "Retry-After": "17",
    }


# --- behaviour shared by both backends -----------------------------------------------------


@pytest.mark.anyio
async def test_limit_n_allows_n_then_refuses(limiter: RateLimiter) -> None:
    bucket = unique_bucket("key:bmkt_test_abc")
    now = T0 + 12.25
    for i in range(1, 6):
        d = await limiter.hit(bucket, 5, 60, now=now)
        assert d == Decision(True, 5, 5 - i, int(T0) + 60, 0)
        assert d.headers()["X-RateLimit-Remaining"] == str(5 - i)
        assert "Retry-After" not in d.headers()
    refused = await limiter.hit(bucket, 5, 60, now=now)
    assert not refused.allowed
    assert refused.remaining == 0
    assert refused.reset == int(T0) + 60
    assert refused.retry_after == 48  # ceil(60 - 12.25)
    assert refused.headers() == {
        "X-RateLimit-Limit": "5",
        "X-RateLimit-Remaining": "0",
        "X-RateLimit-Reset": str(int(T0) + 60),
        "Retry-After": "48",
    }
    # Still refused later in the same window; Retry-After counts down but never to 0.
    late = await limiter.hit(bucket, 5, 60, now=T0 + 59.9)
    assert (late.allowed, late.retry_after) == (False, 1)


@pytest.mark.anyio
async def test_new_window_resets(limiter: RateLimiter) -> None:
    bucket = unique_bucket("ip:127.0.0.1")
    for _ in range(3):
        await limiter.hit(bucket, 2, 60, now=T0 + 30)
    assert not (await limiter.hit(bucket, 2, 60, now=T0 + 59.999)).allowed
    fresh = await limiter.hit(bucket, 2, 60, now=T0 + 60)
    assert fresh == Decision(True, 2, 1, int(T0) + 120, 0)


@pytest.mark.anyio
async def test_buckets_are_independent(limiter: RateLimiter) -> None:
    a, b = unique_bucket("ip:10.0.0.1"), unique_bucket("ip:10.0.0.2")
    assert (await limiter.hit(a, 1, 60, now=T0)).allowed
    assert not (await limiter.hit(a, 1, 60, now=T0)).allowed
    assert (await limiter.hit(b, 1, 60, now=T0)).allowed


@pytest.mark.anyio
async def test_windows_align_to_multiples(limiter: RateLimiter) -> None:
    bucket = unique_bucket("key:align")
    d = await limiter.hit(bucket, 10, 10, now=T0 + 7.5)
    assert d.reset == int(T0) + 10  # T0 is a multiple of 10 too
    d = await limiter.hit(bucket, 10, 3600, now=T0)
    assert d.reset % 3600 == 0 and d.reset > T0


@pytest.mark.anyio
async def test_per_key_override_is_just_another_limit(limiter: RateLimiter) -> None:
    # A market-maker tier passes a larger limit for its own bucket; the counter is the same.
    bucket = unique_bucket("key:bmkt_live_mm")
    for _ in range(300):
        await limiter.hit(bucket, 300, 60, now=T0)
    assert not (await limiter.hit(bucket, 300, 60, now=T0)).allowed
    assert (await limiter.hit(bucket, 1000, 60, now=T0)).allowed


@pytest.mark.anyio
async def test_zero_limit_and_bad_arguments(limiter: RateLimiter) -> None:
    bucket = unique_bucket("blocked")
    assert not (await limiter.hit(bucket, 0, 60, now=T0)).allowed
    with pytest.raises(ValueError):
        await limiter.hit(bucket, -1, 60, now=T0)
    with pytest.raises(ValueError):
        await limiter.hit(bucket, 1, 0, now=T0)


@pytest.mark.anyio
async def test_default_clock(limiter: RateLimiter) -> None:
    before = time.time()
    d = await limiter.hit(unique_bucket("clock"), 10)
    assert d.allowed and d.remaining == 9
    assert before < d.reset <= time.time() + 60 and d.reset % 60 == 0


# --- memory backend ------------------------------------------------------------------------


@pytest.mark.anyio
async def test_memory_prunes_expired_windows() -> None:
    limiter = MemoryRateLimiter()
    for i in range(1000):
        await limiter.hit(f"ip:10.0.{i // 256}.{i % 256}", 100, 60, now=T0 + 1)
    assert len(limiter) == 1000
    # Once those windows end, the next hit sweeps them: memory does not grow with history.
    await limiter.hit("ip:127.0.0.1", 100, 60, now=T0 + 61)
    assert len(limiter) == 1
    await limiter.close()
    assert len(limiter) == 0


@settings(max_examples=50, deadline=None)
@given(
    limit=st.integers(min_value=0, max_value=20),
    steps=st.lists(st.floats(min_value=0, max_value=30, allow_nan=False), max_size=120),
)
def test_memory_matches_a_simple_model(limit: int, steps: list[float]) -> None:
    """Against an independent count per window: exactly min(hits, limit) allowed in each."""

    async def run() -> None:
        limiter = MemoryRateLimiter()
        now = T0
        counts: dict[int, int] = {}
        for step in steps:
            now += step
            window = int(now // 60)
            counts[window] = counts.get(window, 0) + 1
            d = await limiter.hit("b", limit, 60, now=now)
            assert d.allowed == (counts[window] <= limit)
            assert d.remaining == max(0, limit - counts[window])
            assert d.reset == (window + 1) * 60
            assert (d.retry_after > 0) == (not d.allowed)
            assert len(limiter) <= 2  # only the live window (plus one awaiting the sweep)

    anyio.run(run)


# --- Redis backend -------------------------------------------------------------------------


@pytest.mark.anyio
async def test_two_redis_limiters_share_one_count(
    redis_pair: tuple[RedisRateLimiter, RedisRateLimiter],
) -> None:
    a, b = redis_pair
    bucket = unique_bucket("key:bmkt_test_shared")
    seen = []
    for i in range(6):
        seen.append(await (a if i % 2 == 0 else b).hit(bucket, 4, 60, now=T0 + 5))
    assert [d.allowed for d in seen] == [True, True, True, True, False, False]
    assert [d.remaining for d in seen] == [3, 2, 1, 0, 0, 0]
    assert seen[-1].retry_after == 55
    assert seen[-1].headers()["Retry-After"] == "55"


@pytest.mark.anyio
async def test_redis_concurrent_hits_are_counted_exactly(
    redis_pair: tuple[RedisRateLimiter, RedisRateLimiter],
) -> None:
    a, b = redis_pair
    bucket = unique_bucket("key:burst")
    results: list[Decision] = []

    async def fire(limiter: RedisRateLimiter) -> None:
        results.append(await limiter.hit(bucket, 50, 60, now=T0))

    async with anyio.create_task_group() as tg:
        for i in range(80):
            tg.start_soon(fire, a if i % 2 else b)
    assert sum(d.allowed for d in results) == 50
    assert sorted(d.remaining for d in results if d.allowed) == list(range(50))


@pytest.mark.anyio
async def test_redis_key_layout_and_expiry(redis_url: str) -> None:
    limiter = RedisRateLimiter(redis_url)
    client = aioredis.Redis.from_url(redis_url)
    bucket = unique_bucket("ip:127.0.0.1")
    try:
        await limiter.hit(bucket, 100, 60, now=T0 + 30)
        key = f"ballast:rl:{bucket}:{int(T0)}"
        assert limiter.key(bucket, int(T0)) == key
        assert await client.get(key) == b"1"
        # Every counter expires: nothing accumulates in Redis.
        assert 0 < await client.ttl(key) <= 120
    finally:
        await client.aclose()
        await limiter.close()


@pytest.mark.anyio
async def test_redis_unreachable_raises_backend_error() -> None:
    # Port 1 on loopback refuses connections; the caller gets one exception type to handle.
    limiter = RedisRateLimiter("redis://127.0.0.1:1/0")
    try:
        with pytest.raises(RateLimitBackendError):
            await limiter.hit("b", 1, 60, now=T0)
    finally:
        await limiter.close()


# --- selecting a backend -------------------------------------------------------------------


@pytest.mark.anyio
async def test_rate_limiter_from_url() -> None:
    for url in (None, "", "memory://"):
        made = rate_limiter_from_url(url)
        assert isinstance(made, MemoryRateLimiter)
        await made.close()
    made = rate_limiter_from_url("redis://127.0.0.1:6379/0")
    assert isinstance(made, SharedRateLimiter)
    await made.close()
    with pytest.raises(ValueError):
        rate_limiter_from_url("postgres://localhost/db")


@pytest.mark.anyio
async def test_shared_limiter_falls_back_at_once_and_probes_on_a_schedule() -> None:
    # A refused Redis: the first hit finds it down and is counted by the process instead; the
    # next ones skip Redis entirely until the probe interval has passed.
    now = [0.0]
    breaker = RedisBreaker(retry_interval_s=5.0, clock=lambda: now[0])
    limiter = SharedRateLimiter("redis://127.0.0.1:1/0", breaker)
    try:
        first = await limiter.hit("b", 2, 60, now=T0)
        assert first.allowed and first.remaining == 1
        assert not breaker.up and breaker.failures == 1
        second = await limiter.hit("b", 2, 60, now=T0)
        third = await limiter.hit("b", 2, 60, now=T0)
        assert second.allowed and not third.allowed  # the fallback still limits
        assert breaker.failures == 1  # neither of them tried Redis
        now[0] = 5.0
        await limiter.hit("b", 2, 60, now=T0)  # the probe: tries Redis again, fails again
        assert breaker.failures == 2 and not breaker.up
    finally:
        await limiter.close()


@pytest.mark.anyio
async def test_shared_limiter_closes_the_breaker_when_redis_answers(redis_url: str) -> None:
    breaker = RedisBreaker()
    breaker.failed(ConnectionError("earlier"))
    breaker._next_probe = 0.0  # due for a probe now
    limiter = SharedRateLimiter(redis_url, breaker)
    try:
        await limiter.hit(f"probe-{time.time_ns()}", 5)
        assert breaker.up
    finally:
        await limiter.close()
