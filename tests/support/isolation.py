"""A Blender of our own for a script run: a throwaway user folder, and none of
the add-on's settings from the environment of whoever started it."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

# Variables the add-on reads before its preferences (README, *Set up your credentials*).
ADDON_ENVIRONMENT = ("HITEM3D_API_BASE", "HITEM3D_CLIENT_ID", "HITEM3D_CLIENT_SECRET")


def throwaway_user_folder(prefix: str) -> Path:
    """Point Blender at a new, empty user folder (and cache) and drop the
    add-on's variables from this process's environment. Must run before
    ``import bpy``; the caller removes the folder when done."""
    user = Path(tempfile.mkdtemp(prefix=prefix))
    os.environ["BLENDER_USER_RESOURCES"] = str(user)
    os.environ["XDG_CACHE_HOME"] = str(user / "cache")
    for name in ADDON_ENVIRONMENT:
        os.environ.pop(name, None)
    return user
