"""Helpers shared by the tests that run in real Blender."""

from __future__ import annotations

import sys
import threading
import time
from pathlib import Path
from types import ModuleType
from typing import Any

import bpy
import pytest

TASK_ID = "2c2ad20cb3204697ba7f80351c3e8606.jjewelry-aigc-api.1NraEb5ohU"
OTHER_ID = "9f0e1d2c3b4a59687766554433221100.jjewelry-aigc-merchant-api.Zx81QaP0"
THIRD_ID = "0123456789abcdef0123456789abcdef.jjewelry-aigc-api.Q1w2E3r4T5"


def imported_objects(task_id: str = TASK_ID) -> list[bpy.types.Object]:
    return [obj for obj in bpy.data.objects if obj.get("hitem3d_task_id") == task_id]


def run_ticks(addon: ModuleType, task_id: str, limit: int = 2000,
              until: Any = lambda rec: rec.state.is_terminal) -> Any:
    """The interactive path: call the timer callback the way Blender's event
    loop would, until the task's record satisfies ``until``."""
    for _ in range(limit):
        interval = addon.engine.timer.tick()
        rec = addon.engine.history.book().get(task_id)
        if rec is not None and until(rec):
            return rec
        assert interval is not None, "timer stopped while the task was running"
        time.sleep(0.01)
    raise AssertionError("task did not get there")


def import_error(task_id: str = TASK_ID, **kwargs: Any) -> str:
    with pytest.raises(RuntimeError) as info:
        bpy.ops.hitem3d.import_task(task_id=task_id, **kwargs)
    return str(info.value)


def record_of(addon: ModuleType, task_id: str = TASK_ID) -> Any:
    rec = addon.engine.history.book().get(task_id)
    assert rec is not None
    return rec


def threads_running_addon_code(addon: ModuleType) -> list[str]:
    """Threads of this process (Blender's) other than the main one with the
    add-on's code on their stack: there must be none (see
    docs/threads-in-blender.md). The simulator's threads run only its own code."""
    folder = str(Path(addon.__file__).resolve().parent)
    names = {thread.ident: thread.name for thread in threading.enumerate()}
    found: list[str] = []
    for ident, frame in sys._current_frames().items():
        if ident == threading.main_thread().ident:
            continue
        while frame is not None:
            if str(Path(frame.f_code.co_filename).resolve()).startswith(folder):
                found.append(names.get(ident, str(ident)))
                break
            frame = frame.f_back  # type: ignore[assignment]
    return found


def glb_downloads(sim: Any) -> int:
    return sum(1 for r in sim.requests if r.path.startswith("/files/") and r.path.endswith(".glb"))


def current_prefs() -> Any:
    """The add-on's preferences as they are now, or None while it is disabled.

    Disabling an add-on frees its preferences struct, and enabling it makes a new
    one: a reference taken before (a fixture's ``prefs``) then points at freed
    memory, and writing through it crashed bpy 5.2. A fixture that restores a
    setting after a test that may disable the add-on goes through this."""
    from tests.conftest import ADDON_MODULE

    entry = bpy.context.preferences.addons.get(ADDON_MODULE)
    return entry.preferences if entry is not None else None
