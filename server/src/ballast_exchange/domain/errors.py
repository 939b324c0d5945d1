"""The rejections the domain can give, with the codes of the API spec and DESIGN §7."""

from __future__ import annotations

from typing import Any


class ErrorCode:
    """Machine-readable rejection codes (the API maps each to an HTTP status)."""

    INVALID_REQUEST = "INVALID_REQUEST"
    INVALID_PRICE = "INVALID_PRICE"
    INSUFFICIENT_BALANCE = "INSUFFICIENT_BALANCE"
    ORDER_SIZE_TOO_SMALL = "ORDER_SIZE_TOO_SMALL"
    ORDER_SIZE_TOO_LARGE = "ORDER_SIZE_TOO_LARGE"
    POSITION_LIMIT_EXCEEDED = "POSITION_LIMIT_EXCEEDED"
    MARKET_NOT_FOUND = "MARKET_NOT_FOUND"
    MARKET_CLOSED = "MARKET_CLOSED"
    MARKET_EXISTS = "MARKET_EXISTS"
    ACCOUNT_NOT_FOUND = "ACCOUNT_NOT_FOUND"
    ACCOUNT_EXISTS = "ACCOUNT_EXISTS"
    ORDER_NOT_FOUND = "ORDER_NOT_FOUND"
    ORDER_NOT_CANCELABLE = "ORDER_NOT_CANCELABLE"
    POST_ONLY_WOULD_CROSS = "POST_ONLY_WOULD_CROSS"
    REDUCE_ONLY_WOULD_INCREASE = "REDUCE_ONLY_WOULD_INCREASE"
    DUPLICATE_CLIENT_ORDER_ID = "DUPLICATE_CLIENT_ORDER_ID"
    INVALID_TRANSITION = "INVALID_TRANSITION"
    INVALID_SETTLEMENT = "INVALID_SETTLEMENT"


class DomainError(Exception):
    """A command the engine refused. The engine's state is exactly as it was before."""

    __slots__ = ("code", "details", "message")

    def __init__(self, code: str, message: str, details: dict[str, Any] | None = None) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message
        self.details: dict[str, Any] = details or {}


def invalid(field: str, reason: str) -> DomainError:
    """An ``INVALID_REQUEST`` naming the offending field."""
    return DomainError(ErrorCode.INVALID_REQUEST, f"{field}: {reason}", {"field": field})
