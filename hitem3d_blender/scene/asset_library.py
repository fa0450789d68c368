"""The "Hitem3D" asset library in Blender's preferences, and its files.

Every imported task leaves one ``.blend`` here (a collection asset with the
cover as preview); the Asset Browser shows them as the import history, and
Import Again appends from them.
"""

from __future__ import annotations

import logging
from pathlib import Path

import bpy

from .. import identity
from ..core import asset_library as core_library
from ..core import safe_files

log = logging.getLogger(__package__)

from ..identity import ADDON_ID
LIBRARY_NAME = core_library.LIBRARY_NAME


def default_folder() -> Path:
    return identity.user_subdir(identity.LIBRARY)


def folder() -> Path:
    """The library folder: the one set in the add-on preferences (a studio
    share, say), else the extension's user folder."""
    chosen = ""
    addon = bpy.context.preferences.addons.get(ADDON_ID) if bpy.context.preferences else None
    if addon is not None:
        chosen = str(getattr(addon.preferences, "asset_library_folder", "") or "").strip()
    if chosen:
        return Path(bpy.path.abspath(chosen))
    return default_folder()


def entry_path(file_stem: str) -> Path:
    return folder() / core_library.entry_name(file_stem)


def ensure_registered() -> Path:
    """Make sure Preferences > File Paths > Asset Libraries lists "Hitem3D"
    with our folder (added on first use, corrected when the folder changed).
    Returns the folder."""
    path = folder()
    path.mkdir(parents=True, exist_ok=True)
    preferences = bpy.context.preferences
    if preferences is None:
        return path
    libraries = preferences.filepaths.asset_libraries
    library = libraries.get(LIBRARY_NAME)
    if library is None:
        library = libraries.new(name=LIBRARY_NAME, directory=str(path))
        log.info("Added the asset library %s at %s", LIBRARY_NAME, path)
    elif Path(bpy.path.abspath(library.path)) != path:
        library.path = str(path)
    else:
        return path
    # Saved with the preferences (auto-save, or Save Preferences).
    preferences.is_dirty = True
    return path


def is_registered() -> bool:
    preferences = bpy.context.preferences
    return preferences is not None and preferences.filepaths.asset_libraries.get(LIBRARY_NAME) is not None


def entries() -> list[Path]:
    try:
        return sorted(path for path in folder().glob("*.blend") if not path.name.startswith("."))
    except OSError:
        return []


def remove_entry(file_stem: str) -> bool:
    """Delete a task's entry (a link planted there loses the link, never its
    target); True when there was one and it is gone. A library that refuses
    (read-only, gone) is logged: removing the task must still work."""
    path = entry_path(file_stem)
    if not safe_files.is_link(path) and not path.exists():
        return False
    try:
        safe_files.remove(path)
    except OSError as exc:
        log.warning("Could not delete %s from the asset library: %s", path.name, exc.strerror or exc)
        return False
    return True
