"""A result file is checked before Blender sees it: nothing outside it is read,
nothing it does not hold is allocated, pictures are measured by their headers."""

from __future__ import annotations

import base64
import json
import struct
import zlib
from pathlib import Path
from typing import Any

import pytest

from hitem3d_blender.core.errors import BadResultFile
from hitem3d_blender.core.glb_check import GlbLimits, check_cover, check_glb
from hitem3d_blender.core.image_header import image_size
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


def test_zero_filled_accessors_beyond_the_limit_are_refused(tmp_path: Path) -> None:
    doc = document(accessors=[{"componentType": 5126, "count": 9_000_000, "type": "VEC3"}])
    assert "data that the file does not hold" in refused(tmp_path, glb(doc))


def test_a_sparse_part_past_its_view_is_refused(tmp_path: Path) -> None:
    sparse = {"count": 3, "indices": {"bufferView": 0, "byteOffset": 30, "componentType": 5125},
              "values": {"bufferView": 0}}
    doc = document(accessors=[{"bufferView": 0, "componentType": 5126, "count": 3, "type": "VEC3",
                               "sparse": sparse}])
    assert "accessor 0 sparse part declares 3 elements" in refused(tmp_path, glb(doc))


def test_a_mesh_reused_past_the_vertex_limit_is_refused(tmp_path: Path) -> None:
    meshes = [{"primitives": [{"attributes": {"POSITION": 0}}]}] * 5
    message = refused(tmp_path, glb(document(meshes=meshes)), GlbLimits(max_vertices=12))
    assert "it declares 15 vertices" in message


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
    assert "image 0 is 16,384 x 16,384 pixels" in refused(tmp_path, glb(doc, POSITIONS + picture))


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
