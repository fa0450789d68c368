"""A GLB leaves without the studio's names: every name neutral, every extras
gone, the geometry copied as it is, and the result still a valid GLB."""

from __future__ import annotations

import json
import struct
from pathlib import Path
from typing import Any

import pytest

from hitem3d_blender.core import glb_names
from hitem3d_blender.core.glb_names import UnreadableGlb, neutral_glb, neutral_head
from tests.support.glb_factory import minimal_glb_bytes

SECRET_NAMES = ("Client_X_Hero", "HeroBody", "Skin_Client_X", "Shot_042", "artist@studio", "Unreleased")


def glb(document: dict[str, Any], binary: bytes) -> bytes:
    text = json.dumps(document).encode()
    text += b" " * (-len(text) % 4)
    binary += b"\0" * (-len(binary) % 4)
    body = struct.pack("<II", len(text), 0x4E4F534A) + text + struct.pack("<II", len(binary), 0x004E4942) + binary
    return b"glTF" + struct.pack("<II", 2, 12 + len(body)) + body


def document_of(data: bytes) -> dict[str, Any]:
    length = struct.unpack_from("<I", data, 12)[0]
    value: dict[str, Any] = json.loads(data[20:20 + length])
    return value


def binary_of(data: bytes) -> bytes:
    length = struct.unpack_from("<I", data, 12)[0]
    return data[20 + length:]


def named_glb() -> bytes:
    """What Blender's exporter writes for a selection: names everywhere, custom properties as extras."""
    original = minimal_glb_bytes()
    document = document_of(original)
    document["asset"]["copyright"] = "artist@studio"
    document["asset"]["extras"] = {"file": "Unreleased.blend"}
    document["scenes"][0].update(name="Shot_042", extras={"client": "Client_X_Hero"})
    document["nodes"][0].update(name="Client_X_Hero", extras={"note": "Unreleased"})
    document["meshes"][0].update(name="HeroBody", extras={"targetNames": ["Unreleased"]})
    document["materials"] = [{"name": "Skin_Client_X"}]
    document["extensions"] = {"KHR_materials_variants": {"variants": [{"name": "Client_X_Hero"}]}}
    return glb(document, binary_of(original)[8:])


def test_every_name_is_neutral_and_every_extras_is_gone() -> None:
    original = named_glb()
    assert all(name.encode() in original for name in SECRET_NAMES)
    cleaned = neutral_glb(original, "Chair")
    assert not [name for name in SECRET_NAMES if name.encode() in cleaned]
    document = document_of(cleaned)
    assert document["nodes"][0]["name"] == "node_0" and document["meshes"][0]["name"] == "mesh_0"
    assert document["materials"][0]["name"] == "material_0" and document["scenes"][0]["name"] == "scene_0"
    # A name the schema requires is still there, neutral.
    assert document["extensions"]["KHR_materials_variants"]["variants"] == [{"name": "variant_0"}]
    assert "extras" not in json.dumps(document)
    assert document["asset"] == {"version": "2.0", "generator": "hitem3d-blender tests"}


def test_the_geometry_and_the_structure_are_untouched() -> None:
    original = named_glb()
    cleaned = neutral_glb(original, "Chair")
    assert binary_of(cleaned) == binary_of(original)
    assert struct.unpack_from("<I", cleaned, 8)[0] == len(cleaned)
    assert struct.unpack_from("<I", cleaned, 12)[0] % 4 == 0
    before, after = document_of(original), document_of(cleaned)
    for key in ("accessors", "bufferViews", "buffers"):
        assert after[key] == before[key]
    assert after["nodes"][0]["mesh"] == 0 and after["meshes"][0]["primitives"] == before["meshes"][0]["primitives"]


def test_the_head_of_a_file_matches_the_whole_file_rewritten(tmp_path: Path) -> None:
    original = named_glb()
    path = tmp_path / "Chair-20261103.glb"
    path.write_bytes(original)
    head, offset = neutral_head(path)
    assert head + original[offset:] == neutral_glb(original, "Chair")


@pytest.mark.parametrize(("data", "words"), [
    (b"glTF" + struct.pack("<II", 1, 20) + bytes(8), "its header does not match its size"),
    (b"glTF" + struct.pack("<II", 2, 999) + bytes(8), "its header does not match its size"),
    (b"glTF" + struct.pack("<II", 2, 20) + struct.pack("<II", 0, 0x004E4942), "no JSON chunk"),
    (b"glTF" + struct.pack("<II", 2, 28) + struct.pack("<II", 400, 0x4E4F534A) + b"{}      ", "no JSON chunk"),
    (b"glTF" + struct.pack("<II", 2, 24) + struct.pack("<II", 4, 0x4E4F534A) + b"[1] ", "its JSON is not an object"),
    (b"glTF" + struct.pack("<II", 2, 24) + struct.pack("<II", 4, 0x4E4F534A) + b"\xff{  ", "its JSON cannot be read"),
    (b"PK\x03\x04", "no glTF header"),
])
def test_a_glb_that_cannot_be_followed_is_refused_with_its_name(data: bytes, words: str) -> None:
    with pytest.raises(UnreadableGlb) as caught:
        neutral_glb(data, "Chair")
    assert str(caught.value) == f"Mesh: Chair is not a valid GLB file ({words})"


def test_a_json_chunk_past_the_limit_is_refused_without_being_read(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(glb_names, "MAX_JSON_BYTES", 8)
    with pytest.raises(UnreadableGlb, match="no JSON chunk"):
        neutral_glb(named_glb(), "Chair")
