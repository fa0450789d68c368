"""``python build.py screenshots``: the README's pictures, taken from the real window.

    python -m tests.gui.pictures --zip dist/hitem3d_blender-X.zip [--output docs/images]

Same chroot, Xvfb and Blender as ``gui-test``; the simulator plays tasks in
every state. Each picture is cropped to what it shows and saved as PNG:

- ``sidebar-tasks.png``: the 3D Viewport with an imported model beside the task
  list (downloading, processing, queueing, failed, done), the finished task selected;
- ``sidebar-failure.png``: a failed task selected: its message and Retry;
- ``new-generation.png``: the New Generation panel (balance to Generate);
- ``preferences.png``: the add-on preferences (credentials, network);
- ``sidebar-chinese.png``: the sidebar with the interface in Simplified Chinese.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import time
from collections.abc import Sequence
from pathlib import Path

from tests.support.simulator import Hitem3DSimulator

from .runner import REPO_ROOT, guarded, say
from .scenarios import ADDON, GENERATE, Run, configure, new_task_id, select, start_import, watch_states
from .session import INSIDE, WHEEL_NOTCH_PX, Blender, Chroot

DEFAULT_OUTPUT = REPO_ROOT / "docs" / "images"


def shoot(blender: Blender, name: str, crop: dict[str, int] | None, output: Path, *, window_title: str = "") -> Path:
    """A picture of the screen (or of one window) cropped to ``crop``, saved as ``output/name.png``."""
    blender.chroot.xdotool("mousemove", 1, 1)  # no hover highlight, no tooltip
    blender.call("redraw_all()")
    time.sleep(0.8)  # software OpenGL: a redraw of the whole window takes a few hundred ms
    shot = blender.chroot.screenshot(name, crop, window_title=window_title)
    # No metadata (a date would change every picture on every run), best zlib level.
    inside = f"{INSIDE}/shots/{name}.png"
    blender.chroot.run(["convert", inside, "-strip", "-define", "png:compression-level=9", inside])
    target = output / f"{name}.png"
    shutil.copy2(shot, target)
    shot.unlink()
    say(f"saved {target.relative_to(REPO_ROOT) if target.is_relative_to(REPO_ROOT) else target}")
    return target


def bottom_of(blender: Blender, x: int, y: int) -> int:
    """The screen row just below the button at (x, y): probed down 2 px at a time."""
    inside = blender.probe_point(x, y)
    while blender.probe_point(x, y + 2) == inside:
        y += 2
    return y + 2


def below(blender: Blender, operator: str, start: int = 30) -> int:
    """How far down the sidebar a picture must reach to show this button
    whole (found by Ctrl+C, the sidebar at its top)."""
    x, y = blender.find_in_sidebar(operator, x_fraction=0.8, start=start)
    return bottom_of(blender, x, y) - blender.call("result = sidebar()")["rect"]["y"] + 6


def sidebar_crop(blender: Blender, *, height: int | None = None, left: int = 0) -> dict[str, int]:
    rect = dict(blender.call("result = sidebar()")["rect"])
    rect["x"] -= left
    rect["w"] += left
    if height is not None:
        rect["h"] = min(rect["h"], height)
    return rect


def model_glb() -> Path:
    """The model the pictures show: a smooth, textured monkey."""
    from tests.support.glb_factory import cached_glb

    return cached_glb(objects=1, subdivisions=4, texture_size=256)


def make_cover(run: Run, blender: Blender) -> Path:
    """Hitem3D's covers are pictures of the model: import it once, frame it and take one."""
    task_id = run.sim.add_task(new_task_id("Cover"), ["success"], glb=model_glb())
    start_import(blender, task_id)
    watch_states(blender, task_id, {"done"}, 60)
    blender.call("for name in ('Cube', 'Light', 'Camera'):\n"
                 "    if name in bpy.data.objects: bpy.data.objects.remove(bpy.data.objects[name])\n"
                 "with viewport_override():\n"
                 "    bpy.ops.object.select_all(action='SELECT')\n"
                 "    bpy.ops.view3d.view_selected()\n"
                 "    bpy.ops.view3d.zoom(delta=-1)\n"
                 "    bpy.ops.object.select_all(action='DESELECT')\n"
                 f"with override():\n    bpy.ops.hitem3d.remove_task(task_id={task_id!r})\n")
    area = blender.call("area, _ = view3d()\nregion = [r for r in area.regions if r.type == 'WINDOW'][0]\n"
                        "result = screen_rect(region)")
    side = min(area["w"], area["h"]) - 120
    crop = {"x": area["x"] + (area["w"] - side) // 2, "y": area["y"] + (area["h"] - side) // 2, "w": side, "h": side}
    blender.chroot.xdotool("mousemove", 5, 5)
    cover = shoot(blender, "cover", crop, run.chroot.run_dir / "home")
    blender.chroot.run(["convert", f"{INSIDE}/home/cover.png", "-resize", "256x256", f"{INSIDE}/home/cover.png"])
    return cover


def stage_tasks(run: Run, cover: Path) -> dict[str, str]:
    """Tasks in every state, held there by the simulator."""
    sim = run.sim
    ids = {
        "queueing": new_task_id("Chair"),
        "processing": new_task_id("Lamp"),
        "downloading": new_task_id("Statue"),
        "failed": new_task_id("Vase"),
        "done": new_task_id("Robot"),
    }
    sim.add_task(ids["done"], ["success"], glb=model_glb(), cover=cover)
    sim.add_task(ids["failed"], ["queueing", "failed"], cover=cover)
    sim.add_task(ids["queueing"], ["queueing"] * 10_000)
    sim.add_task(ids["processing"], [{"state": "processing", "progress": 64}] * 10_000)
    from benchmarks.assets import filler_glb

    sim.add_task(ids["downloading"], ["success"], glb=filler_glb(200_000_000), cover=cover)
    return ids


def new_generation_crop(blender: Blender) -> dict[str, int]:
    """New Generation from its header to Generate's estimate, scrolled into
    view (the sidebar is taller than the window), the statement of what
    leaves naming Hitem3D's address rather than the simulator's (the
    caller sets the simulator's back)."""
    blender.call(f"bpy.context.preferences.addons[{ADDON!r}].preferences.base_url = 'https://api.hitem3d.ai'")
    side = sidebar_crop(blender)
    y = blender.find_in_sidebar("hitem3d.refresh_balance", x_fraction=0.83)[1]
    moved = blender.scroll_sidebar(max(0, (y - side["y"] - 60) // WHEEL_NOTCH_PX))
    y = blender.find_near("hitem3d.refresh_balance", y - moved, x_fraction=0.83)[1]
    top = y - side["y"] - 40  # the panel's header
    x, y = blender.find_in_sidebar(GENERATE, origin="here", start=top + 60)
    bottom = bottom_of(blender, x, y) - side["y"] + 30  # and the estimate's line
    return {"x": side["x"], "y": side["y"] + top, "w": side["w"], "h": bottom - top}


def take(jail: Chroot, sim: Hitem3DSimulator, output: Path) -> int:
    output.mkdir(parents=True, exist_ok=True)
    run = Run(jail, sim)
    blender = run.open_window("pictures")
    configure(blender, sim, poll_s=1.0)
    # A solid sidebar (not drawn over the viewport), so its empty part can be cut away.
    blender.call("bpy.context.preferences.system.use_region_overlap = False")
    blender.open_hitem3d_tab()
    ids = stage_tasks(run, make_cover(run, blender))
    for key in ("done", "failed", "queueing", "processing"):
        start_import(blender, ids[key])
        if key in ("done", "failed"):
            watch_states(blender, ids[key], {key}, 60)
    sim.file_rate_limit = 3_000_000.0
    start_import(blender, ids["downloading"])
    watch_states(blender, ids["downloading"], {"downloading"}, 30)
    time.sleep(4)  # a few percent downloaded, so the bar shows
    jail.xdotool("mousemove", 5, 5)
    try:
        # The model framed right of the viewport's centre, beside the sidebar.
        blender.call("with viewport_override():\n"
                     "    for _ in range(2): bpy.ops.view3d.zoom(delta=-1)\n"
                     "from mathutils import Vector\n"
                     "r3d = view3d()[0].spaces.active.region_3d\n"
                     "r3d.view_location = r3d.view_location - (r3d.view_rotation @ Vector((1, 0, 0))) * r3d.view_distance * 0.42\n")
        select(blender, ids["done"])
        side = sidebar_crop(blender)
        list_end = below(blender, "hitem3d.clear_finished")
        shoot(blender, "sidebar-tasks", {"x": side["x"] - 520, "y": side["y"], "w": side["w"] + 520,
                                         "h": list_end}, output)
        select(blender, ids["failed"])
        shoot(blender, "sidebar-failure", sidebar_crop(blender, height=below(blender, "hitem3d.clear_finished")),
              output)
        shoot(blender, "new-generation", new_generation_crop(blender), output)
        configure(blender, sim, poll_s=1.0)
        blender.call("prefs = bpy.context.preferences.view\nprefs.language = 'zh_HANS'\n"
                     "prefs.use_translate_interface = True\nprefs.use_translate_tooltips = True")
        select(blender, ids["done"])
        shoot(blender, "sidebar-chinese", sidebar_crop(blender, height=below(blender, "hitem3d.clear_finished")),
              output)
        blender.call("bpy.context.preferences.view.language = 'en_US'")
        # What a user sees after typing their key (not the simulator's address).
        blender.call(f"p = bpy.context.preferences.addons[{ADDON!r}].preferences\n"
                     "p.base_url = 'https://api.hitem3d.ai'\np.client_id = 'your-client-id'\np.poll_interval = 3.0")
        rect = blender.open_preferences()
        # Down to the add-on's last button; below is empty.
        x, y = blender.find_button(rect, "hitem3d.copy_diagnostics", start=rect["h"] // 2)
        shoot(blender, "preferences", {"x": 0, "y": 0, "w": rect["w"], "h": bottom_of(blender, x, y) - rect["y"] + 8},
              output, window_title="Preferences")
    finally:
        sim.file_rate_limit = None
    blender.quit()
    return 0


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
