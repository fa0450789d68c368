"""All or nothing: what an operation added to ``bpy.data``, and taking it all back.

An importer that fails on the second mesh has already made the first object,
its mesh, materials and images; Retry would then duplicate them. The import
runs inside ``all_or_nothing()``: a before/after difference of every
data-block collection finds what it made, and a failure removes all of it in
one ``bpy.data.batch_remove``. Main thread only, like every ``bpy.data`` change.
"""

from __future__ import annotations

import contextlib
import logging
from functools import lru_cache
from typing import Iterator

import bpy

log = logging.getLogger(__package__)

# Collections an import or append never adds to, or whose members must not be
# removed this way: the UI's own data, and shape keys (freed with their mesh).
# Libraries stay in: an append from a .blend can leave one behind.
_SKIPPED = frozenset({
    "brushes", "paint_curves", "palettes", "scenes", "screens", "shape_keys", "window_managers", "workspaces",
})

Snapshot = dict[str, set[int]]


@lru_cache(maxsize=1)
def collection_names() -> tuple[str, ...]:
    """Every ``bpy.data`` collection of data-blocks this Blender has (the list
    grows between versions: grease_pencils_v3, hair_curves...), minus ``_SKIPPED``."""
    names = []
    for prop in bpy.data.bl_rna.properties:
        if prop.type == "COLLECTION" and prop.identifier not in _SKIPPED:
            fixed = getattr(prop, "fixed_type", None)
            if fixed is not None and _is_id(fixed):
                names.append(prop.identifier)
    return tuple(names)


def _is_id(struct: bpy.types.Struct) -> bool:
    base: bpy.types.Struct | None = struct
    while base is not None:
        if base.identifier == "ID":
            return True
        base = base.base
    return False


def snapshot() -> Snapshot:
    """The data-blocks that exist now, by collection and address."""
    return {name: {block.as_pointer() for block in getattr(bpy.data, name)} for name in collection_names()}


def created_since(before: Snapshot) -> list[bpy.types.ID]:
    """Data-blocks that exist now and did not at ``before``."""
    created: list[bpy.types.ID] = []
    for name in collection_names():
        known = before.get(name, set())
        created.extend(block for block in getattr(bpy.data, name) if block.as_pointer() not in known)
    return created


def remove_created(before: Snapshot) -> int:
    """Remove every data-block made since ``before``; returns how many."""
    created = created_since(before)
    if created:
        bpy.data.batch_remove(created)
    return len(created)


@contextlib.contextmanager
def all_or_nothing(what: str = "import") -> Iterator[Snapshot]:
    """Run the block; if it raises, remove everything it added to ``bpy.data``
    and re-raise. A failure of the clean-up itself is logged, never hides the
    original error."""
    before = snapshot()
    try:
        yield before
    except BaseException:
        try:
            removed = remove_created(before)
            if removed:
                log.info("Removed %d data-block(s) left by the failed %s", removed, what)
        except Exception:  # noqa: BLE001 - the original error is the one to report
            log.info("Could not remove what the failed %s left behind", what, exc_info=True)
        raise
