"""The Khronos glTF Validator (npm ``gltf-validator``) as an oracle: the files
our tests call valid are valid to it, and the GLB check accepts them.

The package is a dev-only tool, installed on first use under the ignored
``.cache/npm`` with the ordinary npm client; without node or npm this module
is skipped.
"""

from __future__ import annotations

import json
import shutil
import struct
import subprocess
from pathlib import Path
from typing import Any, Callable

import pytest

from hitem3d_blender.core.glb_check import check_glb, importer_extensions
from tests.core.test_glb_check import document, glb, meshopt_document, with_views
from tests.support.glb_factory import cache_dir, cached_blender_export, minimal_glb_bytes

VALIDATOR_VERSION = "2.0.0-dev.3.10"
_SCRIPT = r"""
const validator = require(process.argv[1]);
const fs = require("fs");
(async () => {
  for (const file of process.argv.slice(2)) {
    const report = await validator.validateBytes(new Uint8Array(fs.readFileSync(file)), {maxIssues: 0});
    const errors = report.issues.messages.filter(m => m.severity === 0).map(m => m.code);
    console.log(JSON.stringify({file, errors: [...new Set(errors)]}));
  }
})();
"""


@pytest.fixture(scope="module")
def validate() -> Callable[[list[Path]], dict[str, list[str]]]:
    node, npm = shutil.which("node"), shutil.which("npm")
    if not node or not npm:
        pytest.skip("node and npm are needed for the glTF Validator")
    prefix = cache_dir().parent / "npm"
    package = prefix / "node_modules" / "gltf-validator"
    if not (package / "package.json").is_file():
        result = subprocess.run([npm, "install", "--prefix", str(prefix), "--no-audit", "--no-fund",
                                 f"gltf-validator@{VALIDATOR_VERSION}"], capture_output=True, text=True, timeout=300)
        if result.returncode != 0:
            pytest.skip(f"npm could not install gltf-validator: {result.stderr[-300:]}")

    def run(paths: list[Path]) -> dict[str, list[str]]:
        output = subprocess.run([node, "-e", _SCRIPT, str(package), *map(str, paths)], capture_output=True,
                                text=True, timeout=600, check=True).stdout
        return {Path(line["file"]).name: line["errors"] for line in map(json.loads, output.splitlines())}

    return run


def bounded(doc: dict[str, Any]) -> dict[str, Any]:
    """``doc`` with the POSITION accessor's bounds the validator requires."""
    doc["accessors"][0].update({"min": [0.0, 0.0, 0.0], "max": [1.0, 1.0, 0.0]})
    return doc


def synthetic_valid_files() -> dict[str, bytes]:
    vertices = 127_000
    views, binary = with_views(bytes(12 * vertices), struct.pack("<I", 7), struct.pack("<3f", 0.1, 0.2, 0.3))
    sparse = {"count": 1, "indices": {"bufferView": 1, "componentType": 5125}, "values": {"bufferView": 2}}
    zero = {"min": [0.0, 0.0, 0.0], "max": [0.0, 0.0, 0.0]}
    key = {"componentType": 5126, "count": vertices, "type": "VEC3", "sparse": sparse,
           "min": [0.0, 0.0, 0.0], "max": [0.1, 0.2, 0.3]}
    keys = glb(document(
        bufferViews=views, buffers=[{"byteLength": len(binary)}],
        accessors=[{"bufferView": 0, "componentType": 5126, "count": vertices, "type": "VEC3", **zero}, *[key] * 52],
        meshes=[{"primitives": [{"attributes": {"POSITION": 0},
                                 "targets": [{"POSITION": 1 + index} for index in range(52)]}]}]), binary)
    meshopt, meshopt_binary = meshopt_document()
    return {"minimal.glb": minimal_glb_bytes(), "triangle.glb": glb(bounded(document())),
            "sparse-shape-keys.glb": keys, "meshopt.glb": glb(bounded(meshopt), meshopt_binary)}


@pytest.mark.slow
def test_the_files_our_tests_call_valid_are_valid_and_accepted(tmp_path: Path,
                                                               validate: Callable[[list[Path]], Any]) -> None:
    paths = []
    for name, data in synthetic_valid_files().items():
        paths.append(tmp_path / name)
        paths[-1].write_bytes(data)
    for params in ({"kind": "draco", "faces": 200_000, "level": 6}, {"kind": "shape_keys", "keys": 52},
                   {"kind": "textures", "count": 4, "size": 8192}):
        paths.append(cached_blender_export(**params))
    errors = validate(paths)
    assert errors == {path.name: [] for path in paths}
    for path in paths:
        check_glb(path, importer=importer_extensions((5, 3)))
