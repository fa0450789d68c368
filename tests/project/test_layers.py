"""The layers of README's Layout guard themselves: the rules come from the
folders (``tests/project/layers.py``), and each rule is shown to fail on a
copy of the package with a violation planted in it."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from tests.project import layers
from tests.project.layers import PACKAGE


@pytest.fixture
def planted(tmp_path: Path) -> Path:
    """A copy of the package to plant violations in."""
    copy = tmp_path / layers.PACKAGE_NAME
    shutil.copytree(PACKAGE, copy, ignore=shutil.ignore_patterns("__pycache__"))
    return copy


def plant(package: Path, module: str, line: str) -> None:
    """Add ``line`` at the end of ``module`` (a path inside the package)."""
    path = package / module
    path.write_text(path.read_text("utf-8") + "\n" + line + "\n", "utf-8")


# -- the rules hold today --------------------------------------------------------------------------


def test_every_folder_of_the_package_is_a_layer_with_a_rule() -> None:
    assert layers.unruled_layers(PACKAGE) == []
    assert set(layers.RULES) <= layers.layers(PACKAGE), "a rule names a folder that is gone"


def test_no_import_crosses_a_layer_the_wrong_way() -> None:
    assert layers.layer_violations(PACKAGE) == []


def test_the_core_never_imports_blender() -> None:
    assert layers.blender_in_core(PACKAGE) == []


def test_importing_every_core_module_imports_nothing_of_blender() -> None:
    assert len(layers.core_modules(PACKAGE)) >= 30  # walked, not listed: every module is there
    assert layers.leaked_on_import(PACKAGE) == ""


def test_no_layer_has_an_import_cycle_inside_it() -> None:
    # The layers themselves cannot form a cycle: RULES only points down.
    for layer in sorted(layers.RULES):
        assert layers.cycles_within(PACKAGE, layer) == [], layer


# -- each rule fails on a planted violation --------------------------------------------------------


def test_bpy_imported_in_a_core_module_fails(planted: Path) -> None:
    plant(planted, "core/journal.py", "import bpy")
    assert layers.blender_in_core(planted) == ["core/journal.py:" + str(_last_line(planted / "core/journal.py")) + " bpy"]


def test_bpy_imported_lazily_in_a_core_function_fails(planted: Path) -> None:
    plant(planted, "core/journal.py", "def _late() -> None:\n    from mathutils import Vector  # noqa")
    assert [hit.split(" ")[1] for hit in layers.blender_in_core(planted)] == ["mathutils.Vector"]


def test_a_core_module_that_pulls_in_bpy_at_import_fails(planted: Path, tmp_path: Path) -> None:
    # A stand-in bpy on the path: the import check must see it arrive.
    (tmp_path / "bpy.py").write_text("")
    plant(planted, "core/journal.py", "import bpy  # noqa")
    assert layers.leaked_on_import(planted) == "bpy"


def test_a_new_core_module_is_checked_without_being_listed(planted: Path) -> None:
    (planted / "core" / "brand_new.py").write_text("import bmesh\n")
    assert layers.blender_in_core(planted) == ["core/brand_new.py:1 bmesh"]
    assert "hitem3d_blender.core.brand_new" in layers.core_modules(planted)


@pytest.mark.parametrize(("module", "line", "crossing"), [
    ("engine/timer.py", "from ..ui import panels", "ui.panels"),
    ("engine/timer.py", "import hitem3d_blender.ui.ui_sync", "ui.ui_sync"),
    ("scene/importer.py", "from ..engine import state", "engine.state"),
    ("scene/importer.py", "from bl_ext.user_default.hitem3d_blender.ui import panels", "ui.panels"),
    ("core/journal.py", "from .. import identity", "identity"),
    ("core/journal.py", "from ..scene import importer", "scene.importer"),
    ("i18n/translations.py", "from ..engine import files", "engine.files"),
    ("identity.py", "from .ui import panels", "ui.panels"),
])
def test_an_import_across_a_layer_fails(planted: Path, module: str, line: str, crossing: str) -> None:
    plant(planted, module, line)
    assert [hit.split(" imports ")[1] for hit in layers.layer_violations(planted)] == [crossing]


def test_a_lazy_import_across_a_layer_fails_too(planted: Path) -> None:
    plant(planted, "engine/control.py", "def _late() -> None:\n    from ..ui import session  # noqa")
    assert [hit.split(" imports ")[1] for hit in layers.layer_violations(planted)] == ["ui.session"]


def test_a_new_folder_without_a_rule_fails(planted: Path) -> None:
    (planted / "widgets").mkdir()
    (planted / "widgets" / "__init__.py").write_text("")
    assert layers.unruled_layers(planted) == ["widgets"]


def test_a_cycle_inside_a_layer_fails(planted: Path) -> None:
    plant(planted, "scene/placement.py", "def _late() -> None:\n    from . import importer  # noqa")
    assert any("hitem3d_blender" not in " ".join(cycle) and "scene.placement" in cycle
               for cycle in layers.cycles_within(planted, "scene"))


def _last_line(path: Path) -> int:
    return len(path.read_text("utf-8").splitlines())
