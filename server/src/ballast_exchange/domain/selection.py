"""Which engine twin runs: the compiled one when it is built and current, else the reference.

``select_engine()`` decides once per call from the environment and what imports:

- ``BALLAST_ENGINE=reference`` forces the pure-Python reference;
- ``BALLAST_ENGINE=compiled`` (or unset, or ``auto``) takes the compiled twin when its extension
  imports and was built from the ``_engine.pyx`` beside it, and otherwise falls back to the
  reference, saying why in ``EngineChoice.reason``. The choice never raises: a server always
  starts, on one engine or the other.

Both twins take the same commands, return the same events, raise the same ``DomainError``s and
read and write the same snapshots (``domain.snapshot``), so a journal or a snapshot written with
one is replayed or restored with the other (docs/adr/0008-compiled-engine.md).
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, cast

from .engine import Engine
from .snapshot import restore as restore_reference

ENGINE_ENV = "BALLAST_ENGINE"
EngineName = Literal["compiled", "reference"]


@dataclass(frozen=True, slots=True)
class EngineChoice:
    """The engine twin to run and why.

    ``name`` is ``"compiled"`` or ``"reference"``; ``reason`` one line for logs, ``/readyz`` and
    the banner; ``compiled_available`` whether the compiled twin could have been used.
    ``new()`` makes an empty engine, ``restore(snapshot)`` one from a snapshot of either twin.
    """

    name: EngineName
    reason: str
    compiled_available: bool
    factory: Callable[[], Engine]
    restorer: Callable[[dict[str, Any]], Engine]

    def new(self) -> Engine:
        return self.factory()

    def restore(self, data: dict[str, Any]) -> Engine:
        return self.restorer(data)


def compiled_status() -> tuple[bool, str]:
    """Whether the compiled twin can run here, and if not, why (one line)."""
    try:
        from . import compiled
    except ImportError as error:
        return False, f"compiled engine not built ({error}); run `make .venv/.synced` to build it"
    source = Path(compiled.__file__).with_name("_engine.pyx")
    if source.exists():
        current = hashlib.sha256(source.read_bytes()).hexdigest()
        if current != compiled.SOURCE_SHA256:
            return False, (
                "compiled engine is stale (built from another _engine.pyx); "
                "run `uv sync` or `make .venv/.synced` to rebuild it"
            )
    return True, "compiled engine built from the current source"


def select_engine(env: str | None = None) -> EngineChoice:
    """The engine to run, from ``BALLAST_ENGINE`` (or ``env``) and what is built."""
    wanted = (os.environ.get(ENGINE_ENV, "") if env is None else env).strip().lower()
    if wanted == "reference":
        available, _ = compiled_status()
        return _reference(f"{ENGINE_ENV}=reference", available)
    available, why = compiled_status()
    if not available:
        return _reference(why, False)
    from . import compiled

    return EngineChoice(
        name="compiled",
        reason=why,
        compiled_available=True,
        factory=cast(Callable[[], Engine], compiled.Engine),
        restorer=cast(Callable[[dict[str, Any]], Engine], compiled.restore),
    )


def make_engine() -> Engine:
    """An empty engine of the selected twin (``select_engine().new()``)."""
    return select_engine().new()


def restore_engine(data: dict[str, Any]) -> Engine:
    """The selected twin restored from a snapshot taken of either twin."""
    return select_engine().restore(data)


def engine_name(engine: object) -> EngineName:
    """Which twin an engine instance is: ``"compiled"`` or ``"reference"``."""
    return "reference" if isinstance(engine, Engine) else "compiled"


def _reference(reason: str, compiled_available: bool) -> EngineChoice:
    return EngineChoice(
        name="reference",
        reason=reason,
        compiled_available=compiled_available,
        factory=Engine,
        restorer=restore_reference,
    )
