"""Hostile result files in real Blender: refused before the importer sees them,
and a failed import leaves nothing behind."""

from __future__ import annotations

import base64
import struct
from pathlib import Path
from types import ModuleType
from typing import Any

import bpy
import pytest

from tests.blender_helpers import OTHER_ID, TASK_ID, record_of
from tests.simulator import Hitem3DSimulator
from tests.test_core_glb_check import POSITIONS, document, glb

DATA_KINDS = ("objects", "meshes", "materials", "images", "collections", "node_groups", "actions", "textures")


def counts() -> dict[str, int]:
    return {kind: len(getattr(bpy.data, kind)) for kind in DATA_KINDS}


def two_meshes_the_second_broken() -> bytes:
    """Passes every declared-size check; Blender's importer builds the first
    mesh, then fails on the second (an index far past its vertices)."""
    indices = struct.pack("<3I", 0, 1, 999_999)
    doc = document(
        nodes=[{"mesh": 0, "name": "First"}, {"mesh": 1, "name": "Second"}],
        scenes=[{"nodes": [0, 1]}],
        materials=[{"name": "Hostile_Material"}],
        meshes=[{"name": "FirstMesh", "primitives": [{"attributes": {"POSITION": 0}, "material": 0}]},
                {"name": "SecondMesh", "primitives": [{"attributes": {"POSITION": 0}, "indices": 1}]}],
        buffers=[{"byteLength": 48}],
        bufferViews=[{"buffer": 0, "byteLength": 36}, {"buffer": 0, "byteOffset": 36, "byteLength": 12}],
        accessors=[{"bufferView": 0, "componentType": 5126, "count": 3, "type": "VEC3"},
                   {"bufferView": 1, "componentType": 5125, "count": 3, "type": "SCALAR"}],
    )
    return glb(doc, POSITIONS + indices)


def test_a_glb_reading_a_local_file_never_reaches_blender(addon: ModuleType, tmp_path: Path) -> None:
    secret = tmp_path / "secret.bin"
    secret.write_bytes(POSITIONS)  # would become the vertices
    hostile = tmp_path / "hostile.glb"
    hostile.write_bytes(glb(document(buffers=[{"byteLength": 36, "uri": str(secret)}]), b""))
    before = counts()

    # The step every import path takes (this process, the child converter).
    with pytest.raises(addon.core.errors.ImportFailed, match="buffer 0 refers to a file outside it"):
        addon.importer.run_gltf(hostile)
    assert counts() == before


def test_a_hostile_result_fails_the_task_with_a_specific_message(addon: ModuleType, prefs: Any,
                                                                  sim: Hitem3DSimulator, tmp_path: Path) -> None:
    picture = "data:image/png;base64," + base64.b64encode(b"\x89PNG\r\n\x1a\n" + struct.pack(">I", 13) + b"IHDR"
                                                         + struct.pack(">II", 40000, 40000) + bytes(9)).decode()
    sim.add_task(TASK_ID, ["success"], glb=glb(document(images=[{"uri": picture}])))

    with pytest.raises(RuntimeError, match="image 0 is 40,000 x 40,000 pixels"):
        bpy.ops.hitem3d.import_task(task_id=TASK_ID)
    assert record_of(addon).state.name == "FAILED"
    assert not addon.engine.files.result_path(TASK_ID).exists()


def test_a_failed_import_removes_everything_it_made(addon: ModuleType, prefs: Any, sim: Hitem3DSimulator,
                                                    capfd: pytest.CaptureFixture[str]) -> None:
    sim.add_task(TASK_ID, ["success"], glb=two_meshes_the_second_broken())
    before = counts()

    with pytest.raises(RuntimeError, match="Blender could not import the GLB: retry, or report it with the log"):
        bpy.ops.hitem3d.import_task(task_id=TASK_ID)

    assert counts() == before
    assert "Traceback" not in capfd.readouterr().err
    log_text = addon.diagnostics.log_path().read_text(encoding="utf-8")
    assert "Traceback" in log_text and "glTF import of" in log_text


def test_import_after_a_failure_brings_one_copy(addon: ModuleType, prefs: Any, sim: Hitem3DSimulator,
                                                sample_glb: Path) -> None:
    sim.add_task(TASK_ID, ["success"], glb=two_meshes_the_second_broken())
    sim.add_task(OTHER_ID, ["success"], glb=sample_glb)
    with pytest.raises(RuntimeError):
        bpy.ops.hitem3d.import_task(task_id=TASK_ID)

    assert bpy.ops.hitem3d.import_task(task_id=OTHER_ID) == {"FINISHED"}
    assert not [obj for obj in bpy.data.objects if obj.name.startswith(("First", "Second"))]
    assert not [mesh for mesh in bpy.data.meshes if mesh.name.startswith(("FirstMesh", "SecondMesh"))]
