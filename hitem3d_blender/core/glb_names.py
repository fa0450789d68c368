"""A GLB as it leaves the machine: the shapes, without the names.

Blender's exporter writes each object's, mesh's and material's name into the
GLB (and the scene's), and custom properties as ``extras``: a studio's naming
(a client, a project, an unreleased character) that Hitem3D does not need to
texture or split a shape. Before a GLB is sent, every ``name`` in its JSON
becomes a neutral one (``node_0``, ``mesh_0``, ...: where the glTF schema
requires a name, one is still there) and every ``extras`` goes. The binary
chunk, which holds the geometry, is copied as it is.

No ``bpy``. ``neutral_head`` reads only the header and the JSON chunk, so a
200 MB file is streamed on, never held in memory.
"""

from __future__ import annotations

import json
import struct
from pathlib import Path
from typing import Any

from .errors import Hitem3DError
from .messages import Message, msg

GLB_MAGIC = b"glTF"
JSON_CHUNK = 0x4E4F534A
HEADER_BYTES = 12
CHUNK_HEADER_BYTES = 8
# The JSON of a mesh export is kilobytes; glb_check allows 64 MB for results.
MAX_JSON_BYTES = 64 * 1024 * 1024


class UnreadableGlb(Hitem3DError):
    """A GLB whose structure cannot be followed: not sent."""


def _broken(name: str, what: Message) -> UnreadableGlb:
    return UnreadableGlb(msg("Mesh: {name} is not a valid GLB file ({what})", name=name, what=what))


def _singular(collection: str) -> str:
    return {"meshes": "mesh", "accessors": "accessor", "bufferViews": "bufferView"}.get(
        collection, collection[:-1] if collection.endswith("s") else collection)


def _neutral(value: Any, label: str) -> Any:
    """``value`` with every ``extras`` gone and every ``name`` replaced."""
    if isinstance(value, dict):
        cleaned: dict[str, Any] = {}
        for key, item in value.items():
            if key == "extras":
                continue
            if key == "name":
                cleaned[key] = label
            elif isinstance(item, list):
                cleaned[key] = [_neutral(element, f"{_singular(key)}_{index}") for index, element in enumerate(item)]
            else:
                cleaned[key] = _neutral(item, key)
        return cleaned
    if isinstance(value, list):
        return [_neutral(element, f"{label}_{index}") for index, element in enumerate(value)]
    return value


def neutral_json(document: dict[str, Any]) -> dict[str, Any]:
    """The glTF JSON without names or extras; what the asset says of itself
    (version, generator) stays."""
    cleaned = _neutral(document, "gltf")
    asset = cleaned.get("asset")
    if isinstance(asset, dict):
        asset.pop("copyright", None)
    return cleaned


def _renamed_head(header: bytes, text: bytes, rest: int, name: str) -> bytes:
    try:
        document = json.loads(text.decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        raise _broken(name, msg("its JSON cannot be read")) from None
    if not isinstance(document, dict):
        raise _broken(name, msg("its JSON is not an object"))
    encoded = json.dumps(neutral_json(document), ensure_ascii=False, separators=(",", ":")).encode("utf-8")
    encoded += b" " * (-len(encoded) % 4)  # chunks are 4-byte aligned, padded with spaces
    version = struct.unpack_from("<I", header, 4)[0]
    total = HEADER_BYTES + CHUNK_HEADER_BYTES + len(encoded) + rest
    return (GLB_MAGIC + struct.pack("<II", version, total) + struct.pack("<II", len(encoded), JSON_CHUNK)
            + encoded)


def _json_length(header: bytes, chunk_header: bytes, size: int, name: str) -> int:
    if len(header) < HEADER_BYTES or header[:4] != GLB_MAGIC:
        raise _broken(name, msg("no glTF header"))
    version, length = struct.unpack_from("<II", header, 4)
    if version != 2 or length != size:
        raise _broken(name, msg("its header does not match its size"))
    if len(chunk_header) < CHUNK_HEADER_BYTES:
        raise _broken(name, msg("no JSON chunk"))
    json_length, kind = struct.unpack("<II", chunk_header)
    if kind != JSON_CHUNK or json_length > MAX_JSON_BYTES or HEADER_BYTES + CHUNK_HEADER_BYTES + json_length > size:
        raise _broken(name, msg("no JSON chunk"))
    return json_length


def neutral_head(path: Path, name: str = "") -> tuple[bytes, int]:
    """The GLB at ``path`` up to its JSON chunk, with the names neutral; and
    where in the file the rest (its binary chunk) starts, to be sent as it is.
    Raises ``UnreadableGlb``, or ``OSError`` when the file cannot be read."""
    label = name or path.name
    size = path.stat().st_size
    with path.open("rb") as stream:
        header = stream.read(HEADER_BYTES)
        chunk_header = stream.read(CHUNK_HEADER_BYTES)
        json_length = _json_length(header, chunk_header, size, label)
        text = stream.read(json_length)
    offset = HEADER_BYTES + CHUNK_HEADER_BYTES + json_length
    return _renamed_head(header, text, size - offset, label), offset


def neutral_glb(data: bytes, name: str) -> bytes:
    """The GLB ``data`` with the names neutral (a mesh already read whole)."""
    json_length = _json_length(data[:HEADER_BYTES], data[HEADER_BYTES:HEADER_BYTES + CHUNK_HEADER_BYTES],
                               len(data), name)
    offset = HEADER_BYTES + CHUNK_HEADER_BYTES + json_length
    head = _renamed_head(data[:HEADER_BYTES], data[offset - json_length:offset], len(data) - offset, name)
    return head + data[offset:]
