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
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping

from . import safe_files

log = logging.getLogger(__name__)

SETTINGS_NAME = "settings.json"
VERSION = 1
FILE_MODE = 0o600
# A settings file is a few hundred bytes; one far larger is not ours.
MAX_SETTINGS_BYTES = 256 * 1024
# Longer than any path, URL or key a setting holds.
MAX_TEXT_CHARS = 4096


@dataclass(frozen=True)
class Bounds:
    """What a setting may hold besides its type: a number's range (the
    preference's own hard limits), a text's length, an enum's items."""

    low: float | None = None
    high: float | None = None
    max_chars: int = MAX_TEXT_CHARS
    choices: tuple[str, ...] = ()


def _usable(value: Any, default: Any, bounds: Bounds) -> tuple[bool, Any]:
    """Whether ``value`` may stand for ``default`` (and the value to use)."""
    if isinstance(default, bool):
        return isinstance(value, bool), value
    if isinstance(default, (int, float)):
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            return False, value
        if isinstance(default, int) and not isinstance(value, int):
            return False, value
        # NOTE: JSON as Python reads it takes NaN and Infinity: a NaN poll
        # interval polled at 20 Hz, a NaN download limit broke every import.
        if not math.isfinite(value) or abs(value) > 1e15:
            return False, value
        if (bounds.low is not None and value < bounds.low) or (bounds.high is not None and value > bounds.high):
            return False, value
        return True, float(value) if isinstance(default, float) else value
    if isinstance(default, str):
        if not isinstance(value, str) or len(value) > bounds.max_chars or "\0" in value:
            return False, value
        return (not bounds.choices or value in bounds.choices), value
    return isinstance(value, type(default)), value


def load(path: Path, defaults: Mapping[str, Any], bounds: Mapping[str, Bounds] | None = None) -> dict[str, Any]:
    """The saved values of the keys in ``defaults``: each of its default's
    type and within its ``bounds`` (a finite number in range, a text of
    reasonable length, a known enum item). Anything missing, unreadable or
    unusable is left out (logged: it keeps its default)."""
    try:
        data = json.loads(safe_files.read_bytes(path, max_bytes=MAX_SETTINGS_BYTES).decode("utf-8"))
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
        if key not in values:
            continue
        ok, value = _usable(values[key], default, (bounds or {}).get(key, Bounds()))
        if ok:
            kept[key] = value
        else:
            log.warning("The setting %s in %s is not usable: it keeps its default", key, path.name)
    return kept


def save(path: Path, values: Mapping[str, Any]) -> None:
    """Write ``values`` (plain str, float, bool) atomically, user-readable only.
    Raises ``OSError`` (``DiskFull`` for a full disk)."""
    text = json.dumps({"version": VERSION, "settings": dict(values)}, indent=1, sort_keys=True)
    safe_files.write_atomic(path, text.encode("utf-8"), mode=FILE_MODE)
