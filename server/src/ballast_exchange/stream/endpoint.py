"""The ``/stream`` route: one ``Connection`` per WebSocket, served by the runtime's hub."""

from __future__ import annotations

import logging

from starlette.websockets import WebSocket

from ..service.venue import Venue
from .connection import Connection
from .hub import Hub
from .wire import TRANSPORT_KEY

log = logging.getLogger(__name__)


async def stream(websocket: WebSocket) -> None:
    state: Venue = websocket.app.state.ballast
    hub: Hub = websocket.app.state.stream_hub
    transport = websocket.scope.get(TRANSPORT_KEY)
    if transport is None:
        # Only an ASGI server that exposes its transport (uvicorn) can carry the fan-out.
        log.error("no transport for /stream: serve the app with uvicorn (ballast serve)")
        await websocket.close(1011, "stream unavailable on this server")
        return
    ip = websocket.client.host if websocket.client else "unknown"
    await Connection(websocket, transport, hub, state, ip).serve()
