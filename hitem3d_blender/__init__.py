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
    from .ui import (
        generate,
        generation_settings,
        kinds_ui,
        operators,
        panels,
        picture_input,
        preferences,
        properties,
        spending,
        texture_selection,
    )

    return (properties, preferences, operators, panels, generation_settings, generate, kinds_ui, texture_selection,
            picture_input, spending)


def _on_load_post(*_args: Any) -> None:
    from .ui import ui_sync

    ui_sync.on_file_loaded()


def _on_save_pre(*_args: Any) -> None:
    from .scene import save_scrub

    try:
        save_scrub.scrub_before_save()
    except Exception:  # noqa: BLE001 - a save must never fail for this
        log.warning("Could not clear freed memory from packed images before saving", exc_info=True)


def _at_exit() -> None:
    # Quitting Blender does not call unregister(): stop workers and the timer
    # here so nothing runs (or hangs the interpreter) after the scene is gone.
    from .ui import session

    session.shutdown()


_handlers: list[logging.Handler] = []
_cli_commands: list[Any] = []  # handles from bpy.utils.register_cli_command


def register() -> None:
    import bpy

    from .ui import diagnostics, session
    from .i18n import translations
    from .engine import ownership
    from .core.logs import install_console_handler, install_file_handler

    from .ui import ui_sync

    _handlers.append(install_console_handler(log))
    _handlers[-1].addFilter(ui_sync.not_in_info_log)
    try:
        _handlers.append(install_file_handler(log, diagnostics.log_path()))
    except OSError:
        log.warning("Could not open the Hitem3D log file", exc_info=True)
    log.addHandler(diagnostics.recent_problems)
    _handlers.append(diagnostics.recent_problems)

    translations.register()
    for module in _modules():
        for cls in module.classes:
            bpy.utils.register_class(cls)
        if hasattr(module, "register"):
            module.register()
    try:
        ownership.remove_partial_files()
    except OSError:
        log.warning("Could not clean partial downloads", exc_info=True)
    # Tasks keep running across File > Open / New: only the UI list is redone.
    bpy.app.handlers.load_post.append(bpy.app.handlers.persistent(_on_load_post))
    # Freed memory of this process never goes into a saved file (scene/save_scrub.py).
    bpy.app.handlers.save_pre.append(bpy.app.handlers.persistent(_on_save_pre))
    session.connect()  # the engine's hooks; the journal is read: history shows, unfinished tasks resume
    atexit.register(_at_exit)
    # `blender --command hitem3d ...`. NOTE: getattr, as the stubs say this
    # returns None where Blender returns the handle unregister needs.
    register_cli_command = getattr(bpy.utils, "register_cli_command", None)
    if register_cli_command is not None:
        from .ui import cli

        _cli_commands.append(register_cli_command(cli.COMMAND, cli.run_registered))


def unregister() -> None:
    import bpy

    from .ui import session
    from .i18n import translations

    # Timers and workers first: they call into classes that are about to go.
    atexit.unregister(_at_exit)
    session.shutdown()
    session.disconnect()
    while _cli_commands:
        bpy.utils.unregister_cli_command(_cli_commands.pop())
    if _on_load_post in bpy.app.handlers.load_post:
        bpy.app.handlers.load_post.remove(_on_load_post)
    if _on_save_pre in bpy.app.handlers.save_pre:
        bpy.app.handlers.save_pre.remove(_on_save_pre)
    translations.unregister()
    for module in reversed(_modules()):
        if hasattr(module, "unregister"):
            module.unregister()
        for cls in reversed(module.classes):
            bpy.utils.unregister_class(cls)
    while _handlers:
        handler = _handlers.pop()
        log.removeHandler(handler)
        handler.close()
