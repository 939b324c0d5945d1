"""What gateways and the sequencer send each other over the bus, as JSON (docs/adr/0025).

Calls carry service arguments and bring back their outcomes: commands, enums and the services'
result records, and a ``DomainError`` as its code, message and details. Only the types named
here cross; anything else is refused on either side, so a message from the bus can never
build an object of a type we did not choose.
"""

from __future__ import annotations

import dataclasses
import enum
import json
from typing import Any

from ..domain import DomainError
from ..domain import commands as c
from ..domain import types as domain_types
from ..store.order_groups import GroupTrigger, OrderGroupRecord
from ..store.order_records import FillRecord, OrderRecord
from .dead_man import Switch
from .faucet import FaucetGrant
from .order_groups import DeletedGroup, GroupState
from .reads import Balance
from .trading import CancelAllOutcome, OrderOutcome


def _records() -> dict[str, type[Any]]:
    found: dict[str, type[Any]] = {
        kind.__name__: kind
        for kind in (
            OrderOutcome,
            OrderRecord,
            FillRecord,
            CancelAllOutcome,
            Switch,
            GroupState,
            DeletedGroup,
            OrderGroupRecord,
            GroupTrigger,
            FaucetGrant,
            Balance,
        )
    }
    for name, value in vars(c).items():
        if isinstance(value, type) and issubclass(value, c.Command) and value is not c.Command:
            found[name] = value
    return found


RECORDS = _records()
ENUMS: dict[str, type[enum.Enum]] = {
    name: value
    for name, value in vars(domain_types).items()
    if isinstance(value, type)
    and issubclass(value, enum.Enum)
    and value.__module__ == domain_types.__name__
}


class BusMessageInvalid(ValueError):
    """A message that does not decode into the types the bus carries."""


_PLAIN = (str, int, bool, float, type(None))  # exact types: an enum member is not one
# Per record type, its fields' names in order (looked up once, not on every value).
_FIELDS: dict[type[Any], tuple[str, ...]] = {
    kind: tuple(f.name for f in dataclasses.fields(kind)) for kind in RECORDS.values()
}


def to_wire(value: Any) -> Any:
    """``value`` as JSON-ready data (records tagged with their type's name)."""
    kind = type(value)
    if kind in _PLAIN:
        return value
    if kind is list or kind is tuple:
        return [to_wire(item) for item in value]
    names = _FIELDS.get(kind)
    if names is not None:
        return {"record": kind.__name__, "fields": [to_wire(getattr(value, n)) for n in names]}
    if isinstance(value, enum.Enum):
        return {"enum": kind.__name__, "value": value.value}
    raise TypeError(f"{kind.__name__} does not travel on the bus")


def from_wire(data: Any) -> Any:
    """The value ``to_wire`` made (a list comes back as a tuple: records hold tuples)."""
    kind = type(data)
    if kind in _PLAIN:
        return data
    if kind is list:
        return tuple(from_wire(item) for item in data)
    if kind is dict:
        if "enum" in data:
            found = ENUMS.get(data["enum"])
            if found is None:
                raise BusMessageInvalid(f"unknown enum {data['enum']!r}")
            return found(data["value"])
        record = RECORDS.get(data.get("record", ""))
        if record is None:
            raise BusMessageInvalid(f"unknown record {data.get('record')!r}")
        values = [from_wire(item) for item in data["fields"]]
        if len(values) != len(_FIELDS[record]):
            raise BusMessageInvalid(f"{record.__name__} needs {len(_FIELDS[record])} fields")
        return record(*values)
    raise BusMessageInvalid(f"cannot decode {kind.__name__}")


def encode(message: dict[str, Any]) -> bytes:
    return json.dumps(message, separators=(",", ":")).encode()


def decode(payload: bytes) -> dict[str, Any]:
    try:
        message = json.loads(payload)
    except ValueError as error:
        raise BusMessageInvalid(str(error)) from None
    if not isinstance(message, dict):
        raise BusMessageInvalid("a message is a JSON object")
    return message


def error_to_wire(error: DomainError) -> dict[str, Any]:
    return {"code": error.code, "message": error.message, "details": error.details}


def error_from_wire(data: dict[str, Any]) -> DomainError:
    return DomainError(str(data["code"]), str(data["message"]), data.get("details") or {})
