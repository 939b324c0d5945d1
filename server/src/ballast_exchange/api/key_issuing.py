"""Issuing and revoking API keys: shared by the operator's API and the account dashboard."""

from __future__ import annotations

from typing import Any

from ..access.key_ring import KeyRecord
from ..access.keys import new_api_key, parse_scopes
from ..store import records as store_writes
from ..wire.errors import ApiError, invalid_request
from ..wire.views import iso
from .state import AppState


async def issue_key(
    state: AppState, account_id: str, scopes: list[str], label: str | None, tier: str | None
) -> dict[str, Any]:
    """Create a key; the reply is the only place its secret is ever shown."""
    state.reads.require_account(account_id)
    try:
        scope_set = parse_scopes(scopes)
    except ValueError as error:
        raise invalid_request("scopes", str(error)) from None
    api_key, secret = new_api_key(state.settings.env)
    now = state.exchange.clock()
    await state.write(
        store_writes.insert_api_key,
        api_key=api_key,
        account_id=account_id,
        secret_encrypted=state.secrets.encrypt(secret),
        scopes=",".join(sorted(scope_set)),
        tier=tier,
        label=label or "",
        created_at=now,
    )
    state.keys.put(KeyRecord(api_key, account_id, secret, scope_set, tier))
    return {
        "api_key": api_key,
        "api_secret": secret,
        "account_id": account_id,
        "scopes": sorted(scope_set),
        "label": label,
        "tier": tier,
        "created_at": iso(now),
    }


async def revoke_key(state: AppState, api_key: str) -> None:
    """Revoke at once: the next request with this key is refused."""
    found = await state.write(store_writes.revoke_api_key, api_key, state.exchange.clock())
    if not found:
        raise ApiError("KEY_NOT_FOUND", f"no API key {api_key!r}", {"api_key": api_key})
    state.keys.revoke(api_key)


def key_view(row: dict[str, Any]) -> dict[str, Any]:
    """A stored key as listed: never its secret."""
    return {
        "api_key": row["api_key"],
        "account_id": row["account_id"],
        "scopes": row["scopes"].split(","),
        "label": row["label"],
        "tier": row["tier"],
        "created_at": iso(row["created_at"]),
        "revoked_at": iso(row["revoked_at"]),
        "last_used_at": iso(row["last_used_at"]),
    }
