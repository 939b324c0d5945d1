"""The ASGI application, assembled at the top: the v1 REST API with its documentation and
middleware, the WebSocket stream, the dashboard, and the health and metrics endpoints."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI, Response
from fastapi.responses import JSONResponse
from prometheus_client import CONTENT_TYPE_LATEST

from .api.access_log import AccessMiddleware
from .api.http_limits import HttpLimits, effective_max_connections, protocol_class
from .api.middleware import BodyLimitMiddleware, RateLimitMiddleware
from .api.openapi import PUBLIC_DOCUMENT, documented_paths, package_version
from .api.openapi import install as install_openapi
from .api.order_entry import ExchangeAPI, OrderEntry
from .api.routes import (
    account,
    admin,
    faucet,
    heartbeat,
    order_groups,
    orders,
    public,
    recovery,
    settlement,
)
from .bootstrap import Runtime
from .config import Settings
from .dashboard import install as install_dashboard
from .stream.endpoint import stream
from .stream.wire import CaptureTransport
from .wire import errors

log = logging.getLogger(__name__)

DESCRIPTION = """
The Ballast exchange API: binary and index markets on trade flows.

Private endpoints take `Authorization: Bearer <API_KEY>`, `X-BM-Timestamp` (Unix milliseconds)
and `X-BM-Signature`: the hex HMAC-SHA256, keyed with the API secret, of
`timestamp + METHOD + path + body`, where `path` includes `/v1` and the query string.
Errors always come as `{"error": {"code", "message", "details"}}`.
"""


def create_app(runtime: Runtime) -> FastAPI:
    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        await runtime.start()
        app.state.ballast = runtime.state
        app.state.stream_hub = runtime.hub
        app.state.ballast_snapshotter = runtime.snapshotter
        try:
            yield
        finally:
            await runtime.stop()

    app = ExchangeAPI(
        title="Ballast exchange API",
        version=package_version(),
        description=DESCRIPTION,
        openapi_url=PUBLIC_DOCUMENT,
        docs_url=None,  # served by install_openapi, from local assets
        redoc_url=None,
        lifespan=lifespan,
    )
    errors.install(app)
    for router in (
        public.router,
        settlement.public_router,
        orders.router,
        heartbeat.router,
        order_groups.router,
        account.router,
        admin.router,
        recovery.router,
        settlement.admin_router,
    ):
        app.include_router(router, prefix="/v1")
    if runtime.settings.env == "sandbox":
        app.include_router(faucet.router, prefix="/v1")

    app.add_api_websocket_route("/stream", stream)
    install_dashboard(app)  # the account dashboard: pages at /, its API at /dashboard/api

    @app.get("/healthz", include_in_schema=False)
    async def healthz() -> dict[str, str]:
        """Alive: the process serves HTTP. Nothing else is checked."""
        return {"status": "ok"}

    @app.get("/readyz", include_in_schema=False)
    async def readyz() -> JSONResponse:
        """Ready for traffic: recovered, taking commands, and the database answers."""
        checks = await runtime.readiness()
        degraded = runtime.degraded()
        choice = runtime.exchange.engine_choice
        engine = {"name": choice.name, "reason": choice.reason}
        # How this process recovered: from which snapshot, how much journal it replayed.
        recovered = runtime.exchange.recovery.describe()
        failed = [name for name, state in checks.items() if state != "ok"]
        if failed:
            return errors.error_response(
                "SERVICE_UNAVAILABLE",
                f"not ready: the {', '.join(failed)} check{'s' if len(failed) > 1 else ''} failed",
                {
                    "role": runtime.role,
                    "failed": failed,
                    "checks": checks,
                    "degraded": degraded,
                    "matching": engine,
                    "recovery": recovered,
                },
                {"Retry-After": "5"},
            )
        return JSONResponse(
            {
                "status": "ready",
                "role": runtime.role,
                "checks": checks,
                "degraded": degraded,
                "matching": engine,
                "recovery": recovered,
            }
        )

    @app.get("/metrics", include_in_schema=False)
    async def metrics() -> Response:
        """Prometheus text format; rendered on the loop, where the counters are bumped."""
        return Response(runtime.metrics.render(), media_type=CONTENT_TYPE_LATEST)

    install_openapi(app)  # the public and admin documents and /docs, built on first use

    settings = runtime.settings
    # Added last is outermost: rate limiting wraps everything, so even 413 and 415 carry the
    # rate-limit headers and count.
    app.add_middleware(BodyLimitMiddleware, max_bytes=settings.max_body_bytes)
    app.add_middleware(
        RateLimitMiddleware,
        limiter=runtime.limiter,
        keys=runtime.keys,
        public_limit=settings.public_rate_limit,
        private_limit=settings.private_rate_limit,
        metrics=runtime.metrics,
    )
    # Outside the rate limits: 429s get a request id, an access line and a count too.
    app.add_middleware(
        AccessMiddleware,
        metrics=runtime.metrics,
        templates=lambda: documented_paths(app),
    )
    app.add_middleware(CaptureTransport)  # outermost: it must see uvicorn's own receive
    # Order entry answers its routes itself, ahead of all of the above (docs/adr/0024).
    app.order_entry = OrderEntry(
        app,
        limiter=runtime.limiter,
        keys=runtime.keys,
        public_limit=settings.public_rate_limit,
        private_limit=settings.private_rate_limit,
        metrics=runtime.metrics,
        max_body_bytes=settings.max_body_bytes,
        templates=lambda: documented_paths(app),
    )
    return app


def server_options(settings: Settings) -> dict[str, Any]:
    """What uvicorn needs from the settings: the connection limits (with the HTTP protocol
    that enforces them), WebSocket keepalive and frame limit. ``ballast serve`` and the tests'
    servers both start uvicorn with exactly these."""
    limits = HttpLimits(
        max_connections=effective_max_connections(settings.http_max_connections),
        header_timeout_s=settings.http_header_timeout_s,
        max_head_bytes=settings.http_max_head_bytes,
        max_headers=settings.http_max_headers,
    )
    return {
        "http": protocol_class(limits),
        "timeout_keep_alive": settings.http_keep_alive_timeout_s,
        "h11_max_incomplete_event_size": settings.http_max_head_bytes,  # should h11 be used
        "ws_ping_interval": settings.stream_ping_interval_s,
        "ws_ping_timeout": settings.stream_ping_timeout_s,
        "ws_max_size": settings.stream_max_message_bytes,
        # Compressing each message once per subscriber costs more CPU than the fan-out
        # itself; market data is small and a TLS proxy may compress if it likes.
        "ws_per_message_deflate": False,
    }
