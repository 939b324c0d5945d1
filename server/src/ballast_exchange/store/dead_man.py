"""Armed dead-man switches as stored: one row per API key (``service/dead_man.py``)."""

from __future__ import annotations

from sqlalchemy import Connection, delete, insert, select

from .schema import dead_man_switches as switches


def stored_switches(conn: Connection) -> list[tuple[str, str, int, int]]:
    """``(api_key, account_id, timeout_ms, deadline)`` of every armed switch."""
    rows = conn.execute(
        select(
            switches.c.api_key, switches.c.account_id, switches.c.timeout_ms, switches.c.deadline
        ).order_by(switches.c.deadline, switches.c.api_key)
    )
    return [(str(k), str(a), int(t), int(d)) for k, a, t, d in rows]


def put_switch(
    conn: Connection, api_key: str, account_id: str, timeout_ms: int, deadline: int
) -> None:
    """Arm (or move the deadline of) the key's switch."""
    conn.execute(delete(switches).where(switches.c.api_key == api_key))
    conn.execute(
        insert(switches).values(
            api_key=api_key, account_id=account_id, timeout_ms=timeout_ms, deadline=deadline
        )
    )


def drop_switch(conn: Connection, api_key: str, deadline: int | None = None) -> None:
    """Disarm the key's switch; with ``deadline``, only if it still has that one (a switch that
    fired is forgotten, unless a heartbeat re-armed it meanwhile)."""
    where = switches.c.api_key == api_key
    if deadline is not None:
        where = where & (switches.c.deadline == deadline)
    conn.execute(delete(switches).where(where))
