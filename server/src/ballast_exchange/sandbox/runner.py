"""The sandbox that feels alive: the catalogue rolls, the bot quotes, the feed settles.

``Sandbox.run_once`` runs from the server's timer (and once at start, before anything else):
it lists each series' current and next period that is not listed yet, then lets the feed
propose and finalize closed catalogue markets. Both decide from the engine's state alone, so a
restart lists nothing twice and skips nothing that fell due while the server was down.
"""

from __future__ import annotations

import json
import logging
import secrets
from functools import partial
from typing import TYPE_CHECKING

from ..domain import DomainError, MarketStatus
from ..domain import commands as c
from ..domain.market import Market
from ..service.exchange import Exchange, ServiceUnavailable, at_time
from ..service.settlement import Settlements
from ..store import records
from .bot import LiquidityBot
from .catalogue import Listing, build_catalogue
from .feed import Feed

if TYPE_CHECKING:
    from ..config import Settings
    from ..service.reads import Reads

log = logging.getLogger(__name__)
BOT_FILE = "sandbox-bot.json"  # the bot's account ids, so restarts reuse them
BOT_NAMES = {"maker": "Sandbox market maker (bot)", "taker": "Sandbox taker (bot)"}
RETRY_MS = 30_000


class Sandbox:
    def __init__(
        self, settings: Settings, exchange: Exchange, reads: Reads, settlements: Settlements
    ) -> None:
        self.settings = settings
        self.exchange = exchange
        self.reads = reads
        self.catalogue = build_catalogue(settings.sandbox_period_s)
        self.feed = Feed(self.catalogue, settlements, reads, self.fair_ticks)
        self.bot: LiquidityBot | None = None
        self._next_roll = 0
        self._described: set[str] = set()  # catalogue markets described since this start

    # ---------------------------------------------------------------- lifecycle

    async def start(self) -> None:
        """Start the bot, or, with the bot off, pull the quotes it left on a data dir it used."""
        settings = self.settings
        accounts = await self.bot_accounts(create=settings.bot)
        if accounts is None:
            return
        maker, taker = accounts
        bot = LiquidityBot(
            self.exchange, self.reads, maker, taker, self.anchor, settings.bot_interval_s
        )
        if settings.bot:
            self.bot = bot
            bot.start()
        else:
            await bot.pull_quotes()

    async def stop(self) -> None:
        if self.bot is not None:
            await self.bot.stop()

    async def bot_accounts(self, *, create: bool) -> tuple[str, str] | None:
        path = self.settings.data_dir / BOT_FILE
        if path.exists():
            ids: dict[str, str] = json.loads(path.read_text())
        elif not create:
            return None
        else:
            ids = {role: f"acc_{secrets.token_hex(8)}" for role in BOT_NAMES}
            path.write_text(json.dumps(ids, indent=2) + "\n")
        if create:
            for role, account_id in ids.items():
                if not self.reads.has_account(account_id):
                    await self.exchange.submit(partial(c.CreateAccount, account_id=account_id))
                    await self.reads.write(records.set_account_name, account_id, BOT_NAMES[role])
        return ids["maker"], ids["taker"]

    # ---------------------------------------------------------------- the timer's part

    async def run_once(self, now_ms: int) -> None:
        """Never raises but for a stopped exchange: the server must start, the timer go on."""
        for stage in (self.roll, self.feed.run_once):
            try:
                await stage(now_ms)
            except ServiceUnavailable:
                raise
            except Exception:
                log.exception("sandbox %s failed", stage.__name__)

    async def roll(self, now_ms: int) -> None:
        """List every series' current and next period that is not listed and open yet."""
        if now_ms < self._next_roll:
            return
        listings = self.catalogue.listings(now_ms)
        failed = False
        for listing in listings:
            try:
                await self.list(listing)
            except DomainError as error:
                log.warning("sandbox could not list %s: %s", listing.market_id, error)
                failed = True
        # Nothing changes until the first current period closes (or, after a failure, a while).
        soonest = min(listing.period.close_ms for listing in listings)
        self._next_roll = min(soonest, now_ms + RETRY_MS) if failed else soonest

    async def list(self, listing: Listing) -> None:
        """List one market as the admin API does: create, describe, open (each step once)."""
        exchange = self.exchange
        market_id = listing.market_id
        market = self.reads.find_market(market_id)
        if market is None:
            await exchange.submit(at_time(listing.create()))
            market = self.reads.market(market_id)
        # Described once per start, not only when new: a market listed by an older version
        # gains the fields added since (category, tags, series, event).
        if market_id not in self._described:
            await self.reads.write(records.upsert_market_details, market_id, **listing.details())
            self._described.add(market_id)
        if market.status is MarketStatus.PENDING:
            await exchange.submit(lambda t: c.ChangeMarketStatus(t, market_id, MarketStatus.OPEN))
            log.info("sandbox listed %s", market_id)

    # ---------------------------------------------------------------- values

    def anchor(self, market: Market) -> float | None:
        """A catalogue market's typical value in price units."""
        listing = self.catalogue.lookup(market.market_id)
        return listing.series.anchor if listing is not None else None

    def fair_ticks(self, market: Market, listing: Listing) -> float:
        """The market's last fair value: the bot's, else the last trade, else the typical."""
        if self.bot is not None and market.market_id in self.bot.fair:
            return self.bot.fair[market.market_id]
        if market.last_price is not None:
            return float(market.last_price)
        return listing.series.anchor * 1_000_000 / market.tick_value
