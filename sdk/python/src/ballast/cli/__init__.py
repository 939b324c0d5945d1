"""The ``ballast`` command: a trader's view of the exchange, on the SDK. ``--json`` works with
the SDK alone; the tables need ``rich`` (``pip install 'ballast-markets[cli]'``).

    ballast markets
    ballast book suez-apr2025 --depth 5
    ballast order buy suez-apr2025 --price 0.87 --size 1000
    ballast orders
    ballast cancel ord_123
    ballast positions
    ballast balance

``--json`` on any command prints the API's JSON. Other distributions add commands through the
``ballast.commands`` entry-point group: the exchange server (``ballast-exchange``) adds
``ballast serve`` and ``ballast admin``.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Sequence
from importlib.metadata import EntryPoint, entry_points

__all__ = ["COMMAND_GROUP", "main", "plugin_commands"]

#: The entry-point group through which other distributions add ``ballast`` commands: the
#: exchange server registers ``serve`` and ``admin`` there. The SDK knows no server module.
COMMAND_GROUP = "ballast.commands"
# Only to point a user at the package that brings a command this installation lacks.
ELSEWHERE = {
    "serve": "ballast-exchange",
    "sequencer": "ballast-exchange",
    "gateway": "ballast-exchange",
    "admin": "ballast-exchange",
}


Command = Callable[[list[str]], "int | None"]


def plugin_commands() -> dict[str, EntryPoint]:
    """Commands other installed distributions add, by name (each loaded only when run)."""
    found: dict[str, EntryPoint] = {}
    for entry in entry_points(group=COMMAND_GROUP):
        found.setdefault(entry.name, entry)
    return found


def main(argv: Sequence[str] | None = None) -> int:
    """Run ``ballast`` with ``argv`` (default: the process's arguments); the exit status."""
    args = list(sys.argv[1:] if argv is None else argv)
    skip_httpx_command_line()
    if args and not args[0].startswith("-"):
        entry = plugin_commands().get(args[0])
        if entry is not None:
            command: Command = entry.load()
            status = command(args)
            return 0 if status is None else int(status)
        if args[0] in ELSEWHERE:
            print(
                f"ballast {args[0]}: this command comes with the {ELSEWHERE[args[0]]} package, "
                "which is not installed here (`ballast-markets` is the client SDK and its "
                "trader commands: see `ballast --help`)",
                file=sys.stderr,
            )
            return 1
    from .commands import run

    return run(args)


def skip_httpx_command_line() -> None:
    """httpx imports its own command line (click, rich's syntax highlighting, pygments) with the
    package whenever those are installed, a third of the time a ``ballast`` command takes to
    start; no ``ballast`` command runs it. Leaves it out, if httpx is not imported yet."""
    if "httpx" not in sys.modules:
        # None in sys.modules makes the import fail, and httpx then defines a stub instead.
        sys.modules.setdefault("httpx._main", None)  # type: ignore[arg-type]
