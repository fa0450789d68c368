"""Pictures as they leave the machine: the pixels the artist chose, nothing else.

A photo carries more than its picture: EXIF (the camera, the time, GPS), XMP,
IPTC, comments, PNG text chunks (Blender writes the .blend's path, the scene
and the camera there), thumbnails, and whatever a phone appends after the
image (a motion photo's video). ``strip`` returns the same picture without
any of it, by copying the parts a decoder needs and nothing else: no pixel is
decoded or re-encoded, so the picture is exactly the one chosen.

Kept, because they change how the pixels look: PNG's palette, transparency and
colour chunks; JPEG's JFIF header (without its thumbnail), ICC profile and
Adobe colour transform; WebP's ICC profile, alpha and animation. An EXIF
orientation other than "as stored" survives as a one-entry EXIF, so a photo
taken upright is not sent lying on its side.

No ``bpy``; plain byte slicing. Runs on the worker that uploads the picture.
"""

from __future__ import annotations

import re
import struct

from .errors import Hitem3DError
from .messages import Message, msg

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
# Ancillary PNG chunks that change how the pixels look; every other ancillary
# chunk (tEXt, zTXt, iTXt, eXIf, tIME, pHYs, private ones) is left behind.
_PNG_KEPT = frozenset({b"PLTE", b"tRNS", b"cHRM", b"gAMA", b"iCCP", b"sBIT", b"sRGB", b"bKGD", b"cICP",
                       b"mDCV", b"mDCv", b"cLLI", b"cLLi"})
# APNG's frames: the still picture is the first one (IDAT), as every viewer without animation shows it.
_PNG_DROPPED_CRITICAL = frozenset({b"acTL", b"fcTL", b"fdAT"})
_JPEG_SOI, _JPEG_EOI, _JPEG_SOS = 0xD8, 0xD9, 0xDA
_JPEG_STANDALONE = frozenset({0x01, *range(0xD0, 0xD8)})  # TEM, RST0-7: no length
# After a scan: the next marker (0xFF fill bytes may precede it; FF00 is a
# stuffed byte, FFD0-FFD7 are restart markers inside the scan).
_JPEG_NEXT_MARKER = re.compile(rb"\xff+([^\x00\xd0-\xd7\xff])")
_WEBP_KEPT = frozenset({b"VP8 ", b"VP8L", b"VP8X", b"ALPH", b"ANIM", b"ANMF", b"ICCP"})
_WEBP_EXIF_FLAG, _WEBP_XMP_FLAG = 0x08, 0x04
ORIENTATION_TAG = 0x0112


class PictureUnreadable(Hitem3DError):
    """A picture whose structure cannot be followed: not sent, rather than sent
    with what it may hide. ``what`` says what is wrong (None: not a picture)."""

    def __init__(self, message: Message, what: Message | None = None) -> None:
        super().__init__(message)
        self.what = what


def _broken(what: Message) -> PictureUnreadable:
    return PictureUnreadable(msg("The picture is damaged ({what}): save it again as PNG or JPEG", what=what), what)


def strip(data: bytes) -> tuple[bytes, str]:
    """The picture without its metadata, and its type ('png', 'jpg', 'webp').
    Raises ``PictureUnreadable`` for anything else or a damaged file."""
    if data.startswith(PNG_SIGNATURE):
        return strip_png(data), "png"
    if data.startswith(b"\xff\xd8\xff"):
        return strip_jpeg(data), "jpg"
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return strip_webp(data), "webp"
    raise PictureUnreadable(msg("The picture is not a PNG, JPEG or WebP file"))


# -- PNG ---------------------------------------------------------------------------------------------


def strip_png(data: bytes) -> bytes:
    view = memoryview(data)
    kept: list[bytes | memoryview] = [PNG_SIGNATURE]
    pos = len(PNG_SIGNATURE)
    seen_header = False
    while True:
        if pos + 12 > len(data):
            raise _broken(msg("a PNG chunk runs past the end"))
        length = struct.unpack_from(">I", data, pos)[0]
        kind = bytes(view[pos + 4:pos + 8])
        end = pos + 12 + length
        if length > 0x7FFFFFFF or end > len(data) or not kind.isalpha():
            raise _broken(msg("a PNG chunk runs past the end"))
        if not seen_header and kind != b"IHDR":
            raise _broken(msg("no PNG header"))
        seen_header = True
        critical = kind[0:1].isupper()
        if (critical and kind not in _PNG_DROPPED_CRITICAL) or kind in _PNG_KEPT:
            kept.append(view[pos:end])
        pos = end
        if kind == b"IEND":
            return b"".join(kept)  # anything after the end is not the picture


# -- JPEG --------------------------------------------------------------------------------------------


def strip_jpeg(data: bytes) -> bytes:
    view = memoryview(data)
    kept: list[bytes | memoryview] = [b"\xff\xd8"]
    pos = 2
    orientation = 1
    orientation_at = -1  # where the one-entry EXIF goes: where the first EXIF was
    while True:
        if pos + 2 > len(data) or data[pos] != 0xFF:
            raise _broken(msg("a JPEG segment is out of place"))
        while pos + 1 < len(data) and data[pos + 1] == 0xFF:
            pos += 1  # fill bytes
        if pos + 2 > len(data):
            raise _broken(msg("a JPEG segment is out of place"))
        marker = data[pos + 1]
        if marker == _JPEG_EOI:
            kept.append(b"\xff\xd9")
            break  # anything after the end (a motion photo's video, a second picture) stays here
        if marker in _JPEG_STANDALONE:
            kept.append(view[pos:pos + 2])
            pos += 2
            continue
        if pos + 4 > len(data):
            raise _broken(msg("a JPEG segment runs past the end"))
        length = struct.unpack_from(">H", data, pos + 2)[0]
        end = pos + 2 + length
        if length < 2 or end > len(data):
            raise _broken(msg("a JPEG segment runs past the end"))
        payload = data[pos + 4:end]
        if marker == _JPEG_SOS:
            match = _JPEG_NEXT_MARKER.search(data, end)
            if match is None:
                raise _broken(msg("a JPEG scan has no end"))
            kept.append(view[pos:match.start()])
            pos = match.end() - 2
            continue
        if marker == 0xE1 and payload.startswith(b"Exif\x00\x00"):
            found = exif_orientation(payload[6:])
            if orientation_at < 0:
                orientation_at, orientation = len(kept), found
        elif marker == 0xE0 and payload.startswith(b"JFIF\x00") and len(payload) >= 14:
            # The JFIF header without its thumbnail (the last two of its 14 bytes: the thumbnail's size).
            kept.append(b"\xff\xe0\x00\x10" + payload[:12] + b"\x00\x00")
        elif _kept_jpeg_segment(marker, payload):
            kept.append(view[pos:end])
        pos = end
    if orientation != 1 and orientation_at >= 0:
        exif = b"Exif\x00\x00" + orientation_exif(orientation)
        kept.insert(orientation_at, b"\xff\xe1" + struct.pack(">H", len(exif) + 2) + exif)
    return b"".join(kept)


def _kept_jpeg_segment(marker: int, payload: bytes) -> bool:
    """Everything a decoder reads (tables, frame headers, restart interval),
    and of the application segments only colour: the ICC profile and Adobe's
    transform. Gone: EXIF, XMP, IPTC (APP13), MPF's other pictures, comments."""
    if 0xE0 <= marker <= 0xEF:
        return (marker == 0xE2 and payload.startswith(b"ICC_PROFILE\x00")) or (
            marker == 0xEE and payload.startswith(b"Adobe"))
    return marker != 0xFE  # COM


# -- WebP --------------------------------------------------------------------------------------------


def strip_webp(data: bytes) -> bytes:
    if len(data) < 12:
        raise _broken(msg("a WebP header runs past the end"))
    size = struct.unpack_from("<I", data, 4)[0]
    end = 8 + size
    if size < 4 or end > len(data):
        raise _broken(msg("a WebP chunk runs past the end"))
    view = memoryview(data)
    chunks: list[tuple[bytes, bytes | memoryview]] = []
    orientation = 1
    pos = 12
    while pos < end:
        if pos + 8 > end:
            raise _broken(msg("a WebP chunk runs past the end"))
        kind = bytes(view[pos:pos + 4])
        length = struct.unpack_from("<I", data, pos + 4)[0]
        stop = pos + 8 + length + (length & 1)
        if pos + 8 + length > end:
            raise _broken(msg("a WebP chunk runs past the end"))
        if kind == b"EXIF":
            body = bytes(view[pos + 8:pos + 8 + length])
            orientation = exif_orientation(body[6:] if body.startswith(b"Exif\x00\x00") else body)
        elif kind in _WEBP_KEPT:
            # Its padding byte too, even when the writer left it out at the very end.
            chunks.append((kind, bytes(view[pos:pos + 8 + length]) + (b"\x00" if length & 1 else b"")))
        pos = stop
    if not any(kind in (b"VP8 ", b"VP8L", b"ANMF") for kind, _ in chunks):
        raise _broken(msg("no WebP image data"))
    parts: list[bytes | memoryview] = []
    for kind, chunk in chunks:
        if kind == b"VP8X":
            header = bytearray(chunk)
            if len(header) < 9:
                raise _broken(msg("a WebP header runs past the end"))
            header[8] &= ~(_WEBP_EXIF_FLAG | _WEBP_XMP_FLAG) & 0xFF
            if orientation != 1:
                header[8] |= _WEBP_EXIF_FLAG
            parts.append(bytes(header))
        else:
            parts.append(chunk)
    if orientation != 1 and chunks[0][0] == b"VP8X":
        exif = orientation_exif(orientation)
        parts.append(b"EXIF" + struct.pack("<I", len(exif)) + exif + (b"\x00" if len(exif) & 1 else b""))
    body = b"".join(parts)
    return b"RIFF" + struct.pack("<I", len(body) + 4) + b"WEBP" + body


# -- EXIF orientation --------------------------------------------------------------------------------


def exif_orientation(tiff: bytes) -> int:
    """The Orientation (1 to 8) in the first IFD of a TIFF/EXIF block; 1
    when there is none or it cannot be read."""
    if tiff[:4] == b"II*\x00":
        order = "<"
    elif tiff[:4] == b"MM\x00*":
        order = ">"
    else:
        return 1
    try:
        offset = struct.unpack_from(order + "I", tiff, 4)[0]
        count = struct.unpack_from(order + "H", tiff, offset)[0]
        for index in range(min(count, 1000)):
            entry = offset + 2 + 12 * index
            tag, kind, number = struct.unpack_from(order + "HHI", tiff, entry)
            if tag == ORIENTATION_TAG and kind == 3 and number == 1:
                value = struct.unpack_from(order + "H", tiff, entry + 8)[0]
                return value if 1 <= value <= 8 else 1
    except struct.error:
        return 1
    return 1


def orientation_exif(orientation: int) -> bytes:
    """A TIFF/EXIF block holding the Orientation alone."""
    return b"MM\x00*" + struct.pack(">IHHHIHHI", 8, 1, ORIENTATION_TAG, 3, 1, orientation, 0, 0)
