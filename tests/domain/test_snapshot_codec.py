"""The compact snapshot (domain/snapshot_codec.py): what either twin writes, either twin reads
back to the same state, which then carries on identically; anything else is refused whole.

These tests drive both twins at once, so they are not parametrized by ``twin``.
"""

from __future__ import annotations

import json
import random
import struct
import zlib
from pathlib import Path

import pytest

from ballast_exchange.domain import (
    DomainError,
    Engine,
    MarketKind,
    MarketStatus,
    SelfTradePrevention,
    Side,
    TimeInForce,
    digest,
    engine_name,
    snapshot,
)
from ballast_exchange.domain import commands as c
from ballast_exchange.domain import snapshot_codec as codec
from ballast_exchange.domain.commands import PlaceOrder
from ballast_exchange.store.journal import decode_command

from . import twins
from .invariants import check_invariants
from .test_engine_properties import random_commands
from .test_twins import run_side_by_side

BOTH_TWINS_AT_ONCE = True


def run(engine: Engine, commands: list[object]) -> dict[tuple[str, str], int]:
    """Execute, keeping the service's map of client order ids bound to their first order."""
    bound: dict[tuple[str, str], int] = {}
    for command in commands:
        try:
            events = engine.execute(command)  # type: ignore[arg-type]
        except DomainError:
            continue
        if isinstance(command, PlaceOrder) and command.client_order_id is not None:
            bound.setdefault(
                (command.account_id, command.client_order_id),
                events[0].order_id,  # type: ignore[attr-defined]
            )
    return bound


def resting_books(rng: random.Random, orders: int = 1_500) -> list[c.Command]:
    """Deep books: many accounts resting orders of every kind on three markets, some partly
    filled, some due to expire, many with client order ids or in an order group (random streams
    leave books thin)."""
    commands: list[c.Command] = []
    accounts = [f"desk{i}" for i in range(25)]
    for account in accounts:
        commands += [c.CreateAccount(1, account), c.Deposit(1, account, 10**12)]
    for i, kind in enumerate([MarketKind.BINARY, MarketKind.BINARY, MarketKind.INDEX]):
        market = f"mkt{i}"
        commands.append(c.CreateMarket(1, market, kind, 1_000, 0, 1_000, 10**13, taker_fee_bps=7))
        commands.append(c.ChangeMarketStatus(1, market, MarketStatus.OPEN))
    for n in range(orders):
        buy = rng.random() < 0.5
        cross = rng.random() < 0.05  # a few take liquidity, leaving partial fills behind
        # Bids rest below 500 and asks above it; a crossing order reaches into the other side.
        price = rng.randint(300, 480) if buy != cross else rng.randint(520, 700)
        gtd = rng.random() < 0.1
        commands.append(
            c.PlaceOrder(
                2 + n,
                rng.choice(accounts),
                f"mkt{rng.randrange(3)}",
                Side.BUY if buy else Side.SELL,
                rng.randint(1, 50),
                price,
                time_in_force=TimeInForce.GTD if gtd else TimeInForce.GTC,
                expire_at=10**12 + n if gtd else None,
                post_only=not cross and rng.random() < 0.2,
                client_order_id=f"c{n}" if rng.random() < 0.6 else None,
                stp=rng.choice(list(SelfTradePrevention)),
                order_group_id=rng.choice([None, None, "grp_a", "grp_b"]),
            )
        )
    return commands


def restorer(name: str) -> object:
    twins.require(name)
    if name == "reference":
        return None  # decode's default: the reference
    return twins.restorer(name)


@pytest.mark.parametrize("source", ["reference", "compiled"])
@pytest.mark.parametrize("target", ["reference", "compiled"])
@pytest.mark.parametrize("stream", ["random 3", "random 4", "deep books"])
def test_a_snapshot_of_either_twin_restores_into_either(
    source: str, target: str, stream: str
) -> None:
    twins.require(source)
    if stream == "deep books":
        rng = random.Random(9)
        commands = resting_books(rng) + random_commands(rng, 1_500)
        cut = len(commands) - 1_500
    else:
        commands = random_commands(random.Random(int(stream.split()[1])), 5_000)
        cut = len(commands) // 2
    original: Engine = twins.engine_factory(source)()
    bound = run(original, commands[:cut])
    encoded = codec.encode(original, bound, 1234)
    restored, bound_again, header = codec.decode(encoded.data, restorer(target))  # type: ignore[arg-type]
    assert engine_name(restored) == target
    assert header.command_no == 1234 and header.digest == encoded.digest
    assert bound_again == bound and list(bound_again) == list(bound)
    assert snapshot(restored) == snapshot(original)
    assert digest(restored) == digest(original)
    # Restoring rebuilt exactly what was written: the digest of the restored state is the same.
    assert codec.state_digest(restored, bound_again) == encoded.digest
    check_invariants(restored, -restored.ledger.balances.get("external", 0))
    if source != target:  # both carry on identically
        pairs = {source: original, target: restored}
        run_side_by_side(pairs["reference"], pairs["compiled"], commands[cut:], digest_every=17)


def test_both_twins_write_the_same_bytes() -> None:
    twins.require("compiled")
    commands = resting_books(random.Random(11))
    engines = {name: twins.engine_factory(name)() for name in twins.TWINS}
    bound = {name: run(engine, commands) for name, engine in engines.items()}
    reference = codec.encode(engines["reference"], bound["reference"], 7)
    compiled = codec.encode(engines["compiled"], bound["compiled"], 7)
    assert reference.data == compiled.data
    assert len(engines["compiled"].orders) > 900


def encoded_sample() -> codec.Encoded:
    engine = Engine()
    bound = run(engine, random_commands(random.Random(5), 2_000))
    return codec.encode(engine, bound, 99)


@pytest.mark.parametrize(
    "damage",
    ["magic", "version", "flipped payload byte", "truncated", "empty", "same digest, bad body"],
)
def test_damaged_or_foreign_bytes_are_refused_never_misread(damage: str) -> None:
    data = bytearray(encoded_sample().data)
    if damage == "magic":
        data[0:8] = b"NOTSNAPS"
    elif damage == "version":
        struct.pack_into("<H", data, 8, codec.VERSION + 1)
    elif damage == "flipped payload byte":
        data[len(data) // 2] ^= 0x40
    elif damage == "truncated":
        del data[-100:]
    elif damage == "empty":
        data = bytearray()
    else:
        # A well-formed, correctly digested payload that does not describe a state.
        payload = b"\x00" * 40
        head = struct.pack(
            "<8sHHQQ32s",
            codec.MAGIC,
            codec.VERSION,
            0,
            1,
            len(payload),
            __import__("hashlib").sha256(payload).digest(),
        )
        data = bytearray(head + zlib.compress(payload))
    with pytest.raises(codec.SnapshotUnreadable):
        codec.decode(bytes(data))


def test_a_figure_past_64_bits_is_refused_when_writing() -> None:
    engine = Engine()
    run(engine, random_commands(random.Random(6), 500))
    engine.ledger.balances["external"] = -(2**70)
    with pytest.raises(codec.SnapshotUnsupported):
        codec.encode(engine, {}, 1)


DATA = Path(__file__).with_name("data")


def v1_commands() -> list[c.Command]:
    """The commands behind ``snapshot_v1.bin``, as the journal stored them then."""
    lines = DATA.joinpath("snapshot_v1.commands.jsonl").read_text().splitlines()
    return [decode_command(*json.loads(line)) for line in lines]


@pytest.mark.parametrize("target", ["reference", "compiled"])
def test_a_format_1_snapshot_is_still_read_and_checked_in_its_own_form(target: str) -> None:
    """Bytes the build before order groups wrote (format 1): read into either twin as the state
    a replay of the same commands gives (no order in a group), its digest checked in format 1,
    and written back as format 2."""
    data = DATA.joinpath("snapshot_v1.bin").read_bytes()
    restored, bound, header = codec.decode(data, restorer(target))  # type: ignore[arg-type]
    assert header.version == 1 and engine_name(restored) == target
    assert codec.state_digest(restored, bound, version=1) == header.digest
    assert codec.state_digest(restored, bound) != header.digest  # format 2 is other bytes
    replayed = Engine()
    assert bound == run(replayed, v1_commands())
    assert snapshot(restored) == snapshot(replayed)
    assert len(restored.orders) > 200
    assert all(o.order_group_id is None for o in restored.orders.values())
    again = codec.encode(restored, bound, header.command_no)
    assert codec.read_header(again.data).version == codec.VERSION == 2


def test_order_groups_survive_a_snapshot_and_cannot_be_written_as_format_1() -> None:
    engine = Engine()
    bound = run(engine, resting_books(random.Random(12), orders=300))
    groups = {o.order_id: o.order_group_id for o in engine.orders.values()}
    assert {"grp_a", "grp_b", None} <= set(groups.values())
    restored, _, _ = codec.decode(codec.encode(engine, bound, 5).data)
    assert {o.order_id: o.order_group_id for o in restored.orders.values()} == groups
    with pytest.raises(codec.SnapshotUnsupported):
        codec.state_digest(engine, bound, version=1)


def rewritten(encoded: codec.Encoded, change: object) -> bytes:
    """``encoded`` with its payload's skeleton and columns changed by ``change`` and the header
    digest made to match: bytes only the restore itself can refuse."""
    payload = zlib.decompress(encoded.data[codec.HEADER_BYTES :])
    skeleton, columns = codec._split(payload)
    change(skeleton, columns)  # type: ignore[operator]
    text = json.dumps(skeleton, separators=(",", ":")).encode()
    parts = [struct.pack("<QI", len(text), len(columns)), text]
    parts.append(struct.pack(f"<{len(columns)}Q", *(len(col) for col in columns)))
    parts += [col.tobytes() for col in columns]
    body = b"".join(parts)
    head = struct.pack(
        "<8sHHQQ32s",
        codec.MAGIC,
        codec.VERSION,
        0,
        encoded.command_no,
        len(body),
        __import__("hashlib").sha256(body).digest(),
    )
    return head + zlib.compress(body)


def _first_market_with_orders(skeleton: dict[str, object]) -> dict[str, object]:
    return next(m for m in skeleton["markets"] if m["client_order_ids"])  # type: ignore[attr-defined]


def _account_out_of_range(skeleton: dict[str, object], columns: list[object]) -> None:
    market = _first_market_with_orders(skeleton)
    columns[market["orders"][1]][0] = len(skeleton["accounts"])  # type: ignore[index]


def _account_without_position(skeleton: dict[str, object], columns: list[object]) -> None:
    market = _first_market_with_orders(skeleton)
    held = set(columns[market["positions"][0]])  # type: ignore[index]
    idle = next(i for i in range(len(skeleton["accounts"])) if i not in held)  # type: ignore[arg-type]
    columns[market["orders"][1]][0] = idle  # type: ignore[index]


def _two_positions_of_one_account(skeleton: dict[str, object], columns: list[object]) -> None:
    market = _first_market_with_orders(skeleton)
    accounts = columns[market["positions"][0]]  # type: ignore[index]
    accounts[1] = accounts[0]


@pytest.mark.parametrize("target", ["reference", "compiled"])
@pytest.mark.parametrize(
    "change", [_account_out_of_range, _account_without_position, _two_positions_of_one_account]
)
def test_a_digest_valid_payload_that_does_not_hold_together_is_refused(
    target: str, change: object
) -> None:
    """The restore looks accounts and positions up by their index in the payload (the compiled
    twin without a dict lookup per order): an index past the accounts, an order whose account
    holds no position in its market, or one account's two positions in a market is refused
    whole, never half a state."""
    engine = Engine()
    run(engine, [c.CreateAccount(1, "idle")])  # an account with no position anywhere
    bound = run(engine, resting_books(random.Random(13), orders=300))
    data = rewritten(codec.encode(engine, bound, 7), change)
    with pytest.raises(codec.SnapshotUnreadable):
        codec.decode(data, restorer(target))  # type: ignore[arg-type]
