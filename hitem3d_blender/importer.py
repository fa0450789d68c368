"""Bringing a downloaded GLB into the open scene with Blender's glTF importer.

Runs on the main thread only (from the timer or an operator).
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any, Mapping

import bpy

from .placement import apply_options
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
    rna = bpy.ops.import_scene.gltf.get_rna_type()  # type: ignore[call-arg]
    available = {prop.identifier for prop in rna.properties}
    options: dict[str, Any] = {"filepath": str(path)}
    options.update({key: value for key, value in _PREFERRED_OPTIONS.items() if key in available})
    return options


def _context_override() -> dict[str, Any]:
    """A window and 3D view for the operator when we have them (a timer runs
    without one); nothing in background mode, where the importer needs none."""
    wm = bpy.context.window_manager
    for window in getattr(wm, "windows", []):
        for area in window.screen.areas:
            if area.type == "VIEW_3D":
                return {"window": window, "area": area}
        return {"window": window}
    return {}


def import_glb(path: Path, options: ImportOptions, *, cover: Path | None = None,
               provenance: Mapping[str, str] | None = None) -> list[str]:
    """Import ``path``, place the new objects as ``options`` say, tag each with
    ``provenance``, select them and make one active. Returns the new objects'
    names. Raises ``ImportFailed``."""
    before = set(bpy.data.objects)
    try:
        with bpy.context.temp_override(**_context_override()):
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
    view_layer = bpy.context.view_layer
    if view_layer is None:
        raise ImportFailed(msg("No view layer to import into"))
    apply_options(new_objects, options, context=bpy.context, cover_path=cover,
                            provenance=provenance)
    for obj in view_layer.objects:
        obj.select_set(False)
    for obj in new_objects:
        if obj.name in view_layer.objects:
            obj.select_set(True)
    view_layer.objects.active = _pick_active(new_objects)
    return [obj.name for obj in new_objects]


def _pick_active(objects: list[bpy.types.Object]) -> bpy.types.Object:
    """The first mesh (what the artist wants to grab), else the first object."""
    meshes = [obj for obj in objects if obj.type == "MESH"]
    return (meshes or objects)[0]
