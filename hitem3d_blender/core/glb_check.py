"""A result file is checked before Blender's glTF importer sees it.

A GLB is input like any other: its JSON can point a buffer or an image at a file
on this computer (``../../.ssh/id_rsa``, ``/etc/passwd``), which the importer
would read and a saved ``.blend`` would carry away; and a few hundred bytes can
declare ten million vertices, 600 shape keys or a 20,000 x 20,000 texture, which
the importer would build. ``check_glb`` reads the header, the JSON chunk and the
headers inside the binary chunk (pictures, Draco streams; never the whole
chunk) and refuses a file unless:

- every buffer and image is inside the GLB (its binary chunk or a ``data:`` URI);
- every declared size fits the bytes that are really there (buffers, buffer
  views, accessors, sparse accessors, compressed views);
- it is well formed wherever we read it: a wrong JSON type is a refusal with a
  message, never an exception;
- what Blender will build from it stays within ``GlbLimits``, counted per use
  the way Blender's importer builds it (a mesh once per skin, again per node
  when it has shape keys; shape keys for every vertex; keyframes per animation
  channel; one object per GPU instance; a Draco primitive by the counts in its
  own stream, as Blender's decoder uses them; every picture by its header,
  whatever its format), set well above any real Hitem3D result (a top model:
  5 million faces, several 8K textures, ~35 MB) and Blender's own exports.

No ``bpy`` here: the in-process import and the child-process import both call it.
"""

from __future__ import annotations

import base64
import binascii
import json
import os
import re
import struct
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

from . import safe_files
from .errors import BadResultFile
from .draco_header import DracoError, draco_counts
from .image_header import ImageSize, Reader, Unmeasurable, file_image_size, measure
from .messages import N_, Message, msg

_HEADER = struct.Struct("<4sII")
_CHUNK = struct.Struct("<II")
_CHUNK_JSON = 0x4E4F534A
_CHUNK_BIN = 0x004E4942

_COMPONENT_BYTES = {5120: 1, 5121: 1, 5122: 2, 5123: 2, 5125: 4, 5126: 4}
_TYPE_COMPONENTS = {"SCALAR": 1, "VEC2": 2, "VEC3": 3, "VEC4": 4, "MAT2": 4, "MAT3": 9, "MAT4": 16}
# Blender's importer reads every accessor into float32 or uint32 arrays.
_READ_BYTES = 4

_MESHOPT = ("EXT_meshopt_compression", "KHR_meshopt_compression")
_DRACO = "KHR_draco_mesh_compression"
_INSTANCING = "EXT_mesh_gpu_instancing"

# The extensions the glTF importer of each Blender reads (``extensions_managed``
# in ``io_scene_gltf2/io/imp/gltf2_io_gltf.py``); a file that requires another
# fails in the importer. Listed from the importers of 4.2, 4.5, 5.2 and 5.3.
_IMPORTER_EXTENSIONS_SINCE: dict[str, tuple[int, int]] = {
    **dict.fromkeys((
        "KHR_materials_pbrSpecularGlossiness", "KHR_lights_punctual", "KHR_materials_unlit",
        "KHR_texture_transform", "KHR_materials_clearcoat", "KHR_mesh_quantization", _INSTANCING, _DRACO,
        "KHR_materials_variants", "KHR_materials_emissive_strength", "KHR_materials_transmission",
        "KHR_materials_specular", "KHR_materials_sheen", "KHR_materials_ior", "KHR_animation_pointer",
        "KHR_materials_volume", "EXT_texture_webp", "KHR_materials_anisotropy"), (4, 2)),
    **dict.fromkeys((*_MESHOPT, "KHR_materials_dispersion", "KHR_materials_iridescence"), (5, 2)),
    **dict.fromkeys(("KHR_texture_basisu", "KHR_gaussian_splatting"), (5, 3)),
}


def importer_extensions(version: tuple[int, ...]) -> frozenset[str]:
    """The glTF extensions Blender ``version``'s importer reads."""
    return frozenset(name for name, since in _IMPORTER_EXTENSIONS_SINCE.items() if tuple(version[:2]) >= since)


# What any Blender we support reads: the default when the caller does not say.
OLDEST_IMPORTER = importer_extensions((4, 2))


@dataclass(frozen=True)
class GlbLimits:
    """What one result may ask Blender to build, counted per use. Each is
    several times what a real Hitem3D result reaches (5M faces: 15M indices,
    at most 15M vertices; textures up to 8192 x 8192) and what Blender's own
    exports of rigged, animated and shape-keyed characters need."""

    max_json_bytes: int = 32 * 1024**2
    max_json_values: int = 2_000_000  # numbers, strings, lists and objects in the JSON
    max_items: int = 100_000  # entries of any one list in the JSON (nodes, accessors...)
    max_accessor_count: int = 120_000_000  # elements of any one accessor
    max_vertices: int = 40_000_000  # vertices of every mesh Blender builds
    max_indices: int = 120_000_000  # index elements of every mesh Blender builds (40M faces)
    max_mesh_bytes: int = 3 * 1024**3  # everything the importer reads from accessors, as float32
    max_shape_keys: int = 1_000  # shape keys (morph targets) of one mesh
    max_shape_key_vertices: int = 40_000_000  # shape keys x vertices, over every mesh built
    max_keyframes: int = 8_000_000  # keyframe points over every animation channel
    max_actions: int = 5_000  # an action per animation and animated object: 5,000 import in 3 s, 20,000 in 46 s
    max_objects: int = 10_000  # nodes and GPU instances: each an object in Blender
    max_meshes: int = 5_000  # meshes Blender builds (each costs more the more there are)
    max_materials: int = 2_000  # 2,000 take Blender 4 s to import, 10,000 take 150 s
    max_primitives: int = 10_000  # mesh parts of every mesh built
    max_image_bytes: int = 16384 * 8192 * 4  # one picture decoded: 16384 x 8192 at 8 bits
    max_total_image_bytes: int = 4 * 8192 * 8192 * 4  # every picture decoded: four 8K textures
    max_unpacked_bytes: int = 2 * 1024**3  # meshopt-compressed views, decoded


DEFAULT_LIMITS = GlbLimits()
# A cover is a small preview (Hitem3D's are about 1024 pixels wide): Blender
# decodes it whole for the task list and for an asset preview.
MAX_COVER_PIXELS = 4096 * 4096

# What each limit says when a file passes it (``{found}`` and ``{limit}`` formatted).
_LIMIT_TEXTS: dict[str, str] = {
    "json_bytes": N_("a JSON part of {found}, over the limit of {limit}"),
    "json_values": N_("a JSON part of {found} values, over the limit of {limit}"),
    "vertices": N_("{found} vertices, over the limit of {limit}"),
    "faces": N_("{found} faces, over the limit of {limit}"),
    "mesh_bytes": N_("{found} of mesh data, over the limit of {limit}"),
    "shape_keys": N_("{found} shape keys on one mesh, over the limit of {limit}"),
    "shape_key_vertices": N_("{found} shape key vertices, over the limit of {limit}"),
    "keyframes": N_("{found} animation keyframes, over the limit of {limit}"),
    "actions": N_("{found} actions, over the limit of {limit}"),
    "objects": N_("{found} objects, over the limit of {limit}"),
    "meshes": N_("{found} meshes, over the limit of {limit}"),
    "materials": N_("{found} materials, over the limit of {limit}"),
    "primitives": N_("{found} mesh parts, over the limit of {limit}"),
    "image_bytes": N_("image {index} is {width} x {height} pixels, {found} once decoded, over the limit of {limit}"),
    "total_image_bytes": N_("pictures of {found} once decoded, over the limit of {limit}"),
    "unpacked_bytes": N_("compressed data that unpacks to {found}, over the limit of {limit}"),
}
_BYTE_LIMITS = frozenset({"json_bytes", "mesh_bytes", "image_bytes", "total_image_bytes", "unpacked_bytes"})
_EXTENSION_NAME = re.compile(r"[A-Za-z0-9_]{1,64}")


def check_glb(path: Path, limits: GlbLimits = DEFAULT_LIMITS, *,
              importer: frozenset[str] | None = OLDEST_IMPORTER) -> None:
    """Raise ``BadResultFile`` with a specific message unless ``path`` is a
    complete, self-contained GLB 2.0 within ``limits``. ``importer`` is the set
    of extensions the importing Blender reads (``importer_extensions``); None
    leaves that to the check made where the file is imported. Never follows a
    symlink."""
    try:
        # NOTE: never a FIFO or a device either: opening one would wait for ever.
        opened = safe_files.open_read(path)
    except OSError:
        raise BadResultFile(msg("The downloaded result cannot be read: retry")) from None
    with opened as file:
        size = os.fstat(file.fileno()).st_size
        _Checker(file, size, limits, importer).run()


def check_cover(path: Path, max_pixels: int = MAX_COVER_PIXELS) -> None:
    """Raise ``BadResultFile`` unless ``path`` is a WebP, PNG or JPEG of at most
    ``max_pixels`` pixels, read from its header only."""
    try:
        found = file_image_size(path)
    except (OSError, Unmeasurable):
        raise BadResultFile(msg("The cover image cannot be read")) from None
    if found is None or found.kind not in ("webp", "png", "jpeg"):
        raise BadResultFile(msg("The cover image is not a WebP, PNG or JPEG file"))
    if found.pixels > max_pixels or found.width == 0 or found.height == 0:
        raise BadResultFile(msg("The cover image is {width} x {height} pixels, too large for a preview: skipped",
                                width=found.width, height=found.height))


def _refuse(what: str) -> BadResultFile:
    # NOTE: ``what`` names a part of the glTF format (buffer 0, accessor 3):
    # shown as it is, in English, like a file name.
    return BadResultFile(msg("The result file is refused: {what}. Retry, or report the task to Hitem3D", what=what))


def _amount(key: str, value: int) -> str:
    if key not in _BYTE_LIMITS:
        return f"{value:,}"
    return f"{value / 1e9:,.1f} GB" if value >= 1e9 else f"{max(1, round(value / 1e6)):,} MB"


def _too_large(key: str, found: int, limit: int, **values: int) -> BadResultFile:
    what = Message(_LIMIT_TEXTS[key], {"found": _amount(key, found), "limit": _amount(key, limit),
                                       **{name: f"{value:,}" for name, value in values.items()}})
    return BadResultFile(msg("The result is too large to import safely: {what}. Report the task to Hitem3D",
                             what=what))


def _unsupported(name: str) -> BadResultFile:
    if name in _MESHOPT:
        return BadResultFile(msg("The result is compressed with meshopt, which this version of Blender cannot "
                                 "import: report the task to Hitem3D"))
    shown = name if _EXTENSION_NAME.fullmatch(name) else "?"
    return BadResultFile(msg("The result needs the glTF extension {name}, which this version of Blender cannot "
                             "import: report the task to Hitem3D", name=shown))


# -- reading JSON values without trusting their types -----------------------------------------


def _dict(value: Any, what: str) -> dict[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise _refuse(f"{what} is broken")
    return value


def _list(value: Any, what: str) -> list[Any]:
    if value is None:
        return []
    if not isinstance(value, list):
        raise _refuse(f"{what} is not a list")
    return value


def _whole(value: Any, what: str) -> int:
    # bool is an int in Python; JSON's true is not a count.
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise _refuse(f"{what} is not a whole number")
    return value


def _index(value: Any, size: int, what: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value < size:
        raise _refuse(f"{what} points at something that does not exist")
    return value


def _optional_index(value: Any, size: int, what: str) -> int | None:
    return None if value is None else _index(value, size, what)


def _text(value: Any, what: str) -> str:
    if not isinstance(value, str):
        raise _refuse(f"{what} is not a name")
    return value


# -- the parts of the file, once checked -------------------------------------------------------


@dataclass(frozen=True)
class _View:
    buffer: int
    offset: int
    length: int  # what accessors may read: the bytes, or a compressed view's decoded size
    stride: int
    compressed: bool = False


@dataclass(frozen=True)
class _Accessor:
    count: int
    components: int
    element: int  # bytes of one element in its view


class _Checker:
    def __init__(self, file: BinaryIO, size: int, limits: GlbLimits, importer: frozenset[str] | None) -> None:
        self.file = file
        self.size = size
        self.limits = limits
        self.importer = importer
        self.bin_offset = 0  # where the BIN chunk's data starts in the file
        self.bin_length = -1  # -1: no BIN chunk
        self.buffer_data: dict[int, bytes] = {}  # decoded data: URIs
        self.buffer_lengths: list[int] = []
        self.buffer_present: list[bool] = []

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
        self._check_lists(document)
        self._check_extensions(document)
        self._check_buffers(document)
        self.views = self._check_views(document)
        self.accessors = self._check_accessors(document)
        self._check_scene_graph(document)
        self._check_meshes(document)
        self._check_animations(document)
        self._check_images(document)

    # -- the container ----------------------------------------------------------

    def _read_chunks(self) -> dict[str, Any]:
        head = self.file.read(_CHUNK.size)
        if len(head) < _CHUNK.size:
            raise _refuse("it has no JSON chunk")
        json_length, kind = _CHUNK.unpack(head)
        if kind != _CHUNK_JSON:
            raise _refuse("its first chunk is not JSON")
        if 20 + json_length > self.size:
            raise _refuse("its JSON part is longer than the file")
        if json_length > self.limits.max_json_bytes:
            raise _too_large("json_bytes", json_length, self.limits.max_json_bytes)
        raw = self.file.read(json_length)
        # NOTE: each JSON value becomes a Python object of 30 to 100 bytes, so a
        # chunk of tiny values ("[{},{},...]") would cost 30 times its size to
        # parse. Every value but the top one follows a comma or opens a list or
        # an object: counting those (in C, over the bytes) bounds the parse.
        values = raw.count(b",") + raw.count(b"[") + raw.count(b"{") + 1
        if values > self.limits.max_json_values:
            raise _too_large("json_values", values, self.limits.max_json_values)
        try:
            document = json.loads(raw.decode("utf-8"), parse_constant=_no_constant)
        except (UnicodeDecodeError, ValueError, RecursionError):
            raise _refuse("its JSON part is not valid JSON") from None
        del raw
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

    def _check_lists(self, document: Mapping[str, Any]) -> None:
        for key in ("nodes", "meshes", "materials", "textures", "images", "samplers", "accessors",
                    "bufferViews", "buffers", "skins", "animations", "cameras", "scenes"):
            items = _list(document.get(key), f"its {key}")
            if len(items) > self.limits.max_items:
                raise _refuse(f"it declares {len(items):,} {key}")
            if not all(isinstance(item, dict) for item in items):
                raise _refuse(f"its {key} are broken")
        materials = len(document.get("materials") or [])
        if materials > self.limits.max_materials:
            raise _too_large("materials", materials, self.limits.max_materials)

    def _check_extensions(self, document: Mapping[str, Any]) -> None:
        for name in _list(document.get("extensionsUsed"), "its extensions"):
            _text(name, "an extension name")
        required = [_text(name, "an extension name")
                    for name in _list(document.get("extensionsRequired"), "its required extensions")]
        if self.importer is not None:
            for name in required:
                if name not in self.importer:
                    raise _unsupported(name)

    # -- buffers ----------------------------------------------------------------

    def _check_buffers(self, document: Mapping[str, Any]) -> None:
        for index, buffer in enumerate(_objects(document, "buffers")):
            declared = _whole(buffer.get("byteLength"), f"buffer {index} length")
            uri = buffer.get("uri")
            if uri is None:
                present = self.bin_length if index == 0 and self.bin_length >= 0 else -1
            else:
                data = _data_uri(uri, f"buffer {index}")
                self.buffer_data[index] = data
                present = len(data)
            if present >= 0 and declared > present:
                raise _refuse(f"buffer {index} declares {declared:,} bytes but holds {present:,}")
            # A buffer without data is only a meshopt fallback: see _check_views.
            self.buffer_lengths.append(declared)
            self.buffer_present.append(present >= 0)

    def _check_views(self, document: Mapping[str, Any]) -> list[_View]:
        views = []
        unpacked = 0
        meshopt_without_fallback = False
        for index, view in enumerate(_objects(document, "bufferViews")):
            name = f"buffer view {index}"
            buffer = _index(view.get("buffer"), len(self.buffer_lengths), name)
            offset = _whole(view.get("byteOffset", 0), f"{name} offset")
            length = _whole(view.get("byteLength"), f"{name} length")
            stride = _whole(view.get("byteStride", 0), f"{name} stride")
            if offset + length > self.buffer_lengths[buffer]:
                raise _refuse(f"{name} reaches past the end of its buffer")
            if stride and not 4 <= stride <= 252:
                raise _refuse(f"{name} has a stride of {stride}")
            extensions = _dict(view.get("extensions"), f"{name} extensions")
            compression = next((extensions[key] for key in _MESHOPT if key in extensions), None)
            if compression is None:
                if not self.buffer_present[buffer]:
                    raise _refuse(f"buffer {buffer} has no data")
                views.append(_View(buffer, offset, length, stride))
                continue
            # Meshopt (Blender 5.2 on): the importer decodes count x byteStride
            # bytes from a part of another buffer, whatever the fallback holds.
            compression = _dict(compression, f"{name} compression")
            source = _index(compression.get("buffer"), len(self.buffer_lengths), f"{name} compressed data")
            source_offset = _whole(compression.get("byteOffset", 0), f"{name} compressed offset")
            source_length = _whole(compression.get("byteLength"), f"{name} compressed length")
            if not self.buffer_present[source] or source_offset + source_length > self.buffer_lengths[source]:
                raise _refuse(f"{name} compressed data reaches past the end of its buffer")
            decoded = (_whole(compression.get("count"), f"{name} compressed count")
                       * _whole(compression.get("byteStride"), f"{name} compressed stride"))
            _text(compression.get("mode"), f"{name} compression mode")
            unpacked += decoded
            meshopt_without_fallback |= not self.buffer_present[buffer]
            views.append(_View(buffer, offset, min(length, decoded), stride, compressed=True))
        if unpacked > self.limits.max_unpacked_bytes:
            raise _too_large("unpacked_bytes", unpacked, self.limits.max_unpacked_bytes)
        if (meshopt_without_fallback and self.importer is not None
                and not any(key in self.importer for key in _MESHOPT)):
            raise _unsupported(_MESHOPT[0])
        return views

    def _check_accessors(self, document: Mapping[str, Any]) -> list[_Accessor]:
        accessors = []
        for index, accessor in enumerate(_objects(document, "accessors")):
            name = f"accessor {index}"
            count = _whole(accessor.get("count"), f"{name} count")
            if count > self.limits.max_accessor_count:
                raise _refuse(f"{name} declares {count:,} elements")
            view = _optional_index(accessor.get("bufferView"), len(self.views), name)
            offset = _whole(accessor.get("byteOffset", 0), name)
            sparse = accessor.get("sparse")
            element_type = _element_type(accessor)
            if element_type is None:
                # Harmless unless something uses it: see _count.
                accessors.append(_Accessor(count, 0, 0))
                continue
            component, components = element_type
            element = component * components
            if view is not None:
                _fits(self.views[view], offset, count, element, name)
            if sparse is not None:
                self._check_sparse(sparse, count, element, name)
            accessors.append(_Accessor(count, components, element))
        return accessors

    def _check_sparse(self, sparse: Any, count: int, element: int, name: str) -> None:
        sparse = _dict(sparse, f"{name} sparse part")
        sparse_count = _whole(sparse.get("count"), f"{name} sparse count")
        if sparse_count > count:
            raise _refuse(f"{name} replaces more elements than it has")
        indices = _dict(sparse.get("indices"), f"{name} sparse part")
        values = _dict(sparse.get("values"), f"{name} sparse part")
        index_type = indices.get("componentType")
        index_bytes = _COMPONENT_BYTES.get(index_type) if type(index_type) is int else None
        if index_bytes is None:
            raise _refuse(f"{name} has sparse indices of an unknown type")
        for part, size in ((indices, index_bytes), (values, element)):
            view = _index(part.get("bufferView"), len(self.views), f"{name} sparse part")
            _fits(self.views[view], _whole(part.get("byteOffset", 0), name), sparse_count, size,
                  f"{name} sparse part", packed=True)

    def _count(self, index: Any, what: str) -> _Accessor:
        """The accessor a part of the file uses (Blender reads it whole)."""
        position = _index(index, len(self.accessors), what)
        accessor = self.accessors[position]
        if not accessor.components:
            raise _refuse(f"accessor {position} has an unknown type")
        return accessor

    # -- what Blender builds ------------------------------------------------------

    def _check_scene_graph(self, document: Mapping[str, Any]) -> None:
        """Nodes form trees; each is an object, each GPU instance one more.
        Records which nodes use each mesh (Blender builds a mesh per use)."""
        nodes = _objects(document, "nodes")
        meshes = len(_objects(document, "meshes"))
        skins = _objects(document, "skins")
        parents: dict[int, int] = {}
        objects = len(nodes)
        self.mesh_users: dict[int, list[tuple[int | None, int]]] = {}  # mesh -> (skin, node) of each user
        self.instanced_meshes: set[int] = set()
        for index, node in enumerate(nodes):
            name = f"node {index}"
            for child in _list(node.get("children"), f"{name} children"):
                child = _index(child, len(nodes), f"{name} child")
                if child in parents or child == index:
                    raise _refuse(f"node {child} has more than one parent")
                parents[child] = index
            mesh = _optional_index(node.get("mesh"), meshes, name)
            skin = _optional_index(node.get("skin"), len(skins), name)
            _optional_index(node.get("camera"), len(document.get("cameras") or []), name)
            instancing = _dict(_dict(node.get("extensions"), f"{name} extensions").get(_INSTANCING),
                               f"{name} instancing")
            if mesh is None:
                continue
            attributes = _dict(instancing.get("attributes"), f"{name} instancing")
            if attributes:
                # Blender makes one object per instance, all sharing the mesh.
                objects += max(self._count(value, f"{name} instancing").count for value in attributes.values())
                self.instanced_meshes.add(mesh)
            else:
                self.mesh_users.setdefault(mesh, []).append((skin, index))
        cleared: set[int] = set()  # nodes known to reach a root
        for start in parents:  # a loop of parents would have no root
            path = {start}
            up = start
            while up in parents and up not in cleared:
                up = parents[up]
                if up in path:
                    raise _refuse("its nodes form a loop")
                path.add(up)
            cleared |= path
        for index, scene in enumerate(_objects(document, "scenes")):
            for root in _list(scene.get("nodes"), f"scene {index} nodes"):
                _index(root, len(nodes), f"scene {index}")
        for index, skin_data in enumerate(skins):
            joints = _list(skin_data.get("joints"), f"skin {index} joints")
            for joint in joints:
                _index(joint, len(nodes), f"skin {index} joint")
            matrices = skin_data.get("inverseBindMatrices")
            if matrices is not None and self._count(matrices, f"skin {index}").count > len(joints):
                raise _refuse(f"skin {index} has more matrices than joints")
        if objects > self.limits.max_objects:
            raise _too_large("objects", objects, self.limits.max_objects)

    def _check_meshes(self, document: Mapping[str, Any]) -> None:
        limits = self.limits
        vertices = indices = data = key_vertices = built = parts = 0
        for index, mesh in enumerate(_objects(document, "meshes")):
            users = self.mesh_users.get(index, [])
            primitives = _list(mesh.get("primitives"), f"mesh {index} primitives")
            shape_keys = any(isinstance(primitive, dict) and primitive.get("targets") for primitive in primitives)
            # Blender shares a mesh between the nodes of one skin; a mesh with
            # shape keys is built again for each node (its weights may differ).
            uses = len(users) if shape_keys else len({skin for skin, _ in users})
            uses += index in self.instanced_meshes
            # Counted before the mesh is costed, so a refused file costs little work.
            parts += uses * len(primitives)
            if parts > limits.max_primitives:
                raise _too_large("primitives", parts, limits.max_primitives)
            cost = self._mesh_cost(mesh, f"mesh {index}")
            if cost.keys > limits.max_shape_keys:
                raise _too_large("shape_keys", cost.keys, limits.max_shape_keys)
            built += uses
            vertices += uses * cost.vertices
            indices += uses * cost.indices
            data += uses * cost.data
            key_vertices += uses * cost.keys * cost.vertices
        if built > limits.max_meshes:
            raise _too_large("meshes", built, limits.max_meshes)
        if vertices > limits.max_vertices:
            raise _too_large("vertices", vertices, limits.max_vertices)
        if indices > limits.max_indices:
            raise _too_large("faces", indices // 3, limits.max_indices // 3)
        if key_vertices > limits.max_shape_key_vertices:
            raise _too_large("shape_key_vertices", key_vertices, limits.max_shape_key_vertices)
        if data > limits.max_mesh_bytes:
            raise _too_large("mesh_bytes", data, limits.max_mesh_bytes)

    def _mesh_cost(self, mesh: Mapping[str, Any], name: str) -> _MeshCost:
        vertices = indices = data = keys = 0
        for number, primitive in enumerate(_list(mesh.get("primitives"), f"{name} primitives")):
            part = f"{name} primitive {number}"
            primitive = _dict(primitive, part)
            attributes = _dict(primitive.get("attributes"), f"{part} attributes")
            extensions = _dict(primitive.get("extensions"), f"{part} extensions")
            draco = extensions.get(_DRACO)
            decoded: tuple[int, int] | None = None
            covered: set[str] = set()
            if draco is not None:
                draco = _dict(draco, f"{part} Draco data")
                view = _index(draco.get("bufferView"), len(self.views), f"{part} Draco data")
                covered = set(_dict(draco.get("attributes"), f"{part} Draco attributes"))
                decoded = self._draco(self.views[view], f"{part} Draco data")
            # Blender reads every attribute whole; a vertex has the longest one.
            part_vertices = 0
            for key, value in attributes.items():
                accessor = self._count(value, f"{part} attribute")
                count = decoded[0] if decoded is not None and key in covered else accessor.count
                part_vertices = max(part_vertices, count)
                data += count * accessor.components * _READ_BYTES
            if primitive.get("indices") is not None:
                accessor = self._count(primitive.get("indices"), f"{part} indices")
                part_indices = decoded[1] * 3 if decoded is not None else accessor.count
                indices += part_indices
                data += part_indices * _READ_BYTES
            targets = _list(primitive.get("targets"), f"{part} shape keys")
            keys = max(keys, len(targets))
            for target in targets:
                for value in _dict(target, f"{part} shape key").values():
                    accessor = self._count(value, f"{part} shape key")
                    data += accessor.count * accessor.components * _READ_BYTES
                    part_vertices = max(part_vertices, accessor.count)
            vertices += part_vertices
        return _MeshCost(vertices, indices, data, keys)

    def _draco(self, view: _View, name: str) -> tuple[int, int]:
        """(points, faces) as Blender's Draco decoder will make them: from the
        stream's own header, whatever the accessors declare."""
        try:
            return draco_counts(self._reader(view), view.length)
        except DracoError as exc:
            raise _refuse(f"{name} {exc}") from None

    def _check_animations(self, document: Mapping[str, Any]) -> None:
        keyframes = actions = 0
        nodes = len(document.get("nodes") or [])
        for index, animation in enumerate(_objects(document, "animations")):
            animated: set[int] = set()
            name = f"animation {index}"
            samplers = [_dict(sampler, f"{name} sampler") for sampler in _list(animation.get("samplers"),
                                                                                f"{name} samplers")]
            for sampler in samplers:
                self._count(sampler.get("input"), f"{name} sampler")
                self._count(sampler.get("output"), f"{name} sampler")
                if sampler.get("interpolation") is not None:
                    _text(sampler.get("interpolation"), f"{name} interpolation")
            for channel in _list(animation.get("channels"), f"{name} channels"):
                channel = _dict(channel, f"{name} channel")
                sampler = samplers[_index(channel.get("sampler"), len(samplers), f"{name} channel")]
                target = _dict(channel.get("target"), f"{name} channel target")
                node = _optional_index(target.get("node"), nodes, f"{name} channel target")
                if node is not None:
                    animated.add(node)
                _text(target.get("path"), f"{name} channel path")
                # Per channel: one sampler can drive many channels, each its own curves.
                times = self.accessors[sampler["input"]].count
                values = self.accessors[sampler["output"]]
                points = values.count * values.components
                if sampler.get("interpolation") == "CUBICSPLINE":
                    points //= 3  # in-tangent, value, out-tangent
                keyframes += max(times, points)
            # Blender makes an action per animation and animated object.
            actions += len(animated)
            if actions > self.limits.max_actions:
                raise _too_large("actions", actions, self.limits.max_actions)
        if keyframes > self.limits.max_keyframes:
            raise _too_large("keyframes", keyframes, self.limits.max_keyframes)

    # -- pictures -----------------------------------------------------------------

    def _check_images(self, document: Mapping[str, Any]) -> None:
        total = 0
        for index, image in enumerate(_objects(document, "images")):
            name = f"image {index}"
            uri = image.get("uri")
            if uri is not None:
                data = _data_uri(uri, name)
                read, length = _bytes_reader(data), len(data)
            else:
                view = self.views[_index(image.get("bufferView"), len(self.views), name)]
                read, length = self._reader(view), view.length
            try:
                found = measure(read, length)
            except Unmeasurable as exc:
                raise _refuse(f"{name} is a {exc.kind.upper()} picture whose size cannot be read") from None
            if found is None:
                # Not a picture Blender decodes: it makes an empty image, nothing to allocate.
                continue
            _check_picture(found, index, self.limits)
            total += found.decoded_bytes
        if total > self.limits.max_total_image_bytes:
            raise _too_large("total_image_bytes", total, self.limits.max_total_image_bytes)

    def _reader(self, view: _View) -> Reader:
        """Reads inside ``view`` only."""
        if view.compressed:
            raise _refuse("a picture or a Draco stream is in a meshopt-compressed view")
        buffer, start, length = view.buffer, view.offset, view.length

        def read(offset: int, size: int) -> bytes:
            size = min(size, length - offset)
            if offset < 0 or size <= 0:
                return b""
            if buffer in self.buffer_data:
                return self.buffer_data[buffer][start + offset:start + offset + size]
            self.file.seek(self.bin_offset + start + offset)
            return self.file.read(size)

        return read


@dataclass(frozen=True)
class _MeshCost:
    vertices: int
    indices: int
    data: int  # bytes the importer reads
    keys: int  # shape keys


def _bytes_reader(data: bytes) -> Reader:
    return lambda offset, size: data[offset:offset + size]


def _check_picture(found: ImageSize, index: int, limits: GlbLimits) -> None:
    if found.decoded_bytes > limits.max_image_bytes:
        raise _too_large("image_bytes", found.decoded_bytes, limits.max_image_bytes, index=index,
                         width=found.width, height=found.height)


def _objects(document: Mapping[str, Any], key: str) -> list[dict[str, Any]]:
    items = _list(document.get(key), f"its {key}")
    if not all(isinstance(item, dict) for item in items):
        raise _refuse(f"its {key} are broken")
    return items


def _no_constant(name: str) -> None:
    raise ValueError(name)  # NaN and Infinity are not JSON


def _element_type(accessor: Mapping[str, Any]) -> tuple[int, int] | None:
    """(bytes per component, components), or None for a type Blender cannot read."""
    component, kind = accessor.get("componentType"), accessor.get("type")
    size = _COMPONENT_BYTES.get(component) if type(component) is int else None
    components = _TYPE_COMPONENTS.get(kind) if isinstance(kind, str) else None
    return None if size is None or components is None else (size, components)


def _fits(view: _View, offset: int, count: int, element: int, name: str, *, packed: bool = False) -> None:
    """Whether ``count`` elements of ``element`` bytes starting at ``offset``
    lie inside the view (with its stride, unless ``packed``)."""
    step = element if packed or not view.stride else view.stride
    needed = offset + (step * (count - 1) + element if count else 0)
    if needed > view.length:
        raise _refuse(f"{name} declares {count:,} elements but its data holds fewer")


def _data_uri(uri: Any, what: str) -> bytes:
    """The bytes of a base64 ``data:`` URI; any other URI is refused: it would
    make the importer read a file of this computer (or try the network)."""
    if not isinstance(uri, str) or not uri.startswith("data:"):
        raise _refuse(f"{what} refers to a file outside it")
    meta, comma, payload = uri.partition(",")
    if not comma or not meta.endswith(";base64"):
        raise _refuse(f"{what} has an unreadable embedded part")
    try:
        return base64.b64decode(payload, validate=True)
    except (binascii.Error, ValueError):
        raise _refuse(f"{what} has an unreadable embedded part") from None
