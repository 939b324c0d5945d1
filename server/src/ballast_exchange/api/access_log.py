"""Request ids, the access log and the HTTP metrics: one raw ASGI middleware, outside the rest.

Each HTTP request gets an id: the client's ``X-Request-ID`` when it is sane (1-128 characters
of letters, digits and ``-_.:``), else a fresh random one. It is returned as ``X-Request-ID``
and set in the ``logs.request_id`` context variable while the request is served, so every log
line of the request carries it. A stream connection gets one too, for its whole life.

One access line per request: method, path (never the query string), status, duration, the
request id, the client address and, for a signed request, the API key's first characters.
Headers are never logged: not ``Authorization``, not ``X-BM-Signature``, not the admin token.
"""

from __future__ import annotations

import logging
import re
import secrets
import threading
import time
from collections.abc import Callable, Iterable

from starlette.routing import Mount

from ..logs import request_id
from ..service.metrics import Metrics
from .middleware import App, Message, Receive, Scope, Send

log = logging.getLogger("ballast_exchange.access")

HEADER = b"x-request-id"
_SANE = re.compile(rb"[A-Za-z0-9._:\-]{1,128}")
_KEY_PREFIXES = (b"bearer bmkt_live_", b"bearer bmkt_test_")
KEY_SHOWN = 16  # "bmkt_live_" and six characters of the random part
# Probed every few seconds: logged at DEBUG so they do not drown the access log.
QUIET = frozenset({"/healthz", "/readyz", "/metrics"})
UNMATCHED = "unmatched"
# Methods as metric labels; anything else a client invents is "other" (labels stay bounded).
METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})


class _RandomIds(threading.local):
    """Fresh request ids from the OS's random source, fetched a few kilobytes at a time. One
    ``getrandom`` per request released the GIL mid-request, and the commit and projection
    threads took it: py-spy saw the loop's thread there in 7% of its samples. A pool per thread
    (a test process runs several servers, each on its own loop's thread)."""

    def __init__(self, batch: int = 512) -> None:
        self._size = 8 * batch
        self._pool = b""
        self._at = 0

    def __call__(self) -> str:
        at = self._at
        if at >= len(self._pool):
            self._pool, at = secrets.token_bytes(self._size), 0
        self._at = at + 8
        return self._pool[at : at + 8].hex()


new_request_id = _RandomIds()


def incoming_id(headers: Iterable[tuple[bytes, bytes]]) -> tuple[str, str | None]:
    """(request id, API key prefix) from the request headers, in one pass over them."""
    rid: str | None = None
    key: str | None = None
    for name, value in headers:
        if name == HEADER:
            if _SANE.fullmatch(value):
                rid = value.decode("ascii")
        elif name == b"authorization" and value[:17].lower() in _KEY_PREFIXES:
            # The key identifies the caller and is not a secret, but only a prefix is logged.
            key = value[7 : 7 + KEY_SHOWN].decode("ascii", "replace")
    return rid or new_request_id(), key


def access_line(level: int, scope: Scope, status: int, elapsed: float, key: str | None) -> None:
    """One request's access log line, with its fields for JSON logs."""
    if not log.isEnabledFor(level):
        return
    method: str = scope["method"]
    path: str = scope["path"]
    ms = round(elapsed * 1000, 3)
    client = scope.get("client")
    log.log(
        level,
        "%s %s %d %.1fms",
        method,
        path,
        status,
        ms,
        extra={
            "method": method,
            "path": path,
            "status": status,
            "duration_ms": ms,
            "client": client[0] if client else None,
            "api_key_prefix": key,
        },
    )


class AccessMiddleware:
    """``templates`` gives the app's path templates (``/v1/orders/{order_id}``), read once when
    a request refused before routing needs its route named."""

    def __init__(
        self, app: App, metrics: Metrics, templates: Callable[[], Iterable[str]] | None = None
    ) -> None:
        self.app = app
        self.metrics = metrics
        self.templates = templates
        self._patterns: list[tuple[re.Pattern[str], str]] | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        kind = scope["type"]
        if kind == "websocket":
            token = request_id.set(incoming_id(scope.get("headers", ()))[0])
            try:
                await self.app(scope, receive, send)
            finally:
                request_id.reset(token)
            return
        if kind != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        rid, key = incoming_id(scope.get("headers", ()))
        token = request_id.set(rid)
        status = 500
        header = (HEADER, rid.encode())

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                message["headers"] = [*message.get("headers", ()), header]
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        finally:
            elapsed = time.perf_counter() - started
            method: str = scope["method"]
            path: str = scope["path"]
            self.metrics.request(
                method if method in METHODS else "other", self._route(scope), status, elapsed
            )
            level = logging.DEBUG if path in QUIET else logging.INFO
            access_line(level, scope, status, elapsed, key)
            request_id.reset(token)

    def _route(self, scope: Scope) -> str:
        """The route template (``/v1/orders/{order_id}``), never the raw path: bounded labels.

        The router leaves the route it chose in the scope, its path relative to the router's
        prefix; the prefix is the path's leading segments. A request refused before routing
        (a 429, a 413) is matched against the templates, and what none matches is ``unmatched``.
        """
        route = scope.get("route")
        relative = getattr(route, "path", None)
        path: str = scope["path"]
        if isinstance(route, Mount):
            return f"{route.path}/{{path}}"
        if isinstance(relative, str) and relative.startswith("/"):
            segments = path.split("/")
            keep = len(segments) - relative.count("/")
            return "/".join(segments[:keep]) + relative if keep >= 1 else relative
        if self._patterns is None:
            self._patterns = []
            try:
                templates = list(self.templates()) if self.templates is not None else []
            except Exception:
                log.exception("cannot list the route templates for the HTTP metrics")
                templates = []
            for template in templates:
                source = re.sub(r"\\{[^/]+?\\}", "[^/]+", re.escape(template)) + "$"
                self._patterns.append((re.compile(source), template))
        for compiled, template in self._patterns:
            if compiled.match(path):
                return template
        return UNMATCHED
