"""``python build.py screenshots``: the README's pictures, taken from the real window.

    python -m tests.gui.pictures --zip dist/hitem3d_blender-X.zip [--output docs/images]

Same chroot, Xvfb and Blender as ``gui-test``; the simulator plays tasks in
every state. Each picture is cropped to what it shows and saved as PNG:

- ``sidebar-tasks.png``: the 3D Viewport with an imported model and the task
  list (queueing, processing, downloading, done, failed), a finished task selected;
- ``sidebar-failure.png``: a failed task selected: its message and Retry;
- ``new-generation.png``: the New Generation panel;
- ``preferences.png``: the add-on preferences (credentials, network);
- ``sidebar-chinese.png``: the sidebar with the interface in Simplified Chinese.
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path

from tests.simulator import Hitem3DSimulator

from .runner import REPO_ROOT, guarded, say
from .scenarios import ADDON, Run, configure, new_task_id, select, watch_states
from .session import INSIDE, Blender, Chroot

DEFAULT_OUTPUT = REPO_ROOT / "docs" / "images"


def shoot(blender: Blender, name: str, crop: dict[str, int], output: Path, *, trim: bool = False) -> Path:
    blender.call("redraw_all()")
    time.sleep(0.8)  # software OpenGL: a redraw of the whole window takes a few hundred ms
    shot = blender.chroot.screenshot(name, crop)
    if trim:
        # Cut the empty sidebar below the panels (the region's background colour).
        inside = f"{INSIDE}/shots/{name}.png"
        blender.chroot.run(["convert", inside, "-gravity", "South", "-background", "none",
                            "-bordercolor", "none", "-fuzz", "2%", "-trim", "+repage", inside])
    target = output / f"{name}.png"
    shutil.copy2(shot, target)
    blender.chroot.run(["rm", "-f", f"{INSIDE}/shots/{name}.png"])
    say(f"saved {target.relative_to(REPO_ROOT) if target.is_relative_to(REPO_ROOT) else target}")
    return target


def sidebar_crop(blender: Blender, *, height: int | None = None, left: int = 0) -> dict[str, int]:
    rect = dict(blender.call("result = sidebar()")["rect"])
    rect["x"] -= left
    rect["w"] += left
    if height is not None:
        rect["h"] = min(rect["h"], height)
    return rect


def stage_tasks(run: Run) -> dict[str, str]:
    """Tasks in every state, held there by the simulator."""
    from tests.glb_factory import cached_glb, cached_webp

    sim = run.sim
    cover = cached_webp(size=128)
    ids = {
        "queueing": new_task_id("Chair"),
        "processing": new_task_id("Lamp"),
        "downloading": new_task_id("Statue"),
        "failed": new_task_id("Vase"),
        "done": new_task_id("Robot"),
    }
    sim.add_task(ids["done"], ["success"], glb=cached_glb(objects=1, subdivisions=4, texture_size=256), cover=cover)
    sim.add_task(ids["failed"], ["queueing", "failed"], cover=cover)
    sim.add_task(ids["queueing"], ["queueing"] * 10_000)
    sim.add_task(ids["processing"], [{"state": "processing", "progress": 64}] * 10_000)
    from benchmarks.assets import filler_glb

    sim.add_task(ids["downloading"], ["success"], glb=filler_glb(200_000_000), cover=cover)
    return ids


def take(jail: Chroot, sim: Hitem3DSimulator, output: Path) -> int:
    output.mkdir(parents=True, exist_ok=True)
    run = Run(jail, sim)
    blender = run.open_window("pictures")
    configure(blender, sim, poll_s=1.0)
    blender.open_hitem3d_tab()
    ids = stage_tasks(run)
    for key in ("done", "failed", "queueing", "processing"):
        blender.call(f"with override():\n    bpy.ops.hitem3d.import_task(task_id={ids[key]!r})")
        if key in ("done", "failed"):
            watch_states(blender, ids[key], {key}, 60)
    sim.file_rate_limit = 3_000_000.0
    blender.call(f"with override():\n    bpy.ops.hitem3d.import_task(task_id={ids['downloading']!r})")
    watch_states(blender, ids["downloading"], {"downloading"}, 30)
    time.sleep(4)  # a few percent downloaded, so the bar shows
    jail.xdotool("mousemove", 5, 5)
    try:
        # The model framed in the viewport, the sidebar beside it.
        blender.call("with override():\n"
                     "    bpy.ops.object.select_all(action='DESELECT')\n"
                     "    for name in ('Cube', 'Light', 'Camera'):\n"
                     "        if name in bpy.data.objects: bpy.data.objects.remove(bpy.data.objects[name])\n"
                     "    bpy.ops.view3d.view_all(center=False)\n")
        select(blender, ids["done"])
        side = sidebar_crop(blender)
        shoot(blender, "sidebar-tasks", {"x": side["x"] - 560, "y": side["y"], "w": side["w"] + 560,
                                         "h": min(side["h"], 720)}, output)
        select(blender, ids["failed"])
        shoot(blender, "sidebar-failure", sidebar_crop(blender), output, trim=True)
        select(blender, ids["downloading"])
        shoot(blender, "sidebar-downloading", sidebar_crop(blender), output, trim=True)
        shoot(blender, "new-generation", sidebar_crop(blender), output, trim=True)
        blender.call("prefs = bpy.context.preferences.view\nprefs.language = 'zh_HANS'\n"
                     "prefs.use_translate_interface = True\nprefs.use_translate_tooltips = True")
        select(blender, ids["done"])
        shoot(blender, "sidebar-chinese", sidebar_crop(blender), output, trim=True)
        blender.call("bpy.context.preferences.view.language = 'en_US'")
        crop = blender.call("result = show_preferences()")
        shoot(blender, "preferences", crop, output, trim=True)
        blender.call("show_viewport()")
    finally:
        sim.file_rate_limit = None
    blender.quit()
    for path in sorted(output.glob("*.png")):
        optimise(path)
    return 0


def optimise(path: Path) -> None:
    """Smaller PNGs: 256 colours are plenty for a flat interface (when pngquant-like tools are absent, as is)."""
    if shutil.which("optipng"):
        subprocess.run(["optipng", "-quiet", "-o2", str(path)], check=False)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.gui.pictures", description=__doc__.split("\n\n")[0])
    parser.add_argument("--zip", type=Path, required=True)
    parser.add_argument("--output", type=Path, default=DEFAULT_OUTPUT)
    args = parser.parse_args(sys.argv[1:] if argv is None else argv)
    output: Path = args.output.resolve()

    def work(jail: Chroot, sim: Hitem3DSimulator) -> int:
        return take(jail, sim, output)

    return guarded(work, args.zip, None)


if __name__ == "__main__":
    sys.exit(main())
