"""Order groups as stored: one row per group (``service/order_groups.py``).

The service writes a group when it is created, reset or deleted, before it answers; a trigger is
written by the durable commit of the command whose fills caused it (``mark_triggered``, called
from ``projection.write_journal``). Every write carries the group's ``revision`` and never
replaces a later one, so writes that land out of order still leave the latest state.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, fields
from typing import Any

from sqlalchemy import Connection, and_, bindparam, delete, func, insert, select, update

from .schema import markets, orders, trades
from .schema import order_groups as groups

ACTIVE = "active"
TRIGGERED = "triggered"


@dataclass(frozen=True, slots=True)
class OrderGroupRecord:
    """A group's lasting state. Fills count toward its limit from trade ``first_trade_id`` on
    (the first trade after its creation or last reset), within its rolling window."""

    group_id: str
    account_id: str
    max_filled_size: int
    window_ms: int
    status: str
    created_at: int
    triggered_at: int | None
    reset_at: int | None
    first_trade_id: int
    revision: int

    @classmethod
    def from_row(cls, row: Mapping[Any, Any]) -> OrderGroupRecord:
        return cls(**{name: row[name] for name in _FIELDS})

    def row(self) -> dict[str, Any]:
        return {name: getattr(self, name) for name in _FIELDS}


_FIELDS = tuple(f.name for f in fields(OrderGroupRecord))


@dataclass(frozen=True, slots=True)
class GroupTrigger:
    """A group that reached its limit with a command: as the trigger left it, and the contracts
    filled in its window then. Stored with the command; the stream announces it."""

    group: OrderGroupRecord
    filled: int


def stored_groups(conn: Connection) -> list[OrderGroupRecord]:
    rows = conn.execute(select(groups).order_by(groups.c.created_at, groups.c.group_id))
    return [OrderGroupRecord.from_row(row._mapping) for row in rows]


def insert_group(conn: Connection, group: OrderGroupRecord) -> None:
    conn.execute(insert(groups).values(group.row()))


_UPDATE = (
    update(groups)
    .where(groups.c.group_id == bindparam("b_group_id"))
    .where(groups.c.revision < bindparam("b_revision"))
    .values(
        status=bindparam("b_status"),
        triggered_at=bindparam("b_triggered_at"),
        reset_at=bindparam("b_reset_at"),
        first_trade_id=bindparam("b_first_trade_id"),
        revision=bindparam("b_revision"),
    )
)


def update_groups(conn: Connection, changed: Sequence[OrderGroupRecord]) -> None:
    """Store each group's status as given, unless a later revision of it is stored already."""
    if not changed:
        return
    conn.execute(
        _UPDATE,
        [
            {
                "b_group_id": g.group_id,
                "b_status": g.status,
                "b_triggered_at": g.triggered_at,
                "b_reset_at": g.reset_at,
                "b_first_trade_id": g.first_trade_id,
                "b_revision": g.revision,
            }
            for g in changed
        ],
    )


def mark_triggered(conn: Connection, triggers: Sequence[GroupTrigger]) -> None:
    """The journal commit's half: store the groups its commands triggered."""
    update_groups(conn, [trigger.group for trigger in triggers])


def delete_group(conn: Connection, group_id: str) -> None:
    conn.execute(delete(groups).where(groups.c.group_id == group_id))


def first_trade_after(conn: Connection, since_ms: int) -> int | None:
    """The first trade id stored after ``since_ms`` (None: no trade since), market by market
    along the (market, time) index: it reads only the trades inside the window."""
    per_market = (
        select(func.min(trades.c.trade_id))
        .where(trades.c.market_id == markets.c.market_id, trades.c.created_at > since_ms)
        .scalar_subquery()
    )
    found = conn.execute(select(func.min(per_market)).select_from(markets)).scalar_one()
    return None if found is None else int(found)


def window_fills(
    conn: Connection, account_id: str, from_trade_id: int
) -> list[tuple[str, int, int, int]]:
    """``(order_group_id, trade_id, time, size)`` of every fill of the account's orders that
    were placed in a group, from trade ``from_trade_id`` on, in trade order (both sides of a
    trade the account was on twice)."""
    found: list[tuple[str, int, int, int]] = []
    for account_column, order_column in (
        (trades.c.maker_account_id, trades.c.maker_order_id),
        (trades.c.taker_account_id, trades.c.taker_order_id),
    ):
        query = (
            select(orders.c.order_group_id, trades.c.trade_id, trades.c.created_at, trades.c.size)
            .select_from(trades.join(orders, orders.c.order_id == order_column))
            .where(
                and_(
                    account_column == account_id,
                    trades.c.trade_id >= from_trade_id,
                    orders.c.order_group_id.is_not(None),
                )
            )
        )
        found += [(str(g), int(t), int(at), int(size)) for g, t, at, size in conn.execute(query)]
    found.sort(key=lambda fill: fill[1])
    return found
