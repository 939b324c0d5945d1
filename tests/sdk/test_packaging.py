"""The distributions as a user installs them, for real: the SDK's wheel built from this tree and
installed without extras into a fresh virtual environment (no ``rich``) answers ``ballast
balance --json`` against a live server; both packages carry complete metadata (Apache-2.0
license and its text, authors, URLs, the README as long description, each other's version)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tomllib
import zipfile
from decimal import Decimal
from email.parser import Parser
from importlib import metadata
from pathlib import Path
from typing import Any

import pytest
from packaging.requirements import Requirement

from tests.live_server import LiveServer
from tests.sdk.conftest import AccountFactory
from tests.signed_client import SignedClient

ROOT = Path(__file__).resolve().parents[2]
# Where the source and the issues are (every distribution names the same repository).
REPOSITORY = "https://github.com/ballast-markets/ballast"
UV = ROOT / ".tools" / "bin" / "uv"


def runtime(requires: list[str]) -> list[metadata.Distribution]:
    """The installed distributions ``requires`` needs, with theirs, extras and markers heeded."""
    found: dict[str, metadata.Distribution] = {}
    todo = [Requirement(text) for text in requires]
    while todo:
        requirement = todo.pop()
        if requirement.marker and not requirement.marker.evaluate({"extra": ""}):
            continue
        dist = metadata.distribution(requirement.name)
        key = dist.metadata["Name"].lower().replace("_", "-")
        if key not in found:
            found[key] = dist
            todo += [Requirement(text) for text in dist.requires or []]
    return list(found.values())


def build_wheel(out: Path) -> Path:
    """The SDK's wheel, built from this tree (from uv's cache when it can, else from PyPI)."""
    command = [str(UV), "build", "--package", "ballast-markets", "--wheel", "-o", str(out)]
    for offline in (["--offline"], []):
        done = subprocess.run(
            [*command, *offline], cwd=ROOT, capture_output=True, text=True, timeout=300
        )
        if done.returncode == 0:
            break
    assert done.returncode == 0, done.stderr
    (wheel,) = out.glob("ballast_markets-*.whl")
    return wheel


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    if not UV.exists():
        pytest.skip("uv is not bootstrapped (make .venv/.synced does it)")
    return build_wheel(tmp_path_factory.mktemp("dist"))


@pytest.fixture(scope="module")
def bare(wheel: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A fresh virtual environment with the wheel and its dependencies, and nothing else."""
    venv = tmp_path_factory.mktemp("bare") / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    python = venv / "bin" / "python"
    site = Path(
        subprocess.run(
            [python, "-c", "import sysconfig; print(sysconfig.get_path('purelib'))"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
    )
    # pip would fetch the dependencies from PyPI: the installed copies serve (by link), and the
    # wheel itself is unpacked as an installer would, console script included.
    requires, _ = wheel_metadata(wheel)
    for dist in runtime(requires.get_all("Requires-Dist")):
        tops = {Path(str(f)).parts[0] for f in dist.files or []}
        for top in tops - {"..", "__pycache__"}:
            source = Path(str(dist.locate_file(top)))
            if source.exists() and not (site / top).exists():
                (site / top).symlink_to(source)
    install = (
        "import sys, pathlib, zipfile, configparser\n"
        "wheel, site, bin = sys.argv[1:4]\n"
        "zipfile.ZipFile(wheel).extractall(site)\n"
        "info = next(pathlib.Path(site).glob('ballast_markets-*.dist-info'))\n"
        "points = configparser.ConfigParser()\n"
        "points.read(info / 'entry_points.txt')\n"
        "for name, target in points['console_scripts'].items():\n"
        "    module, func = target.split(':')\n"
        "    script = pathlib.Path(bin) / name\n"
        "    body = f'import sys\\nfrom {module} import {func}\\nsys.exit({func}())\\n'\n"
        "    script.write_text(f'#!{sys.executable}\\n' + body)\n"
        "    script.chmod(0o755)\n"
    )
    subprocess.run([python, "-c", install, wheel, site, venv / "bin"], check=True)
    return venv


def test_json_works_in_an_installation_without_extras(
    bare: Path, server: LiveServer, new_account: AccountFactory, tmp_path: Path
) -> None:
    python, script = bare / "bin" / "python", bare / "bin" / "ballast"
    no_rich = subprocess.run([python, "-c", "import rich"], capture_output=True, text=True)
    assert no_rich.returncode != 0 and "No module named 'rich'" in no_rich.stderr
    account = new_account(1234.5)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("BALLAST_", "PYTHON"))}
    env.update(
        XDG_CONFIG_HOME=str(tmp_path),
        BALLAST_BASE_URL=server.api,
        BALLAST_API_KEY=account["api_key"],
        BALLAST_API_SECRET=account["api_secret"],
    )
    done = subprocess.run([script, "balance", "--json"], capture_output=True, text=True, env=env)
    assert done.returncode == 0, done
    client = SignedClient(server.api, account["api_key"], account["api_secret"])
    try:
        expected = json.loads(client.get("/account/balance").content, parse_float=Decimal)
    finally:
        client.close()
    assert json.loads(done.stdout, parse_float=Decimal) == expected
    table = subprocess.run([script, "balance"], capture_output=True, text=True, env=env)
    assert table.returncode == 1 and "ballast-markets[cli]" in table.stderr, table


def wheel_metadata(wheel: Path) -> Any:
    with zipfile.ZipFile(wheel) as archive:
        name = next(n for n in archive.namelist() if n.endswith(".dist-info/METADATA"))
        licenses = [n for n in archive.namelist() if "/licenses/" in n]
        return Parser().parsestr(archive.read(name).decode()), licenses


def test_the_sdk_wheel_carries_complete_metadata(wheel: Path) -> None:
    meta, licenses = wheel_metadata(wheel)
    assert meta["License-Expression"] == "Apache-2.0"
    assert meta["Author"] == "Ballast"
    urls = dict(url.split(", ", 1) for url in meta.get_all("Project-URL"))
    assert {"Homepage", "Documentation", "Repository", "Issues"} <= set(urls)
    assert all(url.startswith("https://") for url in urls.values())
    assert meta["Description-Content-Type"] == "text/markdown"
    assert meta.get_payload().startswith("# ballast-markets")
    assert licenses == [f"ballast_markets-{meta['Version']}.dist-info/licenses/LICENSE"]


def test_the_typescript_package_metadata_and_license() -> None:
    """``@ballast/sdk`` says the same as the Python distributions: the license, where its
    source and issues are, and it ships the license text."""
    where = ROOT / "sdk" / "typescript"
    package = json.loads((where / "package.json").read_text())
    assert package["license"] == "Apache-2.0"
    assert package["repository"] == {
        "type": "git",
        "url": f"git+{REPOSITORY}.git",
        "directory": "sdk/typescript",
    }
    assert package["homepage"].startswith(f"{REPOSITORY}/")
    assert package["bugs"] == {"url": f"{REPOSITORY}/issues"}
    assert "LICENSE" in package["files"]
    assert (where / "LICENSE").read_bytes() == (ROOT / "LICENSE").read_bytes()
    lock = json.loads((where / "package-lock.json").read_text())
    assert lock["packages"][""]["license"] == "Apache-2.0"


def test_the_server_metadata_and_license() -> None:
    server = tomllib.loads((ROOT / "server" / "pyproject.toml").read_text())["project"]
    sdk = tomllib.loads((ROOT / "sdk" / "python" / "pyproject.toml").read_text())["project"]
    for project, where in ((server, ROOT / "server"), (sdk, ROOT / "sdk" / "python")):
        assert project["license"] == "Apache-2.0"
        assert project["authors"] == [{"name": "Ballast"}]
        urls = project["urls"]
        assert all(urls[name].startswith("https://") for name in ("Homepage", "Documentation"))
        assert urls["Repository"] == REPOSITORY and urls["Issues"] == f"{REPOSITORY}/issues"
        assert (where / project["readme"]).read_text().startswith(f"# {project['name']}")
        # Each distribution ships the repository's license text.
        assert (where / "LICENSE").read_bytes() == (ROOT / "LICENSE").read_bytes()
    assert "Apache License" in (ROOT / "LICENSE").read_text()
    # The server runs the SDK's command line: it takes exactly the SDK released with it.
    assert f"ballast-markets[cli]=={sdk['version']}" in server["dependencies"]
