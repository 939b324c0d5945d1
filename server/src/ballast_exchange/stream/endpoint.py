"""The ``/stream`` route: one ``Connection`` per WebSocket, served by the runtime's hub."""

from __future__ import annotations

from starlette.websockets import WebSocket

from ..api.state import AppState
from .connection import Connection
from .hub import Hub


async def stream(websocket: WebSocket) -> None:
    state: AppState = websocket.app.state.ballast
    hub: Hub = websocket.app.state.stream_hub
    client = websocket.client
    await Connection(websocket, hub, state, client.host if client else "unknown").serve()
