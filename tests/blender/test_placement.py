"""Placing an imported result by the artist's options, in real Blender."""

from __future__ import annotations

import importlib
import logging
from pathlib import Path
from types import ModuleType
from typing import Any, Iterator

import bpy
import pytest
from mathutils import Matrix, Vector

from tests.support.glb_factory import cached_glb, cached_webp

TOLERANCE = 1e-4
PROVENANCE = {"hitem3d_task_id": "2c2ad20cb3204697ba7f80351c3e8606.jjewelry-aigc-api.1NraEb5ohU",
              "hitem3d_model": "hitem3dv1.5", "hitem3d_imported_at": "2026-11-25T19:03:00Z",
              "hitem3d_resolution": 1536}


@pytest.fixture
def placement(addon: ModuleType) -> Iterator[ModuleType]:
    """The installed ``placement`` module, in a scene without our collections
    and with the cursor at the world origin."""
    scene = bpy.context.scene
    for collection in list(bpy.data.collections):
        bpy.data.collections.remove(collection)
    scene.cursor.location = (0.0, 0.0, 0.0)
    yield importlib.import_module(f"{addon.__name__}.scene.placement")
    for collection in list(bpy.data.collections):
        bpy.data.collections.remove(collection)
    scene.cursor.location = (0.0, 0.0, 0.0)


def options(addon: ModuleType, **chosen: Any) -> Any:
    """Import options with everything off except ``chosen``."""
    off = dict(collection="", at_cursor=False, scale_to_size=False, origin_bottom_center=False,
               shade_smooth=False, mark_asset=False)
    return addon.core.import_options.ImportOptions(**{**off, **chosen})


def apply(placement: ModuleType, objects: list[bpy.types.Object], addon: ModuleType,
          **chosen: Any) -> None:
    cover_path = chosen.pop("cover_path", None)
    provenance = chosen.pop("provenance", None)
    chosen_options = options(addon, **chosen)
    placement.finish_model(objects, chosen_options, cover_path=cover_path, provenance=provenance)
    placement.place_in_scene(objects, chosen_options, context=bpy.context)


# -- scene builders ---------------------------------------------------------------


Triple = tuple[float, float, float]


def box_mesh(name: str, size: Triple, corner: Triple) -> bpy.types.Mesh:
    """A closed box mesh from ``corner`` to ``corner + size`` in mesh coordinates."""
    (x0, y0, z0), (sx, sy, sz) = corner, size
    vertices = [(x0 + sx * i, y0 + sy * j, z0 + sz * k) for i in (0, 1) for j in (0, 1) for k in (0, 1)]
    faces = [(0, 1, 3, 2), (4, 6, 7, 5), (0, 4, 5, 1), (2, 3, 7, 6), (0, 2, 6, 4), (1, 5, 7, 3)]
    mesh = bpy.data.meshes.new(name)
    mesh.from_pydata(vertices, [], faces)
    mesh.update()
    return mesh


def new_object(name: str, data: bpy.types.Mesh | None = None, *,
               location: Triple = (0, 0, 0),
               parent: bpy.types.Object | None = None) -> bpy.types.Object:
    obj = bpy.data.objects.new(name, data)
    bpy.context.scene.collection.objects.link(obj)
    obj.location = location
    obj.parent = parent
    return obj


def box(name: str = "Box", size: Triple = (2, 4, 1), corner: Triple = (1, -3, 0.5),
        **kwargs: Any) -> bpy.types.Object:
    return new_object(name, box_mesh(name, size, corner), **kwargs)


def world_vertices(obj: bpy.types.Object) -> list[Vector]:
    bpy.context.view_layer.update()
    return [obj.matrix_world @ vertex.co for vertex in obj.data.vertices]


def world_bounds(objects: list[bpy.types.Object]) -> tuple[Vector, Vector]:
    points = [point for obj in objects if obj.type == "MESH" for point in world_vertices(obj)]
    low = Vector([min(p[axis] for p in points) for axis in range(3)])
    high = Vector([max(p[axis] for p in points) for axis in range(3)])
    return low, high


def bottom_center(objects: list[bpy.types.Object]) -> Vector:
    low, high = world_bounds(objects)
    return Vector(((low.x + high.x) / 2, (low.y + high.y) / 2, low.z))


def assert_close(a: Any, b: Any, tolerance: float = TOLERANCE) -> None:
    assert (Vector(a) - Vector(b)).length < tolerance, f"{tuple(a)} != {tuple(b)}"


def assert_same_points(before: list[Vector], after: list[Vector]) -> None:
    assert len(before) == len(after)
    for old, new in zip(before, after):
        assert_close(old, new)


def import_glb(path: Path) -> list[bpy.types.Object]:
    before = set(bpy.data.objects)
    assert bpy.ops.import_scene.gltf(filepath=str(path)) == {"FINISHED"}
    return [obj for obj in bpy.data.objects if obj not in before]


@pytest.fixture
def warnings(addon: ModuleType, caplog: pytest.LogCaptureFixture) -> Iterator[pytest.LogCaptureFixture]:
    """What the add-on logs; its logger does not propagate to the root
    logger that caplog listens on."""
    logger = logging.getLogger(addon.__name__)
    logger.addHandler(caplog.handler)
    yield caplog
    logger.removeHandler(caplog.handler)


# -- collection ---------------------------------------------------------------------


def test_collection_is_created_under_the_scene_and_holds_only_the_new_objects(placement: ModuleType,
                                                                             addon: ModuleType) -> None:
    objects = [box(), box("Other")]

    apply(placement, objects, addon, collection="Hitem3D")

    collection = bpy.data.collections["Hitem3D"]
    assert collection.name in bpy.context.scene.collection.children
    assert all(list(obj.users_collection) == [collection] for obj in objects)
    assert not bpy.context.scene.collection.objects


def test_existing_collection_outside_the_scene_is_reused_and_linked(placement: ModuleType,
                                                                    addon: ModuleType) -> None:
    existing = bpy.data.collections.new("Hitem3D")
    obj = box()

    apply(placement, [obj], addon, collection="Hitem3D")

    assert [c.name for c in bpy.data.collections] == ["Hitem3D"]
    assert existing.name in bpy.context.scene.collection.children
    assert list(obj.users_collection) == [existing]


def test_existing_nested_collection_stays_where_it_is(placement: ModuleType, addon: ModuleType) -> None:
    props = bpy.data.collections.new("Props")
    bpy.context.scene.collection.children.link(props)
    existing = bpy.data.collections.new("Hitem3D")
    props.children.link(existing)
    obj = box()

    apply(placement, [obj], addon, collection="Hitem3D")

    assert existing.name not in bpy.context.scene.collection.children
    assert list(obj.users_collection) == [existing]


def test_empty_collection_name_leaves_objects_where_imported(placement: ModuleType,
                                                            addon: ModuleType) -> None:
    obj = box()

    apply(placement, [obj], addon, collection="")

    assert list(obj.users_collection) == [bpy.context.scene.collection]
    assert not bpy.data.collections


# -- origin -------------------------------------------------------------------------


def test_origin_moves_to_bottom_center_and_vertices_stay(placement: ModuleType, addon: ModuleType) -> None:
    obj = box(location=(10, 20, 30))
    before = world_vertices(obj)

    apply(placement, [obj], addon, origin_bottom_center=True)

    assert_same_points(before, world_vertices(obj))
    bpy.context.view_layer.update()
    assert_close(obj.matrix_world.translation, (10 + 2, 20 - 1, 30 + 0.5))
    assert_close(obj.matrix_world.translation, bottom_center([obj]))


def test_origin_of_a_parent_mesh_does_not_move_its_children(placement: ModuleType, addon: ModuleType) -> None:
    parent = box("Parent", location=(1, 1, 1))
    parent.rotation_euler = (0, 0, 0.5)
    child = box("Child", size=(1, 1, 1), corner=(3, 3, 3), location=(2, 0, 0), parent=parent)
    grandchild = box("Grandchild", size=(0.5, 0.5, 0.5), corner=(-2, 0, 1), parent=child)
    objects = [parent, child, grandchild]
    before = {obj.name: world_vertices(obj) for obj in objects}

    apply(placement, objects, addon, origin_bottom_center=True)

    for obj in objects:
        assert_same_points(before[obj.name], world_vertices(obj))
        assert_close(obj.matrix_world.translation, bottom_center([obj]))


def test_origin_of_a_mesh_under_an_empty_goes_to_its_bottom_center(placement: ModuleType,
                                                                    addon: ModuleType) -> None:
    empty = new_object("Root", location=(0, 0, 5))
    empty.scale = (2, 2, 2)
    mesh = box(parent=empty)
    before = world_vertices(mesh)

    apply(placement, [empty, mesh], addon, origin_bottom_center=True)

    assert_same_points(before, world_vertices(mesh))
    assert_close(mesh.matrix_world.translation, bottom_center([mesh]))
    assert_close(empty.matrix_world.translation, (0, 0, 5))


def test_mesh_shared_by_two_objects_is_moved_once(placement: ModuleType, addon: ModuleType) -> None:
    first = box("First", location=(0, 0, 0))
    second = new_object("Second", first.data, location=(10, 0, 0))
    before = [world_vertices(first), world_vertices(second)]

    apply(placement, [first, second], addon, origin_bottom_center=True)

    assert_same_points(before[0], world_vertices(first))
    assert_same_points(before[1], world_vertices(second))
    assert min(vertex.co.z for vertex in first.data.vertices) == pytest.approx(0, abs=TOLERANCE)
    assert_close(first.matrix_world.translation, bottom_center([first]))


def test_mesh_shared_with_an_object_outside_the_import_is_left_alone(placement: ModuleType,
                                                                     addon: ModuleType) -> None:
    outsider = box("Outsider")
    new = new_object("New", outsider.data, location=(5, 0, 0))
    before = world_vertices(outsider)

    apply(placement, [new], addon, origin_bottom_center=True)

    assert_same_points(before, world_vertices(outsider))


# -- size and position ----------------------------------------------------------------


def test_scale_makes_the_longest_side_the_target_size(placement: ModuleType, addon: ModuleType) -> None:
    obj = box(location=(3, 3, 3))
    pivot = bottom_center([obj])

    apply(placement, [obj], addon, scale_to_size=True, target_size=1.5)

    low, high = world_bounds([obj])
    assert max(high - low) == pytest.approx(1.5, abs=TOLERANCE)
    assert_close(bottom_center([obj]), pivot)
    assert obj.scale[0] == obj.scale[1] == obj.scale[2]


def test_scale_treats_a_hierarchy_as_one_model(placement: ModuleType, addon: ModuleType) -> None:
    root = new_object("Root", location=(1, 0, 0))
    left = box("Left", size=(1, 1, 1), corner=(0, 0, 0), parent=root)
    right = box("Right", size=(1, 1, 2), corner=(0, 0, 0), location=(4, 0, 0), parent=root)
    objects = [root, left, right]

    apply(placement, objects, addon, scale_to_size=True, target_size=2.5)

    low, high = world_bounds(objects)
    assert max(high - low) == pytest.approx(2.5, abs=TOLERANCE)
    # Only the root is scaled; the children follow it.
    assert tuple(left.scale) == tuple(right.scale) == (1, 1, 1)


def test_cursor_receives_the_bottom_center(placement: ModuleType, addon: ModuleType) -> None:
    bpy.context.scene.cursor.location = (1, 2, 3)
    root = new_object("Root", location=(7, 7, 7))
    objects = [root, box(parent=root), box("Other", corner=(5, 5, -2), parent=root)]

    apply(placement, objects, addon, at_cursor=True)

    assert_close(bottom_center(objects), (1, 2, 3))


def test_without_at_cursor_the_position_is_kept(placement: ModuleType, addon: ModuleType) -> None:
    bpy.context.scene.cursor.location = (1, 2, 3)
    obj = box(location=(7, 7, 7))
    before = world_vertices(obj)

    apply(placement, [obj], addon, at_cursor=False)

    assert_same_points(before, world_vertices(obj))


def test_origin_scale_and_cursor_together(placement: ModuleType, addon: ModuleType) -> None:
    bpy.context.scene.cursor.location = (-2, 0, 1)
    obj = box(location=(3, 3, 3))

    apply(placement, [obj], addon, origin_bottom_center=True, scale_to_size=True, target_size=2.0,
          at_cursor=True)

    low, high = world_bounds([obj])
    assert max(high - low) == pytest.approx(2.0, abs=TOLERANCE)
    assert_close(bottom_center([obj]), (-2, 0, 1))
    assert_close(obj.matrix_world.translation, (-2, 0, 1))


def test_placement_is_right_in_a_collection_excluded_from_the_view_layer(placement: ModuleType,
                                                                       addon: ModuleType) -> None:
    # The artist keeps earlier imports in an excluded collection: Blender does
    # not evaluate its objects, so nothing may rely on matrix_world/bound_box.
    hidden = bpy.data.collections.new("Hitem3D")
    bpy.context.scene.collection.children.link(hidden)
    bpy.context.view_layer.layer_collection.children["Hitem3D"].exclude = True
    bpy.context.scene.cursor.location = (1, 1, 0)
    root = new_object("Root", location=(5, 5, 5))
    objects = [root, box(parent=root), box("Other", corner=(3, 0, 0), location=(0, 2, 0), parent=root)]
    before = {obj.name: world_vertices(obj) for obj in objects if obj.type == "MESH"}

    apply(placement, objects, addon, collection="Hitem3D", origin_bottom_center=True, scale_to_size=True,
          target_size=3.0, at_cursor=True)

    bpy.context.view_layer.layer_collection.children["Hitem3D"].exclude = False
    low, high = world_bounds(objects)
    assert max(high - low) == pytest.approx(3.0, abs=TOLERANCE)
    assert_close(bottom_center(objects), (1, 1, 0))
    for obj in objects[1:]:
        assert_close(obj.matrix_world.translation, bottom_center([obj]))
        assert len(world_vertices(obj)) == len(before[obj.name])


# -- shading ---------------------------------------------------------------------------


def test_shade_smooth_makes_every_face_smooth(placement: ModuleType, addon: ModuleType) -> None:
    first = box()
    second = new_object("Shared", first.data)
    third = box("Third")
    assert not any(p.use_smooth for p in first.data.polygons)

    apply(placement, [first, second, third], addon, shade_smooth=True)

    assert all(p.use_smooth for obj in (first, third) for p in obj.data.polygons)


def test_faces_stay_flat_without_shade_smooth(placement: ModuleType, addon: ModuleType) -> None:
    obj = box()
    apply(placement, [obj], addon, shade_smooth=False)
    assert not any(p.use_smooth for p in obj.data.polygons)


# -- asset -------------------------------------------------------------------------------


def cover_pixel(path: Path) -> tuple[float, ...]:
    image = bpy.data.images.load(str(path), check_existing=False)
    try:
        return tuple(image.pixels[0:4])
    finally:
        bpy.data.images.remove(image)


def test_mark_asset_uses_the_cover_as_preview(placement: ModuleType, addon: ModuleType) -> None:
    cover = cached_webp(64)
    obj = box()

    apply(placement, [obj], addon, mark_asset=True, cover_path=cover)

    assert obj.asset_data is not None
    preview = obj.preview
    assert preview is not None and preview.is_image_custom
    assert tuple(preview.image_size) == (64, 64)
    assert tuple(preview.image_pixels_float[0:4]) == pytest.approx(cover_pixel(cover), abs=1e-3)
    assert tuple(preview.icon_size) == (32, 32)
    assert not [image for image in bpy.data.images if image.filepath.endswith(cover.name)]


def test_a_large_cover_is_scaled_down_to_preview_size(placement: ModuleType, addon: ModuleType,
                                                       tmp_path: Path) -> None:
    image = bpy.data.images.new("Cover", 600, 300)
    path = tmp_path / "cover.png"
    image.filepath_raw = str(path)
    image.file_format = "PNG"
    image.save()
    bpy.data.images.remove(image)
    obj = box()

    apply(placement, [obj], addon, mark_asset=True, cover_path=path)

    assert obj.preview is not None
    assert tuple(obj.preview.image_size) == (256, 128)
    assert tuple(obj.preview.icon_size) == (32, 16)


def test_mark_asset_without_cover_marks_without_preview(placement: ModuleType, addon: ModuleType) -> None:
    obj = box()
    apply(placement, [obj], addon, mark_asset=True)
    assert obj.asset_data is not None


@pytest.mark.parametrize("cover", ["missing.webp", "corrupt.webp"])
def test_unreadable_cover_still_marks_the_asset(placement: ModuleType, addon: ModuleType, tmp_path: Path,
                                                warnings: pytest.LogCaptureFixture, cover: str) -> None:
    (tmp_path / "corrupt.webp").write_bytes(b"RIFF\x10\x00\x00\x00WEBPVP8 not really")
    obj = box()
    images = set(bpy.data.images)

    apply(placement, [obj], addon, mark_asset=True, cover_path=tmp_path / cover)

    assert obj.asset_data is not None
    assert obj.preview is None or not obj.preview.is_image_custom
    assert any("Asset preview not set" in r.getMessage() for r in warnings.records)
    assert set(bpy.data.images) == images


def test_asset_is_the_root_of_a_hierarchy(placement: ModuleType, addon: ModuleType) -> None:
    root = new_object("Root")
    children = [box("Left", parent=root), box("Right", parent=root)]

    apply(placement, [root, *children], addon, mark_asset=True)

    assert root.asset_data is not None
    assert all(child.asset_data is None for child in children)


def test_asset_is_the_single_mesh_under_an_empty(placement: ModuleType, addon: ModuleType) -> None:
    root = new_object("Root")
    mesh = box(parent=root)

    apply(placement, [root, mesh], addon, mark_asset=True)

    assert mesh.asset_data is not None and root.asset_data is None


def test_without_mark_asset_nothing_is_an_asset(placement: ModuleType, addon: ModuleType) -> None:
    obj = box()
    apply(placement, [obj], addon, mark_asset=False, cover_path=cached_webp(64))
    assert obj.asset_data is None


# -- provenance ----------------------------------------------------------------------------


def test_provenance_is_set_on_every_object(placement: ModuleType, addon: ModuleType) -> None:
    root = new_object("Root")
    objects = [root, box(parent=root), box("Other", parent=root)]

    apply(placement, objects, addon, provenance=PROVENANCE)

    for obj in objects:
        assert {key: obj[key] for key in PROVENANCE} == PROVENANCE


def test_all_options_off_changes_nothing(placement: ModuleType, addon: ModuleType) -> None:
    obj = box(location=(1, 2, 3))
    before = (world_vertices(obj), Matrix(obj.matrix_world))

    apply(placement, [obj], addon)

    assert_same_points(before[0], world_vertices(obj))
    assert obj.matrix_world == before[1]
    assert obj.asset_data is None and "hitem3d_task_id" not in obj
    assert list(obj.users_collection) == [bpy.context.scene.collection]


# -- a real import ----------------------------------------------------------------------------


def test_defaults_on_an_imported_glb(placement: ModuleType, addon: ModuleType) -> None:
    objects = import_glb(cached_glb(objects=2))
    meshes = [obj for obj in objects if obj.type == "MESH"]
    assert len(meshes) == 2
    bpy.context.scene.cursor.location = (4, -1, 2)
    before = {obj.name: world_vertices(obj) for obj in meshes}
    shift = Vector((4, -1, 2)) - bottom_center(objects)
    defaults = addon.core.import_options.ImportOptions()

    placement.finish_model(objects, defaults, provenance=PROVENANCE)
    placement.place_in_scene(objects, defaults, context=bpy.context)

    collection = bpy.data.collections[defaults.collection]
    assert all(list(obj.users_collection) == [collection] for obj in objects)
    assert_close(bottom_center(objects), (4, -1, 2))
    for obj in meshes:
        # Moved as a whole to the cursor, not reshaped, each origin at its own bottom centre.
        assert_same_points([point + shift for point in before[obj.name]], world_vertices(obj))
        assert_close(obj.matrix_world.translation, bottom_center([obj]))
    assert all(obj.asset_data is None for obj in objects)
    assert all(obj["hitem3d_task_id"] == PROVENANCE["hitem3d_task_id"] for obj in objects)


def test_every_option_on_an_imported_glb(placement: ModuleType, addon: ModuleType) -> None:
    objects = import_glb(cached_glb(objects=2))
    bpy.context.scene.cursor.location = (0, 3, 0)

    apply(placement, objects, addon, collection="Imports", origin_bottom_center=True, scale_to_size=True,
          target_size=0.25, at_cursor=True, shade_smooth=True, mark_asset=True, cover_path=cached_webp(64),
          provenance=PROVENANCE)

    low, high = world_bounds(objects)
    assert max(high - low) == pytest.approx(0.25, abs=TOLERANCE)
    assert_close(bottom_center(objects), (0, 3, 0))
    assert all(p.use_smooth for obj in objects if obj.type == "MESH" for p in obj.data.polygons)
    marked = [obj for obj in objects if obj.asset_data is not None]
    assert marked and all(obj.preview is not None and obj.preview.is_image_custom for obj in marked)
    assert all(obj.users_collection[0].name == "Imports" for obj in objects)
