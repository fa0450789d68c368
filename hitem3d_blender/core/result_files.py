"""Result files of every kind: where each goes in the cache, and the check of
its content before it is renamed into place or imported.

A task's cache file is ``task-<hash>.<ext>``; the extension comes from the
result link (checked against the kind's ``result_extensions``), never from the
server's file name.
"""

from __future__ import annotations

import struct
from pathlib import Path
from typing import Callable

from . import safe_files
from .downloader import check_glb
from .errors import BadResultFile
from .messages import msg
from .task_kinds import TaskKind

_STL_HEADER = 80
_STL_TRIANGLE = 50
_PNG = b"\x89PNG\r\n\x1a\n"
_EXR = b"\x76\x2f\x31\x01"
_EXR_HEADER_LIMIT = 64 * 1024  # where the data window must have been said
# Hitem3D's depth maps are 2K ("pro"); far larger is not a depth map to displace with.
MAX_DEPTH_MAP_SIDE = 16384


def check_stl(path: Path) -> None:
    """Raise ``BadResultFile`` unless ``path`` is a complete binary STL or starts like an ASCII one."""
    size = path.stat().st_size
    with path.open("rb") as file:
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
    with path.open("rb") as file:
        head = file.read(len(_PNG) + 16)
    # The signature, then the IHDR chunk: length, type, width, height.
    if head[: len(_PNG)] != _PNG or head[len(_PNG) + 4: len(_PNG) + 8] != b"IHDR":
        raise BadResultFile(msg("The downloaded depth map is not a PNG file: retry, or check the task on Hitem3D"))
    width, height = struct.unpack(">II", head[len(_PNG) + 8:])
    _check_size(width, height)


def check_exr(path: Path) -> None:
    """Raise ``BadResultFile`` unless ``path`` is an OpenEXR file whose data window has a usable size."""
    with path.open("rb") as file:
        head = file.read(_EXR_HEADER_LIMIT)
    if head[:4] != _EXR:
        raise BadResultFile(msg("The downloaded depth map is not an EXR file: retry, or check the task on Hitem3D"))
    window = _exr_data_window(head)
    if window is None:
        raise BadResultFile(msg("The downloaded depth map is not an EXR file: retry, or check the task on Hitem3D"))
    x_min, y_min, x_max, y_max = window
    _check_size(x_max - x_min + 1, y_max - y_min + 1)


def _exr_data_window(head: bytes) -> tuple[int, int, int, int] | None:
    """The ``dataWindow`` attribute of an EXR header (after magic and version):
    name, type (NUL-terminated), a 4-byte size, the value; an empty name ends it."""
    offset = 8
    while offset < len(head):
        name_end = head.find(b"\0", offset)
        if name_end < 0 or name_end == offset:
            return None
        type_end = head.find(b"\0", name_end + 1)
        if type_end < 0 or type_end + 5 > len(head):
            return None
        (size,) = struct.unpack("<i", head[type_end + 1: type_end + 5])
        value = head[type_end + 5: type_end + 5 + size]
        if head[offset:name_end] == b"dataWindow" and head[name_end + 1: type_end] == b"box2i" and len(value) == 16:
            x_min, y_min, x_max, y_max = struct.unpack("<4i", value)
            return x_min, y_min, x_max, y_max
        if size < 0:
            return None
        offset = type_end + 5 + size
    return None


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
