"""Small, real results for the sandbox (``python build.py sandbox``), made with
the standard library only: a chess pawn turned on a lathe as the generated
model, the same pawn cut into parts or painted in bands of colour, a relief's
depth map and covers, so every import in a real Blender shows something one
recognises. Each GLB is a few tens of kilobytes and passes the add-on's GLB check.
"""

from __future__ import annotations

import json
import math
import struct
import zlib
from collections.abc import Sequence
from typing import Any

_FLOAT, _UNSIGNED_SHORT = 5126, 5123
_ARRAY_BUFFER, _ELEMENT_ARRAY_BUFFER = 34962, 34963
SEGMENTS = 32  # around the lathe's axis

# The pawn's outline: (radius, height) from the foot to the top of the head, in
# metres (glTF is Y-up; Blender's importer stands it on Z).
PAWN: tuple[tuple[float, float], ...] = (
    (0.0, 0.0), (0.38, 0.0), (0.38, 0.06), (0.30, 0.10), (0.26, 0.14), (0.16, 0.22), (0.12, 0.45),
    (0.11, 0.58), (0.21, 0.62), (0.21, 0.66), (0.11, 0.69), (0.15, 0.74), (0.17, 0.80), (0.16, 0.86),
    (0.12, 0.91), (0.06, 0.94), (0.0, 0.95),
)
# Where the pawn is cut into parts (heights): foot, body, collar and head.
PART_CUTS = {3: (0.22, 0.62), 4: (0.14, 0.45, 0.66)}
GOLD = (0.83, 0.62, 0.22, 1.0)
BANDS = ((0.80, 0.10, 0.10, 1.0), (0.95, 0.80, 0.20, 1.0), (0.15, 0.45, 0.85, 1.0), (0.10, 0.60, 0.25, 1.0))


def _radius_at(profile: Sequence[tuple[float, float]], height: float) -> float:
    for (r0, y0), (r1, y1) in zip(profile, profile[1:]):
        if y0 <= height <= y1 and y1 > y0:
            return r0 + (r1 - r0) * (height - y0) / (y1 - y0)
    return 0.0


def _slice(profile: Sequence[tuple[float, float]], low: float, high: float) -> list[tuple[float, float]]:
    """The outline between two heights, closed to the axis at both ends."""
    inside = [(r, y) for r, y in profile if low < y < high]
    bottom, top = (_radius_at(profile, low), low), (_radius_at(profile, high), high)
    points = [(0.0, low), bottom, *inside, top, (0.0, high)]
    return [point for index, point in enumerate(points) if index == 0 or point != points[index - 1]]


def _lathe(profile: Sequence[tuple[float, float]], colour: Sequence[float] | None = None
           ) -> tuple[list[float], list[float], list[float], list[int]]:
    """Positions, normals, colours (RGBA, empty without ``colour``) and
    triangle indices of ``profile`` turned around the Y axis. A point on the
    axis is one vertex; each other point is a ring of ``SEGMENTS``."""
    positions: list[float] = []
    normals: list[float] = []
    rings: list[list[int]] = []
    for index, (radius, height) in enumerate(profile):
        before = profile[max(index - 1, 0)]
        after = profile[min(index + 1, len(profile) - 1)]
        # The outline's outward normal: its tangent turned a quarter.
        dr, dy = after[0] - before[0], after[1] - before[1]
        length = math.hypot(dr, dy) or 1.0
        nr, ny = dy / length, -dr / length
        if radius == 0.0:
            rings.append([len(positions) // 3])
            positions += [0.0, height, 0.0]
            normals += [0.0, 1.0 if index else -1.0, 0.0]
            continue
        ring = []
        for segment in range(SEGMENTS):
            angle = 2 * math.pi * segment / SEGMENTS
            ring.append(len(positions) // 3)
            positions += [radius * math.cos(angle), height, radius * math.sin(angle)]
            normals += [nr * math.cos(angle), ny, nr * math.sin(angle)]
        rings.append(ring)
    indices: list[int] = []
    for lower, upper in zip(rings, rings[1:]):
        for segment in range(SEGMENTS):
            nxt = (segment + 1) % SEGMENTS
            # Counter-clockwise seen from outside (glTF's front faces).
            if len(lower) == 1:
                indices += [lower[0], upper[nxt], upper[segment]]
            elif len(upper) == 1:
                indices += [lower[segment], lower[nxt], upper[0]]
            else:
                indices += [lower[segment], lower[nxt], upper[nxt], lower[segment], upper[nxt], upper[segment]]
    colours = list(colour) * (len(positions) // 3) if colour is not None else []
    return positions, normals, colours, indices


def _glb(meshes: Sequence[tuple[str, list[float], list[float], list[float], list[int], Sequence[float] | None]],
         offset_x: float = 0.0) -> bytes:
    """One node per mesh: (name, positions, normals, colours, indices, base colour or None)."""
    document: dict[str, Any] = {
        "asset": {"version": "2.0", "generator": "hitem3d-blender sandbox"},
        "scene": 0, "scenes": [{"nodes": list(range(len(meshes)))}],
        "nodes": [], "meshes": [], "materials": [], "bufferViews": [], "accessors": [],
    }
    binary = bytearray()

    def view(data: bytes, target: int) -> int:
        binary.extend(b"\0" * (-len(binary) % 4))
        document["bufferViews"].append({"buffer": 0, "byteOffset": len(binary), "byteLength": len(data),
                                        "target": target})
        binary.extend(data)
        return len(document["bufferViews"]) - 1

    def floats(values: list[float], kind: str, width: int, bounds: bool = False) -> int:
        accessor: dict[str, Any] = {"bufferView": view(struct.pack(f"<{len(values)}f", *values), _ARRAY_BUFFER),
                                    "componentType": _FLOAT, "count": len(values) // width, "type": kind}
        if bounds:
            accessor["min"] = [min(values[axis::3]) for axis in range(3)]
            accessor["max"] = [max(values[axis::3]) for axis in range(3)]
        document["accessors"].append(accessor)
        return len(document["accessors"]) - 1

    for index, (name, positions, normals, colours, indices, base) in enumerate(meshes):
        attributes = {"POSITION": floats(positions, "VEC3", 3, bounds=True), "NORMAL": floats(normals, "VEC3", 3)}
        if colours:
            attributes["COLOR_0"] = floats(colours, "VEC4", 4)
        document["accessors"].append({
            "bufferView": view(struct.pack(f"<{len(indices)}H", *indices), _ELEMENT_ARRAY_BUFFER),
            "componentType": _UNSIGNED_SHORT, "count": len(indices), "type": "SCALAR"})
        primitive: dict[str, Any] = {"attributes": attributes, "indices": len(document["accessors"]) - 1}
        if base is not None:
            primitive["material"] = len(document["materials"])
            document["materials"].append({"name": f"{name} material", "pbrMetallicRoughness": {
                "baseColorFactor": list(base), "metallicFactor": 0.3, "roughnessFactor": 0.45}})
        document["meshes"].append({"name": name, "primitives": [primitive]})
        document["nodes"].append({"name": name, "mesh": index, "translation": [offset_x, 0.0, 0.0]})
    if not document["materials"]:
        del document["materials"]
    binary.extend(b"\0" * (-len(binary) % 4))
    document["buffers"] = [{"byteLength": len(binary)}]
    json_chunk = json.dumps(document, separators=(",", ":")).encode()
    json_chunk += b" " * (-len(json_chunk) % 4)
    body = (struct.pack("<II", len(json_chunk), 0x4E4F534A) + json_chunk
            + struct.pack("<II", len(binary), 0x004E4942) + bytes(binary))
    return b"glTF" + struct.pack("<II", 2, 12 + len(body)) + body


def pawn_glb_bytes() -> bytes:
    """The generated model: a gold pawn, 0.95 m tall."""
    return _glb([("Pawn", *_lathe(PAWN), GOLD)])


def pawn_parts_glb_bytes(count: int = 3) -> bytes:
    """The pawn cut across into ``count`` (3 or 4) parts named ``part_1`` … from the
    foot up, as Hitem3D names a split's parts."""
    heights = (0.0, *PART_CUTS[count], PAWN[-1][1])
    return _glb([(f"part_{index + 1}", *_lathe(_slice(PAWN, low, high)), BANDS[index % len(BANDS)])
                 for index, (low, high) in enumerate(zip(heights, heights[1:]))])


def pawn_colour_glb_bytes() -> bytes:
    """The pawn painted in bands of colour through its vertex colours (COLOR_0),
    one mesh per band joined at the cuts, as a multicolour result."""
    heights = (0.0, *PART_CUTS[4], PAWN[-1][1])
    meshes = []
    for index, (low, high) in enumerate(zip(heights, heights[1:])):
        positions, normals, colours, indices = _lathe(_slice(PAWN, low, high), BANDS[index])
        meshes.append((f"band_{index + 1}", positions, normals, colours, indices, None))
    return _glb(meshes)


def _png(width: int, height: int, pixel: Any, channels: int) -> bytes:
    """A PNG of 8-bit grey (1 channel) or RGB (3) pixels from ``pixel(x, y)``."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    rows = b"".join(b"\0" + b"".join(bytes(pixel(x, y)) for x in range(width)) for y in range(height))
    header = struct.pack(">IIBBBBB", width, height, 8, 0 if channels == 1 else 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(rows, 9)) + chunk(b"IEND", b"")


def _shade(x: int, y: int, size: int) -> float | None:
    """How bright the pawn's silhouette is at pixel (x, y) of a square picture, or None outside it."""
    height = 0.98 - y / size  # a little room above the head
    radius = _radius_at(PAWN, height)
    across = (x + 0.5) / size - 0.5
    if radius <= 0.0 or abs(across) > radius:
        return None
    return math.sqrt(max(0.0, 1.0 - (across / radius) ** 2))  # a cylinder's depth, 1 on the axis


def cover_png_bytes(size: int = 128, colour: Sequence[float] = GOLD) -> bytes:
    """A cover: the pawn's silhouette, shaded, on light grey."""
    def pixel(x: int, y: int) -> tuple[int, int, int]:
        shade = _shade(x, y, size)
        if shade is None:
            return (225, 225, 228)
        light = 0.35 + 0.65 * shade
        return (int(255 * colour[0] * light), int(255 * colour[1] * light), int(255 * colour[2] * light))

    return _png(size, size, pixel, 3)


def pawn_depth_png_bytes(size: int = 256) -> bytes:
    """A relief's depth map: the pawn bright (near) on black (far)."""
    return _png(size, size, lambda x, y: (int(255 * (_shade(x, y, size) or 0.0)),), 1)
