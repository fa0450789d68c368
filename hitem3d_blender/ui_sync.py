"""UI plumbing: what the panels show of the engine's state, kept in step on the
main thread. The task list mirror, the cover previews, the notice under the
ID field, redraws and reports to Blender's Info log."""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import bpy
import bpy.utils.previews

from .core.messages import NONE, Message
from .core.tasks import TaskRecord
from .engine import history

log = logging.getLogger(__package__)


class _State:
    """Module state in one object so ``reset`` can drop it in one line."""

    def __init__(self) -> None:
        self.notice: Message = NONE  # last input problem, shown under the ID field
        self.previews: Any = None  # bpy.utils.previews collection, made on first use
        self.preview_paths: dict[str, str] = {}


_state = _State()


def notice() -> Message:
    return _state.notice


def set_notice(text: Message) -> None:
    _state.notice = text
    redraw()


def sync_list() -> None:
    """Mirror the book's order into the window manager's task list (the
    UIList needs an RNA collection). Cheap when nothing changed."""
    wm = getattr(bpy.context, "window_manager", None)
    state = getattr(wm, "hitem3d", None)
    if state is None:
        return
    wanted = [rec.task_id for rec in history.book()]
    if [item.task_id for item in state.tasks] == wanted:
        return
    selected = state.tasks[state.active_index].task_id if 0 <= state.active_index < len(state.tasks) else ""
    state.tasks.clear()
    for task_id in wanted:
        state.tasks.add().task_id = task_id
    if selected in wanted:
        state.active_index = wanted.index(selected)
    elif wanted:
        state.active_index = 0
    else:
        state.active_index = -1


def select(task_id: str) -> None:
    """Make ``task_id`` the selected row of the task list."""
    sync_list()
    state = getattr(getattr(bpy.context, "window_manager", None), "hitem3d", None)
    if state is None:
        return
    for index, item in enumerate(state.tasks):
        if item.task_id == task_id:
            state.active_index = index


def on_file_loaded() -> None:
    """After File > Open or New: the window manager's list may be new; the
    tasks (and the persistent timer) carry on."""
    sync_list()


def cover_icon(rec: TaskRecord) -> int:
    """The icon id of a task's cover for ``template_icon``, 0 when there is
    none (or no window system to make icons, as in background mode)."""
    preview = cover_preview(rec)
    return int(preview.icon_id) if preview is not None else 0


def cover_preview(rec: TaskRecord) -> Any:
    """The task's cover as a ``bpy.types.ImagePreview``, None when there is none."""
    if not rec.cover_path or not Path(rec.cover_path).is_file():
        return None
    if _state.previews is None:
        _state.previews = bpy.utils.previews.new()
    previews = _state.previews
    if _state.preview_paths.get(rec.task_id) != rec.cover_path:
        if rec.task_id in previews:
            del previews[rec.task_id]
        previews.load(rec.task_id, rec.cover_path, "IMAGE")
        _state.preview_paths[rec.task_id] = rec.cover_path
    return previews[rec.task_id]


def redraw() -> None:
    wm = getattr(bpy.context, "window_manager", None)
    if wm is None:
        return
    for window in wm.windows:
        for area in window.screen.areas:
            if area.type in {"VIEW_3D", "PREFERENCES"}:
                area.tag_redraw()


def post_report(message: Message, level: str) -> None:
    """To the log (English) and to Blender's Info log, translated there
    (through a tiny operator, since a timer has no operator of its own to report with)."""
    if bpy.app.background:
        # The waiting operator reports the outcome itself: log it only quietly.
        log.info("%s", message)
        return
    log.log({"ERROR": logging.ERROR, "WARNING": logging.WARNING}.get(level, logging.INFO), "%s", message)
    try:
        # NOTE: an ERROR report raises RuntimeError in the caller after the
        # report has gone to the window manager's Info log: that is expected.
        getattr(bpy.ops, "hitem3d").report(message=json.dumps(message.to_dict()), level=level)
    except Exception:  # noqa: BLE001 - no window (module, quitting): the log has it
        log.debug("Could not post report to Info log", exc_info=True)


def reset() -> None:
    """Forget everything shown; free the cover previews."""
    global _state
    old, _state = _state, _State()
    if old.previews is not None:
        bpy.utils.previews.remove(old.previews)
