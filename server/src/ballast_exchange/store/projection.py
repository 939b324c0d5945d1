"""Journal a batch of commands, and project their events into the read tables.

Two halves (docs/adr/0013): ``write_journal`` is the durable commit an acknowledgement waits
for (the command rows, compactly encoded, and nothing else that can wait); ``project`` folds the
events into the query tables behind it, moving a watermark in the same transaction, so after a
crash projection resumes from the watermark. A batch may carry thousands of events; ``project``
folds them in Python first (several fills of one order become one final row) and then writes
each table with one executemany (psycopg 3 pipelines it into a single round trip).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from functools import lru_cache
from typing import Any

from sqlalchemy import (
    BigInteger,
    Connection,
    Table,
    Text,
    bindparam,
    func,
    select,
    text,
    update,
)

from ballast_exchange.domain import commands as cmd
from ballast_exchange.domain import events as ev

from .database import write_epoch
from .journal import encode_command
from .order_groups import GroupTrigger, mark_triggered
from .order_records import OrderRecord, TradeRecord
from .records import upsert_market_details as upsert_market_details  # the caller's half
from .schema import (
    accounts,
    guarded_orders,
    journal,
    ledger_entries,
    markets,
    orders,
    position_settlements,
    projection_state,
    settlements,
    trades,
)

MICRO = 1_000_000


@dataclass(slots=True)
class JournalItem:
    """One accepted command and the events the engine returned for it.

    ``last_seq`` is the engine's event seq after the command; left as None it is taken from
    the last event (or, for a command without events, carried over from before). ``guarded``
    marks a placement under cancel-on-disconnect: if it rests, it is stored as guarded.
    ``group_triggers`` are the order groups its fills took to their limit, stored with it.
    """

    command_no: int
    command: cmd.Command
    events: list[ev.Event]
    time: int
    last_seq: int | None = None
    guarded: bool = False
    group_triggers: tuple[GroupTrigger, ...] = ()
    #: The journal row's kind and payload, once ``write_journal`` encoded them (the bus to
    #: gateways sends the same, without encoding the command again).
    encoded: tuple[str, str] | None = None


@dataclass(slots=True)
class _OrderPatch:
    """The net change to an order row written before this batch.

    ``filled`` and ``remaining`` are written as ``column * keep + delta``: keep 1 adds fills
    to the stored value, keep 0 (after an amend or close reported the absolute value) replaces
    it. One statement shape for every patch keeps the update a single executemany.
    """

    updated_at: int
    price: int | None = None
    size: int | None = None
    status: str | None = None
    reason: str | None = None
    keep_filled: int = 1
    d_filled: int = 0
    keep_remaining: int = 1
    d_remaining: int = 0


@dataclass(slots=True)
class _Fold:
    """Everything one batch writes, accumulated in event order."""

    accounts: list[dict[str, Any]] = field(default_factory=list)
    new_markets: dict[str, dict[str, Any]] = field(default_factory=dict)
    market_patches: dict[str, dict[str, Any]] = field(default_factory=dict)
    new_settlements: list[dict[str, Any]] = field(default_factory=list)
    # The batch's own still-proposed settlement per market, decided in place if it is decided.
    open_settlements: dict[str, dict[str, Any]] = field(default_factory=dict)
    # Decisions on a proposal stored before this batch (at most one per market and batch).
    decisions: dict[str, dict[str, Any]] = field(default_factory=dict)
    new_orders: dict[int, OrderRecord] = field(default_factory=dict)
    order_patches: dict[int, _OrderPatch] = field(default_factory=dict)
    trades: list[dict[str, Any]] = field(default_factory=list)
    ledger: list[dict[str, Any]] = field(default_factory=list)
    reservations: _ReservationOrders = field(default_factory=lambda: _ReservationOrders())
    position_settlements: list[dict[str, Any]] = field(default_factory=list)


def write_batch(conn: Connection, items: Sequence[JournalItem]) -> None:
    """Journal the items and project them, in one transaction (tools and tests; the exchange
    journals in its durable commit and projects behind it)."""
    write_journal(conn, items)
    project(conn, items)


def write_journal(conn: Connection, items: Sequence[JournalItem]) -> None:
    """The durable half, in the caller's transaction: one journal row per command, the guard of
    each resting order placed under cancel-on-disconnect (it must be as durable as the order,
    and the journal holds commands only), and each order group a command triggered (as
    durable as the fills that caused it)."""
    if not items:
        return
    rows = []
    guards: list[dict[str, Any]] = []
    triggers: list[GroupTrigger] = []
    last_seq: int | None = None
    epoch = write_epoch(conn)
    for item in items:
        if item.last_seq is not None:
            last_seq = item.last_seq
        elif item.events:
            last_seq = item.events[-1].seq
        elif last_seq is None:
            # Only a batch that opens with an event-less command needs the stored position.
            last_seq = conn.execute(
                select(func.coalesce(func.max(journal.c.last_seq), 0))
            ).scalar_one()
        kind, payload = item.encoded = encode_command(item.command)
        rows.append(
            {
                "command_no": item.command_no,
                "kind": kind,
                "payload": payload,
                "time": item.time,
                "last_seq": last_seq,
                "epoch": epoch,
            }
        )
        if item.guarded:
            _guard(guards, item)
        if item.group_triggers:
            triggers += item.group_triggers
    _insert_many(conn, journal, rows)
    _insert_many(conn, guarded_orders, guards)
    mark_triggered(conn, triggers)


def project(conn: Connection, items: Sequence[JournalItem]) -> None:
    """Fold the items' events into the query tables and move the projection's watermark to
    the last of them, in the caller's transaction: the tables and the watermark agree."""
    if not items:
        return
    fold = _Fold()
    for item in items:
        for event in item.events:
            handler = _HANDLERS.get(type(event))
            if handler is not None:
                handler(fold, item, event)
    _flush(conn, fold)
    through = items[-1].command_no
    moved = conn.execute(
        update(projection_state).where(projection_state.c.id == 1).values(command_no=through)
    )
    if moved.rowcount == 0:  # a schema made without the migration that seeds the row
        conn.execute(projection_state.insert().values(id=1, command_no=through))


def projected_through(conn: Connection) -> int:
    """The last command whose events the query tables hold."""
    found = conn.execute(
        select(projection_state.c.command_no).where(projection_state.c.id == 1)
    ).scalar_one_or_none()
    return int(found) if found is not None else 0


def _guard(guards: list[dict[str, Any]], item: JournalItem) -> None:
    accepted = item.events[0] if item.events else None
    if not isinstance(accepted, ev.OrderAccepted):
        return
    order_id = accepted.order_id
    closed = any(isinstance(e, ev.OrderClosed) and e.order_id == order_id for e in item.events)
    if not closed:
        guards.append({"order_id": order_id, "account_id": accepted.account_id})


# ---- folding events ---------------------------------------------------------------------------


def _account_created(fold: _Fold, _item: JournalItem, e: ev.Event) -> None:
    assert isinstance(e, ev.AccountCreated)
    fold.accounts.append({"account_id": e.account_id, "name": e.account_id, "created_at": e.time})


def tick_size_text(tick_value: int) -> str:
    """The tick as a decimal string: ``1000`` micro-USDC per tick → ``"0.001"``."""
    return format((Decimal(tick_value) / MICRO).normalize(), "f")


def _market_created(fold: _Fold, item: JournalItem, e: ev.Event) -> None:
    assert isinstance(e, ev.MarketCreated)
    c = item.command
    if not isinstance(c, cmd.CreateMarket) or c.market_id != e.market_id:
        raise ValueError(f"MarketCreated for {e.market_id!r} must come from its CreateMarket")
    fold.new_markets[e.market_id] = {
        "market_id": e.market_id,
        "name": e.market_id,
        "kind": e.kind,
        "question": None,
        "description": None,
        "resolution_source": None,
        "settlement_date": None,
        "category": None,
        "tags": None,
        "series_id": None,
        "series_title": None,
        "event_id": None,
        "event_title": None,
        "close_time": e.close_time,
        "tick_size": tick_size_text(e.tick_value),
        "tick_value": e.tick_value,
        "floor": e.floor,
        "cap": e.cap,
        "min_size": c.min_size,
        "max_order_size": c.max_order_size,
        "max_position": c.max_position,
        "maker_fee_bps": c.maker_fee_bps,
        "taker_fee_bps": c.taker_fee_bps,
        # A new market is pending until a status change opens it.
        "status": "pending",
        "created_at": e.time,
        "updated_at": e.time,
        "settlement_value": None,
        "evidence_hash": None,
        "proposer": None,
        "proposed_at": None,
        "settled_at": None,
    }


def _patch_market(fold: _Fold, market_id: str, time: int, **values: Any) -> None:
    values["updated_at"] = time
    row = fold.new_markets.get(market_id)
    if row is not None:
        row.update(values)
    else:
        fold.market_patches.setdefault(market_id, {}).update(values)


def _market_status(fold: _Fold, _item: JournalItem, e: ev.Event) -> None:
    assert isinstance(e, ev.MarketStatusChanged)
    if e.new_status == "settled":
        _patch_market(fold, e.market_id, e.time, status=e.new_status, settled_at=e.time)
    else:
        _patch_market(fold, e.market_id, e.time, status=e.new_status)


def _settlement_proposed(fold: _Fold, _item: JournalItem, e: ev.Event) -> None:
    assert isinstance(e, ev.SettlementProposed)
    row = {
        "market_id": e.market_id,
        "value": e.value,
        "evidence_hash": e.evidence_hash,
        "proposer": e.proposer,
        "proposed_at": e.time,
        "final_after": e.final_after,
        "outcome": "proposed",
        "decided_by": None,
        "decided_at": None,
    }
    fold.new_settlements.append(row)
    fold.open_settlements[e.market_id] = row
    _patch_market(
        fold,
        e.market_id,
        e.time,
        settlement_value=e.value,
        evidence_hash=e.evidence_hash,
        proposer=e.proposer,
        proposed_at=e.time,
    )


def _decide(fold: _Fold, market_id: str, outcome: str, by: str | None, time: int) -> None:
    decision = {"outcome": outcome, "decided_by": by, "decided_at": time}
    row = fold.open_settlements.pop(market_id, None)
    if row is not None:
        row.update(decision)
    else:
        fold.decisions[market_id] = decision


def _settlement_overturned(fold: _Fold, _item: JournalItem, e: ev.Event) -> None:
    assert isinstance(e, ev.SettlementOverturned)
    _decide(fold, e.market_id, "overturned", e.by, e.time)
    # The market has no current settlement any more; the history keeps the overturned one.
    _patch_market(
        fold,
        e.market_id,
        e.time,
        settlement_value=None,
        evidence_hash=None,
        proposer=None,
        proposed_at=None,
    )


def _settlement_finalized(fold: _Fold, item: JournalItem, e: ev.Event) -> None:
    assert isinstance(e, ev.SettlementFinalized)
    _decide(fold, e.market_id, "finalized", None, e.time)
    _patch_market(fold, e.market_id, e.time, settlement_value=e.value, settled_at=e.time)
    _paid_positions(fold, item, e)


# The finalize's movements per position: its collateral back, then its gain or loss.
SETTLEMENT_KINDS = ("settlement", "settlement_pnl")


def _paid_positions(fold: _Fold, item: JournalItem, e: ev.SettlementFinalized) -> None:
    """One row per position the finalize paid out, from the command's own events: each
    position's settlement entries, then the PositionChanged that zeroes it. Its size is read
    from its fills when the batch is written (the events carry only the size after)."""
    ref = f"settle:{e.market_id}"
    moved: dict[str, list[int]] = {}  # account: [collateral returned, settlement gain]
    for event in item.events:
        if isinstance(event, ev.LedgerEntry):
            if event.ref != ref or event.kind not in SETTLEMENT_KINDS:
                continue
            account_id, _ = ledger_owner(event.debit, event.credit)
            if account_id is None:
                continue
            parts = moved.setdefault(account_id, [0, 0])
            if event.kind == "settlement":
                parts[0] += event.amount
            elif event.credit.startswith("cash:"):
                parts[1] += event.amount
            else:
                parts[1] -= event.amount
        elif isinstance(event, ev.PositionChanged) and event.market_id == e.market_id:
            cost, gain = moved.pop(event.account_id, (0, 0))
            fold.position_settlements.append(
                {
                    "seq": event.seq,
                    "account_id": event.account_id,
                    "market_id": e.market_id,
                    "value": e.value,
                    "size": 0,  # filled in by _flush from the fills
                    "cost": cost,
                    "payout": cost + gain,
                    "realized_pnl": event.realized_pnl,
                    "settled_at": e.time,
                }
            )


def _order_accepted(fold: _Fold, _item: JournalItem, e: ev.Event) -> None:
    assert isinstance(e, ev.OrderAccepted)
    fold.new_orders[e.order_id] = OrderRecord.accepted(e)


def _order_patch(fold: _Fold, order_id: int, time: int) -> _OrderPatch:
    patch = fold.order_patches.get(order_id)
    if patch is None:
        patch = fold.order_patches[order_id] = _OrderPatch(time)
    else:
        patch.updated_at = time
    return patch


def _fill(fold: _Fold, order_id: int, e: ev.Trade) -> None:
    row = fold.new_orders.get(order_id)
    if row is not None:
        row.fold(e)
        return
    patch = _order_patch(fold, order_id, e.time)
    patch.d_filled += e.size
    patch.d_remaining -= e.size


def _trade(fold: _Fold, _item: JournalItem, e: ev.Event) -> None:
    assert isinstance(e, ev.Trade)
    fold.trades.append(TradeRecord.of(e).row())
    _fill(fold, e.maker_order_id, e)
    _fill(fold, e.taker_order_id, e)


def _order_amended(fold: _Fold, _item: JournalItem, e: ev.Event) -> None:
    assert isinstance(e, ev.OrderAmended)
    row = fold.new_orders.get(e.order_id)
    if row is not None:
        row.fold(e)
        return
    patch = _order_patch(fold, e.order_id, e.time)
    patch.price = e.price
    patch.size = e.size
    patch.keep_remaining, patch.d_remaining = 0, e.remaining


def _order_closed(fold: _Fold, _item: JournalItem, e: ev.Event) -> None:
    assert isinstance(e, ev.OrderClosed)
    row = fold.new_orders.get(e.order_id)
    if row is not None:
        row.fold(e)
        return
    patch = _order_patch(fold, e.order_id, e.time)
    patch.status = e.status
    patch.reason = e.reason
    patch.keep_filled, patch.d_filled = 0, e.filled
    patch.keep_remaining, patch.d_remaining = 0, e.remaining


@lru_cache(maxsize=65_536)
def ledger_owner(debit: str, credit: str) -> tuple[str | None, str | None]:
    """The trader account and the market a ledger movement concerns, from its two keys.

    ``cash:A`` and ``orders:A`` name the account outright; ``collateral:A:M`` names both (split
    after the account when the other side already named it, so market ids may hold colons);
    ``clearing:M`` and ``fees:M`` name the market.
    """
    account: str | None = None
    market: str | None = None
    for key in (debit, credit):
        prefix, _, rest = key.partition(":")
        if prefix in ("cash", "orders"):
            account = rest
    for key in (debit, credit):
        prefix, _, rest = key.partition(":")
        if prefix == "collateral":
            if account is not None and rest.startswith(account + ":"):
                market = rest[len(account) + 1 :]
            else:
                owner, _, market = rest.partition(":")
                account = account or owner
        elif prefix in ("clearing", "fees"):
            market = rest
    return account, market


# The engine's ref for a fill's movements; the API names the trade ``trd_7`` (wire/refs.py).
ENGINE_TRADE_REF = "trd:"
TRADE_REF = "trd_"
ORDER_REF = "ord_"
RESERVATION_KINDS = ("reserve", "release")


def ledger_ref(ref: str | None) -> str | None:
    """A stored ledger ref as the API shows it: the ids the API uses elsewhere (``trd_7``, not
    the engine's ``trd:7``, which rows projected before this rule still hold), None for none."""
    if not ref:
        return None
    if ref.startswith(ENGINE_TRADE_REF):
        return TRADE_REF + ref[len(ENGINE_TRADE_REF) :]
    return ref


@dataclass(slots=True)
class _ReservationOrders:
    """Which order each reservation entry is for. The engine books ``reserve`` and ``release``
    between an account's cash and its orders with no market and no ref; they follow the
    order event that caused them (placed, amended, filled, closed) in the same command, so the
    last such event of that account names the market and the order."""

    item: JournalItem | None = None
    scanned: int = 0
    last: dict[str, tuple[str, int]] = field(default_factory=dict)  # account: (market, order)

    def of(self, item: JournalItem, entry: ev.LedgerEntry, account_id: str) -> tuple[str, int]:
        if item is not self.item:
            self.item, self.scanned, self.last = item, 0, {}
        events = item.events
        while self.scanned < len(events) and events[self.scanned] is not entry:
            self._note(events[self.scanned])
            self.scanned += 1
        return self.last.get(account_id, ("", 0))

    def _note(self, e: ev.Event) -> None:
        if isinstance(e, ev.OrderAccepted | ev.OrderAmended | ev.OrderClosed):
            self.last[e.account_id] = (e.market_id, e.order_id)
        elif isinstance(e, ev.Trade):
            self.last[e.maker_account_id] = (e.market_id, e.maker_order_id)
            self.last[e.taker_account_id] = (e.market_id, e.taker_order_id)


def _ledger(fold: _Fold, item: JournalItem, e: ev.Event) -> None:
    assert isinstance(e, ev.LedgerEntry)
    account_id, market_id = ledger_owner(e.debit, e.credit)
    ref = ledger_ref(e.ref)
    if e.kind in RESERVATION_KINDS and market_id is None and ref is None and account_id:
        market, order_id = fold.reservations.of(item, e, account_id)
        if market:
            market_id, ref = market, f"{ORDER_REF}{order_id}"
    fold.ledger.append(
        {
            "seq": e.seq,
            "account_id": account_id,
            "market_id": market_id,
            "debit": e.debit,
            "credit": e.credit,
            "amount": e.amount,
            "kind": e.kind,
            "ref": ref or "",
            "created_at": e.time,
        }
    )


_HANDLERS: dict[type[ev.Event], Callable[[_Fold, JournalItem, ev.Event], None]] = {
    ev.AccountCreated: _account_created,
    ev.MarketCreated: _market_created,
    ev.MarketStatusChanged: _market_status,
    ev.SettlementProposed: _settlement_proposed,
    ev.SettlementOverturned: _settlement_overturned,
    ev.SettlementFinalized: _settlement_finalized,
    ev.OrderAccepted: _order_accepted,
    ev.Trade: _trade,
    ev.OrderAmended: _order_amended,
    ev.OrderClosed: _order_closed,
    ev.LedgerEntry: _ledger,
    # PositionChanged and BookLevelChanged are state the engine rebuilds on replay; the store
    # keeps no table for them.
}


# ---- writing ----------------------------------------------------------------------------------

_ORDER_UPDATE = (
    update(orders)
    .where(orders.c.order_id == bindparam("b_order_id"))
    .values(
        price=func.coalesce(bindparam("b_price", type_=BigInteger), orders.c.price),
        size=func.coalesce(bindparam("b_size", type_=BigInteger), orders.c.size),
        filled=orders.c.filled * bindparam("b_keep_filled", type_=BigInteger)
        + bindparam("b_d_filled", type_=BigInteger),
        remaining=orders.c.remaining * bindparam("b_keep_remaining", type_=BigInteger)
        + bindparam("b_d_remaining", type_=BigInteger),
        status=func.coalesce(bindparam("b_status", type_=Text), orders.c.status),
        # Only a close sets a reason, and an open order has none to keep.
        reason=func.coalesce(bindparam("b_reason", type_=Text), orders.c.reason),
        updated_at=bindparam("b_updated_at", type_=BigInteger),
    )
)

_SETTLEMENT_DECISION = (
    update(settlements)
    .where(settlements.c.market_id == bindparam("b_market_id"))
    .where(settlements.c.outcome == "proposed")
    .values(
        outcome=bindparam("b_outcome"),
        decided_by=bindparam("b_decided_by"),
        decided_at=bindparam("b_decided_at"),
    )
)


# Net contracts bought per account in one market: a buy is the taker's on a taker buy and the
# maker's on a taker sell.
_NET_FILLS = text(
    "SELECT account_id, SUM(size) FROM ("
    " SELECT taker_account_id AS account_id,"
    "  CASE WHEN taker_side = 'buy' THEN size ELSE -size END AS size"
    "  FROM trades WHERE market_id = :market_id"
    " UNION ALL"
    " SELECT maker_account_id,"
    "  CASE WHEN taker_side = 'buy' THEN -size ELSE size END"
    "  FROM trades WHERE market_id = :market_id"
    ") AS fills GROUP BY account_id"
)


def _insert_many(conn: Connection, table: Table, rows: list[dict[str, Any]]) -> None:
    """One executemany of ``rows`` (dicts with every column of ``table``).

    The INSERT is compiled once per dialect by SQLAlchemy and handed to the driver with the
    rows as they are: per-row bind processing dominated the batch's Python time, and every
    value here is already a plain int, str, bool or None that both drivers take directly.
    """
    if not rows:
        return
    dialect = conn.dialect
    key = (dialect.name, dialect.driver, table.name)
    cached = _COMPILED_INSERTS.get(key)
    if cached is None:
        compiled = table.insert().compile(dialect=dialect, column_keys=list(table.c.keys()))
        names = tuple(compiled.positiontup or ()) if dialect.positional else None
        cached = _COMPILED_INSERTS[key] = (compiled.string, names)
    sql, names = cached
    if names is not None:
        conn.exec_driver_sql(sql, [tuple(row[n] for n in names) for row in rows])
    else:
        conn.exec_driver_sql(sql, rows)


_COMPILED_INSERTS: dict[tuple[str, str, str], tuple[str, tuple[str, ...] | None]] = {}


def _flush(conn: Connection, fold: _Fold) -> None:
    # Parents before children: the foreign keys of orders, trades and settlements hold at
    # every statement.
    _insert_many(conn, accounts, fold.accounts)
    _insert_many(conn, markets, list(fold.new_markets.values()))
    _update_markets(conn, fold.market_patches)
    if fold.decisions:
        conn.execute(
            _SETTLEMENT_DECISION,
            [
                {
                    "b_market_id": market_id,
                    "b_outcome": d["outcome"],
                    "b_decided_by": d["decided_by"],
                    "b_decided_at": d["decided_at"],
                }
                for market_id, d in fold.decisions.items()
            ],
        )
    if fold.new_settlements:  # the id comes from the database: not every column is given
        conn.execute(settlements.insert(), fold.new_settlements)
    _insert_many(conn, orders, [record.row() for record in fold.new_orders.values()])
    if fold.order_patches:
        conn.execute(
            _ORDER_UPDATE,
            [
                {
                    "b_order_id": order_id,
                    "b_price": p.price,
                    "b_size": p.size,
                    "b_keep_filled": p.keep_filled,
                    "b_d_filled": p.d_filled,
                    "b_keep_remaining": p.keep_remaining,
                    "b_d_remaining": p.d_remaining,
                    "b_status": p.status,
                    "b_reason": p.reason,
                    "b_updated_at": p.updated_at,
                }
                for order_id, p in fold.order_patches.items()
            ],
        )
    _insert_many(conn, trades, fold.trades)
    _insert_many(conn, ledger_entries, fold.ledger)
    if fold.position_settlements:
        _size_settled(conn, fold.position_settlements)
        _insert_many(conn, position_settlements, fold.position_settlements)


def _size_settled(conn: Connection, rows: list[dict[str, Any]]) -> None:
    """Set each settled position's size to its net fills in the market (every fill of a
    settled market is stored by now: the batch's own trades were inserted first)."""
    for market_id in {row["market_id"] for row in rows}:
        held = {
            str(account): int(size)
            for account, size in conn.execute(_NET_FILLS, {"market_id": market_id})
        }
        for row in rows:
            if row["market_id"] == market_id:
                row["size"] = int(held.get(row["account_id"], 0))


def _update_markets(conn: Connection, patches: dict[str, dict[str, Any]]) -> None:
    """One executemany per set of changed columns (market events are few; shapes fewer)."""
    by_shape: dict[tuple[str, ...], list[dict[str, Any]]] = {}
    for market_id, values in patches.items():
        shape = tuple(sorted(values))
        params = {f"b_{name}": values[name] for name in shape}
        params["b_market_id"] = market_id
        by_shape.setdefault(shape, []).append(params)
    for shape, rows in by_shape.items():
        statement = (
            update(markets)
            .where(markets.c.market_id == bindparam("b_market_id"))
            .values({name: bindparam(f"b_{name}", type_=markets.c[name].type) for name in shape})
        )
        conn.execute(statement, rows)
