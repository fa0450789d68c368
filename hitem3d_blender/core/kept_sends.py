"""Requests that had not left when Blender quit, kept for the next session.

A request that waits in the send queue (for the first balance, or for a free
slot on the account) has spent nothing. If Blender quits, crashes or the
add-on is disabled then, it is written here (one small JSON file in the
extension's user folder, replaced whole on each change) and comes back in the
next session as "kept, not sent": it goes again only when the artist presses
its Send button, never by itself, since the balance, the account or the wish
may have changed. A request that had left (its upload under way, or answered)
is never kept: sending it again could pay twice.

The file is input like any other: each entry is checked, an entry that is not
a request is dropped, and a mesh to texture must be one of our own exports
(``exports``): a planted path to any other file is dropped, never read. No
``bpy``.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Union

from . import safe_files
from .import_options import ImportOptions
from .kind_requests import KindRequest
from .submission import Submission

log = logging.getLogger(__name__)

VERSION = 1
# A queue longer than this is a script's, not an artist's: the rest is not kept.
MAX_KEPT = 200
# A file of ours this size holds far more than MAX_KEPT entries.
MAX_FILE_BYTES = 4 * 1024 * 1024
_GENERATION, _KIND = "generation", "kind"

Request = Union[Submission, KindRequest]


@dataclass(frozen=True)
class Kept:
    """One request that had not left, and what the panel needs to show it."""

    request: Request
    panel: str = ""  # where its line is shown
    button: str = ""  # the button that made it
    thumbnail: str = ""
    options: ImportOptions = field(default_factory=ImportOptions)


def encode(kept: list[Kept]) -> bytes:
    entries = [{"type": _GENERATION if isinstance(item.request, Submission) else _KIND,
                "request": item.request.to_dict(), "panel": item.panel, "button": item.button,
                "thumbnail": item.thumbnail, "options": item.options.to_dict()} for item in kept[:MAX_KEPT]]
    return json.dumps({"version": VERSION, "requests": entries}, indent=1).encode("utf-8")


def decode(raw: bytes, exports: Path) -> list[Kept]:
    """The requests in ``raw``; what cannot be one is dropped (and logged)."""
    try:
        data = json.loads(raw.decode("utf-8"))
    except ValueError:
        log.warning("The kept requests could not be read: none kept")
        return []
    entries = data.get("requests") if isinstance(data, dict) else None
    if not isinstance(entries, list):
        return []
    kept = [item for item in (_entry(entry, exports) for entry in entries[:MAX_KEPT]) if item is not None]
    if len(kept) < min(len(entries), MAX_KEPT):
        log.warning("Dropped %d kept request(s) that could not be read", min(len(entries), MAX_KEPT) - len(kept))
    return kept


def _entry(entry: object, exports: Path) -> Kept | None:
    if not isinstance(entry, dict) or not isinstance(entry.get("request"), dict):
        return None
    saved: dict[str, Any] = entry["request"]
    request: Request | None = (Submission.from_dict(saved) if entry.get("type") == _GENERATION
                               else KindRequest.from_dict(saved) if entry.get("type") == _KIND else None)
    if request is None:
        return None
    if isinstance(request, Submission) and request.mesh and not safe_files.inside(exports, request.mesh):
        # Texture Selection only ever sends an export of ours: anything else is planted.
        return None
    texts = [entry.get(name) for name in ("panel", "button", "thumbnail")]
    if not all(isinstance(text, str) and len(text) < 4096 for text in texts):
        return None
    options = entry.get("options")
    return Kept(request, str(texts[0]), str(texts[1]), str(texts[2]),
                ImportOptions.from_dict(options if isinstance(options, dict) else None))


def load(path: Path, exports: Path) -> list[Kept]:
    """The kept requests; none when the file is missing or unreadable (a
    symlink is not followed)."""
    try:
        raw = safe_files.read_bytes(path, max_bytes=MAX_FILE_BYTES)
    except FileNotFoundError:
        return []
    except OSError as exc:
        log.warning("Could not read the kept requests %s: %s", path.name, exc)
        return []
    return decode(raw, exports)


def write(path: Path, data: bytes) -> None:
    """Replace the file with ``data`` (``encode``); an empty list removes it."""
    try:
        if data == encode([]):
            safe_files.remove_quietly(path)
        else:
            safe_files.write_atomic(path, data)
    except OSError as exc:
        log.warning("Could not keep the requests waiting to be sent: %s", exc)
