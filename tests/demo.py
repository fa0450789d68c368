"""A demo that needs no Hitem3D account: ``python build.py demo``.

Starts the local Hitem3D simulator, installs the built extension zip into an
isolated headless Blender, imports a sample task the way a script would, saves
``dist/demo.blend`` and prints what it imported.
"""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
DIST = REPO_ROOT / "dist"
ADDON_MODULE = "bl_ext.user_default.hitem3d_blender"
SAMPLE_TASK_ID = "2c2ad20cb3204697ba7f80351c3e8606.jjewelry-aigc-api.1NraEb5ohU"


def _zip_path() -> Path:
    given = os.environ.get("HITEM3D_EXTENSION_ZIP")
    if given:
        return Path(given)
    sys.path.insert(0, str(REPO_ROOT))
    import build

    existing = DIST / build.zip_name()
    return existing if existing.is_file() else build.build_zip(DIST)


def main() -> int:
    # Never touch the user's own Blender configuration.
    user_dir = tempfile.mkdtemp(prefix="hitem3d-demo-user-")
    os.environ["BLENDER_USER_RESOURCES"] = user_dir
    zip_path = _zip_path()

    from tests.support.glb_factory import cached_glb
    from tests.support.simulator import Hitem3DSimulator

    sample = cached_glb(objects=2, subdivisions=3, texture_size=256)

    import bpy

    bpy.context.preferences.system.use_online_access = True
    bpy.ops.extensions.package_install_files(repo="user_default", filepath=str(zip_path),
                                             enable_on_install=True)
    bpy.ops.wm.read_homefile(use_empty=True)
    with Hitem3DSimulator() as sim:
        sim.add_task(SAMPLE_TASK_ID, ["queueing", {"state": "processing", "progress": 60}, "success"], glb=sample)
        prefs = bpy.context.preferences.addons[ADDON_MODULE].preferences
        prefs.base_url = sim.base_url
        prefs.client_id = sim.client_id
        prefs.client_secret = sim.client_secret
        prefs.poll_interval = 0.5
        print(f"demo: simulator at {sim.base_url}; importing task {SAMPLE_TASK_ID}")
        bpy.ops.hitem3d.import_task(task_id=SAMPLE_TASK_ID)
        steps = [f"{r.method} {r.path}" for r in sim.requests]

    imported = [obj for obj in bpy.data.objects if obj.get("hitem3d_task_id") == SAMPLE_TASK_ID]
    DIST.mkdir(exist_ok=True)
    out = DIST / "demo.blend"
    bpy.ops.wm.save_as_mainfile(filepath=str(out))
    print("demo: requests made:", *steps, sep="\n  ")
    print(f"demo: imported {len(imported)} object(s):")
    for obj in imported:
        mesh = obj.data if obj.type == "MESH" else None
        faces = len(mesh.polygons) if mesh is not None else 0
        materials = ", ".join(slot.material.name for slot in obj.material_slots if slot.material)
        print(f"  {obj.name}: {obj.type}, {faces} faces, materials: {materials or 'none'},"
              f" selected={obj.select_get()}")
    print(f"demo: saved {out}")
    import addon_utils

    addon_utils.disable(ADDON_MODULE, default_set=True)
    shutil.rmtree(user_dir, ignore_errors=True)
    return 0 if imported else 1


if __name__ == "__main__":
    sys.exit(main())
