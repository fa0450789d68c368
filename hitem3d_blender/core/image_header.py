"""Picture sizes read from file headers, without decoding a pixel.

A 1 MB file can declare 20,000 x 20,000 pixels and cost gigabytes once Blender
decodes it (as a texture or an asset preview). Blender decodes a picture by its
bytes, whatever the file or the glTF says it is, so every format Blender reads
is measured here: PNG, JPEG, WebP, Targa, TIFF, Radiance HDR, OpenEXR, BMP,
IRIS, Cineon, DPX, JPEG 2000, DDS, PSD and AVIF/HEIF. This is the one reader:
the GLB check, the covers and the sidebar all use it.

Work is bounded: a reader looks at a few headers (a JPEG's segment chain, a
TIFF's first directory, an EXR's attributes), each with a cap on how many it
walks; past a cap the picture is ``Unmeasurable`` and callers refuse it.
"""

from __future__ import annotations

import os
import re
import struct
from collections.abc import Callable
from pathlib import Path
from typing import NamedTuple

from . import safe_files

# What ``image_size`` looks at when handed only the start of a file.
HEAD_BYTES = 256 * 1024

# Bytes Blender keeps per pixel once decoded: RGBA bytes, or RGBA floats for
# pictures of more than 8 bits per channel (16-bit PNG and TIFF, HDR, EXR...).
BYTE_PIXEL = 4
FLOAT_PIXEL = 16

# Caps on the work of one measure (a real file needs a few dozen steps).
MAX_JPEG_SEGMENTS = 10_000
MAX_SKIPPED_BYTES = 64 * 1024**2  # stray bytes a JPEG decoder would skip
MAX_HEADER_BYTES = 1024**2  # HDR and EXR text or attribute headers
MAX_ENTRIES = 4096  # TIFF tags, EXR attributes, ISO boxes

_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
# JPEG start-of-frame markers (C0-CF, except DHT C4, JPG C8 and DAC CC) carry the size.
_JPEG_SOF = frozenset(range(0xC0, 0xD0)) - {0xC4, 0xC8, 0xCC}
_JPEG_STANDALONE = frozenset({0x01, *range(0xD0, 0xD8)})  # markers without a length
_JP2_SIGNATURE = b"\x00\x00\x00\x0cjP  \r\n\x87\n"
_EXR_MAGIC = b"\x76\x2f\x31\x01"
_CINEON_MAGIC = (b"\x80\x2a\x5f\xd7", b"\xd7\x5f\x2a\x80")
_BMP_MAGIC = (b"BM", b"BA", b"CI", b"CP", b"IC", b"PT")
_HDR_RESOLUTION = re.compile(rb"([+-])([XY]) +(\d{1,10}) +([+-])([XY]) +(\d{1,10})")
# DDS pixel formats Blender decodes to floats: legacy D3DFMT codes, DXGI formats.
_DDS_FLOAT_CODES = frozenset({111, 112, 113, 114, 115, 116})
_DXGI_FLOAT = frozenset({2, 10, 16, 41, 54, 94, 95, 96})

Reader = Callable[[int, int], bytes]  # (offset, size) -> at most size bytes from offset


class ImageSize(NamedTuple):
    kind: str  # "png", "jpeg", "webp", "tga", "tiff", "hdr", "exr", ...
    width: int
    height: int
    bytes_per_pixel: int = BYTE_PIXEL  # what Blender keeps per pixel once decoded
    layers: int = 1  # faces of a cube map, parts and channel groups of an EXR

    @property
    def pixels(self) -> int:
        return self.width * self.height

    @property
    def decoded_bytes(self) -> int:
        """Memory Blender needs to hold the decoded picture."""
        return self.pixels * self.bytes_per_pixel * self.layers


class Unmeasurable(Exception):
    """A picture Blender would decode whose size cannot be read within the
    caps above (a JPEG with 10,000 segments before its frame, say)."""

    def __init__(self, kind: str) -> None:
        super().__init__(kind)
        self.kind = kind


def image_size(data: bytes) -> ImageSize | None:
    """The size the picture in ``data`` declares (the whole file, or its first
    ``HEAD_BYTES``), or None when Blender would not decode it as a picture.
    Raises ``Unmeasurable``."""
    return measure(lambda offset, size: data[offset:offset + size], len(data))


def file_image_size(path: Path) -> ImageSize | None:
    """``image_size`` of a file, reading only the headers; never follows a
    symlink. Raises ``OSError`` and ``Unmeasurable``."""
    # NOTE: never a FIFO or a device either: opening one would wait for ever.
    with safe_files.open_read(path) as file:
        length = os.fstat(file.fileno()).st_size

        def read(offset: int, size: int) -> bytes:
            if offset >= length or size <= 0:
                return b""
            file.seek(offset)
            return file.read(min(size, length - offset))

        return measure(read, length)


def measure(read: Reader, length: int) -> ImageSize | None:
    """The size of the picture of ``length`` bytes that ``read`` gives, or None
    when Blender would not decode it. Raises ``Unmeasurable``."""
    head = read(0, 64)
    for test, reader in _FORMATS:
        if test(head):
            try:
                return reader(read, length, head)
            except (struct.error, IndexError, ValueError, OverflowError):
                return None  # a header cut short: no decoder gets past it either
    return _tga(head)


# -- formats with a signature ------------------------------------------------------------------


def _png(read: Reader, length: int, head: bytes) -> ImageSize | None:
    # The first chunk is IHDR: length(4) type(4) width(4) height(4) depth(1).
    if len(head) < 24 or head[12:16] != b"IHDR":
        return None
    width, height = struct.unpack(">II", head[16:24])
    return ImageSize("png", width, height, FLOAT_PIXEL if head[24:25] > b"\x08" else BYTE_PIXEL)


def _jpeg(read: Reader, length: int, head: bytes) -> ImageSize | None:
    """Walks the segments as libjpeg does: stray bytes before a marker and fill
    bytes are skipped, and the first frame header gives the size."""
    pos = 2
    for _ in range(MAX_JPEG_SEGMENTS):
        pos = _next_marker(read, pos, length)
        if pos < 0:
            return None
        marker = read(pos + 1, 1)[0]
        if marker in _JPEG_SOF:
            frame = read(pos + 2, 7)
            if len(frame) < 7:
                return None
            height, width = struct.unpack(">HH", frame[3:7])
            return ImageSize("jpeg", width, height, FLOAT_PIXEL if frame[2] > 8 else BYTE_PIXEL)
        if marker in (0xD8, 0xD9, 0xDA):  # a second start, the end, or scan data: no frame to decode
            return None
        if marker in _JPEG_STANDALONE:
            pos += 2
            continue
        size = read(pos + 2, 2)
        if len(size) < 2 or struct.unpack(">H", size)[0] < 2:
            return None
        pos += 2 + struct.unpack(">H", size)[0]
    raise Unmeasurable("jpeg")


def _next_marker(read: Reader, pos: int, length: int) -> int:
    """Where the next marker (0xFF, then neither 0x00 nor 0xFF) starts at or
    after ``pos``, or -1; stray bytes are skipped as libjpeg skips them."""
    start = pos
    while pos < length:
        if pos - start > MAX_SKIPPED_BYTES:
            raise Unmeasurable("jpeg")
        chunk = read(pos, 65536)
        if not chunk:
            return -1
        found = chunk.find(b"\xff")
        if found < 0:
            pos += len(chunk)
            continue
        pos += found
        after = read(pos + 1, 1)
        if not after:
            return -1
        if after[0] == 0xFF:  # a fill byte: the marker starts at the next 0xFF
            pos += 1
            continue
        if after[0] == 0x00:  # a stuffed 0xFF: data, not a marker
            pos += 2
            continue
        return pos
    return -1


def _webp(read: Reader, length: int, head: bytes) -> ImageSize | None:
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


def _tiff(read: Reader, length: int, head: bytes) -> ImageSize | None:
    """The first directory (the picture Blender loads): width, height, bits."""
    order = "<" if head[:2] == b"II" else ">"
    big = struct.unpack(order + "H", head[2:4])[0] == 43  # BigTIFF
    if big:
        ifd = struct.unpack(order + "Q", head[8:16])[0]
        count_format, entry_size, value_offset = "Q", 20, 12
    else:
        ifd = struct.unpack(order + "I", head[4:8])[0]
        count_format, entry_size, value_offset = "H", 12, 8
    raw_count = read(ifd, struct.calcsize(count_format))
    if len(raw_count) < struct.calcsize(count_format):
        return None
    entries = struct.unpack(order + count_format, raw_count)[0]
    if entries > MAX_ENTRIES:
        raise Unmeasurable("tiff")
    table = read(ifd + len(raw_count), entries * entry_size)
    tags: dict[int, int] = {}
    for index in range(len(table) // entry_size):
        entry = table[index * entry_size:(index + 1) * entry_size]
        tag, kind = struct.unpack(order + "HH", entry[:4])
        value = entry[value_offset:]
        if kind == 3:  # SHORT; for bits per sample the first of several, which may lie elsewhere
            count = struct.unpack(order + ("Q" if big else "I"), entry[4:value_offset])[0]
            if count * 2 > len(value):
                value = read(struct.unpack(order + ("Q" if big else "I"), value)[0], 2)
            tags[tag] = struct.unpack(order + "H", value[:2])[0] if len(value) >= 2 else 0
        elif kind == 4:  # LONG
            tags[tag] = struct.unpack(order + "I", value[:4])[0]
        elif kind == 16 and big:  # LONG8
            tags[tag] = struct.unpack(order + "Q", value[:8])[0]
    if 256 not in tags or 257 not in tags:
        return None
    return ImageSize("tiff", tags[256], tags[257], FLOAT_PIXEL if tags.get(258, 8) > 8 else BYTE_PIXEL)


def _hdr(read: Reader, length: int, head: bytes) -> ImageSize | None:
    # Text lines up to an empty one, then the resolution: "-Y 512 +X 768".
    text = read(0, MAX_HEADER_BYTES)
    end = text.find(b"\n\n")
    if end < 0:
        if len(text) < MAX_HEADER_BYTES:
            return None
        raise Unmeasurable("hdr")
    found = _HDR_RESOLUTION.match(text, end + 2)
    if found is None:
        return None
    sizes = {found.group(2): int(found.group(3)), found.group(5): int(found.group(6))}
    if len(sizes) != 2:
        return None
    return ImageSize("hdr", sizes[b"X"], sizes[b"Y"], FLOAT_PIXEL)


def _exr(read: Reader, length: int, head: bytes) -> ImageSize | None:
    """Every part's data window and channels: Blender loads them all, as floats."""
    multipart = bool(struct.unpack("<I", head[4:8])[0] & 0x1000)
    text = read(0, MAX_HEADER_BYTES)
    pos, width, height, floats = 8, 0, 0, 0
    window: tuple[int, int] | None = None
    channels = 0
    for _ in range(MAX_ENTRIES):
        name_end = text.find(b"\0", pos)
        if name_end < 0:
            raise Unmeasurable("exr")
        if name_end == pos:  # the end of a part's header
            if window is not None:
                width, height = max(width, window[0]), max(height, window[1])
                floats += max(4, channels)  # one float per channel and pixel, never less than RGBA
            if not multipart or text[pos + 1:pos + 2] in (b"\0", b""):
                break
            pos, window, channels = pos + 1, None, 0
            continue
        name = text[pos:name_end]
        type_end = text.find(b"\0", name_end + 1)
        if type_end < 0 or type_end + 5 > len(text):
            raise Unmeasurable("exr")
        size = struct.unpack("<i", text[type_end + 1:type_end + 5])[0]
        value = text[type_end + 5:type_end + 5 + size]
        if size < 0 or len(value) < size:
            raise Unmeasurable("exr")
        if name == b"dataWindow" and size >= 16:
            x_min, y_min, x_max, y_max = struct.unpack("<iiii", value[:16])
            window = (max(0, x_max - x_min + 1), max(0, y_max - y_min + 1))
        elif name == b"channels":
            channels = len(_exr_channel_names(value))
        pos = type_end + 5 + size
    else:
        raise Unmeasurable("exr")
    if not width or not height:
        return None
    return ImageSize("exr", width, height, FLOAT_PIXEL, max(1, -(-floats // 4)))


def _exr_channel_names(value: bytes) -> list[bytes]:
    # chlist: (name\0, pixel type i32, pLinear u8, 3 reserved, x and y sampling i32) ..., \0
    names: list[bytes] = []
    pos = 0
    while pos < len(value) and value[pos] != 0 and len(names) < MAX_ENTRIES:
        end = value.find(b"\0", pos)
        if end < 0:
            break
        names.append(value[pos:end])
        pos = end + 1 + 16
    return names


def _bmp(read: Reader, length: int, head: bytes) -> ImageSize | None:
    if len(head) < 26:
        return None
    if struct.unpack("<I", head[14:18])[0] == 12:  # OS/2 1.x: 16-bit sizes
        width, height = struct.unpack("<HH", head[18:22])
    else:
        width, height = struct.unpack("<ii", head[18:26])
    return ImageSize("bmp", abs(width), abs(height))


def _iris(read: Reader, length: int, head: bytes) -> ImageSize | None:
    if len(head) < 12:
        return None
    order = ">" if head[:2] == b"\x01\xda" else "<"
    bytes_per_channel = head[3]
    width, height = struct.unpack(order + "HH", head[6:10])
    return ImageSize("iris", width, height, FLOAT_PIXEL if bytes_per_channel > 1 else BYTE_PIXEL)


def _cineon(read: Reader, length: int, head: bytes) -> ImageSize | None:
    order = ">" if head[:4] == _CINEON_MAGIC[0] else "<"
    info = read(192, 4 + 8 * 28)
    if len(info) < 4 + 28:
        return None
    elements = min(8, max(1, info[1]))
    width = height = 0
    for index in range(elements):
        element = info[4 + index * 28:4 + (index + 1) * 28]
        if len(element) == 28:
            w, h = struct.unpack(order + "II", element[4:12])
            width, height = max(width, w), max(height, h)
    return ImageSize("cineon", width, height, FLOAT_PIXEL)


def _dpx(read: Reader, length: int, head: bytes) -> ImageSize | None:
    order = ">" if head[:4] == b"SDPX" else "<"
    info = read(768, 36)  # the image header, then its first element's bits per sample
    if len(info) < 36:
        return None
    width, height = struct.unpack(order + "II", info[4:12])
    return ImageSize("dpx", width, height, FLOAT_PIXEL if info[35] > 8 else BYTE_PIXEL)


def _jp2(read: Reader, length: int, head: bytes) -> ImageSize | None:
    """JP2 boxes up to the codestream ('jp2c'), whose SIZ marker OpenJPEG decodes."""
    pos = 0
    for _ in range(MAX_ENTRIES):
        box = read(pos, 16)
        if len(box) < 8:
            return None
        size, kind = struct.unpack(">I4s", box[:8])
        header = 8
        if size == 1:
            if len(box) < 16:
                return None
            size, header = struct.unpack(">Q", box[8:16])[0], 16
        if kind == b"jp2c":
            return _j2k_siz(read(pos + header, 64), "jpeg2000")
        if size == 0 or size < header:
            return None
        pos += size
    raise Unmeasurable("jpeg2000")


def _j2k(read: Reader, length: int, head: bytes) -> ImageSize | None:
    return _j2k_siz(head, "jpeg2000")


def _j2k_siz(codestream: bytes, kind: str) -> ImageSize | None:
    # SOC (ff4f), SIZ (ff51): Lsiz Rsiz Xsiz Ysiz XOsiz YOsiz XTsiz YTsiz XTOsiz YTOsiz Csiz, Ssiz...
    if len(codestream) < 43 or codestream[:4] != b"\xff\x4f\xff\x51":
        return None
    x_size, y_size, x_origin, y_origin = struct.unpack(">IIII", codestream[8:24])
    precision = (codestream[42] & 0x7F) + 1
    return ImageSize(kind, max(0, x_size - x_origin), max(0, y_size - y_origin),
                     FLOAT_PIXEL if precision > 8 else BYTE_PIXEL)


def _psd(read: Reader, length: int, head: bytes) -> ImageSize | None:
    if len(head) < 24:
        return None
    height, width, depth = struct.unpack(">IIH", head[14:24])
    return ImageSize("psd", width, height, FLOAT_PIXEL if depth > 8 else BYTE_PIXEL)


def _dds(read: Reader, length: int, head: bytes) -> ImageSize | None:
    header = read(0, 148)
    if len(header) < 128:
        return None
    height, width, _, depth = struct.unpack("<IIII", header[12:28])
    four_cc = header[84:88]
    caps2 = struct.unpack("<I", header[112:116])[0]
    layers = 6 if caps2 & 0x200 else 1  # a cube map's faces
    if caps2 & 0x200000:  # a volume: its depth slices
        layers *= max(1, depth)
    floating = struct.unpack("<I", four_cc)[0] in _DDS_FLOAT_CODES
    if four_cc == b"DX10" and len(header) >= 148:
        dxgi, _, misc, array_size = struct.unpack("<IIII", header[128:144])
        floating = dxgi in _DXGI_FLOAT
        layers *= max(1, array_size) * (6 if misc & 0x4 else 1)
    return ImageSize("dds", width, height, FLOAT_PIXEL if floating else BYTE_PIXEL, layers)


def _iso_image(read: Reader, length: int, head: bytes) -> ImageSize | None:
    """AVIF and HEIF: the largest 'ispe' (image spatial extents) property."""
    width = height = 0
    bits = 8
    stack = [(0, length)]
    steps = 0
    while stack:
        pos, end = stack.pop()
        while pos + 8 <= end:
            steps += 1
            if steps > MAX_ENTRIES:
                raise Unmeasurable("avif")
            box = read(pos, 16)
            if len(box) < 8:
                break
            size, kind = struct.unpack(">I4s", box[:8])
            header = 8
            if size == 1 and len(box) >= 16:
                size, header = struct.unpack(">Q", box[8:16])[0], 16
            elif size == 0:
                size = end - pos
            if size < header:
                break
            if kind == b"meta":  # a full box: 4 bytes of version and flags before its children
                stack.append((pos + header + 4, min(end, pos + size)))
            elif kind in (b"iprp", b"ipco"):
                stack.append((pos + header, min(end, pos + size)))
            elif kind == b"ispe":
                extent = read(pos + header + 4, 8)
                if len(extent) == 8:
                    w, h = struct.unpack(">II", extent)
                    if w * h > width * height:
                        width, height = w, h
            elif kind == b"pixi":
                depth = read(pos + header + 4, 2)
                if len(depth) == 2:
                    bits = max(bits, depth[1])
            pos += size
    if not width:
        raise Unmeasurable("avif")
    return ImageSize("avif", width, height, FLOAT_PIXEL if bits > 8 else BYTE_PIXEL)


def _is_iso_image(head: bytes) -> bool:
    if head[4:8] != b"ftyp":
        return False
    size = int.from_bytes(head[:4], "big")
    brands = head[8:min(len(head), max(16, size))]
    return any(brands[i:i + 4] in (b"avif", b"avis", b"heic", b"heix", b"mif1", b"msf1")
               for i in range(0, len(brands) - 3, 4))


# -- Targa: no signature ------------------------------------------------------------------------


def _tga(head: bytes) -> ImageSize | None:
    """A Targa has no signature: Blender takes any header whose fields are
    plausible (the test of its ``imb_is_a_tga``), so the same test applies here."""
    if len(head) < 18:
        return None
    map_type, image_type, map_length, map_bits = head[1], head[2], head[5] | head[6] << 8, head[7]
    width, height = struct.unpack("<HH", head[12:16])
    depth = head[16]
    if (map_type > 1 or image_type not in (1, 2, 3, 9, 10, 11) or not width or not height
            or not 0 < depth <= 32 or (map_length and map_bits > 32)):
        return None
    return ImageSize("tga", width, height)


_FORMATS: tuple[tuple[Callable[[bytes], bool], Callable[[Reader, int, bytes], ImageSize | None]], ...] = (
    (lambda head: head.startswith(_PNG_SIGNATURE), _png),
    (lambda head: head.startswith(b"\xff\xd8"), _jpeg),
    (lambda head: head[:4] == b"RIFF" and head[8:12] == b"WEBP", _webp),
    (lambda head: head[:4] in (b"II*\0", b"MM\0*", b"II+\0", b"MM\0+"), _tiff),
    (lambda head: head.startswith(b"#?"), _hdr),
    (lambda head: head.startswith(_EXR_MAGIC), _exr),
    (lambda head: head[:2] in _BMP_MAGIC, _bmp),
    (lambda head: head[:2] in (b"\x01\xda", b"\xda\x01"), _iris),
    (lambda head: head[:4] in _CINEON_MAGIC, _cineon),
    (lambda head: head[:4] in (b"SDPX", b"XPDS"), _dpx),
    (lambda head: head.startswith(_JP2_SIGNATURE), _jp2),
    (lambda head: head.startswith(b"\xff\x4f\xff\x51"), _j2k),
    (lambda head: head.startswith(b"8BPS"), _psd),
    (lambda head: head.startswith(b"DDS "), _dds),
    (_is_iso_image, _iso_image),
)
