"""Cancel-on-disconnect across a gateway's death, on the sequencer.

A connection that drops cancels its guarded orders itself, through its gateway. A gateway that
dies (kill -9, a lost host) cannot, so the sequencer keeps which gateway placed each order
under cancel-on-disconnect, hears every gateway's heartbeat on the bus, and cancels the guarded
orders of one it has not heard from for ``LOST_AFTER_S`` (reason ``disconnect``), as the
gateway's connections would have (docs/adr/0025).
"""

from __future__ import annotations

import logging
from time import monotonic

from ..domain import CancelReason, DomainError
from .exchange import ServiceUnavailable
from .reads import Reads
from .trading import Trading

log = logging.getLogger(__name__)

LOST_AFTER_S = 3.0  # gateways beat every half second: six missed beats


class GatewayWatch:
    def __init__(self, trading: Trading, reads: Reads, lost_after_s: float = LOST_AFTER_S) -> None:
        self.trading = trading
        self.reads = reads
        self.lost_after_s = lost_after_s
        self.heard_at: dict[str, float] = {}
        self.guards: dict[str, dict[int, str]] = {}  # gateway → order id → account id
        self.canceled = 0

    def heard(self, gateway: str) -> None:
        self.heard_at[gateway] = monotonic()

    def guarded(self, gateway: str, account_id: str, order_id: int) -> None:
        self.heard(gateway)
        self.guards.setdefault(gateway, {})[order_id] = account_id

    async def sweep(self) -> None:
        """Cancel what lost gateways guarded; forget guards of orders no longer open."""
        now = monotonic()
        for gateway, guards in list(self.guards.items()):
            for order_id, account_id in list(guards.items()):
                if self.reads.open_order(account_id, order_id) is None:
                    del guards[order_id]
            if now - self.heard_at.get(gateway, now) < self.lost_after_s and guards:
                continue
            del self.guards[gateway]
            if guards:
                log.warning(
                    "gateway %s is silent; canceling its %d cancel-on-disconnect orders",
                    gateway,
                    len(guards),
                )
            for order_id, account_id in sorted(guards.items()):
                canceling = self.trading.cancel(account_id, order_id, CancelReason.DISCONNECT)
                try:
                    await canceling.result()
                    self.canceled += 1
                except (DomainError, ServiceUnavailable):
                    pass  # filled or canceled meanwhile; or stopping: a restart cancels it
        for gateway, at in list(self.heard_at.items()):
            if now - at > 10 * self.lost_after_s and gateway not in self.guards:
                del self.heard_at[gateway]
