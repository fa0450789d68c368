"""Placing an imported result the way the artist asked: collection, origin,
size, position, shading, asset mark and provenance.

Runs on the main thread right after the glTF importer, on the objects it made.

NOTE: bounds come from the mesh data and world matrices from each object's own
transform and its parents, not from ``Object.bound_box`` / ``matrix_world``.
Those are depsgraph results: stale after ``Mesh.transform`` until the next
update, and never refreshed for objects in a collection excluded from the view
layer, which is where an artist may keep earlier imports.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any, NamedTuple

import bpy
import numpy as np
from mathutils import Matrix, Vector

from ..bpy_compat import image_size, translation
from ..core import safe_files
from ..core.import_options import ImportOptions

log = logging.getLogger(__package__)

# Blender's large (asset browser) and small (list, icon) preview sizes.
PREVIEW_SIZE = 256
ICON_SIZE = 32
_EPSILON = 1e-9


class Box(NamedTuple):
    """An axis-aligned bounding box."""

    low: Vector
    high: Vector

    @classmethod
    def around(cls, points: Iterable[Vector]) -> Box | None:
        """The smallest box holding ``points``; None when there are none."""
        found = list(points)
        if not found:
            return None
        low = Vector((min(p.x for p in found), min(p.y for p in found), min(p.z for p in found)))
        high = Vector((max(p.x for p in found), max(p.y for p in found), max(p.z for p in found)))
        return cls(low, high)

    @property
    def longest_side(self) -> float:
        size = self.high - self.low
        return max(size.x, size.y, size.z)

    @property
    def bottom_center(self) -> Vector:
        middle = (self.low + self.high) / 2
        return Vector((middle.x, middle.y, self.low.z))

    def corners(self) -> list[Vector]:
        return [Vector((x, y, z)) for x in (self.low.x, self.high.x)
                for y in (self.low.y, self.high.y) for z in (self.low.z, self.high.z)]


def finish_model(objects: list[bpy.types.Object], options: ImportOptions, *, cover_path: Path | None = None,
                 provenance: Mapping[str, str | float | int] | None = None,
                 already: ImportOptions | None = None) -> None:
    """The one place that applies the options that do not depend on the open
    scene: origin, size, shading, asset mark, then the provenance. The
    converter, an import in this Blender, Import Again and every task kind
    come through here; ``place_in_scene`` does the rest.

    ``already``: the options these objects were finished with before (a
    library entry records them): only what is asked now and was not then is
    done. What cannot be taken back (an origin already moved) is kept."""
    if not objects:
        return
    view_layer = bpy.context.view_layer
    if view_layer is not None:
        # Bone and vertex parents are read from the depsgraph: make it current.
        view_layer.update()
    done = already or ImportOptions(origin_bottom_center=False, scale_to_size=False, shade_smooth=False,
                                    mark_asset=False)
    if options.origin_bottom_center and not done.origin_bottom_center:
        set_origins_to_bottom_center(objects)
    if options.scale_to_size and (not done.scale_to_size or done.target_size != options.target_size):
        scale_to_size(objects, options.target_size)
    if options.shade_smooth and not done.shade_smooth:
        shade_smooth(objects)
    if options.mark_asset and not done.mark_asset:
        mark_as_asset(objects, cover_path)
    elif done.mark_asset and not options.mark_asset:
        for obj in objects:
            if obj.asset_data is not None:
                obj.asset_clear()
    if provenance:
        tag(objects, provenance)


# -- collection --------------------------------------------------------------------


def move_to_collection(objects: list[bpy.types.Object], name: str, scene: bpy.types.Scene) -> None:
    """Make ``objects`` members of the collection ``name`` only; the collection
    is created, or linked to ``scene`` if it exists elsewhere."""
    collection = _local_collection(name) or bpy.data.collections.new(name)
    if collection not in scene.collection.children_recursive:
        scene.collection.children.link(collection)
    for obj in objects:
        # Link before unlinking, so the object always belongs somewhere.
        if obj.name not in collection.objects:
            collection.objects.link(obj)
        for other in list(obj.users_collection):
            if other != collection:
                other.objects.unlink(obj)


def _local_collection(name: str) -> bpy.types.Collection | None:
    # NOTE: a collection linked from a library can share the name but cannot
    # take new objects.
    return next((c for c in bpy.data.collections if c.name == name and c.library is None), None)


# -- origin ------------------------------------------------------------------------


def set_origins_to_bottom_center(objects: list[bpy.types.Object]) -> None:
    """Move each mesh's origin to the bottom centre of its world bounding box
    without moving any vertex or child in world space."""
    offsets: dict[bpy.types.Mesh, Vector] = {}
    owners = _mesh_owners(objects)
    for mesh, users in owners.items():
        if mesh.users - int(mesh.use_fake_user) > len(users):
            log.info("Origin of %s kept: its mesh is shared with other objects", users[0].name)
            continue
        box = _mesh_box(mesh)
        if box is not None:
            # A shared mesh is measured in its first user's frame, moved once.
            bottom = _world_box_of(users[0], box).bottom_center
            offsets[mesh] = _world_matrix(users[0]).inverted_safe() @ bottom
    for mesh, offset in offsets.items():
        _shift_origin(mesh, owners[mesh], offset)


def _shift_origin(mesh: bpy.types.Mesh, users: list[bpy.types.Object], offset: Vector) -> None:
    """Put the origin at ``offset`` (mesh coordinates): the vertices move by
    -offset, every user moves by +offset in its own frame."""
    shift = translation(offset)
    back = translation(-offset)
    mesh.transform(back)
    mesh.update()
    for obj in users:
        obj.matrix_basis = obj.matrix_basis @ shift
        for child in obj.children:
            # NOTE: bone and vertex parents do not follow the origin; only
            # object parenting passes the shift on to the child.
            if child.parent_type == "OBJECT":
                child.matrix_parent_inverse = back @ child.matrix_parent_inverse


# -- size and position --------------------------------------------------------------


def scale_to_size(objects: list[bpy.types.Object], size: float) -> None:
    """Scale the whole import uniformly about its bottom centre so its longest
    side is ``size``."""
    box = world_box(objects)
    if box is None or size <= 0 or box.longest_side <= _EPSILON:
        log.warning("Not scaled to %s m: the model or the target size is zero", size)
        return
    pivot = box.bottom_center
    factor = size / box.longest_side
    scale = translation(pivot) @ Matrix.Scale(factor, 4) @ translation(-pivot)
    for root in roots(objects):
        _transform_in_world(root, scale)


def move_to(objects: list[bpy.types.Object], location: Vector) -> None:
    """Translate the import so its bottom centre is at ``location``."""
    box = world_box(objects)
    if box is None:
        return
    shift = translation(location - box.bottom_center)
    for root in roots(objects):
        _transform_in_world(root, shift)


def roots(objects: list[bpy.types.Object]) -> list[bpy.types.Object]:
    """The objects whose parent is not part of the import."""
    chosen = set(objects)
    return [obj for obj in objects if obj.parent not in chosen]


def world_box(objects: list[bpy.types.Object]) -> Box | None:
    """The world bounding box of the meshes; of the origins if none has any
    vertex (an import of empties still has a position)."""
    corners: list[Vector] = []
    for mesh, users in _mesh_owners(objects).items():
        box = _mesh_box(mesh)
        if box is not None:
            corners += [corner for obj in users for corner in _world_box_of(obj, box).corners()]
    return Box.around(corners or [_world_matrix(obj).translation for obj in objects])


def _world_box_of(obj: bpy.types.Object, box: Box) -> Box:
    world = _world_matrix(obj)
    found = Box.around(world @ corner for corner in box.corners())
    assert found is not None  # a box always has eight corners
    return found


def _mesh_box(mesh: bpy.types.Mesh) -> Box | None:
    """The mesh's bounding box in its own coordinates; None without vertices."""
    count = len(mesh.vertices)
    if not count:
        return None
    # NOTE: numpy (bundled with Blender) keeps a multi-million vertex scan fast.
    coords = np.empty(count * 3, dtype=np.float32)
    # NOTE: the "position" attribute copies in one block (1 ms for 500,000
    # vertices where MeshVertex.co takes 35 ms); older meshes fall back.
    position: Any = mesh.attributes.get("position")
    if position is not None and position.data_type == "FLOAT_VECTOR" and position.domain == "POINT":
        position.data.foreach_get("vector", coords)
    else:
        mesh.vertices.foreach_get("co", coords)
    # NOTE: one strided view per axis: reducing an (N, 3) array along axis 0
    # is about 15x slower (50 ms for a million-triangle result, on the main thread).
    axes = [coords[axis::3] for axis in range(3)]
    return Box(Vector([float(values.min()) for values in axes]), Vector([float(values.max()) for values in axes]))


def _parent_space(obj: bpy.types.Object) -> Matrix:
    """What maps ``obj.matrix_basis`` to world space (parents, parent inverse)."""
    parent = obj.parent
    if parent is None:
        return Matrix.Identity(4)
    if obj.parent_type == "OBJECT":
        return _world_matrix(parent) @ obj.matrix_parent_inverse
    # NOTE: bone and vertex parents need the depsgraph; trust its last result.
    return obj.matrix_world @ obj.matrix_basis.inverted_safe()


def _world_matrix(obj: bpy.types.Object) -> Matrix:
    return _parent_space(obj) @ obj.matrix_basis


def _transform_in_world(obj: bpy.types.Object, transform: Matrix) -> None:
    """Apply a world-space ``transform`` to ``obj`` (and so to its children)."""
    space = _parent_space(obj)
    obj.matrix_basis = space.inverted_safe() @ transform @ space @ obj.matrix_basis


def _mesh_owners(objects: list[bpy.types.Object]) -> dict[bpy.types.Mesh, list[bpy.types.Object]]:
    """Each mesh among ``objects`` with the objects that use it."""
    owners: dict[bpy.types.Mesh, list[bpy.types.Object]] = {}
    for obj in objects:
        if isinstance(obj.data, bpy.types.Mesh):
            owners.setdefault(obj.data, []).append(obj)
    return owners


# -- shading, asset, provenance -------------------------------------------------------


def shade_smooth(objects: list[bpy.types.Object]) -> None:
    for mesh in _mesh_owners(objects):
        mesh.shade_smooth()
        mesh.update()


def mark_as_asset(objects: list[bpy.types.Object], cover_path: Path | None) -> None:
    """Mark the import as an asset, with the cover image as its preview when it
    can be read; an unreadable cover only costs the preview."""
    targets = asset_targets(objects)
    for obj in targets:
        obj.asset_mark()
    if cover_path is None:
        return
    previews = read_previews(cover_path)
    if previews is None:
        return
    for obj in targets:
        set_preview(obj, previews)


def asset_targets(objects: list[bpy.types.Object]) -> list[bpy.types.Object]:
    """The single mesh when there is one (what the artist drags back in),
    else every root."""
    meshes = [obj for obj in objects if obj.type == "MESH"]
    return meshes if len(meshes) == 1 else roots(objects)


class _Pixels(NamedTuple):
    size: tuple[int, int]
    rgba: np.ndarray[Any, np.dtype[np.float32]]


def read_previews(path: Path) -> tuple[_Pixels, _Pixels] | None:
    """The cover as preview-sized and icon-sized RGBA pixels, or None (logged)."""
    if not safe_files.is_regular_file(path):
        # Blender opening a FIFO (or a device) would wait for ever; a link is not ours.
        log.warning("Asset preview not set: %s is not a plain file", path.name)
        return None
    try:
        image = bpy.data.images.load(str(path), check_existing=False)
    except RuntimeError as exc:
        log.warning("Asset preview not set: cannot read %s (%s)", path.name, str(exc).strip())
        return None
    try:
        # The first access to size loads the file; 0 x 0 means it could not.
        if not all(image_size(image)):
            log.warning("Asset preview not set: %s is not an image Blender can read", path.name)
            return None
        large = _pixels_within(image, PREVIEW_SIZE)
        small = _pixels_within(image, ICON_SIZE)
    finally:
        bpy.data.images.remove(image)
    if large is None or small is None:
        log.warning("Asset preview not set: %s has an unexpected pixel layout", path.name)
        return None
    return large, small


def _pixels_within(image: bpy.types.Image, limit: int) -> _Pixels | None:
    """Scale ``image`` down (never up) to fit ``limit`` and read its RGBA floats."""
    width, height = image_size(image)
    factor = min(1.0, limit / max(width, height))
    if factor < 1.0:
        image.scale(max(1, round(width * factor)), max(1, round(height * factor)))
        width, height = image_size(image)
    # NOTE: the stubs type Image.pixels as one float; it is an RNA array.
    pixels: Any = image.pixels
    if len(pixels) != width * height * 4:
        return None
    rgba = np.empty(width * height * 4, dtype=np.float32)
    pixels.foreach_get(rgba)
    return _Pixels((width, height), rgba)


def set_preview(obj: bpy.types.ID, previews: tuple[_Pixels, _Pixels]) -> None:
    """Make ``previews`` the custom preview of ``obj`` (an object or a collection asset)."""
    large, small = previews
    # NOTE: the stubs type the sizes as read-only and the pixels as one float;
    # both are writable RNA arrays, and writing them marks the preview custom,
    # so Blender does not render over it.
    preview: Any = obj.preview_ensure()
    preview.image_size = large.size
    preview.image_pixels_float.foreach_set(large.rgba)
    preview.icon_size = small.size
    preview.icon_pixels_float.foreach_set(small.rgba)


def tag(objects: list[bpy.types.Object], provenance: Mapping[str, str | float | int]) -> None:
    """Record where the objects came from as custom properties."""
    for obj in objects:
        for key, value in provenance.items():
            obj[key] = value


# -- in the scene ----------------------------------------------------------------------


def place_in_scene(objects: list[bpy.types.Object], options: ImportOptions, *,
                   context: bpy.types.Context) -> None:
    """The one place for what depends on the open scene: the collection, the
    position at the cursor, the selection and the active object."""
    scene = context.scene
    view_layer = context.view_layer
    assert scene is not None and view_layer is not None, "placement needs a scene"
    if options.collection:
        move_to_collection(objects, options.collection, scene)
    else:
        layer_collection = view_layer.active_layer_collection
        active = layer_collection.collection if layer_collection is not None else scene.collection
        for obj in objects:
            if not obj.users_collection:
                active.objects.link(obj)
    if options.at_cursor:
        move_to(objects, scene.cursor.location.copy())
    # Selection and redraw see current matrices and bounds.
    view_layer.update()
    for obj in view_layer.objects:
        obj.select_set(False)
    visible = [obj for obj in objects if obj.name in view_layer.objects]
    for obj in visible:
        obj.select_set(True)
    # NOTE: a collection the artist excluded from the view layer holds objects
    # that cannot be selected or active: the import still stands.
    if visible:
        view_layer.objects.active = pick_active(visible)


def pick_active(objects: list[bpy.types.Object]) -> bpy.types.Object:
    """The first mesh (what the artist wants to grab), else the first object."""
    meshes = [obj for obj in objects if obj.type == "MESH"]
    return (meshes or objects)[0]
