"""The engine twins under test: every domain test runs against the reference and the compiled one.

``conftest.py`` parametrizes each test with ``twin`` (``"reference"`` or ``"compiled"``) and sets
the current twin here; tests make engines with ``new_engine()`` and restore snapshots with
``restore_twin()``, so one test body checks both. Where the compiled twin is not built (or is
stale) its runs skip with the reason, and fail instead under ``BALLAST_REQUIRE_SERVICES=1`` (as
CI sets), so CI cannot pass by skipping.
"""

from __future__ import annotations

import os
from typing import Any

import pytest

from ballast_exchange.domain import Engine, compiled_status, restore
from ballast_exchange.domain.order import Order as ReferenceOrder

TWINS = ("reference", "compiled")
_current = {"name": "reference"}


def require(name: str) -> None:
    """Skip (or, under BALLAST_REQUIRE_SERVICES=1, fail) unless twin ``name`` can run."""
    if name == "reference":
        return
    available, reason = compiled_status()
    if available:
        return
    if os.environ.get("BALLAST_REQUIRE_SERVICES") == "1":
        pytest.fail(f"{reason}, and BALLAST_REQUIRE_SERVICES=1 says it must be built")
    pytest.skip(reason)


def use(name: str) -> None:
    require(name)
    _current["name"] = name


def current() -> str:
    return _current["name"]


def engine_factory(name: str) -> Any:
    if name == "reference":
        return Engine
    from ballast_exchange.domain import compiled

    return compiled.Engine


def restorer(name: str) -> Any:
    if name == "reference":
        return restore
    from ballast_exchange.domain import compiled

    return compiled.restore


def new_engine() -> Engine:
    """An empty engine of the twin under test (typed as the reference: the same surface)."""
    engine: Engine = engine_factory(current())()
    return engine


def restore_twin(data: dict[str, Any]) -> Engine:
    """The twin under test restored from a snapshot (of either twin)."""
    engine: Engine = restorer(current())(data)
    return engine


def order_types() -> tuple[type, ...]:
    """The live-order classes of every twin that can run here."""
    types: list[type] = [ReferenceOrder]
    if compiled_status()[0]:
        from ballast_exchange.domain.compiled import _engine

        types.append(_engine.Order)
    return tuple(types)
