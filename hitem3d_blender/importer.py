"""Bringing a downloaded GLB into the open scene with Blender's glTF importer.

Runs on the main thread only (from the timer or an operator).
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any, Mapping

import bpy

from . import library_entry, operator_options, placement
from .core.conversion import CHILD_ERRORS, ConversionSpec
from .core.errors import ImportFailed
from .core.messages import msg
from .core.import_options import ImportOptions

log = logging.getLogger(__package__)

TASK_ID_PROPERTY = "hitem3d_task_id"

# Importer options we want where the running Blender has them. Options differ
# between 4.2, 4.5 and 5.0, so each is set only if the operator declares it.
_PREFERRED_OPTIONS: dict[str, Any] = {
    "import_webp_texture": True,  # Hitem3D textures may be WebP
    "import_scene_as_collection": False,  # we place objects ourselves
    "import_select_created_objects": True,
}

def importer_options(path: Path) -> dict[str, Any]:
    return operator_options.supported(bpy.ops.import_scene.gltf, path, _PREFERRED_OPTIONS)


def window_override() -> dict[str, Any]:
    """A window and 3D view for the operator when we have them (a timer runs
    without one); nothing in background mode, where the importer needs none."""
    wm = bpy.context.window_manager
    for window in getattr(wm, "windows", []):
        for area in window.screen.areas:
            if area.type == "VIEW_3D":
                return {"window": window, "area": area}
        return {"window": window}
    return {}


def run_gltf(path: Path) -> list[bpy.types.Object]:
    """Blender's glTF importer on ``path``; returns the objects it made.
    Raises ``ImportFailed``."""
    before = set(bpy.data.objects)
    try:
        with bpy.context.temp_override(**window_override()):
            if bpy.context.mode != "OBJECT" and bpy.ops.object.mode_set.poll():  # type: ignore[call-arg]
                bpy.ops.object.mode_set(mode="OBJECT")
            # The stubs type operator calls as returning None; they return a set.
            result: Any = bpy.ops.import_scene.gltf(**importer_options(path))
    except (RuntimeError, OSError) as exc:
        log.warning("glTF import of %s failed: %s", path.name, exc)
        raise ImportFailed(msg("Blender could not import the GLB: retry, or report it with the log")) from None
    if "FINISHED" not in result:
        raise ImportFailed(msg("Blender's glTF importer did not finish: retry"))
    new_objects = [obj for obj in bpy.data.objects if obj not in before]
    if not new_objects:
        raise ImportFailed(msg("The GLB holds no objects"))
    return new_objects


def import_glb(path: Path, spec: ConversionSpec) -> list[str]:
    """Import ``path`` in this Blender (background mode, the command line):
    the same steps as the converter and the append, in one process. Writes
    the task's library entry, places the new objects as ``spec.options`` say,
    selects them and makes one active. Returns the new objects' names.
    Raises ``ImportFailed``."""
    if bpy.context.view_layer is None:
        raise ImportFailed(msg("No view layer to import into"))
    before = snapshot_ids()
    try:
        new_objects = run_gltf(path)
        library_entry.finish_objects(new_objects, spec)
        library_entry.write_entry(new_objects, spec)
    except (OSError, RuntimeError) as exc:
        log.warning("Could not write the library entry of %s: %s", spec.task_id, exc)
        remove_new_ids(before)
        raise ImportFailed(msg(CHILD_ERRORS["save_failed"])) from None
    except BaseException:
        remove_new_ids(before)
        raise
    placement.place_in_scene(new_objects, spec.options, context=bpy.context)
    return [obj.name for obj in new_objects]


# The kinds of data a glTF import or an append makes.
_ID_COLLECTIONS = ("objects", "meshes", "materials", "images", "textures", "node_groups", "armatures",
                   "actions", "cameras", "lights", "collections", "shape_keys", "libraries")


def snapshot_ids() -> dict[str, set[Any]]:
    """Every data-block that exists now, per kind (pointers, not names: names change)."""
    return {kind: {block.as_pointer() for block in getattr(bpy.data, kind)} for kind in _ID_COLLECTIONS}


def remove_new_ids(before: dict[str, set[Any]]) -> None:
    """Remove every data-block made since ``before``: an import that failed
    half-way leaves nothing in the file."""
    for kind in _ID_COLLECTIONS:
        blocks = getattr(bpy.data, kind)
        new = [block for block in blocks if block.as_pointer() not in before[kind]]
        if new:
            bpy.data.batch_remove(new)
