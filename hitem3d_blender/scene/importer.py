"""Bringing a downloaded GLB into the open scene with Blender's glTF importer.

Runs on the main thread only (from the timer or an operator).
"""

from __future__ import annotations

import contextlib
import logging
from pathlib import Path
from typing import Any, ContextManager, Mapping

import bpy

from . import datablocks, library_entry, operator_options, placement
from ..core.conversion import CHILD_ERRORS, ConversionSpec
from ..core.errors import BadResultFile, ImportFailed
from ..core.glb_check import check_glb, importer_extensions
from ..core.logs import captured_output, clean_lines, clean_text
from ..core.messages import msg
from ..core.import_options import ImportOptions
from ..core.safe_files import Seal

log = logging.getLogger(__package__)

TASK_ID_PROPERTY = "hitem3d_task_id"

# Importer options we want where the running Blender has them. Options differ
# between 4.2, 4.5 and 5.0, so each is set only if the operator declares it.
# NOTE: not import_webp_texture. It only prefers a texture's WebP version over
# its PNG/JPEG fallback; a WebP-only texture loads without it. And Blender 5.3's
# importer, given it, drops every texture that has no WebP version.
_PREFERRED_OPTIONS: dict[str, Any] = {
    "import_scene_as_collection": False,  # we place objects ourselves
    "import_select_created_objects": True,
}

def importer_options(path: Path) -> dict[str, Any]:
    return operator_options.supported(bpy.ops.import_scene.gltf, path, _PREFERRED_OPTIONS)


def window_override() -> dict[str, Any]:
    """A window and 3D view for the operator when we have them (a timer runs
    without one); nothing in background mode, where the importer needs none.
    NOTE: the ``bpy`` module has a window manager with one window, never
    shown: asked by ``bpy.app.background``, not by the windows listed, so a
    pipeline's own Python threads never meet an override of ours (see ``in_window``)."""
    if bpy.app.background:
        return {}
    wm = bpy.context.window_manager
    for window in getattr(wm, "windows", []):
        for area in window.screen.areas:
            if area.type == "VIEW_3D":
                return {"window": window, "area": area}
        return {"window": window}
    return {}


def check_result(path: Path) -> None:
    """``core.glb_check.check_glb`` for the glTF importer of the Blender running
    here (the extensions it reads differ between versions). Raises ``BadResultFile``."""
    check_glb(path, importer=importer_extensions(bpy.app.version))


def in_window() -> ContextManager[Any]:
    """The window and 3D view as the operators' context when we have them;
    with no window (background mode, the converter), no override at all.

    NOTE: an override, even an empty one, makes every context lookup inside
    the operator go through Python (``BPY_context_member_get``), which with
    Python 3.11 (Blender 4.2 to 5.0) skips taking the GIL whenever any thread
    holds it (see docs/threads-in-blender.md): never one we do not need."""
    override = window_override()
    return bpy.context.temp_override(**override) if override else contextlib.nullcontext()


def run_gltf(path: Path) -> list[bpy.types.Object]:
    """Blender's glTF importer on ``path``, checked first (``core.glb_check``:
    nothing outside the file is read, nothing it does not hold is allocated);
    returns the objects it made. Raises ``ImportFailed``. Every import path
    (in this process, in the child converter) comes through here."""
    try:
        check_result(path)
    except BadResultFile as exc:
        raise ImportFailed(exc.message) from None
    before = set(bpy.data.objects)
    with captured_output() as printed:
        try:
            with in_window():
                if bpy.context.mode != "OBJECT" and bpy.ops.object.mode_set.poll():  # type: ignore[call-arg]
                    bpy.ops.object.mode_set(mode="OBJECT")
                # The stubs type operator calls as returning None; they return a set.
                result: Any = bpy.ops.import_scene.gltf(**importer_options(path))
        except (RuntimeError, OSError) as exc:
            # Blender printed its traceback (38 lines) to stderr: it goes to the
            # log file only, cleaned (the GLB's own text is in it); the user
            # gets the one line the caller reports.
            log.info("glTF import of %s failed: %s\n%s", path.name,
                     clean_text((str(exc).strip().splitlines() or [""])[-1]), clean_lines(printed.getvalue()))
            raise ImportFailed(msg("Blender could not import the GLB: retry, or report it with the log")) from None
    if printed.getvalue():
        log.debug("glTF importer on %s:\n%s", path.name, clean_lines(printed.getvalue()))
    if "FINISHED" not in result:
        raise ImportFailed(msg("Blender's glTF importer did not finish: retry"))
    new_objects = [obj for obj in bpy.data.objects if obj not in before]
    if not new_objects:
        raise ImportFailed(msg("The GLB holds no objects"))
    return new_objects


def import_glb(path: Path, spec: ConversionSpec) -> tuple[list[str], Seal]:
    """Import ``path`` in this Blender (``engine.conversions.USE_CHILD_PROCESS`` off):
    the same steps as the converter and the append, in one process. Writes
    the task's library entry, places the new objects as ``spec.options`` say,
    selects them and makes one active. Returns the new objects' names and
    the entry's seal. Raises ``ImportFailed``."""
    if bpy.context.view_layer is None:
        raise ImportFailed(msg("No view layer to import into"))
    # All or nothing, placing included: a failure anywhere removes what the import made.
    with datablocks.all_or_nothing(f"import of {path.name}"):
        new_objects = run_gltf(path)
        try:
            library_entry.finish_objects(new_objects, spec)
            seal = library_entry.write_entry(new_objects, spec)
        except (OSError, RuntimeError) as exc:
            log.warning("Could not write the library entry of %s: %s", spec.task_id, exc)
            raise ImportFailed(msg(CHILD_ERRORS["save_failed"])) from None
        placement.place_in_scene(new_objects, spec.options, context=bpy.context)
    return [obj.name for obj in new_objects], seal

