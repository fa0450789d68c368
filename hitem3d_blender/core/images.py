"""Image dimensions from a file's header, without decoding it.

No ``bpy`` here. Used before Blender loads a cover: a picture of 30,000 x
30,000 pixels is a few megabytes as WebP and 14 GB as the float pixels Blender
makes of it.
"""

from __future__ import annotations

from pathlib import Path

from .image_header import Unmeasurable, file_image_size


def image_size(path: Path) -> tuple[int, int] | None:
    """(width, height) of a picture in any format Blender decodes; None when
    unknown or unreadable (a symlink is not followed). See ``image_header``."""
    try:
        found = file_image_size(path)
    except (OSError, Unmeasurable):
        return None
    return (found.width, found.height) if found is not None else None
