"""Run only by tests/blender/test_versions.py, in its own pytest process: Blender's glTF
exporter runs, and the process must still end with pytest's exit code."""

from __future__ import annotations

from pathlib import Path


def test_the_gltf_exporter_runs(tmp_path: Path) -> None:
    import bpy

    bpy.ops.mesh.primitive_cube_add()
    path = tmp_path / "cube.glb"
    assert bpy.ops.export_scene.gltf(filepath=str(path), export_format="GLB") == {"FINISHED"}
    assert path.read_bytes()[:4] == b"glTF"
