"""The selected meshes as one GLB for Hitem3D: Texture Selection, and every task
kind that takes a mesh.

Main thread only (``bpy``). Blender's glTF exporter writes the file; its options
are taken from the operator's RNA, so each Blender version gets the ones it has.
The file goes to our own folder and is checked against Hitem3D's 200 MB limit
before anything is sent; a file that fails is removed at once.
"""

from __future__ import annotations

import logging
import re
import time
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

import bpy

from .. import identity
from . import operator_options
from ..core import mesh_files, safe_files
from ..core.mesh_files import MAX_MESH_BYTES, MeshFileRejected, check_mesh_file, megabytes
from ..core.messages import msg
from .placement import world_box

log = logging.getLogger(__package__)

# A crash between export and sending leaves a file behind: removed after this.
STALE_EXPORT_S = 24 * 3600.0

# What Hitem3D needs is the shape: no materials or images (it makes the
# texture), no animation, cameras or lights. Modifiers applied, as the artist
# sees the model. Each option is set only where the exporter declares it.
_PREFERRED_OPTIONS: dict[str, Any] = {
    "export_format": "GLB",
    "use_selection": True,
    "export_apply": True,
    "export_materials": "NONE",
    "export_image_format": "NONE",
    "export_animations": False,
    "export_skins": False,
    "export_morph": False,
    "export_cameras": False,
    "export_lights": False,
    "export_extras": False,
    "export_yup": True,  # glTF's own convention; the importer turns it back
    "will_save_settings": False,  # never write our choices into the artist's file
    "check_existing": False,
}

_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")
# What Blender's glTF exporter writes at the least for each vertex (a position
# and a normal, three floats each) and each index (three per triangle): no
# UVs, no colours, no JSON. Below what any export of the mesh takes, so an
# estimate over the limit is a file over the limit, found before the export.
_LEAST_BYTES_PER_VERTEX = 24
_SHORT_INDICES_UP_TO = 65535  # more vertices than this: four-byte indices


class MeshExportFailed(MeshFileRejected):
    """Blender could not write the selection as GLB: nothing was sent."""


@dataclass(frozen=True)
class ExportedMesh:
    """One GLB holding the exported objects, and where they stood."""

    path: Path
    size: int
    names: tuple[str, ...]  # the exported objects, active first
    low: tuple[float, float, float]  # their world bounding box
    high: tuple[float, float, float]

    @property
    def title(self) -> str:
        """What the result is named after: the first object, '+N' for more."""
        return title_of(self.names)


def title_of(names: tuple[str, ...] | list[str]) -> str:
    """The selection as messages and the task list name it: "Chair", "Chair +2"."""
    extra = len(names) - 1
    return names[0] + (f" +{extra}" if extra else "")


def least_glb_bytes(objects: list[bpy.types.Object], context: bpy.types.Context) -> tuple[int, int]:
    """(bytes, triangles): the least a GLB of ``objects`` takes, from their
    evaluated meshes (modifiers applied, as exported), counted without
    building anything; a mesh several objects share is counted once."""
    depsgraph = context.evaluated_depsgraph_get()
    seen: set[int] = set()
    size = triangles = 0
    for obj in objects:
        mesh = obj.evaluated_get(depsgraph).data
        if not isinstance(mesh, bpy.types.Mesh) or mesh.as_pointer() in seen:
            continue
        seen.add(mesh.as_pointer())
        loops, faces = len(mesh.loops), len(mesh.polygons)
        count = max(0, loops - 2 * faces)  # an n-sided face is n - 2 triangles
        vertices = min(len(mesh.vertices), loops)  # loose vertices are not exported
        index_bytes = 4 if vertices > _SHORT_INDICES_UP_TO else 2
        size += vertices * _LEAST_BYTES_PER_VERTEX + 3 * count * index_bytes
        triangles += count
    return size, triangles


def exports_dir() -> Path:
    return identity.user_subdir(identity.EXPORTS)


def exporter_options(path: Path) -> dict[str, Any]:
    return operator_options.supported(bpy.ops.export_scene.gltf, path, _PREFERRED_OPTIONS)


def run_exporter(options: dict[str, Any]) -> set[str]:
    """Blender's glTF exporter (one place, so a test can make it fail)."""
    result: Any = bpy.ops.export_scene.gltf(**options)  # the stubs say None; it is a set
    return set(result)


def selected_meshes(context: bpy.types.Context) -> list[bpy.types.Object]:
    """The selected mesh objects, the active one first (it names the result)."""
    selected = [obj for obj in (getattr(context, "selected_objects", None) or []) if obj.type == "MESH"]
    active = getattr(context, "active_object", None)
    if active in selected:
        selected.remove(active)
        selected.insert(0, active)
    return selected


def export_meshes(objects: list[bpy.types.Object], context: bpy.types.Context,
                  folder: Path | None = None) -> ExportedMesh:
    """Write ``objects`` (meshes, modifiers applied) to one GLB in our folder.

    Raises ``MeshFileRejected`` (nothing selected, too big, export failed); the
    file is then gone. The artist's selection and mode are as they were.
    """
    meshes = [obj for obj in objects if obj.type == "MESH"]
    if not meshes:
        raise MeshFileRejected(msg("Select one or more mesh objects first"))
    view_layer = context.view_layer
    if view_layer is None:
        raise MeshFileRejected(msg("No view layer to export from"))
    hidden = [obj.name for obj in meshes if obj.name not in view_layer.objects or not obj.visible_get()]
    if hidden:
        raise MeshFileRejected(msg("{name} is hidden or not in this view layer: show it, then try again",
                                   name=hidden[0]))
    title = title_of([obj.name for obj in meshes])
    # NOTE: before the export, which takes about 1.7 s per million triangles:
    # a selection that cannot fit is refused in milliseconds, by its name.
    least, triangles = least_glb_bytes(meshes, context)
    if least > mesh_files.MAX_MESH_BYTES:
        raise MeshFileRejected(msg(
            "{name} would export to at least {size} ({triangles} triangles); Hitem3D accepts at most 200 MB: "
            "simplify it (Decimate modifier) or send fewer objects",
            name=title, size=megabytes(least), triangles=f"{triangles:,}"))
    folder = folder or exports_dir()
    prune_exports(folder)
    stem = _UNSAFE.sub("_", meshes[0].name).strip("._") or "mesh"
    path = folder / f"{stem[:60]}-{time.strftime('%Y%m%d-%H%M%S')}-{time.monotonic_ns() % 1_000_000:06d}.glb"
    box = world_box(meshes)
    started = time.perf_counter()
    try:
        # NOTE: the exporter follows a link planted at the name it writes: it
        # writes in a fresh private folder, and the file is moved into place
        # once checked (a failure leaves nothing).
        with safe_files.written_elsewhere(path) as staged:
            with _object_mode(context), _only_selected(meshes, view_layer):
                result = run_exporter(exporter_options(staged))
            if "FINISHED" not in result:
                raise MeshExportFailed(msg("Blender's glTF exporter did not finish: nothing was sent"))
            size = check_mesh_file(str(staged), name=title)  # named as selected, not as the file
    except (RuntimeError, TypeError) as exc:
        # NOTE: TypeError: an option value this Blender's exporter does not take.
        _remove(path)
        log.warning("glTF export of %d object(s) failed: %s", len(meshes), exc)
        raise MeshExportFailed(msg("Blender could not export the selection as GLB: see the Hitem3D log")) from None
    except MeshFileRejected:
        _remove(path)
        raise
    log.info("Exported %d object(s) to %s (%d bytes) in %.2f s", len(meshes), path.name, size,
             time.perf_counter() - started)
    low = (box.low.x, box.low.y, box.low.z) if box is not None else (0.0, 0.0, 0.0)
    high = (box.high.x, box.high.y, box.high.z) if box is not None else (0.0, 0.0, 0.0)
    return ExportedMesh(path, size, tuple(obj.name for obj in meshes), low, high)


def prune_exports(folder: Path, max_age_s: float = STALE_EXPORT_S) -> None:
    """Remove exports a crash left behind (sent ones are removed at once)."""
    limit = time.time() - max_age_s
    for path in folder.glob("*.glb"):
        try:
            if path.stat().st_mtime < limit:
                path.unlink()
        except OSError:
            log.debug("Could not remove old export %s", path, exc_info=True)


def discard(path: str | Path) -> None:
    """Remove an export once Hitem3D has answered; never a file outside our folder."""
    candidate = Path(path)
    try:
        inside = candidate.resolve().parent == exports_dir().resolve()
    except OSError:
        return
    if inside and candidate.suffix == ".glb":
        _remove(candidate)


def _remove(path: Path) -> None:
    try:
        path.unlink(missing_ok=True)
    except OSError:
        log.warning("Could not remove %s", path.name)


@contextmanager
def _object_mode(context: bpy.types.Context) -> Iterator[None]:
    """Edit-mode changes reach the mesh only in object mode; the mode comes back."""
    mode = context.mode
    switched = mode != "OBJECT" and bool(bpy.ops.object.mode_set.poll())  # type: ignore[call-arg]
    if switched:
        bpy.ops.object.mode_set(mode="OBJECT")
    try:
        yield
    finally:
        if switched and context.active_object is not None:
            try:
                setter: Any = bpy.ops.object.mode_set  # the stubs' Literal list lags the modes
                setter(mode=_MODE_SET.get(mode, "OBJECT"))
            except RuntimeError:
                log.debug("Could not return to %s mode", mode)


# context.mode names the mode per object type; mode_set wants the generic one.
_MODE_SET: dict[str, str] = {
    "EDIT_MESH": "EDIT", "SCULPT": "SCULPT", "PAINT_VERTEX": "VERTEX_PAINT",
    "PAINT_WEIGHT": "WEIGHT_PAINT", "PAINT_TEXTURE": "TEXTURE_PAINT",
}


@contextmanager
def _only_selected(objects: list[bpy.types.Object], view_layer: bpy.types.ViewLayer) -> Iterator[None]:
    """Exactly ``objects`` selected for the exporter, then the artist's selection back."""
    # NOTE: right after objects are removed the view layer may list None until
    # its next update.
    before = [obj for obj in view_layer.objects if obj is not None and obj.select_get(view_layer=view_layer)]
    active = view_layer.objects.active
    for obj in view_layer.objects:
        if obj is not None:
            obj.select_set(False, view_layer=view_layer)
    for obj in objects:
        obj.select_set(True, view_layer=view_layer)
    try:
        yield
    finally:
        for obj in objects:
            obj.select_set(False, view_layer=view_layer)
        for obj in before:
            if obj.name in view_layer.objects:
                obj.select_set(True, view_layer=view_layer)
        view_layer.objects.active = active


__all__ = ["MAX_MESH_BYTES", "ExportedMesh", "MeshExportFailed", "discard", "export_meshes", "exports_dir",
           "exporter_options", "selected_meshes"]
