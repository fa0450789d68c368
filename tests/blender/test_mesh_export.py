"""Exporting the selection for Hitem3D, in real Blender: one GLB of the selected
meshes with modifiers applied, in our folder, checked against the 200 MB limit,
and the artist's selection and mode left as they were."""

from __future__ import annotations

import importlib
import json
import struct
from pathlib import Path
from types import ModuleType
from typing import Any

import bpy
import pytest


def glb_json(path: Path) -> dict[str, Any]:
    data = path.read_bytes()
    assert data[:4] == b"glTF"
    length, kind = struct.unpack_from("<II", data, 12)
    assert kind == 0x4E4F534A  # JSON
    parsed: dict[str, Any] = json.loads(data[20:20 + length])
    return parsed


def vertex_count(gltf: dict[str, Any]) -> int:
    return sum(gltf["accessors"][prim["attributes"]["POSITION"]]["count"]
               for mesh in gltf.get("meshes", []) for prim in mesh["primitives"])


def cube(name: str, location: tuple[float, float, float] = (0.0, 0.0, 0.0), size: float = 2.0) -> bpy.types.Object:
    mesh = bpy.data.meshes.new(name)
    h = size / 2
    verts = [(x, y, z) for x in (-h, h) for y in (-h, h) for z in (-h, h)]
    faces = [(0, 1, 3, 2), (4, 6, 7, 5), (0, 4, 5, 1), (2, 3, 7, 6), (0, 2, 6, 4), (1, 5, 7, 3)]
    mesh.from_pydata(verts, [], faces)
    obj = bpy.data.objects.new(name, mesh)
    obj.location = location
    bpy.context.scene.collection.objects.link(obj)
    return obj


@pytest.fixture
def export(addon: ModuleType) -> ModuleType:
    return importlib.import_module(f"{addon.__name__}.scene.mesh_export")


def mesh_files(addon: ModuleType) -> ModuleType:
    return importlib.import_module(f"{addon.__name__}.core.mesh_files")


def select_only(*objects: bpy.types.Object) -> None:
    for obj in bpy.context.view_layer.objects:
        if obj is not None:
            obj.select_set(False)
    for obj in objects:
        obj.select_set(True)
    bpy.context.view_layer.objects.active = objects[0] if objects else None


def test_the_selected_meshes_become_one_glb_in_our_folder(export: ModuleType) -> None:
    chair, table = cube("Chair"), cube("Table", (4.0, 0.0, 0.0))
    cube("Lamp", (8.0, 0.0, 0.0))  # not selected: not sent
    select_only(table, chair)
    exported = export.export_meshes(export.selected_meshes(bpy.context), bpy.context)
    assert exported.path.parent == export.exports_dir()
    assert exported.size == exported.path.stat().st_size
    names = {node["name"] for node in glb_json(exported.path)["nodes"]}
    assert names == {"Chair", "Table"}
    assert exported.names == ("Table", "Chair")  # the active object names the result
    assert exported.title == "Table +1"
    assert exported.low == pytest.approx((-1.0, -1.0, -1.0)) and exported.high == pytest.approx((5.0, 1.0, 1.0))


def test_modifiers_are_applied_and_no_material_or_camera_is_sent(export: ModuleType) -> None:
    obj = cube("Smooth")
    obj.modifiers.new("Subdivision", "SUBSURF").levels = 2
    obj.data.materials.append(bpy.data.materials.new("Paint"))
    camera = bpy.data.objects.new("Cam", bpy.data.cameras.new("Cam"))
    bpy.context.scene.collection.objects.link(camera)
    select_only(obj, camera)
    gltf = glb_json(export.export_meshes(export.selected_meshes(bpy.context), bpy.context).path)
    assert vertex_count(gltf) > 8 * 4  # subdivided twice, not the 8 corners of the cube
    assert not gltf.get("materials") and not gltf.get("cameras")


def test_the_artists_selection_active_object_and_edit_mode_come_back(export: ModuleType) -> None:
    a, b, other = cube("A"), cube("B", (3.0, 0.0, 0.0)), cube("Other", (6.0, 0.0, 0.0))
    select_only(a, other)
    bpy.ops.object.mode_set(mode="EDIT")
    try:
        export.export_meshes([b], bpy.context)
        assert bpy.context.mode == "EDIT_MESH"
    finally:
        bpy.ops.object.mode_set(mode="OBJECT")
    assert {obj.name for obj in bpy.context.selected_objects} == {"A", "Other"}
    assert bpy.context.view_layer.objects.active == a


def test_nothing_selected_is_refused_with_what_to_do(export: ModuleType, addon: ModuleType) -> None:
    camera = bpy.data.objects.new("Cam", bpy.data.cameras.new("Cam"))
    bpy.context.scene.collection.objects.link(camera)
    select_only(camera)
    with pytest.raises(mesh_files(addon).MeshFileRejected, match="Select one or more mesh objects"):
        export.export_meshes(export.selected_meshes(bpy.context), bpy.context)


def test_a_mesh_over_the_limit_is_refused_and_its_file_removed(export: ModuleType, addon: ModuleType,
                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(mesh_files(addon), "MAX_MESH_BYTES", 100)
    select_only(cube("Big"))
    with pytest.raises(mesh_files(addon).MeshFileRejected, match="at most 200 MB"):
        export.export_meshes(export.selected_meshes(bpy.context), bpy.context)
    assert list(export.exports_dir().iterdir()) == []


@pytest.mark.parametrize("error", [RuntimeError("Error: exporter crashed"),
                                   TypeError('enum "NONE" not found in (\'AUTO\', \'JPEG\')')])
def test_a_failing_exporter_leaves_no_file(export: ModuleType, addon: ModuleType,
                                           monkeypatch: pytest.MonkeyPatch, error: Exception) -> None:
    select_only(cube("Broken"))

    def fail(options: dict[str, Any]) -> set[str]:
        Path(options["filepath"]).write_bytes(b"glTF half")
        raise error

    monkeypatch.setattr(export, "run_exporter", fail)
    with pytest.raises(export.MeshExportFailed, match="could not export"):
        export.export_meshes(export.selected_meshes(bpy.context), bpy.context)
    assert list(export.exports_dir().iterdir()) == []


def test_only_our_exports_are_ever_discarded(export: ModuleType, tmp_path: Path) -> None:
    outside = tmp_path / "keep.glb"
    outside.write_bytes(b"glTF")
    export.discard(outside)
    assert outside.exists()
    select_only(cube("Gone"))
    exported = export.export_meshes(export.selected_meshes(bpy.context), bpy.context)
    export.discard(exported.path)
    assert not exported.path.exists()


# -- a selection too big for Hitem3D is found before the export ------------------------------------------


def flat_grid(name: str, cuts: int) -> bpy.types.Object:
    """A grid of ``cuts`` x ``cuts`` quads, flat shaded: every corner exported once per face."""
    mesh = bpy.data.meshes.new(name)
    verts = [(x, y, 0.0) for y in range(cuts + 1) for x in range(cuts + 1)]
    faces = [(y * (cuts + 1) + x, y * (cuts + 1) + x + 1, (y + 1) * (cuts + 1) + x + 1, (y + 1) * (cuts + 1) + x)
             for y in range(cuts) for x in range(cuts)]
    mesh.from_pydata(verts, [], faces)
    obj = bpy.data.objects.new(name, mesh)
    bpy.context.scene.collection.objects.link(obj)
    return obj


def test_the_estimate_is_never_more_than_what_blender_writes(export: ModuleType) -> None:
    """A lower bound: an estimate over the limit is a file over the limit, so nothing that fits is refused."""
    smooth = cube("Smooth")
    smooth.modifiers.new("Subdivision", "SUBSURF").levels = 4
    for polygon in smooth.data.polygons:
        polygon.use_smooth = True
    flat = flat_grid("Flat", 120)
    big = flat_grid("Big", 300)  # over 65,535 vertices: four-byte indices
    twin = bpy.data.objects.new("Twin", flat.data)  # shares its mesh: exported once
    bpy.context.scene.collection.objects.link(twin)
    for objects in ([smooth], [flat], [big], [flat, twin], [smooth, flat, big]):
        select_only(*objects)
        least, triangles = export.least_glb_bytes(objects, bpy.context)
        exported = export.export_meshes(objects, bpy.context)
        assert triangles > 0 and 0.6 * exported.size < least <= exported.size, (objects, least, exported.size)
        export.discard(exported.path)


def test_a_selection_that_cannot_fit_is_refused_before_the_export_by_its_name(
        export: ModuleType, addon: ModuleType, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(mesh_files(addon), "MAX_MESH_BYTES", 1000)
    exported: list[Any] = []
    monkeypatch.setattr(export, "run_exporter", lambda options: exported.append(options) or {"FINISHED"})
    chair, table = cube("Chair"), cube("Table", (4.0, 0.0, 0.0))
    chair.modifiers.new("Subdivision", "SUBSURF").levels = 3
    select_only(chair, table)
    with pytest.raises(mesh_files(addon).MeshFileRejected) as caught:
        export.export_meshes(export.selected_meshes(bpy.context), bpy.context)
    assert str(caught.value).startswith("Chair +1 would export to at least ")
    assert "(780 triangles); Hitem3D accepts at most 200 MB" in str(caught.value)
    assert exported == [] and list(export.exports_dir().iterdir()) == []  # no export ran


def test_a_file_over_the_limit_after_the_export_is_named_as_selected_not_as_a_file(
        export: ModuleType, addon: ModuleType, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(mesh_files(addon), "MAX_MESH_BYTES", 100)
    monkeypatch.setattr(export, "least_glb_bytes", lambda objects, context: (0, 0))  # an estimate that missed
    select_only(cube("Chair"))
    with pytest.raises(mesh_files(addon).MeshFileRejected) as caught:
        export.export_meshes(export.selected_meshes(bpy.context), bpy.context)
    assert str(caught.value).startswith("Mesh: Chair is 0.0 MB; Hitem3D accepts at most 200 MB")
    assert ".glb" not in str(caught.value) and list(export.exports_dir().iterdir()) == []
