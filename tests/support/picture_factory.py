"""Pictures that carry what an artist never chose to send: EXIF with GPS, XMP,
IPTC, comments, PNG text chunks (as Blender writes them for a render), thumbnails
and data after the end. Built by hand, so the core tests need no Blender; the
pixels are real (a PNG of known colours, a JPEG written by Blender)."""

from __future__ import annotations

import base64
import struct
import zlib

# A 16 x 8 JPEG saved by Blender (its own APP1 "NeoGeo" segment included).
TINY_JPEG = base64.b64decode("/9j/4AAQSkZJRgABAQAAAQABAAD/4QAMTmVvR2VvAAAAWv/bAEMAAwICAwICAwMDAwQDAwQFCAUFBAQFCgcHBggMCgwMCwoLCw0OEhANDhEOCwsQFhARExQVFRUMDxcYFhQYEhQVFP/bAEMBAwQEBQQFCQUFCRQNCw0UFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFP/AABEIAAgAEAMBIgACEQEDEQH/xAAfAAABBQEBAQEBAQAAAAAAAAAAAQIDBAUGBwgJCgv/xAC1EAACAQMDAgQDBQUEBAAAAX0BAgMABBEFEiExQQYTUWEHInEUMoGRoQgjQrHBFVLR8CQzYnKCCQoWFxgZGiUmJygpKjQ1Njc4OTpDREVGR0hJSlNUVVZXWFlaY2RlZmdoaWpzdHV2d3h5eoOEhYaHiImKkpOUlZaXmJmaoqOkpaanqKmqsrO0tba3uLm6wsPExcbHyMnK0tPU1dbX2Nna4eLj5OXm5+jp6vHy8/T19vf4+fr/xAAfAQADAQEBAQEBAQEBAAAAAAAAAQIDBAUGBwgJCgv/xAC1EQACAQIEBAMEBwUEBAABAncAAQIDEQQFITEGEkFRB2FxEyIygQgUQpGhscEJIzNS8BVictEKFiQ04SXxFxgZGiYnKCkqNTY3ODk6Q0RFRkdISUpTVFVWV1hZWmNkZWZnaGlqc3R1dnd4eXqCg4SFhoeIiYqSk5SVlpeYmZqio6Slpqeoqaqys7S1tre4ubrCw8TFxsfIycrS09TV1tfY2dri4+Tl5ufo6ery8/T19vf4+fr/2gAMAwEAAhEDEQA/AOI8I/th42f6d/49XtnhD9sP7n+m/wDj1FFfY51wnlOv7v8Ar7j73wx4HyT93+67f1sf/9k=")
GPS_TEXT = b"N 48 51 29.99 E 2 17 40.2"
SECRETS = (b"SecretCam", b"48/1", b"xmpmeta", b"Photoshop 3.0", b"studio comment", b"/home/artist/client_x/shot.blend",
           b"Scene_Unreleased", b"MotionPhoto_Data", b"THUMBNAIL", b"MPF\x00", GPS_TEXT)


def png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def png(width: int = 8, height: int = 8, rgba: tuple[int, int, int, int] = (51, 128, 204, 255),
        extra: list[bytes] | None = None, after_header: list[bytes] | None = None) -> bytes:
    rows = b"".join(b"\0" + bytes(rgba) * width for _ in range(height))
    header = struct.pack(">IIBBBBB", width, height, 8, 6, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + png_chunk(b"IHDR", header) + b"".join(after_header or [])
            + png_chunk(b"IDAT", zlib.compress(rows)) + b"".join(extra or []) + png_chunk(b"IEND", b""))


def exif(orientation: int = 6, little: bool = True) -> bytes:
    """A TIFF/EXIF block: the camera's make, an orientation and a GPS position."""
    order = "<" if little else ">"
    make = b"SecretCam\x00"
    # IFD0 at 8: 3 entries (Make, Orientation, GPS pointer), then the GPS IFD, then the make's text.
    ifd0 = 8
    gps = ifd0 + 2 + 3 * 12 + 4
    gps_entries = 2
    text_at = gps + 2 + gps_entries * 12 + 4
    rational_at = text_at + len(make)
    body = (b"II*\x00" if little else b"MM\x00*") + struct.pack(order + "I", ifd0)
    body += struct.pack(order + "H", 3)
    body += struct.pack(order + "HHII", 0x010F, 2, len(make), text_at)
    body += struct.pack(order + "HHIHH", 0x0112, 3, 1, orientation, 0)
    body += struct.pack(order + "HHII", 0x8825, 4, 1, gps)
    body += struct.pack(order + "I", 0)
    body += struct.pack(order + "H", gps_entries)
    body += struct.pack(order + "HHI", 0x0001, 2, 2) + b"N\x00\x00\x00"
    body += struct.pack(order + "HHII", 0x0002, 5, 3, rational_at)
    body += struct.pack(order + "I", 0)
    body += make + struct.pack(order + "6I", 48, 1, 51, 1, 2999, 100)
    return body + b"GPS " + GPS_TEXT


XMP = (b'<?xpacket begin=""?><x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF><rdf:Description '
       b'photoshop:City="Paris" exif:GPSLatitude="48,51.5N"/></rdf:RDF></x:xmpmeta><?xpacket end="w"?>')


def png_with_metadata(**kwargs: object) -> bytes:
    """What Blender writes for a render with metadata on, and a phone's EXIF besides."""
    extra = [
        png_chunk(b"tEXt", b"File\x00/home/artist/client_x/shot.blend"),
        png_chunk(b"tEXt", b"Scene\x00Scene_Unreleased"),
        png_chunk(b"zTXt", b"Comment\x00\x00" + zlib.compress(b"studio comment")),
        png_chunk(b"iTXt", b"XML:com.adobe.xmp\x00\x00\x00\x00\x00" + XMP),
        png_chunk(b"eXIf", exif()),
        png_chunk(b"tIME", struct.pack(">HBBBBB", 2026, 11, 3, 10, 0, 0)),
        png_chunk(b"prVt", b"THUMBNAIL private"),
    ]
    colour = [png_chunk(b"gAMA", struct.pack(">I", 45455)), png_chunk(b"sRGB", b"\x00"),
              png_chunk(b"pHYs", struct.pack(">IIB", 2835, 2835, 1))]
    return png(extra=extra, after_header=colour, **kwargs) + b"MotionPhoto_Data after the end"  # type: ignore[arg-type]


def jpeg_segment(marker: int, payload: bytes) -> bytes:
    return bytes([0xFF, marker]) + struct.pack(">H", len(payload) + 2) + payload


def jpeg_with_metadata(orientation: int = 6, base: bytes = TINY_JPEG) -> bytes:
    """Blender's JPEG with a phone's segments after its JFIF header, and a motion photo's video after the end."""
    jfif_end = 2 + 2 + struct.unpack_from(">H", base, 4)[0]
    jfif = base[2:jfif_end]
    # The JFIF header (identifier, version, units, density: 12 bytes) with a 1x1 thumbnail of its own.
    thumbed = jpeg_segment(0xE0, jfif[4:16] + b"\x01\x01" + b"\x10\x20\x30")
    segments = [
        jpeg_segment(0xE1, b"Exif\x00\x00" + exif(orientation)),
        jpeg_segment(0xE1, b"http://ns.adobe.com/xap/1.0/\x00" + XMP),
        jpeg_segment(0xED, b"Photoshop 3.0\x00" + b"8BIM\x04\x04\x00\x00\x00\x00\x00\x0cstudio comment"),
        jpeg_segment(0xE2, b"MPF\x00" + b"THUMBNAIL of a second picture"),
        jpeg_segment(0xE2, b"ICC_PROFILE\x00\x01\x01" + b"profile bytes"),
        jpeg_segment(0xFE, b"studio comment"),
    ]
    return b"\xff\xd8" + thumbed + b"".join(segments) + base[jfif_end:] + b"MotionPhoto_Data" + bytes(64)


def riff_chunk(kind: bytes, data: bytes) -> bytes:
    return kind + struct.pack("<I", len(data)) + data + (b"\x00" if len(data) & 1 else b"")


def webp_chunks(data: bytes) -> list[tuple[bytes, bytes]]:
    chunks, pos = [], 12
    while pos + 8 <= len(data):
        kind, length = data[pos:pos + 4], struct.unpack_from("<I", data, pos + 4)[0]
        chunks.append((kind, data[pos + 8:pos + 8 + length]))
        pos += 8 + length + (length & 1)
    return chunks


def webp_with_metadata(simple: bytes, orientation: int = 6, width: int = 64, height: int = 64) -> bytes:
    """An extended WebP around a simple one's image: ICC, EXIF (GPS) and XMP flagged in VP8X, data after it."""
    image = [riff_chunk(kind, body) for kind, body in webp_chunks(simple) if kind in (b"VP8 ", b"VP8L")]
    flags = 0x20 | 0x08 | 0x04
    vp8x = riff_chunk(b"VP8X", bytes([flags, 0, 0, 0]) + (width - 1).to_bytes(3, "little")
                      + (height - 1).to_bytes(3, "little"))
    body = (vp8x + riff_chunk(b"ICCP", b"profile bytes") + b"".join(image)
            + riff_chunk(b"EXIF", exif(orientation)) + riff_chunk(b"XMP ", XMP))
    return b"RIFF" + struct.pack("<I", len(body) + 4) + b"WEBP" + body + b"MotionPhoto_Data"
