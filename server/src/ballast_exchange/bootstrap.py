"""Everything a running server holds, built from settings: the store, the exchange, keys,
limits, the admin credential, the sandbox's demo data, and the timers that close markets and
expire orders on time."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import secrets
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy import text
from sqlalchemy.engine import make_url

from .access.connection_slots import connection_slots_from_url
from .access.key_ring import KeyRecord, KeyRing
from .access.keys import SecretBox, parse_scopes
from .access.ratelimit import RateLimiter, rate_limiter_from_url
from .access.redis_breaker import RedisBreaker
from .access.replay import ReplayCache, replay_cache_from_url
from .api.recovery_probe import recovery_probe
from .config import Settings
from .domain import CancelReason, MarketStatus
from .domain import commands as c
from .sandbox import Sandbox
from .service.exchange import Exchange, Recovery, RecoveryProgress, at_time
from .service.forking import building_long_lived
from .service.metrics import Metrics
from .service.sequencer_link import SequencerLink
from .service.settlement import Settlements
from .service.snapshotter import SnapshotPolicy, Snapshotter
from .service.standby import JournalFollower
from .service.venue import Venue
from .store import queries
from .store import records as account_store
from .store.database import Database, fence_writes
from .store.instance_lock import InstanceLock
from .store.projection import JournalItem
from .store.sequencer_lease import LeaseLost, SequencerLease, lease_for
from .stream.hub import Hub

log = logging.getLogger(__name__)
USDC = 1_000_000
ADMIN_TOKEN_FILE = "admin.token"
DEMO_FILE = "demo-account.json"
KEY_USE_FLUSH_TICKS = 20  # store keys' last use every 5 s
READY_TIMEOUT_S = 2.0  # a storage probe that takes longer counts as a failure


def status_change(market_id: str, status: MarketStatus) -> Callable[[int], c.Command]:
    return lambda t: c.ChangeMarketStatus(t, market_id, status)


def write_private(path: Path, text: str) -> None:
    """Create a file only its owner can read (the admin credential, the demo key)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(text)
    os.chmod(path, 0o600)


def private_directory(path: Path) -> None:
    """The data directory, for its owner only: it holds the database, the secret key and the
    admin credential. One made by hand with a wider mode is tightened, and that is logged."""
    path.mkdir(mode=0o700, parents=True, exist_ok=True)
    mode = path.stat().st_mode & 0o777
    if mode & 0o077:
        os.chmod(path, 0o700)
        log.warning("data directory %s had mode %o; set to 700", path, mode)


def admin_token(data_dir: Path) -> tuple[str, bool]:
    path = data_dir / ADMIN_TOKEN_FILE
    if path.exists():
        return path.read_text().strip(), False
    token = f"bmkt_admin_{secrets.token_urlsafe(32)}"
    write_private(path, token + "\n")
    return token, True


def sqlite_identity(database: Database) -> tuple[Path, tuple[int, int]] | None:
    """The SQLite database file and its (device, inode), or None for other databases."""
    if database.dialect != "sqlite":
        return None
    name = make_url(database.url).database
    if not name or name == ":memory:" or name.startswith("file:"):
        return None
    path = Path(name).resolve()
    found = path.stat()
    return path, (found.st_dev, found.st_ino)


def snapshot_policy(s: Settings) -> SnapshotPolicy:
    return SnapshotPolicy(
        every_commands=s.snapshot_every_commands,
        every_s=s.snapshot_every_s,
        keep=s.snapshot_keep,
        chunk_bytes=s.snapshot_chunk_bytes,
        timeout_s=s.snapshot_timeout_s,
        retention=s.journal_retention or "keep",
        archive_dir=s.journal_archive_dir,
    )


@dataclass
class Runtime:
    settings: Settings
    database: Database = field(init=False)
    secrets: SecretBox = field(init=False)
    keys: KeyRing = field(init=False)
    limiter: RateLimiter = field(init=False)
    redis: RedisBreaker = field(init=False)
    replays: ReplayCache = field(init=False)
    exchange: Exchange = field(init=False)
    snapshotter: Snapshotter | None = field(init=False, default=None)  # None on a gateway
    link: SequencerLink | None = field(init=False, default=None)  # the bus, for gateways
    hub: Hub = field(init=False)
    settlements: Settlements = field(init=False)
    state: Venue = field(init=False)
    metrics: Metrics = field(init=False)
    instance_lock: InstanceLock = field(init=False)
    admin_token_created: bool = False
    demo: dict[str, Any] | None = None
    sandbox: Sandbox | None = None  # the catalogue, bot and feed: sandbox with demo data only
    on_started: Callable[[], None] | None = None
    on_stopping: Callable[[], None] | None = None  # while this process still holds the store
    # Called (on any thread) when a standby took the store over: the server must stop.
    on_lease_lost: Callable[[LeaseLost], None] | None = None
    lease: SequencerLease | None = field(init=False, default=None)
    _follower: JournalFollower | None = field(init=False, default=None)
    started: bool = False  # recovery and the catch-up timers have run; serving
    _timers: list[asyncio.Task[None]] = field(default_factory=list)
    _sqlite_file: tuple[Path, tuple[int, int]] | None = None
    _probe: asyncio.Future[None] | None = None
    _ready: bool | None = None

    def __post_init__(self) -> None:
        s = self.settings
        private_directory(s.data_dir)
        # Every PostgreSQL session of this process carries this name, so that a successor
        # taking the sequencer lease over can end them (store/sequencer_lease.py).
        session_name = f"ballast-{secrets.token_hex(6)}"
        self.database = Database(s.sqlalchemy_url, session_name)
        self.lease = lease_for(
            self.database.url, session_name, s.standby, s.lease_ttl_s, self._lease_lost
        )
        if s.standby and self.lease is None:
            self.database.dispose()
            raise ValueError("--standby needs a PostgreSQL database (--database-url)")
        # Before anything is migrated, recovered or announced: a second server on this data
        # dir or database is refused here (StoreInUse), not after it has broken the first; a
        # standby waits here, its port answering /readyz with what it waits for.
        self.instance_lock = InstanceLock(s.data_dir, self.database.url, self.lease)
        progress = RecoveryProgress()
        recovered: Recovery | None = None
        if self.lease is not None and s.standby:
            # A hot standby: its engine recovered and following the journal while it waits.
            self._follower = JournalFollower(
                self.database.engine, self.database.is_current, progress
            )
            self.lease.while_waiting = self._follower.step
            with recovery_probe(s.host, s.port, self._standby_progress):
                self.instance_lock.acquire(s.base_url)
                recovered = self._follower.take()
        else:
            self.instance_lock.acquire(s.base_url)
        try:
            if self.lease is not None:
                fence_writes(self.database.engine, self.lease.check)
            self._assemble(progress, recovered)
        except BaseException:
            self.instance_lock.release()
            raise

    def _standby_progress(self) -> dict[str, object]:
        lease, follower = self.lease, self._follower
        if lease is None or follower is None or lease.epoch:
            return follower.progress.describe() if follower is not None else {}
        waiting = lease.waiting_for
        return {
            **follower.progress.describe(),
            "phase": "standby",
            "standby": waiting.describe() if waiting is not None else "starting",
            "following": follower.command_no,
        }

    @property
    def role(self) -> str:
        """``server`` (one process), ``sequencer`` (gateways call it) or ``gateway``."""
        return "sequencer" if self.link is not None else "server"

    def key_record(self, row: dict[str, Any]) -> KeyRecord:
        return KeyRecord(
            row["api_key"],
            row["account_id"],
            self.secrets.decrypt(row["secret_encrypted"]),
            parse_scopes(row["scopes"].split(",")),
            row["tier"],
            row["revoked_at"] is not None,
        )

    async def load_key(self, api_key: str) -> KeyRecord | None:
        """``api_key`` as stored, or None."""

        def load() -> dict[str, Any] | None:
            with self.database.engine.connect() as conn:
                return queries.get_api_key(conn, api_key)

        row = await asyncio.to_thread(load)
        return None if row is None else self.key_record(row)

    async def reload_key(self, api_key: str) -> None:
        """Another process of the venue issued, changed or revoked ``api_key``: take it as
        stored."""
        record = await self.load_key(api_key)
        if record is not None:
            self.keys.put(record)

    def _access(self) -> None:
        """Secrets, the key ring, and the limits and replay cache on the shared Redis: what
        every role checks a request with."""
        s = self.settings
        self.secrets = SecretBox.from_environment(s.data_dir, s.secret_key)
        self.keys = KeyRing()
        with self.database.engine.connect() as conn:
            for row in queries.list_api_keys(conn, None):
                self.keys.put(self.key_record(row))
        if s.nats_url:
            # Beside gateways another process may have issued a key this one has not heard of
            # yet; alone, the ring holds every key, and an unknown one is no query's business.
            self.keys.load = self.load_key
        # One breaker for the one Redis: rate limits and the replay cache fail over together.
        self.redis = RedisBreaker()
        self.limiter = rate_limiter_from_url(s.redis_url, self.redis)
        self.replays = replay_cache_from_url(s.redis_url, self.redis)
        if s.redis_url:
            self.metrics.gauge(
                "ballast_redis_up",
                "1 while the shared Redis answers; 0 while rate limits and the replay cache "
                "fall back to this process",
                (),
                lambda: [((), 1.0 if self.redis.up else 0.0)],
            )
            self.metrics.gauge(
                "ballast_redis_fallbacks",
                "Calls that found Redis failing and were served by the per-process fallback",
                (),
                lambda: [((), float(self.redis.failures))],
            )

    def _venue(self, admin_token: str) -> None:
        """The services every entrypoint is handed, over the exchange this role built."""
        s = self.settings
        self.settlements = Settlements(self.exchange, self.database.engine, s.dispute_window_ms)
        self.state = Venue(
            s,
            self.database,
            self.exchange,
            self.keys,
            self.secrets,
            self.limiter,
            admin_token,
            self.settlements,
            self.replays,
        )

    def _lease_lost(self, lost: LeaseLost) -> None:
        """Another server holds the store now: this one writes nothing more and stops."""
        if self.on_lease_lost is not None:
            self.on_lease_lost(lost)

    def _assemble(self, progress: RecoveryProgress, recovered: Recovery | None) -> None:
        s = self.settings
        self.database.upgrade()
        self._sqlite_file = sqlite_identity(self.database)
        self.metrics = Metrics()
        self._access()
        lease = self.lease
        if lease is not None:
            self.metrics.gauge(
                "ballast_sequencer_epoch",
                "The sequencer lease's epoch this server writes under (PostgreSQL); 0 once "
                "another server took it over",
                (),
                lambda: [((), 0.0 if lease.lost is not None else float(lease.epoch))],
            )
        token, self.admin_token_created = admin_token(s.data_dir)
        # The engine and the stream's read models: millions of long-lived objects at a million
        # resting orders, built without the cycle collector and then frozen (ADR 0016).
        with building_long_lived():
            # Until the engine is rebuilt, the port answers 503 saying how far recovery is.
            with recovery_probe(s.host, s.port, progress.describe):
                self.exchange = Exchange(
                    self.database.engine,
                    projection_sql=self.database.projection_engine,
                    metrics=self.metrics,
                    progress=progress,
                    recovered=recovered,
                )
            # The stream sees a command once it is stored, never before (DESIGN §6).
            # Connection slots per key in Redis: the limit holds across stream processes.
            slots = connection_slots_from_url(s.redis_url, self.redis)
            self.hub = Hub(self.exchange, s, self.metrics, slots)
        self.snapshotter = Snapshotter(self.exchange, snapshot_policy(s), self.metrics)
        self.exchange.on_committed = self.hub.committed
        self._venue(token)
        if s.env == "sandbox" and s.demo:
            self.sandbox = Sandbox(s, self.exchange, self.state.reads, self.settlements)
        if s.nats_url:
            # The sequencer of gateways: their calls come over NATS, and each stored batch
            # goes out to them before any of its commands is answered (docs/adr/0025).
            self.link = link = SequencerLink(self.state, s.nats_url, s.nats_subject)
            hub = self.hub

            def committed(items: Sequence[JournalItem], stored_at: int) -> None:
                link.committed(items, stored_at)
                hub.committed(items, stored_at)

            self.exchange.on_committed = committed
            link.key_news.on_changed = self.reload_key
            self.state.issuing.announce = link.key_news.announce

    async def start(self) -> None:
        self.hub.start()
        self.exchange.start()
        assert self.snapshotter is not None
        self.snapshotter.start()
        # Before any command: the groups must hear of every fill from the first one on.
        await self.state.order_groups.recover()
        await self.cancel_orphaned_guards()
        await self.state.dead_man.recover()
        # Whatever fell due while the server was down is done first, once.
        await self.run_timers_once()
        if self.sandbox is not None:
            self.demo = await self.ensure_demo()
            await self.sandbox.start()
        self._timers.append(asyncio.create_task(self._tick()))
        if self.link is not None:
            await self.link.start()  # last: a gateway's call finds the venue running
        self.started = True
        if self.on_started is not None:
            self.on_started()

    async def stop(self) -> None:
        self.started = False
        if self.on_stopping is not None:
            self.on_stopping()
        if self.link is not None:
            with contextlib.suppress(Exception):  # NATS may be what failed
                await self.link.stop()
        if self.sandbox is not None:
            await self.sandbox.stop()
        await self.hub.stop()
        await self._stop_timers()
        if self.snapshotter is not None:
            await self.snapshotter.stop()
        self.exchange.stop()
        await self._close_access()
        self.instance_lock.release()

    async def _stop_timers(self) -> None:
        for task in self._timers:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def _close_access(self) -> None:
        """Keys' last use stored, Redis's clients closed, the database let go: ``_access``'s
        undoing, last thing in every role's stop."""
        with contextlib.suppress(Exception):  # storage may be what failed
            await self.flush_key_use()
        await self.limiter.close()
        await self.replays.close()
        self.database.dispose()

    async def readiness(self) -> dict[str, str]:
        """Each readiness check and its state ("ok" when it passes): the engine has recovered
        and started, the exchange takes commands, and the database answers ``SELECT 1``."""
        checks = {
            "engine": "ok" if self.started else "not started (recovering or shutting down)",
            "exchange": "ok"
            if self.exchange.healthy
            else "stopped taking commands (a commit failed, or shutting down); restart it",
            "storage": await self._check_storage(),
            "projection": "ok"
            if self.exchange.projection_failure is None
            else f"retrying ({self.exchange.projection_failure}); reads wait for it",
        }
        if self.link is not None:
            checks["bus"] = "ok" if self.link.connected else "NATS unreachable; reconnecting"
        if self.lease is not None:
            checks["sequencer"] = (
                "ok" if self.lease.lost is None else f"another server took over ({self.lease.lost})"
            )
        return self._noted(checks)

    def _noted(self, checks: dict[str, str]) -> dict[str, str]:
        """Log readiness when it changes (not the probes before a first start); the checks."""
        ready = all(state == "ok" for state in checks.values())
        if ready != self._ready:
            if ready:
                log.info("ready")
            elif self._ready is not None or self.started:
                failed = {k: v for k, v in checks.items() if v != "ok"}
                log.warning("not ready: %s", failed)
            self._ready = ready
        return checks

    def degraded(self) -> dict[str, str]:
        """What works, but in a lesser way, without making the server unready: a Redis that
        does not answer (rate limits and the replay cache are then per process)."""
        if self.settings.redis_url and not self.redis.up:
            return {"redis": self.redis.describe()}
        return {}

    async def _check_storage(self) -> str:
        """Probe the database off the loop; one probe at a time, however many ask."""
        if self._probe is None or self._probe.done():
            loop = asyncio.get_running_loop()
            self._probe = loop.run_in_executor(None, self._probe_storage)
        try:
            await asyncio.wait_for(asyncio.shield(self._probe), READY_TIMEOUT_S)
        except TimeoutError:
            return f"no answer within {READY_TIMEOUT_S:g}s"
        except Exception as error:
            log.warning("storage check failed: %r", error)
            return f"unreachable ({type(error).__name__})"
        return "ok"

    def _probe_storage(self) -> None:
        with self.database.engine.connect() as conn:
            conn.execute(text("SELECT 1")).scalar_one()
        if self._sqlite_file is not None:
            # A pooled connection keeps using a file that was deleted or replaced, writing
            # where no restart will find it; so the file at the path must be the one we opened.
            path, identity = self._sqlite_file
            found = os.stat(path)
            if (found.st_dev, found.st_ino) != identity:
                raise FileNotFoundError(f"{path} was replaced since the server opened it")

    async def cancel_orphaned_guards(self) -> None:
        """Cancel-on-disconnect across a restart: every connection of the last process is gone,
        so each order it placed under cancel-on-disconnect that still rests is canceled now,
        journaled with the reason ``disconnect`` (a crash gave the connection no chance to)."""
        guards = await self.state.read(account_store.stored_guards)
        exchange = self.exchange
        canceled = 0
        for order_id, account_id in guards:
            if self.state.reads.open_order(account_id, order_id) is None:
                continue  # filled or canceled before the restart
            cancel = c.CancelOrder(0, account_id, order_id, CancelReason.DISCONNECT)
            await exchange.submit(at_time(cancel))
            canceled += 1
        if guards:
            await self.state.write(account_store.clear_guards, [o for o, _ in guards])
        if canceled:
            log.info(
                "canceled %d cancel-on-disconnect orders of connections lost in a restart", canceled
            )

    async def _tick(self) -> None:
        ticks = 0
        while True:
            await asyncio.sleep(0.25)
            ticks += 1
            try:
                await self.run_timers_once()
                if ticks % KEY_USE_FLUSH_TICKS == 0:
                    await self.flush_key_use()
            except Exception:  # a failed timer run must not stop the timers
                log.exception("timer run failed")

    async def flush_key_use(self) -> None:
        """Store when keys were last used (kept in memory between flushes, not per request)."""
        used = self.keys.take_used()
        if used:
            await self.state.write(account_store.touch_api_keys, used)

    async def run_timers_once(self) -> None:
        """Close markets past their close time and expire GTD orders that are due, in the order
        they fell due (after downtime, an order due before its market's close expires)."""
        exchange = self.exchange
        if not exchange.healthy:
            return
        now = exchange.clock()
        closing = sorted(
            (
                market
                for market in self.state.reads.markets()
                if market.close_time <= now
                and market.status in (MarketStatus.OPEN, MarketStatus.HALTED)
            ),
            key=lambda market: market.close_time,
        )
        for market in closing:
            await self._expire_until(market.close_time)
            await exchange.submit(status_change(market.market_id, MarketStatus.CLOSED))
        await self._expire_until(now)
        await self.state.dead_man.fire_due(now)
        if self.sandbox is not None:
            # Roll the catalogue (list the next periods) and settle what closed.
            await self.sandbox.run_once(exchange.clock())

    async def _expire_until(self, until: int) -> None:
        due = self.state.reads.next_expiry()
        if due is not None and due <= until:
            await self.exchange.submit(lambda t: c.ExpireOrders(t, up_to=until))

    async def ensure_demo(self) -> dict[str, Any]:
        """Sandbox first start: a funded demo account whose key is printed (the demo markets
        are the sandbox catalogue's, listed by ``Sandbox.run_once``)."""
        path = self.settings.data_dir / DEMO_FILE
        if path.exists():
            demo: dict[str, Any] = json.loads(path.read_text())
            return demo
        exchange = self.exchange
        account_id = f"acc_{secrets.token_hex(8)}"
        await exchange.submit(lambda t: c.CreateAccount(t, account_id))
        await exchange.submit(lambda t: c.Deposit(t, account_id, 100_000 * USDC, "demo"))
        await self.state.write(account_store.set_account_name, account_id, "Demo desk")
        key = await self.state.issuing.issue(account_id, ["read", "trade"], "demo", None)
        demo = {
            "account_id": account_id,
            "api_key": key.api_key,
            "api_secret": key.api_secret,
        }
        write_private(path, json.dumps(demo, indent=2) + "\n")
        return demo
