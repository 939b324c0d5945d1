"""Commands round-trip exactly through (kind, JSON payload) and stream back in order."""

from __future__ import annotations

import dataclasses

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ballast_exchange.domain import (
    MarketKind,
    MarketStatus,
    OrderType,
    SelfTradePrevention,
    Side,
    TimeInForce,
)
from ballast_exchange.domain import commands as c
from ballast_exchange.store import (
    Database,
    JournalItem,
    decode_command,
    encode_command,
    load_commands,
    write_batch,
)
from ballast_exchange.store import (
    journal as journal_module,
)
from ballast_exchange.store.journal import COMMAND_TYPES

EXAMPLES: list[c.Command] = [
    c.CreateAccount(1, "alice"),
    c.Deposit(2, "alice", 10**15, ref="wire-1"),
    c.Withdraw(3, "alice", 5, ref=""),
    c.CreateMarket(4, "suez-apr2025", MarketKind.BINARY, 1_000, 0, 1_000, 10**13),
    c.CreateMarket(5, "idx", MarketKind.INDEX, 100_000, 0, 1_000, 99, 2, 500, 7_000, -3, 8),
    c.ChangeMarketStatus(6, "idx", MarketStatus.HALTED),
    c.PlaceOrder(7, "alice", "idx", Side.BUY, 10, 450),
    c.PlaceOrder(
        8,
        "alice",
        "idx",
        Side.SELL,
        3,
        None,
        OrderType.MARKET,
        TimeInForce.IOC,
        None,
        False,
        True,
        "cl-ü-🙂",
        SelfTradePrevention.DECREMENT,
    ),
    c.PlaceOrder(
        9, "a", "m", Side.BUY, 1, 2, expire_at=50, time_in_force=TimeInForce.GTD, post_only=True
    ),
    c.CancelOrder(10, "alice", 2**62),
    c.CancelAll(11, "alice"),
    c.CancelAll(12, "alice", "idx"),
    c.AmendOrder(13, "alice", 7, price=451),
    c.AmendOrder(14, "alice", 7, size=4),
    c.ExpireOrders(15),
    c.ProposeSettlement(16, "idx", -5, "f" * 64, "oracle"),
    c.OverturnSettlement(17, "idx", "operator"),
    c.FinalizeSettlement(18, "idx"),
]


def _same(a: c.Command, b: c.Command) -> None:
    assert type(a) is type(b)
    assert a == b
    for f in dataclasses.fields(a):  # enums come back as enum members, not bare strings
        assert type(getattr(a, f.name)) is type(getattr(b, f.name)), f.name


def test_examples_cover_every_command_type() -> None:
    assert {type(x).__name__ for x in EXAMPLES} == set(COMMAND_TYPES)


@pytest.mark.parametrize("command", EXAMPLES, ids=lambda x: type(x).__name__)
def test_round_trip_examples(command: c.Command) -> None:
    kind, payload = encode_command(command)
    assert kind == type(command).__name__
    _same(decode_command(kind, payload), command)


_ints = st.integers(min_value=-(2**70), max_value=2**70)
_text = st.text(max_size=20)
_BY_ANNOTATION: dict[str, st.SearchStrategy] = {
    "int": _ints,
    "int | None": st.none() | _ints,
    "str": _text,
    "str | None": st.none() | _text,
    "bool": st.booleans(),
}


def _field_strategy(annotation: str) -> st.SearchStrategy:
    """Fields are annotated as strings (postponed annotations); enums by their class name."""
    if annotation in _BY_ANNOTATION:
        return _BY_ANNOTATION[annotation]
    return st.sampled_from(list(getattr(c, annotation)))


_any_command = st.one_of(
    [
        st.builds(kind, **{f.name: _field_strategy(f.type) for f in dataclasses.fields(kind)})
        for kind in COMMAND_TYPES.values()
    ]
)


@settings(max_examples=200, deadline=None)
@given(_any_command)
def test_round_trip_any_command(command: c.Command) -> None:
    _same(decode_command(*encode_command(command)), command)


@pytest.mark.parametrize(
    ("kind", "payload"),
    [
        ("NoSuchCommand", "{}"),
        ("Command", '{"time": 1}'),  # the base class is not a journaled command
        ("CreateAccount", "not json"),
        ("CreateAccount", "[1, 2]"),
        ("CreateAccount", '{"time": 1}'),  # a required field is missing
        ("CreateAccount", '{"time": 1, "account_id": "a", "extra": 1}'),
        ("PlaceOrder", '{"time":1,"account_id":"a","market_id":"m","side":"up","size":1}'),
    ],
)
def test_decode_rejects_garbage(kind: str, payload: str) -> None:
    with pytest.raises(ValueError):
        decode_command(kind, payload)


def test_encode_rejects_foreign_types() -> None:
    @dataclasses.dataclass(frozen=True)
    class Sneaky(c.Command):
        pass

    with pytest.raises(ValueError):
        encode_command(Sneaky(1))


def test_load_commands_streams_in_order(db: Database, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(journal_module, "LOAD_CHUNK", 4)  # cross several chunk boundaries
    commands = [c.CreateAccount(i, f"acct{i}") for i in range(1, 12)]
    with db.engine.begin() as conn:
        # Journal rows only (no events): load_commands reads nothing else.
        write_batch(
            conn, [JournalItem(i, cmd, [], cmd.time, i) for i, cmd in enumerate(commands, 1)]
        )
    with db.engine.connect() as conn:
        loaded = list(load_commands(conn))
        assert [n for n, _ in loaded] == list(range(1, 12))
        assert [cmd for _, cmd in loaded] == commands
        assert [n for n, _ in load_commands(conn, after=8)] == [9, 10, 11]
        assert list(load_commands(conn, after=11)) == []
        assert journal_module.journal_head(conn) == (11, 11)
