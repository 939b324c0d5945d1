"""The spec's error envelope, and the HTTP status of every error code.

Every error a client can see leaves through ``error_response``: unknown routes, wrong methods,
bad JSON, validation failures, domain rejections, auth failures, rate limits and crashes alike.
No stack trace or exception text from inside ever reaches the client.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from decimal import Decimal
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from ..access.signing import AuthError
from ..domain import DomainError
from ..service.exchange import ServiceUnavailable
from .refs import iso, order_ref
from .usdc import to_usdc

log = logging.getLogger(__name__)

STATUS: dict[str, int] = {
    "INVALID_REQUEST": 400,
    "INVALID_PRICE": 400,
    "INSUFFICIENT_BALANCE": 400,
    "ORDER_SIZE_TOO_SMALL": 400,
    "ORDER_SIZE_TOO_LARGE": 400,
    "POSITION_LIMIT_EXCEEDED": 400,
    "REDUCE_ONLY_WOULD_INCREASE": 400,
    "POST_ONLY_WOULD_CROSS": 400,
    "INVALID_SETTLEMENT": 400,
    "UNAUTHORIZED": 401,
    "INVALID_SIGNATURE": 401,
    "TIMESTAMP_EXPIRED": 401,
    "FORBIDDEN": 403,
    "MARKET_NOT_FOUND": 404,
    "ORDER_NOT_FOUND": 404,
    "ACCOUNT_NOT_FOUND": 404,
    "KEY_NOT_FOUND": 404,
    "ORDER_GROUP_NOT_FOUND": 404,
    "NOT_FOUND": 404,
    "METHOD_NOT_ALLOWED": 405,
    "MARKET_CLOSED": 409,
    "ORDER_NOT_CANCELABLE": 409,
    "DUPLICATE_CLIENT_ORDER_ID": 409,
    "ORDER_GROUP_TRIGGERED": 409,
    "INVALID_TRANSITION": 409,
    "MARKET_EXISTS": 409,
    "ACCOUNT_EXISTS": 409,
    "PAYLOAD_TOO_LARGE": 413,
    "UNSUPPORTED_MEDIA_TYPE": 415,
    "RATE_LIMIT_EXCEEDED": 429,
    "FAUCET_LIMIT_EXCEEDED": 429,
    "TOO_MANY_CONNECTIONS": 429,
    "INTERNAL_ERROR": 500,
    "SERVICE_UNAVAILABLE": 503,
}

# Domain details in micro-USDC that the API shows in USDC, as the spec's example does.
_MONEY_DETAILS = frozenset({"required", "available", "daily_cap", "granted_today", "requested"})
# Rejections whose ``retry_after`` (seconds) travels as the Retry-After header, not a detail.
_HEADER_RETRY = frozenset({"FAUCET_LIMIT_EXCEEDED"})
# Domain details in ticks, shown as prices when the market is known.
_PRICE_DETAILS = frozenset({"price", "floor", "cap", "opposite_best"})


class ApiError(Exception):
    def __init__(
        self,
        code: str,
        message: str,
        details: dict[str, Any] | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.details = details or {}
        self.headers = headers

    @property
    def status(self) -> int:
        return STATUS.get(self.code, 400)


def invalid_request(field: str, message: str) -> ApiError:
    return ApiError("INVALID_REQUEST", message, {"field": field})


def envelope(code: str, message: str, details: dict[str, Any] | None = None) -> dict[str, Any]:
    return {"error": {"code": code, "message": message, "details": details or {}}}


def error_response(
    code: str,
    message: str,
    details: dict[str, Any] | None = None,
    headers: dict[str, str] | None = None,
) -> JSONResponse:
    return JSONResponse(
        envelope(code, message, details), status_code=STATUS.get(code, 400), headers=headers
    )


def from_domain(error: DomainError, tick_size: Decimal | None = None) -> ApiError:
    """The API's view of a rejection: money in USDC and, given the market's tick, prices."""
    details = dict(error.details)
    for key in _MONEY_DETAILS & details.keys():
        if isinstance(details[key], int):
            details[key] = to_usdc(details[key])
    if tick_size is not None:
        for key in _PRICE_DETAILS & details.keys():
            if isinstance(details[key], int):
                details[key] = float(details[key] * tick_size)
    if isinstance(details.get("order_id"), int):
        details["order_id"] = order_ref(details["order_id"])
    if isinstance(details.get("resets_at"), int):
        details["resets_at"] = iso(details["resets_at"])
    retry_after = details.pop("retry_after", None) if error.code in _HEADER_RETRY else None
    headers = None if retry_after is None else {"Retry-After": str(retry_after)}
    return ApiError(error.code, error.message, details, headers=headers)


def from_validation(problems: Sequence[Any]) -> ApiError:
    """pydantic's complaints about a request, as one ``INVALID_REQUEST`` naming the field."""
    first = problems[0] if problems else {}
    location = [str(part) for part in first.get("loc", ()) if part not in ("body",)]
    field = ".".join(
        location[1:] if location[:1] in (["query"], ["path"], ["header"]) else location
    )
    if first.get("type") == "json_invalid":
        return invalid_request("body", "the body is not valid JSON")
    message = f"{field or 'request'}: {first.get('msg', 'invalid')}"
    return ApiError(
        "INVALID_REQUEST",
        message,
        {"field": field or "body", "problems": [_problem(p) for p in problems[:10]]},
    )


def install(app: FastAPI) -> None:
    """Route every kind of failure into the envelope."""

    @app.exception_handler(ApiError)
    async def api_error(_: Request, error: ApiError) -> JSONResponse:
        return error_response(error.code, error.message, error.details, error.headers)

    @app.exception_handler(DomainError)
    async def domain_error(_: Request, error: DomainError) -> JSONResponse:
        mapped = from_domain(error)
        return error_response(mapped.code, mapped.message, mapped.details, mapped.headers)

    @app.exception_handler(AuthError)
    async def auth_error(_: Request, error: AuthError) -> JSONResponse:
        return error_response(error.code, error.message, error.details)

    @app.exception_handler(ServiceUnavailable)
    async def unavailable(_: Request, error: ServiceUnavailable) -> JSONResponse:
        return error_response("SERVICE_UNAVAILABLE", str(error), {}, {"Retry-After": "5"})

    @app.exception_handler(RequestValidationError)
    async def validation(_: Request, error: RequestValidationError) -> JSONResponse:
        mapped = from_validation(error.errors())
        return error_response(mapped.code, mapped.message, mapped.details)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(_: Request, error: StarletteHTTPException) -> JSONResponse:
        if error.status_code == 404:
            return error_response("NOT_FOUND", "no such endpoint")
        if error.status_code == 405:
            return error_response("METHOD_NOT_ALLOWED", "method not allowed on this endpoint")
        if error.status_code == 400:  # FastAPI could not decode the body at all
            return error_response(
                "INVALID_REQUEST", "the body is not valid JSON", {"field": "body"}
            )
        code = {413: "PAYLOAD_TOO_LARGE", 415: "UNSUPPORTED_MEDIA_TYPE"}.get(error.status_code)
        return error_response(code or "INVALID_REQUEST", str(error.detail))

    @app.exception_handler(Exception)
    async def crash(request: Request, error: Exception) -> JSONResponse:
        log.exception("unhandled error on %s %s", request.method, request.url.path)
        # The server closes the connection after an unhandled error: say so, so a client
        # does not send its next request into a socket that is going away.
        return error_response(
            "INTERNAL_ERROR", "an internal error occurred", {}, {"Connection": "close"}
        )


def _problem(problem: Any) -> dict[str, Any]:
    location = [str(part) for part in problem.get("loc", ()) if part != "body"]
    return {"field": ".".join(location), "message": str(problem.get("msg", ""))}
