"""CI starts its services with the repository's own script: ``.ci/run`` reaches nothing outside
the clone, and ``scripts/services.sh`` leaves running services alone (run twice, it changes
nothing the second time and says each one is up)."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SERVICES = ("postgresql", "redis", "nats")


def test_ci_uses_the_repositorys_own_script() -> None:
    run = (ROOT / ".ci" / "run").read_text()
    assert "scripts/services.sh" in run
    assert "../" not in run and "/shared/" not in run


def test_services_script_is_a_no_op_on_running_services() -> None:
    first = subprocess.run(
        ["bash", str(ROOT / "scripts" / "services.sh")], capture_output=True, text=True, timeout=120
    )
    assert first.returncode == 0, first
    second = subprocess.run(
        ["bash", str(ROOT / "scripts" / "services.sh")], capture_output=True, text=True, timeout=60
    )
    assert second.returncode == 0, second
    states = dict(re.findall(r"^(\w+): (.+)$", second.stdout, re.MULTILINE))
    assert set(states) == set(SERVICES), second.stdout
    # Whatever the first run found or started is up now; only an absent one may say so.
    assert all(state in ("up", "not installed") for state in states.values()), second.stdout
