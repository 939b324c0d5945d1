"""One WebSocket client: its requests in, its messages out (docs/websocket.md).

Requests are handled one at a time in arrival order. Order entry executes on the exchange as it
is read and answers once stored, so a client may pipeline orders without waiting. Everything
sent is written straight onto the connection's transport as a ready frame (``wire``); ``push``
never waits, and a connection whose unsent bytes pass the limit is cut with 4008 rather than
slowing anyone else.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
from collections.abc import Awaitable, Callable
from typing import Any, ClassVar

from pydantic import BaseModel, ValidationError
from starlette.websockets import WebSocket, WebSocketDisconnect

from ..access.key_ring import KeyRecord
from ..access.keys import READ, TRADE
from ..access.signing import AuthError, verify
from ..domain import CancelReason, DomainError
from ..service.exchange import ServiceUnavailable
from ..service.venue import Venue
from ..wire import order_groups, strict_json, trading
from ..wire.errors import ApiError, from_domain, from_validation, invalid_request
from ..wire.heartbeat import HeartbeatRequest, heartbeat
from ..wire.models import AmendOrderRequest, PlaceOrderRequest
from ..wire.order_groups import CreateOrderGroupRequest, OrderGroupRef
from ..wire.refs import iso, parse_order_ref
from .channels import Scope
from .hub import Hub, Stream, StreamKey, dumps
from .wire import Transport, text_frame

log = logging.getLogger(__name__)

SIGNED_PATH = "/stream"
CLOSE_REVOKED = 4001
CLOSE_SLOW = 4008
CLOSE_TOO_MANY = 4029
CLOSE_GRACE_S = 30
AUTH_FIELDS = frozenset({"op", "id", "api_key", "timestamp", "signature", "cancel_on_disconnect"})


class CancelAllParams(BaseModel):
    model_config = {"extra": "forbid"}
    market_id: str | None = None


class OrderRef(BaseModel):
    model_config = {"extra": "forbid"}
    order_id: str


class AmendParams(AmendOrderRequest):
    order_id: str


class NoParams(BaseModel):
    model_config = {"extra": "forbid"}


def error_message(request_id: Any, op: str | None, error: ApiError) -> str:
    return dumps(
        {
            "type": "error",
            "id": request_id,
            "op": op,
            "status": error.status,
            "error": {"code": error.code, "message": error.message, "details": error.details},
        }
    )


class Connection:
    def __init__(
        self, websocket: WebSocket, transport: Transport, hub: Hub, state: Venue, ip: str
    ) -> None:
        self.ws = websocket
        self.hub = hub
        self.state = state
        self.ip = ip
        self.transport = transport
        self.limit = hub.settings.stream_send_buffer_bytes
        self.closing = False
        self.record: KeyRecord | None = None
        self.cancel_on_disconnect = False
        self.guarded: set[int] = set()  # orders to cancel when the connection drops
        self.streams: dict[StreamKey, Stream] = {}
        self.answers: set[asyncio.Task[None]] = set()
        self.closer: asyncio.Task[None] | None = None
        self.guard: asyncio.Task[None] | None = None  # cancel-on-disconnect, once
        # What ``auth`` must sign: fresh per connection, so a captured auth message is useless.
        self.nonce = secrets.token_hex(16)

    @property
    def api_key(self) -> str | None:
        return self.record.api_key if self.record is not None else None

    # ------------------------------------------------------------ outgoing

    def push(self, text: str) -> None:
        self.send(text_frame(text))

    def send(self, frame: bytes) -> None:
        """Write a ready frame; never waits. Too much unsent cuts the connection as slow."""
        transport = self.transport
        if self.closing or transport.is_closing():
            return  # gone or going: its reader will notice and leave the hub
        transport.write(frame)
        if transport.get_write_buffer_size() > self.limit:
            self.close_soon(CLOSE_SLOW, "slow consumer")

    def close_soon(self, code: int, reason: str) -> None:
        if self.closer is None:
            self.hub.metrics.stream_cut[reason] += 1
            self.closer = asyncio.get_running_loop().create_task(self.close(code, reason))

    async def close(self, code: int, reason: str) -> None:
        if self.closing:
            return
        self.closing = True
        self.hub.leave(self)
        # The dead-man switch fires now, not once a slow client has taken its close frame.
        self.guard = asyncio.get_running_loop().create_task(self._guard_orders())
        try:
            # The close frame queues behind what is unsent; a client that takes neither
            # within the grace period is dropped.
            await asyncio.wait_for(self.ws.close(code, reason), timeout=CLOSE_GRACE_S)
        except Exception:
            if not self.transport.is_closing():
                self.transport.abort()

    def heartbeat(self, now: str | None, exchange_seq: int) -> None:
        if self.record is not None and self.record.revoked:
            self.close_soon(CLOSE_REVOKED, "API key revoked")
            return
        subscriptions = []
        for (channel, owner, _), stream in self.streams.items():
            entry: dict[str, Any] = {"channel": channel, "seq": stream.seq}
            if stream.channel.scope is Scope.MARKET:
                entry["market_id"] = owner
            subscriptions.append(entry)
        self.push(
            dumps(
                {
                    "type": "heartbeat",
                    "time": now,
                    "exchange_seq": exchange_seq,
                    "subscriptions": subscriptions,
                }
            )
        )

    def reply(self, request_id: Any, kind: str, **fields: Any) -> None:
        self.push(dumps({"type": kind, "id": request_id, **fields}))

    def fail(self, request_id: Any, op: str | None, error: ApiError) -> None:
        self.push(error_message(request_id, op, error))

    # ------------------------------------------------------------ the session

    async def serve(self) -> None:
        await self.ws.accept()
        if not self.hub.admit(self):
            self.fail(None, None, too_many("unauthenticated connections from this address"))
            await self.close(CLOSE_TOO_MANY, "too many connections")
            return
        now = iso(self.state.exchange.clock())
        self.push(dumps({"type": "welcome", "nonce": self.nonce, "time": now}))
        try:
            while True:
                message = await self.ws.receive()
                if message["type"] == "websocket.disconnect":
                    break
                if self.closing:
                    # Being closed: read on, unanswered. A client still sending would otherwise
                    # fill the socket and never get to read the close frame queued for it.
                    continue
                text = message.get("text")
                if text is None:
                    self.fail(None, None, invalid_request("body", "send text frames of JSON"))
                    continue
                await self.handle(text)
        except (WebSocketDisconnect, RuntimeError):
            pass  # the client went away
        finally:
            self.closing = True
            self.hub.leave(self)
            if self.guard is None:
                self.guard = asyncio.get_running_loop().create_task(self._guard_orders())
            await self.guard
            if self.closer is not None:
                await self.closer  # returning would let the server drop the socket unclosed

    async def _guard_orders(self) -> None:
        """Cancel-on-disconnect: once the answers in flight are stored, cancel what is left."""
        if self.answers:
            await asyncio.gather(*self.answers, return_exceptions=True)
        if not self.guarded or self.record is None:
            return
        account_id = self.record.account_id
        reads, desk = self.state.reads, self.state.trading
        cancels = [
            desk.cancel(account_id, order_id, CancelReason.DISCONNECT)
            for order_id in sorted(self.guarded)
            if reads.open_order(account_id, order_id) is not None
        ]
        for pending in cancels:
            with contextlib.suppress(DomainError, ServiceUnavailable):
                await pending.result()
        if cancels:
            log.info("canceled %d orders of a dropped connection", len(cancels))

    # ------------------------------------------------------------ requests

    async def handle(self, text: str) -> None:
        request_id: Any = None
        op: Any = None
        try:
            request = strict_json.loads(text)
            if not isinstance(request, dict):
                raise invalid_request("body", "a request is a JSON object with an 'op'")
            request_id = request.get("id")
            if request_id is not None and (
                isinstance(request_id, bool) or not isinstance(request_id, str | int)
            ):
                request_id = None
                raise invalid_request("id", "id must be a string or an integer")
            op = request.get("op")
            handler = self._handlers.get(op) if isinstance(op, str) else None
            if handler is None:
                raise invalid_request("op", f"unknown op {op!r}; see docs/websocket.md")
            await handler(self, request_id, request)
        except ApiError as error:
            self.fail(request_id, op if isinstance(op, str) else None, error)
        except AuthError as error:
            self.fail(request_id, op, ApiError(error.code, error.message, error.details))
        except DomainError as error:
            self.fail(request_id, op, from_domain(error))
        except ServiceUnavailable as error:
            self.fail(request_id, op, ApiError("SERVICE_UNAVAILABLE", str(error)))
        except Exception:
            # A bug must cost one request its answer, never the connection (whose drop would
            # fire cancel-on-disconnect).
            log.exception("stream request %r failed", op)
            self.fail(request_id, op, ApiError("INTERNAL_ERROR", "an internal error occurred"))

    async def _auth(self, request_id: Any, request: dict[str, Any]) -> None:
        if self.record is not None:
            raise invalid_request("op", "this connection is already authenticated")
        unknown = set(request) - AUTH_FIELDS
        if unknown:
            raise invalid_request(sorted(unknown)[0], "unknown field")
        api_key = request.get("api_key")
        if not isinstance(api_key, str) or not api_key:
            raise ApiError("UNAUTHORIZED", "auth needs an 'api_key'", {"field": "api_key"})
        cancel = request.get("cancel_on_disconnect", False)
        if not isinstance(cancel, bool):
            raise invalid_request("cancel_on_disconnect", "must be true or false")
        record = await self.state.keys.find(api_key)
        if record is None or record.revoked:
            raise ApiError("UNAUTHORIZED", "unknown or revoked API key", {"field": "api_key"})
        timestamp = request.get("timestamp")
        signature = request.get("signature")
        verify(
            secret=record.secret,
            timestamp=str(timestamp) if isinstance(timestamp, int | str) else None,
            signature=signature if isinstance(signature, str) else None,
            method="GET",
            path=SIGNED_PATH,
            body=self.nonce.encode(),
            now_ms=self.state.exchange.clock(),
        )
        self.state.keys.used(api_key, self.state.exchange.clock())
        if READ not in record.scopes:
            raise ApiError("FORBIDDEN", "this API key lacks the 'read' scope", {})
        if not await self.hub.authenticated(self, api_key):
            if self.closing:
                return  # closed while the slot was being taken: nothing to refuse
            limit = self.hub.settings.stream_connections_per_key
            self.fail(request_id, "auth", too_many(f"more than {limit} connections for this key"))
            await self.close(CLOSE_TOO_MANY, "too many connections")
            return
        self.record = record
        self.cancel_on_disconnect = cancel
        self.reply(
            request_id,
            "authenticated",
            account_id=record.account_id,
            scopes=sorted(record.scopes),
            cancel_on_disconnect=cancel,
        )

    async def _cancel_on_disconnect(self, request_id: Any, request: dict[str, Any]) -> None:
        self._principal()
        enabled = request.get("enabled")
        if not isinstance(enabled, bool):
            raise invalid_request("enabled", "must be true or false")
        self.cancel_on_disconnect = enabled
        self.reply(request_id, "cancel_on_disconnect", enabled=enabled)

    async def _ping(self, request_id: Any, request: dict[str, Any]) -> None:
        now = self.state.exchange.clock()
        self.reply(request_id, "pong", time=iso(now), exchange_seq=self.hub.exchange_seq)

    def _stream_key(self, request: dict[str, Any]) -> StreamKey:
        name = request.get("channel")
        channels = self.hub.channels
        channel = channels.get(name) if isinstance(name, str) else None
        if channel is not None and channel.scope is Scope.ACCOUNT:
            record = self._principal()
            return (channel.name, record.account_id, 0)
        if channel is None:
            raise invalid_request(
                "channel", f"unknown channel {name!r}; one of {', '.join(channels)}"
            )
        if channel.scope is Scope.GLOBAL:
            return (channel.name, "", 0)
        market_id = request.get("market_id")
        if not isinstance(market_id, str) or not market_id:
            raise invalid_request("market_id", f"the {channel.name} channel needs a market_id")
        if not self.hub.market_exists(market_id):
            raise ApiError(
                "MARKET_NOT_FOUND", f"market {market_id!r} does not exist", {"market_id": market_id}
            )
        return (channel.name, market_id, channel.depth(request))

    def _echo(self, key: StreamKey) -> dict[str, Any]:
        name, owner, depth = key
        channel = self.hub.channels[name]
        fields: dict[str, Any] = {"channel": name}
        if channel.scope is Scope.MARKET:
            fields["market_id"] = owner
        if channel.takes_depth:
            fields["depth"] = depth
        return fields

    def _subscribed(self, key: StreamKey) -> StreamKey | None:
        """This connection's stream of the key's channel and market, whatever its depth: one
        book per market and connection, since messages do not say which depth they are for."""
        channel, owner, _ = key
        return next((k for k in self.streams if k[0] == channel and k[1] == owner), None)

    async def _subscribe(self, request_id: Any, request: dict[str, Any]) -> None:
        key = self._stream_key(request)
        if self._subscribed(key) is not None:
            raise invalid_request("channel", "already subscribed to this stream; unsubscribe first")
        self.reply(request_id, "subscribed", **self._echo(key))
        self.streams[key] = self.hub.subscribe(self, key)

    async def _unsubscribe(self, request_id: Any, request: dict[str, Any]) -> None:
        asked = self._stream_key(request)
        key = self._subscribed(asked)
        if key is None or ("depth" in request and key != asked):
            raise invalid_request("channel", "not subscribed to this stream")
        del self.streams[key]
        self.hub.unsubscribe(self, key)
        self.reply(request_id, "unsubscribed", **self._echo(key))

    # ------------------------------------------------------------ order entry

    def _principal(self) -> KeyRecord:
        record = self.record
        if record is None:
            raise ApiError("UNAUTHORIZED", "send an 'auth' message first", {"op": "auth"})
        return record

    async def _trader(self, scope: str = TRADE) -> KeyRecord:
        """The key, checked as REST checks it: live, with the scope, within its limit."""
        record = self._principal()
        if record.revoked:
            await self.close(CLOSE_REVOKED, "API key revoked")
            raise ApiError("UNAUTHORIZED", "unknown or revoked API key", {})
        if scope not in record.scopes:
            raise ApiError(
                "FORBIDDEN",
                f"this API key lacks the {scope!r} scope",
                {"required_scope": scope, "key_scopes": sorted(record.scopes)},
            )
        settings = self.hub.settings
        decision = await self.state.limiter.hit(
            f"key:{record.api_key}", record.limit(settings.private_rate_limit)
        )
        if not decision.allowed:
            self.hub.metrics.rate_limited("private", "stream")
            raise ApiError(
                "RATE_LIMIT_EXCEEDED",
                f"rate limit of {decision.limit} requests a minute exceeded; "
                f"retry in {decision.retry_after}s",
                {"retry_after": decision.retry_after, "limit": decision.limit},
            )
        await self.state.exchange.room()
        return record

    def _params(self, request: dict[str, Any], model: type[Any]) -> Any:
        params = request.get("params", {})
        if not isinstance(params, dict):
            raise invalid_request("params", "params must be an object")
        try:
            return model.model_validate(params)
        except ValidationError as error:
            raise from_validation(error.errors()) from None

    def _answer(
        self,
        request_id: Any,
        op: str,
        pending: Awaitable[trading.Answer],
        placed: bool = False,
    ) -> None:
        """Send the answer once it is stored; the next request is read meanwhile."""
        guard = placed and self.cancel_on_disconnect

        async def answer() -> None:
            try:
                status, data = await pending
            except ApiError as error:
                self.fail(request_id, op, error)
                return
            except ServiceUnavailable as error:
                self.fail(request_id, op, ApiError("SERVICE_UNAVAILABLE", str(error)))
                return
            if guard and status == 201 and data.get("status") == "open":
                order_id = parse_order_ref(data["order_id"])
                if order_id is not None:
                    self.guarded.add(order_id)
            self.reply(request_id, "result", op=op, status=status, data=data)

        task = asyncio.get_running_loop().create_task(answer())
        self.answers.add(task)
        task.add_done_callback(self.answers.discard)

    async def _place_order(self, request_id: Any, request: dict[str, Any]) -> None:
        record = await self._trader()
        body: PlaceOrderRequest = self._params(request, PlaceOrderRequest)
        guarded = self.cancel_on_disconnect
        pending = trading.place(self.state.trading, record.account_id, body, guarded=guarded)
        self._answer(request_id, "place_order", pending, placed=True)

    async def _cancel_order(self, request_id: Any, request: dict[str, Any]) -> None:
        record = await self._trader()
        params: OrderRef = self._params(request, OrderRef)
        pending = trading.cancel(self.state.trading, record.account_id, params.order_id)
        self._answer(request_id, "cancel_order", pending)

    async def _amend_order(self, request_id: Any, request: dict[str, Any]) -> None:
        record = await self._trader()
        params: AmendParams = self._params(request, AmendParams)
        pending = trading.amend(self.state.trading, record.account_id, params.order_id, params)
        self._answer(request_id, "amend_order", pending)

    async def _cancel_all(self, request_id: Any, request: dict[str, Any]) -> None:
        record = await self._trader()
        params: CancelAllParams = self._params(request, CancelAllParams)
        pending = trading.cancel_all(self.state.trading, record.account_id, params.market_id)
        self._answer(request_id, "cancel_all", pending)

    async def _heartbeat(self, request_id: Any, request: dict[str, Any]) -> None:
        """The dead-man switch of this connection's key, as ``POST /v1/heartbeat`` arms it."""
        record = await self._trader()
        params: HeartbeatRequest = self._params(request, HeartbeatRequest)
        pending = heartbeat(
            self.state.dead_man, record.api_key, record.account_id, params.timeout_s
        )
        self._answer(request_id, "heartbeat", pending)

    async def _create_order_group(self, request_id: Any, request: dict[str, Any]) -> None:
        record = await self._trader()
        params: CreateOrderGroupRequest = self._params(request, CreateOrderGroupRequest)
        pending = order_groups.create(self.state.order_groups, record.account_id, params)
        self._answer(request_id, "create_order_group", pending)

    async def _list_order_groups(self, request_id: Any, request: dict[str, Any]) -> None:
        record = await self._trader(READ)
        self._params(request, NoParams)
        pending = order_groups.list_groups(self.state.order_groups, record.account_id)
        self._answer(request_id, "list_order_groups", pending)

    async def _get_order_group(self, request_id: Any, request: dict[str, Any]) -> None:
        record = await self._trader(READ)
        params: OrderGroupRef = self._params(request, OrderGroupRef)
        groups = self.state.order_groups
        pending = order_groups.get(groups, record.account_id, params.order_group_id)
        self._answer(request_id, "get_order_group", pending)

    async def _reset_order_group(self, request_id: Any, request: dict[str, Any]) -> None:
        record = await self._trader()
        params: OrderGroupRef = self._params(request, OrderGroupRef)
        groups = self.state.order_groups
        pending = order_groups.reset(groups, record.account_id, params.order_group_id)
        self._answer(request_id, "reset_order_group", pending)

    async def _delete_order_group(self, request_id: Any, request: dict[str, Any]) -> None:
        record = await self._trader()
        params: OrderGroupRef = self._params(request, OrderGroupRef)
        groups = self.state.order_groups
        pending = order_groups.delete(groups, record.account_id, params.order_group_id)
        self._answer(request_id, "delete_order_group", pending)

    _handlers: ClassVar[dict[str, Callable[[Connection, Any, dict[str, Any]], Awaitable[None]]]] = {
        "auth": _auth,
        "subscribe": _subscribe,
        "unsubscribe": _unsubscribe,
        "cancel_on_disconnect": _cancel_on_disconnect,
        "ping": _ping,
        "place_order": _place_order,
        "cancel_order": _cancel_order,
        "amend_order": _amend_order,
        "cancel_all": _cancel_all,
        "heartbeat": _heartbeat,
        "create_order_group": _create_order_group,
        "list_order_groups": _list_order_groups,
        "get_order_group": _get_order_group,
        "reset_order_group": _reset_order_group,
        "delete_order_group": _delete_order_group,
    }


def too_many(what: str) -> ApiError:
    return ApiError("TOO_MANY_CONNECTIONS", f"too many connections: {what}", {})
