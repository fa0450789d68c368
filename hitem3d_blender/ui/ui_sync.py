"""UI plumbing: what the panels show of the engine's state, kept in step on the
main thread. The task list mirror, the cover previews, the notice under the
ID field, redraws and reports to Blender's Info log."""

from __future__ import annotations

import json
import logging
import time
from pathlib import Path
from typing import Any, Callable, Hashable, Iterable

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
# NOTE: in software OpenGL a sidebar redraw stalls the window 50 to 300 ms.
REDRAWS_PER_S = 2.0
# Elapsed times alone redraw at most this often: tasks started a fraction of
# a second apart would otherwise each turn a second in turn.
ELAPSED_REFRESH_S = 1.0
# The list's name among those that follow the book's order (``TaskBook.take_moves``).
LIST_FOLLOWER = "ui-list"
# Categories of a region that has not drawn yet (or cannot say): it may show ours.
_UNKNOWN_CATEGORIES = {"", "UNSUPPORTED"}
_PREFERENCE_SECTIONS = {"ADDONS", "EXTENSIONS"}

# What a panel computes from a record to show it: what moves with the task's
# progress, and its elapsed time. What it gave at the last draw is compared with now.
Shown = Callable[[TaskRecord], tuple[Hashable, str]]


class _State:
    """Module state in one object so ``reset`` can drop it in one line."""

    def __init__(self) -> None:
        self.notice: Message = NONE  # last input problem, shown under the ID field
        self.previews: Any = None  # bpy.utils.previews collection, made on first use
        self.preview_paths: dict[str, str] = {}
        self.last_redraw = 0.0  # time.monotonic() of the last regions tagged, or our panel drawn
        # The task IDs in the window manager's list as last written, newest
        # first, the list's owner (as_pointer) and the book's order then.
        self.mirror: list[str] = []
        self.mirror_owner = 0
        self.mirror_version = -1
        # Per region (as_pointer): what each task's row or details showed at its last draw.
        self.shown: dict[int, dict[tuple[str, Shown], tuple[Hashable, str]]] = {}


_state = _State()


def notice() -> Message:
    return _state.notice


def set_notice(text: Message) -> None:
    _state.notice = text
    redraw()


def sync_list() -> bool:
    """Mirror the book's order into the window manager's task list (the
    UIList needs an RNA collection); False when there is no list yet. Costs
    what moved (``TaskBook.take_moves``): pasted IDs are added at the top,
    removed ones taken out, the rest left alone."""
    wm = getattr(bpy.context, "window_manager", None)
    holder = getattr(wm, "hitem3d", None)
    if holder is None:
        return False
    book = history.book()
    tasks = holder.tasks
    owner = holder.as_pointer()
    mirror = _state.mirror
    if owner == _state.mirror_owner and len(tasks) == len(mirror):
        moves = book.take_moves(LIST_FOLLOWER)
        if book.order_version == _state.mirror_version:
            return True
        index = holder.active_index
        selected = mirror[index] if 0 <= index < len(mirror) else ""
        if moves is None:  # more moved than the list holds (or nobody looked): compared whole
            wanted = book.ids_newest_first()
            if wanted == mirror:
                _state.mirror_version = book.order_version
                return True
            _edit(tasks, mirror, wanted)
        else:
            _follow(tasks, mirror, moves)
    else:  # a new window manager (another file) or a list changed behind our back
        index = holder.active_index
        selected = tasks[index].task_id if 0 <= index < len(tasks) else ""
        wanted = book.ids_newest_first()
        book.take_moves(LIST_FOLLOWER)  # what moves from here on is followed
        tasks.clear()
        for task_id in wanted:
            tasks.add().task_id = task_id
        _state.mirror = mirror = list(wanted)
        _state.mirror_owner = owner
    _state.mirror_version = book.order_version
    if selected and selected in book:
        chosen = mirror.index(selected)
    else:
        chosen = 0 if mirror else -1
    if holder.active_index != chosen:
        holder.active_index = chosen
    redraw()
    return True


def _follow(tasks: Any, mirror: list[str], moves: list[tuple[str, bool]]) -> None:
    """Make the RNA list ``tasks`` (and ``mirror``, its copy, newest first)
    follow the book's moves: (task ID, True) to the top, (task ID, False) out.
    NOTE: costs what moved, where comparing with the book's order costs the
    history (a finished task pushing the oldest out of 500 is two moves)."""
    for task_id, last in moves:
        try:
            index = mirror.index(task_id)
        except ValueError:
            index = -1
        if not last:
            if index >= 0:
                tasks.remove(index)
                del mirror[index]
            continue
        if index < 0:
            tasks.add().task_id = task_id
            index = len(mirror)
            mirror.append(task_id)
        if index:
            tasks.move(index, 0)
            mirror.insert(0, mirror.pop(index))


def _edit(tasks: Any, mirror: list[str], wanted: list[str]) -> None:
    """Make the RNA list ``tasks`` (and ``mirror``, its copy) read ``wanted``
    in as few steps as the change needs."""
    for task_id in set(mirror).difference(wanted):
        index = mirror.index(task_id)
        tasks.remove(index)
        del mirror[index]
    # The longest common tail (found by halving: each test is one list
    # comparison in C) is left alone; only the head is put in order.
    low, high = 0, min(len(mirror), len(wanted))
    while low < high:
        middle = (low + high + 1) // 2
        if mirror[len(mirror) - middle:] == wanted[len(wanted) - middle:]:
            low = middle
        else:
            high = middle - 1
    head = len(wanted) - low
    for index in range(head):
        task_id = wanted[index]
        if index < len(mirror) and mirror[index] == task_id:
            continue
        try:
            found = mirror.index(task_id, index, len(mirror) - low)
        except ValueError:
            tasks.add().task_id = task_id
            found = len(mirror)
            mirror.append(task_id)
        tasks.move(found, index)
        mirror.insert(index, mirror.pop(found))


def select(task_id: str) -> None:
    """Make ``task_id`` the selected row of the task list."""
    sync_list()
    holder = getattr(getattr(bpy.context, "window_manager", None), "hitem3d", None)
    if holder is None or task_id not in _state.mirror:
        return
    holder.active_index = _state.mirror.index(task_id)


def on_file_loaded() -> None:
    """After File > Open or New: the window manager's list may be new; the
    tasks (and the persistent timer) carry on."""
    sync_list()


def begin_draw(region: Any) -> None:
    """A panel starts drawing the task list in ``region``: what it shows is told anew."""
    _state.shown[_region_key(region)] = {}
    # A redraw Blender made itself (the mouse, an operator) counts against the
    # rate too: it shows the state of now.
    _state.last_redraw = max(_state.last_redraw, time.monotonic())


def showing(region: Any, task_id: str, shown: Shown, value: tuple[Hashable, str]) -> None:
    """``region`` now shows ``value``, which is ``shown(record)`` for ``task_id``."""
    _state.shown.setdefault(_region_key(region), {})[(task_id, shown)] = value


def _region_key(region: Any) -> int:
    return int(region.as_pointer()) if region is not None and hasattr(region, "as_pointer") else 0


def refresh(*, now: float | None = None) -> list[Any]:
    """The engine says tasks moved on: tag the regions showing Hitem3D if a
    row they show would read differently now (a state, a percentage, a size:
    at most REDRAWS_PER_S times a second; only an elapsed time: at most once
    every ELAPSED_REFRESH_S). Costs the rows shown, whatever the length of the list."""
    clock = time.monotonic() if now is None else now
    book = history.book()
    elapsed_moved = False
    for rows in _state.shown.values():
        for (task_id, shown), (content, elapsed) in rows.items():
            rec = book.get(task_id)
            if rec is None:
                return redraw(now=clock)
            content_now, elapsed_now = shown(rec)
            if content_now != content:
                return redraw(now=clock)
            elapsed_moved = elapsed_moved or elapsed_now != elapsed
    if elapsed_moved and clock - _state.last_redraw >= ELAPSED_REFRESH_S:
        return redraw(now=clock)
    return []


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
    return _redraw_now(clock)


def _redraw_now(clock: float) -> list[Any]:
    _state.last_redraw = clock
    wm = getattr(bpy.context, "window_manager", None)
    if wm is None:
        return []
    preferences = getattr(bpy.context, "preferences", None)
    regions = regions_showing_hitem3d(wm.windows, getattr(preferences, "active_section", ""))
    for region in regions:
        region.tag_redraw()
    # Filled again by the draws this asks for; a panel that does not draw
    # (closed, another tab) shows no rows, and asks for no more.
    _state.shown.clear()
    return regions


def _deferred_redraw() -> float | None:
    """The one-shot timer of a redraw asked for too soon; again later if the
    region was drawn meanwhile (Blender's own redraws count too)."""
    clock = time.monotonic()
    wait = _state.last_redraw + 1.0 / REDRAWS_PER_S - clock
    if wait > 0:
        return wait
    _redraw_now(clock)
    return None


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
