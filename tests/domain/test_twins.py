"""The two engine twins side by side: the same commands must give the same everything.

Long seeded streams of every kind of command (all order types and times in force, every
self-trade mode, amends, GTD expiry, halts and closes, binary and index markets, whole
settlements, guessed ids and rejected commands) run through the reference and the compiled
engine together. After every command both must have returned identical events or identical
rejections (code, message and details), and their state digests must be equal. Commands with
ill-typed fields must be refused by both with the same ``DomainError``, never a ``TypeError``.
A snapshot taken of one twin restores into the other, which carries on identically.

These tests drive both twins at once, so they are not parametrized by ``twin``.
"""

from __future__ import annotations

import dataclasses
import gc
import json
import random
import sys
from typing import Any

import pytest

from ballast_exchange.domain import (
    DomainError,
    Engine,
    MarketKind,
    MarketStatus,
    Side,
    digest,
    engine_name,
    restore,
    select_engine,
    snapshot,
)
from ballast_exchange.domain import commands as c
from ballast_exchange.domain.events import Event

from . import twins
from .invariants import check_invariants
from .test_engine_properties import fingerprint, random_commands

BOTH_TWINS_AT_ONCE = True  # conftest: do not parametrize these tests by twin


def compiled_engine() -> Engine:
    twins.require("compiled")
    engine: Engine = twins.engine_factory("compiled")()
    return engine


def outcome(engine: Engine, command: c.Command) -> tuple[Any, ...]:
    """Every event in full (type and every field), or the rejection in full."""
    try:
        events = engine.execute(command)
    except DomainError as error:
        return ("rejected", error.code, error.message, repr(error.details))
    return tuple(event_key(e) for e in events)


def event_key(event: Event) -> tuple[Any, ...]:
    # Field values with their types: "byte for byte" includes int vs bool vs str.
    values = dataclasses.astuple(event)
    return (type(event).__name__, values, tuple(type(v).__name__ for v in values))


def run_side_by_side(
    reference: Engine, compiled: Engine, commands: list[c.Command], *, digest_every: int = 1
) -> tuple[int, int]:
    """Feed both twins; compare outcomes after each command and digests every few. Returns
    (accepted, rejected) counts."""
    accepted = rejected = 0
    for step, command in enumerate(commands):
        expected = outcome(reference, command)
        got = outcome(compiled, command)
        assert got == expected, f"step {step}: {command}\nreference {expected}\ncompiled  {got}"
        if expected and expected[0] == "rejected":
            rejected += 1
        else:
            accepted += 1
        assert compiled.seq == reference.seq
        if step % digest_every == 0:
            assert digest(compiled) == digest(reference), f"state differs after step {step}"
    assert digest(compiled) == digest(reference)
    return accepted, rejected


@pytest.mark.parametrize("seed", [3, 11, 101, 4242])
def test_twins_agree_on_every_step_of_random_streams(seed: int) -> None:
    compiled = compiled_engine()
    reference = Engine()
    commands = random_commands(random.Random(seed), 5_000)
    accepted, rejected = run_side_by_side(reference, compiled, commands)
    assert accepted > 2_000 and rejected > 50  # the stream did exercise both paths
    check_invariants(compiled, -compiled.ledger.balances.get("external", 0))


@pytest.mark.parametrize("seed", [5, 77])
def test_twins_agree_on_long_streams(seed: int) -> None:
    compiled = compiled_engine()
    reference = Engine()
    commands = random_commands(random.Random(seed), 40_000)
    run_side_by_side(reference, compiled, commands, digest_every=97)
    assert fingerprint(compiled)[0] == fingerprint(reference)[0]


# Values a client (or a bug above the domain) could put in any field.
ODD_VALUES: list[Any] = [
    None,
    True,
    False,
    0,
    -1,
    1,
    2**63,
    -(2**63) - 1,
    2**80,
    1.5,
    float("nan"),
    "",
    "x",
    "buy",
    "acct0",
    [],
    {},
    ("a",),
    b"bytes",
    Side.SELL,
    MarketStatus.OPEN,
]


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_ill_typed_fields_are_the_same_domain_error_in_both(seed: int) -> None:
    """Any field of any command replaced by an odd value: both twins refuse it with the same
    DomainError (or accept it identically); neither raises anything else."""
    rng = random.Random(seed)
    compiled = compiled_engine()
    reference = Engine()
    commands = random_commands(random.Random(seed + 1000), 3_000)
    for step, command in enumerate(commands):
        if rng.random() < 0.5:
            fields = [f.name for f in dataclasses.fields(command)]
            field = rng.choice(fields)
            command = dataclasses.replace(command, **{field: rng.choice(ODD_VALUES)})
        results = []
        for engine in (reference, compiled):
            try:
                results.append(outcome(engine, command))
            except Exception as error:  # pragma: no cover - the failure this test looks for
                pytest.fail(f"step {step}: {command} raised {type(error).__name__}: {error}")
        assert results[1] == results[0], f"step {step}: {command}\n{results[0]}\n{results[1]}"
    assert digest(compiled) == digest(reference)


@pytest.mark.parametrize("source", ["reference", "compiled"])
@pytest.mark.parametrize("seed", [8, 9])
def test_a_snapshot_of_one_twin_restores_into_the_other(source: str, seed: int) -> None:
    twins.require("compiled")
    target = "compiled" if source == "reference" else "reference"
    commands = random_commands(random.Random(seed), 6_000)
    cut = len(commands) // 2
    original: Engine = twins.engine_factory(source)()
    for command in commands[:cut]:
        outcome(original, command)
    data = json.loads(json.dumps(snapshot(original)))
    restored: Engine = twins.restorer(target)(data)
    assert engine_name(restored) == target
    assert snapshot(restored) == snapshot(original)
    assert digest(restored) == digest(original)
    check_invariants(restored, -restored.ledger.balances.get("external", 0))
    # Both carry on identically, whichever is which.
    pairs = {source: original, target: restored}
    run_side_by_side(pairs["reference"], pairs["compiled"], commands[cut:], digest_every=13)


def test_execute_many_is_execute_in_a_loop() -> None:
    commands = random_commands(random.Random(21), 3_000)
    for factory in (Engine, type(compiled_engine())):
        one, many = factory(), factory()
        expected: list[Any] = []
        for command in commands:
            result = outcome(one, command)
            expected.append(result)
        got: list[Any] = []
        for result in many.execute_many(commands):
            if isinstance(result, DomainError):
                got.append(("rejected", result.code, result.message, repr(result.details)))
            else:
                got.append(tuple(event_key(e) for e in result))
        assert got == expected
        assert digest(many) == digest(one)


def result_key(result: list[Event] | DomainError) -> tuple[Any, ...]:
    if isinstance(result, DomainError):
        return ("rejected", result.code, result.message, repr(result.details))
    return tuple(event_key(e) for e in result)


def test_execute_batch_is_execute_many_built_or_not() -> None:
    """``execute_batch`` answers what ``execute_many`` does, in both twins, and leaves the same
    state whether or not a batch's events are ever built."""
    commands = random_commands(random.Random(22), 3_000)
    for factory in (Engine, type(compiled_engine())):
        many, batched, unread = factory(), factory(), factory()
        expected = [result_key(r) for r in many.execute_many(commands)]
        got: list[Any] = []
        for first in range(0, len(commands), 32):
            chunk = commands[first : first + 32]
            batch = batched.execute_batch(chunk)
            assert len(batch) == len(chunk)
            results = batch.results()
            assert batch.results() is results  # built once
            assert batch.event_count == sum(
                len(r) for r in results if not isinstance(r, DomainError)
            )
            got.extend(result_key(r) for r in results)
            unread.execute_batch(chunk)  # dropped unbuilt
        assert got == expected
        assert digest(batched) == digest(many) == digest(unread)
        assert unread.seq == many.seq


def test_a_compiled_batch_gives_back_every_reference_it_held() -> None:
    """Event records hold references (ids, the command's time); once a batch is gone, built or
    not, its references are too: the engine keeps exactly what ``execute`` leaves it holding
    (a proposed settlement keeps its time)."""

    def held(mode: str) -> int:
        compiled = compiled_engine()
        when = int("1000001")  # an int object of its own, counted
        commands = [
            dataclasses.replace(command, time=when)
            for command in random_commands(random.Random(23), 2_000)
        ]
        before = sys.getrefcount(when)
        for first in range(0, len(commands), 64):
            chunk = commands[first : first + 64]
            if mode == "execute":
                compiled.execute_many(chunk)
                continue
            batch = compiled.execute_batch(chunk)
            if mode == "built":
                assert batch.results()
            del batch
        assert compiled.seq > 1_000
        return sys.getrefcount(when) - before

    assert held("unbuilt") == held("built") == held("execute")


def test_a_dropped_compiled_engine_leaves_no_order_behind() -> None:
    """The compiled twin's orders are outside the cycle collector, and their links (level and
    position neighbours, level, position, account, market) are cycles: the engine cuts them
    when it goes, whether reference counting or the collector (a garbage cycle held it) frees
    it. Every order holds the account's id string, so its count tells whether any is left."""

    def engine_holding(account: str) -> Engine:
        engine = compiled_engine()
        engine.execute(c.CreateMarket(0, "m", MarketKind.BINARY, 1_000, 0, 1_000, 10**12))
        engine.execute(c.ChangeMarketStatus(0, "m", MarketStatus.OPEN))
        for who in (account, "other"):
            engine.execute(c.CreateAccount(0, who))
            engine.execute(c.Deposit(0, who, 10**12))
        for i in range(300):
            side = Side.BUY if i % 2 else Side.SELL
            price = 100 + i % 40 if side is Side.BUY else 600 + i % 40
            engine.execute(c.PlaceOrder(1, account, "m", side, 1 + i % 3, price))
        engine.execute(c.PlaceOrder(2, "other", "m", Side.BUY, 5, 600))  # partial fills
        assert len(engine.orders) > 250
        return engine

    account = "".join(["dropped", "-engine"])  # a string object of its own, counted
    gc.collect()
    before = sys.getrefcount(account)

    engine = engine_holding(account)
    assert sys.getrefcount(account) > before + 250
    del engine
    gc.collect()  # a market and its positions refer to each other, as in the reference
    assert sys.getrefcount(account) == before

    cycle: list[Any] = [engine_holding(account)]
    cycle.append(cycle)
    del cycle
    gc.collect()  # frees the engine, which cuts its orders' links
    gc.collect()  # the market and positions its orders kept from the first pass
    assert sys.getrefcount(account) == before


def test_unknown_commands_and_bad_times_are_refused_alike() -> None:
    compiled = compiled_engine()
    reference = Engine()

    @dataclasses.dataclass(frozen=True, slots=True)
    class Odd(c.Command):
        pass

    for command in (Odd(1), c.CreateAccount(-1, "a"), c.CreateAccount(2**70, "a")):
        assert outcome(compiled, command) == outcome(reference, command)
    bad_time = c.CreateAccount(1.0, "a")  # type: ignore[arg-type]
    assert outcome(compiled, bad_time) == outcome(reference, bad_time)


def test_selector_prefers_the_compiled_twin_and_obeys_ballast_engine(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("BALLAST_ENGINE", "reference")
    forced = select_engine()
    assert forced.name == "reference" and "BALLAST_ENGINE=reference" in forced.reason
    assert engine_name(forced.new()) == "reference"
    monkeypatch.delenv("BALLAST_ENGINE")
    choice = select_engine()
    if not choice.compiled_available:
        assert choice.name == "reference" and choice.reason
        twins.require("compiled")  # skips, or fails under BALLAST_REQUIRE_SERVICES=1
    assert choice.name == "compiled"
    engine = choice.new()
    assert engine_name(engine) == "compiled"
    engine.execute(c.CreateMarket(0, "m", MarketKind.BINARY, 1_000, 0, 1_000, 10**12))
    again = choice.restore(snapshot(engine))
    assert engine_name(again) == "compiled" and digest(again) == digest(engine)
    assert engine_name(restore(snapshot(engine))) == "reference"
