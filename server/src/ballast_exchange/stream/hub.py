"""Fan-out: committed commands in, channel messages out to every subscribed connection.

The exchange calls ``Hub.committed`` on the event loop after each group commit, in commit order.
The hub runs those commands on its stored engine (``CommittedView``), works out what changed on
each subscribed stream, and hands every subscriber the same serialised text. A stream is one
channel for one market (and depth) or one account; its ``seq`` rises by one per update, so every
subscriber of a stream sees the same numbers. Pushing to a connection never waits: a connection
that cannot keep up is cut (``Connection.push``), so a slow client never slows matching.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from ..api.views import fill_view, iso, order_view, position_view, trade_view
from ..config import Settings
from ..domain import events as ev
from ..service.exchange import Exchange
from ..service.metrics import Metrics
from ..store.projection import JournalItem, accepted_row, fold_order, ledger_owner, trade_row
from . import feeds
from .committed import CommittedView
from .wire import text_frame

if TYPE_CHECKING:
    from .connection import Connection

log = logging.getLogger(__name__)

StreamKey = tuple[str, str, int]  # (channel, market or account id, depth)


def dumps(message: dict[str, Any]) -> str:
    return json.dumps(message, separators=(",", ":"))


class Stream:
    """One channel of one market or account, and the connections subscribed to it."""

    __slots__ = ("channel", "last", "owner", "public", "seq", "subscribers")

    def __init__(self, channel: str, owner: str, public: bool) -> None:
        self.channel = channel
        self.owner = owner  # market id, account id, or "" for the markets channel
        self.public = public
        self.seq = 0
        self.subscribers: set[Connection] = set()
        self.last: Any = None  # what the last message showed, where updates are diffs

    def _message(self, kind: str, exchange_seq: int, now_ms: int, data: Any) -> str:
        message: dict[str, Any] = {"type": kind, "channel": self.channel}
        if self.public and self.owner:
            message["market_id"] = self.owner
        message.update(seq=self.seq, exchange_seq=exchange_seq, time=iso(now_ms), data=data)
        return dumps(message)

    def snapshot(self, exchange_seq: int, now_ms: int, data: Any) -> str:
        return self._message("snapshot", exchange_seq, now_ms, data)

    def publish(self, exchange_seq: int, now_ms: int, data: Any) -> None:
        """Hand the update to every subscriber; the hub writes what each holds at round end."""
        self.seq += 1
        frame = text_frame(self._message("update", exchange_seq, now_ms, data))
        for connection in self.subscribers:
            connection.hold(frame)


class Hub:
    def __init__(
        self, exchange: Exchange, settings: Settings, metrics: Metrics | None = None
    ) -> None:
        self.exchange = exchange
        self.settings = settings
        self.metrics = metrics if metrics is not None else exchange.metrics
        self.view = CommittedView(exchange.engine)
        self.streams: dict[StreamKey, Stream] = {}
        self.by_market: dict[str, list[tuple[Stream, int]]] = {}
        self.by_account: dict[str, dict[str, Stream]] = {}
        self.connections: set[Connection] = set()
        self.holding: list[Connection] = []  # connections with frames held this round
        self.per_key: dict[str, int] = {}
        self.per_ip: dict[str, int] = {}
        self._heartbeat: asyncio.Task[None] | None = None
        self.metrics.gauge(
            "ballast_stream_connections",
            "Open WebSocket connections to /stream, by whether they have authenticated",
            ("auth",),
            self._connection_counts,
        )

    def _connection_counts(self) -> list[tuple[tuple[str], float]]:
        return [(("anonymous",), sum(self.per_ip.values())), (("key",), sum(self.per_key.values()))]

    @property
    def exchange_seq(self) -> int:
        return self.view.engine.seq

    def start(self) -> None:
        with self.exchange.sql.connect() as conn:
            self.view.load(conn, self.exchange.clock())
        self._heartbeat = asyncio.get_running_loop().create_task(self._beat())

    async def stop(self) -> None:
        if self._heartbeat is not None:
            self._heartbeat.cancel()
        closing = [c.close(1001, "server shutting down") for c in list(self.connections)]
        await asyncio.gather(*closing, return_exceptions=True)

    # ------------------------------------------------------------ subscriptions

    def subscribe(self, connection: Connection, channel: str, owner: str, depth: int) -> Stream:
        """Add a subscriber; its snapshot is queued to it before any later update."""
        key = (channel, owner, depth)
        stream = self.streams.get(key)
        engine = self.view.engine
        now = self.exchange.clock()
        if stream is None:
            public = channel in feeds.PUBLIC
            stream = self.streams[key] = Stream(channel, owner, public)
            if channel == "orderbook":
                stream.last = feeds.book_view(engine.markets[owner], depth)
            elif channel == "ticker":
                stream.last = feeds.ticker_view(self.view, engine.markets[owner], now)
            elif channel == "balance":
                stream.last = feeds.private_snapshot(engine, channel, owner)
            if public and owner:
                self.by_market.setdefault(owner, []).append((stream, depth))
            elif not public:
                self.by_account.setdefault(owner, {})[channel] = stream
        stream.subscribers.add(connection)
        connection.push(stream.snapshot(self.exchange_seq, now, self._snapshot(stream, depth)))
        return stream

    def _snapshot(self, stream: Stream, depth: int) -> Any:
        channel, engine = stream.channel, self.view.engine
        if channel == "orderbook":
            return feeds.book_snapshot(stream.last, depth)
        if channel == "ticker":
            return stream.last
        if channel == "trades":
            return feeds.trades_snapshot(self.view, engine.markets[stream.owner])
        if channel == "markets":
            return {"markets": [feeds.market_state(m) for m in engine.markets.values()]}
        if channel == "balance":
            return stream.last
        return feeds.private_snapshot(engine, channel, stream.owner)

    def unsubscribe(self, connection: Connection, key: StreamKey) -> None:
        stream = self.streams.get(key)
        if stream is None:
            return
        stream.subscribers.discard(connection)
        if stream.subscribers:
            return
        del self.streams[key]
        channel, owner, _ = key
        if stream.public and owner:
            remaining = [(s, d) for s, d in self.by_market[owner] if s is not stream]
            if remaining:
                self.by_market[owner] = remaining
            else:
                del self.by_market[owner]
        elif not stream.public:
            account = self.by_account[owner]
            del account[channel]
            if not account:
                del self.by_account[owner]

    def market_exists(self, market_id: str) -> bool:
        return market_id in self.view.engine.markets

    # ------------------------------------------------------------ committed commands

    def committed(self, items: Sequence[JournalItem], stored_at: int) -> None:
        """Called on the loop once ``items`` are stored (at ``stored_at``, Unix ms): advance
        and publish. Updates carry ``stored_at`` as their ``time``."""
        try:
            self._committed(items, stored_at)
            # One write per connection per commit: a subscriber of several channels gets all
            # its frames in one go (half the system calls for a book-and-trades subscriber).
            for connection in self.holding:
                connection.flush()
        except Exception:
            # The stored engine can no longer be trusted; subscribers must not be misled.
            log.exception("stream fan-out failed; closing every stream connection")
            for connection in list(self.connections):
                connection.close_soon(1011, "internal error")
        finally:
            for connection in self.holding:
                connection.held.clear()  # emptied by flush, unless the round failed
            self.holding.clear()

    def _committed(self, items: Sequence[JournalItem], now: int) -> None:
        view = self.view
        touched: dict[str, None] = {}
        trades: dict[str, list[ev.Trade]] = {}
        lifecycle: list[tuple[str, str]] = []
        watched = self.by_account
        for item in items:
            rows = self._rows_before(item.events) if watched else None
            view.apply(item)
            for event in item.events:
                kind = type(event)
                if kind is ev.BookLevelChanged:
                    touched[event.market_id] = None  # type: ignore[attr-defined]
                elif kind is ev.Trade:
                    assert isinstance(event, ev.Trade)
                    touched[event.market_id] = None
                    trades.setdefault(event.market_id, []).append(event)
                elif kind in feeds.LIFECYCLE:
                    name = feeds.lifecycle_event(event)
                    if name is not None:
                        lifecycle.append((event.market_id, name))  # type: ignore[attr-defined]
            if rows is not None:
                self._publish_private(item.events, rows, now)
        if touched or lifecycle:
            self._publish_public(touched, trades, lifecycle, now)

    def _publish_public(
        self,
        touched: dict[str, None],
        trades: dict[str, list[ev.Trade]],
        lifecycle: list[tuple[str, str]],
        now: int,
    ) -> None:
        engine = self.view.engine
        seq = engine.seq
        for market_id in touched:
            streams = self.by_market.get(market_id)
            if not streams:
                continue
            market = engine.markets[market_id]
            for stream, depth in streams:
                channel = stream.channel
                if channel == "orderbook":
                    after = feeds.book_view(market, depth)
                    diff = feeds.book_diff(stream.last, after)
                    stream.last = after
                    if diff is not None:
                        stream.publish(seq, now, diff)
                elif channel == "trades":
                    new = trades.get(market_id)
                    if new:
                        views = [trade_view(trade_row(e), market) for e in new]
                        stream.publish(seq, now, {"trades": views})
                elif channel == "ticker":
                    ticker = feeds.ticker_view(self.view, market, now)
                    if ticker != stream.last:
                        stream.last = ticker
                        stream.publish(seq, now, ticker)
        markets = self.streams.get(("markets", "", 0))
        if markets is not None and lifecycle:
            states = [
                {**feeds.market_state(engine.markets[market_id]), "event": name}
                for market_id, name in lifecycle
            ]
            markets.publish(seq, now, {"markets": states})

    def _rows_before(self, events: list[ev.Event]) -> dict[int, dict[str, Any]]:
        """Rows of the watched accounts' live orders these events touch, as they were before."""
        watched = self.by_account
        live = self.view.engine.orders
        rows: dict[int, dict[str, Any]] = {}

        def note(order_id: int, account_id: str) -> None:
            if account_id in watched and order_id not in rows:
                order = live.get(order_id)
                if order is not None:
                    rows[order_id] = feeds.order_row(order)

        for e in events:
            if isinstance(e, ev.Trade):
                note(e.maker_order_id, e.maker_account_id)
                note(e.taker_order_id, e.taker_account_id)
            elif isinstance(e, ev.OrderAmended | ev.OrderClosed):
                note(e.order_id, e.account_id)
        return rows

    def _publish_private(
        self, events: list[ev.Event], rows: dict[int, dict[str, Any]], now: int
    ) -> None:
        """One command's changes on the watched accounts' private streams (already applied)."""
        watched = self.by_account
        engine = self.view.engine
        orders: dict[str, list[dict[str, Any]]] = {}
        fills: dict[str, list[dict[str, Any]]] = {}
        positions: dict[str, dict[str, None]] = {}
        balances: dict[str, None] = {}

        def order_changed(order_id: int, account_id: str, event: ev.Event, name: str) -> None:
            row = rows.get(order_id)
            if row is None:
                return
            fold_order(row, event)
            if name == "filled" and row["remaining"] == 0:
                return  # its close follows in the same command and says "filled"
            market = engine.markets[row["market_id"]]
            orders.setdefault(account_id, []).append({**order_view(row, market), "event": name})

        for e in events:
            if isinstance(e, ev.OrderAccepted):
                if e.account_id in watched:
                    rows[e.order_id] = row = accepted_row(e)
                    view = order_view(row, engine.markets[e.market_id])
                    orders.setdefault(e.account_id, []).append({**view, "event": "accepted"})
            elif isinstance(e, ev.Trade):
                market = engine.markets[e.market_id]
                for order_id, account_id in (
                    (e.maker_order_id, e.maker_account_id),
                    (e.taker_order_id, e.taker_account_id),
                ):
                    if account_id in watched:
                        order_changed(order_id, account_id, e, "filled")
                        fill = fill_view(trade_row(e), market, account_id)
                        fills.setdefault(account_id, []).append(fill)
            elif isinstance(e, ev.OrderAmended):
                if e.account_id in watched:
                    order_changed(e.order_id, e.account_id, e, "amended")
            elif isinstance(e, ev.OrderClosed):
                if e.account_id in watched:
                    order_changed(e.order_id, e.account_id, e, e.status)
                    rows.pop(e.order_id, None)
            elif isinstance(e, ev.PositionChanged):
                if e.account_id in watched:
                    positions.setdefault(e.account_id, {})[e.market_id] = None
            elif isinstance(e, ev.LedgerEntry):
                owner = ledger_owner(e.debit, e.credit)[0]
                if owner in watched:
                    balances[owner] = None
        seq = engine.seq
        for account_id, changed in orders.items():
            stream = watched[account_id].get("orders")
            if stream is not None:
                stream.publish(seq, now, {"orders": changed})
        for account_id, new_fills in fills.items():
            stream = watched[account_id].get("fills")
            if stream is not None:
                stream.publish(seq, now, {"fills": new_fills})
        for account_id, markets in positions.items():
            stream = watched[account_id].get("positions")
            if stream is not None:
                views = [position_view(engine, account_id, m) for m in markets]
                stream.publish(seq, now, {"positions": views})
        for account_id in balances:
            stream = watched[account_id].get("balance")
            if stream is not None:
                balance = feeds.private_snapshot(engine, "balance", account_id)
                if balance != stream.last:
                    stream.last = balance
                    stream.publish(seq, now, balance)

    # ------------------------------------------------------------ connections

    def admit(self, connection: Connection) -> bool:
        """Count a new unauthenticated connection; False when its IP has too many."""
        count = self.per_ip.get(connection.ip, 0)
        if count >= self.settings.stream_connections_per_ip:
            self.metrics.stream_refused["ip"] += 1
            return False
        self.per_ip[connection.ip] = count + 1
        self.connections.add(connection)
        self.metrics.stream_opened += 1
        return True

    def authenticated(self, connection: Connection, api_key: str) -> bool:
        """Move a connection from its IP's count to its key's; False when the key has five."""
        count = self.per_key.get(api_key, 0)
        if count >= self.settings.stream_connections_per_key:
            self.metrics.stream_refused["key"] += 1
            return False
        self.per_key[api_key] = count + 1
        self._release_ip(connection.ip)
        return True

    def leave(self, connection: Connection) -> None:
        if connection not in self.connections:
            return
        self.connections.discard(connection)
        for key in list(connection.streams):
            self.unsubscribe(connection, key)
        connection.streams.clear()
        api_key = connection.api_key
        if api_key is None:
            self._release_ip(connection.ip)
        else:
            left = self.per_key[api_key] - 1
            if left:
                self.per_key[api_key] = left
            else:
                del self.per_key[api_key]

    def _release_ip(self, ip: str) -> None:
        left = self.per_ip[ip] - 1
        if left:
            self.per_ip[ip] = left
        else:
            del self.per_ip[ip]

    async def _beat(self) -> None:
        interval = self.settings.stream_heartbeat_s
        while True:
            await asyncio.sleep(interval)
            try:
                now = iso(self.exchange.clock())
                seq = self.exchange_seq
                for connection in list(self.connections):
                    connection.heartbeat(now, seq)
            except Exception:  # a failed beat must not stop the heartbeats
                log.exception("stream heartbeat failed")
