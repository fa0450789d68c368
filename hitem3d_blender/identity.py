"""Who the extension is and where it keeps its files: the one owner of both.

Every folder of ours lives in the extension's user folder, which Blender keeps
across disable, enable and upgrades (``bpy.utils.extension_path_user``). The
add-on id is the package name Blender gave us (``bl_ext.<repo>.hitem3d_blender``
when installed, ``hitem3d_blender`` when loaded by path).

NOTE: imported by every Blender-side layer (``scene``, ``engine``, ``ui``,
``i18n``); it imports only ``core``, so it never makes a cycle.
"""

from __future__ import annotations

from pathlib import Path

import bpy

from .core.settings_store import SETTINGS_NAME

ADDON_ID = __package__ or "hitem3d_blender"

# Sub-folders of the user folder, one job each.
RESULTS = "results"  # downloaded results and their covers
LIBRARY = "library"  # the default asset library folder
UPLOADS = "uploads"  # pictures written from Blender images before an upload
EXPORTS = "meshes"  # meshes exported for Texture Selection, split and the rest
CONVERTING = "converting"  # specs, results and output of running converters

JOURNAL_NAME = "journal.json"
KEPT_REQUESTS_NAME = "waiting_requests.json"  # requests that had not left when a session ended
LOG_NAME = "hitem3d.log"


def user_dir() -> Path:
    """The extension's user folder (made if missing)."""
    return Path(bpy.utils.extension_path_user(ADDON_ID, create=True))


def user_subdir(name: str) -> Path:
    """One of the folders above, inside the user folder (made if missing)."""
    return Path(bpy.utils.extension_path_user(ADDON_ID, path=name, create=True))


def journal_path() -> Path:
    return user_dir() / JOURNAL_NAME


def kept_requests_path() -> Path:
    return user_dir() / KEPT_REQUESTS_NAME


def settings_path() -> Path:
    return user_dir() / SETTINGS_NAME


def log_path() -> Path:
    return user_dir() / LOG_NAME
