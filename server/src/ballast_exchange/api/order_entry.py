"""Order entry's own path through the server: place, amend, cancel, the batches and cancel-all
(docs/adr/0024-http-server-and-order-entry-path.md).

An order request used to pass a dozen ASGI layers (FastAPI's, Starlette's and ours) and
FastAPI's dependency resolution before any trading ran: over half the loop's time. Here one
function does what those layers did for these seven operations, in the same order and with
the same answers: the request id and the HTTP metrics (``access_log``), the rate limits and
their headers (``middleware.RateLimitMiddleware``), the body limits and strict JSON
(``middleware.BodyLimitMiddleware``), the signature and replay check (``auth``), validation by
the same pydantic models, and the error envelope (``wire.errors``). The FastAPI routes in
``routes/orders.py`` stay: the OpenAPI document is built from them, and they answer when this
path is switched off (``ExchangeAPI.order_entry = None``), which the tests use to hold the two
to the same answers. A successful order request writes no INFO access line (DEBUG); a refused
one still does.
"""

from __future__ import annotations

import email.message
import json
import logging
import time
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl

from fastapi import FastAPI
from pydantic import BaseModel, ValidationError

from ..access.key_ring import KeyRing
from ..access.keys import TRADE
from ..access.ratelimit import RateLimiter
from ..access.signing import AuthError
from ..domain import DomainError
from ..domain.commands import PlaceOrder
from ..logs import request_id
from ..service.exchange import ServiceUnavailable
from ..service.metrics import Metrics
from ..service.trading import Trading
from ..service.venue import Venue
from ..wire import errors, strict_json, trading
from ..wire.errors import ApiError, envelope, from_domain, from_validation
from ..wire.models import (
    AmendOrderRequest,
    BatchAmendRequest,
    BatchCancelRequest,
    BatchOrdersRequest,
    PlaceOrderRequest,
)
from ..wire.trading import Answer
from .access_log import AccessMiddleware, access_line, incoming_id
from .auth import SignedRequest, authenticate_signed
from .middleware import CLOSE, BodyTooLarge, Message, Receive, Scope, Send, read_body
from .rate_gate import RateGate

PREFIX = "/v1/orders"
JSON_HEADERS = [(b"content-type", b"application/json")]
_WRITES = ("POST", "PUT", "PATCH")
_UNSET: Any = object()


async def place_batch(trading_: Trading, account_id: str, body: BatchOrdersRequest) -> Answer:
    """Place up to 20 orders, each succeeding or failing alone: every item is checked before
    any is placed, so a bad item is reported in its slot and never interrupts the batch after
    some of it traded."""
    commands: list[PlaceOrder | ApiError | DomainError] = []
    for order in body.orders:
        try:
            commands.append(trading.place_command(trading_, account_id, order))
        except (ApiError, DomainError) as error:
            commands.append(error)
    results = []
    for order, command in zip(body.orders, commands, strict=True):
        try:
            if isinstance(command, ApiError | DomainError):
                raise command
            status, view = await trading.place(trading_, account_id, order, command)
            results.append(trading.batch_slot(status, view))
        except (ApiError, DomainError) as error:
            results.append(trading.batch_error(error))
    return 200, {"results": results}


# What an operation does once its caller and body are known: (venue, account, body, the path's
# order id, the query string) -> the answer's coroutine.
Operation = Callable[[Venue, str, Any, str, bytes], Awaitable[Answer]]


def _cancel_all(venue: Venue, account_id: str, _: Any, __: str, query: bytes) -> Awaitable[Answer]:
    market_id = None
    # As FastAPI reads a query parameter: the last of repeated ones, blanks kept.
    for name, value in parse_qsl(query.decode("latin-1"), keep_blank_values=True):
        if name == "market_id":
            market_id = value
    return trading.cancel_all(venue.trading, account_id, market_id)


@dataclass(frozen=True, slots=True)
class Route:
    template: str  # as the OpenAPI document and the HTTP metrics name it
    model: type[BaseModel] | None  # the body's, or None where the route takes no body
    run: Operation


ROUTES: dict[tuple[str, str], Route] = {
    ("POST", PREFIX): Route(
        PREFIX,
        PlaceOrderRequest,
        lambda venue, account, body, _, __: trading.place(venue.trading, account, body),
    ),
    ("DELETE", PREFIX): Route(PREFIX, None, _cancel_all),
    ("POST", f"{PREFIX}/batch"): Route(
        f"{PREFIX}/batch",
        BatchOrdersRequest,
        lambda venue, account, body, _, __: place_batch(venue.trading, account, body),
    ),
    ("DELETE", f"{PREFIX}/batch"): Route(
        f"{PREFIX}/batch",
        BatchCancelRequest,
        lambda venue, account, body, _, __: trading.cancel_batch(
            venue.trading, account, body.order_ids
        ),
    ),
    ("PATCH", f"{PREFIX}/batch"): Route(
        f"{PREFIX}/batch",
        BatchAmendRequest,
        lambda venue, account, body, _, __: trading.amend_batch(
            venue.trading, account, body.orders
        ),
    ),
}
ONE_ORDER: dict[str, Route] = {
    "DELETE": Route(
        f"{PREFIX}/{{order_id}}",
        None,
        lambda venue, account, _, order_id, __: trading.cancel(venue.trading, account, order_id),
    ),
    "PATCH": Route(
        f"{PREFIX}/{{order_id}}",
        AmendOrderRequest,
        lambda venue, account, body, order_id, __: trading.amend(
            venue.trading, account, order_id, body
        ),
    ),
}
_ONE = len(PREFIX) + 1


def match(method: str, path: str) -> tuple[Route, str] | None:
    """The route and order id of an order-entry request; None for anything else (FastAPI's).
    ``batch`` is matched before ``{order_id}``, as the routes are declared."""
    route = ROUTES.get((method, path))
    if route is not None:
        return route, ""
    if path.startswith(PREFIX) and path[_ONE - 1 : _ONE] == "/":
        order_id = path[_ONE:]
        if order_id and "/" not in order_id:
            one = ONE_ORDER.get(method)
            if one is not None:
                return one, order_id
    return None


# FastAPI's JSONResponse calls json.dumps with these, which builds this encoder on every call.
_ENCODER = json.JSONEncoder(ensure_ascii=False, allow_nan=False, indent=None, separators=(",", ":"))


def _compact(content: Any) -> bytes:
    """A body as FastAPI's ``JSONResponse`` renders it."""
    return _ENCODER.encode(content).encode()


def _json_decision(content_type: str | None) -> bool:
    """Whether FastAPI would parse a body sent with this Content-Type as JSON (it parses none
    sent without one)."""
    if not content_type:
        return False
    if content_type == "application/json":  # what clients send: no need to parse it
        return True
    message = email.message.Message()
    message["content-type"] = content_type
    if message.get_content_maintype() != "application":
        return False
    subtype = message.get_content_subtype()
    return subtype == "json" or subtype.endswith("+json")


class OrderEntry:
    """Serves the order-entry routes (``match``) with the behaviour of the full stack."""

    def __init__(
        self,
        app: FastAPI,
        limiter: RateLimiter,
        keys: KeyRing,
        public_limit: int,
        private_limit: int,
        metrics: Metrics,
        max_body_bytes: int,
        templates: Callable[[], Iterable[str]],
    ) -> None:
        self.app = app
        self.limiter = limiter
        self.keys = keys
        self.public_limit = public_limit
        self.private_limit = private_limit
        self.metrics = metrics
        self.max_body_bytes = max_body_bytes
        # Names the route of a request refused before routing exactly as the access log does.
        self._unrouted = AccessMiddleware(_nothing, metrics, templates)

    async def __call__(
        self, route: Route, order_id: str, scope: Scope, receive: Receive, send: Send
    ) -> None:
        started = time.perf_counter()
        raw_headers: list[tuple[bytes, bytes]] = scope["headers"]
        rid, key = incoming_id(raw_headers)
        token = request_id.set(rid)
        outcome = _Outcome(rid.encode())
        try:
            await self._serve(route, order_id, scope, raw_headers, receive, send, outcome)
        finally:
            elapsed = time.perf_counter() - started
            method: str = scope["method"]
            status = outcome.status
            label = route.template if outcome.routed else self._unrouted._route(scope)
            self.metrics.request(method, label, status, elapsed)
            level = logging.DEBUG if 200 <= status < 300 else logging.INFO
            access_line(level, scope, status, elapsed, key)
            request_id.reset(token)

    async def _serve(
        self,
        route: Route,
        order_id: str,
        scope: Scope,
        raw_headers: list[tuple[bytes, bytes]],
        receive: Receive,
        send: Send,
        outcome: _Outcome,
    ) -> None:
        method: str = scope["method"]
        last = dict(raw_headers)  # as the middleware reads headers: the last of repeated ones
        first = dict(reversed(raw_headers))  # as Starlette's Request does: the first
        client = scope.get("client") or ("unknown", 0)
        gate = RateGate(
            self.limiter, client[0], self.public_limit, self.private_limit, self.metrics
        )

        # RateLimitMiddleware: a request that names no known key counts per IP before anything.
        authorization = first.get(b"authorization")
        if not self._names_known_key(authorization):
            decision = await gate.anonymous()
            if not decision.allowed:
                refused = gate.refuse(decision, "public")
                extra = _raw(decision.headers())
                body = _plain_error(refused.code, refused.message, None)
                await outcome.send(send, 429, [*_plain_head(body), *extra], body)
                return

        # BodyLimitMiddleware: the whole body, within the limit; JSON with unique keys.
        length = last.get(b"content-length")
        if length is not None and length.isdigit() and int(length) > self.max_body_bytes:
            await self._refuse(send, gate, outcome, 413, "PAYLOAD_TOO_LARGE", self._too_large())
            return
        body = b""
        if length is not None or b"chunked" in last.get(b"transfer-encoding", b""):
            try:
                read = await read_body(receive, self.max_body_bytes)
            except BodyTooLarge:
                await self._refuse(send, gate, outcome, 413, "PAYLOAD_TOO_LARGE", self._too_large())
                return
            if read is None:
                return  # the client went away
            body = read
        parsed = _UNSET
        if body and method in _WRITES:
            content_type = last.get(b"content-type", b"").split(b";")[0].strip().lower()
            if content_type != b"application/json":
                message_415 = "send the body as application/json"
                await self._refuse(send, gate, outcome, 415, "UNSUPPORTED_MEDIA_TYPE", message_415)
                return
            try:
                parsed = strict_json.loads(body)
            except ApiError as error:
                await self._refuse(
                    send, gate, outcome, 400, error.code, error.message, error.details
                )
                return

        # The route: as FastAPI answers it, body decoding first, then the caller, then the body.
        outcome.routed = True
        try:
            value = _UNSET
            if route.model is not None and body:
                ctype = first.get(b"content-type")
                if _json_decision(None if ctype is None else ctype.decode("latin-1")):
                    if parsed is _UNSET:
                        try:
                            parsed = json.loads(body)
                        except Exception:
                            raise errors.invalid_request(
                                "body", "the body is not valid JSON"
                            ) from None
                    value = parsed
                else:
                    value = body
            venue: Venue = self.app.state.ballast
            now = venue.exchange.clock()
            signed = SignedRequest(
                None if authorization is None else authorization.decode("latin-1"),
                _text(first.get(b"x-bm-timestamp")),
                _text(first.get(b"x-bm-signature")),
                method,
                _signed_path(scope),
                body,
            )
            principal = await authenticate_signed(
                signed, gate, self.keys, now, TRADE, venue.replays
            )
            await venue.exchange.room()
            model: Any = None
            if route.model is not None:
                model = _validated(route.model, value)
            status, view = await route.run(
                venue, principal.account_id, model, order_id, scope.get("query_string", b"")
            )
            content = _compact(view)
            head = [(b"content-length", str(len(content)).encode()), *JSON_HEADERS]
        except (ApiError, DomainError, AuthError, ServiceUnavailable) as error:
            status, content, head = _error_answer(error)
        except Exception:
            # As Starlette's outermost handler: the envelope straight to the server, without
            # the headers the middleware would have added, and the error on to uvicorn.
            errors.log.exception("unhandled error on %s %s", method, scope["path"])
            content = _compact(envelope("INTERNAL_ERROR", "an internal error occurred"))
            crash = [(b"connection", b"close"), (b"content-length", str(len(content)).encode())]
            await send(
                {"type": "http.response.start", "status": 500, "headers": crash + JSON_HEADERS}
            )
            await send({"type": "http.response.body", "body": content})
            raise
        decision = await gate.anonymous()  # the one already made, unless none was
        await outcome.send(send, status, [*head, *_raw(decision.headers())], content)

    async def _refuse(
        self,
        send: Send,
        gate: RateGate,
        outcome: _Outcome,
        status: int,
        code: str,
        message: str,
        details: dict[str, Any] | None = None,
    ) -> None:
        """A refusal of the body middleware's, with the rate limiter's headers after it."""
        body = _plain_error(code, message, details)
        extra = _raw(CLOSE) if status == 413 else []
        decision = await gate.anonymous()
        head = [*_plain_head(body), *extra, *_raw(decision.headers())]
        await outcome.send(send, status, head, body)

    def _names_known_key(self, authorization: bytes | None) -> bool:
        if authorization is None:
            return False
        scheme, _, token = authorization.decode("latin-1").partition(" ")
        return scheme.lower() == "bearer" and self.keys.get(token.strip()) is not None

    def _too_large(self) -> str:
        return f"the body exceeds {self.max_body_bytes} bytes"


class _Outcome:
    """What the access log needs to know of a request: its status, and whether it was routed
    (a refusal before routing is named from the path templates)."""

    __slots__ = ("request_id", "routed", "status")

    def __init__(self, request_id: bytes) -> None:
        self.request_id = request_id
        self.status = 500  # until a response starts
        self.routed = False

    async def send(
        self, send: Send, status: int, headers: list[tuple[bytes, bytes]], body: bytes
    ) -> None:
        self.status = status
        headers.append((b"x-request-id", self.request_id))
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": body})


def _validated(model: type[BaseModel], value: Any) -> Any:
    """The body as FastAPI validates it: the same model, errors located under ``body``."""
    if value is _UNSET:
        problems: list[Any] = [
            {"type": "missing", "loc": ("body",), "msg": "Field required", "input": None}
        ]
        raise from_validation(problems)
    try:
        return model.model_validate(value, from_attributes=True)
    except ValidationError as error:
        located = [
            {**problem, "loc": ("body", *problem.get("loc", ()))}
            for problem in error.errors(include_url=False)
        ]
        raise from_validation(located) from None


def _error_answer(
    error: ApiError | DomainError | AuthError | ServiceUnavailable,
) -> tuple[int, bytes, list[tuple[bytes, bytes]]]:
    """(status, body, headers) as the app's exception handlers answer the error."""
    if isinstance(error, DomainError):
        error = from_domain(error)
    if isinstance(error, ApiError):
        code, message, details, headers = error.code, error.message, error.details, error.headers
    elif isinstance(error, AuthError):
        code, message, details, headers = error.code, error.message, error.details, None
    else:
        code, message, details = "SERVICE_UNAVAILABLE", str(error), {}
        headers = {"Retry-After": "5"}
    content = _compact(envelope(code, message, details))
    head = _raw(headers or {})
    head += [(b"content-length", str(len(content)).encode()), *JSON_HEADERS]
    return errors.STATUS.get(code, 400), content, head


def _plain_error(code: str, message: str, details: dict[str, Any] | None) -> bytes:
    """A middleware refusal's body, as ``middleware.send_error`` writes it."""
    return json.dumps(envelope(code, message, details)).encode()


def _plain_head(body: bytes) -> list[tuple[bytes, bytes]]:
    return [*JSON_HEADERS, (b"content-length", str(len(body)).encode())]


def _raw(headers: dict[str, str]) -> list[tuple[bytes, bytes]]:
    return [(k.lower().encode(), v.encode()) for k, v in headers.items()]


def _text(value: bytes | None) -> str | None:
    return None if value is None else value.decode("latin-1")


def _signed_path(scope: Scope) -> str:
    """The path as the client sent it, with the query string (``auth.request_path``)."""
    raw = scope.get("raw_path")
    path: str = raw.decode("latin-1") if raw else scope["path"]
    query: bytes = scope.get("query_string", b"")
    return f"{path}?{query.decode('latin-1')}" if query else path


async def _nothing(scope: Scope, receive: Receive, send: Send) -> None:
    """The app behind the access middleware kept only for its route names: never called."""


class ExchangeAPI(FastAPI):
    """FastAPI, with the order-entry routes answered by ``order_entry`` before any of its
    layers when it is set (``app.create_app`` sets it)."""

    order_entry: OrderEntry | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        entry = self.order_entry
        if entry is not None and scope["type"] == "http" and not scope.get("root_path"):
            found = match(scope["method"], scope["path"])
            if found is not None:
                await entry(found[0], found[1], scope, receive, send)
                return
        await super().__call__(scope, receive, send)


__all__ = ["ExchangeAPI", "Message", "OrderEntry", "Route", "match", "place_batch"]
