"""UI plumbing: what the panels show of the engine's state, kept in step on the
main thread. The task list mirror, the cover previews, the notice under the
ID field, redraws and reports to Blender's Info log."""

from __future__ import annotations

import json
import logging
import time
from pathlib import Path
from typing import Any, Iterable

import bpy
import bpy.utils.previews

from ..core import safe_files
from ..core.errors import BadResultFile
from ..core.glb_check import check_cover
from ..core.messages import NONE, Message
from ..core.tasks import TaskRecord
from ..engine import files, history

log = logging.getLogger(__package__)

CATEGORY = "Hitem3D"  # the sidebar tab of every Hitem3D panel (panels.SidebarPanel)
# At most this many redraws a second; one asked for sooner waits for the rest.
REDRAWS_PER_S = 4.0
# Categories of a region that has not drawn yet (or cannot say): it may show ours.
_UNKNOWN_CATEGORIES = {"", "UNSUPPORTED"}
_PREFERENCE_SECTIONS = {"ADDONS", "EXTENSIONS"}


class _State:
    """Module state in one object so ``reset`` can drop it in one line."""

    def __init__(self) -> None:
        self.notice: Message = NONE  # last input problem, shown under the ID field
        self.previews: Any = None  # bpy.utils.previews collection, made on first use
        self.preview_paths: dict[str, str] = {}
        self.last_redraw = 0.0  # time.monotonic() of the last regions tagged


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
        # Checked once per path, not per redraw: a refused cover stays unloaded.
        _state.preview_paths[rec.task_id] = rec.cover_path
        if _usable_cover(Path(rec.cover_path)):
            previews.load(rec.task_id, rec.cover_path, "IMAGE")
    return previews.get(rec.task_id)


def _usable_cover(path: Path) -> bool:
    """A cover Blender may decode, within the preview pixel limit: in our
    folder a plain file (never a symlink). Outside it only the picture the
    user chose for a generation (journal paths outside are dropped on load)."""
    if safe_files.inside(files.user_dir(), path) and not safe_files.is_regular_file(path):
        return False
    try:
        check_cover(path)
    except BadResultFile as exc:
        log.info("Cover %s not shown: %s", path.name, exc)
        return False
    return True


def regions_showing_hitem3d(windows: Iterable[Any], preferences_section: str) -> list[Any]:
    """The regions that show Hitem3D state: the sidebar of each 3D view that
    is open on the Hitem3D tab, and the preferences where add-ons are listed.

    NOTE: never a 3D view's main region: redrawing the viewport for a progress
    bar costs a whole frame. ``active_panel_category`` is empty or UNSUPPORTED
    until the sidebar has drawn once: such a sidebar may show ours.
    """
    found: list[Any] = []
    for window in windows:
        screen = getattr(window, "screen", None)
        for area in getattr(screen, "areas", ()):
            if area.type == "VIEW_3D":
                if not getattr(area.spaces.active, "show_region_ui", False):
                    continue
                for region in area.regions:
                    category = getattr(region, "active_panel_category", "")
                    if region.type == "UI" and (category == CATEGORY or category in _UNKNOWN_CATEGORIES):
                        found.append(region)
            elif area.type == "PREFERENCES" and preferences_section in _PREFERENCE_SECTIONS:
                found.extend(region for region in area.regions if region.type == "WINDOW")
    return found


def redraw(*, now: float | None = None) -> list[Any]:
    """Something the panels show changed: tag the regions that show it, at
    most REDRAWS_PER_S times a second (a request sooner waits for the rest of
    the interval on a one-shot timer). Returns the regions tagged now."""
    clock = time.monotonic() if now is None else now
    wait = _state.last_redraw + 1.0 / REDRAWS_PER_S - clock
    if wait > 0:
        if not bpy.app.timers.is_registered(_deferred_redraw):
            bpy.app.timers.register(_deferred_redraw, first_interval=wait)
        return []
    _state.last_redraw = clock
    wm = getattr(bpy.context, "window_manager", None)
    if wm is None:
        return []
    preferences = getattr(bpy.context, "preferences", None)
    regions = regions_showing_hitem3d(wm.windows, getattr(preferences, "active_section", ""))
    for region in regions:
        region.tag_redraw()
    return regions


def _deferred_redraw() -> None:
    redraw()


# Set on log records whose message Blender has already printed to the console
# (it prints every report of an operator called from Python): the console
# handler leaves them out, so each failure reaches the console once.
IN_INFO_LOG = "hitem3d_in_info_log"


def not_in_info_log(record: logging.LogRecord) -> bool:
    """A console handler's filter: False for what Blender printed already."""
    return not getattr(record, IN_INFO_LOG, False)


def _report_to_info_log(message: Message, level: str) -> bool:
    """Hand ``message`` to Blender's Info log; whether it got there."""
    try:
        getattr(bpy.ops, "hitem3d").report(message=json.dumps(message.to_dict()), level=level)
    except RuntimeError:
        # NOTE: an ERROR report raises RuntimeError in the caller after the
        # report has gone to the Info log (and the console): that is expected.
        return True
    except Exception:  # noqa: BLE001 - no window (module, quitting): the log has it
        log.debug("Could not post report to Info log", exc_info=True)
        return False
    return True


def post_report(message: Message, level: str) -> None:
    """To Blender's Info log, translated there (through a tiny operator, since a
    timer has no operator of its own to report with), and to the log in English."""
    if bpy.app.background:
        # The waiting operator reports the outcome itself: log it only quietly.
        log.info("%s", message)
        return
    shown = _report_to_info_log(message, level)
    log.log({"ERROR": logging.ERROR, "WARNING": logging.WARNING}.get(level, logging.INFO), "%s", message,
            extra={IN_INFO_LOG: shown})


def reset() -> None:
    """Forget everything shown; free the cover previews."""
    global _state
    old, _state = _state, _State()
    if bpy.app.timers.is_registered(_deferred_redraw):
        bpy.app.timers.unregister(_deferred_redraw)
    if old.previews is not None:
        bpy.utils.previews.remove(old.previews)
