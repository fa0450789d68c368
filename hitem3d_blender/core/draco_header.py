"""The counts at the start of a Draco stream, read as Draco's decoder reads them.

Blender's glTF importer decodes a ``KHR_draco_mesh_compression`` primitive with
Draco's own library and then uses the counts the stream holds, not those the
glTF accessors declare (``draco_compression_extension.py`` overwrites them).
So what a Draco primitive will build is bounded by its stream's header: a few
bytes after the magic, and any metadata before them, walked within a budget.
No ``bpy`` here.
"""

from __future__ import annotations

import struct

from .image_header import Reader


class DracoError(Exception):
    """A Draco stream whose counts cannot be read: what is wrong, for a message."""


# The newest Draco bitstream Blender's decoder reads (Draco 1.5: mesh version 2.2).
_DRACO_NEWEST = (2, 2)
_DRACO_MAX_METADATA = 10_000  # metadata entries walked before giving up


def draco_counts(read: Reader, length: int) -> tuple[int, int]:
    """(points, faces) of a Draco mesh stream, read from its header the way
    Draco's decoder reads them (``point_cloud_decoder.cc``, ``metadata_decoder.cc``,
    ``mesh_sequential_decoder.cc``, ``mesh_edgebreaker_decoder_impl.cc``).
    Points are what the decoder allocates attributes for: the sequential
    encoding stores them; edgebreaker makes at most one per face corner (and,
    before bitstream 2.2, its new vertices). Raises ``DracoError``."""
    stream = _DracoStream(read, length)
    if stream.take(5) != b"DRACO":
        raise DracoError("is not a Draco stream")
    version = (stream.byte(), stream.byte())
    encoder, method = stream.byte(), stream.byte()
    flags = stream.u16()
    if not (1, 0) <= version <= _DRACO_NEWEST:
        raise DracoError(f"has Draco version {version[0]}.{version[1]}")
    if encoder != 1 or method not in (0, 1):
        raise DracoError("is not a Draco mesh")
    if version >= (1, 3) and flags & 0x8000:
        _skip_draco_metadata(stream)
    old_counts = version < (2, 2)
    if method == 0:  # sequential: faces, then points
        faces = stream.u32() if old_counts else stream.varint()
        points = stream.u32() if old_counts else stream.varint()
        return points, faces
    stream.byte()  # edgebreaker: the traversal decoder
    new_vertices = 0
    if old_counts:
        new_vertices = stream.u32() if version < (2, 0) else stream.varint()
    stream.u32() if version < (2, 0) else stream.varint()  # encoded vertices: at most 3 per face
    faces = stream.u32() if version < (2, 0) else stream.varint()
    return 3 * faces + new_vertices, faces


def _skip_draco_metadata(stream: _DracoStream) -> None:
    """Attribute metadata (an id and a metadata each), then the geometry's;
    a metadata is entries (name, size, bytes) and named sub-metadata, walked
    with a stack as Draco's ``MetadataDecoder`` does, within a budget."""
    budget = [_DRACO_MAX_METADATA]
    attributes = stream.varint()
    if attributes > _DRACO_MAX_METADATA:
        raise DracoError("has too much metadata to check")
    for _ in range(attributes):
        stream.varint()
        _skip_metadata(stream, budget)
    _skip_metadata(stream, budget)


def _skip_metadata(stream: _DracoStream, budget: list[int]) -> None:
    pending, named = 1, False  # the first has no name, its sub-metadata have
    while pending:
        pending -= 1
        budget[0] -= 1
        if named:
            stream.take(stream.byte())
        named = True
        for _ in range(stream.varint()):
            budget[0] -= 1
            if budget[0] < 0:
                raise DracoError("has too much metadata to check")
            stream.take(stream.byte())
            size = stream.varint()
            if not size:
                raise DracoError("has broken metadata")
            stream.skip(size)
        pending += stream.varint()
        if budget[0] - pending < 0:
            raise DracoError("has too much metadata to check")


class _DracoStream:
    def __init__(self, read: Reader, length: int) -> None:
        self.read, self.length, self.pos = read, length, 0

    def take(self, size: int) -> bytes:
        data = self.read(self.pos, size) if size else b""
        if len(data) < size:
            raise DracoError("is cut short")
        self.pos += size
        return data

    def skip(self, size: int) -> None:
        if self.pos + size > self.length:
            raise DracoError("is cut short")
        self.pos += size

    def byte(self) -> int:
        return self.take(1)[0]

    def u16(self) -> int:
        return int(struct.unpack("<H", self.take(2))[0])

    def u32(self) -> int:
        return int(struct.unpack("<I", self.take(4))[0])

    def varint(self) -> int:
        # LEB128, at most 5 bytes for 32 bits (``DecodeVarintUnsigned``).
        value = 0
        for shift in range(0, 35, 7):
            byte = self.byte()
            value |= (byte & 0x7F) << shift
            if not byte & 0x80:
                return value & 0xFFFFFFFF
        raise DracoError("has a broken number")

