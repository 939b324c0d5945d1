"""The command journal: every accepted command as (kind, JSON payload), replayable in order.

Replaying the journal through a fresh ``Engine`` rebuilds its state exactly (DESIGN §6), so the
encoding must round-trip every command type losslessly: enums travel as their values and come
back as the enum members, integers stay integers of any size.
"""

from __future__ import annotations

import dataclasses
import enum
import json
import types
import typing
from collections.abc import Iterator
from typing import Any

from sqlalchemy import Connection, select

from ballast_exchange.domain import commands as cmd

from .schema import journal

# Commands loaded per query when streaming: bounded memory whatever the journal's length.
LOAD_CHUNK = 2_000


def _command_types() -> dict[str, type[cmd.Command]]:
    found: dict[str, type[cmd.Command]] = {}
    for name, value in vars(cmd).items():
        if (
            isinstance(value, type)
            and issubclass(value, cmd.Command)
            and value is not cmd.Command
            and value.__module__ == cmd.__name__
        ):
            found[name] = value
    return found


COMMAND_TYPES: dict[str, type[cmd.Command]] = _command_types()


def _enum_of(annotation: Any) -> type[enum.Enum] | None:
    """The enum class of a field annotated ``E`` or ``E | None``, else None."""
    if isinstance(annotation, type) and issubclass(annotation, enum.Enum):
        return annotation
    if typing.get_origin(annotation) in (typing.Union, types.UnionType):
        for arg in typing.get_args(annotation):
            if isinstance(arg, type) and issubclass(arg, enum.Enum):
                return arg
    return None


def _field_specs(kind: type[cmd.Command]) -> tuple[tuple[str, type[enum.Enum] | None], ...]:
    hints = typing.get_type_hints(kind, vars(cmd))
    return tuple((f.name, _enum_of(hints[f.name])) for f in dataclasses.fields(kind))


# Per command type: its fields in order and, for each, the enum to rebuild (resolved once).
_FIELDS = {name: _field_specs(kind) for name, kind in COMMAND_TYPES.items()}


@dataclasses.dataclass(frozen=True, slots=True)
class _Decoding:
    """What decoding one command type needs, resolved once: its field names, and its enum
    fields with their members by value (a dict lookup: calling the enum costs ~1 µs)."""

    command_type: type[cmd.Command]
    names: frozenset[str]
    enums: tuple[tuple[str, type[enum.Enum], dict[Any, enum.Enum]], ...]


_DECODING = {
    kind: _Decoding(
        COMMAND_TYPES[kind],
        frozenset(name for name, _ in specs),
        tuple(
            (name, enum_type, {member.value: member for member in enum_type})
            for name, enum_type in specs
            if enum_type is not None
        ),
    )
    for kind, specs in _FIELDS.items()
}


def encode_command(command: cmd.Command) -> tuple[str, str]:
    """The command's kind (its class name) and its fields as compact JSON."""
    kind = type(command).__name__
    specs = _FIELDS.get(kind)
    if specs is None or COMMAND_TYPES[kind] is not type(command):
        raise ValueError(f"not a journaled command type: {kind}")
    payload: dict[str, Any] = {}
    for name, enum_type in specs:
        value = getattr(command, name)
        # Enum-typed fields may also hold the plain value (the engine accepts either).
        if enum_type is not None and isinstance(value, enum.Enum):
            value = value.value
        payload[name] = value
    return kind, json.dumps(payload, separators=(",", ":"), ensure_ascii=False)


def decode_command(kind: str, payload: str) -> cmd.Command:
    """Rebuild the command ``encode_command`` wrote; ``ValueError`` if it is not one."""
    decoding = _DECODING.get(kind)
    if decoding is None:
        raise ValueError(f"unknown command kind {kind!r}")
    try:
        data = json.loads(payload)
    except json.JSONDecodeError as exc:
        raise ValueError(f"{kind} payload is not JSON: {exc}") from None
    if type(data) is not dict:
        raise ValueError(f"{kind} payload must be a JSON object")
    if not data.keys() <= decoding.names:
        raise ValueError(
            f"{kind} payload has unknown fields {sorted(data.keys() - decoding.names)}"
        )
    for name, enum_type, members in decoding.enums:
        value = data.get(name)
        if value is None:
            continue  # absent (its default applies) or null
        try:
            data[name] = members[value]
        except (KeyError, TypeError):
            try:  # what the enum itself accepts beyond its values, if anything
                data[name] = enum_type(value)
            except (ValueError, TypeError):
                raise ValueError(f"{kind}.{name}: bad value {value!r}") from None
    try:
        return decoding.command_type(**data)
    except TypeError as exc:
        raise ValueError(f"{kind} payload does not fit the command: {exc}") from None


def load_commands(conn: Connection, after: int = 0) -> Iterator[tuple[int, cmd.Command]]:
    """Yield ``(command_no, command)`` for every journal row after ``after``, in order.

    Reads in keyset chunks rather than one cursor: memory stays bounded for any journal
    length, and no server-side cursor has to outlive a chunk.
    """
    last = after
    query = (
        select(journal.c.command_no, journal.c.kind, journal.c.payload)
        .order_by(journal.c.command_no)
        .limit(LOAD_CHUNK)
    )
    while True:
        rows = conn.execute(query.where(journal.c.command_no > last)).all()
        for command_no, kind, payload in rows:
            yield command_no, decode_command(kind, payload)
        if len(rows) < LOAD_CHUNK:
            return
        last = rows[-1][0]


def journal_head(conn: Connection) -> tuple[int, int]:
    """``(command_no, last_seq)`` of the newest journal row; ``(0, 0)`` for an empty journal.

    After a replay, the engine's ``seq`` must equal this ``last_seq``.
    """
    row = conn.execute(
        select(journal.c.command_no, journal.c.last_seq)
        .order_by(journal.c.command_no.desc())
        .limit(1)
    ).first()
    return (0, 0) if row is None else (row[0], row[1])
