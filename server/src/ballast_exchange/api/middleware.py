"""ASGI middleware: rate limits with their headers on every response, and body limits.

Written against raw ASGI rather than Starlette's BaseHTTPMiddleware: it sits on the hot path
of every order, and it only needs to add headers and count.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from ..access.key_ring import KeyRing
from ..access.ratelimit import RateLimiter
from ..service.metrics import Metrics
from ..wire import strict_json
from ..wire.errors import ApiError, envelope
from .rate_gate import RATE_GATE, RateGate

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
    send: Send,
    status: int,
    code: str,
    message: str,
    headers: dict[str, str],
    details: dict[str, Any] | None = None,
) -> None:
    body = json.dumps(envelope(code, message, details)).encode()
    raw = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    raw += [(k.lower().encode(), v.encode()) for k, v in headers.items()]
    await send({"type": "http.response.start", "status": status, "headers": raw})
    await send({"type": "http.response.body", "body": body})


class RateLimitMiddleware:
    """Public requests count per client IP; requests signed with an API key count per key."""

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
        client = scope.get("client") or ("unknown", 0)
        gate = RateGate(
            self.limiter, client[0], self.public_limit, self.private_limit, self.metrics
        )
        if not self._names_known_key(scope):
            decision = await gate.anonymous()
            if not decision.allowed:
                refused = gate.refuse(decision, "public")
                await send_error(send, 429, refused.code, refused.message, decision.headers())
                return
        # Authentication counts a keyed request (``auth.authenticate``); one that never gets
        # there (an unknown route, a body refused first) counts per IP when it answers.
        scope[RATE_GATE] = gate

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                decision = await gate.anonymous()
                extra = [(k.lower().encode(), v.encode()) for k, v in decision.headers().items()]
                message["headers"] = [*message.get("headers", []), *extra]
            await send(message)

        await self.app(scope, receive, send_with_headers)

    def _names_known_key(self, scope: Scope) -> bool:
        for name, value in scope.get("headers", ()):
            if name == b"authorization":
                scheme, _, token = value.decode("latin-1").partition(" ")
                return scheme.lower() == "bearer" and self.keys.get(token.strip()) is not None
        return False


# A refused body is not read to its end: the connection closes after the answer.
CLOSE = {"Connection": "close"}


class BodyTooLarge(Exception):
    """The body passed the limit while it was read."""


async def read_body(receive: Receive, max_bytes: int) -> bytes | None:
    """The whole request body, read to its end (``BodyTooLarge`` past ``max_bytes``, after at
    most that many bytes); None if the client went away first."""
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] != "http.request":
            return None
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > max_bytes:
            raise BodyTooLarge
        chunks.append(chunk)
        if not message.get("more_body", False):
            return b"".join(chunks)


class BodyLimitMiddleware:
    """413 for bodies over the limit (declared or streamed), whatever the method; 415 for a
    non-JSON body to a write; 400 for JSON with a repeated key or nested too deep.

    Bodies are small, so the whole body is read here first: an oversized upload is refused
    after at most the limit's bytes, before authentication or parsing spends anything on it.
    """

    def __init__(self, app: App, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = dict(scope.get("headers", ()))
        length = headers.get(b"content-length")
        if length is not None and length.isdigit() and int(length) > self.max_bytes:
            await send_error(send, 413, "PAYLOAD_TOO_LARGE", self._too_large(), CLOSE)
            return
        if length is None and b"chunked" not in headers.get(b"transfer-encoding", b""):
            await self.app(scope, receive, send)  # no body at all: nothing to read
            return
        try:
            body = await read_body(receive, self.max_bytes)
        except BodyTooLarge:
            await send_error(send, 413, "PAYLOAD_TOO_LARGE", self._too_large(), CLOSE)
            return
        if body is None:
            return  # the client went away
        content_type = headers.get(b"content-type", b"").split(b";")[0].strip().lower()
        if body and scope.get("method") in ("POST", "PUT", "PATCH"):
            if content_type != b"application/json":
                await send_error(
                    send, 415, "UNSUPPORTED_MEDIA_TYPE", "send the body as application/json", {}
                )
                return
            try:
                strict_json.loads(body)
            except ApiError as error:
                await send_error(send, 400, error.code, error.message, {}, error.details)
                return
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
