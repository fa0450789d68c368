"""Texture Selection's export: Blender's glTF exporter with the add-on's own
options, timed on the main thread for meshes of growing size, beside the
200 MB upload limit; and the estimate made before it (``least_glb_bytes``),
which refuses a selection over the limit without exporting it.

    .venv/bin/python -m benchmarks.mesh_export_bench [TRIANGLES ...]

Prints one JSON object. The export runs on Blender's main thread (only it may
touch ``bpy``), like File > Export; these figures say how long it holds it.
"""

from __future__ import annotations

import contextlib
import json
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import bpy

from hitem3d_blender.scene import mesh_export
from hitem3d_blender.core.mesh_files import MAX_MESH_BYTES

DEFAULT_SIZES = (200_000, 1_000_000, 2_000_000)
MB = 1_000_000  # Hitem3D's megabytes are decimal: the limit's unit and the messages'


def grid(triangles: int) -> bpy.types.Object:
    """A flat grid of about ``triangles`` triangles (n x n quads), selected and active."""
    side = max(1, int((triangles / 2) ** 0.5))
    bpy.ops.wm.read_factory_settings(use_empty=True)
    bpy.ops.mesh.primitive_grid_add(x_subdivisions=side, y_subdivisions=side, size=2.0)
    obj = bpy.context.active_object
    assert obj is not None
    return obj


def measure(triangles: int, folder: Path) -> dict[str, Any]:
    obj = grid(triangles)
    mesh: Any = obj.data
    made = sum(len(polygon.vertices) - 2 for polygon in mesh.polygons)
    path = folder / f"grid-{triangles}.glb"
    started = time.perf_counter()
    least, _ = mesh_export.least_glb_bytes([obj], bpy.context)
    estimate_s = time.perf_counter() - started
    # NOTE: the exporter prints progress to stdout, which carries the JSON.
    with contextlib.redirect_stdout(sys.stderr):
        started = time.perf_counter()
        mesh_export.run_exporter(mesh_export.exporter_options(path))
        seconds = time.perf_counter() - started
    size = path.stat().st_size
    mb = size / MB
    return {"triangles": made, "export_s": round(seconds, 3), "file_mb": round(mb, 1),
            "s_per_million": round(seconds / made * 1e6, 3), "mb_per_million": round(mb / made * 1e6, 1),
            # What the artist waits for a refusal when the estimate is over the limit, and how
            # close the estimate (a lower bound) comes to the file.
            "estimate_ms": round(estimate_s * 1000, 2), "estimate_mb": round(least / MB, 1),
            "estimate_share": round(least / size, 2)}


def main(argv: list[str]) -> int:
    sizes = [int(arg) for arg in argv] or list(DEFAULT_SIZES)
    with tempfile.TemporaryDirectory() as folder:
        rows = [measure(size, Path(folder)) for size in sizes]
    per_million = max(row["mb_per_million"] for row in rows)
    report = {
        "mesh_export": rows,
        "limit_mb": MAX_MESH_BYTES // MB,
        # Where a selection like these reaches the upload limit.
        "triangles_at_limit_millions": round(MAX_MESH_BYTES / MB / per_million, 1),
        "blender": bpy.app.version_string,
    }
    print(json.dumps(report, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
