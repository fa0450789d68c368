"""Hitem3D for Blender: import Hitem3D image-to-3D results into the scene.

This module only registers. The logic lives in ``core`` (plain Python, no
``bpy``); the Blender layer is one small module per concern.

NOTE: the Blender modules are imported inside ``register`` so that importing
``hitem3d_blender.core`` (tests, tools) never pulls in ``bpy``.
"""

from __future__ import annotations

import atexit
import logging
from types import ModuleType
from typing import Any

log = logging.getLogger(__package__)


def _modules() -> tuple[ModuleType, ...]:
    from . import operators, panels, preferences, properties

    return (properties, preferences, operators, panels)


def _on_load_post(*_args: Any) -> None:
    from . import bridge

    bridge.on_file_loaded()


def _at_exit() -> None:
    # Quitting Blender does not call unregister(): stop workers and the timer
    # here so nothing runs (or hangs the interpreter) after the scene is gone.
    from . import bridge

    bridge.shutdown()


_handlers: list[logging.Handler] = []


def register() -> None:
    import bpy

    from . import bridge
    from .core.logs import install_console_handler

    _handlers.append(install_console_handler(log))

    for module in _modules():
        for cls in module.classes:
            bpy.utils.register_class(cls)
        if hasattr(module, "register"):
            module.register()
    try:
        bridge.remove_partial_files()
    except OSError:
        log.warning("Could not clean partial downloads", exc_info=True)
    # Tasks keep running across File > Open / New: only the UI list is redone.
    bpy.app.handlers.load_post.append(bpy.app.handlers.persistent(_on_load_post))
    bridge.book()  # read the journal: history shows, unfinished tasks resume
    atexit.register(_at_exit)


def unregister() -> None:
    import bpy

    from . import bridge

    # Timers and workers first: they call into classes that are about to go.
    atexit.unregister(_at_exit)
    bridge.shutdown()
    if _on_load_post in bpy.app.handlers.load_post:
        bpy.app.handlers.load_post.remove(_on_load_post)
    for module in reversed(_modules()):
        if hasattr(module, "unregister"):
            module.unregister()
        for cls in reversed(module.classes):
            bpy.utils.unregister_class(cls)
    while _handlers:
        log.removeHandler(_handlers.pop())
