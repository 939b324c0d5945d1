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
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from .api.auth import KeyRecord, KeyRing
from .api.keys import SecretBox, new_api_key, parse_scopes
from .api.ratelimit import RateLimiter, rate_limiter_from_url
from .api.state import AppState
from .config import Settings
from .domain import MarketKind, MarketStatus
from .domain import commands as c
from .service.exchange import Exchange, at_time
from .store import queries
from .store import records as account_store
from .store.database import Database
from .store.records import upsert_market_details
from .stream.hub import Hub

log = logging.getLogger(__name__)
USDC = 1_000_000
ADMIN_TOKEN_FILE = "admin.token"
DEMO_FILE = "demo-account.json"


def status_change(market_id: str, status: MarketStatus) -> Callable[[int], c.Command]:
    return lambda t: c.ChangeMarketStatus(t, market_id, status)


def write_private(path: Path, text: str) -> None:
    """Create a file only its owner can read (the admin credential, the demo key)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(text)
    os.chmod(path, 0o600)


def admin_token(data_dir: Path) -> tuple[str, bool]:
    path = data_dir / ADMIN_TOKEN_FILE
    if path.exists():
        return path.read_text().strip(), False
    token = f"bmkt_admin_{secrets.token_urlsafe(32)}"
    write_private(path, token + "\n")
    return token, True


@dataclass
class Runtime:
    settings: Settings
    database: Database = field(init=False)
    secrets: SecretBox = field(init=False)
    keys: KeyRing = field(init=False)
    limiter: RateLimiter = field(init=False)
    exchange: Exchange = field(init=False)
    hub: Hub = field(init=False)
    state: AppState = field(init=False)
    admin_token_created: bool = False
    demo: dict[str, Any] | None = None
    on_started: Callable[[], None] | None = None
    _timers: list[asyncio.Task[None]] = field(default_factory=list)

    def __post_init__(self) -> None:
        s = self.settings
        s.data_dir.mkdir(parents=True, exist_ok=True)
        self.database = Database(s.sqlalchemy_url)
        self.database.upgrade()
        self.secrets = SecretBox.from_environment(s.data_dir, s.secret_key)
        self.keys = KeyRing()
        with self.database.engine.connect() as conn:
            for row in queries.list_api_keys(conn, None):
                self.keys.put(
                    KeyRecord(
                        row["api_key"],
                        row["account_id"],
                        self.secrets.decrypt(row["secret_encrypted"]),
                        parse_scopes(row["scopes"].split(",")),
                        row["tier"],
                        row["revoked_at"] is not None,
                    )
                )
        self.limiter = rate_limiter_from_url(s.redis_url)
        token, self.admin_token_created = admin_token(s.data_dir)
        self.exchange = Exchange(self.database.engine)
        # The stream sees a command once it is stored, never before (DESIGN §6).
        self.hub = Hub(self.exchange, s)
        self.exchange.on_committed = self.hub.committed
        self.state = AppState(
            s, self.database, self.exchange, self.keys, self.secrets, self.limiter, token
        )

    async def start(self) -> None:
        self.hub.start()
        self.exchange.start()
        # Whatever fell due while the server was down is done first, once.
        await self.run_timers_once()
        if self.settings.env == "sandbox" and self.settings.demo:
            self.demo = await self.ensure_demo()
        self._timers.append(asyncio.create_task(self._tick()))
        if self.on_started is not None:
            self.on_started()

    async def stop(self) -> None:
        await self.hub.stop()
        for task in self._timers:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self.exchange.stop()
        await self.limiter.close()
        self.database.dispose()

    async def _tick(self) -> None:
        while True:
            await asyncio.sleep(0.25)
            try:
                await self.run_timers_once()
            except Exception:  # a failed timer run must not stop the timers
                log.exception("timer run failed")

    async def run_timers_once(self) -> None:
        """Close markets past their close time; expire GTD orders that are due."""
        exchange = self.exchange
        if not exchange.healthy:
            return
        now = exchange.clock()
        for market in list(exchange.engine.markets.values()):
            if market.close_time <= now and market.status in (
                MarketStatus.OPEN,
                MarketStatus.HALTED,
            ):
                await exchange.submit(status_change(market.market_id, MarketStatus.CLOSED))
        due = exchange.engine.next_expiry()
        if due is not None and due <= now:
            await exchange.submit(lambda t: c.ExpireOrders(t))

    async def ensure_demo(self) -> dict[str, Any]:
        """Sandbox first start: demo markets and a funded demo account whose key is printed."""
        path = self.settings.data_dir / DEMO_FILE
        if path.exists():
            demo: dict[str, Any] = json.loads(path.read_text())
            return demo
        exchange = self.exchange
        month_start = datetime.now(UTC).replace(day=1, hour=0, minute=0, second=0, microsecond=0)
        # The last minute of next month, so a fresh sandbox has weeks of trading ahead.
        month_end = (month_start + timedelta(days=62)).replace(day=1) - timedelta(minutes=1)
        markets: list[dict[str, Any]] = [
            {
                "id": f"suez-{month_end:%b%Y}".lower(),
                "name": f"Suez Canal Availability - {month_end:%B %Y}",
                "kind": MarketKind.BINARY,
                "tick_value": 1_000,
                "floor": 0,
                "cap": 1_000,
                "question": f"Will the Suez Canal be available for tanker transits through "
                f"{month_end:%B %Y}?",
                "resolution_source": "Suez Canal Authority navigation notices",
            },
            {
                "id": f"shanghai-congestion-{month_end:%b%Y}".lower(),
                "name": f"Shanghai Port Congestion Index - {month_end:%B %Y}",
                "kind": MarketKind.INDEX,
                "tick_value": 100_000,
                "floor": 0,
                "cap": 1_000,
                "question": f"Where will the Shanghai port congestion index (0-100) read at "
                f"the end of {month_end:%B %Y}?",
                "resolution_source": "Published port congestion index, month-end reading",
            },
        ]
        close_ms = int(month_end.timestamp() * 1000)
        for m in markets:
            if m["id"] not in exchange.engine.markets:
                listing = c.CreateMarket(
                    0,
                    m["id"],
                    m["kind"],
                    m["tick_value"],
                    m["floor"],
                    m["cap"],
                    close_ms,
                    maker_fee_bps=-5,
                    taker_fee_bps=20,
                )
                await exchange.submit(at_time(listing))
                await exchange.submit(status_change(m["id"], MarketStatus.OPEN))
            await self.state.write(
                upsert_market_details,
                m["id"],
                name=m["name"],
                question=m["question"],
                description=m["question"],
                resolution_source=m["resolution_source"],
                settlement_date=close_ms,
            )
        account_id = f"acc_{secrets.token_hex(8)}"
        await exchange.submit(lambda t: c.CreateAccount(t, account_id))
        await exchange.submit(lambda t: c.Deposit(t, account_id, 100_000 * USDC, "demo"))
        await self.state.write(account_store.set_account_name, account_id, "Demo desk")
        api_key, secret = new_api_key(self.settings.env)
        await self.state.write(
            account_store.insert_api_key,
            api_key=api_key,
            account_id=account_id,
            secret_encrypted=self.secrets.encrypt(secret),
            scopes="read,trade",
            tier=None,
            label="demo",
            created_at=exchange.clock(),
        )
        self.keys.put(KeyRecord(api_key, account_id, secret, frozenset({"read", "trade"})))
        demo = {"account_id": account_id, "api_key": api_key, "api_secret": secret}
        write_private(path, json.dumps(demo, indent=2) + "\n")
        return demo
