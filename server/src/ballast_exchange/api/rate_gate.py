"""Which budget a request spends: its API key's once its signature holds, else its IP's.

A request counts against its key only once its signature has verified: otherwise anyone who
has seen a key could spend its owner's budget with unsigned requests. A failed authentication,
or a request that never authenticated, counts against the client's IP (the public limit).
"""

from __future__ import annotations

from ..access.ratelimit import Decision, RateLimiter
from ..service.metrics import Metrics
from ..wire.errors import ApiError

RATE_GATE = "ballast.rate_gate"  # the ASGI scope key under which a request's gate travels


def too_many(decision: Decision) -> str:
    limit, wait = decision.limit, decision.retry_after
    return f"rate limit of {limit} requests a minute exceeded; retry in {wait}s"


class RateGate:
    """Counts one request once, against the key or the IP; remembers the decision for the
    response's ``X-RateLimit-*`` headers."""

    def __init__(
        self,
        limiter: RateLimiter,
        ip: str,
        public_limit: int,
        private_limit: int,
        metrics: Metrics | None = None,
    ) -> None:
        self.limiter = limiter
        self.ip = ip
        self.public_limit = public_limit
        self.private_limit = private_limit
        self.metrics = metrics
        self.decision: Decision | None = None

    async def authenticated(self, api_key: str, limit: int) -> Decision:
        if self.decision is None:
            self.decision = await self.limiter.hit(f"key:{api_key}", limit)
        return self.decision

    async def anonymous(self) -> Decision:
        if self.decision is None:
            self.decision = await self.limiter.hit(f"ip:{self.ip}", self.public_limit)
        return self.decision

    def refuse(self, decision: Decision, kind: str) -> ApiError:
        """The 429 for a refused decision (``kind``: ``private`` or ``public``, for metrics)."""
        if self.metrics is not None:
            self.metrics.rate_limited(kind)
        return ApiError("RATE_LIMIT_EXCEEDED", too_many(decision))
