"""The operator's command line as people read it, for real: help with defaults on every command
and option, text by default and JSON with ``--json``, an operator's mistakes refused with the
API's error, and the README's settlement walk-through run as written against ``ballast serve``.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from ballast_exchange.cli import build_parser
from tests.e2e.test_one_server_per_store import BALLAST, serving

ROOT = Path(__file__).resolve().parents[2]
README = ROOT / "README.md"


def admin_env(data_dir: Path, url: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("BALLAST_")}
    return {**env, "BALLAST_DATA_DIR": str(data_dir), "BALLAST_ADMIN_URL": url}


class Admin:
    def __init__(self, data_dir: Path, url: str) -> None:
        self.env = admin_env(data_dir, url)

    def __call__(self, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [BALLAST, "admin", *args], capture_output=True, text=True, timeout=60, env=self.env
        )


@pytest.fixture(scope="module")
def admin(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Admin]:
    """One ``ballast serve`` for the module, with no dispute window, so that the README's
    walk-through finalizes at once; each test lists its own markets and accounts."""
    data_dir = tmp_path_factory.mktemp("admin-text") / "var"
    with serving(data_dir, env={"BALLAST_DISPUTE_WINDOW_S": "0"}) as (url, _):
        yield Admin(data_dir, url)


def ok(done: subprocess.CompletedProcess[str]) -> str:
    assert done.returncode == 0 and done.stderr == "", done
    return done.stdout


def refused(done: subprocess.CompletedProcess[str], *phrases: str) -> None:
    assert done.returncode == 1 and done.stdout == "", done
    assert done.stderr.startswith("error: ") and "Traceback" not in done.stderr, done
    for phrase in phrases:
        assert phrase in done.stderr, done


def leaves(parser: argparse.ArgumentParser, path: str = "ballast") -> Iterator[tuple[str, Any]]:
    """Every (command path, parser) under ``parser``, itself included."""
    yield path, parser
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                yield from leaves(sub, f"{path} {name}")


def test_every_command_and_option_has_help() -> None:
    missing = []
    for path, parser in leaves(build_parser()):
        for action in parser._actions:
            if isinstance(action, argparse._HelpAction):
                continue
            if isinstance(action, argparse._SubParsersAction):
                for choice in action._choices_actions:
                    if not choice.help:
                        missing.append(f"{path} {choice.dest}")
            elif not action.help:
                missing.append(f"{path} {'/'.join(action.option_strings) or action.dest}")
    assert missing == []


def test_help_shows_the_defaults() -> None:
    def shown(*args: str) -> str:
        done = subprocess.run([BALLAST, *args, "--help"], capture_output=True, text=True)
        assert done.returncode == 0, done
        return " ".join(done.stdout.split())

    create = shown("admin", "markets", "create")
    for text in ("(default: 0.001 for binary, 0.1 for index)", "(default: 0)", "--json"):
        assert text in create
    assert "(default: read,trade)" in shown("admin", "keys", "create")
    admin = shown("admin")
    assert "$BALLAST_ADMIN_URL" in admin and "$BALLAST_DATA_DIR, else ./var" in admin
    serve = shown("serve")
    assert "(default: 8000)" in serve and "BALLAST_PORT" in serve


def test_text_by_default_json_on_request(admin: Admin) -> None:
    text = ok(admin("accounts", "create", "--name", "Desk 7", "--deposit", "5000.5"))
    assert re.search(r"^total\s+5,000.50 USDC$", text, re.MULTILINE), text
    assert re.search(r"^reserved\s+0.00 USDC$", text, re.MULTILINE), text
    assert "shown this once" in text
    created = json.loads(ok(admin("--json", "accounts", "show", text.split()[2])))
    assert created["total_balance"] == 5000.5
    # --json after the command too, one line either way.
    listed = ok(admin("keys", "list", "--json"))
    assert listed.count("\n") == 1 and "keys" in json.loads(listed)
    table = ok(admin("keys", "list")).splitlines()
    assert table[0].split()[:4] == ["api", "key", "account", "id"]

    market = ok(
        admin(
            "markets",
            "create",
            *("--id", "text-index", "--name", "Text index", "--type", "index"),
            *("--close-time", "2099-01-01T00:00:00Z"),
        )
    )
    assert market.splitlines()[0].split() == ["text-index", "Text", "index", "index", "pending"]
    assert "prices      0.0 to 100.0, tick 0.1" in market


def test_an_operators_mistakes_are_refused_with_the_apis_error(
    admin: Admin, tmp_path: Path
) -> None:
    refused(
        admin(
            "markets",
            "create",
            *("--id", "too-late", "--name", "Too late", "--type", "binary"),
            *("--close-time", "2020-01-01T00:00:00Z"),
        ),
        "error: INVALID_REQUEST: close_time 2020-01-01T00:00:00.000Z is not in the future",
        "field: close_time",
    )
    ok(
        admin(
            "markets",
            "create",
            *("--id", "range", "--name", "Range", "--type", "index"),
            *("--close-time", "2099-01-01T00:00:00Z"),
        )
    )
    ok(admin("markets", "open", "range"))
    ok(admin("markets", "close", "range"))
    evidence = tmp_path / "reading.json"
    evidence.write_text(json.dumps({"source": "port authority", "reading": 150}))
    propose = ("settle", "propose", "range", "--evidence", str(evidence), "--value")
    refused(
        admin(*propose, "150"),
        "error: INVALID_SETTLEMENT: the value 150.0 is outside the market's range 0.0 to 100.0",
        "cap: 100.0",
    )
    shown = ok(admin(*propose, "61.5"))
    assert "proposed   value 61.5" in shown and "(matches the evidence)" in shown


def readme_walkthrough() -> str:
    text = README.read_text()
    section = text[text.index("### Listing and settling a market") :]
    start = section.index("```sh\n") + len("```sh\n")
    return section[start : section.index("\n```", start)]


def test_the_readme_settlement_walkthrough_runs_as_written(admin: Admin, tmp_path: Path) -> None:
    script = readme_walkthrough()
    assert "notice.json <<'EOF'" in script and "markets close" in script
    done = subprocess.run(
        ["bash", "-euo", "pipefail", "-c", script.replace(".venv/bin/ballast", BALLAST)],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
        env=admin.env,
    )
    assert done.returncode == 0, done
    assert done.stdout.count("(matches the evidence)") >= 2, done.stdout
    assert "panama-may-2031  status settled" in done.stdout, done.stdout


def test_the_readme_links_only_inside_the_repository() -> None:
    for target in re.findall(r"\]\(([^)]+)\)", README.read_text()):
        assert "://" not in target, target  # documents, not sites
        path = (ROOT / target.split("#")[0]).resolve()
        assert path.is_relative_to(ROOT) and path.exists(), target
