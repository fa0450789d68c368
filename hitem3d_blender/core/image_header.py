"""Picture sizes read from file headers, without decoding a pixel.

A 1 MB WebP can declare 16384 x 16384 pixels and cost a gigabyte once Blender
decodes it (as a texture or an asset preview). Reading the header costs a few
bytes, so every picture we hand to Blender is measured first.
"""

from __future__ import annotations

import os
import struct
from pathlib import Path
from typing import NamedTuple

# Enough for every header we read: JPEG puts EXIF (up to 64 KB) before its frame.
HEAD_BYTES = 256 * 1024

_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
# JPEG start-of-frame markers (C0-CF, except DHT C4, JPG C8 and DAC CC) carry the size.
_JPEG_SOF = frozenset(range(0xC0, 0xD0)) - {0xC4, 0xC8, 0xCC}


class ImageSize(NamedTuple):
    kind: str  # "png", "jpeg" or "webp"
    width: int
    height: int

    @property
    def pixels(self) -> int:
        return self.width * self.height


def image_size(head: bytes) -> ImageSize | None:
    """The size a PNG, JPEG or WebP declares in its first bytes (``HEAD_BYTES``
    is always enough), or None when ``head`` is none of them or is cut short."""
    if head.startswith(_PNG_SIGNATURE):
        return _png(head)
    if head.startswith(b"\xff\xd8"):
        return _jpeg(head)
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return _webp(head)
    return None


def file_image_size(path: Path) -> ImageSize | None:
    """``image_size`` of a file, reading its head only; never follows a symlink."""
    flags = os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_BINARY", 0)
    fd = os.open(path, flags)
    with os.fdopen(fd, "rb") as file:
        return image_size(file.read(HEAD_BYTES))


def _png(head: bytes) -> ImageSize | None:
    # The first chunk is IHDR: length(4) type(4) width(4) height(4).
    if len(head) < 24 or head[12:16] != b"IHDR":
        return None
    width, height = struct.unpack(">II", head[16:24])
    return ImageSize("png", width, height)


def _jpeg(head: bytes) -> ImageSize | None:
    pos = 2
    while pos + 4 <= len(head):
        if head[pos] != 0xFF:
            return None
        marker = head[pos + 1]
        if marker == 0xFF:  # fill byte
            pos += 1
            continue
        if marker in (0x01, *range(0xD0, 0xD8)):  # markers without a length
            pos += 2
            continue
        (length,) = struct.unpack(">H", head[pos + 2:pos + 4])
        if marker in _JPEG_SOF:
            if pos + 9 > len(head):
                return None
            height, width = struct.unpack(">HH", head[pos + 5:pos + 9])
            return ImageSize("jpeg", width, height)
        if length < 2:
            return None
        pos += 2 + length
    return None


def _webp(head: bytes) -> ImageSize | None:
    chunk = head[12:16]
    if chunk == b"VP8 " and len(head) >= 30:
        # Lossy: a 3-byte frame tag and the start code 9d 01 2a, then 14-bit sizes.
        if head[23:26] != b"\x9d\x01\x2a":
            return None
        width, height = struct.unpack("<HH", head[26:30])
        return ImageSize("webp", width & 0x3FFF, height & 0x3FFF)
    if chunk == b"VP8L" and len(head) >= 25:
        # Lossless: signature 0x2f, then width-1 and height-1 in 14 bits each.
        if head[20] != 0x2F:
            return None
        (bits,) = struct.unpack("<I", head[21:25])
        return ImageSize("webp", (bits & 0x3FFF) + 1, ((bits >> 14) & 0x3FFF) + 1)
    if chunk == b"VP8X" and len(head) >= 30:
        # Extended: canvas width-1 and height-1, 24 bits each.
        width = int.from_bytes(head[24:27], "little") + 1
        height = int.from_bytes(head[27:30], "little") + 1
        return ImageSize("webp", width, height)
    return None
