"""Writes that do not come from engine events: market descriptions, settlement evidence,
account names and API keys. Each runs in the caller's transaction.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from sqlalchemy import Connection, and_, bindparam, delete, select, update
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from .schema import accounts, api_keys, evidence, guarded_orders, markets

# The market columns the service owns; everything else is written only by the projection, so
# the store can never disagree with the engine about trading rules or lifecycle.
MARKET_DETAIL_FIELDS = frozenset(
    {
        "name",
        "question",
        "description",
        "resolution_source",
        "settlement_date",
        "category",
        "tags",  # a JSON array of strings
        "series_id",
        "series_title",
        "event_id",
        "event_title",
    }
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


def put_evidence(conn: Connection, evidence_hash: str, body: str, now: int) -> None:
    """Keep settlement evidence under its hash; storing the same evidence twice is a no-op.

    One statement, not a read then a write: on SQLite a transaction that reads first cannot
    take the write lock while the committer writes, and fails at once instead of waiting.
    """
    row = {"evidence_hash": evidence_hash, "body": body, "created_at": now}
    dialect_insert = postgresql_insert if conn.dialect.name == "postgresql" else sqlite_insert
    conn.execute(
        dialect_insert(evidence)
        .values(row)
        .on_conflict_do_nothing(index_elements=["evidence_hash"])
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


def touch_api_keys(conn: Connection, used: dict[str, int]) -> None:
    """Record when keys were last used (``api_key`` → time)."""
    if used:
        conn.execute(
            update(api_keys)
            .where(api_keys.c.api_key == bindparam("b_api_key"))
            .values(last_used_at=bindparam("b_time")),
            [{"b_api_key": key, "b_time": time} for key, time in used.items()],
        )


def set_api_key_tier(conn: Connection, api_key: str, tier: str | None) -> bool:
    """Set a key's rate-limit tier (None: the default); False when there is no such key."""
    result = conn.execute(update(api_keys).where(api_keys.c.api_key == api_key).values(tier=tier))
    return result.rowcount > 0


def stored_guards(conn: Connection) -> list[tuple[int, str]]:
    """``(order_id, account_id)`` of every order stored as under cancel-on-disconnect."""
    rows = conn.execute(
        select(guarded_orders.c.order_id, guarded_orders.c.account_id).order_by(
            guarded_orders.c.order_id
        )
    )
    return [(int(order_id), str(account_id)) for order_id, account_id in rows]


def clear_guards(conn: Connection, order_ids: Iterable[int]) -> None:
    """Forget guards whose orders are no longer open (canceled at recovery, or finished)."""
    ids = list(order_ids)
    if ids:
        conn.execute(delete(guarded_orders).where(guarded_orders.c.order_id.in_(ids)))
