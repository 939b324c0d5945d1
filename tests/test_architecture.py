"""The server's imports point down the layers and never go round in a circle
(docs/architecture.md). Read from the source with ``ast``, so nothing is imported to check."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1] / "server" / "src"
PACKAGE = "ballast_exchange"
# Lower layers may not import higher ones. The top assembles everything.
RANK = {
    "domain": 0,
    "store": 1,
    "access": 1,  # adapters: keys, signing, replay cache, rate-limit backends
    "service": 2,
    "wire": 3,  # what the entrypoints share: request models, numbers, views, error envelope
    "api": 4,
    "stream": 4,
    "dashboard": 4,
    "sandbox": 4,
    "bootstrap": 5,
    "gateway_runtime": 5,
    "app": 5,
    "cli": 5,
    "cli_recovery": 5,
    "config": 0,  # settings: plain data, importable from anywhere
    "logs": 0,
}


def modules() -> dict[str, Path]:
    found = {}
    for path in (ROOT / PACKAGE).rglob("*.py"):
        parts = path.relative_to(ROOT).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        found[name] = path
    return found


def imports(name: str, path: Path, known: dict[str, Path]) -> set[str]:
    """The package's own modules that ``name`` imports (anywhere in the file)."""
    is_package = path.name == "__init__.py"
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names if a.name in known)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = name.split(".") if is_package else name.split(".")[:-1]
                base = base[: len(base) - (node.level - 1)]
                prefix = ".".join([*base, *([node.module] if node.module else [])])
            else:
                prefix = node.module or ""
            subs = {f"{prefix}.{a.name}" for a in node.names} & known.keys()
            found |= subs
            if len(subs) < len(node.names) and prefix in known:
                found.add(prefix)  # names from the module (or package) itself
    return found - {name}


def graph() -> dict[str, set[str]]:
    known = modules()
    return {name: imports(name, path, known) for name, path in known.items()}


def cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(edges[v]):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for v in sorted(edges):
        if v not in index:
            visit(v)
    return found


def layer(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else ""


def test_no_import_circles() -> None:
    assert cycles(graph()) == []


def test_imports_point_down() -> None:
    upward = [
        f"{module} -> {target}"
        for module, targets in graph().items()
        for target in targets
        if layer(module) in RANK
        and layer(target) in RANK
        and RANK[layer(target)] > RANK[layer(module)]
    ]
    assert upward == []


def test_every_layer_is_ranked() -> None:
    assert {layer(m) for m in graph()} - {""} <= RANK.keys()


ENTRYPOINTS = {"api", "stream", "dashboard", "sandbox"}


def test_entrypoints_meet_only_in_the_layers_below() -> None:
    """REST, the stream, the dashboard and the sandbox share the service and the wire, never
    one another's modules."""
    crossing = [
        f"{module} -> {target}"
        for module, targets in graph().items()
        for target in targets
        if layer(module) in ENTRYPOINTS
        and layer(target) in ENTRYPOINTS
        and layer(target) != layer(module)
    ]
    assert crossing == []


def test_only_the_domain_and_the_service_touch_the_engine() -> None:
    """Engine state is read through ``service.reads.Reads``: no ``.engine.`` attribute walk
    outside ``domain/`` and ``service/`` (the stream's read models are seeded by the hub)."""
    found = []
    for name, path in modules().items():
        if layer(name) in {"domain", "service"}:
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if (
                isinstance(node, ast.Attribute)
                and node.attr == "engine"
                and isinstance(node.value, ast.Attribute)
                and node.value.attr == "exchange"
            ):
                found.append(name)
    # The hub seeds the stream's read models from the engine once, at start (ADR 0014).
    assert set(found) <= {"ballast_exchange.stream.hub"}
