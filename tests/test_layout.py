# Copyright (c) 2026 The irsam authors. Licensed under the Apache License, Version 2.0.
"""The package layout: ``irsam/utils`` is the ground floor and no module imports itself back."""

from __future__ import annotations

import ast
from pathlib import Path

from conftest import PROJECT_ROOT

PACKAGE = PROJECT_ROOT / "irsam"


def _module_name(path: Path) -> str:
    """Dotted module name of a file (``irsam/a/__init__.py`` -> ``irsam.a``)."""
    parts = path.relative_to(PROJECT_ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def import_graph() -> dict[str, set[str]]:
    """Every irsam module and the irsam modules it imports, lazy imports inside functions included;
    importing ``irsam.a.b`` also counts as importing the package ``irsam.a``."""
    modules = {_module_name(path): path for path in PACKAGE.rglob("*.py")}
    graph: dict[str, set[str]] = {}
    for name, path in modules.items():
        targets: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                targets.add(node.module)
                targets.update(f"{node.module}.{alias.name}" for alias in node.names)
            elif isinstance(node, ast.Import):
                targets.update(alias.name for alias in node.names)
        expanded = set()
        for target in targets:
            parts = target.split(".")
            expanded.update(".".join(parts[:k]) for k in range(2, len(parts) + 1))
        graph[name] = {
            t for t in expanded if t in modules and t != name and not name.startswith(t + ".")
        }
    return graph


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One import cycle as ``[a, b, ..., a]``, or None (depth-first search)."""
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(graph[node]):
            if state.get(nxt) == 1:
                return stack[stack.index(nxt) :] + [nxt]
            if nxt not in state and (cycle := visit(nxt)):
                return cycle
        stack.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state and (cycle := visit(node)):
            return cycle
    return None


def test_no_import_cycle_in_the_package() -> None:
    graph = import_graph()
    assert "irsam.metrics.irstd" in graph and "irsam.tasks.train" in graph
    assert find_cycle(graph) is None


def test_the_cycle_finder_finds_a_cycle() -> None:
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": set()}
    assert find_cycle(graph) == ["a", "b", "c", "a"]


def test_utils_imports_nothing_above_it() -> None:
    graph = import_graph()
    upward = {
        module: sorted(t for t in targets if not t.startswith("irsam.utils"))
        for module, targets in graph.items()
        if module.startswith("irsam.utils")
    }
    assert upward and not any(upward.values()), upward
