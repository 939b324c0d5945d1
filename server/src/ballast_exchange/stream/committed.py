"""The exchange as stored: what the stream may show (DESIGN §6).

The live engine runs ahead of its group commit, so the stream renders from a second engine that
executes each command only once its commit has landed. The engine is deterministic, so this
copy passes through exactly the states the store holds, event seq for event seq. Beside it:
each market's recent trades and its traded volume per second for the last 24 hours, which the
engine does not keep.
"""

from __future__ import annotations

from collections import deque
from typing import Any

from sqlalchemy import Connection

from ..domain import Engine
from ..domain.events import Trade
from ..domain.snapshot import restore, snapshot
from ..store import queries
from ..store.projection import JournalItem, trade_row

RECENT_TRADES = 50
DAY_S = 86_400


class Volume:
    """Contracts traded in a sliding 24-hour window, kept per second."""

    __slots__ = ("buckets", "total")

    def __init__(self) -> None:
        self.buckets: deque[list[int]] = deque()  # [second, contracts], oldest first
        self.total = 0

    def add(self, time_ms: int, size: int) -> None:
        second = time_ms // 1000
        if self.buckets and self.buckets[-1][0] == second:
            self.buckets[-1][1] += size
        else:
            self.buckets.append([second, size])
        self.total += size

    def since(self, now_ms: int) -> int:
        """Volume of the 24 hours before ``now_ms``, dropping what has aged out."""
        cutoff = now_ms // 1000 - DAY_S
        buckets = self.buckets
        while buckets and buckets[0][0] < cutoff:
            self.total -= buckets.popleft()[1]
        return self.total


class CommittedView:
    def __init__(self, live: Engine) -> None:
        # Built before the exchange takes its first command, when live and stored agree.
        self.engine = restore(snapshot(live))
        self.recent: dict[str, deque[dict[str, Any]]] = {}
        self.volume: dict[str, Volume] = {}

    def load(self, conn: Connection, now_ms: int) -> None:
        """Recent trades and the last day's volume from the store, once at start."""
        for market_id in self.engine.markets:
            page = queries.list_trades(conn, market_id, limit=RECENT_TRADES)
            self.recent[market_id] = deque(reversed(page.items), maxlen=RECENT_TRADES)
        for market_id, second, size in queries.volume_by_second(conn, now_ms - DAY_S * 1000):
            self.volume.setdefault(market_id, Volume()).add(second * 1000, size)

    def apply(self, item: JournalItem) -> None:
        """Run one committed command on the stored engine, and note its trades."""
        self.engine.execute(item.command)
        for event in item.events:
            if type(event) is Trade:
                market_id = event.market_id
                recent = self.recent.get(market_id)
                if recent is None:
                    recent = self.recent[market_id] = deque(maxlen=RECENT_TRADES)
                recent.append(trade_row(event))
                volume = self.volume.get(market_id)
                if volume is None:
                    volume = self.volume[market_id] = Volume()
                volume.add(event.time, event.size)

    def volume_24h(self, market_id: str, now_ms: int) -> int:
        volume = self.volume.get(market_id)
        return 0 if volume is None else volume.since(now_ms)
