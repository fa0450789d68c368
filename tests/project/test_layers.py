"""The layers promised in README's Layout: the engine never imports the UI, and
the Blender layer has no import cycle between its modules."""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[2] / "hitem3d_blender"
# The interface: what the user sees and what decides policy.
UI_MODULES = {"bridge", "cli", "connection", "diagnostics", "generate", "operators", "panels", "preferences",
              "properties", "session", "submit_calls", "translations", "ui_sync", "texture_selection",
              "picture_input", "spending"}


def _node(path: Path) -> str:
    """A module's name in the graph: the engine and the core each count as one."""
    relative = path.relative_to(PACKAGE).with_suffix("")
    return relative.parts[0] if len(relative.parts) > 1 else relative.name


def _imports(path: Path) -> set[str]:
    """Top-level names of the package this file imports, lazily or not."""
    depth = len(path.relative_to(PACKAGE).parts) - 1
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text("utf-8"))):
        if not isinstance(node, ast.ImportFrom) or node.level == 0:
            continue
        levels_up = node.level - 1
        if levels_up > depth:
            continue
        inside = list(path.relative_to(PACKAGE).parts[:depth - levels_up])
        target = inside + (node.module.split(".") if node.module else [])
        if target:
            found.add(target[0])
        else:
            found.update(alias.name for alias in node.names)
    return found


def _graph() -> dict[str, set[str]]:
    graph: dict[str, set[str]] = {}
    for path in PACKAGE.rglob("*.py"):
        if path.name == "__init__.py" and path.parent == PACKAGE:
            continue  # registration imports everything, and nothing imports it
        node = _node(path)
        graph.setdefault(node, set()).update(name for name in _imports(path) if name != node)
    return graph


def test_the_engine_never_imports_the_interface() -> None:
    for path in (PACKAGE / "engine").rglob("*.py"):
        assert not _imports(path) & UI_MODULES, path.name


def test_the_core_imports_nothing_from_the_blender_layer() -> None:
    for path in (PACKAGE / "core").rglob("*.py"):
        assert _imports(path) <= {"core"}, path.name


def test_the_blender_layer_has_no_import_cycle() -> None:
    graph = _graph()
    visiting: list[str] = []
    done: set[str] = set()

    def visit(node: str) -> None:
        assert node not in visiting, " -> ".join(visiting[visiting.index(node):] + [node])
        if node in done:
            return
        visiting.append(node)
        for target in sorted(graph.get(node, ())):
            visit(target)
        visiting.pop()
        done.add(node)

    for node in sorted(graph):
        visit(node)
