"""What the request handlers share: settings, the exchange, the store and the key ring."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

from fastapi import Request
from sqlalchemy.exc import OperationalError
from starlette.concurrency import run_in_threadpool

from ..access.key_ring import KeyRing
from ..access.keys import SecretBox
from ..access.ratelimit import RateLimiter
from ..access.replay import ReplayCache
from ..config import Settings
from ..domain.market import Market
from ..service.exchange import Exchange, ServiceUnavailable
from ..service.settlement import Settlements
from ..store.database import Database, begin_write, is_lock_wait
from ..wire.errors import ApiError, invalid_request

T = TypeVar("T")


@dataclass
class AppState:
    settings: Settings
    database: Database
    exchange: Exchange
    keys: KeyRing
    secrets: SecretBox
    limiter: RateLimiter
    admin_token: str
    settlements: Settlements
    replays: ReplayCache
    faucet_lock: asyncio.Lock = field(default_factory=asyncio.Lock)

    def market(self, market_id: str) -> Market:
        market = self.exchange.engine.markets.get(market_id)
        if market is None:
            raise ApiError(
                "MARKET_NOT_FOUND", f"market {market_id!r} does not exist", {"market_id": market_id}
            )
        return market

    async def view(self, render: Callable[[], T]) -> T:
        """Render from the live engine, then answer only once all it shows is stored.

        Rendering first and then waiting for the last command executed so far is what keeps a
        reply from describing commands that ran while it waited (DESIGN §6).
        """
        result = render()
        await self.exchange.barrier()
        return result

    async def read(self, query: Any, *args: Any, **kwargs: Any) -> Any:
        """Run a store query in the thread pool, once the query tables hold everything
        executed so far (so it shows the caller's own writes, and only stored state)."""
        await self.exchange.projected()

        def run() -> Any:
            with self.database.engine.connect() as conn:
                return query(conn, *args, **kwargs)

        return await run_in_threadpool(run)

    async def page(self, query: Any, *args: Any, **kwargs: Any) -> Any:
        """``read`` for a paged list: a cursor this server did not give out is a bad request;
        an empty one (``cursor=``) asks for the first page."""
        if kwargs.get("cursor") == "":
            kwargs["cursor"] = None
        try:
            return await self.read(query, *args, **kwargs)
        except ValueError:
            raise invalid_request("cursor", "the cursor is not one this server gave out") from None

    async def write(self, action: Any, *args: Any, **kwargs: Any) -> Any:
        """Run a store write of the API's own (keys, market details) in one transaction, once
        the query tables hold everything executed so far (it may name an account or a market
        that a command just created)."""
        await self.exchange.projected()

        def run() -> Any:
            with begin_write(self.database.engine) as conn:
                return action(conn, *args, **kwargs)

        try:
            return await run_in_threadpool(run)
        except OperationalError as error:
            if is_lock_wait(error):  # contention, not a broken store: the client may retry
                raise ServiceUnavailable("the database is busy; retry shortly") from None
            raise


async def app_state(request: Request) -> AppState:
    state: AppState = request.app.state.ballast
    return state
