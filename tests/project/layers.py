"""The layer rules of README's Layout, read from the folders themselves.

A folder of ``hitem3d_blender/`` is a layer; ``RULES`` says which layers each
may import. A module at the top of the package (``identity.py``,
``bpy_compat.py``) is a base that every Blender-side layer may use; the core
may use nothing outside itself. Imports are read from the source (relative
and absolute, at module level or inside functions), so a lazy import counts
as much as any other.

Every function takes the package's folder, so the tests can run each rule on
a copy with a violation planted in it and see it fail.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

PACKAGE_NAME = "hitem3d_blender"
PACKAGE = Path(__file__).resolve().parents[2] / PACKAGE_NAME

# What each layer may import besides itself (and, for all but the core, the
# base modules at the top of the package). Below a layer is what it may use.
RULES: dict[str, frozenset[str]] = {
    "core": frozenset(),  # plain Python: the API, tasks, files, checks
    "scene": frozenset({"core"}),  # files become objects and back; never the engine or the UI
    "engine": frozenset({"core", "scene"}),  # runs work; never the UI
    "i18n": frozenset({"core"}),  # the catalogue
    "ui": frozenset({"core", "scene", "engine", "i18n"}),  # what the artist sees
}
# Modules of Blender itself (and its C modules): never imported by the core.
BLENDER_MODULES = frozenset({"bpy", "_bpy", "bpy_extras", "bpy_types", "bmesh", "mathutils", "gpu", "gpu_extras",
                             "blf", "bgl", "aud", "imbuf", "idprop", "addon_utils", "bl_math", "freestyle"})


@dataclass(frozen=True)
class Import:
    source: Path  # the importing file
    line: int
    target: tuple[str, ...]  # inside the package: ("ui", "panels"); outside: ("bpy",)
    inside: bool  # the target is a module of the package


def module_parts(package: Path, path: Path) -> tuple[str, ...]:
    relative = path.relative_to(package).with_suffix("")
    parts = relative.parts
    return parts[:-1] if parts[-1] == "__init__" else parts


def imports_of(package: Path, path: Path) -> list[Import]:
    """Every import statement of ``path``, wherever it stands in the file."""
    parts = module_parts(package, path)
    # The package a relative import starts from: the module's own for a
    # package's __init__, else the folder it is in.
    base = parts if path.name == "__init__.py" else parts[:-1]
    found: list[Import] = []
    for node in ast.walk(ast.parse(path.read_text("utf-8"), str(path))):
        if isinstance(node, ast.Import):
            for alias in node.names:
                found.append(_absolute(path, node.lineno, alias.name))
        elif isinstance(node, ast.ImportFrom):
            if node.level == 0:
                module = _absolute(path, node.lineno, node.module or "")
                found += [Import(path, node.lineno, module.target + (alias.name,), module.inside)
                          for alias in node.names]
                continue
            up = node.level - 1
            if up > len(base):
                found.append(Import(path, node.lineno, ("<beyond the package>",), False))
                continue
            start = base[:len(base) - up] + tuple(node.module.split(".") if node.module else ())
            # One target a name: ``from ..ui import panels`` imports ui.panels.
            found += [Import(path, node.lineno, start + (alias.name,), True) for alias in node.names]
    return found


def _absolute(path: Path, line: int, module: str) -> Import:
    names = tuple(module.split("."))
    # hitem3d_blender.x or bl_ext.<repo>.hitem3d_blender.x: a module of ours.
    if PACKAGE_NAME in names:
        rest = names[names.index(PACKAGE_NAME) + 1:]
        return Import(path, line, rest, True)
    return Import(path, line, names, False)


def layer_of(package: Path, path: Path) -> str:
    """A file's layer: its folder; a module at the top is a base (its own name)."""
    parts = module_parts(package, path)
    return parts[0] if parts else "__init__"


def layers(package: Path) -> set[str]:
    return {child.name for child in package.iterdir() if child.is_dir() and (child / "__init__.py").is_file()}


def bases(package: Path) -> set[str]:
    return {child.stem for child in package.glob("*.py") if child.name != "__init__.py"}


def python_files(package: Path) -> list[Path]:
    return sorted(path for path in package.rglob("*.py") if "__pycache__" not in path.parts)


def unruled_layers(package: Path) -> list[str]:
    """Folders that are layers without a rule: a new folder must say what it may import."""
    return sorted(layers(package) - set(RULES))


def layer_violations(package: Path) -> list[str]:
    """Imports that cross a layer the wrong way, as ``file:line imports target``."""
    found: list[str] = []
    base_modules = bases(package)
    for path in python_files(package):
        layer = layer_of(package, path)
        if layer == "__init__":
            continue  # registration imports every layer, and nothing imports it
        if layer in base_modules:
            allowed = {"core"}  # a base uses only the core, so no layer is above it
        elif layer == "core":
            allowed = set()
        else:
            allowed = set(RULES.get(layer, frozenset())) | base_modules
        for item in imports_of(package, path):
            if not item.inside or not item.target:
                continue
            target = item.target[0]
            if target != layer and target not in allowed:
                found.append(f"{path.relative_to(package)}:{item.line} imports {'.'.join(item.target)}")
    return found


def blender_in_core(package: Path) -> list[str]:
    """Imports of Blender's modules anywhere in the core, as ``file:line module``."""
    found: list[str] = []
    for path in python_files(package / "core"):
        for item in imports_of(package, path):
            if not item.inside and item.target and item.target[0] in BLENDER_MODULES:
                found.append(f"{path.relative_to(package)}:{item.line} {'.'.join(item.target)}")
    return found


def core_modules(package: Path) -> list[str]:
    """Every module of the core, found by walking its folder."""
    return sorted(".".join((PACKAGE_NAME, *module_parts(package, path))) for path in python_files(package / "core"))


def leaked_on_import(package: Path) -> str:
    """Import every core module in a fresh interpreter (from ``package``'s
    parent folder) and say which of Blender's modules came along; "" if none."""
    script = (
        "import importlib, sys\n"
        f"for name in {core_modules(package)!r}:\n"
        "    importlib.import_module(name)\n"
        f"leaked = sorted(m for m in sys.modules if m.split('.')[0] in {sorted(BLENDER_MODULES)!r})\n"
        "print(','.join(leaked))\n"
    )
    result = subprocess.run([sys.executable, "-c", script], cwd=package.parent, capture_output=True, text=True,
                            timeout=120, check=False)
    if result.returncode != 0:
        return f"importing the core failed: {result.stderr.strip()[-2000:]}"
    return result.stdout.strip()


def cycles_within(package: Path, layer: str) -> list[list[str]]:
    """Import cycles between the modules of one layer (lazy imports included)."""
    graph: dict[str, set[str]] = {}
    modules = {".".join(module_parts(package, path)) for path in python_files(package / layer)}
    for path in python_files(package / layer):
        node = ".".join(module_parts(package, path))
        targets = graph.setdefault(node, set())
        for item in imports_of(package, path):
            if item.inside and item.target and item.target[0] == layer:
                name = ".".join(item.target)
                while name and name not in modules:
                    name = name.rpartition(".")[0]
                if name and name != node:
                    targets.add(name)
    cycles: list[list[str]] = []
    visiting: list[str] = []
    done: set[str] = set()

    def visit(node: str) -> None:
        if node in visiting:
            cycles.append(visiting[visiting.index(node):] + [node])
            return
        if node in done:
            return
        visiting.append(node)
        for target in sorted(graph.get(node, ())):
            visit(target)
        visiting.pop()
        done.add(node)

    for node in sorted(graph):
        visit(node)
    return cycles
