"""Fan-out: committed commands in, channel messages out to every subscriber.

The exchange calls ``Hub.committed`` on the event loop after each group commit, in commit order.
The hub folds the stored events into its read models (``Models``), asks each subscribed stream's
channel (``channels.CHANNELS``) what changed, and hands every subscriber the same serialised
frame. A stream is one channel for one market (and depth), for the exchange, or for one account;
its ``seq`` rises by one per update, so every subscriber of a stream sees the same numbers.

The hub knows its subscribers only as ``Subscriber``: writing to one never waits (one that
cannot keep up cuts itself), so a slow client never slows matching.

Authenticated connections take a slot of their key from ``ConnectionSlots``: in Redis when the
venue has one, so the per-key limit holds across every process serving the stream.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Sequence
from typing import Any, Protocol

from ..access.connection_slots import ConnectionSlots, MemoryConnectionSlots
from ..config import Settings
from ..service.exchange import Exchange
from ..service.metrics import Metrics
from ..store.projection import JournalItem
from ..wire.refs import iso
from .channels import CHANNELS, Channel, Feed, Scope
from .models import Batch, Models
from .wire import text_frame

log = logging.getLogger(__name__)

StreamKey = tuple[str, str, int]  # (channel, market or account id or "", depth)


def dumps(message: dict[str, Any]) -> str:
    return json.dumps(message, separators=(",", ":"))


class Subscriber(Protocol):
    """What the hub needs of a connection."""

    ip: str

    @property
    def api_key(self) -> str | None: ...

    def push(self, text: str) -> None:
        """Write one message now; never waits."""

    def send(self, frame: bytes) -> None:
        """Write ready frame bytes now; never waits."""

    def close_soon(self, code: int, reason: str) -> None: ...

    async def close(self, code: int, reason: str) -> None: ...

    def heartbeat(self, now: str | None, exchange_seq: int) -> None: ...


class Stream(Feed):
    """One channel of one market, the exchange or an account, and its subscribers."""

    __slots__ = ("channel", "seq", "subscribers")

    def __init__(self, channel: Channel, owner: str, depth: int) -> None:
        super().__init__(owner, depth)
        self.channel = channel
        self.seq = 0
        self.subscribers: set[Subscriber] = set()

    @property
    def public(self) -> bool:
        return self.channel.public

    def message(self, kind: str, exchange_seq: int, now_ms: int, data: Any) -> str:
        message: dict[str, Any] = {"type": kind, "channel": self.channel.name}
        if self.channel.scope is Scope.MARKET:
            message["market_id"] = self.owner
        message.update(seq=self.seq, exchange_seq=exchange_seq, time=iso(now_ms), data=data)
        return dumps(message)


class Hub:
    def __init__(
        self,
        exchange: Exchange,
        settings: Settings,
        metrics: Metrics | None = None,
        slots: ConnectionSlots | None = None,
    ) -> None:
        self.exchange = exchange
        self.settings = settings
        self.metrics = metrics if metrics is not None else exchange.metrics
        self.channels = CHANNELS
        self.models = Models(exchange.engine)
        self.streams: dict[StreamKey, Stream] = {}
        self.by_market: dict[str, list[Stream]] = {}
        self.by_account: dict[str, dict[str, Stream]] = {}  # account → channel name → stream
        self.private = [c for c in CHANNELS.values() if not c.public]
        self.global_streams: list[Stream] = []
        self.connections: set[Subscriber] = set()
        self.memberships: dict[Subscriber, set[StreamKey]] = {}
        self.held: dict[Subscriber, list[bytes]] = {}  # frames for each subscriber this round
        # The hub owns ``slots`` (it closes them); per_key counts this process's share only.
        self.slots: ConnectionSlots = slots if slots is not None else MemoryConnectionSlots()
        self.keyed: dict[Subscriber, str] = {}  # connection → the key whose slot it holds
        self.giving: set[asyncio.Task[None]] = set()  # slots on their way back
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
        return self.models.seq

    def start(self) -> None:
        with self.exchange.sql.connect() as conn:
            self.models.load(conn, self.exchange.clock())
        self._heartbeat = asyncio.get_running_loop().create_task(self._beat())
        self.slots.start()

    async def stop(self) -> None:
        if self._heartbeat is not None:
            self._heartbeat.cancel()
        closing = [c.close(1001, "server shutting down") for c in list(self.connections)]
        await asyncio.gather(*closing, return_exceptions=True)
        await asyncio.gather(*self.giving, return_exceptions=True)
        await self.slots.close()

    # ------------------------------------------------------------ subscriptions

    def subscribe(self, subscriber: Subscriber, key: StreamKey) -> Stream:
        """Add a subscriber; its snapshot is written to it before any later update."""
        stream = self.streams.get(key)
        now = self.exchange.clock()
        if stream is None:
            name, owner, depth = key
            channel = self.channels[name]
            stream = self.streams[key] = Stream(channel, owner, depth)
            channel.open(self.models, stream, now)
            self._index(stream)
        stream.subscribers.add(subscriber)
        self.memberships.setdefault(subscriber, set()).add(key)
        data = stream.channel.snapshot(self.models, stream, now)
        subscriber.push(stream.message("snapshot", self.exchange_seq, now, data))
        return stream

    def _index(self, stream: Stream) -> None:
        scope = stream.channel.scope
        if scope is Scope.GLOBAL:
            self.global_streams.append(stream)
        elif scope is Scope.MARKET:
            self.by_market.setdefault(stream.owner, []).append(stream)
        else:
            self.by_account.setdefault(stream.owner, {})[stream.channel.name] = stream

    def _unindex(self, stream: Stream) -> None:
        scope, owner = stream.channel.scope, stream.owner
        if scope is Scope.GLOBAL:
            self.global_streams.remove(stream)
        elif scope is Scope.MARKET:
            streams = self.by_market[owner]
            streams.remove(stream)
            if not streams:
                del self.by_market[owner]
        else:
            account = self.by_account[owner]
            del account[stream.channel.name]
            if not account:
                del self.by_account[owner]

    def unsubscribe(self, subscriber: Subscriber, key: StreamKey) -> None:
        keys = self.memberships.get(subscriber)
        if keys is not None:
            keys.discard(key)
        stream = self.streams.get(key)
        if stream is None:
            return
        stream.subscribers.discard(subscriber)
        if stream.subscribers:
            return
        del self.streams[key]
        self._unindex(stream)

    def market_exists(self, market_id: str) -> bool:
        return market_id in self.models.markets

    # ------------------------------------------------------------ committed commands

    def committed(self, items: Sequence[JournalItem], stored_at: int) -> None:
        """Called on the loop once ``items`` are stored (at ``stored_at``, Unix ms): fold and
        publish. Updates carry ``stored_at`` as their ``time``."""
        try:
            self._committed(items, stored_at)
            # One write per subscriber per commit: a subscriber of several channels gets all
            # its frames in one go (half the system calls for a book-and-trades subscriber).
            for subscriber, frames in self.held.items():
                subscriber.send(frames[0] if len(frames) == 1 else b"".join(frames))
        except Exception:
            # The read models can no longer be trusted; subscribers must not be misled.
            log.exception("stream fan-out failed; closing every stream connection")
            for subscriber in list(self.connections):
                subscriber.close_soon(1011, "internal error")
        finally:
            self.held.clear()

    def _publish(self, stream: Stream, exchange_seq: int, now: int, data: Any) -> None:
        """Hold the update for every subscriber; ``committed`` writes them at round end."""
        stream.seq += 1
        frame = text_frame(stream.message("update", exchange_seq, now, data))
        held = self.held
        for subscriber in stream.subscribers:
            frames = held.get(subscriber)
            if frames is None:
                held[subscriber] = [frame]
            else:
                frames.append(frame)

    def _committed(self, items: Sequence[JournalItem], now: int) -> None:
        models = self.models
        by_account = self.by_account
        batch = Batch()
        for item in items:
            changes = models.apply(item, by_account, batch)
            if not changes:
                continue
            seq = models.seq
            for channel in self.private:  # in the registry's order, channel by channel
                name = channel.name
                for account_id, changed in changes.items():
                    stream = by_account[account_id].get(name)
                    if stream is not None:
                        data = channel.on_command(models, stream, changed, now)
                        if data is not None:
                            self._publish(stream, seq, now, data)
        seq = models.seq
        for market_id in batch.touched:
            for stream in self.by_market.get(market_id, ()):
                data = stream.channel.on_batch(models, stream, batch, now)
                if data is not None:
                    self._publish(stream, seq, now, data)
        if batch.lifecycle:
            for stream in self.global_streams:
                data = stream.channel.on_batch(models, stream, batch, now)
                if data is not None:
                    self._publish(stream, seq, now, data)

    # ------------------------------------------------------------ connections

    def admit(self, subscriber: Subscriber) -> bool:
        """Count a new unauthenticated connection; False when its IP has too many."""
        count = self.per_ip.get(subscriber.ip, 0)
        if count >= self.settings.stream_connections_per_ip:
            self.metrics.stream_refused["ip"] += 1
            return False
        self.per_ip[subscriber.ip] = count + 1
        self.connections.add(subscriber)
        self.metrics.stream_opened += 1
        return True

    async def authenticated(self, subscriber: Subscriber, api_key: str) -> bool:
        """Move a connection from its IP's count to a slot of its key; False when the key
        already has its limit (five) in all processes together, or the connection left while
        the slot was being taken."""
        if not await self.slots.take(api_key, self.settings.stream_connections_per_key):
            self.metrics.stream_refused["key"] += 1
            return False
        if subscriber not in self.connections:  # closed meanwhile: leave() released its IP
            self._give(api_key)
            return False
        self.keyed[subscriber] = api_key
        self.per_key[api_key] = self.per_key.get(api_key, 0) + 1
        self._release_ip(subscriber.ip)
        return True

    def leave(self, subscriber: Subscriber) -> None:
        """Forget a connection and its subscriptions, and give back its IP count or key slot."""
        if subscriber not in self.connections:
            return
        self.connections.discard(subscriber)
        for key in self.memberships.pop(subscriber, set()):
            self.unsubscribe(subscriber, key)
        self.held.pop(subscriber, None)
        api_key = self.keyed.pop(subscriber, None)
        if api_key is None:
            self._release_ip(subscriber.ip)
        else:
            left = self.per_key[api_key] - 1
            if left:
                self.per_key[api_key] = left
            else:
                del self.per_key[api_key]
            self._give(api_key)

    def _give(self, api_key: str) -> None:
        """Give a key's slot back without waiting (``leave`` is called where nothing waits)."""
        task = asyncio.get_running_loop().create_task(self.slots.give(api_key))
        self.giving.add(task)
        task.add_done_callback(self.giving.discard)

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
                for subscriber in list(self.connections):
                    subscriber.heartbeat(now, seq)
            except Exception:  # a failed beat must not stop the heartbeats
                log.exception("stream heartbeat failed")
