"""The GLB check against the Khronos glTF Validator's own test files.

``tests/support/khronos_validator_cases.json`` holds the files of the
validator's ``test/`` folder with the errors its reports list (copied from
the repository named in the file, Apache-2.0). A ``.gltf`` case becomes a GLB
here, its external files embedded as ``data:`` URIs where the folder has them.
Every case must be refused with a message or accepted, never raise; and every
case the validator finds no error in must be accepted, unless it points at a
file outside itself.
"""

from __future__ import annotations

import base64
import json
import posixpath
import struct
from pathlib import Path
from typing import Any

import pytest

from hitem3d_blender.core.errors import BadResultFile
from hitem3d_blender.core.glb_check import check_glb, importer_extensions

CASES_FILE = Path(__file__).resolve().parents[1] / "support" / "khronos_validator_cases.json"
SUITE = json.loads(CASES_FILE.read_text("utf-8"))
NEWEST = importer_extensions((5, 3))  # judge the file, not this Blender's extensions
# Valid to the validator, refused by Blender's importer too: nothing lost.
BLENDER_REFUSES = {
    "base/data/glb/extra_data.glb": "bytes after the GLB's length: 'Bad GLB: file size doesn't match'",
    "base/data/json/integer_written_as_float.gltf": "36.0 for a count: gltf2_io.from_int asserts an int",
}
MIME = {".bin": "application/octet-stream", ".png": "image/png", ".jpg": "image/jpeg", ".webp": "image/webp"}


def as_glb(name: str, data: bytes) -> tuple[bytes, bool]:
    """The case as a GLB, and whether it still points outside itself."""
    if name.endswith(".glb"):
        return data, b"data:application/gltf-buffer," in data  # a data: URI Blender reads as a file
    outside = False
    try:
        document: Any = json.loads(data)
    except ValueError:
        document = None
    if isinstance(document, dict):
        folder = posixpath.dirname(name)
        for key in ("buffers", "images"):
            items = document.get(key)
            for item in items if isinstance(items, list) else []:
                uri = item.get("uri") if isinstance(item, dict) else None
                if key == "buffers" and uri is None:
                    outside = True  # a .gltf buffer without a file: no GLB chunk holds it here
                    continue
                if not isinstance(uri, str) or uri.startswith("data:"):
                    # NOTE: Blender's importer reads a data: URI without ";base64," as a file name.
                    outside |= isinstance(uri, str) and ";base64," not in uri
                    continue
                resource = SUITE["resources"].get(posixpath.normpath(posixpath.join(folder, uri)))
                if resource is None:
                    outside = True
                    continue
                item["uri"] = f"data:{MIME.get(posixpath.splitext(uri)[1], 'application/octet-stream')};base64,{resource}"
        data = json.dumps(document).encode()
    data += b" " * (-len(data) % 4)
    body = struct.pack("<II", len(data), 0x4E4F534A) + data
    return b"glTF" + struct.pack("<II", 2, 12 + len(body)) + body, outside


@pytest.mark.parametrize("name", sorted(SUITE["cases"]))
def test_every_validator_case_is_refused_with_a_message_or_accepted(tmp_path: Path, name: str) -> None:
    case = SUITE["cases"][name]
    data, outside = as_glb(name, base64.b64decode(case["base64"]))
    path = tmp_path / "case.glb"
    path.write_bytes(data)
    try:
        check_glb(path, importer=NEWEST)
    except BadResultFile as exc:
        message = str(exc)
        assert case["numErrors"] or outside or name in BLENDER_REFUSES, \
            f"a file the validator finds valid is refused: {message}"


def test_the_suite_is_there() -> None:
    assert len(SUITE["cases"]) > 350
    assert sum(1 for case in SUITE["cases"].values() if not case["numErrors"]) > 100
