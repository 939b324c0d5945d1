"""What the request handlers share: settings, the exchange, the store and the key ring."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

from fastapi import Request

from ..access.key_ring import KeyRing
from ..access.keys import SecretBox
from ..access.ratelimit import RateLimiter
from ..access.replay import ReplayCache
from ..config import Settings
from ..domain import DomainError
from ..domain.market import Market
from ..service.exchange import Exchange
from ..service.reads import Reads
from ..service.settlement import Settlements
from ..service.trading import Trading
from ..store.database import Database
from ..wire.errors import from_domain, invalid_request

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
    reads: Reads = field(init=False)
    trading: Trading = field(init=False)

    def __post_init__(self) -> None:
        self.reads = Reads(self.exchange, self.database)
        self.trading = Trading(self.exchange, self.reads)

    def market(self, market_id: str) -> Market:
        """The market, or ``MARKET_NOT_FOUND`` in the envelope."""
        try:
            return self.reads.market(market_id)
        except DomainError as error:
            raise from_domain(error) from None

    async def view(self, render: Callable[[], T]) -> T:
        """Render from the live engine now; answer once all it shows is stored."""
        return await self.reads.settled(render)

    async def read(self, query: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """A store query, once the query tables hold everything executed so far."""
        return await self.reads.stored(query, *args, **kwargs)

    async def page(self, query: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """``read`` for a paged list: a cursor this server did not give out is a bad request;
        an empty one (``cursor=``) asks for the first page."""
        if kwargs.get("cursor") == "":
            kwargs["cursor"] = None
        try:
            return await self.read(query, *args, **kwargs)
        except ValueError:
            raise invalid_request("cursor", "the cursor is not one this server gave out") from None

    async def write(self, action: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """A store write of the API's own (keys, market details), in one transaction."""
        return await self.reads.write(action, *args, **kwargs)


async def app_state(request: Request) -> AppState:
    state: AppState = request.app.state.ballast
    return state
