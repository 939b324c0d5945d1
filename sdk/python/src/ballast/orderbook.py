"""``LocalOrderBook``: a market's aggregated book kept in sync from the stream's ``orderbook``
channel (a snapshot, then updates that name the levels whose size changed; size 0 removes one).
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime, timezone
from decimal import Decimal

from .models import BookLevel, OrderBook

__all__ = ["LocalOrderBook"]


class LocalOrderBook:
    """One market's book to the subscribed ``depth``: bids best (highest) first, asks best
    (lowest) first, prices as ``Decimal`` and sizes in contracts.

    The stream applies every ``orderbook`` message to it as it is read, so it is current even
    when nobody iterates the stream. ``seq`` is the last message's sequence number on its
    subscription; ``exchange_seq`` is the exchange event sequence at which the book is known to
    hold: the last book message's, advanced by every later heartbeat and ``ping`` reply (the
    server sends those only after every earlier update). It equals ``seq`` of
    ``GET /v1/markets/{id}/orderbook`` when the two show the same moment.
    """

    __slots__ = (
        "_asks",
        "_bids",
        "_sorted",
        "depth",
        "exchange_seq",
        "market_id",
        "seq",
        "synced",
        "time",
    )

    def __init__(self, market_id: str, depth: int) -> None:
        self.market_id = market_id
        self.depth = depth
        self.seq: int | None = None
        self.exchange_seq: int | None = None
        self.time: datetime | None = None
        #: False until the first snapshot, and again while the stream resyncs it (after a
        #: disconnect or a lost message): then it shows the last state it knew.
        self.synced = False
        self._bids: dict[Decimal, int] = {}
        self._asks: dict[Decimal, int] = {}
        self._sorted: tuple[list[BookLevel], list[BookLevel]] | None = None

    # -- keeping it in sync ----------------------------------------------------------------

    def reset(
        self,
        bids: Iterable[BookLevel],
        asks: Iterable[BookLevel],
        *,
        seq: int | None = None,
        exchange_seq: int | None = None,
        time: datetime | None = None,
    ) -> None:
        """Replace the whole book (a snapshot)."""
        self._bids = {level.price: level.size for level in bids if level.size > 0}
        self._asks = {level.price: level.size for level in asks if level.size > 0}
        self._sorted = None
        self.seq, self.exchange_seq, self.time = seq, exchange_seq, time
        self.synced = True

    def update(
        self,
        bids: Iterable[BookLevel],
        asks: Iterable[BookLevel],
        *,
        seq: int | None = None,
        exchange_seq: int | None = None,
        time: datetime | None = None,
    ) -> None:
        """Apply changed levels (an update): a level's new size, or 0 to remove it."""
        for side, levels in ((self._bids, bids), (self._asks, asks)):
            for level in levels:
                if level.size > 0:
                    side[level.price] = level.size
                else:
                    side.pop(level.price, None)
        self._sorted = None
        if seq is not None:
            self.seq = seq
        if exchange_seq is not None:
            self.exchange_seq = exchange_seq
        if time is not None:
            self.time = time

    def caught_up(self, exchange_seq: int) -> None:
        """Everything up to ``exchange_seq`` has been applied (a heartbeat or pong said so)."""
        if self.exchange_seq is None or exchange_seq > self.exchange_seq:
            self.exchange_seq = exchange_seq

    # -- reading ---------------------------------------------------------------------------

    def _levels(self) -> tuple[list[BookLevel], list[BookLevel]]:
        if self._sorted is None:
            bids = [BookLevel(price=p, size=n) for p, n in sorted(self._bids.items(), reverse=True)]
            asks = [BookLevel(price=p, size=n) for p, n in sorted(self._asks.items())]
            self._sorted = (bids, asks)
        return self._sorted

    @property
    def bids(self) -> list[BookLevel]:
        """Bid levels, best (highest price) first."""
        return list(self._levels()[0])

    @property
    def asks(self) -> list[BookLevel]:
        """Ask levels, best (lowest price) first."""
        return list(self._levels()[1])

    @property
    def best_bid(self) -> Decimal | None:
        return max(self._bids) if self._bids else None

    @property
    def best_ask(self) -> Decimal | None:
        return min(self._asks) if self._asks else None

    @property
    def spread(self) -> Decimal | None:
        bid, ask = self.best_bid, self.best_ask
        return None if bid is None or ask is None else ask - bid

    @property
    def mid(self) -> Decimal | None:
        bid, ask = self.best_bid, self.best_ask
        return None if bid is None or ask is None else (bid + ask) / 2

    def size_at(self, side: str, price: Decimal | str | int) -> int:
        """The size resting at ``price`` on ``"bid"``/``"buy"`` or ``"ask"``/``"sell"`` (0 if
        none)."""
        levels = self._bids if side in ("bid", "bids", "buy") else self._asks
        return levels.get(Decimal(price), 0)

    def copy(self) -> LocalOrderBook:
        """An independent copy (the stream keeps changing the original)."""
        twin = LocalOrderBook(self.market_id, self.depth)
        twin._bids, twin._asks = dict(self._bids), dict(self._asks)
        twin.seq, twin.exchange_seq, twin.time = self.seq, self.exchange_seq, self.time
        twin.synced = self.synced
        return twin

    def to_orderbook(self) -> OrderBook:
        """The book as the REST model (``seq`` is ``exchange_seq``, as REST numbers it)."""
        bids, asks = self._levels()
        return OrderBook(
            market_id=self.market_id,
            timestamp=self.time or datetime.now(timezone.utc),
            seq=self.exchange_seq,
            bids=list(bids),
            asks=list(asks),
        )

    def __len__(self) -> int:
        return len(self._bids) + len(self._asks)

    def __repr__(self) -> str:
        return (
            f"LocalOrderBook({self.market_id!r}, depth={self.depth}, bid={self.best_bid}, "
            f"ask={self.best_ask}, seq={self.seq}, exchange_seq={self.exchange_seq})"
        )
