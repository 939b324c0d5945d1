"""The synchronous client: ``BallastClient``, a thin shell over the shared operations."""

from __future__ import annotations

import time
from collections.abc import Iterable, Mapping
from types import TracebackType
from typing import Any, TypeVar

import httpx

from ._core import (
    HTTP_LIMITS,
    USER_AGENT,
    CandleInterval,
    ClientCore,
    Environment,
    Failure,
    FeePeriodLength,
    HttpRequest,
    HttpResponse,
    MarketFilters,
    MarketStatus,
    MarketType,
    Number,
    Op,
    OrderAmend,
    OrderRequest,
    OrderStatus,
    OrderType,
    Outcome,
    PositionStatus,
    SelfTradePrevention,
    Side,
    TimeInForce,
    TimeLike,
    failure_from,
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
    Order,
    OrderBook,
    OrderGroup,
    Position,
    QueuePosition,
    ServerTime,
    SettledPosition,
    SettlementRecord,
    Trade,
)
from .stream import Stream, SyncStream, _thread_runner

__all__ = ["BallastClient"]

T = TypeVar("T")
C = TypeVar("C", bound="BallastClient")


class BallastClient(ClientCore):
    """A client for the Ballast REST API.

    ``BallastClient(api_key, api_secret)`` talks to production; pass ``environment="sandbox"``
    or ``"local"``, or ``base_url="http://127.0.0.1:8000/v1"`` for your own server. Without
    arguments the key, secret and URL come from ``BALLAST_API_KEY``, ``BALLAST_API_SECRET`` and
    ``BALLAST_BASE_URL`` (or ``BALLAST_ENVIRONMENT``). Market data needs no key.

    ``timeout`` is per request in seconds; ``max_retries`` bounds the retries of one call (429s,
    and 5xx or network failures of calls that are safe to repeat); ``max_retry_wait`` is the
    longest ``Retry-After`` it will sleep before giving up with :class:`~ballast.RateLimitError`.
    ``validate_orders`` checks prices and sizes against the market's rules before sending.

    Use it as a context manager, or call :meth:`close`.
    """

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
        http_client: httpx.Client | None = None,
    ) -> None:
        super().__init__(
            api_key,
            api_secret,
            environment=environment,
            base_url=base_url,
            stream_url=stream_url,
            timeout=timeout,
            max_retries=max_retries,
            max_retry_wait=max_retry_wait,
            validate_orders=validate_orders,
        )
        self._owns_http = http_client is None
        self._http = http_client or httpx.Client(
            headers={"User-Agent": USER_AGENT}, limits=HTTP_LIMITS
        )

    # -- running operations ----------------------------------------------------------------

    def _run(self, op: Op[T]) -> T:
        outcome: Outcome = None
        try:
            while True:
                effect = op.send(outcome)
                if isinstance(effect, HttpRequest):
                    outcome = self._send(effect)
                else:
                    self._sleep(effect.seconds)
                    outcome = None
        except StopIteration as done:
            result: T = done.value
            return result

    def _send(self, request: HttpRequest) -> HttpResponse | Failure:
        try:
            response = self._http.request(
                request.method,
                request.url,
                headers=request.headers,
                content=request.content,
                timeout=self.timeout,
            )
        except httpx.TransportError as error:
            return failure_from(error)
        return HttpResponse(response.status_code, response.headers, response.content)

    def _sleep(self, seconds: float) -> None:
        time.sleep(seconds)

    def close(self) -> None:
        """Close the connection pool (unless an ``http_client`` was passed in)."""
        if self._owns_http:
            self._http.close()

    def __enter__(self: C) -> C:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    # -- streaming -------------------------------------------------------------------------

    def stream(
        self,
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
    ) -> SyncStream:
        """The WebSocket stream at ``stream_url``, blocking: ``with client.stream() as stream``
        then ``for message in stream``. An event loop in a background thread drives it; the
        options and methods are those of :class:`~ballast.Stream` (which
        ``AsyncBallastClient.stream()`` gives, for asyncio code).
        """

        def make() -> Stream:
            return Stream(
                self,
                _thread_runner(self._run),
                cancel_on_disconnect=cancel_on_disconnect,
                heartbeats=heartbeats,
                heartbeat_interval=heartbeat_interval,
                reconnect=reconnect,
                max_reconnect_attempts=max_reconnect_attempts,
                backoff_base=backoff_base,
                backoff_max=backoff_max,
                max_queue=max_queue,
                request_timeout=request_timeout,
                validate_orders=validate_orders,
            )

        return SyncStream(make)

    # -- market data (public) --------------------------------------------------------------

    def get_server_time(self) -> ServerTime:
        """``GET /time``: the server's clock."""
        return self._run(self._get_server_time())

    def sync_clock(self) -> int:
        """Set ``clock_offset_ms`` from ``GET /time``; returns the offset in milliseconds.

        The client does this by itself once when the server answers ``TIMESTAMP_EXPIRED``.
        """
        return self._run(self._sync_clock())

    def get_markets(
        self,
        status: MarketStatus | None = None,
        type: MarketType | None = None,
        *,
        category: str | None = None,
        tag: str | None = None,
        series: str | None = None,
        event: str | None = None,
        q: str | None = None,
        close_before: TimeLike | None = None,
        close_after: TimeLike | None = None,
    ) -> list[Market]:
        """``GET /markets``: every market, optionally by status and type, ``category`` (any
        case), one ``tag``, a ``series`` or ``event`` id, text ``q`` in the name or question
        (any case), and closing before or after a time."""
        filters = MarketFilters(category, tag, series, event, q, close_before, close_after)
        return self._run(self._get_markets(status, type, filters))

    def get_series(self) -> list[MarketGroup]:
        """``GET /series``: the series markets recur in, each with its markets' ids."""
        return self._run(self._get_groupings("/series", "series"))

    def get_events(self) -> list[MarketGroup]:
        """``GET /events``: the events markets belong to, each with its markets' ids."""
        return self._run(self._get_groupings("/events", "events"))

    def get_market(self, market_id: str) -> Market:
        """``GET /markets/{id}``: one market with its rules and settlement."""
        return self._run(self._get_market(market_id))

    def get_orderbook(self, market_id: str, depth: int = 20) -> OrderBook:
        """``GET /markets/{id}/orderbook``: ``depth`` aggregated levels a side (1 to 100)."""
        return self._run(self._get_orderbook(market_id, depth))

    def get_trades(
        self, market_id: str, *, limit: int | None = None, page_size: int = 1000
    ) -> list[Trade]:
        """``GET /markets/{id}/trades``: public trades, newest first, over every page (or the
        latest ``limit``)."""
        return self._run(self._get_trades(market_id, limit, page_size))

    def get_candles(
        self,
        market_id: str,
        interval: CandleInterval = "1h",
        start: TimeLike | None = None,
        end: TimeLike | None = None,
        limit: int | None = None,
    ) -> list[Candle]:
        """``GET /markets/{id}/candles``: OHLCV candles from trades, oldest first."""
        return self._run(self._get_candles(market_id, interval, start, end, limit))

    def get_settlement(self, market_id: str) -> SettlementRecord:
        """``GET /markets/{id}/settlement``: the current proposal and every earlier one, each
        with its evidence; ``record.verify()`` checks the published hashes."""
        return self._run(self._get_settlement(market_id))

    # -- trading (private) -----------------------------------------------------------------

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
        """``POST /orders``: place one order.

        ``price`` is the limit price (or a market order's protection price) as a ``Decimal``,
        ``str``, ``int`` or ``float``; ``size`` is in contracts. ``client_order_id`` defaults
        to a fresh id, which makes the call safe to retry: a retry returns the first result.
        ``order_group_id`` places it in one of the account's order groups.
        """
        return self._run(
            self._place_order(
                OrderRequest(
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
            )
        )

    def place_orders(self, orders: Iterable[OrderRequest | Mapping[str, Any]]) -> list[BatchResult]:
        """``POST /orders/batch``: up to 20 orders, each placed or refused on its own.

        Each order is an :class:`~ballast.OrderRequest` or a mapping of ``place_order``'s
        arguments. Results come in the same order, with ``order`` or ``error``.
        """
        return self._run(self._place_orders(orders))

    def amend_order(
        self, order_id: str, *, price: Number | None = None, size: int | None = None
    ) -> Order:
        """``PATCH /orders/{id}``: a new price and/or a new total size."""
        return self._run(self._amend_order(order_id, price, size))

    def cancel_order(self, order_id: str) -> Order:
        """``DELETE /orders/{id}``: cancel one order; returns it, canceled."""
        return self._run(self._cancel_order(order_id))

    def cancel_all(self, market_id: str | None = None) -> CanceledOrders:
        """``DELETE /orders``: cancel every open order, or only those in ``market_id``."""
        return self._run(self._cancel_all(market_id))

    def cancel_orders(self, order_ids: Iterable[str]) -> list[BatchResult]:
        """``DELETE /orders/batch``: cancel up to 20 orders by id, each canceled or refused on
        its own. Results come in the same order, with ``order`` (canceled) or ``error``."""
        return self._run(self._cancel_orders(order_ids))

    def amend_orders(self, amends: Iterable[OrderAmend | Mapping[str, Any]]) -> list[BatchResult]:
        """``PATCH /orders/batch``: up to 20 amends (each an :class:`~ballast.OrderAmend` or a
        mapping of ``order_id``, ``price``, ``size``), each applied or refused on its own."""
        return self._run(self._amend_orders(amends))

    def get_queue_position(self, order_id: str) -> QueuePosition:
        """``GET /orders/{id}/queue_position``: contracts and orders resting ahead of an open
        order at its price."""
        return self._run(self._get_queue_position(order_id))

    def heartbeat(self, timeout_s: int) -> DeadManSwitch:
        """``POST /heartbeat``: arm or feed this key's dead-man switch. Unless another
        heartbeat comes within ``timeout_s`` seconds (5 to 60), the server cancels every open
        order of the account. ``0`` disarms it."""
        return self._run(self._heartbeat(timeout_s))

    def disarm_heartbeat(self) -> DeadManSwitch:
        """``DELETE /heartbeat``: disarm this key's dead-man switch."""
        return self._run(self._disarm_heartbeat())

    def create_order_group(
        self, max_filled_size: int, *, window_s: int | None = None
    ) -> OrderGroup:
        """``POST /order_groups``: a group whose orders may fill ``max_filled_size`` contracts
        within a rolling ``window_s`` (1 to 86,400 s; the server's default is 15). Reaching it
        cancels the group's open orders and refuses new ones until ``reset_order_group``."""
        return self._run(self._create_order_group(max_filled_size, window_s))

    def get_order_groups(self) -> list[OrderGroup]:
        """``GET /order_groups``: the account's order groups, oldest first."""
        return self._run(self._get_order_groups())

    def get_order_group(self, order_group_id: str) -> OrderGroup:
        """``GET /order_groups/{id}``."""
        return self._run(self._get_order_group(order_group_id))

    def reset_order_group(self, order_group_id: str) -> OrderGroup:
        """``POST /order_groups/{id}/reset``: the count starts afresh and a triggered group
        takes orders again."""
        return self._run(self._reset_order_group(order_group_id))

    def delete_order_group(self, order_group_id: str) -> DeletedOrderGroup:
        """``DELETE /order_groups/{id}``: cancel the group's open orders and delete it."""
        return self._run(self._delete_order_group(order_group_id))

    def get_order(self, order_id: str) -> Order:
        """``GET /orders/{id}``."""
        return self._run(self._get_order(order_id))

    def get_orders(
        self,
        status: OrderStatus | None = None,
        market_id: str | None = None,
        start_date: TimeLike | None = None,
        end_date: TimeLike | None = None,
        *,
        limit: int | None = None,
        page_size: int = 1000,
    ) -> list[Order]:
        """``GET /orders``: orders newest first, over every page (or the latest ``limit``).

        ``status`` is ``open``, ``filled``, ``canceled``, ``expired``, ``rejected`` or ``all``;
        dates are dates (whole days), datetimes, ISO-8601 text or Unix milliseconds.
        """
        return self._run(
            self._get_orders(status, market_id, start_date, end_date, limit, page_size)
        )

    # -- account (private) -----------------------------------------------------------------

    def get_balance(self) -> Balance:
        """``GET /account/balance``: ``total_balance = available + reserved``."""
        return self._run(self._get_balance())

    def request_faucet(self, amount: Number | None = None) -> FaucetGrant:
        """``POST /account/faucet`` (sandbox only): deposit test USDC, the server's default
        amount unless ``amount`` is given. Past the account's daily cap it raises
        :class:`~ballast.FaucetLimitError` at once (no retry); a production server raises
        :class:`~ballast.NotFoundError`. Never retried after a lost reply (it may have paid).
        """
        return self._run(self._request_faucet(amount))

    def get_positions(
        self, status: PositionStatus | None = None, *, page_size: int = 1000
    ) -> list[Position]:
        """``GET /positions``: open positions with PnL and margin used (the default), the
        positions settlements paid out (``"settled"``, newest first), or both (``"all"``)."""
        return self._run(self._get_positions(status, page_size))

    def get_settlements(
        self,
        market_id: str | None = None,
        start_date: TimeLike | None = None,
        end_date: TimeLike | None = None,
        *,
        limit: int | None = None,
        page_size: int = 1000,
    ) -> list[SettledPosition]:
        """``GET /settlements``: each position a settlement paid out (final value, size held,
        payout, PnL), newest first, over every page (or the latest ``limit``)."""
        return self._run(self._get_settlements(market_id, start_date, end_date, limit, page_size))

    def get_fees(
        self,
        start_date: TimeLike | None = None,
        end_date: TimeLike | None = None,
        period: FeePeriodLength = "day",
        *,
        limit: int | None = None,
        page_size: int = 1000,
    ) -> list[FeePeriod]:
        """``GET /account/fees``: fees paid and rebates earned per UTC day or month, newest
        first."""
        return self._run(self._get_fees(start_date, end_date, period, limit, page_size))

    def get_fills(
        self,
        market_id: str | None = None,
        start_date: TimeLike | None = None,
        end_date: TimeLike | None = None,
        *,
        limit: int | None = None,
        page_size: int = 1000,
    ) -> list[Fill]:
        """``GET /fills``: the account's fills, newest first, over every page."""
        return self._run(self._get_fills(market_id, start_date, end_date, limit, page_size))

    def get_ledger(
        self,
        kind: str | None = None,
        start_date: TimeLike | None = None,
        end_date: TimeLike | None = None,
        *,
        limit: int | None = None,
        page_size: int = 1000,
    ) -> list[LedgerEntry]:
        """``GET /account/ledger``: every movement of the account's money, newest first."""
        return self._run(self._get_ledger(kind, start_date, end_date, limit, page_size))
