"""A result file is checked before Blender sees it: nothing outside it is read,
nothing it does not hold is allocated, pictures are measured by their headers."""

from __future__ import annotations

import base64
import json
import struct
import tracemalloc
import zlib
from pathlib import Path
from random import Random
from typing import Any, Callable

import pytest

from hitem3d_blender.core.errors import BadResultFile
from hitem3d_blender.core.draco_header import DracoError, draco_counts
from hitem3d_blender.core.glb_check import GlbLimits, check_cover, check_glb, importer_extensions
from hitem3d_blender.core.image_header import (BYTE_PIXEL, FLOAT_PIXEL, ImageSize, Unmeasurable,
                                               file_image_size, image_size)
from tests.support.glb_factory import minimal_glb_bytes

POSITIONS = struct.pack("<9f", 0, 0, 0, 1, 0, 0, 0, 1, 0)


def png_header(width: int, height: int) -> bytes:
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 6, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + struct.pack(">I", 13) + b"IHDR" + ihdr
            + struct.pack(">I", zlib.crc32(b"IHDR" + ihdr)))


def webp_vp8x_header(width: int, height: int) -> bytes:
    body = b"VP8X" + struct.pack("<I", 10) + b"\0\0\0\0" + (width - 1).to_bytes(3, "little") \
        + (height - 1).to_bytes(3, "little")
    return b"RIFF" + struct.pack("<I", len(body) + 4) + b"WEBP" + body


def webp_lossless_header(width: int, height: int) -> bytes:
    bits = (width - 1) | ((height - 1) << 14)
    body = b"VP8L" + struct.pack("<I", 5) + b"\x2f" + struct.pack("<I", bits)
    return b"RIFF" + struct.pack("<I", len(body) + 4) + b"WEBP" + body


def webp_lossy_header(width: int, height: int) -> bytes:
    body = b"VP8 " + struct.pack("<I", 10) + b"\0\0\0" + b"\x9d\x01\x2a" + struct.pack("<HH", width, height)
    return b"RIFF" + struct.pack("<I", len(body) + 4) + b"WEBP" + body


def jpeg_header(width: int, height: int) -> bytes:
    app0 = b"\xff\xe0" + struct.pack(">H", 16) + b"JFIF\0" + b"\x01\x01\0\0\x01\0\x01\0\0"
    sof = b"\xff\xc0" + struct.pack(">HBHHB", 11, 8, height, width, 1) + b"\x01\x11\x00"
    return b"\xff\xd8" + app0 + sof


def document(**changes: Any) -> dict[str, Any]:
    doc: dict[str, Any] = {
        "asset": {"version": "2.0"},
        "scenes": [{"nodes": [0]}],
        "nodes": [{"mesh": 0}],
        "meshes": [{"primitives": [{"attributes": {"POSITION": 0}}]}],
        "buffers": [{"byteLength": len(POSITIONS)}],
        "bufferViews": [{"buffer": 0, "byteOffset": 0, "byteLength": len(POSITIONS)}],
        "accessors": [{"bufferView": 0, "componentType": 5126, "count": 3, "type": "VEC3"}],
    }
    doc.update(changes)
    return doc


def glb(doc: dict[str, Any], binary: bytes = POSITIONS) -> bytes:
    text = json.dumps(doc).encode()
    text += b" " * (-len(text) % 4)
    binary += b"\0" * (-len(binary) % 4)
    body = struct.pack("<II", len(text), 0x4E4F534A) + text
    if binary:
        body += struct.pack("<II", len(binary), 0x004E4942) + binary
    return b"glTF" + struct.pack("<II", 2, 12 + len(body)) + body


def write(tmp_path: Path, data: bytes) -> Path:
    path = tmp_path / "result.glb"
    path.write_bytes(data)
    return path


def refused(tmp_path: Path, data: bytes, limits: GlbLimits = GlbLimits()) -> str:
    with pytest.raises(BadResultFile) as caught:
        check_glb(write(tmp_path, data), limits)
    return str(caught.value)


# -- what is accepted ----------------------------------------------------------------------


def test_a_minimal_self_contained_glb_is_accepted(tmp_path: Path) -> None:
    check_glb(write(tmp_path, minimal_glb_bytes()))
    check_glb(write(tmp_path, glb(document())))


def test_a_buffer_in_a_data_uri_is_accepted(tmp_path: Path) -> None:
    uri = "data:application/octet-stream;base64," + base64.b64encode(POSITIONS).decode()
    check_glb(write(tmp_path, glb(document(buffers=[{"byteLength": len(POSITIONS), "uri": uri}]), b"")))


def test_an_embedded_8k_texture_is_accepted(tmp_path: Path) -> None:
    picture = png_header(8192, 8192)
    doc = document(bufferViews=[{"buffer": 0, "byteLength": len(POSITIONS)},
                                {"buffer": 0, "byteOffset": 36, "byteLength": len(picture)}],
                   images=[{"bufferView": 1, "mimeType": "image/png"}],
                   buffers=[{"byteLength": 36 + len(picture)}])
    check_glb(write(tmp_path, glb(doc, POSITIONS + picture)))


# -- nothing outside the file is read --------------------------------------------------------


@pytest.mark.parametrize("uri", ["../../secret.bin", "/etc/passwd", "file:///etc/passwd",
                                 "C:\\Users\\me\\key.bin", "https://example.com/x.bin"])
def test_a_buffer_pointing_outside_the_file_is_refused(tmp_path: Path, uri: str) -> None:
    message = refused(tmp_path, glb(document(buffers=[{"byteLength": 36, "uri": uri}]), b""))
    assert "buffer 0 refers to a file outside it" in message


@pytest.mark.parametrize("uri", ["../../photo.png", "/home/me/photo.jpg", "file:///tmp/x.png"])
def test_an_image_pointing_outside_the_file_is_refused(tmp_path: Path, uri: str) -> None:
    message = refused(tmp_path, glb(document(images=[{"uri": uri}])))
    assert "image 0 refers to a file outside it" in message


# -- declared sizes fit the bytes that are there ------------------------------------------------


def test_452_bytes_declaring_ten_million_vertices_is_refused(tmp_path: Path) -> None:
    doc = document(accessors=[{"bufferView": 0, "componentType": 5126, "count": 10_000_000, "type": "VEC3"}])
    data = glb(doc)
    assert len(data) < 600
    assert "accessor 0 declares 10,000,000 elements but its data holds fewer" in refused(tmp_path, data)


def test_a_buffer_longer_than_the_binary_chunk_is_refused(tmp_path: Path) -> None:
    message = refused(tmp_path, glb(document(buffers=[{"byteLength": 10**9}])))
    assert "buffer 0 declares 1,000,000,000 bytes but holds 36" in message


def test_a_buffer_view_past_its_buffer_is_refused(tmp_path: Path) -> None:
    doc = document(bufferViews=[{"buffer": 0, "byteOffset": 32, "byteLength": 36}])
    assert "buffer view 0 reaches past the end of its buffer" in refused(tmp_path, glb(doc))


def test_a_stride_that_walks_out_of_the_view_is_refused(tmp_path: Path) -> None:
    doc = document(bufferViews=[{"buffer": 0, "byteLength": 36, "byteStride": 24}])
    assert "accessor 0 declares 3 elements" in refused(tmp_path, glb(doc))


def test_zero_filled_accessors_count_as_what_blender_builds_from_them(tmp_path: Path) -> None:
    doc = document(accessors=[{"componentType": 5126, "count": 50_000_000, "type": "VEC3"}])
    assert "50,000,000 vertices, over the limit of 40,000,000" in refused(tmp_path, glb(doc))
    unused = document(accessors=[*document()["accessors"], {"componentType": 5126, "count": 50_000_000,
                                                            "type": "VEC3"}])
    check_glb(write(tmp_path, glb(unused)))  # nothing reads it: Blender builds nothing from it


def test_a_sparse_part_past_its_view_is_refused(tmp_path: Path) -> None:
    sparse = {"count": 3, "indices": {"bufferView": 0, "byteOffset": 30, "componentType": 5125},
              "values": {"bufferView": 0}}
    doc = document(accessors=[{"bufferView": 0, "componentType": 5126, "count": 3, "type": "VEC3",
                               "sparse": sparse}])
    assert "accessor 0 sparse part declares 3 elements" in refused(tmp_path, glb(doc))


def test_a_mesh_reused_past_the_vertex_limit_is_refused(tmp_path: Path) -> None:
    meshes = [{"primitives": [{"attributes": {"POSITION": 0}}]}] * 5
    nodes = [{"mesh": index} for index in range(5)]
    message = refused(tmp_path, glb(document(meshes=meshes, nodes=nodes)), GlbLimits(max_vertices=12))
    assert "15 vertices, over the limit of 12" in message


@pytest.mark.parametrize("doc", [
    document(accessors=[{"bufferView": 7, "componentType": 5126, "count": 3, "type": "VEC3"}]),
    document(accessors=[{"bufferView": 0, "componentType": 5126, "count": -1, "type": "VEC3"}]),
    document(accessors=[{"bufferView": 0, "componentType": 1, "count": 3, "type": "VEC3"}]),
    document(meshes=[{"primitives": [{"attributes": {"POSITION": 4}}]}]),
    document(buffers="nope"),
])
def test_broken_references_are_refused_with_what_is_broken(tmp_path: Path, doc: dict[str, Any]) -> None:
    assert refused(tmp_path, glb(doc)).startswith("The result file is refused: ")


def test_a_json_part_that_is_not_json_is_refused(tmp_path: Path) -> None:
    data = bytearray(glb(document()))
    data[20:24] = b"\xff\xfe{["
    assert "not valid JSON" in refused(tmp_path, bytes(data))


def test_a_json_part_longer_than_the_file_is_refused(tmp_path: Path) -> None:
    data = bytearray(glb(document()))
    data[12:16] = struct.pack("<I", 10_000)
    assert "JSON part is longer than the file" in refused(tmp_path, bytes(data))


# -- pictures are measured by their headers -----------------------------------------------------


def test_an_embedded_texture_over_the_pixel_limit_is_refused(tmp_path: Path) -> None:
    picture = webp_vp8x_header(16384, 16384)
    doc = document(bufferViews=[{"buffer": 0, "byteLength": 36},
                                {"buffer": 0, "byteOffset": 36, "byteLength": len(picture)}],
                   images=[{"bufferView": 1, "mimeType": "image/webp"}],
                   buffers=[{"byteLength": 36 + len(picture)}])
    assert "image 0 is 16,384 x 16,384 pixels, 1.1 GB once decoded" in refused(tmp_path, glb(doc, POSITIONS + picture))


def test_a_data_uri_texture_over_the_pixel_limit_is_refused(tmp_path: Path) -> None:
    uri = "data:image/png;base64," + base64.b64encode(png_header(30000, 30000)).decode()
    assert "image 0 is 30,000 x 30,000 pixels" in refused(tmp_path, glb(document(images=[{"uri": uri}])))


@pytest.mark.parametrize("head, size", [
    (png_header(640, 480), (640, 480)),
    (jpeg_header(1024, 768), (1024, 768)),
    (webp_vp8x_header(16384, 16384), (16384, 16384)),
    (webp_lossless_header(300, 200), (300, 200)),
    (webp_lossy_header(512, 256), (512, 256)),
])
def test_picture_sizes_come_from_the_header(head: bytes, size: tuple[int, int]) -> None:
    found = image_size(head)
    assert found is not None and (found.width, found.height) == size


def test_a_real_webp_made_by_blender_is_measured() -> None:
    from tests.support.glb_factory import cached_webp

    found = image_size(cached_webp(size=64).read_bytes())
    assert found is not None and (found.width, found.height) == (64, 64)


def test_a_cover_over_the_pixel_limit_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "cover.webp"
    path.write_bytes(webp_vp8x_header(16384, 16384) + bytes(1000))
    with pytest.raises(BadResultFile, match="16384 x 16384 pixels, too large for a preview"):
        check_cover(path)
    path.write_bytes(png_header(1024, 1024))
    check_cover(path)


def test_a_symlinked_result_is_not_followed(tmp_path: Path) -> None:
    target = tmp_path / "elsewhere.glb"
    target.write_bytes(minimal_glb_bytes())
    link = tmp_path / "result.glb"
    link.symlink_to(target)
    with pytest.raises(BadResultFile, match="cannot be read"):
        check_glb(link)


# -- what Blender builds is counted per use (issue 21) -------------------------------------------


def with_views(*parts: bytes) -> tuple[list[dict[str, Any]], bytes]:
    """Buffer views over ``parts`` laid one after another (4-byte aligned)."""
    views, binary = [], b""
    for part in parts:
        views.append({"buffer": 0, "byteOffset": len(binary), "byteLength": len(part)})
        binary += part + b"\0" * (-len(part) % 4)
    return views, binary


def test_one_accessor_reused_by_600_shape_keys_is_refused(tmp_path: Path) -> None:
    positions = struct.pack("<3f", 0, 0, 0) * 100_000  # 1.2 MB, read once per shape key
    views, binary = with_views(positions)
    doc = document(bufferViews=views, buffers=[{"byteLength": len(binary)}],
                   accessors=[{"bufferView": 0, "componentType": 5126, "count": 100_000, "type": "VEC3"}],
                   meshes=[{"primitives": [{"attributes": {"POSITION": 0}, "targets": [{"POSITION": 0}] * 600}]}])
    assert "60,000,000 shape key vertices, over the limit of 40,000,000" in refused(tmp_path, glb(doc, binary))


def test_too_many_shape_keys_on_one_mesh_are_refused(tmp_path: Path) -> None:
    doc = document(meshes=[{"primitives": [{"attributes": {"POSITION": 0}, "targets": [{"POSITION": 0}] * 1001}]}])
    assert "1,001 shape keys on one mesh, over the limit of 1,000" in refused(tmp_path, glb(doc))


def test_a_mesh_with_shape_keys_is_counted_once_per_node(tmp_path: Path) -> None:
    # Blender builds a shape-keyed mesh again for each node (its weights may differ).
    doc = document(meshes=[{"primitives": [{"attributes": {"POSITION": 0}, "targets": [{"POSITION": 0}] * 2}]}],
                   nodes=[{"mesh": 0}] * 4, scenes=[{"nodes": [0, 1, 2, 3]}])
    assert "24 shape key vertices, over the limit of 23" in refused(tmp_path, glb(doc),
                                                                    GlbLimits(max_shape_key_vertices=23))
    check_glb(write(tmp_path, glb(doc)), GlbLimits(max_shape_key_vertices=24))


def test_52_sparse_shape_keys_on_a_127k_vertex_head_are_accepted(tmp_path: Path) -> None:
    """Blender exports shape keys as sparse accessors without a buffer view:
    52 x 127k vertices of implied zeros, which Blender imports fine."""
    vertices = 127_000
    positions = bytes(12 * vertices)
    indices, values = struct.pack("<I", 7), struct.pack("<3f", 0.1, 0.2, 0.3)
    views, binary = with_views(positions, indices, values)
    sparse = {"count": 1, "indices": {"bufferView": 1, "componentType": 5125}, "values": {"bufferView": 2}}
    keys = [{"componentType": 5126, "count": vertices, "type": "VEC3", "sparse": sparse}] * 52
    doc = document(bufferViews=views, buffers=[{"byteLength": len(binary)}],
                   accessors=[{"bufferView": 0, "componentType": 5126, "count": vertices, "type": "VEC3"}, *keys],
                   meshes=[{"primitives": [{"attributes": {"POSITION": 0},
                                            "targets": [{"POSITION": 1 + key} for key in range(52)]}]}])
    check_glb(write(tmp_path, glb(doc, binary)))


def test_one_accessor_reused_by_animation_channels_is_refused(tmp_path: Path) -> None:
    times = struct.pack("<f", 0.0) * 100_000
    views, binary = with_views(POSITIONS, times)
    channels = [{"sampler": 0, "target": {"node": 0, "path": "translation"}}] * 30
    doc = document(bufferViews=views, buffers=[{"byteLength": len(binary)}],
                   accessors=[document()["accessors"][0],
                              {"bufferView": 1, "componentType": 5126, "count": 100_000, "type": "SCALAR"},
                              {"bufferView": 1, "componentType": 5126, "count": 33_333, "type": "VEC3"}],
                   animations=[{"samplers": [{"input": 1, "output": 2}], "channels": channels}])
    assert "3,000,000 animation keyframes" in refused(tmp_path, glb(doc, binary), GlbLimits(max_keyframes=2_999_999))
    check_glb(write(tmp_path, glb(doc, binary)), GlbLimits(max_keyframes=3_000_000))


def test_gpu_instancing_is_counted_as_the_objects_blender_makes(tmp_path: Path) -> None:
    translations = bytes(12 * 20_000)
    views, binary = with_views(POSITIONS, translations)
    instancing = {"EXT_mesh_gpu_instancing": {"attributes": {"TRANSLATION": 1}}}
    doc = document(bufferViews=views, buffers=[{"byteLength": len(binary)}],
                   accessors=[document()["accessors"][0],
                              {"bufferView": 1, "componentType": 5126, "count": 20_000, "type": "VEC3"}],
                   nodes=[{"mesh": 0, "extensions": instancing}], extensionsUsed=["EXT_mesh_gpu_instancing"])
    assert "20,001 objects, over the limit of 10,000" in refused(tmp_path, glb(doc, binary))


def test_thousands_of_distinct_meshes_are_refused(tmp_path: Path) -> None:
    count = 10_001
    doc = document(meshes=[{"primitives": [{"attributes": {"POSITION": 0}}]}] * count,
                   nodes=[{"mesh": index} for index in range(count)], scenes=[{"nodes": list(range(count))}])
    assert "10,001 objects, over the limit of 10,000" in refused(tmp_path, glb(doc))
    assert "10,001 meshes, over the limit of 5,000" in refused(tmp_path, glb(doc), GlbLimits(max_objects=20_000,
                                                                                        max_primitives=20_000))


def test_nodes_that_form_a_loop_or_share_a_child_are_refused(tmp_path: Path) -> None:
    loop = document(nodes=[{"children": [1]}, {"children": [0]}])
    assert "its nodes form a loop" in refused(tmp_path, glb(loop))
    shared = document(nodes=[{"children": [2]}, {"children": [2]}, {"mesh": 0}])
    assert "node 2 has more than one parent" in refused(tmp_path, glb(shared))


# -- the JSON chunk is parsed within a memory bound ----------------------------------------------


def test_a_json_chunk_of_tiny_values_is_refused_before_it_is_parsed(tmp_path: Path) -> None:
    doc = document(extras=[{}] * 3_000_000)  # 9 MB that json.loads would make 400 MB of
    tracemalloc.start()
    try:
        message = refused(tmp_path, glb(doc))
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    # Counted from its commas and brackets: an upper bound on its values.
    assert "a JSON part of 6,000,031 values, over the limit of 2,000,000" in message
    assert peak < 4 * 9_000_000 + 30_000_000  # the file's bytes and the glb() text, never the objects


def test_a_json_chunk_over_the_limit_is_refused_before_it_is_read(tmp_path: Path) -> None:
    path = write(tmp_path, glb(document(extras="x" * (33 * 1024**2))))
    tracemalloc.start()
    try:
        with pytest.raises(BadResultFile) as caught:
            check_glb(path)
        message = str(caught.value)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert "a JSON part of 35 MB, over the limit of 34 MB" in message
    assert peak < 1_000_000


def test_a_large_json_chunk_costs_a_small_multiple_of_its_size(tmp_path: Path) -> None:
    doc = document(extras=["x" * 100] * 200_000)  # 21 MB
    path = write(tmp_path, glb(doc))
    tracemalloc.start()
    try:
        check_glb(path)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 4 * path.stat().st_size


# -- malformed input is a refusal, never an exception ------------------------------------------


WRONG_VALUES: list[Any] = [None, True, False, -1, 0, 7, 2**70, 1.5, "", "x", [], [0], [[]], {}, {"a": 0}, [{}]]


def rich_document() -> tuple[dict[str, Any], bytes]:
    """A file that uses every part the check reads."""
    picture = png_header(4, 4)
    indices = bytes([0, 1, 2, 0])
    times = struct.pack("<3f", 0, 1, 2)
    matrices = struct.pack("<16f", *[1, 0, 0, 0, 0, 1, 0, 0, 0, 0, 1, 0, 0, 0, 0, 1])
    stream = draco_stream(faces=1, points=3)
    views, binary = with_views(POSITIONS, indices, times, picture, matrices, stream, struct.pack("<I", 1))
    sparse = {"count": 1, "indices": {"bufferView": 6, "componentType": 5125}, "values": {"bufferView": 0}}
    doc = document(
        extensionsUsed=["EXT_mesh_gpu_instancing", "KHR_draco_mesh_compression"], extensionsRequired=[],
        bufferViews=views, buffers=[{"byteLength": len(binary)}],
        accessors=[{"bufferView": 0, "componentType": 5126, "count": 3, "type": "VEC3"},
                   {"bufferView": 1, "componentType": 5121, "count": 3, "type": "SCALAR"},
                   {"bufferView": 2, "componentType": 5126, "count": 3, "type": "SCALAR"},
                   {"bufferView": 4, "componentType": 5126, "count": 1, "type": "MAT4"},
                   {"componentType": 5126, "count": 3, "type": "VEC3", "sparse": sparse}],
        meshes=[{"primitives": [{"attributes": {"POSITION": 0}, "indices": 1, "targets": [{"POSITION": 4}],
                                 "extensions": {"KHR_draco_mesh_compression": {
                                     "bufferView": 5, "attributes": {"POSITION": 0}}}}]}],
        nodes=[{"mesh": 0, "skin": 0, "children": [1]},
               {"mesh": 0, "extensions": {"EXT_mesh_gpu_instancing": {"attributes": {"TRANSLATION": 0}}}}],
        skins=[{"joints": [1], "inverseBindMatrices": 3}],
        scenes=[{"nodes": [0]}],
        animations=[{"samplers": [{"input": 2, "output": 0, "interpolation": "LINEAR"}],
                     "channels": [{"sampler": 0, "target": {"node": 0, "path": "translation"}}]}],
        images=[{"bufferView": 3, "mimeType": "image/png"}, {"uri": "data:image/png;base64,"
                                                             + base64.b64encode(picture).decode()}],
        textures=[{"source": 0}], materials=[{"name": "M"}],
    )
    return doc, binary


def paths(value: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    found = [prefix] if prefix else []
    if isinstance(value, dict):
        for key, item in value.items():
            found += paths(item, (*prefix, key))
    elif isinstance(value, list):
        for index, item in enumerate(value[:2]):
            found += paths(item, (*prefix, index))
    return found


def replaced(doc: Any, path: tuple[Any, ...], value: Any) -> Any:
    copy = json.loads(json.dumps(doc))
    target = copy
    for key in path[:-1]:
        target = target[key]
    target[path[-1]] = value
    return copy


def test_the_rich_document_is_accepted(tmp_path: Path) -> None:
    doc, binary = rich_document()
    check_glb(write(tmp_path, glb(doc, binary)))


def test_every_field_with_every_wrong_json_type_is_a_refusal(tmp_path: Path) -> None:
    doc, binary = rich_document()
    path = tmp_path / "fuzz.glb"
    tried = 0
    for where in paths(doc):
        for value in WRONG_VALUES:
            path.write_bytes(glb(replaced(doc, where, value), binary))
            try:
                check_glb(path)
            except BadResultFile:
                pass
            tried += 1
    assert tried > 1000


@pytest.mark.parametrize("field, value", [("componentType", [5126]), ("componentType", {"a": 1}),
                                          ("type", ["VEC3"]), ("type", {"VEC3": 1})])
def test_an_array_or_object_for_a_type_is_refused(tmp_path: Path, field: str, value: Any) -> None:
    accessor = {"bufferView": 0, "componentType": 5126, "count": 3, "type": "VEC3", field: value}
    assert "accessor 0 has an unknown type" in refused(tmp_path, glb(document(accessors=[accessor])))


@pytest.mark.parametrize("primitives", [{"attributes": {}}, "x", 3])
def test_primitives_that_are_not_a_list_are_refused(tmp_path: Path, primitives: Any) -> None:
    message = refused(tmp_path, glb(document(meshes=[{"primitives": primitives}])))
    assert "mesh 0 primitives is not a list" in message


def test_random_damage_to_a_real_blender_export_is_a_refusal_or_passes(tmp_path: Path) -> None:
    from tests.support.glb_factory import cached_glb

    original = cached_glb().read_bytes()
    random = Random(21)
    path = tmp_path / "damaged.glb"
    for _ in range(400):
        damaged = bytearray(original)
        for _ in range(random.randint(1, 8)):
            damaged[random.randrange(12, min(len(damaged), 4000))] = random.randrange(256)
        path.write_bytes(bytes(damaged))
        try:
            check_glb(path)
        except BadResultFile:
            pass


# -- Draco: bounded by its own stream ------------------------------------------------------------


def varint(value: int) -> bytes:
    out = b""
    while True:
        byte, value = value & 0x7F, value >> 7
        out += bytes([byte | (0x80 if value else 0)])
        if not value:
            return out


def draco_stream(*, faces: int, points: int = 0, edgebreaker: bool = False, metadata: bool = False) -> bytes:
    head = b"DRACO" + bytes([2, 2, 1, int(edgebreaker)]) + struct.pack("<H", 0x8000 if metadata else 0)
    if metadata:  # no attribute metadata; one entry and one named sub-metadata with one entry
        head += varint(0) + varint(1) + b"\x04name" + varint(3) + b"abc" + varint(1)
        head += b"\x03sub" + varint(1) + b"\x01k" + varint(1) + b"v" + varint(0)
    if edgebreaker:
        return head + b"\x02" + varint(min(points, 3 * faces)) + varint(faces) + bytes(16)
    return head + varint(faces) + varint(points) + bytes(16)


def draco_document(stream: bytes, declared: int, indices: int | None = None) -> tuple[dict[str, Any], bytes]:
    views, binary = with_views(stream)
    draco = {"KHR_draco_mesh_compression": {"bufferView": 0, "attributes": {"POSITION": 0}}}
    doc = document(bufferViews=views, buffers=[{"byteLength": len(binary)}],
                   extensionsUsed=["KHR_draco_mesh_compression"], extensionsRequired=["KHR_draco_mesh_compression"],
                   accessors=[{"componentType": 5126, "count": declared, "type": "VEC3"},
                              {"componentType": 5125, "count": indices or declared * 2, "type": "SCALAR"}],
                   meshes=[{"primitives": [{"attributes": {"POSITION": 0}, "indices": 1, "extensions": draco}]}])
    return doc, binary


@pytest.mark.parametrize("edgebreaker", [False, True])
def test_a_draco_mesh_is_counted_by_its_stream_not_its_accessors(tmp_path: Path, edgebreaker: bool) -> None:
    stream = draco_stream(faces=5_000_000, points=2_500_000, edgebreaker=edgebreaker, metadata=True)
    doc, binary = draco_document(stream, declared=3)  # the counts rewritten to 3
    message = refused(tmp_path, glb(doc, binary), GlbLimits(max_indices=3_000_000))
    assert "5,000,000 faces, over the limit of 1,000,000" in message


def test_a_5_million_face_draco_mesh_is_accepted(tmp_path: Path) -> None:
    """Its accessors have no buffer view: 6 million vertices and 15 million
    indices that the file "does not hold", but its Draco stream does."""
    stream = draco_stream(faces=5_000_000, points=2_500_000, edgebreaker=True)
    doc, binary = draco_document(stream, 2_500_000, 15_000_000)
    check_glb(write(tmp_path, glb(doc, binary)))


def test_draco_counts_follow_the_older_bitstreams() -> None:
    old = b"DRACO" + bytes([1, 2, 1, 0]) + struct.pack("<H", 0) + struct.pack("<II", 100, 60)
    assert draco_counts(lambda offset, size: old[offset:offset + size], len(old)) == (60, 100)
    old_edge = (b"DRACO" + bytes([2, 1, 1, 1]) + struct.pack("<H", 0) + b"\x00" + varint(5) + varint(40)
                + varint(50))
    assert draco_counts(lambda offset, size: old_edge[offset:offset + size], len(old_edge)) == (155, 50)


@pytest.mark.parametrize("stream", [b"DRACX" + bytes(20), b"DRACO" + bytes([3, 0, 1, 0, 0, 0]),
                                    b"DRACO" + bytes([2, 2, 0, 0, 0, 0]) + bytes(8), b"DRACO\x02\x02",
                                    b"DRACO" + bytes([2, 2, 1, 0]) + b"\x00\x80" + b"\xff" * 10])
def test_a_broken_draco_stream_is_refused(tmp_path: Path, stream: bytes) -> None:
    doc, binary = draco_document(stream, declared=3)
    assert "Draco data" in refused(tmp_path, glb(doc, binary))


# -- meshopt: Blender 5.2 imports it, older ones cannot -------------------------------------------


def meshopt_document() -> tuple[dict[str, Any], bytes]:
    views, binary = with_views(b"\xa0" + bytes(40))
    compressed = {"EXT_meshopt_compression": {"buffer": 0, "byteLength": 41, "byteStride": 12, "count": 3,
                                              "mode": "ATTRIBUTES"}}
    doc = document(buffers=[{"byteLength": len(binary)},
                            {"byteLength": 36, "extensions": {"EXT_meshopt_compression": {"fallback": True}}}],
                   bufferViews=[*views, {"buffer": 1, "byteLength": 36, "byteStride": 12,
                                         "extensions": compressed}],
                   accessors=[{"bufferView": 1, "componentType": 5126, "count": 3, "type": "VEC3"}],
                   extensionsUsed=["EXT_meshopt_compression"], extensionsRequired=["EXT_meshopt_compression"])
    return doc, binary


def test_a_meshopt_file_says_this_blender_cannot_import_it(tmp_path: Path) -> None:
    doc, binary = meshopt_document()
    message = refused(tmp_path, glb(doc, binary))
    assert message == ("The result is compressed with meshopt, which this version of Blender cannot import: "
                       "report the task to Hitem3D")
    del doc["extensionsRequired"]
    assert refused(tmp_path, glb(doc, binary)) == message  # its fallback holds no data


def test_a_meshopt_file_is_bounded_where_blender_imports_it(tmp_path: Path) -> None:
    doc, binary = meshopt_document()
    path = write(tmp_path, glb(doc, binary))
    check_glb(path, importer=importer_extensions((5, 2)))
    check_glb(path, importer=None)  # judged where it is imported
    doc["bufferViews"][1]["extensions"]["EXT_meshopt_compression"]["count"] = 10**9
    with pytest.raises(BadResultFile, match="compressed data that unpacks to 12.0 GB, over the limit of 2.1 GB"):
        check_glb(write(tmp_path, glb(doc, binary)), importer=None)


def test_a_required_extension_blender_lacks_is_named(tmp_path: Path) -> None:
    doc = document(extensionsUsed=["KHR_texture_basisu"], extensionsRequired=["KHR_texture_basisu"])
    assert refused(tmp_path, glb(doc)) == ("The result needs the glTF extension KHR_texture_basisu, which this "
                                           "version of Blender cannot import: report the task to Hitem3D")
    check_glb(write(tmp_path, glb(doc)), importer=importer_extensions((5, 3)))


# -- every picture format Blender decodes is measured -------------------------------------------


def tga_header(width: int, height: int, *, rle: bool = False) -> bytes:
    return bytes([0, 0, 10 if rle else 2]) + bytes(9) + struct.pack("<HH", width, height) + bytes([32, 8])


def tiff_header(width: int, height: int, bits: int = 8) -> bytes:
    entries = [(256, 4, width), (257, 4, height), (258, 3, bits), (277, 3, 4)]
    table = struct.pack("<H", len(entries)) + b"".join(
        struct.pack("<HHI", tag, kind, 1) + (struct.pack("<I", value) if kind == 4 else struct.pack("<HH", value, 0))
        for tag, kind, value in entries) + bytes(4)
    return b"II*\0" + struct.pack("<I", 8) + table


def hdr_header(width: int, height: int) -> bytes:
    return b"#?RADIANCE\nFORMAT=32-bit_rle_rgbe\n\n" + f"-Y {height} +X {width}\n".encode()


def exr_header(width: int, height: int, channels: int = 4) -> bytes:
    def attribute(name: bytes, kind: bytes, value: bytes) -> bytes:
        return name + b"\0" + kind + b"\0" + struct.pack("<i", len(value)) + value

    chlist = b"".join(bytes([65 + index]) + b"\0" + struct.pack("<iB3xii", 2, 0, 1, 1)
                      for index in range(channels)) + b"\0"
    return (b"\x76\x2f\x31\x01" + struct.pack("<I", 2) + attribute(b"channels", b"chlist", chlist)
            + attribute(b"dataWindow", b"box2i", struct.pack("<iiii", 0, 0, width - 1, height - 1)) + b"\0")


def bmp_header(width: int, height: int) -> bytes:
    return b"BM" + bytes(12) + struct.pack("<Iii", 40, width, -height) + bytes(28)


def dds_header(width: int, height: int, *, cube: bool = False) -> bytes:
    header = struct.pack("<7I", 124, 0x1007, height, width, width * 4, 0, 0) + bytes(44)
    header += struct.pack("<8I", 32, 0x41, 0, 32, 0xFF0000, 0xFF00, 0xFF, 0xFF000000)
    header += struct.pack("<5I", 0x1000, 0xFE00 if cube else 0, 0, 0, 0)
    return b"DDS " + header


def psd_header(width: int, height: int, depth: int = 8) -> bytes:
    return b"8BPS" + struct.pack(">H6xHIIHH", 1, 3, height, width, depth, 3) + bytes(12)


def jpeg_with(*, metadata: int = 0, stray: int = 0, width: int = 12000, height: int = 12000) -> bytes:
    """A JPEG header whose frame comes after ``metadata`` bytes of APP1
    segments and ``stray`` bytes that are no segment at all."""
    segments = b""
    while metadata > 0:
        size = min(metadata, 65533)
        segments += b"\xff\xe1" + struct.pack(">H", size + 2) + b"E" * size
        metadata -= size
    frame = b"\xff\xc0" + struct.pack(">HBHHB", 17, 8, height, width, 3) + bytes(9)
    return b"\xff\xd8" + segments + b"\x12" * stray + b"\xff\xff" + frame


@pytest.mark.parametrize("head, size", [
    (tga_header(20000, 20000, rle=True), (20000, 20000, 4)),
    (tiff_header(20000, 20000), (20000, 20000, 4)),
    (tiff_header(640, 480, bits=16), (640, 480, 16)),
    (hdr_header(20000, 20000), (20000, 20000, 16)),
    (exr_header(8192, 4096), (8192, 4096, 16)),
    (bmp_header(30000, 20000), (30000, 20000, 4)),
    (dds_header(16384, 16384), (16384, 16384, 4)),
    (psd_header(300, 200, depth=16), (300, 200, 16)),
    (jpeg_with(metadata=300_000), (12000, 12000, 4)),
    (jpeg_with(stray=5000), (12000, 12000, 4)),
    (jpeg_with(metadata=1_000_000, stray=70_000), (12000, 12000, 4)),
])
def test_picture_sizes_of_every_format_come_from_the_header(head: bytes, size: tuple[int, int, int]) -> None:
    found = image_size(head)
    assert found is not None and (found.width, found.height, found.bytes_per_pixel) == size


def test_a_cube_map_and_a_multichannel_exr_count_every_layer() -> None:
    cube = image_size(dds_header(4096, 4096, cube=True))
    assert cube is not None and cube.decoded_bytes == 6 * 4096 * 4096 * 4
    layers = image_size(exr_header(4096, 4096, channels=40))
    assert layers is not None and layers.decoded_bytes == 4096 * 4096 * 40 * 4


@pytest.mark.parametrize("picture", [tga_header(20000, 20000, rle=True) + bytes(64), tiff_header(20000, 20000),
                                     hdr_header(20000, 20000), jpeg_with(metadata=300_000, stray=100)],
                         ids=["tga", "tiff", "hdr", "jpeg"])
def test_an_embedded_texture_of_any_format_over_the_limit_is_refused(tmp_path: Path, picture: bytes) -> None:
    views, binary = with_views(POSITIONS, picture)
    doc = document(bufferViews=views, buffers=[{"byteLength": len(binary)}], images=[{"bufferView": 1}])
    assert "image 0 is " in refused(tmp_path, glb(doc, binary))


def test_pictures_are_counted_together_by_their_decoded_size(tmp_path: Path) -> None:
    views, binary = with_views(POSITIONS, hdr_header(4096, 4096), tga_header(8192, 8192), png_header(8192, 8192))
    doc = document(bufferViews=views, buffers=[{"byteLength": len(binary)}],
                   images=[{"bufferView": 1}, {"bufferView": 2}, {"bufferView": 3}])
    # 268 MB of floats and two 8-bit 8K pictures of 268 MB each.
    assert "pictures of 805 MB once decoded" in refused(tmp_path, glb(doc, binary),
                                                        GlbLimits(max_total_image_bytes=800_000_000))
    check_glb(write(tmp_path, glb(doc, binary)))


def test_a_jpeg_walk_is_bounded() -> None:
    many = b"\xff\xd8" + b"\xff\xfe\x00\x02" * 10_001 + jpeg_with()[2:]
    with pytest.raises(Unmeasurable):
        image_size(many)


def test_a_jpeg_cover_with_a_megabyte_of_metadata_is_measured(tmp_path: Path) -> None:
    path = tmp_path / "cover.jpg"
    path.write_bytes(jpeg_with(metadata=1_000_000, width=1024, height=1024))
    check_cover(path)
    assert file_image_size(path) == ImageSize("jpeg", 1024, 1024)


def test_a_symlinked_picture_is_not_followed(tmp_path: Path) -> None:
    target = tmp_path / "elsewhere.png"
    target.write_bytes(png_header(64, 64))
    link = tmp_path / "cover.png"
    link.symlink_to(target)
    with pytest.raises(OSError):
        file_image_size(link)


def handmade_pictures() -> dict[str, bytes]:
    """Formats Blender reads but does not write, small enough to decode here."""
    tga = tga_header(16, 8) + bytes(16 * 8 * 4)
    dds = dds_header(16, 8) + bytes(16 * 8 * 4)
    psd = b"8BPS" + struct.pack(">H6xHIIHH", 1, 3, 8, 16, 8, 3) + bytes(12) + bytes(3 * 16 * 8)
    return {"handmade-tga": tga, "handmade-dds": dds, "handmade-psd": psd}


@pytest.fixture(scope="module")
def blender_pictures() -> tuple[Path, dict[str, Any]]:
    from tests.support.glb_factory import cached_pictures

    first = cached_pictures(handmade_pictures())
    pictures = json.loads((first / "decoded.json").read_text())["pictures"]
    # Blender's own JPEG, with a megabyte of metadata and stray bytes before its frame.
    jpeg = (first / "JPEG-8").read_bytes()
    deep = jpeg[:2] + jpeg_with(metadata=1_000_000, stray=3000)[2:-19] + jpeg[2:]
    second = cached_pictures({**handmade_pictures(), "deep-jpeg": deep})
    return second, json.loads((second / "decoded.json").read_text())["pictures"]


@pytest.mark.slow
def test_every_picture_blender_decodes_is_measured_as_blender_decodes_it(
        blender_pictures: tuple[Path, dict[str, Any]]) -> None:
    folder, pictures = blender_pictures
    measured = []
    for name, decoded in sorted(pictures.items()):
        data = (folder / decoded["file"]).read_bytes()
        if not decoded["width"]:  # this Blender does not decode it: nothing to measure
            continue
        found = image_size(data)
        assert found is not None, name
        assert (found.width, found.height) == (decoded["width"], decoded["height"]), name
        assert found.bytes_per_pixel == (FLOAT_PIXEL if decoded["float"] else BYTE_PIXEL), name
        measured.append(name)
    # Every format Blender writes, at each depth, and what it reads from memory.
    assert {"PNG-8", "PNG-16", "JPEG-8", "TARGA-8", "TARGA_RAW-8", "TIFF-8", "TIFF-16", "HDR-32", "OPEN_EXR-16",
            "OPEN_EXR-32", "BMP-8", "IRIS-8", "DPX-8", "DPX-16", "CINEON-10", "WEBP-8", "handmade-tga",
            "handmade-dds"} <= set(measured)
    deep = pictures["deep-jpeg"]
    assert (deep["width"], deep["height"]) == (37, 23)  # libjpeg skips them too


@pytest.mark.slow
def test_the_jpeg_walk_agrees_with_blender_on_metadata_and_stray_bytes(
        blender_pictures: tuple[Path, dict[str, Any]]) -> None:
    folder, pictures = blender_pictures
    jpeg = (folder / "JPEG-8").read_bytes()
    deep = jpeg[:2] + jpeg_with(metadata=1_000_000, stray=3000)[2:-19] + jpeg[2:]
    found = image_size(deep)
    assert found is not None and (found.width, found.height) == (pictures["deep-jpeg"]["width"],
                                                                 pictures["deep-jpeg"]["height"])


# -- GLBs written by Blender's own exporter are accepted -----------------------------------------


def bytes_reader(data: bytes) -> Callable[[int, int], bytes]:
    return lambda offset, size: data[offset:offset + size]


def draco_streams(path: Path) -> list[bytes]:
    data = path.read_bytes()
    json_length = struct.unpack("<I", data[12:16])[0]
    doc = json.loads(data[20:20 + json_length])
    assert "KHR_draco_mesh_compression" in doc.get("extensionsUsed", []), "Blender's exporter wrote no Draco"
    binary = data[20 + json_length + 8:]
    streams = []
    for mesh in doc["meshes"]:
        for primitive in mesh["primitives"]:
            view = doc["bufferViews"][primitive["extensions"]["KHR_draco_mesh_compression"]["bufferView"]]
            start = view.get("byteOffset", 0)
            streams.append(binary[start:start + view["byteLength"]])
    return streams


@pytest.mark.slow
@pytest.mark.parametrize("faces, level", [(200_000, 0), (200_000, 6), (200_000, 10), (5_000_000, 6)])
def test_draco_exports_are_accepted_and_bounded_by_their_streams(faces: int, level: int) -> None:
    from tests.support.glb_factory import cached_blender_export, exporter_writes_draco

    if not exporter_writes_draco():
        pytest.skip("this bpy wheel has no Draco library: Blender's exporter writes no Draco here (4.5 has it)")
    path = cached_blender_export(kind="draco", faces=faces, level=level)
    check_glb(path)
    imported = json.loads(Path(f"{path}.json").read_text())
    counted = [draco_counts(bytes_reader(stream), len(stream)) for stream in draco_streams(path)]
    assert sum(triangles for _, triangles in counted) == imported["faces"] >= faces * 0.95
    assert sum(points for points, _ in counted) >= imported["vertices"]  # the stream bounds what Blender builds


@pytest.mark.slow
def test_blenders_export_of_52_shape_keys_on_a_127k_vertex_head_is_accepted() -> None:
    from tests.support.glb_factory import cached_blender_export

    path = cached_blender_export(kind="shape_keys", keys=52)
    data = path.read_bytes()
    doc = json.loads(data[20:20 + struct.unpack("<I", data[12:16])[0]])
    vertices = max(accessor["count"] for accessor in doc["accessors"])
    assert vertices > 120_000 and len(doc["meshes"][0]["primitives"][0]["targets"]) == 52
    check_glb(path)


@pytest.mark.slow
def test_blenders_export_of_four_8k_textures_is_accepted() -> None:
    from tests.support.glb_factory import cached_blender_export

    path = cached_blender_export(kind="textures", count=4, size=8192)
    check_glb(path)
    with pytest.raises(BadResultFile, match="pictures of 1.1 GB once decoded, over the limit of 1.1 GB"):
        check_glb(path, GlbLimits(max_total_image_bytes=4 * 8192 * 8192 * 4 - 1))


def test_mesh_parts_and_materials_are_bounded(tmp_path: Path) -> None:
    parts = document(meshes=[{"primitives": [{"attributes": {"POSITION": 0}}] * 10_001}])
    assert "10,001 mesh parts, over the limit of 10,000" in refused(tmp_path, glb(parts))
    shared = document(meshes=[{"primitives": [{"attributes": {"POSITION": 0}}] * 10}], nodes=[{"mesh": 0}] * 2000,
                      scenes=[{"nodes": list(range(2000))}])
    check_glb(write(tmp_path, glb(shared)))  # one mesh, shared by 2,000 objects: built once
    materials = document(materials=[{}] * 2001)
    assert "2,001 materials, over the limit of 2,000" in refused(tmp_path, glb(materials))


def test_an_action_per_animation_and_animated_object_is_bounded(tmp_path: Path) -> None:
    times = struct.pack("<2f", 0, 1)
    views, binary = with_views(POSITIONS, times, bytes(24))
    doc = document(bufferViews=views, buffers=[{"byteLength": len(binary)}],
                   accessors=[document()["accessors"][0],
                              {"bufferView": 1, "componentType": 5126, "count": 2, "type": "SCALAR"},
                              {"bufferView": 2, "componentType": 5126, "count": 2, "type": "VEC3"}],
                   nodes=[{"mesh": 0}, {}], scenes=[{"nodes": [0, 1]}],
                   animations=[{"samplers": [{"input": 1, "output": 2}],
                                "channels": [{"sampler": 0, "target": {"node": node, "path": "translation"}}
                                             for node in (0, 1)]}] * 2501)
    assert "5,002 actions, over the limit of 5,000" in refused(tmp_path, glb(doc, binary))


def test_damaged_picture_headers_are_measured_or_not_never_an_error() -> None:
    random = Random(19)
    headers = [png_header(64, 32), jpeg_with(metadata=100), webp_vp8x_header(64, 64), tga_header(64, 64),
               tiff_header(64, 64), hdr_header(64, 64), exr_header(64, 64), bmp_header(64, 64), dds_header(64, 64),
               psd_header(64, 64), b"\x01\xda\x01\x01" + bytes(60), b"\x80\x2a\x5f\xd7" + bytes(1000),
               b"SDPX" + bytes(1000), b"\x00\x00\x00\x0cjP  \r\n\x87\n" + bytes(40), b"\xff\x4f\xff\x51" + bytes(60),
               b"\x00\x00\x00\x18ftypavif\x00\x00\x00\x00avifmif1" + bytes(40), b"II+\0", b"MM\0*\0\0"]
    for header in headers:
        for _ in range(300):
            damaged = bytearray(header[:random.randint(0, len(header))])
            for _ in range(random.randint(0, 4)):
                if damaged:
                    damaged[random.randrange(len(damaged))] = random.randrange(256)
            damaged += bytes(random.randrange(256) for _ in range(random.randint(0, 40)))
            try:
                found = image_size(bytes(header[:4]) + bytes(damaged))
            except Unmeasurable:
                continue
            assert found is None or (found.width >= 0 and found.height >= 0)


def test_damaged_draco_streams_are_counted_or_refused_never_an_error() -> None:
    random = Random(23)
    streams = [draco_stream(faces=100, points=60), draco_stream(faces=100, points=60, edgebreaker=True, metadata=True)]
    for stream in streams:
        for _ in range(500):
            damaged = bytearray(stream[:random.randint(0, len(stream))])
            for _ in range(random.randint(0, 4)):
                if len(damaged) > 5:
                    damaged[random.randrange(5, len(damaged))] = random.randrange(256)
            try:
                points, faces = draco_counts(bytes_reader(bytes(damaged)), len(damaged))
            except DracoError:
                continue
            assert points >= 0 and faces >= 0
