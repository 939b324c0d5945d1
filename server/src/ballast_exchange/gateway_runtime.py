"""A gateway's runtime: the REST API, the stream and the dashboard in front of a sequencer.

Built like ``bootstrap.Runtime`` from the same settings, over the same store, but it never
writes the journal: no lease, no timers that run commands, no snapshots, no sandbox. It
recovers a replica of the engine from the store (a snapshot and the journal after it, like a
hot standby) and then follows the sequencer's committed batches (``service/gateway.py``;
docs/adr/0025-gateways-and-sequencer-over-nats.md).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
import time
from dataclasses import dataclass, field

from .access.connection_slots import connection_slots_from_url
from .access.keys import SECRET_FILE_NAME
from .api.recovery_probe import recovery_probe
from .bootstrap import KEY_USE_FLUSH_TICKS, Runtime, admin_token, private_directory
from .service.exchange import RecoveryProgress, replay
from .service.forking import building_long_lived
from .service.gateway import GatewayExchange
from .service.metrics import Metrics
from .store.database import Database
from .stream.hub import Hub

log = logging.getLogger(__name__)
SCHEMA_WAIT_S = 1.0  # how often a gateway looks again for the schema the sequencer migrates


@dataclass
class GatewayRuntime(Runtime):
    gateway: GatewayExchange = field(init=False)  # the same object as ``exchange``

    def __post_init__(self) -> None:
        s = self.settings
        assert s.nats_url is not None  # Settings refuses a gateway without one
        private_directory(s.data_dir)
        if not s.secret_key and not (s.data_dir / SECRET_FILE_NAME).exists():
            # A new key here could not read the secrets the sequencer's keys were stored with.
            raise ValueError(
                f"a gateway needs the venue's secret key: copy the sequencer's "
                f"{SECRET_FILE_NAME} into {s.data_dir} or set BALLAST_SECRET_KEY"
            )
        self.database = Database(s.sqlalchemy_url, f"ballast-gateway-{secrets.token_hex(4)}")
        progress = RecoveryProgress()
        # Gateways sharing a port (``serve --gateways``) answer only once they serve: a probe
        # there would take a share of the connections from gateways that already do.
        probe = (
            contextlib.nullcontext(False)
            if s.reuse_port
            else recovery_probe(s.host, s.port, progress.describe)
        )
        with probe:
            # The sequencer migrates; a gateway reads only a schema it knows the shape of.
            progress.phase = "waiting for the sequencer to migrate the database"
            while not self.database.is_current():
                time.sleep(SCHEMA_WAIT_S)
            self.metrics = Metrics()
            self._access()
            with building_long_lived():
                found = replay(self.database.engine, progress=progress)
                progress.phase = "done"
                self.exchange = self.gateway = GatewayExchange(
                    self.database.engine,
                    found,
                    s.nats_url,
                    s.nats_subject,
                    metrics=self.metrics,
                    progress=progress,
                )
                slots = connection_slots_from_url(s.redis_url, self.redis)
                self.hub = Hub(self.exchange, s, self.metrics, slots)
        self.gateway.on_committed = self.hub.committed
        self.gateway.key_news.on_changed = self.reload_key
        token, self.admin_token_created = admin_token(s.data_dir)
        self._venue(token)
        self.state.issuing.announce = self.gateway.key_news.announce

    @property
    def role(self) -> str:
        return "gateway"

    async def start(self) -> None:
        self.hub.start()
        await self.gateway.connect()
        self._timers.append(asyncio.create_task(self._flush_key_use()))
        self.started = True
        if self.on_started is not None:
            self.on_started()

    async def stop(self) -> None:
        self.started = False
        if self.on_stopping is not None:
            self.on_stopping()
        await self.hub.stop()
        await self._stop_timers()
        await self.gateway.close()
        await self._close_access()

    async def _flush_key_use(self) -> None:
        while True:
            await asyncio.sleep(0.25 * KEY_USE_FLUSH_TICKS)
            try:
                await self.flush_key_use()
            except Exception:
                log.warning("storing keys' last use failed", exc_info=True)

    async def readiness(self) -> dict[str, str]:
        """A gateway is ready once its replica follows the sequencer's commits."""
        gateway = self.gateway
        checks = {
            "engine": "ok" if self.started else "not started (recovering or shutting down)",
            "replica": "ok" if gateway.replica.failure is None else gateway.replica.failure,
            "bus": "ok" if gateway.healthy else "NATS unreachable; reconnecting",
            "storage": await self._check_storage(),
            "sequencer": await gateway.sequencer_state() if gateway.healthy else "not connected",
        }
        return self._noted(checks)
