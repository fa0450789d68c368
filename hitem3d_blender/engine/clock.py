"""The engine's one Blender timer: started when work comes in, stopped at shutdown.

``ui.session`` installs ``timer.tick`` here when it connects the engine;
``control`` starts the clock without importing ``timer``, which itself starts
the work that resumes after a restart (``control.resume_unfinished``): so the
two never import each other.
"""

from __future__ import annotations

from typing import Callable

import bpy

# How soon the first tick comes after the clock starts.
FIRST_INTERVAL_S = 0.1

_installed: list[Callable[[], float | None]] = []


def install(tick: Callable[[], float | None]) -> None:
    """The function Blender calls; the engine's ``timer.tick``."""
    _installed[:] = [tick]


def _tick() -> Callable[[], float | None]:
    if not _installed:
        raise RuntimeError("engine.timer is not imported: nothing to tick")
    return _installed[0]


def start() -> None:
    """Make sure the timer runs (it ends itself when nothing is left to do)."""
    tick = _tick()
    if not bpy.app.timers.is_registered(tick):
        bpy.app.timers.register(tick, first_interval=FIRST_INTERVAL_S, persistent=True)


def stop() -> None:
    if _installed and bpy.app.timers.is_registered(_installed[0]):
        bpy.app.timers.unregister(_installed[0])
