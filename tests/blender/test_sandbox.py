"""The sandbox (``python build.py sandbox``) in real Blender: every task it
prints imports the way its kind wants, the failing one fails the way Hitem3D's
refunded failures do, and a generation sent from the panel comes back as a
model, as an artist trying the extension without an account would see."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import bpy
import pytest

from tests import sandbox
from tests.conftest import point_prefs_at
from tests.support.blender_helpers import import_error, imported_objects
from tests.support.simulator import Hitem3DSimulator

TASKS = {task.task_id: task for task in sandbox.tasks()}


def task_of(what: str) -> str:
    return next(task_id for task_id, task in TASKS.items() if task.what.startswith(what))


@pytest.fixture
def sandbox_sim(addon: ModuleType, monkeypatch: pytest.MonkeyPatch) -> Iterator[Hitem3DSimulator]:
    sim, _ = sandbox.start(0)
    for name, value in sim.upload_environment().items():
        monkeypatch.setenv(name, value)
    preferences = point_prefs_at(sim)
    try:
        yield sim
    finally:
        for name in ("client_id", "client_secret", "poll_interval"):
            setattr(preferences, name, preferences.bl_rna.properties[name].default)
        sim.stop()


def test_the_model_arrives_as_the_pawn_standing_in_the_hitem3d_collection(sandbox_sim: Hitem3DSimulator) -> None:
    task_id = task_of("a model (")
    assert bpy.ops.hitem3d.import_task(task_id=task_id) == {"FINISHED"}
    [pawn] = imported_objects(task_id)
    assert pawn.name.startswith("Pawn") and pawn.type == "MESH"
    assert pawn.name in bpy.data.collections["Hitem3D"].objects
    assert round(pawn.dimensions.z, 2) == 0.95  # glTF's Y-up, stood on Blender's Z
    assert pawn.active_material is not None and len(pawn.data.polygons) > 500


@pytest.mark.parametrize(("what", "parts"), [("parts", 3), ("segments", 4)])
def test_parts_and_segments_arrive_as_the_pawn_in_pieces(sandbox_sim: Hitem3DSimulator, what: str,
                                                         parts: int) -> None:
    task_id = task_of(what)
    assert bpy.ops.hitem3d.import_task(task_id=task_id) == {"FINISHED"}
    objects = imported_objects(task_id)
    assert len(objects) == parts and all(obj.type == "MESH" for obj in objects)
    assert len({obj.users_collection[0].name for obj in objects}) == 1
    assert objects[0].users_collection[0].name.endswith(" parts")


def test_the_relief_is_a_displaced_plane(sandbox_sim: Hitem3DSimulator) -> None:
    task_id = task_of("a relief")
    assert bpy.ops.hitem3d.import_task(task_id=task_id) == {"FINISHED"}
    [relief] = imported_objects(task_id)
    assert [modifier.type for modifier in relief.modifiers] == ["SUBSURF", "DISPLACE"]
    assert tuple(relief.modifiers[1].texture.image.size) == (256, 256)


def test_multicolour_shows_its_bands(sandbox_sim: Hitem3DSimulator) -> None:
    task_id = task_of("multicolour")
    assert bpy.ops.hitem3d.import_task(task_id=task_id) == {"FINISHED"}
    objects = imported_objects(task_id)
    assert objects and all(obj.data.color_attributes.active_color is not None for obj in objects)


def test_the_failing_task_says_what_hitem3d_says_and_is_retryable(addon: ModuleType,
                                                                  sandbox_sim: Hitem3DSimulator) -> None:
    task_id = task_of("a model that fails")
    assert "Generation failed on Hitem3D (credits are refunded)" in import_error(task_id)
    assert imported_objects(task_id) == []


def test_a_generation_from_the_panel_comes_back_as_the_pawn(addon: ModuleType, sandbox_sim: Hitem3DSimulator,
                                                             tmp_path: Path) -> None:
    from tests.support import sandbox_assets

    picture = tmp_path / "photo.png"
    picture.write_bytes(sandbox_assets.cover_png_bytes())
    gen: Any = bpy.context.scene.hitem3d_generate
    gen.image_path = str(picture)
    try:
        assert bpy.ops.hitem3d.submit_generation() == {"FINISHED"}
    finally:
        gen.property_unset("image_path")
    [submission] = sandbox_sim.submissions
    [pawn] = imported_objects(submission.task_id)
    assert pawn.name.startswith("Pawn")
