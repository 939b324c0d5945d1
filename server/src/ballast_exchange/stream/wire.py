"""Writing the stream's frames straight onto each connection's socket.

A message goes to many subscribers. Through ASGI, every subscriber's copy would be framed by the
WebSocket library and passed down several layers of ``send`` wrappers: tens of microseconds
each, which at a thousand subscribers is more CPU than matching. Server-to-client frames are
unmasked and we do not negotiate compression, so the frame of a message is the same bytes for
every subscriber: it is built once and written to each transport (docs/adr/0005).

The transport comes from the ASGI server. uvicorn (which ``ballast serve`` runs) hands each
application the ``receive`` of its protocol object, whose ``transport`` is the connection's
socket; ``CaptureTransport`` puts it in the scope before any other middleware wraps ``receive``.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any, Protocol, cast

TRANSPORT_KEY = "ballast.transport"

Scope = MutableMapping[str, Any]
App = Callable[[Scope, Any, Any], Awaitable[None]]


class Transport(Protocol):
    def write(self, data: bytes) -> None: ...
    def get_write_buffer_size(self) -> int: ...
    def is_closing(self) -> bool: ...
    def abort(self) -> None: ...


def text_frame(text: str) -> bytes:
    """One unmasked, final WebSocket text frame (RFC 6455 §5.2) carrying ``text``."""
    payload = text.encode()
    size = len(payload)
    if size < 126:
        header = bytes((0x81, size))
    elif size < 65_536:
        header = b"\x81\x7e" + size.to_bytes(2, "big")
    else:
        header = b"\x81\x7f" + size.to_bytes(8, "big")
    return header + payload


def transport_of(receive: Any) -> Transport | None:
    transport = getattr(getattr(receive, "__self__", None), "transport", None)
    if all(hasattr(transport, name) for name in ("write", "get_write_buffer_size", "abort")):
        return cast(Transport, transport)
    return None


class CaptureTransport:
    """ASGI middleware (outermost): a WebSocket's transport into ``scope[TRANSPORT_KEY]``."""

    def __init__(self, app: App) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Any, send: Any) -> None:
        if scope["type"] == "websocket":
            scope[TRANSPORT_KEY] = transport_of(receive)
        await self.app(scope, receive, send)
