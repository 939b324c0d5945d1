"""The dead-man switch: an API key that stops heartbeating has its account's orders canceled.

``POST /v1/heartbeat`` (or the stream's ``heartbeat`` op) arms the key's switch for
``timeout_s`` seconds and moves its deadline on each call; ``timeout_s: 0`` disarms it. The
runtime's timer loop calls ``fire_due``: a switch whose deadline passed cancels every open order
of the key's account, each journaled with the reason ``heartbeat_expired``, and is disarmed (the
next heartbeat arms it again).

A deadline is stored before the heartbeat is answered, so a switch survives a crash: recovery
loads the stored switches and the first timer run fires those that lapsed while the server was
down (docs/adr/0018-dead-man-switch.md).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from dataclasses import dataclass

from ..domain import CancelReason, DomainError
from ..store import dead_man as store
from .reads import Reads
from .trading import Trading

log = logging.getLogger(__name__)

MIN_TIMEOUT_S = 5
MAX_TIMEOUT_S = 60


@dataclass(frozen=True, slots=True)
class Switch:
    """One key's armed switch: its account, timeout and the time (ms) it fires at."""

    api_key: str
    account_id: str
    timeout_ms: int
    deadline: int


class DeadMan:
    def __init__(self, reads: Reads, trading: Trading) -> None:
        self.reads = reads
        self.trading = trading
        self.armed: dict[str, Switch] = {}
        # Store writes run in the thread pool; one at a time, each storing the key's switch as it
        # is when the write starts, so an older heartbeat can never overwrite a newer deadline.
        self._writing = asyncio.Lock()

    async def heartbeat(self, api_key: str, account_id: str, timeout_s: int) -> Switch | None:
        """Arm the key's switch for ``timeout_s`` seconds from now (0: disarm); answers once the
        switch is stored. None: disarmed."""
        if timeout_s == 0:
            await self.disarm(api_key)
            return None
        if not MIN_TIMEOUT_S <= timeout_s <= MAX_TIMEOUT_S:
            raise DomainError(
                "INVALID_REQUEST",
                f"timeout_s must be 0 (disarm) or {MIN_TIMEOUT_S} to {MAX_TIMEOUT_S} seconds",
                {"field": "timeout_s"},
            )
        self.reads.require_account(account_id)
        timeout_ms = timeout_s * 1000
        # In memory at once: a heartbeat counts from when it arrived, not from when it is stored.
        switch = Switch(api_key, account_id, timeout_ms, self.reads.exchange.clock() + timeout_ms)
        self.armed[api_key] = switch
        await self._store(api_key)
        return switch

    async def disarm(self, api_key: str) -> None:
        self.armed.pop(api_key, None)
        await self._store(api_key)

    async def _store(self, api_key: str) -> None:
        async with self._writing:
            switch = self.armed.get(api_key)
            if switch is None:
                await self.reads.write(store.drop_switch, api_key)
            else:
                await self.reads.write(
                    store.put_switch, api_key, switch.account_id, switch.timeout_ms, switch.deadline
                )

    async def recover(self) -> None:
        """Load the switches armed before a restart; ``fire_due`` fires those that lapsed."""
        for api_key, account_id, timeout_ms, deadline in await self.reads.stored(
            store.stored_switches
        ):
            self.armed[api_key] = Switch(api_key, account_id, timeout_ms, deadline)
        if self.armed:
            log.info("recovered %d armed dead-man switches", len(self.armed))

    async def fire_due(self, now: int) -> int:
        """Fire every switch whose deadline is at or before ``now``; returns how many orders
        were canceled."""
        due = sorted(
            (s for s in self.armed.values() if s.deadline <= now),
            key=lambda s: (s.deadline, s.api_key),
        )
        total = 0
        for switch in due:
            if self.armed.get(switch.api_key) is not switch:
                continue  # a heartbeat moved it on while an earlier switch fired
            del self.armed[switch.api_key]
            try:
                canceled = await self._cancel_orders(switch.account_id)
            except BaseException:
                # Storage failed (or shutdown): keep it armed, so it fires again once it can,
                # here or, from its stored row, after a restart.
                self.armed.setdefault(switch.api_key, switch)
                raise
            async with self._writing:
                await self.reads.write(store.drop_switch, switch.api_key, switch.deadline)
            log.info(
                "dead-man switch of key %s fired: canceled %d orders of %s",
                switch.api_key,
                canceled,
                switch.account_id,
            )
            total += canceled
        return total

    async def _cancel_orders(self, account_id: str) -> int:
        # Each cancel runs now, one after another, then all are awaited: an order that filled
        # or was canceled in between is simply no longer there.
        pending = [
            self.trading.cancel(account_id, order_id, CancelReason.HEARTBEAT_EXPIRED)
            for order_id in self.reads.account_open_order_ids(account_id)
        ]
        canceled = 0
        for cancel in pending:
            with contextlib.suppress(DomainError):
                await cancel.result()
                canceled += 1
        return canceled
