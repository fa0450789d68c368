"""Result files of every kind: where each goes in the cache, and the check of
its content before it is renamed into place or imported.

A task's cache file is ``task-<hash>.<ext>``; the extension comes from the
result link (checked against the kind's ``result_extensions``), never from the
server's file name.
"""

from __future__ import annotations

import os
import struct
from pathlib import Path
from typing import Callable

from . import safe_files
from .downloader import check_glb
from .errors import BadResultFile
from .image_header import Unmeasurable, file_image_size
from .messages import Message, msg
from .task_kinds import TaskKind

_STL_HEADER = 80
_STL_TRIANGLE = 50
# Hitem3D's depth maps are 2K ("pro"); far larger is not a depth map to displace with.
MAX_DEPTH_MAP_SIDE = 16384


def check_stl(path: Path) -> None:
    """Raise ``BadResultFile`` unless ``path`` is a complete binary STL or starts like an ASCII one."""
    with safe_files.open_read(path) as file:  # never a FIFO: it would wait for ever
        size = os.fstat(file.fileno()).st_size
        head = file.read(_STL_HEADER + 4)
    if head.startswith(b"solid") and b"\0" not in head:
        return  # ASCII STL (binary ones may also start with "solid": those carry NULs or a count)
    if len(head) < _STL_HEADER + 4:
        raise BadResultFile(msg("The downloaded result is not an STL file: retry, or check the task on Hitem3D"))
    (count,) = struct.unpack("<I", head[_STL_HEADER:])
    if size != _STL_HEADER + 4 + count * _STL_TRIANGLE:
        raise BadResultFile(msg("The downloaded STL is incomplete: retry"))


def check_png(path: Path) -> None:
    """Raise ``BadResultFile`` unless ``path`` starts like a PNG of a size Blender can displace with."""
    _check_depth_map(path, "png", msg("The downloaded depth map is not a PNG file: retry, or check the task on "
                                      "Hitem3D"))


def check_exr(path: Path) -> None:
    """Raise ``BadResultFile`` unless ``path`` is an OpenEXR file whose data window has a usable size."""
    _check_depth_map(path, "exr", msg("The downloaded depth map is not an EXR file: retry, or check the task on "
                                      "Hitem3D"))


def _check_depth_map(path: Path, kind: str, not_that_kind: Message) -> None:
    # The one picture reader (``image_header``): headers only, no symlink followed.
    try:
        found = file_image_size(path)
    except Unmeasurable:
        found = None
    if found is None or found.kind != kind:
        raise BadResultFile(not_that_kind)
    _check_size(found.width, found.height)


def _check_size(width: int, height: int) -> None:
    # NOTE: Blender decodes a displacement image whole: a map of 60,000 pixels a
    # side would take tens of GB before anything shows.
    if not 0 < width <= MAX_DEPTH_MAP_SIDE or not 0 < height <= MAX_DEPTH_MAP_SIDE:
        raise BadResultFile(msg("The depth map is {width} x {height} pixels; at most {limit} a side can be used",
                                width=width, height=height, limit=MAX_DEPTH_MAP_SIDE))


VALIDATORS: dict[str, Callable[[Path], None]] = {
    "glb": check_glb,
    "stl": check_stl,
    "png": check_png,
    "exr": check_exr,
}


def path_for(dest: Path, extension: str) -> Path:
    """The cache file for a result of this extension (``dest`` is the task's ``.glb`` path)."""
    return dest.with_suffix("." + extension)


def cached_result(dest: Path, kind: TaskKind) -> Path | None:
    """The task's complete result already on disk, in any format its kind
    imports; None when there is none."""
    for extension in kind.result_extensions:
        candidate = path_for(dest, extension)
        if not safe_files.is_regular_file(candidate):
            continue  # missing, or a symlink planted in our folder: never followed
        try:
            VALIDATORS[extension](candidate)
        except (BadResultFile, OSError):
            continue
        return candidate
    return None


def all_extensions() -> tuple[str, ...]:
    return tuple(VALIDATORS)
