"""What the import contracts in pyproject.toml cannot say: strategies touch no files or environment, and
no module takes part in an import cycle (a package and its own module included)."""

from __future__ import annotations

import ast
import itertools
from collections import deque
from pathlib import Path

import grimp
import pytest

REPO = Path(__file__).resolve().parents[2]
PACKAGES = ("datasets", "engine", "strategies", "reports")
# Builtins and attributes that reach files, the terminal or the environment without an import.
WORLD_NAMES = frozenset({"open", "input", "__import__", "getenv", "putenv", "Path", "PurePath"})
WORLD_ATTRIBUTES = frozenset(
    {"environ", "getenv", "putenv", "read_text", "read_bytes", "write_text", "write_bytes", "open"}
)


def find_world_access(source: str, *, filename: str = "<source>") -> list[str]:
    """Return ``"file:line what"`` for each file, terminal or environment access in ``source``."""
    found = []
    for node in ast.walk(ast.parse(source, filename=filename)):
        if isinstance(node, ast.Name) and node.id in WORLD_NAMES:
            found.append(f"{filename}:{node.lineno} {node.id}")
        elif isinstance(node, ast.Attribute) and node.attr in WORLD_ATTRIBUTES:
            found.append(f"{filename}:{node.lineno} .{node.attr}")
    return found


def find_import_cycles(graph: grimp.ImportGraph, modules: set[str]) -> list[str]:
    """Return one shortest cycle, as ``"a -> b (l.3) -> a (l.9)"``, per group of mutually importing modules."""
    cycles, seen = [], set()
    for module in sorted(modules):
        if module in seen:
            continue
        group = graph.find_upstream_modules(module) & graph.find_downstream_modules(module)
        if not group:
            continue
        group |= {module}
        seen |= group
        cycles.append(_render(graph, _shortest_cycle(graph, module, group)))
    return cycles


def _shortest_cycle(graph: grimp.ImportGraph, start: str, group: set[str]) -> list[str]:
    paths = {start: [start]}
    queue = deque([start])
    while queue:
        module = queue.popleft()
        for imported in sorted(graph.find_modules_directly_imported_by(module) & group):
            if imported == start:
                return [*paths[module], start]
            if imported not in paths:
                paths[imported] = [*paths[module], imported]
                queue.append(imported)
    raise AssertionError(f"expected {start} to be in a cycle of {sorted(group)}, was not")


def _render(graph: grimp.ImportGraph, cycle: list[str]) -> str:
    steps = [cycle[0]]
    for importer, imported in itertools.pairwise(cycle):
        details = graph.get_import_details(importer=importer, imported=imported)
        lines = sorted(detail["line_number"] for detail in details)
        steps.append(f"{imported} (l.{','.join(map(str, lines))})" if lines else imported)
    return " -> ".join(steps)


def test_strategies_read_no_files_or_environment() -> None:
    found = [
        hit
        for path in sorted((REPO / "strategies").rglob("*.py"))
        for hit in find_world_access(path.read_text(), filename=str(path.relative_to(REPO)))
    ]
    assert found == [], "a strategy reads only what the Nautilus kernel injects and its config"


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ("data = open('x.csv').read()", ["<source>:1 open"]),
        ("import os\nkey = os.environ['KEY']", ["<source>:2 .environ"]),
        ("from os import getenv\nkey = getenv('KEY')", ["<source>:2 getenv"]),
        ("text = Path('x').read_text()", ["<source>:1 .read_text", "<source>:1 Path"]),
        ("price = bar.close * 2", []),
    ],
    ids=["open", "os.environ", "getenv", "Path.read_text", "arithmetic"],
)
def test_find_world_access_names_each_access(source: str, expected: list[str]) -> None:
    assert sorted(find_world_access(source)) == sorted(expected)


def test_no_import_cycle_between_modules() -> None:
    graph = grimp.build_graph(*PACKAGES)
    assert find_import_cycles(graph, graph.modules) == []


def test_find_import_cycles_names_a_package_importing_its_own_importer() -> None:
    graph = grimp.ImportGraph()
    for module in ("pkg", "pkg.a", "pkg.b", "pkg.c"):
        graph.add_module(module)
    graph.add_import(importer="pkg", imported="pkg.a", line_number=1, line_contents="from pkg import a")
    graph.add_import(importer="pkg.a", imported="pkg.b", line_number=2, line_contents="from pkg import b")
    graph.add_import(importer="pkg.b", imported="pkg", line_number=3, line_contents="import pkg")
    graph.add_import(importer="pkg.c", imported="pkg.a", line_number=4, line_contents="from pkg import a")
    assert find_import_cycles(graph, graph.modules) == ["pkg -> pkg.a (l.1) -> pkg.b (l.2) -> pkg (l.3)"]
