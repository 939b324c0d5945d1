"""The WebSocket stream (docs/websocket.md): market data, private updates and order entry over one
connection, kept alive by itself.

```python
async with client.stream() as stream:          # AsyncBallastClient
    await stream.subscribe("orderbook", "suez-apr2025", depth=20)
    await stream.subscribe("fills")
    async for message in stream:
        ...
```

What the stream does on its own:

- **Authenticates** on connect when the client has a key (signed like REST, with ``GET`` and
  ``/stream``), and again after every reconnect.
- **Reconnects** with exponential backoff and jitter when the connection drops, the server
  shuts down or restarts (``1001``, ``1012``), cuts a slow consumer (``4008``) or goes silent
  for more than three heartbeat intervals; then resubscribes everything. Each subscription's
  fresh snapshot is followed by a :class:`~ballast.Resynced` event. ``4001`` (key revoked)
  and ``4029`` (too many connections) end the stream with an error instead.
- **Detects gaps**: each subscription's ``seq`` must rise by exactly one from its snapshot (and
  heartbeats name the last ``seq`` sent). On a jump it unsubscribes and subscribes again for a
  fresh snapshot and emits ``Resynced``.
- **Keeps a LocalOrderBook** per ``orderbook`` subscription, applied as messages are read.
- **Tells you**: ``Connected``, ``Disconnected`` and ``Resynced`` come through the same
  iteration as the data, so silence never hides a dead feed.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import random
import threading
from collections import deque
from collections.abc import Awaitable, Callable, Coroutine
from concurrent.futures import Future as ThreadFuture
from dataclasses import dataclass
from decimal import Decimal
from types import TracebackType
from typing import Any, Literal, Protocol, TypeVar, cast

from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

from ._core import (
    USER_AGENT,
    ClientCore,
    Number,
    Op,
    OrderRequest,
    OrderType,
    SelfTradePrevention,
    Side,
    TimeInForce,
    TimeLike,
    check_order,
    encode_json,
    price_text,
    size_int,
)
from .errors import (
    BallastError,
    ForbiddenError,
    InvalidRequestError,
    InvalidResponseError,
    NetworkError,
    RateLimitError,
    TimestampExpiredError,
    TooManyConnectionsError,
    UnauthorizedError,
    error_from_body,
)
from .messages import (
    ChannelMessage,
    Connected,
    Disconnected,
    Heartbeat,
    OrderBookMessage,
    Pong,
    Resynced,
    ResyncReason,
    StreamMessage,
    SubscriptionFailed,
    parse_channel_message,
    parse_heartbeat,
    parse_pong,
)
from .models import CanceledOrders, DeadManSwitch, DeletedOrderGroup, Order, OrderGroup
from .orderbook import LocalOrderBook
from .signing import sign

__all__ = [
    "CLOSE_REVOKED",
    "CLOSE_SLOW_CONSUMER",
    "CLOSE_TOO_MANY_CONNECTIONS",
    "PRIVATE_CHANNELS",
    "PUBLIC_CHANNELS",
    "Stream",
    "Subscription",
    "SyncStream",
]

log = logging.getLogger("ballast.stream")

T = TypeVar("T")

PUBLIC_CHANNELS = ("orderbook", "trades", "ticker", "markets")
PRIVATE_CHANNELS = ("orders", "fills", "positions", "balance", "order_groups")
CLOSE_REVOKED = 4001
CLOSE_SLOW_CONSUMER = 4008
CLOSE_TOO_MANY_CONNECTIONS = 4029
MAX_MESSAGE_BYTES = 64 * 1024 * 1024  # a snapshot of many open orders may be large

# Replies matched to requests by ``id`` (data messages and heartbeats carry none).
_REPLIES = frozenset(
    [
        "authenticated",
        "subscribed",
        "unsubscribed",
        "pong",
        "result",
        "error",
        "cancel_on_disconnect",
    ]
)

SubState = Literal["subscribing", "live", "resyncing", "unsubscribing"]


class OpRunner(Protocol):
    """Runs one of the client core's REST operations (market rules, clock sync)."""

    def __call__(self, op: Op[T], /) -> Awaitable[T]: ...


@dataclass(frozen=True, slots=True)
class Subscription:
    """One of the stream's subscriptions: ``seq`` is the last one read, ``synced`` false while
    it waits for a (fresh) snapshot."""

    channel: str
    market_id: str | None
    depth: int | None
    seq: int | None
    synced: bool


class _Sub:
    __slots__ = (
        "book",
        "channel",
        "depth",
        "last_snapshot",
        "market_id",
        "ready",
        "reason",
        "seq",
        "skipping",
        "state",
    )

    def __init__(self, channel: str, market_id: str | None, depth: int | None) -> None:
        self.channel = channel
        self.market_id = market_id
        self.depth = depth
        self.seq: int | None = None
        self.state: SubState = "subscribing"
        self.reason: ResyncReason | None = None
        # Messages were dropped unread: deliver none until the resync's fresh snapshot.
        self.skipping = False
        self.ready: asyncio.Future[ChannelMessage] = asyncio.get_running_loop().create_future()
        self.last_snapshot: ChannelMessage | None = None
        self.book = LocalOrderBook(market_id or "", depth or 20) if channel == "orderbook" else None

    @property
    def key(self) -> tuple[str, str]:
        return (self.channel, self.market_id or "")

    def fields(self) -> dict[str, Any]:
        """The stream's fields, for subscribe and unsubscribe alike (the server tells an
        orderbook's depths apart on unsubscribe too, taking 20 when none is given)."""
        fields: dict[str, Any] = {"channel": self.channel}
        if self.market_id is not None:
            fields["market_id"] = self.market_id
        if self.depth is not None:
            fields["depth"] = self.depth
        return fields

    def unsynced(self) -> None:
        if self.book is not None:
            self.book.synced = False

    def fail(self, error: BaseException) -> None:
        if not self.ready.done():
            self.ready.set_exception(error)
            self.ready.exception()  # retrieved: nobody may be waiting


def _thread_runner(run: Callable[[Op[Any]], Any]) -> OpRunner:
    """An :class:`OpRunner` for the synchronous client: its operations run in a worker thread."""

    class Runner:
        def __call__(self, op: Op[T], /) -> Awaitable[T]:
            result: Awaitable[T] = asyncio.to_thread(run, op)
            return result

    return Runner()


class Stream:
    """One connection to the stream, re-established as needed. Make it with
    ``client.stream(...)`` and use ``async with``; see the module's documentation.

    Options (as ``client.stream`` takes them):

    - ``cancel_on_disconnect``: the server cancels the orders this stream placed when its
      connection drops (and only those). Needs a key.
    - ``heartbeats``: also yield the server's :class:`~ballast.Heartbeat` messages.
    - ``heartbeat_interval``: the server's heartbeat period (5 s); no message for three periods
      means the feed is dead, and the stream reconnects.
    - ``reconnect``, ``max_reconnect_attempts`` (``None``: forever), ``backoff_base``,
      ``backoff_max``: reconnection with exponential backoff and jitter.
    - ``max_queue``: messages buffered for iteration. Past it the oldest channel messages are
      dropped and their subscriptions resynced (``Resynced`` with reason ``overflow``); ``0``
      buffers only connection events (when you read books and send orders but never iterate);
      ``None`` never drops.
    - ``request_timeout``: seconds to wait for a reply (the client's ``timeout`` by default).
    - ``validate_orders``: check prices and sizes against the market's rules before sending
      (the client's setting by default).
    """

    def __init__(
        self,
        client: ClientCore,
        run: OpRunner,
        *,
        cancel_on_disconnect: bool = False,
        heartbeats: bool = False,
        heartbeat_interval: float = 5.0,
        reconnect: bool = True,
        max_reconnect_attempts: int | None = None,
        backoff_base: float = 0.25,
        backoff_max: float = 30.0,
        max_queue: int | None = 10_000,
        request_timeout: float | None = None,
        validate_orders: bool | None = None,
    ) -> None:
        if cancel_on_disconnect and client.api_key is None:
            raise ValueError("cancel_on_disconnect needs an API key")
        if heartbeat_interval <= 0:
            raise ValueError("heartbeat_interval must be positive")
        if max_queue is not None and max_queue < 0:
            raise ValueError("max_queue must be >= 0 or None")
        self._client = client
        self._run_op = run
        self.url: str = client.stream_url
        self.cancel_on_disconnect = cancel_on_disconnect
        self.heartbeats = heartbeats
        self.heartbeat_interval = heartbeat_interval
        self.reconnect = reconnect
        self.max_reconnect_attempts = max_reconnect_attempts
        self.backoff_base = backoff_base
        self.backoff_max = backoff_max
        self.max_queue = max_queue
        self.request_timeout = client.timeout if request_timeout is None else request_timeout
        self.validate_orders = (
            client.validate_orders if validate_orders is None else validate_orders
        )
        #: The authenticated account (``None`` without a key).
        self.account_id: str | None = None
        #: How many times the connection was re-established.
        self.reconnects = 0
        self._rng = random.Random()
        self._ws: ClientConnection | None = None
        self._generation = 0
        self._subs: dict[tuple[str, str], _Sub] = {}
        self._pending: dict[int, tuple[asyncio.Future[dict[str, Any]], str]] = {}
        self._next_id = 0
        self._inbox: deque[StreamMessage] = deque()
        self._queued = 0  # channel messages and heartbeats in the inbox
        self._stale: set[tuple[str, str]] = set()  # subscriptions to resync on the next read
        self._wakeup = asyncio.Event()
        self._supervisor: asyncio.Task[None] | None = None
        self._reader: asyncio.Task[tuple[int | None, str]] | None = None
        self._tasks: set[asyncio.Task[Any]] = set()
        self._last_heard = 0.0
        self._silent: str | None = None
        self._closed = False
        self._fatal: BallastError | None = None

    # ------------------------------------------------------------------ lifecycle

    async def __aenter__(self) -> Stream:
        await self.connect()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    @property
    def connected(self) -> bool:
        """True while a connection is up (and authenticated, with a key)."""
        return self._ws is not None

    @property
    def closed(self) -> bool:
        """True once :meth:`close` was called or the stream ended with an error."""
        return self._closed or self._fatal is not None

    async def connect(self) -> None:
        """Connect (and authenticate). Raises :class:`~ballast.NetworkError` if the server
        cannot be reached, or the error ``auth`` gave."""
        if self._supervisor is not None or self._closed:
            raise RuntimeError("a stream connects once; make a new one with client.stream()")
        ws = await self._open()
        self._attach(ws)
        self._deliver(Connected(url=self.url, account_id=self.account_id, reconnect=False))
        self._supervisor = asyncio.get_running_loop().create_task(self._supervise())

    async def close(self) -> None:
        """Close the connection; iteration ends and pending requests fail."""
        if self._closed:
            return
        self._closed = True
        self._wakeup.set()
        ws = self._ws
        self._ws = None
        if ws is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(ws.close(), timeout=2)
        current = asyncio.current_task()
        for task in [self._supervisor, self._reader, *self._tasks]:
            if task is not None and task is not current and not task.done():
                task.cancel()
                with contextlib.suppress(BaseException):
                    await task
        closed = NetworkError("the stream is closed")
        self._fail_pending(closed)
        for sub in self._subs.values():
            sub.fail(closed)

    aclose = close

    def _check_open(self) -> None:
        if self._fatal is not None:
            raise self._fatal
        if self._closed:
            raise NetworkError("the stream is closed")
        if self._supervisor is None:
            raise RuntimeError("connect first: use `async with client.stream() as stream`")

    # ------------------------------------------------------------------ connecting

    async def _open(self) -> ClientConnection:
        """A new connection, authenticated when the client has a key."""
        try:
            ws = await connect(
                self.url,
                open_timeout=self.request_timeout,
                max_size=MAX_MESSAGE_BYTES,
                compression=None,
                user_agent_header=USER_AGENT,
                close_timeout=2,
            )
        except Exception as error:  # refused, timed out, not a WebSocket, bad URL...
            raise _network_error(f"cannot connect to {self.url}", error) from error
        try:
            if self._client.api_key is not None:
                await self._authenticate(ws)
            else:
                # Confirms the connection was admitted (an IP over its limit is refused first).
                await self._handshake(ws, {"op": "ping"})
        except BaseException:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(ws.close(), timeout=2)
            raise
        return ws

    async def _authenticate(self, ws: ClientConnection) -> None:
        nonce = await self._welcome(ws)
        synced = False
        while True:
            message = self._auth_message(nonce)
            reply = await self._handshake(ws, message)
            if reply.get("type") == "authenticated":
                account = reply.get("account_id")
                self.account_id = account if isinstance(account, str) else None
                return
            error = _reply_error(reply)
            if isinstance(error, TimestampExpiredError) and not synced:
                synced = True  # our clock is off: learn the server's once, then sign again
                await self._run_op(self._client._sync_clock())
                continue
            raise error

    async def _welcome(self, ws: ClientConnection) -> str:
        """The server's first message: the nonce this connection's ``auth`` must sign."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.request_timeout
        try:
            while True:
                left = deadline - loop.time()
                if left <= 0:
                    raise NetworkError("no welcome from the server within the timeout")
                message = _decode(await asyncio.wait_for(ws.recv(), left))
                if not isinstance(message, dict):
                    continue
                if message.get("type") == "welcome" and isinstance(message.get("nonce"), str):
                    nonce: str = message["nonce"]
                    return nonce
                if message.get("type") == "error":
                    raise _reply_error(message)  # e.g. too many connections from this address
        except asyncio.TimeoutError:
            raise NetworkError("no welcome from the server within the timeout") from None
        except ValueError:
            raise NetworkError("the server's welcome is not JSON") from None
        except ConnectionClosed as closed:
            code, reason = _close_of(closed)
            fatal = _close_error(code, reason)
            if fatal is not None:
                raise fatal from None
            raise NetworkError(
                f"the connection closed before the welcome ({code}: {reason})",
                details={"close_code": code},
            ) from None

    def _auth_message(self, nonce: str) -> dict[str, Any]:
        key, secret = self._client.api_key, self._client._api_secret
        assert key is not None and secret is not None
        timestamp = str(self._client.signing_timestamp())
        return {
            "op": "auth",
            "api_key": key,
            "timestamp": timestamp,
            # Signed like REST, with the connection's nonce as the body: a captured auth
            # message is worth nothing on another connection.
            "signature": sign(secret, timestamp, "GET", "/stream", nonce),
            "cancel_on_disconnect": self.cancel_on_disconnect,
        }

    async def _handshake(self, ws: ClientConnection, request: dict[str, Any]) -> dict[str, Any]:
        """Send a request before the reader runs, and read up to its reply."""
        request_id = self._new_id()
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.request_timeout
        refusal: dict[str, Any] | None = None
        try:
            await ws.send(encode_json({**request, "id": request_id}).decode())
            while True:
                left = deadline - loop.time()
                if left <= 0:
                    raise NetworkError(f"no reply to {request['op']} within the timeout")
                raw = await asyncio.wait_for(ws.recv(), left)
                try:
                    message = _decode(raw)
                except ValueError:
                    continue
                if not isinstance(message, dict):
                    continue
                if message.get("id") == request_id:
                    if message.get("type") == "error":
                        raise _reply_error(message)
                    return message
                if message.get("type") == "error" and message.get("id") is None:
                    refusal = message  # e.g. too many connections from this address
        except asyncio.TimeoutError:
            raise NetworkError(f"no reply to {request['op']} within the timeout") from None
        except ConnectionClosed as closed:
            if refusal is not None:
                raise _reply_error(refusal) from None
            code, reason = _close_of(closed)
            fatal = _close_error(code, reason)
            if fatal is not None:
                raise fatal from None
            raise NetworkError(
                f"the connection closed during {request['op']} ({code}: {reason})",
                details={"close_code": code},
            ) from None

    def _attach(self, ws: ClientConnection) -> None:
        self._ws = ws
        self._generation += 1
        self._last_heard = asyncio.get_running_loop().time()
        self._silent = None
        self._reader = asyncio.get_running_loop().create_task(self._read(ws))

    async def _supervise(self) -> None:
        """Wait for the connection to drop; reconnect and resubscribe, or end the stream."""
        try:
            while not self._closed:
                assert self._reader is not None
                code, reason = await self._reader
                self._ws = None
                if self._closed:
                    return
                lost = NetworkError(
                    f"the connection was lost ({code}: {reason}) before the reply; "
                    "the request's outcome is unknown",
                    details={"close_code": code},
                )
                self._fail_pending(lost)
                fatal = _close_error(code, reason)
                if fatal is None and not self.reconnect:
                    fatal = NetworkError(
                        f"the stream closed ({code}: {reason})", details={"close_code": code}
                    )
                if fatal is not None:
                    self._finish(code, reason, fatal)
                    return
                log.warning("stream disconnected (%s: %s); reconnecting", code, reason)
                self._deliver(Disconnected(code=code, reason=reason, reconnecting=True))
                for sub in self._subs.values():
                    if sub.state in ("live", "resyncing"):
                        sub.state, sub.reason = "resyncing", "reconnect"
                        sub.unsynced()
                ws = await self._reconnect()
                if ws is None:
                    return
                self.reconnects += 1
                self._attach(ws)
                self._deliver(Connected(url=self.url, account_id=self.account_id, reconnect=True))
                self._resubscribe_all()
        except asyncio.CancelledError:
            raise
        except Exception as error:  # a bug here must not leave a silent stream behind
            log.exception("the stream failed")
            failure = BallastError(f"the stream failed: {error!r}", code="STREAM_FAILED")
            self._finish(None, str(failure), failure)

    async def _reconnect(self) -> ClientConnection | None:
        attempt = 0
        while not self._closed:
            delay = min(self.backoff_max, self.backoff_base * float(2**attempt))
            await asyncio.sleep(delay * self._rng.uniform(0.5, 1.0))
            try:
                return await self._open()
            except (UnauthorizedError, ForbiddenError, TooManyConnectionsError) as error:
                self._finish(None, str(error), error)
                return None
            except BallastError as error:
                attempt += 1
                log.info("stream reconnect attempt %d failed: %s", attempt, error)
                if self.max_reconnect_attempts is not None and (
                    attempt >= self.max_reconnect_attempts
                ):
                    self._finish(None, str(error), error)
                    return None
        return None

    def _finish(self, code: int | None, reason: str, error: BallastError) -> None:
        """End the stream for good: deliver the event, then iteration raises ``error``."""
        log.error("stream ended: %s", error)
        self._ws = None
        self._deliver(Disconnected(code=code, reason=reason, reconnecting=False, error=error))
        self._fatal = error
        self._fail_pending(error)
        for sub in self._subs.values():
            sub.fail(error)
            sub.unsynced()

    def _fail_pending(self, error: BaseException) -> None:
        pending, self._pending = self._pending, {}
        for future, _ in pending.values():
            if not future.done():
                future.set_exception(error)
                future.exception()  # retrieved: its waiter may have given up already

    # ------------------------------------------------------------------ reading

    async def _read(self, ws: ClientConnection) -> tuple[int | None, str]:
        """Dispatch every message until the connection ends; then its close code and reason."""
        watchdog = asyncio.get_running_loop().create_task(self._watch(ws))
        try:
            while True:
                raw = await ws.recv()
                self._last_heard = asyncio.get_running_loop().time()
                try:
                    self._dispatch(raw)
                except Exception:  # one bad message must not stop the feed
                    log.exception("cannot handle a stream message: %.200r", raw)
        except ConnectionClosed as closed:
            if self._silent is not None:
                return None, self._silent
            return _close_of(closed)
        except OSError as error:
            return None, f"{type(error).__name__}: {error}"
        finally:
            watchdog.cancel()

    async def _watch(self, ws: ClientConnection) -> None:
        """Abort a connection that has been silent for more than three heartbeat intervals."""
        loop = asyncio.get_running_loop()
        dead_after = 3 * self.heartbeat_interval
        while True:
            await asyncio.sleep(min(1.0, self.heartbeat_interval / 2))
            if loop.time() - self._last_heard > dead_after:
                self._silent = f"no message for {dead_after:g} s (dead feed)"
                transport = ws.transport
                if transport is not None:
                    transport.abort()
                return

    def _dispatch(self, raw: str | bytes) -> None:
        message = _decode(raw)
        if not isinstance(message, dict):
            return
        kind = message.get("type")
        if kind == "snapshot" or kind == "update":
            self._on_data(kind, message)
        elif kind == "heartbeat":
            self._on_heartbeat(message)
        elif kind in _REPLIES:
            if kind == "pong":
                self._caught_up(message.get("exchange_seq"))
            request_id = message.get("id")
            entry = self._pending.pop(request_id, None) if isinstance(request_id, int) else None
            if entry is not None:
                if not entry[0].done():
                    entry[0].set_result(message)
            elif kind == "error":
                log.warning("stream error: %s", message.get("error"))

    def _on_data(self, kind: str, message: dict[str, Any]) -> None:
        channel = message.get("channel")
        market_id = message.get("market_id")
        sub = self._subs.get((str(channel), str(market_id or "")))
        if sub is None or sub.state == "unsubscribing":
            return  # unsubscribed meanwhile
        if kind == "snapshot":
            try:
                snapshot = parse_channel_message(message)
            except InvalidResponseError as error:
                log.exception("unreadable snapshot on %s %s", sub.channel, sub.market_id)
                self._drop(sub, error)
                self._spawn(self._unsubscribe_quietly(sub))
                return
            if sub.book is not None and isinstance(snapshot, OrderBookMessage):
                sub.book.reset(
                    snapshot.bids,
                    snapshot.asks,
                    seq=snapshot.seq,
                    exchange_seq=snapshot.exchange_seq,
                    time=snapshot.time,
                )
            was, reason = sub.state, sub.reason
            sub.seq, sub.state, sub.reason = snapshot.seq, "live", None
            sub.skipping = False
            sub.last_snapshot = snapshot
            self._deliver(snapshot)
            if was == "resyncing":
                self._deliver(
                    Resynced(
                        channel=sub.channel,
                        market_id=sub.market_id,
                        reason=reason or "gap",
                        seq=snapshot.seq,
                        exchange_seq=snapshot.exchange_seq,
                    )
                )
            if not sub.ready.done():
                sub.ready.set_result(snapshot)
            return
        if sub.state != "live":
            return  # waiting for a fresh snapshot
        seq = message.get("seq")
        if sub.seq is None or seq != sub.seq + 1:
            log.warning(
                "gap on %s %s: seq %s after %s; resyncing", sub.channel, sub.market_id, seq, sub.seq
            )
            self._resync(sub, "gap")
            return
        try:
            update = parse_channel_message(message)
        except InvalidResponseError:
            log.exception("unreadable update on %s %s; resyncing", sub.channel, sub.market_id)
            self._resync(sub, "gap")
            return
        sub.seq = update.seq
        if sub.book is not None and isinstance(update, OrderBookMessage):
            sub.book.update(
                update.bids,
                update.asks,
                seq=update.seq,
                exchange_seq=update.exchange_seq,
                time=update.time,
            )
        if not sub.skipping:
            self._deliver(update)

    def _on_heartbeat(self, message: dict[str, Any]) -> None:
        beat = parse_heartbeat(message)
        for entry in beat.subscriptions:
            sub = self._subs.get((entry.channel, entry.market_id or ""))
            live = sub is not None and sub.state == "live" and sub.seq is not None
            if live and sub is not None and entry.seq > (sub.seq or 0):
                # Messages were lost at the end of the subscription.
                log.warning("heartbeat: seq %s on %s after %s", entry.seq, sub.key, sub.seq)
                self._resync(sub, "gap")
        self._caught_up(beat.exchange_seq)
        if self.heartbeats:
            self._deliver(beat)

    def _caught_up(self, exchange_seq: Any) -> None:
        """Everything up to ``exchange_seq`` has been read (a heartbeat or pong says so)."""
        if not isinstance(exchange_seq, int):
            return
        for sub in self._subs.values():
            if sub.book is not None and sub.state == "live":
                sub.book.caught_up(exchange_seq)

    # ------------------------------------------------------------------ delivering

    def _deliver(self, item: StreamMessage) -> None:
        limit = self.max_queue
        if isinstance(item, (ChannelMessage, Heartbeat)):
            if limit == 0:
                return
            self._queued += 1
        self._inbox.append(item)
        self._wakeup.set()
        if limit is not None and self._queued > limit:
            self._overflow()

    def _overflow(self) -> None:
        """Nobody read fast enough: drop the channel messages waiting, and deliver none of
        their subscriptions' until a fresh snapshot, which the next read asks for (books stay
        current meanwhile). A reader never sees a silent gap. (Connection events are kept,
        the latest hundred of them.)"""
        dropped: set[tuple[str, str]] = set()
        kept: deque[StreamMessage] = deque(maxlen=100)
        for item in self._inbox:
            if isinstance(item, ChannelMessage):
                dropped.add((item.channel, item.market_id or ""))
            elif not isinstance(item, Heartbeat):
                kept.append(item)
        log.warning("%d unread stream messages dropped; resyncing", self._queued)
        self._inbox = deque(kept)
        self._queued = 0
        for key in dropped:
            sub = self._subs.get(key)
            if sub is not None and sub.state == "live":
                sub.skipping = True
                self._stale.add(key)

    def _resync_stale(self) -> None:
        """A reader is back after an overflow: fresh snapshots for what it missed."""
        stale, self._stale = self._stale, set()
        for key in stale:
            sub = self._subs.get(key)
            if sub is not None and sub.skipping:
                self._resync(sub, "overflow")

    def __aiter__(self) -> Stream:
        return self

    async def __anext__(self) -> StreamMessage:
        while True:
            if self._closed:
                raise StopAsyncIteration
            if self._stale:
                self._resync_stale()
            if self._inbox:
                item = self._inbox.popleft()
                if isinstance(item, (ChannelMessage, Heartbeat)):
                    self._queued -= 1
                return item
            if self._fatal is not None:
                raise self._fatal
            if self._supervisor is None:
                raise RuntimeError("connect first: use `async with client.stream() as stream`")
            self._wakeup.clear()
            await self._wakeup.wait()

    def drain(self) -> list[StreamMessage]:
        """Every message and event already buffered, without waiting."""
        items = list(self._inbox)
        self._inbox.clear()
        self._queued = 0
        if self._stale:
            self._resync_stale()
        return items

    async def receive(self, timeout: float | None = None) -> StreamMessage:
        """The next message or event; :class:`TimeoutError` after ``timeout`` seconds, and
        :class:`StopAsyncIteration` once the stream is closed."""
        if timeout is None:
            return await self.__anext__()
        try:
            return await asyncio.wait_for(self.__anext__(), timeout)
        except asyncio.TimeoutError:
            raise TimeoutError(f"no stream message within {timeout} s") from None

    # ------------------------------------------------------------------ requests

    def _new_id(self) -> int:
        self._next_id += 1
        return self._next_id

    async def _request(
        self, message: dict[str, Any], *, generation: int | None = None
    ) -> dict[str, Any]:
        """Send a request and wait for its reply; an ``error`` reply raises its error class."""
        op = str(message.get("op"))
        ws = self._ws
        if ws is None or (generation is not None and generation != self._generation):
            if self._fatal is not None:
                raise self._fatal
            raise NetworkError(f"the stream is not connected (reconnecting); {op} was not sent")
        request_id = self._new_id()
        future: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self._pending[request_id] = (future, op)
        try:
            await ws.send(encode_json({**message, "id": request_id}).decode())
            reply = await asyncio.wait_for(future, self.request_timeout)
        except ConnectionClosed as closed:
            code, reason = _close_of(closed)
            raise NetworkError(
                f"the connection closed while sending {op} ({code}: {reason})",
                details={"close_code": code},
            ) from None
        except asyncio.TimeoutError:
            raise NetworkError(
                f"no reply to {op} within {self.request_timeout:g} s; its outcome is unknown"
            ) from None
        finally:
            self._pending.pop(request_id, None)
        if reply.get("type") == "error":
            raise _reply_error(reply)
        return reply

    async def ping(self) -> Pong:
        """``ping``: the server's time and stored ``exchange_seq``. When it returns, every
        update up to that ``exchange_seq`` has been read (and applied to the books)."""
        self._check_open()
        return parse_pong(await self._request({"op": "ping"}))

    # ------------------------------------------------------------------ subscriptions

    async def subscribe(
        self, channel: str, market_id: str | None = None, *, depth: int | None = None
    ) -> ChannelMessage:
        """Subscribe to a channel and wait for its snapshot, which is returned (and also
        yielded by the iteration).

        Public: ``orderbook`` (``depth`` 1-100, default 20), ``trades``, ``ticker`` (each with a
        ``market_id``) and ``markets``. Private (needs a key): ``orders``, ``fills``,
        ``positions``, ``balance``. Subscribing again to the same stream returns its last
        snapshot. Raises the server's error (``MarketNotFoundError``, ``UnauthorizedError``...).
        """
        self._check_open()
        sub = self._new_sub(channel, market_id, depth)
        existing = self._subs.get(sub.key)
        if existing is not None:
            if existing.depth != sub.depth:
                raise InvalidRequestError(
                    f"already subscribed to {channel} of {market_id} at depth {existing.depth}: "
                    "the stream's messages do not say which depth they belong to, so one stream "
                    "holds one depth a market",
                    details={"field": "depth"},
                )
            if existing.state == "unsubscribing":
                raise InvalidRequestError(
                    f"{channel} {market_id or ''} is being unsubscribed",
                    details={"field": "channel"},
                )
            if existing.last_snapshot is not None:
                return existing.last_snapshot
            return await asyncio.shield(existing.ready)
        self._subs[sub.key] = sub
        if self._ws is not None:
            try:
                await self._request({"op": "subscribe", **sub.fields()})
            except NetworkError:
                pass  # subscribed again once reconnected
            except BallastError as error:
                if self._subs.get(sub.key) is sub:
                    del self._subs[sub.key]
                sub.fail(error)
                raise
        return await asyncio.shield(sub.ready)

    def _new_sub(self, channel: str, market_id: str | None, depth: int | None) -> _Sub:
        channel = str(channel)
        if channel in PRIVATE_CHANNELS or channel == "markets":
            if market_id is not None:
                raise InvalidRequestError(
                    f"the {channel} channel takes no market_id", details={"field": "market_id"}
                )
        elif channel in PUBLIC_CHANNELS and not market_id:
            raise InvalidRequestError(
                f"the {channel} channel needs a market_id", details={"field": "market_id"}
            )
        if channel == "orderbook":
            depth = 20 if depth is None else depth
            if isinstance(depth, bool) or not isinstance(depth, int) or not 1 <= depth <= 100:
                raise InvalidRequestError("depth must be 1 to 100", details={"field": "depth"})
        elif depth is not None:
            raise InvalidRequestError(
                "only the orderbook channel takes a depth", details={"field": "depth"}
            )
        return _Sub(channel, market_id, depth)

    async def unsubscribe(self, channel: str, market_id: str | None = None) -> None:
        """Stop a subscription (its book, if any, is dropped)."""
        self._check_open()
        sub = self._subs.get((str(channel), market_id or ""))
        if sub is None:
            raise InvalidRequestError(
                f"not subscribed to {channel} {market_id or ''}".rstrip(),
                details={"field": "channel"},
            )
        sub.state = "unsubscribing"
        sub.unsynced()
        try:
            if self._ws is not None:
                await self._request({"op": "unsubscribe", **sub.fields()})
        except (NetworkError, InvalidRequestError):
            pass  # no connection, or a resync had it unsubscribed already: gone either way
        finally:
            if self._subs.get(sub.key) is sub:
                del self._subs[sub.key]
            sub.fail(InvalidRequestError("unsubscribed", details={"field": "channel"}))

    @property
    def subscriptions(self) -> list[Subscription]:
        return [
            Subscription(s.channel, s.market_id, s.depth, s.seq, s.state == "live")
            for s in self._subs.values()
        ]

    def book(self, market_id: str) -> LocalOrderBook:
        """The live book of a market this stream subscribed to on ``orderbook``."""
        sub = self._subs.get(("orderbook", market_id))
        if sub is None or sub.book is None:
            raise KeyError(f"not subscribed to the orderbook of {market_id!r}")
        return sub.book

    async def order_book(self, market_id: str, depth: int = 20) -> LocalOrderBook:
        """Subscribe to a market's ``orderbook`` (unless subscribed already) and return its
        :class:`LocalOrderBook` once the snapshot is in."""
        await self.subscribe("orderbook", market_id, depth=depth)
        return self.book(market_id)

    def _resync(self, sub: _Sub, reason: ResyncReason) -> None:
        """Unsubscribe and subscribe again for a fresh snapshot (in the background)."""
        if sub.state != "live":
            return
        sub.state, sub.reason = "resyncing", reason
        sub.unsynced()
        self._spawn(self._resubscribe(sub, self._generation, unsubscribe_first=True))

    def _resubscribe_all(self) -> None:
        generation = self._generation
        for key, sub in list(self._subs.items()):
            if sub.state == "unsubscribing":
                del self._subs[key]
                continue
            self._spawn(self._resubscribe(sub, generation, unsubscribe_first=False))

    async def _resubscribe(self, sub: _Sub, generation: int, *, unsubscribe_first: bool) -> None:
        try:
            if unsubscribe_first:
                try:
                    message = {"op": "unsubscribe", **sub.fields()}
                    await self._request(message, generation=generation)
                except InvalidRequestError:
                    pass  # not subscribed on the server: fine, subscribe below
            if self._subs.get(sub.key) is not sub or sub.state == "unsubscribing":
                return
            await self._request({"op": "subscribe", **sub.fields()}, generation=generation)
        except NetworkError:
            return  # the connection dropped: the reconnect subscribes it again
        except BallastError as error:
            if generation == self._generation:
                self._drop(sub, error)

    def _drop(self, sub: _Sub, error: BallastError) -> None:
        """Give a subscription up: its waiters fail and the reader hears why."""
        if self._subs.get(sub.key) is not sub:
            return
        del self._subs[sub.key]
        sub.unsynced()
        sub.fail(error)
        self._deliver(SubscriptionFailed(channel=sub.channel, market_id=sub.market_id, error=error))

    async def _unsubscribe_quietly(self, sub: _Sub) -> None:
        with contextlib.suppress(BallastError):
            await self._request({"op": "unsubscribe", **sub.fields()})

    def _spawn(self, coroutine: Coroutine[Any, Any, None]) -> None:
        task = asyncio.get_running_loop().create_task(coroutine)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    # ------------------------------------------------------------------ order entry

    async def _trade(self, op: str, params: dict[str, Any]) -> dict[str, Any]:
        """An order-entry request; a 429 is retried as REST retries it (it did nothing)."""
        self._check_open()
        attempt = 0
        while True:
            try:
                reply = await self._request({"op": op, "params": params})
            except RateLimitError as error:
                delay = self._client.retry.delay(attempt, True, error)
                if delay is None:
                    raise
                attempt += 1
                await asyncio.sleep(delay)
                continue
            data = reply.get("data")
            if reply.get("type") != "result" or not isinstance(data, dict):
                raise InvalidResponseError(
                    f"{op}: the reply has no result", details={"reply": reply}
                )
            return data

    async def place_order(
        self,
        market_id: str,
        side: Side,
        order_type: OrderType = "limit",
        price: Number | None = None,
        *,
        size: int,
        time_in_force: TimeInForce | None = None,
        expire_at: TimeLike | None = None,
        post_only: bool = False,
        reduce_only: bool = False,
        client_order_id: str | None = None,
        stp: SelfTradePrevention | None = None,
        order_group_id: str | None = None,
    ) -> Order:
        """``place_order`` over the socket: the same arguments, result and errors as
        ``client.place_order`` (a ``client_order_id`` is generated unless given; a retry with
        the same id returns the first order)."""
        request = OrderRequest(
            market_id,
            side,
            order_type,
            price,
            size,
            time_in_force,
            expire_at,
            post_only,
            reduce_only,
            client_order_id,
            stp,
            order_group_id,
        )
        return await self.place(request)

    async def place(self, request: OrderRequest) -> Order:
        """Place an :class:`~ballast.OrderRequest` (sending the same request again is a retry of
        that order)."""
        self._check_open()
        body = request.body()
        if self.validate_orders:
            rules = await self._run_op(self._client._rules_for(request.market_id))
            error = None if rules is None else check_order(rules, body)
            if error is not None:
                raise error
        return Order.from_dict(await self._trade("place_order", body))

    async def amend_order(
        self, order_id: str, *, price: Number | None = None, size: int | None = None
    ) -> Order:
        """``amend_order`` over the socket: a new price and/or a new total size."""
        params: dict[str, Any] = {"order_id": order_id}
        if price is not None:
            params["price"] = price_text(price)
        if size is not None:
            params["size"] = size_int(size)
        return Order.from_dict(await self._trade("amend_order", params))

    async def cancel_order(self, order_id: str) -> Order:
        """``cancel_order`` over the socket; returns the order, canceled."""
        return Order.from_dict(await self._trade("cancel_order", {"order_id": order_id}))

    async def cancel_all(self, market_id: str | None = None) -> CanceledOrders:
        """``cancel_all`` over the socket: every open order, or those of ``market_id``."""
        params = {} if market_id is None else {"market_id": market_id}
        return CanceledOrders.from_dict(await self._trade("cancel_all", params))

    async def heartbeat(self, timeout_s: int) -> DeadManSwitch:
        """``heartbeat`` over the socket: arm or feed this key's dead-man switch, as the
        client's ``heartbeat`` (``0`` disarms it). An open but silent socket lets it fire."""
        params = {"timeout_s": size_int(timeout_s, "timeout_s")}
        return DeadManSwitch.from_dict(await self._trade("heartbeat", params))

    async def create_order_group(
        self, max_filled_size: int, *, window_s: int | None = None
    ) -> OrderGroup:
        """``create_order_group`` over the socket, as ``client.create_order_group``."""
        params: dict[str, Any] = {"max_filled_size": size_int(max_filled_size, "max_filled_size")}
        if window_s is not None:
            params["window_s"] = size_int(window_s, "window_s")
        return OrderGroup.from_dict(await self._trade("create_order_group", params))

    async def get_order_groups(self) -> list[OrderGroup]:
        """``list_order_groups`` over the socket: the account's order groups, oldest first."""
        data = await self._trade("list_order_groups", {})
        groups = data.get("order_groups")
        if not isinstance(groups, list):
            raise InvalidResponseError(
                "list_order_groups: no order_groups", details={"reply": data}
            )
        return [OrderGroup.from_dict(g) for g in groups]

    async def get_order_group(self, order_group_id: str) -> OrderGroup:
        """``get_order_group`` over the socket."""
        params = {"order_group_id": order_group_id}
        return OrderGroup.from_dict(await self._trade("get_order_group", params))

    async def reset_order_group(self, order_group_id: str) -> OrderGroup:
        """``reset_order_group`` over the socket: the count starts afresh and a triggered
        group takes orders again."""
        params = {"order_group_id": order_group_id}
        return OrderGroup.from_dict(await self._trade("reset_order_group", params))

    async def delete_order_group(self, order_group_id: str) -> DeletedOrderGroup:
        """``delete_order_group`` over the socket: cancel the group's open orders, delete it."""
        params = {"order_group_id": order_group_id}
        return DeletedOrderGroup.from_dict(await self._trade("delete_order_group", params))

    async def set_cancel_on_disconnect(self, enabled: bool) -> bool:
        """Turn cancel-on-disconnect on or off for the orders placed from now on (kept across
        reconnects)."""
        self._check_open()
        reply = await self._request({"op": "cancel_on_disconnect", "enabled": bool(enabled)})
        self.cancel_on_disconnect = bool(reply.get("enabled", enabled))
        return self.cancel_on_disconnect


# ---------------------------------------------------------------------- helpers


def _decode(raw: str | bytes) -> Any:
    """A frame's JSON, with every decimal as ``Decimal``."""
    return json.loads(raw, parse_float=Decimal)


def _close_of(closed: ConnectionClosed) -> tuple[int | None, str]:
    frame = closed.rcvd
    if frame is None:
        return None, "the connection dropped without a close frame"
    return frame.code, frame.reason or ""


def _close_error(code: int | None, reason: str) -> BallastError | None:
    """The error ending the stream for close codes that must not be retried."""
    if code == CLOSE_REVOKED:
        return UnauthorizedError(
            f"the stream was closed: {reason or 'API key revoked'}",
            status=401,
            details={"close_code": code},
        )
    if code == CLOSE_TOO_MANY_CONNECTIONS:
        return TooManyConnectionsError(
            f"the stream was closed: {reason or 'too many connections'}",
            details={"close_code": code},
        )
    return None


def _reply_error(reply: dict[str, Any]) -> BallastError:
    """The exception for an ``error`` message (the spec's envelope and the HTTP status)."""
    error = reply.get("error")
    status = reply.get("status")
    details = error.get("details") if isinstance(error, dict) else None
    retry_after = details.get("retry_after") if isinstance(details, dict) else None
    return error_from_body(
        status if isinstance(status, int) else None,
        {"error": error},
        retry_after=float(retry_after) if isinstance(retry_after, (int, float)) else None,
    )


def _network_error(what: str, error: BaseException) -> NetworkError:
    text = str(error)
    return NetworkError(
        f"{what}: {type(error).__name__}{': ' + text if text else ''}",
        details={"exception": type(error).__name__},
    )


# ---------------------------------------------------------------------- the synchronous wrapper


_END = object()


class SyncStream:
    """The stream for :class:`~ballast.BallastClient`: the same methods, blocking, driven by an
    event loop in a background thread.

    ```python
    with client.stream() as stream:
        stream.subscribe("orderbook", "suez-apr2025", depth=10)
        for message in stream:
            print(message)
    ```

    :meth:`book` returns a copy of the live book (the thread keeps changing the original).
    """

    def __init__(self, make: Callable[[], Stream]) -> None:
        self._make = make
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._stream: Stream | None = None

    def __enter__(self) -> SyncStream:
        self.connect()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def connect(self) -> None:
        if self._loop is not None:
            raise RuntimeError("a stream connects once; make a new one with client.stream()")
        loop = asyncio.new_event_loop()
        thread = threading.Thread(target=loop.run_forever, name="ballast-stream", daemon=True)
        thread.start()
        self._loop, self._thread = loop, thread

        async def start() -> Stream:
            stream = self._make()
            await stream.connect()
            return stream

        try:
            self._stream = self._call(start())
        except BaseException:
            self._stop()
            raise

    def close(self) -> None:
        if self._stream is not None and self._loop is not None and not self._loop.is_closed():
            with contextlib.suppress(Exception):
                self._call(self._stream.close(), timeout=10)
        self._stop()

    def _stop(self) -> None:
        loop, thread = self._loop, self._thread
        if loop is None or loop.is_closed():
            return
        loop.call_soon_threadsafe(loop.stop)
        if thread is not None:
            thread.join(timeout=10)
        if not loop.is_running():
            loop.close()

    def _call(self, coroutine: Coroutine[Any, Any, T], timeout: float | None = None) -> T:
        if self._loop is None or self._loop.is_closed():
            coroutine.close()
            raise RuntimeError("the stream is not connected: use `with client.stream() as s`")
        future: ThreadFuture[T] = asyncio.run_coroutine_threadsafe(coroutine, self._loop)
        try:
            return future.result(timeout)
        except BaseException:
            future.cancel()
            raise

    @property
    def _s(self) -> Stream:
        if self._stream is None:
            raise RuntimeError("the stream is not connected: use `with client.stream() as s`")
        return self._stream

    # -- reading ---------------------------------------------------------------------------

    def __iter__(self) -> SyncStream:
        return self

    def __next__(self) -> StreamMessage:
        item = self._call(self._next(None))
        if item is _END:
            raise StopIteration
        return cast(StreamMessage, item)

    async def _next(self, timeout: float | None) -> object:
        try:
            return await self._s.receive(timeout)
        except StopAsyncIteration:
            return _END

    def receive(self, timeout: float | None = None) -> StreamMessage | None:
        """The next message or event; ``None`` after ``timeout`` seconds without one, or once
        the stream is closed."""
        try:
            item = self._call(self._next(timeout))
        except TimeoutError:
            return None
        return None if item is _END else cast(StreamMessage, item)

    def drain(self) -> list[StreamMessage]:
        """Every message and event already buffered, without waiting."""

        async def drain() -> list[StreamMessage]:
            return self._s.drain()

        return self._call(drain())

    @property
    def connected(self) -> bool:
        return self._s.connected

    @property
    def account_id(self) -> str | None:
        return self._s.account_id

    @property
    def url(self) -> str:
        return self._s.url

    @property
    def subscriptions(self) -> list[Subscription]:
        return self._s.subscriptions

    def ping(self) -> Pong:
        return self._call(self._s.ping())

    # -- subscriptions ---------------------------------------------------------------------

    def subscribe(
        self, channel: str, market_id: str | None = None, *, depth: int | None = None
    ) -> ChannelMessage:
        return self._call(self._s.subscribe(channel, market_id, depth=depth))

    def unsubscribe(self, channel: str, market_id: str | None = None) -> None:
        self._call(self._s.unsubscribe(channel, market_id))

    def book(self, market_id: str) -> LocalOrderBook:
        """A copy of the live book of ``market_id``."""

        async def copy() -> LocalOrderBook:
            return self._s.book(market_id).copy()

        return self._call(copy())

    def order_book(self, market_id: str, depth: int = 20) -> LocalOrderBook:
        """Subscribe to the book if needed; a copy of it once the snapshot is in."""

        async def copy() -> LocalOrderBook:
            return (await self._s.order_book(market_id, depth)).copy()

        return self._call(copy())

    # -- order entry -----------------------------------------------------------------------

    def place_order(
        self,
        market_id: str,
        side: Side,
        order_type: OrderType = "limit",
        price: Number | None = None,
        *,
        size: int,
        time_in_force: TimeInForce | None = None,
        expire_at: TimeLike | None = None,
        post_only: bool = False,
        reduce_only: bool = False,
        client_order_id: str | None = None,
        stp: SelfTradePrevention | None = None,
        order_group_id: str | None = None,
    ) -> Order:
        return self._call(
            self._s.place_order(
                market_id,
                side,
                order_type,
                price,
                size=size,
                time_in_force=time_in_force,
                expire_at=expire_at,
                post_only=post_only,
                reduce_only=reduce_only,
                client_order_id=client_order_id,
                stp=stp,
                order_group_id=order_group_id,
            )
        )

    def place(self, request: OrderRequest) -> Order:
        return self._call(self._s.place(request))

    def amend_order(
        self, order_id: str, *, price: Number | None = None, size: int | None = None
    ) -> Order:
        return self._call(self._s.amend_order(order_id, price=price, size=size))

    def cancel_order(self, order_id: str) -> Order:
        return self._call(self._s.cancel_order(order_id))

    def cancel_all(self, market_id: str | None = None) -> CanceledOrders:
        return self._call(self._s.cancel_all(market_id))

    def heartbeat(self, timeout_s: int) -> DeadManSwitch:
        return self._call(self._s.heartbeat(timeout_s))

    def create_order_group(
        self, max_filled_size: int, *, window_s: int | None = None
    ) -> OrderGroup:
        return self._call(self._s.create_order_group(max_filled_size, window_s=window_s))

    def get_order_groups(self) -> list[OrderGroup]:
        return self._call(self._s.get_order_groups())

    def get_order_group(self, order_group_id: str) -> OrderGroup:
        return self._call(self._s.get_order_group(order_group_id))

    def reset_order_group(self, order_group_id: str) -> OrderGroup:
        return self._call(self._s.reset_order_group(order_group_id))

    def delete_order_group(self, order_group_id: str) -> DeletedOrderGroup:
        return self._call(self._s.delete_order_group(order_group_id))

    def set_cancel_on_disconnect(self, enabled: bool) -> bool:
        return self._call(self._s.set_cancel_on_disconnect(enabled))
