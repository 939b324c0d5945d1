"""The ``ballast`` command (``pip install 'ballast-markets[cli]'``): a trader's view of the
exchange, on the SDK.

    ballast markets
    ballast book suez-apr2025 --depth 5
    ballast order buy suez-apr2025 --price 0.87 --size 1000
    ballast orders
    ballast cancel ord_123
    ballast positions
    ballast balance

``--json`` on any command prints the API's JSON. ``ballast serve`` and ``ballast admin`` belong
to the exchange server (the ``ballast-exchange`` package), which this hands them to.
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Sequence

__all__ = ["SERVER_COMMANDS", "main"]

#: Commands of the exchange server, run by ``ballast_exchange.cli`` when it is installed.
SERVER_COMMANDS = ("serve", "admin")


def main(argv: Sequence[str] | None = None) -> int:
    """Run ``ballast`` with ``argv`` (default: the process's arguments); the exit status."""
    args = list(sys.argv[1:] if argv is None else argv)
    if args and args[0] in SERVER_COMMANDS:
        return _server(args)
    from .commands import run

    return run(args)


def _server(args: list[str]) -> int:
    """``ballast serve`` / ``ballast admin``: the server's own command line."""
    try:
        server_cli = importlib.import_module("ballast_exchange.cli")
    except ModuleNotFoundError as error:
        if not error.name or error.name.split(".")[0] != "ballast_exchange":
            raise
        print(
            f"ballast {args[0]}: this command runs the Ballast exchange server, which is not "
            "installed here (it is the ballast-exchange package; `ballast-markets` is the "
            "client SDK and its trader commands: see `ballast --help`)",
            file=sys.stderr,
        )
        return 1
    status = server_cli.main(args)
    return 0 if status is None else int(status)
