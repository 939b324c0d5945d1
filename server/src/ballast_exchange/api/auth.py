"""Who is calling: API keys with HMAC-signed requests (spec "Authentication", DESIGN §7).

The keys themselves are held in memory by ``access.key_ring.KeyRing``; this module is the REST
side: the FastAPI dependency that checks a request's signature, replay and rate limit.
"""

from __future__ import annotations

from dataclasses import dataclass

from fastapi import Request

from ..access.key_ring import KeyRecord, KeyRing
from ..access.replay import KeyRevoked, ReplayCache
from ..access.signing import AuthError, verify
from ..wire.errors import ApiError
from .rate_gate import RATE_GATE, RateGate


@dataclass(slots=True, frozen=True)
class Principal:
    account_id: str
    api_key: str
    scopes: frozenset[str]


def bearer(request: Request) -> str | None:
    return bearer_token(request.headers.get("authorization"))


def bearer_token(header: str | None) -> str | None:
    """The key of an ``Authorization: Bearer`` header; "" for another scheme, None if absent."""
    if header is None:
        return None
    scheme, _, token = header.partition(" ")
    return token.strip() if scheme.lower() == "bearer" and token.strip() else ""


def request_path(request: Request) -> str:
    """The path as the client sent it, with the query string, as the signature covers it."""
    raw = request.scope.get("raw_path")
    path = raw.decode("latin-1") if raw else request.url.path
    query = request.scope.get("query_string", b"")
    return f"{path}?{query.decode('latin-1')}" if query else path


async def authenticate(
    request: Request, keys: KeyRing, now_ms: int, scope: str, replays: ReplayCache
) -> Principal:
    """The caller of a signed request, whose signature is new; counts it against its key once
    the signature holds."""
    headers = request.headers
    return await authenticate_signed(
        SignedRequest(
            headers.get("authorization"),
            headers.get("x-bm-timestamp"),
            headers.get("x-bm-signature"),
            request.method,
            request_path(request),
            await request.body(),
        ),
        request.scope.get(RATE_GATE),
        keys,
        now_ms,
        scope,
        replays,
    )


@dataclass(slots=True, frozen=True)
class SignedRequest:
    """What a signature covers and the headers that carry it, as the client sent them."""

    authorization: str | None
    timestamp: str | None
    signature: str | None
    method: str
    path: str  # with the query string
    body: bytes


async def authenticate_signed(
    request: SignedRequest,
    gate: RateGate | None,
    keys: KeyRing,
    now_ms: int,
    scope: str,
    replays: ReplayCache,
) -> Principal:
    """``authenticate`` on a request already taken apart (the order-entry path's way in)."""
    try:
        record = await _verified(request, keys, now_ms, replays)
    except (ApiError, AuthError):
        if gate is not None:
            decision = await gate.anonymous()
            if not decision.allowed:
                raise gate.refuse(decision, "public") from None
        raise
    if gate is not None:
        decision = await gate.authenticated(record.api_key, record.limit(gate.private_limit))
        if not decision.allowed:
            raise gate.refuse(decision, "private")
    keys.used(record.api_key, now_ms)
    if scope not in record.scopes:
        raise ApiError(
            "FORBIDDEN",
            f"this API key lacks the '{scope}' scope",
            {"required_scope": scope, "key_scopes": sorted(record.scopes)},
        )
    return Principal(record.account_id, record.api_key, record.scopes)


async def _verified(
    request: SignedRequest, keys: KeyRing, now_ms: int, replays: ReplayCache
) -> KeyRecord:
    token = bearer_token(request.authorization)
    if not token:
        raise ApiError(
            "UNAUTHORIZED",
            "missing API key: send 'Authorization: Bearer <API_KEY>'",
            {"header": "Authorization"},
        )
    record = await keys.find(token)
    if record is None or record.revoked:
        raise ApiError("UNAUTHORIZED", "unknown or revoked API key", {"header": "Authorization"})
    signature = request.signature
    verified_at = verify(
        secret=record.secret,
        timestamp=request.timestamp,
        signature=signature,
        method=request.method,
        path=request.path,
        body=request.body,
        now_ms=now_ms,
    )
    if signature is not None:
        await refuse_replay(replays, record.api_key, signature, verified_at)
    return record


async def refuse_replay(
    replays: ReplayCache, api_key: str, signature: str, timestamp_ms: int
) -> None:
    """Raise ``INVALID_SIGNATURE`` (reason ``replayed``) for a signature used before."""
    try:
        first = await replays.first_use(api_key, signature.strip().lower(), timestamp_ms)
    except KeyRevoked:
        raise ApiError(
            "UNAUTHORIZED", "unknown or revoked API key", {"header": "Authorization"}
        ) from None
    if not first:
        raise AuthError(
            "INVALID_SIGNATURE",
            "this signature was used before: sign every request anew, with a new timestamp",
            {"reason": "replayed", "timestamp": timestamp_ms},
        )
