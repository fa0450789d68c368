"""Bringing a task's library entry into the open file: the main thread's
whole share of an import once the converter has done the heavy part.

``bpy.data.libraries.load`` appends the entry's objects (their meshes,
materials and packed textures follow); then they are placed, selected and
made active exactly as a direct import would be.

Only an entry this Blender wrote is appended: its seal (the digest and the
file's identity, kept in our journal) is checked before the load and the
identity again right after it, before anything in it can run (a Python
driver runs when the scene is next evaluated). The library may be a studio
share where anyone can replace a file.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any, Mapping

import bpy

from . import datablocks, library_entry, placement
from ..core.errors import ImportFailed
from ..core.import_options import ImportOptions
from ..core import safe_files
from ..core.messages import Message, msg
from ..core.safe_files import Seal

log = logging.getLogger(__package__)


def entry_changed() -> Message:
    return msg("The model in the Hitem3D asset library is not the one saved here (it was changed or replaced): "
               "press Retry to download and convert it again")


def append_entry(entry: Path, options: ImportOptions, *, provenance: Mapping[str, str],
                 cover: Path | None = None, seal: Seal) -> list[str]:
    """Append the entry's objects, apply what its conversion did not (the
    options may have changed since: Import Again), place them and select
    them. Returns their names; raises ``ImportFailed`` and then leaves
    nothing, also when the entry no longer holds what ``seal`` says."""
    if bpy.context.view_layer is None:
        raise ImportFailed(msg("No view layer to import into"))
    identity = safe_files.seal_holds(entry, seal)
    if not identity:
        log.warning("Library entry %s does not match its seal: not appended", entry.name)
        raise ImportFailed(entry_changed())
    try:
        with datablocks.all_or_nothing(f"append of {entry.name}") as before:
            objects = _load_objects(entry)
            if safe_files.file_identity(entry) != identity:
                # Replaced while Blender read it: what was read is not what was
                # checked. Taken out again before anything in it can run.
                log.warning("Library entry %s changed while it was appended: removed again", entry.name)
                raise ImportFailed(entry_changed())
            # An entry from an older version records nothing: take it as finished as asked.
            baked = _take_baked_options(objects) or options
            placement.finish_model(objects, options, cover_path=cover, provenance=provenance, already=baked)
            placement.place_in_scene(objects, options, context=bpy.context)
    except (OSError, RuntimeError, ReferenceError) as exc:
        log.warning("Appending %s failed: %s", entry.name, exc)
        raise ImportFailed(msg("Could not read the model from the Hitem3D asset library: retry")) from None
    _drop_library_ids(before)
    return [obj.name for obj in objects]


def _load_objects(entry: Path) -> list[bpy.types.Object]:
    # NOTE: the stubs type load() as returning None; it is a context manager.
    load: Any = bpy.data.libraries.load
    with load(str(entry), link=False) as (source, target):
        names = list(source.objects)
        target.objects = names
    objects: list[Any] = [obj for obj in target.objects if obj is not None]
    if not objects:
        raise ImportFailed(msg("The model in the Hitem3D asset library holds no objects: import it again"))
    return objects


def _drop_library_ids(before: Mapping[str, set[Any]]) -> None:
    """Appending leaves a Library data-block behind, with nothing linked from
    it (everything appended is local): remove it, so the file looks as after
    a direct import."""
    for library in list(bpy.data.libraries):
        if library.as_pointer() not in before["libraries"]:
            bpy.data.libraries.remove(library)


def _take_baked_options(objects: list[bpy.types.Object]) -> ImportOptions | None:
    text = None
    for obj in objects:
        # NOTE: the stubs do not know that ID properties support ``in``.
        properties: Any = obj
        if library_entry.BAKED_PROPERTY in properties:
            text = properties[library_entry.BAKED_PROPERTY]
            del properties[library_entry.BAKED_PROPERTY]
    try:
        return ImportOptions.from_dict(json.loads(text)) if isinstance(text, str) else None
    except ValueError:
        return None

