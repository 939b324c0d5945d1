"""The package imports its public names on first use, so the ``ballast`` command (and ``ballast
admin``, which the server adds to it) starts without loading the clients, the stream, httpx and
websockets; every public name is still there, the object its module defines."""

from __future__ import annotations

import ast
import subprocess
import sys
from importlib import import_module
from pathlib import Path

import pytest

import ballast


def test_every_public_name_is_the_one_its_module_defines() -> None:
    # The imports type checkers read (`if TYPE_CHECKING:`) and the ones made on first use agree.
    tree = ast.parse(Path(ballast.__file__).read_text())
    (block,) = [node for node in tree.body if isinstance(node, ast.If)]
    imported = {
        alias.asname or alias.name: node.module
        for node in block.body
        if isinstance(node, ast.ImportFrom)
        for alias in node.names
    }
    assert imported == ballast._HOMES
    assert sorted(ballast.__all__) == sorted([*imported, "__version__"])
    for name, module in imported.items():
        assert getattr(ballast, name) is getattr(import_module(f"ballast.{module}"), name), name
    assert set(ballast.__all__) <= set(dir(ballast))
    with pytest.raises(AttributeError, match="no attribute 'NoSuchThing'"):
        ballast.NoSuchThing  # noqa: B018


def python(code: str) -> str:
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=False
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_the_command_line_loads_neither_the_clients_nor_httpxs_own_command_line() -> None:
    out = python(
        "import sys, ballast.cli\n"
        "heavy = ('httpx', 'websockets', 'ballast._core', 'ballast.client', 'ballast.stream')\n"
        "print([name for name in heavy if name in sys.modules])\n"
        "ballast.cli.skip_httpx_command_line()\n"
        "import httpx\n"
        "print(sys.modules['httpx._main'], 'click' in sys.modules, 'pygments' in sys.modules)\n"
        "print(httpx.Client().__class__.__name__)\n"
    )
    assert out.splitlines() == ["[]", "None False False", "Client"]


def test_from_ballast_import_still_gives_the_clients() -> None:
    out = python(
        "from ballast import BallastClient, OrderRequest, Stream, __version__\n"
        "print(BallastClient.__module__, OrderRequest.__module__, Stream.__module__)\n"
    )
    assert out.split() == ["ballast.client", "ballast._core", "ballast.stream"]
