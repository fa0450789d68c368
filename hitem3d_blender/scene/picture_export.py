"""Pictures leave Blender as files: what New Generation, Relief and Use Current
View upload is written here, in the extension's uploads folder.

NOTE: main thread only (``bpy``); nothing here sends anything.
"""

from __future__ import annotations

import logging
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator

import bpy

from .. import identity
from ..core import safe_files
from ..core.messages import msg
from ..core.submission import IMAGE_TYPES, InvalidSubmission, is_picture_file, sniff_image_type, upload_file_name

log = logging.getLogger(__package__)

# Images written for upload are kept this long: they are the thumbnails of new
# tasks and the reference for texturing them later.
UPLOAD_MAX_AGE_S = 7 * 24 * 3600.0


def uploads_dir() -> Path:
    return identity.user_subdir(identity.UPLOADS)


def prune_uploads(folder: Path, max_age_s: float = UPLOAD_MAX_AGE_S) -> None:
    """Remove images written for earlier uploads once they are old."""
    limit = time.time() - max_age_s
    for path in folder.iterdir():
        try:
            if path.is_file() and path.stat().st_mtime < limit:
                path.unlink()
        except OSError:
            log.debug("Could not remove old upload %s", path, exc_info=True)


def _stamp() -> str:
    return time.strftime("%Y%m%d-%H%M%S") + f"-{time.monotonic_ns() % 1_000_000:06d}"


def image_file(image: bpy.types.Image, folder: Path) -> str:
    """A file holding ``image``, ready to send.

    A picture on disk in an accepted format (by its bytes, not only its name)
    is sent as it is, and a packed one as its own bytes. Anything else (the
    Render Result, a generated, painted or EXR picture, a file named .png that
    holds something else) is saved as PNG from what Blender reads of it.
    NOTE: main thread only (``bpy``). Saving encodes every pixel: about a
    second and tens of MB for a 4K render; it happens once per press of Generate.
    """
    if image.type == "IMAGE" and image.source == "FILE" and not image.is_dirty:
        packed = image.packed_file
        if packed is not None:
            raw: Any = packed.data  # bytes (the stubs say str)
            data = bytes(raw)
            kind = sniff_image_type(data[:16])
            if kind:
                path = folder / upload_file_name(image.name, _stamp(), kind)
                safe_files.write_atomic(path, data, mode=0o600, fsync=False)
                return str(path)
        else:
            source = Path(bpy.path.abspath(image.filepath, library=image.library))
            if source.suffix.lower().lstrip(".") in IMAGE_TYPES and source.is_file() and is_picture_file(source):
                return str(source)
    return _save_png(image, folder / upload_file_name(image.name, _stamp(), "png"))


# The output settings save_render needs for an 8-bit RGBA PNG (media_type: 5.0+).
_PNG_OUTPUT: tuple[tuple[str, str], ...] = (
    ("media_type", "IMAGE"), ("file_format", "PNG"), ("color_mode", "RGBA"), ("color_depth", "8"),
)


@contextmanager
def _png_output(scene: bpy.types.Scene) -> Iterator[None]:
    """The scene's output settings switched to PNG for the moment, then put back."""
    settings = scene.render.image_settings
    saved = [(name, getattr(settings, name)) for name, _ in _PNG_OUTPUT if hasattr(settings, name)]
    try:
        for name, value in _PNG_OUTPUT:
            if hasattr(settings, name):
                setattr(settings, name, value)
        yield
    finally:
        for name, value in saved:
            try:
                setattr(settings, name, value)
            except (TypeError, ValueError):
                log.warning("Could not restore the output setting %s", name)


def _save_png(image: bpy.types.Image, path: Path) -> str:
    # NOTE: save_render writes in a scene's output format and view transform.
    if image.type in {"RENDER_RESULT", "COMPOSITING"}:
        # A render belongs to the scene that made it and goes as the artist
        # sees it: saved through that scene, its format switched for the moment.
        scene = bpy.context.scene
        assert scene is not None
        owned = False
    else:
        # Any other picture keeps its pixels: a scene of our own without a view
        # transform, so the artist's settings are never touched.
        scene = bpy.data.scenes.new("Hitem3D upload")
        owned = True
        # NOTE: setattr: the stubs list only 'NONE' for this dynamic enum.
        setattr(scene.view_settings, "view_transform", "Standard")
    try:
        # NOTE: Blender follows a link planted at the name it writes: it
        # writes in a fresh private folder, and the file is moved into place.
        with safe_files.written_elsewhere(path) as staged, _png_output(scene):
            image.save_render(str(staged), scene=scene)
    except RuntimeError as exc:
        if "does not have any image data" in str(exc):
            if image.source == "FILE":  # a file Blender cannot read as a picture
                raise InvalidSubmission(msg("Image '{name}' holds no picture Blender can read: choose another "
                                            "image", name=image.name)) from None
            raise InvalidSubmission(msg("Image '{name}' is empty: render first, or choose another image",
                                        name=image.name)) from None
        raise InvalidSubmission(msg("Image '{name}' could not be saved for sending: {reason}", name=image.name,
                                    reason=str(exc))) from None
    finally:
        if owned:
            bpy.data.scenes.remove(scene)
    return str(path)
