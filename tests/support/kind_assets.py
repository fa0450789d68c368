"""Hand-built results of the newer task kinds (standard library only): a GLB
of parts, a GLB with vertex colours, a depth map PNG and a binary STL."""

from __future__ import annotations

import json
import struct
import zlib
from typing import Any, Sequence

_FLOAT = 5126
_ARRAY_BUFFER = 34962


def _glb(document: dict[str, Any], binary: bytes) -> bytes:
    json_chunk = json.dumps(document, separators=(",", ":")).encode()
    json_chunk += b" " * (-len(json_chunk) % 4)
    binary += b"\0" * (-len(binary) % 4)
    body = (struct.pack("<II", len(json_chunk), 0x4E4F534A) + json_chunk
            + struct.pack("<II", len(binary), 0x004E4942) + binary)
    return b"glTF" + struct.pack("<II", 2, 12 + len(body)) + body


def _triangles(nodes: Sequence[tuple[str, float, Sequence[float] | None]]) -> bytes:
    """One triangle mesh per (name, x offset, RGBA colour or None)."""
    binary = b""
    document: dict[str, Any] = {
        "asset": {"version": "2.0", "generator": "hitem3d-blender tests"},
        "scene": 0, "scenes": [{"nodes": list(range(len(nodes)))}],
        "nodes": [], "meshes": [], "bufferViews": [], "accessors": [],
    }

    def add(values: list[float], kind: str, count: int, bounds: bool) -> int:
        nonlocal binary
        data = struct.pack(f"<{len(values)}f", *values)
        document["bufferViews"].append({"buffer": 0, "byteOffset": len(binary), "byteLength": len(data),
                                        "target": _ARRAY_BUFFER})
        binary += data
        accessor: dict[str, Any] = {"bufferView": len(document["bufferViews"]) - 1, "componentType": _FLOAT,
                                    "count": count, "type": kind}
        if bounds:
            accessor["min"] = [min(values[i::3]) for i in range(3)]
            accessor["max"] = [max(values[i::3]) for i in range(3)]
        document["accessors"].append(accessor)
        return len(document["accessors"]) - 1

    for index, (name, x, colour) in enumerate(nodes):
        positions = [x, 0.0, 0.0, x + 1.0, 0.0, 0.0, x, 1.0, 0.5]
        attributes = {"POSITION": add(positions, "VEC3", 3, True)}
        if colour is not None:
            attributes["COLOR_0"] = add(list(colour) * 3, "VEC4", 3, False)
        document["meshes"].append({"name": name, "primitives": [{"attributes": attributes}]})
        document["nodes"].append({"name": name, "mesh": index})
    document["buffers"] = [{"byteLength": len(binary) + (-len(binary) % 4)}]
    return _glb(document, binary)


def parts_glb_bytes(count: int = 3) -> bytes:
    """``count`` parts named ``part_1`` … in the file's order (``part_10`` after ``part_9``)."""
    return _triangles([(f"part_{index + 1}", 1.5 * index, None) for index in range(count)])


def colour_glb_bytes() -> bytes:
    """One triangle painted red through its vertex colours (COLOR_0)."""
    return _triangles([("painted", 0.0, (0.8, 0.05, 0.05, 1.0))])


def depth_png_bytes(width: int = 32, height: int = 16) -> bytes:
    """An 8-bit grey depth map, bright (near) in the middle."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    rows = b"".join(
        b"\0" + bytes(255 - min(255, abs(2 * x - width) * 255 // width) for x in range(width))
        for _ in range(height)
    )
    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(rows)) + chunk(b"IEND", b"")


def stl_bytes(triangles: int = 2) -> bytes:
    """A binary STL of ``triangles`` facets."""
    facets = b"".join(struct.pack("<12fH", 0, 0, 1, i, 0, 0, i + 1, 0, 0, i, 1, 0, 0) for i in range(triangles))
    return b"hitem3d test stl".ljust(80, b" ") + struct.pack("<I", triangles) + facets
