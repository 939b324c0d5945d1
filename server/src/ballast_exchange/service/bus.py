"""The bus between the sequencer and its gateways: a NATS connection and the venue's subjects
(docs/adr/0025-gateways-and-sequencer-over-nats.md)."""

from __future__ import annotations

import nats
from nats.aio.client import Client as Nats


def subjects(prefix: str) -> tuple[str, str, str, str]:
    """The calls, committed, keys and gateways (heartbeats) subjects of a venue."""
    return f"{prefix}.calls", f"{prefix}.committed", f"{prefix}.keys", f"{prefix}.gateways"


async def connect(url: str, name: str) -> Nats:
    """A connection that keeps reconnecting (a NATS restart is an outage, not an end)."""
    return await nats.connect(
        url, name=name, max_reconnect_attempts=-1, reconnect_time_wait=0.2, connect_timeout=2
    )
