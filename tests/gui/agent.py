"""Runs inside the real Blender window (``blender --python agent.py``).

The test runner on the host drives the window with real X input (xdotool) and
asks this agent what Blender shows. Requests are files: the host writes
``<channel>/in/<n>.json`` holding Python source; a Blender timer (Blender's own
event loop, the thing the ``bpy`` module lacks) runs it on the main thread with
the helpers below in scope and writes ``<channel>/out/<n>.json`` with the value
of ``result`` or the error. Nothing here waits: a check that needs time is the
host polling again.

The probe (``probe_start``/``probe_stop``) measures responsiveness where it
happens: a 10 ms timer records the gaps between its calls (how long the main
loop was busy) and draw handlers count the redraws of each region type.
"""

from __future__ import annotations

import json
import os
import sys
import time
import traceback
from pathlib import Path
from typing import Any

import bpy

CHANNEL = Path(os.environ["HITEM3D_GUI_CHANNEL"])
ADDON = "bl_ext.user_default.hitem3d_blender"
POLL_S = 0.02

# ---------------------------------------------------------------- helpers for requests


def ctx() -> Any:
    """bpy.context, untyped: the stubs know less than Blender 4.3 has."""
    return bpy.context


def addon() -> Any:
    return sys.modules.get(ADDON)


def submodule(name: str) -> Any:
    """A module of the enabled extension (imported if no one has yet), or None when disabled."""
    if ADDON not in sys.modules:
        return None
    import importlib

    return importlib.import_module(f"{ADDON}.{name}")


def window() -> Any:
    return ctx().window_manager.windows[0]


def view3d() -> tuple[Any, Any]:
    """The first 3D viewport of the main window and its sidebar region."""
    for area in window().screen.areas:
        if area.type == "VIEW_3D":
            for region in area.regions:
                if region.type == "UI":
                    return area, region
    raise LookupError("no 3D viewport")


def screen_rect(region: Any) -> dict[str, int]:
    """A region in X screen pixels (top-left origin); Blender counts from the bottom left."""
    win = window()
    return {"x": region.x, "y": win.height - region.y - region.height, "w": region.width, "h": region.height}


def open_sidebar() -> dict[str, Any]:
    area, _ = view3d()
    area.spaces.active.show_region_ui = True
    area.tag_redraw()
    _, region = view3d()
    return {"rect": screen_rect(region), "category": region.active_panel_category}


def sidebar() -> dict[str, Any]:
    _, region = view3d()
    return {"rect": screen_rect(region), "category": region.active_panel_category,
            "window": [window().width, window().height]}


def show_preferences_window() -> dict[str, int]:
    """Edit > Preferences in its own window, at Add-ons with Hitem3D expanded; its rect on screen."""
    import addon_utils

    with ctx().temp_override(window=window()):
        bpy.ops.screen.userpref_show(section="ADDONS")
    ctx().window_manager.addon_search = "Hitem3D"
    for module in getattr(addon_utils, "modules")(refresh=False):
        if module.__name__ == ADDON:
            info: Any = getattr(addon_utils, "module_bl_info")(module)
            info["show_expanded"] = True
    prefs = ctx().window_manager.windows[-1]
    for area in prefs.screen.areas:
        area.tag_redraw()
    main = window()
    return {"x": prefs.x, "y": main.height - prefs.y - prefs.height, "w": prefs.width, "h": prefs.height}


def viewport_override() -> Any:
    """The 3D viewport's main region, for view operators."""
    area, _ = view3d()
    region = [r for r in area.regions if r.type == "WINDOW"][0]
    return ctx().temp_override(window=window(), area=area, region=region)


def override() -> Any:
    area, region = view3d()
    return ctx().temp_override(window=window(), area=area, region=region)


def wm_state() -> Any:
    return ctx().window_manager.hitem3d


def tasks() -> list[dict[str, Any]]:
    """What the task list holds, as the bridge knows it."""
    history = submodule("engine.history")
    out = []
    for item in wm_state().tasks:
        rec = history.record(item.task_id) if history else None
        out.append({
            "task_id": item.task_id,
            "state": rec.state.value if rec else None,
            "message": str(rec.message) if rec else "",
            "progress": rec.progress if rec else None,
            "objects": list(rec.imported_objects) if rec else [],
        })
    return out


def objects() -> list[str]:
    return sorted(obj.name for obj in bpy.data.objects)


def redraw_all() -> None:
    for area in window().screen.areas:
        area.tag_redraw()


# ---------------------------------------------------------------- the sidebar drawn anew

_sidebar_draws: dict[str, Any] = {"handle": None, "count": 0}


def _sidebar_drawn() -> None:
    _sidebar_draws["count"] += 1


def sidebar_draws_watch() -> None:
    """Count the sidebar's draws from now (and ask for one): after a scroll,
    the buttons are where the host probes once it was drawn there. Only while
    waiting, so the probe's figures never include it."""
    if _sidebar_draws["handle"] is None:
        _sidebar_draws["handle"] = bpy.types.SpaceView3D.draw_handler_add(_sidebar_drawn, (), "UI", "POST_PIXEL")
    _sidebar_draws["count"] = 0
    view3d()[0].tag_redraw()


def sidebar_draws_unwatch() -> int:
    handle, _sidebar_draws["handle"] = _sidebar_draws["handle"], None
    if handle is not None:
        bpy.types.SpaceView3D.draw_handler_remove(handle, "UI")
    return int(_sidebar_draws["count"])


def threads() -> list[str]:
    import threading

    return sorted(t.name for t in threading.enumerate() if t is not threading.main_thread())


def worker_pid() -> int | None:
    """The add-on's worker process (its workers never run in Blender's), if it has one."""
    state = submodule("engine.state")
    runner = state.current.runner if state is not None else None
    return runner.pid if runner is not None else None


# ---------------------------------------------------------------- the probe

_probe: dict[str, Any] = {"on": False}
_handlers: list[tuple[Any, Any, str]] = []

# The spaces a default window shows, and the regions we count in each.
PROBED = {
    "SpaceView3D": ("WINDOW", "UI", "HEADER", "TOOLS"),
    "SpaceOutliner": ("WINDOW",),
    "SpaceProperties": ("WINDOW",),
    "SpaceDopeSheetEditor": ("WINDOW",),
    "SpacePreferences": ("WINDOW",),
}


def _count(key: str) -> None:
    if _probe["on"]:
        _probe["draws"][key] = _probe["draws"].get(key, 0) + 1
        _probe["times"].setdefault(key, []).append(time.perf_counter())


def _our_draw_functions() -> list[tuple[type, str]]:
    """The draw functions of the extension's panels: what our own code costs
    in a redraw (a list's rows are drawn inside its panel's draw)."""
    found = []
    for cls in bpy.types.Panel.__subclasses__():
        if cls.__module__.startswith(ADDON):
            found.extend((cls, name) for name in ("draw", "draw_header") if name in cls.__dict__)
    return found


def _timed(cls: type, name: str, function: Any) -> Any:
    key = f"{cls.__name__}.{name}"

    # NOTE: the same parameters as the panel's own: Blender reads a Python
    # function's argument count to call it (a *args wrapper is called wrongly).
    def timed(self: Any, context: Any) -> Any:
        started = time.perf_counter_ns()
        try:
            return function(self, context)
        finally:
            if _probe["on"]:
                spent = _probe["draw_ns"].setdefault(key, [0, 0])
                spent[0] += time.perf_counter_ns() - started
                spent[1] += 1

    timed.__wrapped__ = function  # type: ignore[attr-defined]
    return timed


def _time_our_draws() -> None:
    """Wrap our panels' draw functions once (Blender looks them up on the class at each call)."""
    for cls, name in _our_draw_functions():
        function = cls.__dict__[name]
        if not hasattr(function, "__wrapped__"):
            setattr(cls, name, _timed(cls, name, function))


def _note_our_tags() -> None:
    """Note when the extension tags regions for a redraw (``ui_sync._redraw_now``),
    so a sidebar redraw it did not ask for shows as Blender's own."""
    module = sys.modules.get(f"{ADDON}.ui.ui_sync")
    function = getattr(module, "_redraw_now", None)
    if function is None or hasattr(function, "__wrapped__"):
        return

    def noted(clock: float) -> Any:
        if _probe["on"]:
            _probe["tags"].append(time.perf_counter())
        return function(clock)

    noted.__wrapped__ = function  # type: ignore[attr-defined]
    noted.__module__ = function.__module__  # switched off with the rest (probe.REDRAWS_OFF)
    setattr(module, "_redraw_now", noted)


def _tick() -> float | None:
    if not _probe["on"]:
        return None
    now = time.perf_counter()
    _probe["gaps"].append(now - _probe["last"])
    _probe["last"] = now
    return 0.01


def probe_start() -> None:
    """Count from now: gaps between 10 ms timer calls, and draws per region."""
    if not _handlers:
        for space_name, regions in PROBED.items():
            space = getattr(bpy.types, space_name)
            for region_type in regions:
                key = f"{space_name}.{region_type}"
                handle = space.draw_handler_add(_count, (key,), region_type, "POST_PIXEL")
                _handlers.append((space, handle, region_type))
    _time_our_draws()
    _note_our_tags()
    _probe.update(on=True, gaps=[], draws={}, times={}, tags=[], draw_ns={}, last=time.perf_counter(),
                  started=time.perf_counter())
    bpy.app.timers.register(_tick, first_interval=0.01)


def probe_stop() -> dict[str, Any]:
    _probe["on"] = False
    return {"gaps": _probe.get("gaps", []), "draws": dict(_probe.get("draws", {})),
            "times": {key: list(value) for key, value in _probe.get("times", {}).items()},
            "tags": list(_probe.get("tags", [])),
            "draw_ns": {key: list(value) for key, value in _probe.get("draw_ns", {}).items()},
            "seconds": time.perf_counter() - _probe.get("started", time.perf_counter())}


# ---------------------------------------------------------------- the channel

_namespace: dict[str, Any] = {}


def _answer(path: Path) -> None:
    name = path.name
    try:
        request = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return  # still being written: next tick
    path.unlink()
    scope = dict(globals())
    scope.update(_namespace)
    scope["result"] = None
    reply: dict[str, Any]
    try:
        exec(compile(request["code"], f"<request {name}>", "exec"), scope)  # noqa: S102 - the test driver
        reply = {"ok": True, "result": scope.get("result")}
        for key in request.get("keep", ()):
            _namespace[key] = scope.get(key)
    except BaseException:  # noqa: BLE001 - the host shows the traceback
        reply = {"ok": False, "error": traceback.format_exc()}
    target = CHANNEL / "out" / name
    tmp = target.with_suffix(".tmp")
    tmp.write_text(json.dumps(reply, default=repr), encoding="utf-8")
    tmp.replace(target)


def _poll() -> float:
    inbox = CHANNEL / "in"
    for path in sorted(inbox.glob("*.json")):
        _answer(path)
    return POLL_S


def _start() -> None:
    (CHANNEL / "out").mkdir(parents=True, exist_ok=True)
    (CHANNEL / "in").mkdir(parents=True, exist_ok=True)
    bpy.app.timers.register(_poll, first_interval=0.2, persistent=True)
    (CHANNEL / "agent-loaded").write_text(str(os.getpid()), encoding="utf-8")


_start()
