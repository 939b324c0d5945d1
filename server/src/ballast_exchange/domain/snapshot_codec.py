"""The engine's whole state as compact, versioned, checksummed bytes, and back (issue 17).

``domain.snapshot`` says *what* a state is (plain data whose SHA-256 is the state digest); this
module stores the same fields compactly enough for a million resting orders. The layout:

- a fixed header: ``MAGIC``, the format ``VERSION``, the command number covered, the length of
  the payload and its SHA-256 (the *digest*: equal payloads, equal states);
- the payload, zlib-compressed: a JSON skeleton (scalars, markets, string columns, the enum
  tables) and little-endian int64 columns for everything per order, position and ledger key.

Reading checks the magic, the version, the payload's length and digest before trusting a byte;
a snapshot of a version this build does not know raises ``SnapshotUnreadable`` (the caller then
replays the journal instead), never a state misread. Version 1 (before orders carried an order
group) is still read: its orders have none, and its digest is checked in its own form
(``state_digest(..., version=1)``). Restoring goes through the selected twin: the compiled one
takes the order columns straight into its books (``Engine._restore_orders``).

Alongside the engine the payload carries the client order ids bound for good to their first
order (the service's duplicate check), which the engine forgets once an order closes.
"""

from __future__ import annotations

import array
import hashlib
import json
import struct
import sys
import zlib
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from .snapshot import paused_collection
from .snapshot import restore as restore_reference
from .types import OrderType, SelfTradePrevention, Side, TimeInForce

MAGIC = b"BALLSNAP"
VERSION = 2  # 2: each market's orders carry their order group ids
READABLE = (1, 2)
_HEADER = struct.Struct("<8sHHQQ32s")  # magic, version, reserved, command_no, length, digest
HEADER_BYTES = _HEADER.size
COMPRESSION_LEVEL = 1  # higher levels cost CPU for little size on these columns

# The enum tables travel in the payload: an index means the member whose value is stored there.
SIDES = tuple(Side)
ORDER_TYPES = tuple(OrderType)
TIFS = tuple(TimeInForce)
STPS = tuple(SelfTradePrevention)
_ORDER_COLUMNS = (
    "order_id",
    "account",
    "price",
    "size",
    "remaining",
    "filled",
    "expire_at",
    "created_at",
    "flags",
)
_POSITION_COLUMNS = ("account", "size", "collateral", "realized_pnl", "held_buy", "held_sell")
_MARKET_FIELDS = (
    "market_id",
    "kind",
    "tick_value",
    "floor",
    "cap",
    "close_time",
    "min_size",
    "max_order_size",
    "max_position",
    "maker_fee_bps",
    "taker_fee_bps",
    "status",
    "open_interest",
    "last_price",
)
_POSITION_FIELDS = ("account_id", *_POSITION_COLUMNS[1:])
_SETTLEMENT_FIELDS = ("value", "evidence_hash", "proposer", "proposed_at", "final_after")
_POST_ONLY, _REDUCE_ONLY, _HAS_EXPIRY = 1 << 16, 1 << 17, 1 << 18

ClientOrders = Mapping[tuple[str, str], int]


class SnapshotUnreadable(ValueError):
    """Bytes that are not a snapshot this code can read: corrupt, truncated or another version."""


class SnapshotUnsupported(ValueError):
    """A state this format cannot hold (a figure past 64 bits): take none, replay instead."""


@dataclass(frozen=True, slots=True)
class Encoded:
    """A snapshot's bytes and what describes them."""

    data: bytes
    command_no: int
    digest: str  # SHA-256 of the uncompressed payload: the state's identity
    checksum: str  # SHA-256 of ``data`` as stored: storage's integrity
    payload_bytes: int


@dataclass(frozen=True, slots=True)
class Header:
    version: int
    command_no: int
    payload_bytes: int
    digest: str


def encode(engine: Any, client_orders: ClientOrders, command_no: int) -> Encoded:
    """The engine (either twin) and the bound client order ids, after command ``command_no``."""
    payload = payload_of(engine, client_orders)
    digest = hashlib.sha256(payload).digest()
    head = _HEADER.pack(MAGIC, VERSION, 0, command_no, len(payload), digest)
    data = head + zlib.compress(payload, COMPRESSION_LEVEL)
    return Encoded(data, command_no, digest.hex(), hashlib.sha256(data).hexdigest(), len(payload))


def state_digest(engine: Any, client_orders: ClientOrders, version: int = VERSION) -> str:
    """The digest ``encode`` would give this state (the auditor compares it with a replay's);
    with ``version``, the digest a snapshot of that older format records for it."""
    return hashlib.sha256(payload_of(engine, client_orders, version)).hexdigest()


def read_header(data: bytes) -> Header:
    if len(data) < HEADER_BYTES:
        raise SnapshotUnreadable("shorter than a snapshot header")
    magic, version, _, command_no, length, digest = _HEADER.unpack_from(data)
    if magic != MAGIC:
        raise SnapshotUnreadable("not a Ballast snapshot (bad magic)")
    if version not in READABLE:
        raise SnapshotUnreadable(
            f"snapshot format version {version}; this build reads {', '.join(map(str, READABLE))}"
        )
    return Header(version, command_no, length, digest.hex())


def decode(
    data: bytes,
    new_engine: Callable[[dict[str, Any]], Any] | None = None,
) -> tuple[Any, dict[tuple[str, str], int], Header]:
    """The engine, bound client order ids and header from ``encode``'s bytes.

    ``new_engine`` restores the ``domain.snapshot`` form minus the orders (the selected twin's
    ``restore``); a compiled engine then takes its orders as columns. Raises
    ``SnapshotUnreadable`` unless the payload is whole, of this version and matches its digest.
    """
    header = read_header(data)
    try:
        payload = zlib.decompress(memoryview(data)[HEADER_BYTES:])
    except zlib.error as error:
        raise SnapshotUnreadable(f"payload does not decompress: {error}") from None
    if len(payload) != header.payload_bytes:
        raise SnapshotUnreadable("payload length differs from the header's")
    if hashlib.sha256(payload).hexdigest() != header.digest:
        raise SnapshotUnreadable("payload digest differs from the header's")
    try:
        with paused_collection():
            skeleton, columns = _split(payload)
            engine, client_orders = _restore(
                skeleton, columns, new_engine or restore_reference, header.version
            )
    except (KeyError, IndexError, TypeError, ValueError, struct.error) as error:
        # Digest-checked bytes this build cannot place: never half a state.
        raise SnapshotUnreadable(f"payload does not describe a state: {error!r}") from None
    return engine, client_orders, header


# ------------------------------------------------------------------------------ writing


def payload_of(engine: Any, client_orders: ClientOrders, version: int = VERSION) -> bytes:
    with paused_collection():
        return _payload_of(engine, client_orders, version)


def _payload_of(engine: Any, client_orders: ClientOrders, version: int) -> bytes:
    if version not in READABLE:
        raise ValueError(f"no snapshot format {version}")
    columns: list[array.array[int]] = []

    def column(values: Iterable[int] | array.array[int]) -> int:
        try:
            col = values if isinstance(values, array.array) else array.array("q", values)
        except OverflowError:
            raise SnapshotUnsupported("a figure does not fit in 64 bits") from None
        columns.append(col)
        return len(columns) - 1

    accounts = list(engine.accounts)
    index = {account_id: i for i, account_id in enumerate(accounts)}
    balances = sorted(engine.ledger.balances.items())
    markets = []
    for market in engine.markets.values():
        data: dict[str, Any] = {f: _plain(getattr(market, f)) for f in _MARKET_FIELDS}
        s = market.settlement
        data["settlement"] = (
            None
            if s is None
            else [s.value, s.evidence_hash, s.proposer, s.proposed_at, s.final_after]
        )
        data["positions"] = [column(c) for c in position_columns(engine, market, index)]
        order_columns, coids, gids = open_order_columns(engine, market, index)
        data["orders"] = [column(c) for c in order_columns]
        data["client_order_ids"] = coids
        if version >= 2:
            data["order_group_ids"] = gids
        elif any(gid is not None for gid in gids):
            raise SnapshotUnsupported("format 1 has no order groups")
        markets.append(data)
    bound = list(client_orders.items())
    skeleton = {
        "seq": engine.seq,
        "next_order_id": engine.next_order_id,
        "next_trade_id": engine.next_trade_id,
        "enums": {
            "side": [m.value for m in SIDES],
            "order_type": [m.value for m in ORDER_TYPES],
            "time_in_force": [m.value for m in TIFS],
            "stp": [m.value for m in STPS],
        },
        "accounts": accounts,
        "ledger": [[k for k, _ in balances], column(v for _, v in balances)],
        "markets": markets,
        "client_orders": [
            column(index[account_id] for (account_id, _), _ in bound),
            [client_order_id for (_, client_order_id), _ in bound],
            column(order_id for _, order_id in bound),
        ],
    }
    text = json.dumps(skeleton, separators=(",", ":"), ensure_ascii=False).encode()
    parts = [struct.pack("<QI", len(text), len(columns)), text]
    parts.append(struct.pack(f"<{len(columns)}Q", *(len(c) for c in columns)))
    for col in columns:
        if sys.byteorder != "little":
            col = array.array("q", col)
            col.byteswap()
        parts.append(col.tobytes())
    return b"".join(parts)


OrderColumns = tuple[list["array.array[int]"], list[str | None], list[str | None]]


def open_order_columns(engine: Any, market: Any, index: dict[str, int]) -> OrderColumns:
    """A market's open orders as the snapshot's columns (``_ORDER_COLUMNS``, accounts by
    ``index``), with their client order ids and order group ids: the compiled twin writes them
    itself, the reference's are read order by order."""
    export = getattr(engine, "_export_orders", None)
    if export is not None:
        found: OrderColumns = export(
            market.market_id, index, _ix(SIDES), _ix(ORDER_TYPES), _ix(TIFS), _ix(STPS)
        )
        return found
    return _order_columns(list(market.book.orders()), index)


def position_columns(engine: Any, market: Any, index: dict[str, int]) -> list[array.array[int]]:
    """A market's positions as the snapshot's columns (``_POSITION_COLUMNS``)."""
    export = getattr(engine, "_export_positions", None)
    if export is not None:
        return list(export(market.market_id, index))
    positions = list(market.positions.values())
    try:
        return [
            array.array("q", (index[p.account_id] for p in positions)),
            *(array.array("q", (getattr(p, f) for p in positions)) for f in _POSITION_COLUMNS[1:]),
        ]
    except OverflowError:
        raise SnapshotUnsupported("a figure does not fit in 64 bits") from None


def _order_columns(orders: list[Any], index: dict[str, int]) -> OrderColumns:
    sides, types, tifs, stps = _ix(SIDES), _ix(ORDER_TYPES), _ix(TIFS), _ix(STPS)
    rows = [
        (
            o.order_id,
            index[o.account_id],
            o.price,
            o.size,
            o.remaining,
            o.filled,
            o.expire_at or 0,
            o.created_at,
            sides[o.side]
            | types[o.order_type] << 4
            | tifs[o.time_in_force] << 8
            | stps[o.stp] << 12
            | (_POST_ONLY if o.post_only else 0)
            | (_REDUCE_ONLY if o.reduce_only else 0)
            | (_HAS_EXPIRY if o.expire_at is not None else 0),
        )
        for o in orders
    ]
    try:
        columns = [array.array("q", (row[i] for row in rows)) for i in range(len(_ORDER_COLUMNS))]
    except OverflowError:
        raise SnapshotUnsupported("a figure does not fit in 64 bits") from None
    return columns, [o.client_order_id for o in orders], [o.order_group_id for o in orders]


def _ix(members: tuple[Any, ...]) -> dict[Any, int]:
    return {member: i for i, member in enumerate(members)}


def _plain(value: Any) -> Any:
    return value.value if hasattr(value, "value") and not isinstance(value, int) else value


# ------------------------------------------------------------------------------ reading


def _split(payload: bytes) -> tuple[dict[str, Any], list[array.array[int]]]:
    text_len, count = struct.unpack_from("<QI", payload)
    at = 12
    skeleton = json.loads(payload[at : at + text_len])
    at += text_len
    lengths = struct.unpack_from(f"<{count}Q", payload, at)
    at += 8 * count
    columns = []
    for length in lengths:
        col = array.array("q")
        col.frombytes(payload[at : at + 8 * length])
        if sys.byteorder != "little":
            col.byteswap()
        at += 8 * length
        columns.append(col)
    if at != len(payload):
        raise ValueError("payload has bytes past its last column")
    return skeleton, columns


def _restore(
    skeleton: dict[str, Any],
    columns: list[array.array[int]],
    new_engine: Callable[[dict[str, Any]], Any],
    version: int,
) -> tuple[Any, dict[tuple[str, str], int]]:
    enums = skeleton["enums"]
    sides = tuple(Side(v) for v in enums["side"])
    types = tuple(OrderType(v) for v in enums["order_type"])
    tifs = tuple(TimeInForce(v) for v in enums["time_in_force"])
    stps = tuple(SelfTradePrevention(v) for v in enums["stp"])
    accounts: list[str] = skeleton["accounts"]
    keys, values = skeleton["ledger"]
    fast = new_engine is not restore_reference
    markets = []
    group_ids: list[list[str | None]] = []
    for m in skeleton["markets"]:
        data = {f: m[f] for f in _MARKET_FIELDS}
        s = m["settlement"]
        data["settlement"] = None if s is None else dict(zip(_SETTLEMENT_FIELDS, s, strict=True))
        pcols = [columns[i] for i in m["positions"]]
        if len(pcols) != len(_POSITION_COLUMNS) or any(len(c) != len(pcols[0]) for c in pcols):
            raise ValueError("position columns differ in number or length")
        data["positions"] = (
            []
            if fast
            else [
                dict(zip(_POSITION_FIELDS, (accounts[row[0]], *row[1:]), strict=True))
                for row in zip(*pcols, strict=True)
            ]
        )
        ocols = [columns[i] for i in m["orders"]]
        if len(ocols) != len(_ORDER_COLUMNS):
            raise ValueError("orders have the wrong number of columns")
        coids = m["client_order_ids"]
        # Format 1 predates order groups: none of its orders has one.
        gids = m["order_group_ids"] if version >= 2 else [None] * len(coids)
        if any(len(c) != len(coids) for c in ocols) or len(gids) != len(coids):
            raise ValueError("order columns differ in length")
        group_ids.append(gids)
        data["orders"] = (
            [] if fast else _order_dicts(ocols, coids, gids, accounts, sides, types, tifs, stps)
        )
        markets.append(data)
    engine = new_engine(
        {
            "seq": skeleton["seq"],
            "next_order_id": skeleton["next_order_id"],
            "next_trade_id": skeleton["next_trade_id"],
            "accounts": accounts,
            "ledger": dict(zip(keys, columns[values], strict=True)),
            "markets": markets,
        }
    )
    if fast:
        # The accounts by their index in the payload: the compiled twin looks each order's
        # account and position up by index, not by name.
        account_objects = [engine.accounts[account_id] for account_id in accounts]
        for m, gids in zip(skeleton["markets"], group_ids, strict=True):
            positions = engine._restore_positions(
                m["market_id"], account_objects, [columns[i] for i in m["positions"]]
            )
            engine._restore_orders(
                m["market_id"],
                account_objects,
                positions,
                [columns[i] for i in m["orders"]],
                m["client_order_ids"],
                gids,
                sides,
                types,
                tifs,
                stps,
            )
        engine._finish_restore()
    account_col, coids, order_col = skeleton["client_orders"]
    client_orders = {
        (accounts[a], coid): order_id
        for a, coid, order_id in zip(columns[account_col], coids, columns[order_col], strict=True)
    }
    return engine, client_orders


def _order_dicts(
    ocols: list[array.array[int]],
    coids: list[str | None],
    gids: list[str | None],
    accounts: list[str],
    sides: tuple[Side, ...],
    types: tuple[OrderType, ...],
    tifs: tuple[TimeInForce, ...],
    stps: tuple[SelfTradePrevention, ...],
) -> list[dict[str, Any]]:
    """Orders in ``domain.snapshot``'s form, for the reference's ``restore``."""
    out = []
    for (oid, a, price, size, rem, filled, exp, created, flags), coid, gid in zip(
        zip(*ocols, strict=True), coids, gids, strict=True
    ):
        out.append(
            {
                "order_id": oid,
                "account_id": accounts[a],
                "side": sides[flags & 15].value,
                "order_type": types[(flags >> 4) & 15].value,
                "price": price,
                "size": size,
                "remaining": rem,
                "filled": filled,
                "time_in_force": tifs[(flags >> 8) & 15].value,
                "expire_at": exp if flags & _HAS_EXPIRY else None,
                "post_only": bool(flags & _POST_ONLY),
                "reduce_only": bool(flags & _REDUCE_ONLY),
                "client_order_id": coid,
                "stp": stps[(flags >> 12) & 15].value,
                "created_at": created,
                "order_group_id": gid,
            }
        )
    return out
