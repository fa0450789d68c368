"""What Blender pays to import a GLB at each limit of ``core.glb_check.GlbLimits``.

    python -m benchmarks.glb_limits [--scale 0.25] [--only NAME ...]

Each case is built at ``scale`` times its limit (1.0: exactly at it, which the
check accepts), checked with ``check_glb`` (its time and peak memory), then
imported by Blender's own glTF importer in a fresh Python with bpy (its wall
time and peak RSS). One JSON object on stdout, progress on stderr. Prints
numbers; it is not a test.
"""

from __future__ import annotations

import argparse
import json
import struct
import subprocess
import sys
import tempfile
import time
import tracemalloc
from pathlib import Path
from typing import Any, Callable

from hitem3d_blender.core.glb_check import DEFAULT_LIMITS, check_glb
from tests.core.test_glb_check import POSITIONS, document, glb, with_views

_IMPORT = r"""
import json, resource, sys, time
import bpy
bpy.ops.wm.read_factory_settings(use_empty=True)
start = time.perf_counter()
result = bpy.ops.import_scene.gltf(filepath=sys.argv[1])
seconds = time.perf_counter() - start
print(json.dumps({"import_s": round(seconds, 1), "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024,
                  "objects": len(bpy.data.objects), "meshes": len(bpy.data.meshes), "result": sorted(result)}))
sys.stdout.flush()
import os; os._exit(0)
"""


def objects(scale: float) -> bytes:
    count = int(DEFAULT_LIMITS.max_objects * scale)
    return glb(document(nodes=[{"mesh": 0}] * count, scenes=[{"nodes": list(range(count))}]))


def meshes(scale: float) -> bytes:
    count = int(DEFAULT_LIMITS.max_meshes * scale)
    return glb(document(meshes=[{"primitives": [{"attributes": {"POSITION": 0}}]}] * count,
                        nodes=[{"mesh": index} for index in range(count)], scenes=[{"nodes": list(range(count))}]))


def keyframes(scale: float) -> bytes:
    keys, channels = 100_000, max(1, int(DEFAULT_LIMITS.max_keyframes * scale) // 300_000)
    times = struct.pack("<f", 0.0) + b"".join(struct.pack("<f", index / 30) for index in range(1, keys))
    values = bytes(12 * keys)
    views, binary = with_views(POSITIONS, times, values)
    return glb(document(
        bufferViews=views, buffers=[{"byteLength": len(binary)}],
        accessors=[document()["accessors"][0],
                   {"bufferView": 1, "componentType": 5126, "count": keys, "type": "SCALAR"},
                   {"bufferView": 2, "componentType": 5126, "count": keys, "type": "VEC3"}],
        nodes=[{"mesh": 0}] + [{} for _ in range(channels)], scenes=[{"nodes": list(range(channels + 1))}],
        animations=[{"samplers": [{"input": 1, "output": 2}],
                     "channels": [{"sampler": 0, "target": {"node": 1 + index, "path": "translation"}}
                                  for index in range(channels)]}]), binary)


def shape_keys(scale: float) -> bytes:
    vertices, keys = 240_000, max(1, int(DEFAULT_LIMITS.max_shape_key_vertices * scale) // 240_000)
    views, binary = with_views(bytes(12 * vertices))
    return glb(document(bufferViews=views, buffers=[{"byteLength": len(binary)}],
                        accessors=[{"bufferView": 0, "componentType": 5126, "count": vertices, "type": "VEC3"}],
                        meshes=[{"primitives": [{"attributes": {"POSITION": 0},
                                                 "targets": [{"POSITION": 0}] * keys}]}]), binary)


def materials(scale: float) -> bytes:
    count = int(DEFAULT_LIMITS.max_materials * scale)
    return glb(document(materials=[{"name": f"M{index}"} for index in range(count)],
                        meshes=[{"primitives": [{"attributes": {"POSITION": 0}, "material": index}
                                                for index in range(count)]}]))


def primitives(scale: float) -> bytes:
    count = int(DEFAULT_LIMITS.max_primitives * scale)
    return glb(document(meshes=[{"primitives": [{"attributes": {"POSITION": 0}}] * count}]))


CASES: dict[str, Callable[[float], bytes]] = {"primitives": primitives, "objects": objects, "meshes": meshes, "keyframes": keyframes,
                                              "shape_key_vertices": shape_keys, "materials": materials}


def run(name: str, scale: float, folder: Path) -> dict[str, Any]:
    path = folder / f"{name}.glb"
    path.write_bytes(CASES[name](scale))
    tracemalloc.start()
    started = time.perf_counter()
    try:
        check_glb(path)
        verdict = "accepted"
    except Exception as exc:  # noqa: BLE001 - a figure, whatever the outcome
        verdict = str(exc)
    check_s = time.perf_counter() - started
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    figures: dict[str, Any] = {"limit": getattr(DEFAULT_LIMITS, f"max_{name}"), "scale": scale,
                               "file_mb": round(path.stat().st_size / 1e6, 1), "check": verdict,
                               "check_s": round(check_s, 2), "check_peak_mb": round(peak / 1e6, 1)}
    print(f"{name}: importing {figures['file_mb']} MB in Blender...", file=sys.stderr)
    result = subprocess.run([sys.executable, "-c", _IMPORT, str(path)], capture_output=True, text=True, timeout=3600)
    lines = [line for line in result.stdout.splitlines() if line.startswith("{")]
    figures.update(json.loads(lines[-1]) if lines else {"import_error": result.stderr[-500:]})
    return figures


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scale", type=float, default=1.0)
    parser.add_argument("--only", nargs="*", choices=sorted(CASES), default=sorted(CASES))
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="hitem3d-glb-limits-") as folder:
        print(json.dumps({name: run(name, args.scale, Path(folder)) for name in args.only}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
