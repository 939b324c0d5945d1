"""ASGI middleware: rate limits with their headers on every response, and body limits.

Written against raw ASGI rather than Starlette's BaseHTTPMiddleware: it sits on the hot path
of every order, and it only needs to add headers and count.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from ..service.metrics import Metrics
from .auth import KeyRing
from .errors import envelope
from .ratelimit import Decision, RateLimiter, hit_with_fallback

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
App = Callable[[Scope, Receive, Send], Awaitable[None]]

log = logging.getLogger(__name__)

# The operator's API, the health probes, the metrics scrape and the dashboard's static files
# are not rate limited; everything else is.
EXEMPT_PREFIXES = ("/v1/admin", "/healthz", "/readyz", "/metrics", "/dashboard/static")


async def send_error(
    send: Send, status: int, code: str, message: str, headers: dict[str, str]
) -> None:
    body = json.dumps(envelope(code, message)).encode()
    raw = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    raw += [(k.lower().encode(), v.encode()) for k, v in headers.items()]
    await send({"type": "http.response.start", "status": status, "headers": raw})
    await send({"type": "http.response.body", "body": body})


class RateLimitMiddleware:
    """Public requests count per client IP; requests with a known API key count per key."""

    def __init__(
        self,
        app: App,
        limiter: RateLimiter,
        keys: KeyRing,
        public_limit: int,
        private_limit: int,
        metrics: Metrics | None = None,
    ) -> None:
        self.app = app
        self.limiter = limiter
        self.keys = keys
        self.public_limit = public_limit
        self.private_limit = private_limit
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path: str = scope.get("path", "")
        if scope["type"] != "http" or path.startswith(EXEMPT_PREFIXES):
            await self.app(scope, receive, send)
            return
        bucket, limit = self._bucket(scope)
        decision = await hit_with_fallback(self.limiter, bucket, limit)
        headers = decision.headers()
        if not decision.allowed:
            if self.metrics is not None:
                self.metrics.rate_limited("private" if bucket.startswith("key:") else "public")
            await send_error(send, 429, "RATE_LIMIT_EXCEEDED", _too_many(decision), headers)
            return
        extra = [(k.lower().encode(), v.encode()) for k, v in headers.items()]

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [*message.get("headers", []), *extra]
            await send(message)

        await self.app(scope, receive, send_with_headers)

    def _bucket(self, scope: Scope) -> tuple[str, int]:
        for name, value in scope.get("headers", ()):
            if name == b"authorization":
                scheme, _, token = value.decode("latin-1").partition(" ")
                record = self.keys.get(token.strip()) if scheme.lower() == "bearer" else None
                if record is not None:
                    return f"key:{record.api_key}", record.limit(self.private_limit)
                break
        client = scope.get("client") or ("unknown", 0)
        return f"ip:{client[0]}", self.public_limit


def _too_many(decision: Decision) -> str:
    limit, wait = decision.limit, decision.retry_after
    return f"rate limit of {limit} requests a minute exceeded; retry in {wait}s"


class BodyLimitMiddleware:
    """413 for bodies over the limit (declared or streamed), 415 for non-JSON bodies.

    Bodies are small, so the whole body is read here first: an oversized chunked upload is
    refused before the application starts parsing it.
    """

    def __init__(self, app: App, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope.get("method") not in ("POST", "PUT", "PATCH"):
            await self.app(scope, receive, send)
            return
        headers = dict(scope.get("headers", ()))
        length = headers.get(b"content-length")
        if length is not None and length.isdigit() and int(length) > self.max_bytes:
            await send_error(send, 413, "PAYLOAD_TOO_LARGE", self._too_large(), {})
            return
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] != "http.request":
                return  # the client went away
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.max_bytes:
                await send_error(send, 413, "PAYLOAD_TOO_LARGE", self._too_large(), {})
                return
            chunks.append(chunk)
            if not message.get("more_body", False):
                break
        content_type = headers.get(b"content-type", b"").split(b";")[0].strip().lower()
        if size and content_type != b"application/json":
            await send_error(
                send, 415, "UNSUPPORTED_MEDIA_TYPE", "send the body as application/json", {}
            )
            return
        body = b"".join(chunks)
        delivered = False

        async def replay() -> Message:
            nonlocal delivered
            if delivered:
                return await receive()
            delivered = True
            return {"type": "http.request", "body": body, "more_body": False}

        await self.app(scope, replay, send)

    def _too_large(self) -> str:
        return f"the body exceeds {self.max_bytes} bytes"
