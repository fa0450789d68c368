"""Making a task's asset library entry: the part of an import that does not
depend on the open scene.

The same functions run in the headless converter (``convert_child.py``) and,
where conversion is switched off (tests not about it), in Blender itself, so
both give the same objects and the same ``.blend``: the glTF import, origin,
size, shading, asset marks and provenance, then one collection asset holding
the result, written with ``bpy.data.libraries.write``.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import bpy

from . import placement
from ..core import safe_files
from ..core.conversion import ConversionSpec
from ..core.safe_files import Seal

log = logging.getLogger(__package__)

# Written on each object of an entry: the options already applied, so Import
# Again knows what is left to do. Removed when the entry is appended.
BAKED_PROPERTY = "hitem3d_baked_options"


def finish_objects(objects: list[bpy.types.Object], spec: ConversionSpec) -> None:
    """Apply the options that do not depend on the scene, and the provenance
    (``placement.finish_model``), with the spec's cover if it is usable."""
    placement.finish_model(objects, spec.options, cover_path=usable_cover(spec), provenance=spec.provenance)


def usable_cover(spec: ConversionSpec) -> Path | None:
    """The cover, unless it is missing or too large to read as a preview."""
    if not spec.cover:
        return None
    from ..core.images import image_size  # noqa: PLC0415

    path = Path(spec.cover)
    size = image_size(path)
    if size is None:
        log.warning("Asset preview not set: %s is not an image we can measure", path.name)
        return None
    if size[0] * size[1] > spec.cover_pixel_limit:
        log.warning("Asset preview not set: the cover is %d x %d pixels, over the limit", *size)
        return None
    return path


def write_entry(objects: list[bpy.types.Object], spec: ConversionSpec) -> Seal:
    """Write the library entry: one collection asset holding ``objects``, with
    the cover as preview and the task's metadata. Atomic: the entry appears
    complete or not at all. The collection itself is not kept here. Returns
    the entry's seal, which Import Again checks before appending it.

    NOTE: Blender writes ``<file>@`` and renames it, following any link
    planted at either name: it writes in ``spec.staging``, a fresh private
    folder of ours, never in the library (a studio share anyone may write
    in); ``safe_files.publish`` moves the file into place."""
    collection = bpy.data.collections.new(spec.collection_name)
    baked = json.dumps(spec.options.to_dict())
    try:
        for obj in objects:
            collection.objects.link(obj)
            obj[BAKED_PROPERTY] = baked
        collection.asset_mark()
        _describe(collection, spec)
        cover = usable_cover(spec)
        previews = placement.read_previews(cover) if cover is not None else None
        if previews is not None:
            placement.set_preview(collection, previews)
        entry = Path(spec.entry)
        if not spec.staging:
            raise OSError("no private folder to write the library entry in")
        staged = Path(spec.staging) / entry.name
        try:
            # NOTE: uncompressed: appending it is then mostly a memory copy on
            # the main thread (compressed, it takes several times longer).
            bpy.data.libraries.write(str(staged), {collection}, fake_user=True, compress=False)
            return safe_files.publish(staged, entry)
        finally:
            safe_files.remove_quietly(staged)
    finally:
        for obj in objects:
            # NOTE: the stubs do not know that ID properties support ``in``.
            properties: Any = obj
            if BAKED_PROPERTY in properties:
                del properties[BAKED_PROPERTY]
        bpy.data.collections.remove(collection)


def _describe(collection: bpy.types.Collection, spec: ConversionSpec) -> None:
    data: Any = collection.asset_data
    info = spec.asset
    data.description = info.description
    data.author = "Hitem3D"
    for tag in info.tags:
        data.tags.new(tag, skip_if_exists=True)
    for key, value in info.properties.items():
        data[key] = value
    if info.catalog_id:
        # NOTE: the simple name is read-only: Blender takes it from the catalog file.
        data.catalog_id = info.catalog_id
