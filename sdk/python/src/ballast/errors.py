"""Errors: one class per server error code, all under :class:`BallastError`.

The server answers every failure with ``{"error": {"code", "message", "details"}}``; the client
raises the class registered for ``code`` (``INSUFFICIENT_BALANCE`` raises
:class:`InsufficientBalanceError`, and so on). A code this SDK does not know yet raises a plain
:class:`BallastError` carrying that code, so a newer server never breaks an older client.

Related codes share a base class, so ``except AuthenticationError`` catches every 401 and
``except NotFoundError`` every 404. Network failures raise :class:`NetworkError`, whose
``code`` is ``NETWORK_ERROR`` and whose ``status`` is ``None``.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime, timezone
from typing import Any, ClassVar

__all__ = [
    "AccountExistsError",
    "AccountNotFoundError",
    "AuthenticationError",
    "BallastError",
    "ConflictError",
    "DuplicateClientOrderIdError",
    "FaucetLimitError",
    "ForbiddenError",
    "InsufficientBalanceError",
    "InternalServerError",
    "InvalidPriceError",
    "InvalidRequestError",
    "InvalidResponseError",
    "InvalidSettlementError",
    "InvalidSignatureError",
    "InvalidTransitionError",
    "KeyNotFoundError",
    "MarketClosedError",
    "MarketExistsError",
    "MarketNotFoundError",
    "MethodNotAllowedError",
    "NetworkError",
    "NotFoundError",
    "OrderGroupNotFoundError",
    "OrderGroupTriggeredError",
    "OrderNotCancelableError",
    "OrderNotFoundError",
    "OrderRejectedError",
    "OrderSizeTooLargeError",
    "OrderSizeTooSmallError",
    "PayloadTooLargeError",
    "PositionLimitExceededError",
    "PostOnlyWouldCrossError",
    "RateLimitError",
    "ReduceOnlyWouldIncreaseError",
    "ServerError",
    "ServiceUnavailableError",
    "TimestampExpiredError",
    "TooManyConnectionsError",
    "UnauthorizedError",
    "UnsupportedMediaTypeError",
    "error_class",
    "error_from_body",
]


class BallastError(Exception):
    """An error from the Ballast API (or, for :class:`NetworkError`, from reaching it).

    ``code`` is the server's machine-readable code (``INSUFFICIENT_BALANCE``), ``status`` the
    HTTP status (``None`` when no response arrived), ``message`` the server's explanation and
    ``details`` its structured details (for example ``required`` and ``available``).
    """

    code: str
    status: int | None
    message: str
    details: dict[str, Any]

    #: The code a subclass stands for; ``None`` on the bases.
    default_code: ClassVar[str | None] = None

    def __init__(
        self,
        message: str,
        *,
        code: str | None = None,
        status: int | None = None,
        details: Mapping[str, Any] | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.code = code or self.default_code or "UNKNOWN_ERROR"
        self.status = status
        self.details = dict(details or {})

    def __str__(self) -> str:
        where = f" (HTTP {self.status})" if self.status is not None else ""
        return f"{self.code}{where}: {self.message}"

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(code={self.code!r}, status={self.status!r}, "
            f"message={self.message!r}, details={self.details!r})"
        )


# --------------------------------------------------------------------------- families


class InvalidRequestError(BallastError):
    """400 ``INVALID_REQUEST``: malformed or missing field; ``details["field"]`` names it."""

    default_code = "INVALID_REQUEST"


class OrderRejectedError(BallastError):
    """Base of the 400 rejections of an order by the market's rules or the account's state."""


class AuthenticationError(BallastError):
    """Base of the 401 errors: the request could not be authenticated."""


class NotFoundError(BallastError):
    """404: no such endpoint (``NOT_FOUND``); the base of every other 404 as well."""

    default_code = "NOT_FOUND"


class ConflictError(BallastError):
    """Base of the 409 errors: the request conflicts with a market's or order's state."""


class ServerError(BallastError):
    """Base of the 5xx errors (and of any 5xx that came without the error envelope)."""


# --------------------------------------------------------------------------- 400


class InvalidPriceError(OrderRejectedError):
    """400 ``INVALID_PRICE``: off the market's tick grid or not strictly inside (floor, cap)."""

    default_code = "INVALID_PRICE"


class InsufficientBalanceError(OrderRejectedError):
    """400 ``INSUFFICIENT_BALANCE``: ``details["required"]`` and ``details["available"]``."""

    default_code = "INSUFFICIENT_BALANCE"


class OrderSizeTooSmallError(OrderRejectedError):
    """400 ``ORDER_SIZE_TOO_SMALL``: below the market's ``min_size``."""

    default_code = "ORDER_SIZE_TOO_SMALL"


class OrderSizeTooLargeError(OrderRejectedError):
    """400 ``ORDER_SIZE_TOO_LARGE``: above the market's ``max_order_size``."""

    default_code = "ORDER_SIZE_TOO_LARGE"


class PositionLimitExceededError(OrderRejectedError):
    """400 ``POSITION_LIMIT_EXCEEDED``: position plus open orders could exceed the limit."""

    default_code = "POSITION_LIMIT_EXCEEDED"


class ReduceOnlyWouldIncreaseError(OrderRejectedError):
    """400 ``REDUCE_ONLY_WOULD_INCREASE``: a reduce-only order larger than the position."""

    default_code = "REDUCE_ONLY_WOULD_INCREASE"


class PostOnlyWouldCrossError(OrderRejectedError):
    """400 ``POST_ONLY_WOULD_CROSS``: a post-only order would have taken liquidity."""

    default_code = "POST_ONLY_WOULD_CROSS"


class InvalidSettlementError(BallastError):
    """400 ``INVALID_SETTLEMENT`` (operator API)."""

    default_code = "INVALID_SETTLEMENT"


# --------------------------------------------------------------------------- 401, 403


class UnauthorizedError(AuthenticationError):
    """401 ``UNAUTHORIZED``: missing, unknown or revoked API key."""

    default_code = "UNAUTHORIZED"


class InvalidSignatureError(AuthenticationError):
    """401 ``INVALID_SIGNATURE``: ``details`` say which message shape the server expected."""

    default_code = "INVALID_SIGNATURE"


class TimestampExpiredError(AuthenticationError):
    """401 ``TIMESTAMP_EXPIRED``: the timestamp was more than 30 s from server time."""

    default_code = "TIMESTAMP_EXPIRED"


class ForbiddenError(BallastError):
    """403 ``FORBIDDEN``: the key lacks the scope (``read`` or ``trade``)."""

    default_code = "FORBIDDEN"


# --------------------------------------------------------------------------- 404, 405


class MarketNotFoundError(NotFoundError):
    """404 ``MARKET_NOT_FOUND``."""

    default_code = "MARKET_NOT_FOUND"


class OrderNotFoundError(NotFoundError):
    """404 ``ORDER_NOT_FOUND``: no such order for this account."""

    default_code = "ORDER_NOT_FOUND"


class OrderGroupNotFoundError(NotFoundError):
    """404 ``ORDER_GROUP_NOT_FOUND``: no such order group for this account (also when an order
    names one)."""

    default_code = "ORDER_GROUP_NOT_FOUND"


class AccountNotFoundError(NotFoundError):
    """404 ``ACCOUNT_NOT_FOUND`` (operator API)."""

    default_code = "ACCOUNT_NOT_FOUND"


class KeyNotFoundError(NotFoundError):
    """404 ``KEY_NOT_FOUND`` (operator API)."""

    default_code = "KEY_NOT_FOUND"


class MethodNotAllowedError(BallastError):
    """405 ``METHOD_NOT_ALLOWED``."""

    default_code = "METHOD_NOT_ALLOWED"


# --------------------------------------------------------------------------- 409


class MarketClosedError(ConflictError):
    """409 ``MARKET_CLOSED``: the market is halted, closed or past its close time."""

    default_code = "MARKET_CLOSED"


class OrderNotCancelableError(ConflictError):
    """409 ``ORDER_NOT_CANCELABLE``: the order is already filled, canceled or expired."""

    default_code = "ORDER_NOT_CANCELABLE"


class OrderGroupTriggeredError(ConflictError):
    """409 ``ORDER_GROUP_TRIGGERED``: the order's group reached its contract limit; reset the
    group to place orders in it again."""

    default_code = "ORDER_GROUP_TRIGGERED"


class DuplicateClientOrderIdError(ConflictError):
    """409 ``DUPLICATE_CLIENT_ORDER_ID``: another order already uses this id."""

    default_code = "DUPLICATE_CLIENT_ORDER_ID"


class InvalidTransitionError(ConflictError):
    """409 ``INVALID_TRANSITION`` (operator API)."""

    default_code = "INVALID_TRANSITION"


class MarketExistsError(ConflictError):
    """409 ``MARKET_EXISTS`` (operator API)."""

    default_code = "MARKET_EXISTS"


class AccountExistsError(ConflictError):
    """409 ``ACCOUNT_EXISTS`` (operator API)."""

    default_code = "ACCOUNT_EXISTS"


# --------------------------------------------------------------------------- 413, 415, 429


class PayloadTooLargeError(BallastError):
    """413 ``PAYLOAD_TOO_LARGE``: body over the server's limit (64 KiB by default)."""

    default_code = "PAYLOAD_TOO_LARGE"


class UnsupportedMediaTypeError(BallastError):
    """415 ``UNSUPPORTED_MEDIA_TYPE``."""

    default_code = "UNSUPPORTED_MEDIA_TYPE"


class RateLimitError(BallastError):
    """429 ``RATE_LIMIT_EXCEEDED``; ``retry_after`` is the server's ``Retry-After`` in seconds."""

    default_code = "RATE_LIMIT_EXCEEDED"

    def __init__(
        self,
        message: str,
        *,
        code: str | None = None,
        status: int | None = None,
        details: Mapping[str, Any] | None = None,
        retry_after: float | None = None,
    ) -> None:
        super().__init__(message, code=code, status=status, details=details)
        self.retry_after = retry_after


class FaucetLimitError(RateLimitError):
    """429 ``FAUCET_LIMIT_EXCEEDED``: the sandbox faucet's daily cap for this account is used.

    ``details`` has ``daily_cap``, ``granted_today``, ``requested`` and ``resets_at`` (the next
    UTC midnight); ``retry_after`` is the seconds until then. Unlike a rate limit, the client
    never waits this out: it raises at once.
    """

    default_code = "FAUCET_LIMIT_EXCEEDED"

    @property
    def resets_at(self) -> datetime | None:
        """When the cap resets (``details["resets_at"]``, an aware UTC datetime), if given."""
        value = self.details.get("resets_at")
        if not isinstance(value, str):
            return None
        text = value.strip()
        if text.endswith(("Z", "z")):
            text = text[:-1] + "+00:00"
        try:
            moment = datetime.fromisoformat(text)
        except ValueError:
            return None
        if moment.tzinfo is None:
            return moment.replace(tzinfo=timezone.utc)
        return moment.astimezone(timezone.utc)


class TooManyConnectionsError(BallastError):
    """``TOO_MANY_CONNECTIONS``: over the simultaneous stream connections of a key."""

    default_code = "TOO_MANY_CONNECTIONS"


# --------------------------------------------------------------------------- 5xx, transport


class InternalServerError(ServerError):
    """500 ``INTERNAL_ERROR``: a server bug; no internals are disclosed."""

    default_code = "INTERNAL_ERROR"


class ServiceUnavailableError(ServerError):
    """503 ``SERVICE_UNAVAILABLE``: the exchange stopped taking commands; retry later."""

    default_code = "SERVICE_UNAVAILABLE"


class NetworkError(BallastError):
    """No usable response: connection refused or reset, DNS failure, timeout.

    For a request that is not safe to repeat, the outcome is unknown: the server may or may not
    have acted on it. (``place_order`` is safe: it always carries a ``client_order_id``.)
    """

    default_code = "NETWORK_ERROR"


class InvalidResponseError(BallastError):
    """The server answered something this SDK cannot read (not JSON, or missing fields)."""

    default_code = "INVALID_RESPONSE"


def _registry() -> dict[str, type[BallastError]]:
    found: dict[str, type[BallastError]] = {}
    pending: list[type[BallastError]] = [BallastError]
    while pending:
        cls = pending.pop()
        pending.extend(cls.__subclasses__())
        if cls.default_code is not None:
            found[cls.default_code] = cls
    return found


_BY_CODE = _registry()


def error_class(code: str) -> type[BallastError]:
    """The exception class for a server error code; :class:`BallastError` for unknown codes."""
    return _BY_CODE.get(code, BallastError)


def error_from_body(
    status: int | None, body: Any, *, retry_after: float | None = None
) -> BallastError:
    """The exception for an error response: its HTTP status and its decoded JSON body.

    A body that is not the error envelope (a proxy's HTML page, say) gives a
    :class:`ServerError` for 5xx and a :class:`BallastError` with code ``HTTP_<status>``
    otherwise.
    """
    error = body.get("error") if isinstance(body, dict) else None
    if not isinstance(error, dict) or not isinstance(error.get("code"), str):
        fallback: type[BallastError] = (
            ServerError if status is not None and status >= 500 else BallastError
        )
        if status == 429:
            fallback = RateLimitError
        code = "RATE_LIMIT_EXCEEDED" if status == 429 else f"HTTP_{status}"
        message = f"HTTP {status} without an error envelope"
        if fallback is RateLimitError:
            return RateLimitError(message, code=code, status=status, retry_after=retry_after)
        return fallback(message, code=code, status=status)
    code = error["code"]
    message = str(error.get("message") or code)
    raw_details = error.get("details")
    details: dict[str, Any] = raw_details if isinstance(raw_details, dict) else {}
    cls = error_class(code)
    if issubclass(cls, RateLimitError):
        return cls(message, code=code, status=status, details=details, retry_after=retry_after)
    return cls(message, code=code, status=status, details=details)
