"""JSON out with the API's decimals intact.

The client reads JSON decimals as ``Decimal`` (``0.870`` stays ``0.870``); the standard encoder
cannot write a ``Decimal`` as a number, and a float would round-trip through binary. This
writes each ``Decimal`` as the number it holds.
"""

from __future__ import annotations

import json
from datetime import datetime
from decimal import Decimal
from typing import Any

__all__ = ["dumps"]


def dumps(value: Any, indent: int | None = None) -> str:
    """``value`` as JSON text, compact on one line, or pretty with ``indent`` spaces."""
    parts: list[str] = []
    _write(value, parts, indent, 0)
    return "".join(parts)


def _write(value: Any, out: list[str], indent: int | None, level: int) -> None:
    if isinstance(value, Decimal):
        if not value.is_finite():
            raise ValueError(f"{value} is not a JSON number")
        out.append(str(value))
    elif isinstance(value, dict):
        _container(list(value.items()), "{", "}", out, indent, level, keyed=True)
    elif isinstance(value, (list, tuple)):
        _container(list(enumerate(value)), "[", "]", out, indent, level, keyed=False)
    elif isinstance(value, datetime):
        out.append(json.dumps(value.isoformat()))
    else:
        out.append(json.dumps(value, ensure_ascii=False))


def _container(
    items: list[tuple[Any, Any]],
    opening: str,
    closing: str,
    out: list[str],
    indent: int | None,
    level: int,
    *,
    keyed: bool,
) -> None:
    if not items:
        out.append(opening + closing)
        return
    inner = "" if indent is None else "\n" + " " * (indent * (level + 1))
    outer = "" if indent is None else "\n" + " " * (indent * level)
    separator = ", " if indent is None else ","
    out.append(opening)
    for index, (key, item) in enumerate(items):
        if index:
            out.append(separator)
        out.append(inner)
        if keyed:
            out.append(json.dumps(str(key), ensure_ascii=False) + ": ")
        _write(item, out, indent, level + 1)
    out.append(outer + closing)
