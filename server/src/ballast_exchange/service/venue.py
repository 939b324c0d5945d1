"""The venue as every entrypoint sees it: the exchange, its reads and trading desk, the faucet,
key issuing, settlements and the risk controls (dead-man switches, order groups), with the
adapters they share (key ring, rate limits, replay cache).

Built once at start (``bootstrap.Runtime``) and handed to REST, the stream, the dashboard and the
sandbox, so none of them reaches past it into the engine or the store.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

from ..access.key_ring import KeyRing
from ..access.keys import SecretBox
from ..access.ratelimit import RateLimiter
from ..access.replay import ReplayCache
from ..config import Settings
from ..domain import DomainError
from ..domain.market import Market
from ..store.database import Database
from .dead_man import DeadMan
from .exchange import Exchange
from .faucet import Faucet
from .gateway import (
    GatewayExchange,
    RemoteDeadMan,
    RemoteFaucet,
    RemoteOrderGroups,
    RemoteTrading,
)
from .key_issuing import KeyIssuing
from .order_groups import OrderGroups
from .reads import Reads
from .settlement import Settlements
from .trading import Trading

T = TypeVar("T")


@dataclass
class Venue:
    settings: Settings
    database: Database
    exchange: Exchange
    keys: KeyRing
    secrets: SecretBox
    limiter: RateLimiter
    admin_token: str
    settlements: Settlements
    replays: ReplayCache
    reads: Reads = field(init=False)
    trading: Trading = field(init=False)
    faucet: Faucet = field(init=False)
    issuing: KeyIssuing = field(init=False)
    dead_man: DeadMan = field(init=False)
    order_groups: OrderGroups = field(init=False)

    def __post_init__(self) -> None:
        self.reads = Reads(self.exchange, self.database)
        self.issuing = KeyIssuing(
            self.settings.env, self.exchange, self.reads, self.keys, self.secrets, self.replays
        )
        gateway = self.exchange if isinstance(self.exchange, GatewayExchange) else None
        if gateway is None:
            self.trading = Trading(self.exchange, self.reads)
            self.faucet = Faucet(self.settings, self.exchange, self.reads)
            self.dead_man = DeadMan(self.reads, self.trading)
            self.order_groups = OrderGroups(self.reads, self.trading)
            self.exchange.policies.append(self.order_groups)
        else:  # the same services' faces, each call run by the sequencer's
            self.trading = RemoteTrading(gateway, self.reads)
            self.faucet = RemoteFaucet(self.settings, gateway, self.reads)
            self.dead_man = RemoteDeadMan(gateway, self.reads, self.trading)
            self.order_groups = RemoteOrderGroups(gateway, self.reads, self.trading)

    def market(self, market_id: str) -> Market:
        """A listed market, or ``MARKET_NOT_FOUND``."""
        return self.reads.market(market_id)

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
            raise DomainError(
                "INVALID_REQUEST", "the cursor is not one this server gave out", {"field": "cursor"}
            ) from None

    async def write(self, action: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """A store write outside the journal (keys, market details), in one transaction."""
        return await self.reads.write(action, *args, **kwargs)
