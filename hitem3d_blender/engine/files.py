"""Where the extension keeps its files: downloaded results, covers, the journal.

Everything lives in the extension's own user folder; names come from a hash of
the task ID, never from the server or the user.
"""

from __future__ import annotations

import hashlib
import time
from pathlib import Path
from typing import Collection

from ..core.result_files import all_extensions

from .. import identity
from ..identity import ADDON_ID, JOURNAL_NAME, user_dir


def results_dir() -> Path:
    """Where downloaded results live: the extension's own user folder."""
    now = time.monotonic()
    known = _results_dir.get(ADDON_ID)
    if known is not None and now - known[1] < _RECHECK_S:
        return known[0]
    # NOTE: Blender's answer costs stats and a folder check (tens of µs, far
    # more while workers hold the GIL): a paste of 1,000 IDs asks once. The
    # downloader makes the folder again if it went away meanwhile.
    folder = identity.user_subdir(identity.RESULTS)
    _results_dir[ADDON_ID] = (folder, now)
    return folder


_results_dir: dict[str, tuple[Path, float]] = {}
_RECHECK_S = 1.0


def file_stem(task_id: str) -> str:
    """A cache file name from a hash of the ID: never a path from the server
    or the user, and safe on every file system (no case clashes, no reserved
    Windows names such as CON.*)."""
    return "task-" + hashlib.sha256(task_id.encode("utf-8")).hexdigest()[:24]


def result_path(task_id: str, folder: Path | None = None) -> Path:
    return (folder or results_dir()) / f"{file_stem(task_id)}.glb"


def cover_path(task_id: str, folder: Path | None = None) -> Path:
    # Named .webp whatever it holds: Blender reads images by content, but its
    # previews only consider files with an image extension.
    return (folder or results_dir()) / f"{file_stem(task_id)}.cover.webp"


def work_dir() -> Path:
    """Specs, results and output of running conversions."""
    return identity.user_subdir(identity.CONVERTING)


def journal_path() -> Path:
    return identity.journal_path()


def _results() -> list[Path]:
    """Downloaded results of every kind (a depth map is a PNG or EXR, parts
    may be STL); covers are ``*.cover.webp`` and never among them."""
    return [path for extension in all_extensions() for path in results_dir().glob(f"task-*.{extension}")]


def cache_size() -> int:
    """Bytes used by downloaded results (a symlink counts as itself, never its
    target), as of at most a few seconds ago.

    NOTE: the preferences show it at every redraw; a stat per result would
    make drawing them grow with the history."""
    now = time.monotonic()
    known = _cache_size.get(ADDON_ID)
    if known is not None and now - known[1] < _CACHE_SIZE_TTL_S:
        return known[0]
    size = sum(path.lstat().st_size for path in _results())
    _cache_size[ADDON_ID] = (size, now)
    return size


_cache_size: dict[str, tuple[int, float]] = {}
_CACHE_SIZE_TTL_S = 2.0


def cache_changed() -> None:
    """A result landed or went: the next ``cache_size`` counts again."""
    _cache_size.clear()


def delete_results(keep: Collection[Path]) -> int:
    """Delete downloaded results except those of ``keep`` (``result_path``
    values, in any format); returns bytes freed. Covers stay: they are small
    and make the history recognisable."""
    freed = 0
    kept = {path.stem for path in keep}
    for path in _results():
        if path.stem in kept:
            continue
        freed += path.lstat().st_size  # a symlink is removed, its target never measured or touched
        path.unlink(missing_ok=True)
    cache_changed()
    return freed
