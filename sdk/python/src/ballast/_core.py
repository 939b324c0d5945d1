"""Everything the sync and async clients share, written once and free of I/O.

Each API call is a generator (an *operation*) that yields effects, :class:`HttpRequest` and
:class:`Sleep`, and receives their outcomes. The clients only run these generators: the sync
one with ``httpx.Client`` and ``time.sleep``, the async one with ``httpx.AsyncClient`` and
``asyncio.sleep``. Request building, signing, retries, clock sync, the market-rules cache,
checks before sending, pagination and parsing all live here.
"""

from __future__ import annotations

import json
import os
import random
import threading
import time
import uuid
from collections.abc import Generator, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime, timezone
from decimal import Decimal, InvalidOperation
from typing import Any, Literal, TypeVar
from urllib.parse import quote, urlencode

import httpx

from ._version import __version__
from .errors import (
    BallastError,
    FaucetLimitError,
    ForbiddenError,
    InvalidPriceError,
    InvalidRequestError,
    InvalidResponseError,
    InvalidSignatureError,
    MarketNotFoundError,
    NetworkError,
    OrderSizeTooLargeError,
    OrderSizeTooSmallError,
    RateLimitError,
    ServerError,
    TimestampExpiredError,
    error_from_body,
)
from .models import (
    Balance,
    BatchResult,
    CanceledOrders,
    Candle,
    DeadManSwitch,
    DeletedOrderGroup,
    FaucetGrant,
    FeePeriod,
    Fill,
    LedgerEntry,
    Market,
    MarketGroup,
    MarketRules,
    Model,
    Order,
    OrderBook,
    OrderGroup,
    Position,
    QueuePosition,
    RateLimit,
    ServerTime,
    SettledPosition,
    SettlementRecord,
    Trade,
)
from .signing import signed_headers

T = TypeVar("T")
M = TypeVar("M", bound=Model)

# ----------------------------------------------------------------------------- public types

Environment = Literal["production", "sandbox", "local"]
Side = Literal["buy", "sell"]
OrderType = Literal["limit", "market"]
TimeInForce = Literal["GTC", "IOC", "FOK", "GTD"]
SelfTradePrevention = Literal["cancel_newest", "cancel_oldest", "cancel_both", "decrement"]
OrderStatus = Literal["open", "filled", "canceled", "expired", "rejected", "all"]
MarketStatus = Literal["pending", "open", "halted", "closed", "resolving", "settled"]
PositionStatus = Literal["open", "settled", "all"]
FeePeriodLength = Literal["day", "month"]
MarketType = Literal["binary", "index"]
CandleInterval = Literal["1m", "5m", "1h", "1d"]
#: A price or amount: ``Decimal``, ``int``, ``str`` or ``float`` (sent as ``str(float)``, so
#: ``0.87`` stays ``0.87``).
Number = Decimal | int | float | str
#: A time: an aware ``datetime`` (naive is UTC), a ``date`` (a whole day), ISO-8601 text or
#: Unix milliseconds.
TimeLike = datetime | date | str | int

ENVIRONMENTS: dict[str, tuple[str, str]] = {
    "production": ("https://api.ballastmarkets.com/v1", "wss://stream.ballastmarkets.com"),
    "sandbox": (
        "https://api-sandbox.ballastmarkets.com/v1",
        "wss://stream-sandbox.ballastmarkets.com",
    ),
    "local": ("http://127.0.0.1:8000/v1", "ws://127.0.0.1:8000/stream"),
}

USER_AGENT = f"ballast-markets-python/{__version__}"
# Idle connections are dropped before the server's own idle keep-alive (5 s) closes them: a
# request sent on a connection the server is closing at that moment fails with no answer, and
# an order placed without a client_order_id cannot then be retried safely.
HTTP_LIMITS = httpx.Limits(max_connections=100, max_keepalive_connections=20, keepalive_expiry=4.0)
MAX_PAGE_SIZE = 1000
CLIENT_ORDER_ID_PREFIX = "py-"

# ----------------------------------------------------------------------------- effects


@dataclass(frozen=True, slots=True)
class HttpRequest:
    """Effect: send this request and resume with an :class:`HttpResponse` or a
    :class:`Failure`."""

    method: str
    url: str
    headers: dict[str, str]
    content: bytes | None


@dataclass(frozen=True, slots=True)
class Sleep:
    """Effect: wait this many seconds, then resume with ``None``."""

    seconds: float


@dataclass(frozen=True, slots=True)
class HttpResponse:
    status: int
    headers: Mapping[str, str]
    content: bytes


@dataclass(frozen=True, slots=True)
class Failure:
    """No response: ``retryable`` when the failure is a network problem worth retrying."""

    error: NetworkError
    retryable: bool


Effect = HttpRequest | Sleep
Outcome = HttpResponse | Failure | None
Op = Generator[Effect, Outcome, T]

# Which requests carry the authentication headers.
Auth = Literal["private", "optional", "none"]


def failure_from(error: Exception) -> Failure:
    """The outcome for an exception raised by httpx while sending."""
    retryable = isinstance(
        error, (httpx.TimeoutException, httpx.NetworkError, httpx.RemoteProtocolError)
    )
    wrapped = NetworkError(
        f"{type(error).__name__}: {error}" if str(error) else type(error).__name__,
        details={"exception": type(error).__name__},
    )
    wrapped.__cause__ = error
    return Failure(wrapped, retryable)


# ----------------------------------------------------------------------------- URLs


def resolve_urls(
    environment: str | None, base_url: str | None, stream_url: str | None
) -> tuple[str, str, str]:
    """``(environment, base_url, stream_url)`` from the arguments; when neither an environment
    nor a base URL is given, from ``BALLAST_BASE_URL``, ``BALLAST_ENVIRONMENT`` and
    ``BALLAST_STREAM_URL``; else production."""
    if base_url is None and environment is None:
        base_url = os.environ.get("BALLAST_BASE_URL") or None
        environment = os.environ.get("BALLAST_ENVIRONMENT") or None
        if stream_url is None:
            stream_url = os.environ.get("BALLAST_STREAM_URL") or None
    if base_url is None:
        name = environment or "production"
        if name not in ENVIRONMENTS:
            raise ValueError(f"environment must be one of {', '.join(ENVIRONMENTS)}, not {name!r}")
        rest, stream = ENVIRONMENTS[name]
        return name, rest, stream_url or stream
    base = base_url.rstrip("/")
    url = httpx.URL(base)
    if url.scheme not in ("http", "https") or not url.host:
        raise ValueError(
            f"base_url must be an http(s) URL such as http://127.0.0.1:8000/v1, not {base_url!r}"
        )
    known = next((name for name, (rest, _) in ENVIRONMENTS.items() if rest == base), None)
    name = environment or known or "custom"
    if stream_url is None:
        stream_url = ENVIRONMENTS[known][1] if known else derive_stream_url(base)
    return name, base, stream_url


def derive_stream_url(base_url: str) -> str:
    """``http(s)://host:port/v1`` → ``ws(s)://host:port/stream`` (the stream sits on the same
    server, beside the ``/v1`` API)."""
    url = httpx.URL(base_url)
    path = url.path.rstrip("/")
    if path.endswith("/v1"):
        path = path[: -len("/v1")]
    scheme = "wss" if url.scheme == "https" else "ws"
    return str(url.copy_with(scheme=scheme, path=f"{path}/stream", query=None))


# ----------------------------------------------------------------------------- conversions


def price_text(value: Number, field: str = "price") -> str:
    """A price or amount as exact decimal text; floats go through ``str`` (0.87 → "0.87")."""
    if isinstance(value, bool):
        raise InvalidRequestError(f"{field} must be a number", details={"field": field})
    try:
        number = Decimal(str(value)) if isinstance(value, float) else Decimal(value)
    except (InvalidOperation, TypeError, ValueError):
        raise InvalidRequestError(
            f"{field} must be a number or a decimal string, not {value!r}", details={"field": field}
        ) from None
    if not number.is_finite():
        raise InvalidRequestError(f"{field} must be finite", details={"field": field})
    return str(number)


def size_int(value: Any, field: str = "size") -> int:
    """A whole number of contracts (an integral ``Decimal``, ``float`` or text is accepted)."""
    if isinstance(value, bool):
        raise InvalidRequestError(f"{field} must be a whole number", details={"field": field})
    if isinstance(value, int):
        return value
    try:
        number = Decimal(str(value)) if isinstance(value, float) else Decimal(value)
    except (InvalidOperation, TypeError, ValueError):
        number = Decimal("NaN")
    if not number.is_finite() or number != number.to_integral_value():
        raise InvalidRequestError(
            f"{field} must be a whole number of contracts, not {value!r}", details={"field": field}
        )
    return int(number)


def time_ms(value: datetime) -> int:
    moment = value if value.tzinfo is not None else value.replace(tzinfo=timezone.utc)
    delta = moment - datetime(1970, 1, 1, tzinfo=timezone.utc)
    return delta.days * 86_400_000 + delta.seconds * 1000 + delta.microseconds // 1000


def time_param(value: TimeLike) -> str:
    """A time for a query parameter: a date stays a date (the server takes the whole day)."""
    if isinstance(value, datetime):
        return str(time_ms(value))
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, bool):
        raise InvalidRequestError("a time must not be a boolean", details={"field": "time"})
    return str(value)


def time_body(value: TimeLike) -> int | str:
    if isinstance(value, datetime):
        return time_ms(value)
    if isinstance(value, date):
        return time_ms(datetime(value.year, value.month, value.day, tzinfo=timezone.utc))
    return value


def new_client_order_id() -> str:
    """A fresh id within the server's pattern ``^[A-Za-z0-9._:-]+$`` (35 characters)."""
    return CLIENT_ORDER_ID_PREFIX + uuid.uuid4().hex


def decode_json(content: bytes) -> Any:
    """JSON with every decimal as ``Decimal``, so prices keep the server's digits."""
    return json.loads(content, parse_float=Decimal)


def _json_default(value: Any) -> Any:
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, datetime):
        return time_ms(value)
    raise TypeError(f"cannot send {type(value).__name__} as JSON")


def encode_json(body: Any) -> bytes:
    return json.dumps(body, separators=(",", ":"), default=_json_default).encode("utf-8")


# ----------------------------------------------------------------------------- orders


@dataclass(frozen=True, slots=True)
class MarketFilters:
    """``GET /markets`` filters beyond status and type (each optional): ``category`` (any
    case), one ``tag``, a ``series`` or ``event`` id, text ``q`` in the name or question, and
    closing before or after a time."""

    category: str | None = None
    tag: str | None = None
    series: str | None = None
    event: str | None = None
    q: str | None = None
    close_before: TimeLike | None = None
    close_after: TimeLike | None = None


@dataclass(slots=True)
class OrderRequest:
    """One order to place: the arguments of ``place_order``, also usable in ``place_orders``.

    ``client_order_id`` defaults to a fresh id, so a retried request is never placed twice.
    The generated id is kept on the request: sending the same ``OrderRequest`` again is a
    retry of that order (the server answers with the first result), not a new order.
    """

    market_id: str
    side: Side
    order_type: OrderType = "limit"
    price: Number | None = None
    size: int = 0
    time_in_force: TimeInForce | None = None
    expire_at: TimeLike | None = None
    post_only: bool = False
    reduce_only: bool = False
    client_order_id: str | None = None
    stp: SelfTradePrevention | None = None
    order_group_id: str | None = None

    def body(self) -> dict[str, Any]:
        """The JSON body, with a generated ``client_order_id`` when none was given."""
        if self.client_order_id is None:
            self.client_order_id = new_client_order_id()
        body: dict[str, Any] = {
            "market_id": self.market_id,
            "side": str(self.side).lower(),
            "type": str(self.order_type).lower(),
        }
        if self.price is not None:
            body["price"] = price_text(self.price)
        body["size"] = size_int(self.size)
        if self.time_in_force is not None:
            body["time_in_force"] = str(self.time_in_force).upper()
        if self.expire_at is not None:
            body["expire_at"] = time_body(self.expire_at)
        if self.post_only:
            body["post_only"] = True
        if self.reduce_only:
            body["reduce_only"] = True
        body["client_order_id"] = self.client_order_id
        if self.stp is not None:
            body["stp"] = str(self.stp).lower()
        if self.order_group_id is not None:
            body["order_group_id"] = self.order_group_id
        return body


@dataclass(frozen=True, slots=True)
class OrderAmend:
    """One amend of ``amend_orders``: a new price and/or a new total size for ``order_id``."""

    order_id: str
    price: Number | None = None
    size: int | None = None


def amend_body(amend: OrderAmend | Mapping[str, Any]) -> dict[str, Any]:
    """The JSON of one batch amend item, from an :class:`OrderAmend` or a mapping of its
    fields."""
    if not isinstance(amend, OrderAmend):
        try:
            amend = OrderAmend(**dict(amend))
        except TypeError as error:
            raise InvalidRequestError(
                f"invalid amend: {error}", details={"field": "orders"}
            ) from None
    body: dict[str, Any] = {"order_id": amend.order_id}
    if amend.price is not None:
        body["price"] = price_text(amend.price)
    if amend.size is not None:
        body["size"] = size_int(amend.size)
    return body


def order_request(order: OrderRequest | Mapping[str, Any]) -> OrderRequest:
    """An :class:`OrderRequest` from itself or from a mapping of ``place_order`` arguments
    (``type`` is accepted for ``order_type``)."""
    if isinstance(order, OrderRequest):
        return order
    fields = dict(order)
    if "type" in fields and "order_type" not in fields:
        fields["order_type"] = fields.pop("type")
    try:
        return OrderRequest(**fields)
    except TypeError as error:
        raise InvalidRequestError(f"invalid order: {error}", details={"field": "orders"}) from None


# Beyond any market's cap, as the server bounds it.
_MAX_TICKS = 10**12


def check_order(rules: MarketRules, body: Mapping[str, Any]) -> BallastError | None:
    """The rejection the server would give for this order body under these rules, if any.

    Checks the tick grid, the (floor, cap) range and the size bounds, in the server's order
    and with its codes and details. It does not know balances, positions or market status:
    those stay the server's to judge.
    """
    order_type = body.get("type", "limit")
    price: Decimal | None = None
    if body.get("price") is not None:
        raw = str(body["price"])
        price = Decimal(raw)
        ticks = price / rules.tick_size
        if abs(ticks) > _MAX_TICKS:
            return InvalidPriceError(
                f"price {raw} is outside any market's range",
                status=400,
                details={"field": "price", "price": raw},
            )
        if ticks != ticks.to_integral_value():
            return InvalidPriceError(
                f"price {price} is not on the market's tick grid of {rules.tick_size}",
                status=400,
                details={"field": "price", "price": str(price), "tick_size": str(rules.tick_size)},
            )
    elif order_type == "limit":
        return InvalidRequestError(
            "a limit order needs a price", status=400, details={"field": "price"}
        )
    size = body.get("size")
    if isinstance(size, int):
        if size < rules.min_size:
            return OrderSizeTooSmallError(
                f"order size {size} is below the market's minimum of {rules.min_size}",
                status=400,
                details={"size": size, "min_size": rules.min_size},
            )
        if rules.max_order_size is not None and size > rules.max_order_size:
            return OrderSizeTooLargeError(
                f"order size {size} is above the market's maximum of {rules.max_order_size}",
                status=400,
                details={"size": size, "max_order_size": rules.max_order_size},
            )
    if price is not None and not rules.floor < price < rules.cap:
        field_name = "price" if order_type == "limit" else "protection_price"
        return InvalidPriceError(
            f"{field_name} must lie strictly between the market's floor and cap",
            status=400,
            details={"field": field_name, "price": price, "floor": rules.floor, "cap": rules.cap},
        )
    return None


# ----------------------------------------------------------------------------- retries


@dataclass(slots=True)
class RetryPolicy:
    """When to try a request again, and after how long.

    - 429: wait ``Retry-After`` (plus a little jitter) if that is at most ``max_retry_wait``;
      never for ``FAUCET_LIMIT_EXCEEDED`` (a daily cap, not a rate window).
    - 5xx and network failures: exponential backoff with jitter, only for requests that are
      safe to repeat (reads, cancels, orders with a ``client_order_id``); a 503's
      ``Retry-After`` is honoured.
    - Anything else is not retried. At most ``max_retries`` retries per call.
    """

    max_retries: int = 3
    max_retry_wait: float = 60.0
    backoff_base: float = 0.25
    backoff_max: float = 8.0
    rng: random.Random = field(default_factory=random.Random)

    def backoff(self, attempt: int) -> float:
        delay: float = min(self.backoff_max, self.backoff_base * float(2**attempt))
        return delay * self.rng.uniform(0.5, 1.0)

    def delay(
        self,
        attempt: int,
        idempotent: bool,
        error: BallastError,
        *,
        retryable_failure: bool = False,
        retry_after: float | None = None,
    ) -> float | None:
        """Seconds to wait before retry number ``attempt + 1``, or ``None`` to give up.

        A server-given ``Retry-After`` longer than ``max_retry_wait`` gives up at once (waiting
        less would only be refused again); backoff delays are capped at ``max_retry_wait``.
        """
        if attempt >= self.max_retries:
            return None
        if isinstance(error, FaucetLimitError):
            # A daily cap, reset at UTC midnight: not a window worth sleeping through.
            return None
        if isinstance(error, RateLimitError):
            if error.retry_after is None:
                return min(self.backoff(attempt), self.max_retry_wait)
            if error.retry_after > self.max_retry_wait:
                return None
            # A little jitter after the window turns, so clients refused together spread out.
            return error.retry_after + self.rng.uniform(0.0, 0.25)
        if idempotent and (isinstance(error, ServerError) or retryable_failure):
            if retry_after is not None and retry_after > self.max_retry_wait:
                return None
            return max(min(self.backoff(attempt), self.max_retry_wait), retry_after or 0.0)
        return None


def _retry_after(headers: Mapping[str, str]) -> float | None:
    value = headers.get("retry-after")
    if value is None:
        return None
    try:
        seconds = float(value)
    except ValueError:
        return None
    return seconds if seconds >= 0 else None


def is_replay(error: BallastError) -> bool:
    """The server refused the signature as one it has already seen."""
    return isinstance(error, InvalidSignatureError) and error.details.get("reason") == "replayed"


def _rate_limit(headers: Mapping[str, str]) -> RateLimit | None:
    try:
        limit = int(headers["x-ratelimit-limit"])
        remaining = int(headers["x-ratelimit-remaining"])
        reset = int(headers["x-ratelimit-reset"])
    except (KeyError, ValueError):
        return None
    return RateLimit(limit, remaining, datetime.fromtimestamp(reset, tz=timezone.utc))


def _params(**values: Any) -> dict[str, str]:
    query: dict[str, str] = {}
    for key, value in values.items():
        if value is None:
            continue
        if isinstance(value, bool):
            query[key] = "true" if value else "false"
        elif isinstance(value, (datetime, date)):
            query[key] = time_param(value)
        else:
            query[key] = str(value)
    return query


def _page_size(page_size: int) -> int:
    if not 1 <= page_size <= MAX_PAGE_SIZE:
        raise ValueError(f"page_size must be between 1 and {MAX_PAGE_SIZE}")
    return page_size


# ----------------------------------------------------------------------------- the core


class ClientCore:
    """State and operations shared by :class:`~ballast.BallastClient` and
    :class:`~ballast.AsyncBallastClient`."""

    def __init__(
        self,
        api_key: str | None = None,
        api_secret: str | None = None,
        *,
        environment: Environment | str | None = None,
        base_url: str | None = None,
        stream_url: str | None = None,
        timeout: float = 10.0,
        max_retries: int = 3,
        max_retry_wait: float = 60.0,
        validate_orders: bool = True,
    ) -> None:
        if api_key is None:
            api_key = os.environ.get("BALLAST_API_KEY") or None
        if api_secret is None:
            api_secret = os.environ.get("BALLAST_API_SECRET") or None
        if (api_key is None) != (api_secret is None):
            raise ValueError("give both api_key and api_secret, or neither (market data only)")
        if max_retries < 0:
            raise ValueError("max_retries must be >= 0")
        self.api_key = api_key
        self._api_secret = api_secret
        self.environment, self.base_url, self.stream_url = resolve_urls(
            environment, base_url, stream_url
        )
        self.timeout = timeout
        self.retry = RetryPolicy(max_retries=max_retries, max_retry_wait=max_retry_wait)
        self.validate_orders = validate_orders
        #: Added to the local clock when signing; set by :meth:`sync_clock` (milliseconds).
        self.clock_offset_ms = 0
        # The server refuses a signature it has seen (replay protection), so no two requests
        # of this client may share a timestamp: each signs with a later millisecond.
        self._last_signed_ms = 0
        self._signing_lock = threading.Lock()
        #: The ``X-RateLimit-*`` headers of the last response, once one arrived.
        self.rate_limit: RateLimit | None = None
        self._rules: dict[str, MarketRules] = {}

    # -- settings --------------------------------------------------------------------------

    @property
    def max_retries(self) -> int:
        return self.retry.max_retries

    @max_retries.setter
    def max_retries(self, value: int) -> None:
        self.retry.max_retries = value

    @property
    def max_retry_wait(self) -> float:
        return self.retry.max_retry_wait

    @max_retry_wait.setter
    def max_retry_wait(self, value: float) -> None:
        self.retry.max_retry_wait = value

    def __repr__(self) -> str:
        key = f"{self.api_key[:14]}…" if self.api_key else None
        return f"{type(self).__name__}(base_url={self.base_url!r}, api_key={key!r})"

    def now_ms(self) -> int:
        """The local clock in Unix milliseconds, corrected by ``clock_offset_ms``."""
        return int(time.time() * 1000) + self.clock_offset_ms

    def signing_timestamp(self) -> int:
        """``now_ms()``, but always later than the last timestamp this client signed with."""
        with self._signing_lock:
            stamp = max(self.now_ms(), self._last_signed_ms + 1)
            self._last_signed_ms = stamp
            return stamp

    def skip_signing_ms(self, ms: int) -> None:
        """Sign the next request at least ``ms`` later than the last one."""
        with self._signing_lock:
            self._last_signed_ms += ms

    def market_rules(self, market_id: str) -> MarketRules | None:
        """The cached rules of a market (fetched on its first order, or by ``get_market``)."""
        return self._rules.get(market_id)

    # -- requests --------------------------------------------------------------------------

    def _build(
        self,
        method: str,
        path: str,
        params: Mapping[str, str] | None,
        content: bytes | None,
        sign: bool,
    ) -> HttpRequest:
        query = urlencode(params, quote_via=quote, safe="") if params else ""
        url = httpx.URL(self.base_url + path + (f"?{query}" if query else ""))
        headers = {"Accept": "application/json", "User-Agent": USER_AGENT}
        if content is not None:
            headers["Content-Type"] = "application/json"
        if sign and self.api_key is not None and self._api_secret is not None:
            # Sign the path exactly as httpx will send it: with /v1 and the query string.
            signed_path = url.raw_path.decode("ascii")
            headers.update(
                signed_headers(
                    self.api_key,
                    self._api_secret,
                    method,
                    signed_path,
                    content or b"",
                    self.signing_timestamp(),
                )
            )
        return HttpRequest(method, str(url), headers, content)

    def _request(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, str] | None = None,
        body: Any = None,
        auth: Auth,
        idempotent: bool,
    ) -> Op[dict[str, Any]]:
        """One API call with its retries; returns the decoded JSON object of the 2xx reply."""
        content = None if body is None else encode_json(body)  # serialised once, signed as is
        sign = auth != "none" and self.api_key is not None
        attempt = 0
        synced = False
        resigned = False
        while True:
            outcome = yield self._build(method, path, params, content, sign)
            if isinstance(outcome, Failure):
                delay = self.retry.delay(
                    attempt, idempotent, outcome.error, retryable_failure=outcome.retryable
                )
                if delay is None:
                    raise outcome.error
                attempt += 1
                yield Sleep(delay)
                continue
            if outcome is None:  # pragma: no cover - a driver bug
                raise RuntimeError("an HTTP request was answered with nothing")
            limits = _rate_limit(outcome.headers)
            # Signed requests count against the key; keep the IP bucket's unsigned clock syncs
            # from overwriting that (a client without a key has only the IP bucket).
            if limits is not None and (sign or self.api_key is None):
                self.rate_limit = limits
            try:
                data = decode_json(outcome.content) if outcome.content else None
            except ValueError:
                data = None
                if 200 <= outcome.status < 300:
                    raise InvalidResponseError(
                        f"{method} {path}: the reply is not JSON", status=outcome.status
                    ) from None
            if 200 <= outcome.status < 300:
                if not isinstance(data, dict):
                    raise InvalidResponseError(
                        f"{method} {path}: the reply is not a JSON object", status=outcome.status
                    )
                return data
            retry_after = _retry_after(outcome.headers)
            error = error_from_body(outcome.status, data, retry_after=retry_after)
            if isinstance(error, ForbiddenError) and sign and auth == "optional":
                # A key without the read scope may not sign market data, which needs no key
                # at all: ask again unsigned (counted against the IP's public limit).
                sign = False
                continue
            if is_replay(error) and sign and not resigned:
                # Another client of this key signed the same request in the same millisecond;
                # the server executed nothing, so sign it anew, once. Both clients' stamps may
                # run ahead of the clock in step: jump a random stretch to leave that step.
                resigned = True
                self.skip_signing_ms(random.randint(1, 256))
                continue
            if isinstance(error, TimestampExpiredError) and sign and not synced:
                # Our clock is off: learn the server's once, then sign again.
                synced = True
                yield from self._sync_clock()
                continue
            delay = self.retry.delay(attempt, idempotent, error, retry_after=retry_after)
            if delay is None:
                raise error
            attempt += 1
            yield Sleep(delay)

    def _sync_clock(self) -> Op[int]:
        before = int(time.time() * 1000)
        data = yield from self._request("GET", "/time", auth="none", idempotent=True)
        after = int(time.time() * 1000)
        server = ServerTime.from_dict(data).timestamp_ms
        self.clock_offset_ms = server - (before + after) // 2
        with self._signing_lock:
            # Stamps from a clock that ran fast must not hold the next ones in the future.
            self._last_signed_ms = 0
        return self.clock_offset_ms

    def _collect(
        self,
        path: str,
        key: str,
        model: type[M],
        params: Mapping[str, str],
        limit: int | None,
        page_size: int,
        auth: Auth,
    ) -> Op[list[M]]:
        """Every item over every page (newest first), or the first ``limit`` of them."""
        size = _page_size(page_size)
        items: list[M] = []
        cursor: str | None = None
        while limit is None or len(items) < limit:
            query = dict(params)
            query["limit"] = str(size if limit is None else min(size, limit - len(items)))
            if cursor is not None:
                query["cursor"] = cursor
            data = yield from self._request("GET", path, params=query, auth=auth, idempotent=True)
            items.extend(model.from_dict(item) for item in _items(data, key))
            cursor = data.get("next_cursor")
            if not cursor:
                break
        return items

    # -- market data -----------------------------------------------------------------------

    def _get_server_time(self) -> Op[ServerTime]:
        data = yield from self._request("GET", "/time", auth="none", idempotent=True)
        return ServerTime.from_dict(data)

    def _get_markets(
        self, status: str | None, type: str | None, filters: MarketFilters | None = None
    ) -> Op[list[Market]]:
        found = filters or MarketFilters()
        data = yield from self._request(
            "GET",
            "/markets",
            params=_params(
                status=status,
                type=type,
                category=found.category,
                tag=found.tag,
                series=found.series,
                event=found.event,
                q=found.q,
                close_before=None if found.close_before is None else time_param(found.close_before),
                close_after=None if found.close_after is None else time_param(found.close_after),
            ),
            auth="optional",
            idempotent=True,
        )
        markets = [Market.from_dict(m) for m in _items(data, "markets")]
        for market in markets:
            if market.rules is not None:
                self._rules[market.id] = market.rules
        return markets

    def _get_groupings(self, path: str, key: str) -> Op[list[MarketGroup]]:
        data = yield from self._request("GET", path, auth="optional", idempotent=True)
        return [MarketGroup.from_dict(item) for item in _items(data, key)]

    def _get_market(self, market_id: str) -> Op[Market]:
        data = yield from self._request(
            "GET", f"/markets/{_segment(market_id)}", auth="optional", idempotent=True
        )
        market = Market.from_dict(data)
        if market.rules is not None:
            self._rules[market.id] = market.rules
        return market

    def _get_orderbook(self, market_id: str, depth: int) -> Op[OrderBook]:
        data = yield from self._request(
            "GET",
            f"/markets/{_segment(market_id)}/orderbook",
            params=_params(depth=depth),
            auth="optional",
            idempotent=True,
        )
        return OrderBook.from_dict(data)

    def _get_trades(self, market_id: str, limit: int | None, page_size: int) -> Op[list[Trade]]:
        return (
            yield from self._collect(
                f"/markets/{_segment(market_id)}/trades",
                "trades",
                Trade,
                {},
                limit,
                page_size,
                "optional",
            )
        )

    def _get_candles(
        self,
        market_id: str,
        interval: str,
        start: TimeLike | None,
        end: TimeLike | None,
        limit: int | None,
    ) -> Op[list[Candle]]:
        params = _params(
            interval=interval,
            start=None if start is None else time_param(start),
            end=None if end is None else time_param(end),
            limit=limit,
        )
        data = yield from self._request(
            "GET",
            f"/markets/{_segment(market_id)}/candles",
            params=params,
            auth="optional",
            idempotent=True,
        )
        return [Candle.from_dict(c) for c in _items(data, "candles")]

    def _get_settlement(self, market_id: str) -> Op[SettlementRecord]:
        data = yield from self._request(
            "GET", f"/markets/{_segment(market_id)}/settlement", auth="optional", idempotent=True
        )
        return SettlementRecord.from_dict(data)

    # -- trading ---------------------------------------------------------------------------

    def _rules_for(self, market_id: str) -> Op[MarketRules | None]:
        rules = self._rules.get(market_id)
        if rules is None:
            market = yield from self._get_market(market_id)
            rules = market.rules
        return rules

    def _place_order(self, order: OrderRequest) -> Op[Order]:
        body = order.body()
        if self.validate_orders:
            rules = yield from self._rules_for(order.market_id)
            error = None if rules is None else check_order(rules, body)
            if error is not None:
                raise error
        data = yield from self._request(
            "POST",
            "/orders",
            body=body,
            auth="private",
            idempotent=body.get("client_order_id") is not None,
        )
        return Order.from_dict(data)

    def _place_orders(
        self, orders: Iterable[OrderRequest | Mapping[str, Any]]
    ) -> Op[list[BatchResult]]:
        requests = [order_request(o) for o in orders]
        bodies = [r.body() for r in requests]
        results: list[BatchResult | None] = [None] * len(bodies)
        if self.validate_orders:
            for index, body in enumerate(bodies):
                try:
                    rules = yield from self._rules_for(body["market_id"])
                except MarketNotFoundError as error:
                    results[index] = BatchResult(status=error.status or 400, error=error)
                    continue
                local = None if rules is None else check_order(rules, body)
                if local is not None:
                    results[index] = BatchResult(status=local.status or 400, error=local)
        to_send = [i for i, result in enumerate(results) if result is None]
        if to_send:
            data = yield from self._request(
                "POST",
                "/orders/batch",
                body={"orders": [bodies[i] for i in to_send]},
                auth="private",
                idempotent=True,
            )
            answers = _items(data, "results")
            if len(answers) != len(to_send):
                raise InvalidResponseError(
                    f"sent {len(to_send)} orders, got {len(answers)} results",
                    details={"field": "results"},
                )
            for index, item in zip(to_send, answers, strict=True):
                results[index] = _batch_result(item)
        return [r for r in results if r is not None]

    def _amend_order(self, order_id: str, price: Number | None, size: int | None) -> Op[Order]:
        body: dict[str, Any] = {}
        if price is not None:
            body["price"] = price_text(price)
        if size is not None:
            body["size"] = size_int(size)
        data = yield from self._request(
            "PATCH", f"/orders/{_segment(order_id)}", body=body, auth="private", idempotent=False
        )
        return Order.from_dict(data)

    def _cancel_order(self, order_id: str) -> Op[Order]:
        data = yield from self._request(
            "DELETE", f"/orders/{_segment(order_id)}", auth="private", idempotent=True
        )
        return Order.from_dict(data)

    def _cancel_all(self, market_id: str | None) -> Op[CanceledOrders]:
        data = yield from self._request(
            "DELETE",
            "/orders",
            params=_params(market_id=market_id),
            auth="private",
            idempotent=True,
        )
        return CanceledOrders.from_dict(data)

    def _cancel_orders(self, order_ids: Iterable[str]) -> Op[list[BatchResult]]:
        # Safe to repeat: a cancel that already happened answers ORDER_NOT_CANCELABLE in its slot.
        data = yield from self._request(
            "DELETE",
            "/orders/batch",
            body={"order_ids": list(order_ids)},
            auth="private",
            idempotent=True,
        )
        return [_batch_result(item) for item in _items(data, "results")]

    def _amend_orders(
        self, amends: Iterable[OrderAmend | Mapping[str, Any]]
    ) -> Op[list[BatchResult]]:
        body = {"orders": [amend_body(a) for a in amends]}
        data = yield from self._request(
            "PATCH", "/orders/batch", body=body, auth="private", idempotent=False
        )
        return [_batch_result(item) for item in _items(data, "results")]

    def _get_queue_position(self, order_id: str) -> Op[QueuePosition]:
        data = yield from self._request(
            "GET",
            f"/orders/{_segment(order_id)}/queue_position",
            auth="private",
            idempotent=True,
        )
        return QueuePosition.from_dict(data)

    def _heartbeat(self, timeout_s: int) -> Op[DeadManSwitch]:
        # Repeating a heartbeat only moves the deadline on: safe to retry.
        data = yield from self._request(
            "POST",
            "/heartbeat",
            body={"timeout_s": size_int(timeout_s, "timeout_s")},
            auth="private",
            idempotent=True,
        )
        return DeadManSwitch.from_dict(data)

    def _disarm_heartbeat(self) -> Op[DeadManSwitch]:
        data = yield from self._request("DELETE", "/heartbeat", auth="private", idempotent=True)
        return DeadManSwitch.from_dict(data)

    def _create_order_group(self, max_filled_size: int, window_s: int | None) -> Op[OrderGroup]:
        body: dict[str, Any] = {"max_filled_size": size_int(max_filled_size, "max_filled_size")}
        if window_s is not None:
            body["window_s"] = size_int(window_s, "window_s")
        # Not retried: a retry after a lost answer would create a second group.
        data = yield from self._request(
            "POST", "/order_groups", body=body, auth="private", idempotent=False
        )
        return OrderGroup.from_dict(data)

    def _get_order_groups(self) -> Op[list[OrderGroup]]:
        data = yield from self._request("GET", "/order_groups", auth="private", idempotent=True)
        return [OrderGroup.from_dict(g) for g in _items(data, "order_groups")]

    def _get_order_group(self, order_group_id: str) -> Op[OrderGroup]:
        data = yield from self._request(
            "GET", f"/order_groups/{_segment(order_group_id)}", auth="private", idempotent=True
        )
        return OrderGroup.from_dict(data)

    def _reset_order_group(self, order_group_id: str) -> Op[OrderGroup]:
        # A repeated reset only starts the count afresh again: safe to retry.
        data = yield from self._request(
            "POST",
            f"/order_groups/{_segment(order_group_id)}/reset",
            auth="private",
            idempotent=True,
        )
        return OrderGroup.from_dict(data)

    def _delete_order_group(self, order_group_id: str) -> Op[DeletedOrderGroup]:
        data = yield from self._request(
            "DELETE", f"/order_groups/{_segment(order_group_id)}", auth="private", idempotent=True
        )
        return DeletedOrderGroup.from_dict(data)

    def _get_order(self, order_id: str) -> Op[Order]:
        data = yield from self._request(
            "GET", f"/orders/{_segment(order_id)}", auth="private", idempotent=True
        )
        return Order.from_dict(data)

    def _get_orders(
        self,
        status: str | None,
        market_id: str | None,
        start_date: TimeLike | None,
        end_date: TimeLike | None,
        limit: int | None,
        page_size: int,
    ) -> Op[list[Order]]:
        params = _params(
            status=status,
            market_id=market_id,
            start_date=None if start_date is None else time_param(start_date),
            end_date=None if end_date is None else time_param(end_date),
        )
        return (
            yield from self._collect(
                "/orders", "orders", Order, params, limit, page_size, "private"
            )
        )

    # -- account ---------------------------------------------------------------------------

    def _get_balance(self) -> Op[Balance]:
        data = yield from self._request("GET", "/account/balance", auth="private", idempotent=True)
        return Balance.from_dict(data)

    def _request_faucet(self, amount: Number | None) -> Op[FaucetGrant]:
        body = None if amount is None else {"amount": price_text(amount, "amount")}
        # A deposit: never repeated after a lost reply, which may have granted it.
        data = yield from self._request(
            "POST", "/account/faucet", body=body, auth="private", idempotent=False
        )
        return FaucetGrant.from_dict(data)

    def _get_positions(self, status: str | None, page_size: int) -> Op[list[Position]]:
        if status is None or status == "open":  # one live read, never paged
            data = yield from self._request(
                "GET", "/positions", params=_params(status=status), auth="private", idempotent=True
            )
            return [Position.from_dict(p) for p in _items(data, "positions")]
        params = _params(status=status)
        return (
            yield from self._collect(
                "/positions", "positions", Position, params, None, page_size, "private"
            )
        )

    def _get_settlements(
        self,
        market_id: str | None,
        start_date: TimeLike | None,
        end_date: TimeLike | None,
        limit: int | None,
        page_size: int,
    ) -> Op[list[SettledPosition]]:
        params = _params(
            market_id=market_id,
            start_date=None if start_date is None else time_param(start_date),
            end_date=None if end_date is None else time_param(end_date),
        )
        return (
            yield from self._collect(
                "/settlements", "settlements", SettledPosition, params, limit, page_size, "private"
            )
        )

    def _get_fees(
        self,
        start_date: TimeLike | None,
        end_date: TimeLike | None,
        period: str,
        limit: int | None,
        page_size: int,
    ) -> Op[list[FeePeriod]]:
        params = _params(
            period=period,
            start_date=None if start_date is None else time_param(start_date),
            end_date=None if end_date is None else time_param(end_date),
        )
        return (
            yield from self._collect(
                "/account/fees", "periods", FeePeriod, params, limit, page_size, "private"
            )
        )

    def _get_fills(
        self,
        market_id: str | None,
        start_date: TimeLike | None,
        end_date: TimeLike | None,
        limit: int | None,
        page_size: int,
    ) -> Op[list[Fill]]:
        params = _params(
            market_id=market_id,
            start_date=None if start_date is None else time_param(start_date),
            end_date=None if end_date is None else time_param(end_date),
        )
        return (
            yield from self._collect("/fills", "fills", Fill, params, limit, page_size, "private")
        )

    def _get_ledger(
        self,
        kind: str | None,
        start_date: TimeLike | None,
        end_date: TimeLike | None,
        limit: int | None,
        page_size: int,
    ) -> Op[list[LedgerEntry]]:
        params = _params(
            kind=kind,
            start_date=None if start_date is None else time_param(start_date),
            end_date=None if end_date is None else time_param(end_date),
        )
        return (
            yield from self._collect(
                "/account/ledger", "entries", LedgerEntry, params, limit, page_size, "private"
            )
        )


def _items(data: Mapping[str, Any], key: str) -> list[dict[str, Any]]:
    """The list under ``key`` of a reply, or :class:`InvalidResponseError`."""
    items = data.get(key)
    if not isinstance(items, list) or not all(isinstance(item, dict) for item in items):
        raise InvalidResponseError(
            f"the reply has no list of objects under {key!r}", details={"field": key}
        )
    return items


def _segment(value: str) -> str:
    """A path segment, percent-encoded (ids never need it, but a typo must not change the path)."""
    return quote(str(value), safe="")


def _batch_result(item: Mapping[str, Any]) -> BatchResult:
    status = int(item.get("status", 0))
    order = item.get("order")
    if isinstance(order, dict):
        return BatchResult(status=status, order=Order.from_dict(order))
    return BatchResult(status=status, error=error_from_body(status, {"error": item.get("error")}))


__all__ = [
    "CandleInterval",
    "ClientCore",
    "Environment",
    "FeePeriodLength",
    "MarketFilters",
    "MarketStatus",
    "MarketType",
    "Number",
    "OrderAmend",
    "OrderRequest",
    "OrderStatus",
    "OrderType",
    "PositionStatus",
    "RetryPolicy",
    "SelfTradePrevention",
    "Side",
    "TimeInForce",
    "TimeLike",
    "check_order",
    "derive_stream_url",
    "resolve_urls",
]
