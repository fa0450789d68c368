"""A result file is checked before Blender's glTF importer sees it.

A GLB is input like any other: its JSON can point a buffer or an image at a file
on this computer (``../../.ssh/id_rsa``, ``/etc/passwd``), which the importer
would read and a saved ``.blend`` would carry away; and a few hundred bytes can
declare ten million vertices or a 16384 x 16384 texture, which the importer
would allocate. ``check_glb`` reads the header, the JSON chunk and the headers
of embedded pictures (never the whole binary chunk) and refuses a file unless:

- every buffer and image is inside the GLB (its binary chunk or a ``data:`` URI);
- every declared size fits the bytes that are really there (buffers, buffer
  views, accessors, sparse accessors);
- what it asks Blender to build stays within ``GlbLimits``, set far above any
  real Hitem3D result (a top model: 5 million faces, two 8K textures, ~35 MB).

No ``bpy`` here: the in-process import and the child-process import both call it.
"""

from __future__ import annotations

import base64
import binascii
import json
import os
import struct
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO, Mapping

from .errors import BadResultFile
from .messages import msg
from .image_header import HEAD_BYTES, ImageSize, file_image_size, image_size

_HEADER = struct.Struct("<4sII")
_CHUNK = struct.Struct("<II")
_CHUNK_JSON = 0x4E4F534A
_CHUNK_BIN = 0x004E4942

_COMPONENT_BYTES = {5120: 1, 5121: 1, 5122: 2, 5123: 2, 5125: 4, 5126: 4}
_TYPE_COMPONENTS = {"SCALAR": 1, "VEC2": 2, "VEC3": 3, "VEC4": 4, "MAT2": 4, "MAT3": 9, "MAT4": 16}


@dataclass(frozen=True)
class GlbLimits:
    """What one result may ask Blender to build. Each is several times what a
    real Hitem3D result reaches (5M faces: 15M indices, at most 15M vertices;
    textures up to 8192 x 8192), so only a broken or hostile file meets them."""

    max_json_bytes: int = 64 * 1024**2
    max_vertices: int = 40_000_000  # POSITION elements over every primitive
    max_indices: int = 120_000_000  # index elements over every primitive
    max_accessor_count: int = 120_000_000  # elements of any one accessor
    max_items: int = 100_000  # nodes, meshes, primitives, materials... of each kind
    max_image_pixels: int = 16384 * 8192  # one texture: twice an 8K texture
    max_total_image_pixels: int = 4 * 8192 * 8192  # all textures together
    max_unbacked_bytes: int = 64 * 1024**2  # zero-filled accessors (no buffer view)


DEFAULT_LIMITS = GlbLimits()
# A cover is a small preview (Hitem3D's are about 1024 pixels wide): Blender
# decodes it whole for the task list and for an asset preview.
MAX_COVER_PIXELS = 4096 * 4096


def check_glb(path: Path, limits: GlbLimits = DEFAULT_LIMITS) -> None:
    """Raise ``BadResultFile`` with a specific message unless ``path`` is a
    complete, self-contained GLB 2.0 within ``limits``. Never follows a symlink."""
    flags = os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_BINARY", 0)
    try:
        fd = os.open(path, flags)
    except OSError:
        raise BadResultFile(msg("The downloaded result cannot be read: retry")) from None
    with os.fdopen(fd, "rb") as file:
        size = os.fstat(file.fileno()).st_size
        _Checker(file, size, limits).run()


def check_cover(path: Path, max_pixels: int = MAX_COVER_PIXELS) -> None:
    """Raise ``BadResultFile`` unless ``path`` is a WebP, PNG or JPEG of at most
    ``max_pixels`` pixels, read from its header only."""
    try:
        found = file_image_size(path)
    except OSError:
        raise BadResultFile(msg("The cover image cannot be read")) from None
    if found is None:
        raise BadResultFile(msg("The cover image is not a WebP, PNG or JPEG file"))
    if found.pixels > max_pixels or found.width == 0 or found.height == 0:
        raise BadResultFile(msg("The cover image is {width} x {height} pixels, too large for a preview: skipped",
                                width=found.width, height=found.height))


def _refuse(what: str) -> BadResultFile:
    # NOTE: ``what`` names a part of the glTF format (buffer 0, accessor 3):
    # shown as it is, in English, like a file name.
    return BadResultFile(msg("The result file is refused: {what}. Retry, or report the task to Hitem3D", what=what))


class _Checker:
    def __init__(self, file: BinaryIO, size: int, limits: GlbLimits) -> None:
        self.file = file
        self.size = size
        self.limits = limits
        self.bin_offset = 0  # where the BIN chunk's data starts in the file
        self.bin_length = -1  # -1: no BIN chunk
        self.buffer_lengths: list[int] = []  # bytes really present per buffer
        self.buffer_data: dict[int, bytes] = {}  # decoded data: URIs

    def run(self) -> None:
        header = self.file.read(_HEADER.size)
        if len(header) < _HEADER.size or header[:4] != b"glTF":
            raise BadResultFile(msg("The downloaded result is not a GLB file: retry, or check the task on Hitem3D"))
        _, version, length = _HEADER.unpack(header)
        if version != 2:
            raise BadResultFile(msg("The result is glTF version {version}; Blender imports version 2", version=version))
        if length != self.size:
            raise BadResultFile(msg("The downloaded GLB is incomplete: retry"))
        document = self._read_chunks()
        self._check_counts(document)
        self._check_buffers(document)
        views = self._check_views(document)
        self._check_accessors(document, views)
        self._check_meshes(document)
        self._check_images(document, views)

    # -- the container ----------------------------------------------------------

    def _read_chunks(self) -> dict[str, Any]:
        head = self.file.read(_CHUNK.size)
        if len(head) < _CHUNK.size:
            raise _refuse("it has no JSON chunk")
        json_length, kind = _CHUNK.unpack(head)
        if kind != _CHUNK_JSON:
            raise _refuse("its first chunk is not JSON")
        if json_length > self.limits.max_json_bytes:
            raise _refuse(f"its JSON part is {json_length / 1e6:,.0f} MB")
        if 20 + json_length > self.size:
            raise _refuse("its JSON part is longer than the file")
        raw = self.file.read(json_length)
        try:
            document = json.loads(raw.decode("utf-8"))
        except (UnicodeDecodeError, ValueError, RecursionError):
            raise _refuse("its JSON part is not valid JSON") from None
        if not isinstance(document, dict):
            raise _refuse("its JSON part is not a glTF document")
        position = 20 + json_length
        if position + _CHUNK.size <= self.size:
            self.file.seek(position)
            bin_length, kind = _CHUNK.unpack(self.file.read(_CHUNK.size))
            if kind == _CHUNK_BIN:
                if position + _CHUNK.size + bin_length > self.size:
                    raise _refuse("its binary part is longer than the file")
                self.bin_offset = position + _CHUNK.size
                self.bin_length = bin_length
        return document

    def _check_counts(self, document: Mapping[str, Any]) -> None:
        for key in ("nodes", "meshes", "materials", "textures", "images", "samplers", "accessors",
                    "bufferViews", "buffers", "skins", "animations", "cameras", "scenes"):
            items = document.get(key, [])
            if not isinstance(items, list):
                raise _refuse(f"its {key} are not a list")
            if len(items) > self.limits.max_items:
                raise _refuse(f"it declares {len(items):,} {key}")

    # -- buffers ----------------------------------------------------------------

    def _check_buffers(self, document: Mapping[str, Any]) -> None:
        for index, buffer in enumerate(_objects(document, "buffers")):
            declared = _whole(buffer.get("byteLength"), f"buffer {index} length")
            uri = buffer.get("uri")
            if uri is None:
                if index != 0 or self.bin_length < 0:
                    raise _refuse(f"buffer {index} has no data")
                present = self.bin_length
            else:
                data = _data_uri(uri, f"buffer {index}")
                self.buffer_data[index] = data
                present = len(data)
            if declared > present:
                raise _refuse(f"buffer {index} declares {declared:,} bytes but holds {present:,}")
            self.buffer_lengths.append(declared)

    def _check_views(self, document: Mapping[str, Any]) -> list[tuple[int, int, int, int]]:
        """Each view as (buffer, offset, length, stride)."""
        views = []
        for index, view in enumerate(_objects(document, "bufferViews")):
            buffer = _index(view.get("buffer"), len(self.buffer_lengths), f"buffer view {index}")
            offset = _whole(view.get("byteOffset", 0), f"buffer view {index} offset")
            length = _whole(view.get("byteLength"), f"buffer view {index} length")
            stride = _whole(view.get("byteStride", 0), f"buffer view {index} stride")
            if offset + length > self.buffer_lengths[buffer]:
                raise _refuse(f"buffer view {index} reaches past the end of its buffer")
            if stride and not 4 <= stride <= 252:
                raise _refuse(f"buffer view {index} has a stride of {stride}")
            views.append((buffer, offset, length, stride))
        return views

    def _check_accessors(self, document: Mapping[str, Any], views: list[tuple[int, int, int, int]]) -> None:
        self.accessor_counts: list[int] = []
        unbacked = 0
        for index, accessor in enumerate(_objects(document, "accessors")):
            name = f"accessor {index}"
            count = _whole(accessor.get("count"), f"{name} count")
            if count > self.limits.max_accessor_count:
                raise _refuse(f"{name} declares {count:,} elements")
            element = _element_bytes(accessor, name)
            view = accessor.get("bufferView")
            if view is None:
                unbacked += count * element
            else:
                _fits(views, _index(view, len(views), name), _whole(accessor.get("byteOffset", 0), name),
                      count, element, name)
            sparse = accessor.get("sparse")
            if sparse is not None:
                self._check_sparse(sparse, count, element, views, name)
            self.accessor_counts.append(count)
        if unbacked > self.limits.max_unbacked_bytes:
            raise _refuse(f"it declares {unbacked / 1e6:,.0f} MB of data that the file does not hold")

    def _check_sparse(self, sparse: Any, count: int, element: int,
                      views: list[tuple[int, int, int, int]], name: str) -> None:
        if not isinstance(sparse, dict):
            raise _refuse(f"{name} has a broken sparse part")
        sparse_count = _whole(sparse.get("count"), f"{name} sparse count")
        if sparse_count > count:
            raise _refuse(f"{name} replaces more elements than it has")
        indices, values = sparse.get("indices"), sparse.get("values")
        if not isinstance(indices, dict) or not isinstance(values, dict):
            raise _refuse(f"{name} has a broken sparse part")
        index_bytes = _COMPONENT_BYTES.get(indices.get("componentType"))  # type: ignore[arg-type]
        if index_bytes is None:
            raise _refuse(f"{name} has sparse indices of an unknown type")
        for part, size in ((indices, index_bytes), (values, element)):
            view = _index(part.get("bufferView"), len(views), f"{name} sparse part")
            _fits(views, view, _whole(part.get("byteOffset", 0), name), sparse_count, size, f"{name} sparse part",
                  packed=True)

    def _check_meshes(self, document: Mapping[str, Any]) -> None:
        vertices = indices = primitives = 0
        counts = self.accessor_counts
        for index, mesh in enumerate(_objects(document, "meshes")):
            for primitive in mesh.get("primitives") or []:
                primitives += 1
                if not isinstance(primitive, dict):
                    raise _refuse(f"mesh {index} has a broken primitive")
                attributes = primitive.get("attributes") or {}
                if not isinstance(attributes, dict):
                    raise _refuse(f"mesh {index} has broken attributes")
                for value in attributes.values():
                    _index(value, len(counts), f"mesh {index} attribute")
                position = attributes.get("POSITION")
                if position is not None:
                    vertices += counts[position]
                if primitive.get("indices") is not None:
                    indices += counts[_index(primitive.get("indices"), len(counts), f"mesh {index} indices")]
        if primitives > self.limits.max_items:
            raise _refuse(f"it declares {primitives:,} mesh parts")
        if vertices > self.limits.max_vertices:
            raise _refuse(f"it declares {vertices:,} vertices")
        if indices > self.limits.max_indices:
            raise _refuse(f"it declares {indices // 3:,} faces")

    # -- images -----------------------------------------------------------------

    def _check_images(self, document: Mapping[str, Any], views: list[tuple[int, int, int, int]]) -> None:
        total = 0
        for index, image in enumerate(_objects(document, "images")):
            name = f"image {index}"
            uri = image.get("uri")
            if uri is not None:
                head = _data_uri(uri, name, head_only=True)
            else:
                view = _index(image.get("bufferView"), len(views), name)
                head = self._view_head(views[view])
            found = image_size(head)
            if found is None:
                # The importer skips pictures it cannot read; nothing to allocate.
                continue
            _check_picture(found, name, self.limits.max_image_pixels)
            total += found.pixels
        if total > self.limits.max_total_image_pixels:
            raise _refuse(f"its pictures add up to {total / 1e6:,.0f} million pixels")

    def _view_head(self, view: tuple[int, int, int, int]) -> bytes:
        buffer, offset, length, _ = view
        wanted = min(length, HEAD_BYTES)
        if buffer in self.buffer_data:
            return self.buffer_data[buffer][offset:offset + wanted]
        self.file.seek(self.bin_offset + offset)
        return self.file.read(wanted)


def _check_picture(found: ImageSize, name: str, max_pixels: int) -> None:
    if found.pixels > max_pixels:
        raise _refuse(f"{name} is {found.width:,} x {found.height:,} pixels")


def _objects(document: Mapping[str, Any], key: str) -> list[dict[str, Any]]:
    items = document.get(key, [])
    if not isinstance(items, list) or not all(isinstance(item, dict) for item in items):
        raise _refuse(f"its {key} are broken")
    return items


def _whole(value: Any, what: str) -> int:
    # bool is an int in Python; JSON's true is not a count.
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise _refuse(f"{what} is not a whole number")
    return value


def _index(value: Any, size: int, what: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value < size:
        raise _refuse(f"{what} points at something that does not exist")
    return value


def _element_bytes(accessor: Mapping[str, Any], name: str) -> int:
    component = _COMPONENT_BYTES.get(accessor.get("componentType"))  # type: ignore[arg-type]
    components = _TYPE_COMPONENTS.get(accessor.get("type"))  # type: ignore[arg-type]
    if component is None or components is None:
        raise _refuse(f"{name} has an unknown type")
    return component * components


def _fits(views: list[tuple[int, int, int, int]], view: int, offset: int, count: int, element: int,
          name: str, *, packed: bool = False) -> None:
    """Whether ``count`` elements of ``element`` bytes starting at ``offset``
    lie inside the view (with its stride, unless ``packed``)."""
    _, _, length, stride = views[view]
    step = element if packed or not stride else stride
    needed = offset + (step * (count - 1) + element if count else 0)
    if needed > length:
        raise _refuse(f"{name} declares {count:,} elements but its data holds fewer")


def _data_uri(uri: Any, what: str, *, head_only: bool = False) -> bytes:
    """The bytes of a base64 ``data:`` URI; any other URI is refused: it would
    make the importer read a file of this computer (or try the network)."""
    if not isinstance(uri, str) or not uri.startswith("data:"):
        raise _refuse(f"{what} refers to a file outside it")
    meta, comma, payload = uri.partition(",")
    if not comma or not meta.endswith(";base64"):
        raise _refuse(f"{what} has an unreadable embedded part")
    if head_only:
        payload = payload[:HEAD_BYTES * 4 // 3 // 4 * 4]
    try:
        return base64.b64decode(payload, validate=True)
    except (binascii.Error, ValueError):
        raise _refuse(f"{what} has an unreadable embedded part") from None
