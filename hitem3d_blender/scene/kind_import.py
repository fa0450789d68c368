"""Bringing a result into the scene according to its task's kind.

A model is imported as it is; parts arrive as separate objects in their own
collection, named in order; a depth map becomes a displaced plane; a
multicolour model shows its colours in the viewport. Main thread only. On any
failure nothing that this import created is left behind.
"""

from __future__ import annotations

import contextlib
import itertools
import logging
import math
import re
from pathlib import Path
from typing import Any, Callable, Iterator, Mapping

import bpy

from ..bpy_compat import image_size
from ..core.errors import ImportFailed
from ..core.import_options import ImportOptions
from ..core.messages import msg
from ..core.kind_requests import DEFAULT_RELIEF_HEIGHT, KindRequest
from ..core.task_ids import short_id
from ..core.task_kinds import ResultStyle, kind_of
from . import datablocks, placement

log = logging.getLogger(__package__)

# The relief's longest side before "Scale to size" (metres).
RELIEF_SIZE = 1.0
# Subdivision levels of the relief plane: enough for a 2K depth map in renders,
# fewer in the viewport to keep it responsive.
MAX_RENDER_LEVELS = 10
MAX_VIEWPORT_LEVELS = 7
COLOUR_MATERIAL = "Hitem3D colours"


def _name_for(task_id: str, request: Mapping[str, Any] | None) -> str:
    made = KindRequest.from_dict(request or {})
    return (made.source_name if made is not None else "") or short_id(task_id)


def imports_itself(task_id: str, path: Path) -> bool:
    """Whether this result is imported here rather than as a GLB (converted
    in a child Blender like any model): a depth map or an STL."""
    return path.suffix.lower().lstrip(".") in ("png", "exr", "stl")


def import_result(task_id: str, path: Path, options: ImportOptions, *,
                  provenance: Mapping[str, str] | None = None,
                  request: Mapping[str, Any] | None = None) -> list[str]:
    """Import a result that ``imports_itself``: a depth map becomes a relief,
    an STL a mesh. Returns the new objects' names. Raises ``ImportFailed``;
    nothing it made is left then."""
    extension = path.suffix.lower().lstrip(".")
    with import_failures(f"import of {short_id(task_id)}"):
        if extension == "stl":
            return _import_stl(path, options, provenance)
        made = KindRequest.from_dict(request or {})
        height = made.relief_height if made is not None else DEFAULT_RELIEF_HEIGHT
        return _relief(path, options, provenance, _name_for(task_id, request), height)


def arrange(task_id: str, names: list[str], request: Mapping[str, Any] | None = None) -> list[str]:
    """What the task's kind asks of its imported objects: parts into their own
    collection, named in order; colours shown. Returns the objects' names now.
    Raises ``ImportFailed``; the caller runs the import and this in one
    ``import_failures`` block, so a failure here takes the whole import back."""
    finish = _FINISHERS.get(kind_of(task_id).result_style)
    if finish is None:
        return names
    arranged = list(names)
    finish(arranged, _name_for(task_id, request))
    return arranged


@contextlib.contextmanager
def import_failures(what: str) -> Iterator[None]:
    """All or nothing (``datablocks.all_or_nothing``: every data-block the
    block made is removed when it fails), and any failure that is not already
    ours reaches the artist as one line (the traceback goes to the log)."""
    try:
        with datablocks.all_or_nothing(what):
            yield
    except ImportFailed:
        raise
    except Exception:  # noqa: BLE001 - any failure must leave a retryable task
        log.exception("The %s failed", what)
        raise ImportFailed(msg("Unexpected error while importing: see the Hitem3D log, then retry")) from None


def _place(new_objects: list[bpy.types.Object], options: ImportOptions,
           provenance: Mapping[str, str] | None) -> list[str]:
    if bpy.context.view_layer is None:
        raise ImportFailed(msg("No view layer to import into"))
    placement.finish_model(new_objects, options, provenance=provenance)
    placement.place_in_scene(new_objects, options, context=bpy.context)
    return [obj.name for obj in new_objects]


# -- meshes in other formats ---------------------------------------------------------------------


def _import_stl(path: Path, options: ImportOptions, provenance: Mapping[str, str] | None) -> list[str]:
    before = set(bpy.data.objects)
    try:
        result: Any = bpy.ops.wm.stl_import(filepath=str(path))
    except RuntimeError as exc:
        log.warning("STL import of %s failed: %s", path.name, exc)
        raise ImportFailed(msg("Blender could not import the STL: retry, or report it with the log")) from None
    new_objects = [obj for obj in bpy.data.objects if obj not in before]
    if "FINISHED" not in result or not new_objects:
        raise ImportFailed(msg("The STL holds no objects"))
    return _place(new_objects, options, provenance)


# -- parts ----------------------------------------------------------------------------------------


def _natural_key(text: str) -> list[Any]:
    """``part_2`` before ``part_10``: the order the service numbered them."""
    return [int(piece) if piece.isdigit() else piece.lower() for piece in re.split(r"(\d+)", text)]


def _free_name(name: str, own: list[bpy.types.Object], count: int) -> str:
    """``name``, else ``name 2``, ``name 3`` …: the first under which this
    run's collection and each of its ``count`` parts (objects and meshes) get
    names nobody else holds. So a second split of the same model is
    ``Chair 2 parts`` with ``Chair 2 part 01`` …, never a mix of Blender's
    ``.001`` suffixes."""
    own_names = {obj.name for obj in own} | {obj.data.name for obj in own if obj.data is not None}
    for number in itertools.count(1):
        base = name if number == 1 else f"{name} {number}"
        wanted = [f"{base} part {index:02d}" for index in range(1, count + 1)]
        if f"{base} parts" in bpy.data.collections:
            continue
        if not any((part in bpy.data.objects or part in bpy.data.meshes) and part not in own_names for part in wanted):
            return base
    raise AssertionError("unreachable")


def arrange_parts(names: list[str], name: str) -> None:
    """Put the imported parts in a collection of their own, ``<name> parts``,
    inside the one they were placed in, and name the meshes ``<name> part 01`` …
    in the service's order (``<name> 2`` … when those names are taken)."""
    objects = [bpy.data.objects[object_name] for object_name in names]
    meshes = sorted((obj for obj in objects if obj.type == "MESH"), key=lambda obj: _natural_key(obj.name))
    if not meshes:
        raise ImportFailed(msg("The result holds no parts"))
    name = _free_name(name, objects, len(meshes))
    home = objects[0].users_collection[0] if objects[0].users_collection else None
    scene = bpy.context.scene
    assert scene is not None
    parent = home or scene.collection
    collection = bpy.data.collections.new(f"{name} parts")
    parent.children.link(collection)
    for obj in objects:
        for old in list(obj.users_collection):
            old.objects.unlink(obj)
        collection.objects.link(obj)
    # Two passes, so a new name never collides with a part not renamed yet.
    for index, obj in enumerate(meshes, start=1):
        obj.name = f"~hitem3d part {index}"
    for index, obj in enumerate(meshes, start=1):
        obj.name = f"{name} part {index:02d}"
        if obj.data is not None and obj.data.users == 1:
            obj.data.name = obj.name
    names[:] = [obj.name for obj in objects]


# -- colours ---------------------------------------------------------------------------------------


def show_colours(names: list[str], _name: str = "") -> None:
    """Make the vertex colours visible: each mesh's material takes its colour
    from the colour attribute, and 3D views in Solid mode colour by attribute."""
    painted = 0
    for object_name in names:
        obj = bpy.data.objects[object_name]
        mesh = obj.data
        if obj.type != "MESH" or not isinstance(mesh, bpy.types.Mesh) or not len(mesh.color_attributes):
            continue
        attribute = mesh.color_attributes.active_color or mesh.color_attributes[0]
        mesh.color_attributes.active_color = attribute
        mesh.color_attributes.render_color_index = mesh.color_attributes.active_color_index or 0
        if not len(obj.material_slots):
            mesh.materials.append(None)
        for slot in obj.material_slots:
            slot.material = _colour_material(slot.material, attribute.name)
        painted += 1
    if not painted:
        raise ImportFailed(msg("The multicolour result has no vertex colours"))
    _solid_views_show_attribute()


def _colour_material(material: bpy.types.Material | None, attribute: str) -> bpy.types.Material:
    """``material`` with its base colour from the colour attribute (a new
    material when there is none); a base colour already wired is kept."""
    if material is None:
        material = bpy.data.materials.new(COLOUR_MATERIAL)
    if getattr(material, "node_tree", None) is None:
        material.use_nodes = True  # Blender < 5.0 makes materials without nodes
    tree = material.node_tree
    assert tree is not None
    nodes: list[Any] = list(tree.nodes)  # the stubs type node.type too narrowly
    bsdf = next((node for node in nodes if node.type == "BSDF_PRINCIPLED"), None)
    if bsdf is None:
        bsdf = tree.nodes.new("ShaderNodeBsdfPrincipled")
        output = next((node for node in nodes if node.type == "OUTPUT_MATERIAL"), None)
        if output is None:
            output = tree.nodes.new("ShaderNodeOutputMaterial")
        tree.links.new(bsdf.outputs[0], output.inputs[0])
    base = bsdf.inputs["Base Color"]
    if not base.is_linked:
        node: Any = tree.nodes.new("ShaderNodeVertexColor")
        node.layer_name = attribute
        node.location = (bsdf.location.x - 300, bsdf.location.y)
        tree.links.new(node.outputs["Color"], base)
    return material


def _solid_views_show_attribute() -> None:
    wm = bpy.context.window_manager
    for window in getattr(wm, "windows", []):
        for area in window.screen.areas:
            if area.type != "VIEW_3D":
                continue
            for space in area.spaces:
                shading = getattr(space, "shading", None)
                if shading is not None and shading.type == "SOLID":
                    shading.color_type = "VERTEX"  # Blender calls colour attributes "Attribute" here
                    area.tag_redraw()


# -- reliefs ---------------------------------------------------------------------------------------


def _relief(path: Path, options: ImportOptions, provenance: Mapping[str, str] | None,
            name: str, height: float) -> list[str]:
    """A plane sized from the depth map's aspect, subdivided, displaced by the
    map (a Displace modifier with an image texture), ``height`` deep."""
    try:
        image = bpy.data.images.load(str(path), check_existing=False)
    except RuntimeError:
        raise ImportFailed(msg("Blender could not read the depth map: retry, or report it with the log")) from None
    image.name = f"{name} depth"
    width, length = image_size(image)
    if not width or not length:
        raise ImportFailed(msg("The depth map is empty"))
    # Depth is data, not a colour: no view transform on it.
    colorspace: Any = image.colorspace_settings
    colorspace.name = "Non-Color"
    longest = max(width, length)
    half_x, half_y = RELIEF_SIZE * width / longest / 2, RELIEF_SIZE * length / longest / 2
    mesh = bpy.data.meshes.new(f"{name} relief")
    mesh.from_pydata([(-half_x, -half_y, 0.0), (half_x, -half_y, 0.0), (half_x, half_y, 0.0), (-half_x, half_y, 0.0)],
                     [], [(0, 1, 2, 3)])
    uv = mesh.uv_layers.new(name="UVMap")
    if uv is None:
        raise ImportFailed(msg("Blender could not read the depth map: retry, or report it with the log"))
    for loop, corner in zip(uv.data, ((0.0, 0.0), (1.0, 0.0), (1.0, 1.0), (0.0, 1.0))):
        loop.uv = corner
    obj = bpy.data.objects.new(f"{name} relief", mesh)
    scene = bpy.context.scene
    assert scene is not None
    scene.collection.objects.link(obj)
    levels = max(1, math.ceil(math.log2(longest)))
    subdivision: Any = obj.modifiers.new("Subdivision", "SUBSURF")
    subdivision.subdivision_type = "SIMPLE"
    subdivision.levels = min(levels, MAX_VIEWPORT_LEVELS)
    subdivision.render_levels = min(levels, MAX_RENDER_LEVELS)
    texture: Any = bpy.data.textures.new(f"{name} depth", type="IMAGE")
    texture.image = image
    texture.extension = "EXTEND"
    displace: Any = obj.modifiers.new("Displace", "DISPLACE")
    displace.texture = texture
    displace.texture_coords = "UV"
    displace.uv_layer = uv.name
    displace.mid_level = 0.0
    displace.strength = height
    return _place([obj], options, provenance)


_FINISHERS: dict[ResultStyle, Callable[[list[str], str], None]] = {
    ResultStyle.PARTS: arrange_parts,
    ResultStyle.COLOURS: show_colours,
}
