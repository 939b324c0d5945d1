"""Writes that do not come from engine events: market descriptions, settlement evidence,
account names and API keys. Each runs in the caller's transaction.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from sqlalchemy import Connection, and_, update

from .schema import accounts, api_keys, markets, settlements

# The market columns the service owns; everything else is written only by the projection, so
# the store can never disagree with the engine about trading rules or lifecycle.
MARKET_DETAIL_FIELDS = frozenset(
    {"name", "question", "description", "resolution_source", "settlement_date"}
)


def upsert_market_details(conn: Connection, market_id: str, **fields: Any) -> None:
    """Set descriptive columns of a market already projected from its ``MarketCreated``.

    Raises ``ValueError`` for a column outside ``MARKET_DETAIL_FIELDS`` and ``LookupError``
    when the market row is not there yet (write its batch first).
    """
    unknown = set(fields) - MARKET_DETAIL_FIELDS
    if unknown:
        raise ValueError(f"not a descriptive market field: {sorted(unknown)}")
    if not fields:
        return
    result = conn.execute(update(markets).where(markets.c.market_id == market_id).values(fields))
    if result.rowcount == 0:
        raise LookupError(f"market {market_id!r} is not in the store")


def attach_settlement_evidence(
    conn: Connection, market_id: str, evidence_hash: str, evidence: str
) -> None:
    """Store the canonical evidence JSON of the proposal published with ``evidence_hash``.

    The engine only sees the hash; the service keeps the evidence itself beside it.
    """
    conn.execute(
        update(settlements)
        .where(
            and_(settlements.c.market_id == market_id, settlements.c.evidence_hash == evidence_hash)
        )
        .values(evidence=evidence)
    )
    conn.execute(
        update(markets)
        .where(and_(markets.c.market_id == market_id, markets.c.evidence_hash == evidence_hash))
        .values(evidence=evidence)
    )


def set_account_name(conn: Connection, account_id: str, name: str) -> None:
    """Rename an account (the projection names it after its id)."""
    result = conn.execute(
        update(accounts).where(accounts.c.account_id == account_id).values(name=name)
    )
    if result.rowcount == 0:
        raise LookupError(f"account {account_id!r} is not in the store")


def insert_api_key(
    conn: Connection,
    *,
    api_key: str,
    account_id: str,
    secret_encrypted: str,
    scopes: str | Iterable[str],
    created_at: int,
    label: str = "",
    tier: str | None = None,
) -> None:
    """Store a new API key. ``scopes`` as text is comma-separated (``"read,trade"``)."""
    scopes_text = scopes if isinstance(scopes, str) else ",".join(scopes)
    conn.execute(
        api_keys.insert().values(
            api_key=api_key,
            account_id=account_id,
            secret_encrypted=secret_encrypted,
            scopes=scopes_text,
            tier=tier,
            label=label,
            created_at=created_at,
            revoked_at=None,
            last_used_at=None,
        )
    )


def revoke_api_key(conn: Connection, api_key: str, time: int) -> bool:
    """Revoke a key; False when there is no such live key."""
    result = conn.execute(
        update(api_keys)
        .where(and_(api_keys.c.api_key == api_key, api_keys.c.revoked_at.is_(None)))
        .values(revoked_at=time)
    )
    return result.rowcount > 0


def touch_api_key(conn: Connection, api_key: str, time: int) -> None:
    """Record when a key was last used."""
    conn.execute(update(api_keys).where(api_keys.c.api_key == api_key).values(last_used_at=time))


def set_api_key_tier(conn: Connection, api_key: str, tier: str | None) -> bool:
    """Set a key's rate-limit tier (None: the default); False when there is no such key."""
    result = conn.execute(update(api_keys).where(api_keys.c.api_key == api_key).values(tier=tier))
    return result.rowcount > 0
