"""Helpers shared by the tests that run in real Blender."""

from __future__ import annotations

import time
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


def glb_downloads(sim: Any) -> int:
    return sum(1 for r in sim.requests if r.path.startswith("/files/") and r.path.endswith(".glb"))
