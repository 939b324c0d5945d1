"""Who is calling: API keys with HMAC-signed requests (spec "Authentication", DESIGN §7).

Keys and their decrypted secrets are held in memory in a ``KeyRing`` (loaded from the store at
start, updated by the admin API in the same process), so checking a signature needs no I/O and a
revocation takes effect on the very next request.
"""

from __future__ import annotations

from dataclasses import dataclass

from fastapi import Request

from .errors import ApiError
from .rate_gate import RATE_GATE, RateGate
from .replay import ReplayCache
from .signing import AuthError, verify

TIERS: dict[str, int] = {"standard": 300, "market_maker": 3_000}


@dataclass(slots=True)
class KeyRecord:
    api_key: str
    account_id: str
    secret: str
    scopes: frozenset[str]
    tier: str | None = None
    revoked: bool = False

    def limit(self, default: int) -> int:
        if self.tier is None:
            return default
        if self.tier.isascii() and self.tier.isdigit():
            return int(self.tier)
        return TIERS.get(self.tier, default)


class KeyRing:
    def __init__(self) -> None:
        self._keys: dict[str, KeyRecord] = {}
        # Last use per key since the last flush: stored in batches, not on every request.
        self._used: dict[str, int] = {}

    def used(self, api_key: str, now_ms: int) -> None:
        self._used[api_key] = now_ms

    def take_used(self) -> dict[str, int]:
        used, self._used = self._used, {}
        return used

    def put(self, record: KeyRecord) -> None:
        self._keys[record.api_key] = record

    def get(self, api_key: str) -> KeyRecord | None:
        return self._keys.get(api_key)

    def revoke(self, api_key: str) -> None:
        record = self._keys.get(api_key)
        if record is not None:
            record.revoked = True

    def set_tier(self, api_key: str, tier: str | None) -> None:
        record = self._keys.get(api_key)
        if record is not None:
            record.tier = tier


@dataclass(slots=True, frozen=True)
class Principal:
    account_id: str
    api_key: str
    scopes: frozenset[str]


def bearer(request: Request) -> str | None:
    header = request.headers.get("authorization")
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
    gate: RateGate | None = request.scope.get(RATE_GATE)
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
    request: Request, keys: KeyRing, now_ms: int, replays: ReplayCache
) -> KeyRecord:
    token = bearer(request)
    if not token:
        raise ApiError(
            "UNAUTHORIZED",
            "missing API key: send 'Authorization: Bearer <API_KEY>'",
            {"header": "Authorization"},
        )
    record = keys.get(token)
    if record is None or record.revoked:
        raise ApiError("UNAUTHORIZED", "unknown or revoked API key", {"header": "Authorization"})
    body = await request.body()
    timestamp = request.headers.get("x-bm-timestamp")
    signature = request.headers.get("x-bm-signature")
    verified_at = verify(
        secret=record.secret,
        timestamp=timestamp,
        signature=signature,
        method=request.method,
        path=request_path(request),
        body=body,
        now_ms=now_ms,
    )
    if signature is not None:
        await refuse_replay(replays, record.api_key, signature, verified_at)
    return record


async def refuse_replay(
    replays: ReplayCache, api_key: str, signature: str, timestamp_ms: int
) -> None:
    """Raise ``INVALID_SIGNATURE`` (reason ``replayed``) for a signature used before."""
    if not await replays.first_use(api_key, signature.strip().lower(), timestamp_ms):
        raise AuthError(
            "INVALID_SIGNATURE",
            "this signature was used before: sign every request anew, with a new timestamp",
            {"reason": "replayed", "timestamp": timestamp_ms},
        )
