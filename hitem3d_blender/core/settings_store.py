"""The add-on's settings, kept in its own user folder.

Blender drops an add-on's preferences when the add-on is disabled (and so
when the same version is installed again): the Client ID and Secret would be
gone and resumed tasks would fail at once. Every change is written here, and
enabling the add-on reads it back.

The file is ``settings.json`` in the extension's user folder, written like
Blender's own ``userpref.blend`` holds add-on preferences, with more care: the
file is readable only by the user where the OS has POSIX modes (0600), written
atomically, never through a symlink, and nothing in it is ever shown (the
secret is masked in the preferences and diagnostics say only "set").
Uninstalling the extension removes the folder, and the settings with it.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any, Mapping

from . import safe_files

log = logging.getLogger(__name__)

SETTINGS_NAME = "settings.json"
VERSION = 1
FILE_MODE = 0o600


def load(path: Path, defaults: Mapping[str, Any]) -> dict[str, Any]:
    """The saved values of the keys in ``defaults``, each of its default's type;
    anything missing, unreadable or of another type is left out."""
    try:
        data = json.loads(safe_files.read_bytes(path).decode("utf-8"))
    except FileNotFoundError:
        return {}
    except (OSError, ValueError) as exc:
        log.warning("Could not read the Hitem3D settings (%s): using the preferences as they are", exc)
        return {}
    values = data.get("settings") if isinstance(data, dict) else None
    if not isinstance(values, dict):
        return {}
    kept: dict[str, Any] = {}
    for key, default in defaults.items():
        value = values.get(key)
        if isinstance(default, bool):
            ok = isinstance(value, bool)
        elif isinstance(default, float):
            ok = isinstance(value, (int, float)) and not isinstance(value, bool)
            value = float(value) if isinstance(value, (int, float)) else value
        else:
            ok = isinstance(value, type(default))
        if ok:
            kept[key] = value
    return kept


def save(path: Path, values: Mapping[str, Any]) -> None:
    """Write ``values`` (plain str, float, bool) atomically, user-readable only.
    Raises ``OSError`` (``DiskFull`` for a full disk)."""
    text = json.dumps({"version": VERSION, "settings": dict(values)}, indent=1, sort_keys=True)
    safe_files.write_atomic(path, text.encode("utf-8"), mode=FILE_MODE)
