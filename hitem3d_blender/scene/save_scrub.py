"""Nothing of this process's freed memory goes into a saved ``.blend``.

Found with ``tests/support/blend_scan.py`` (issue 21, a Client Secret in a
saved file): Blender 4.2 to 4.5 allocate an image's ``ImagePackedFile``
without clearing it and write all of it, so the 1,024 bytes of its
``filepath`` after the path's end carry whatever the heap held there before.
In this process that can be a buffer that held the Client Secret or an
access token (a settings write, an HTTP request, the preference's own
string). Blender 5.2 clears it; on the others, what follows each packed
file's path is zeroed before every save.

NOTE: this writes into Blender's memory (``ctypes``), only where the layout
is confirmed: the path's bytes at their known offset, then the terminator.
Anything else leaves the struct untouched and logs it.
"""

from __future__ import annotations

import ctypes
import logging
from typing import Any

import bpy

log = logging.getLogger(__package__)

# ImagePackedFile: next, prev, packedfile (pointers), view, tile_number (ints), filepath[FILE_MAX].
_POINTER = ctypes.sizeof(ctypes.c_void_p)
FILEPATH_OFFSET = 3 * _POINTER + 2 * 4
FILE_MAX = 1024


def scrub_packed_file(packed: Any) -> bool:
    """Zero what follows the path in one ``ImagePackedFile``; False (nothing
    written) when its layout is not the one this module knows."""
    if _POINTER != 8:
        return False
    path = str(packed.filepath).encode("utf-8", "surrogateescape")
    if len(path) >= FILE_MAX:
        return False
    start = packed.as_pointer() + FILEPATH_OFFSET
    if ctypes.string_at(start, len(path) + 1) != path + b"\0":
        log.info("An image's packed file is laid out unexpectedly: not cleared before saving")
        return False
    tail = start + len(path) + 1
    ctypes.memset(tail, 0, FILE_MAX - len(path) - 1)
    return True


def scrub_before_save() -> int:
    """Clear every packed file's unused path bytes; how many were cleared."""
    cleared = 0
    for image in bpy.data.images:
        if image.library is not None:
            continue  # linked: not written into this file
        for packed in image.packed_files:
            cleared += scrub_packed_file(packed)
    return cleared
