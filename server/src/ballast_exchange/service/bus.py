"""The bus between the sequencer and its gateways: a NATS connection and the venue's subjects
(docs/adr/0025-gateways-and-sequencer-over-nats.md)."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable

import nats
from nats.aio.client import Client as Nats
from nats.aio.msg import Msg

log = logging.getLogger(__name__)


def subjects(prefix: str) -> tuple[str, str, str, str]:
    """The calls, committed, keys and gateways (heartbeats) subjects of a venue."""
    return f"{prefix}.calls", f"{prefix}.committed", f"{prefix}.keys", f"{prefix}.gateways"


async def connect(url: str, name: str) -> Nats:
    """A connection that keeps reconnecting (a NATS restart is an outage, not an end)."""
    return await nats.connect(
        url, name=name, max_reconnect_attempts=-1, reconnect_time_wait=0.2, connect_timeout=2
    )


class KeyNews:
    """API keys issued, changed or revoked by any process of the venue, told to all of them
    (each reloads the key from the store: the message carries only its name)."""

    def __init__(self, subject: str) -> None:
        self.subject = subject
        #: Reloads a key another process changed; set by the runtime.
        self.on_changed: Callable[[str], Awaitable[None]] | None = None
        self._nats: Nats | None = None

    async def attach(self, nc: Nats) -> None:
        self._nats = nc
        await nc.subscribe(self.subject, cb=self._heard)

    async def announce(self, api_key: str) -> None:
        if self._nats is not None:
            await self._nats.publish(self.subject, api_key.encode())
            await self._nats.flush()

    async def _heard(self, msg: Msg) -> None:
        if self.on_changed is not None:
            try:
                await self.on_changed(msg.data.decode())
            except Exception:
                log.exception("reloading an API key failed")
