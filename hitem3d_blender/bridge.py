"""The timer bridge: the only place that owns worker threads and the timer.

Operators ask it to start work; workers put plain results on the runner's
queue; ``tick`` (a persistent ``bpy.app.timers`` callback on the main thread)
drains the queue, updates the task book, imports finished files, saves the
journal and redraws. In background mode there is no event loop, so
``wait_for`` calls ``tick`` itself: both modes apply results through the same
code.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable

import bpy
import bpy.utils.previews

from . import importer, submit_calls
from .core import journal
from .core.api import Hitem3DClient
from .core.downloader import PARTIAL_SUFFIX, check_glb
from .core.errors import BadResultFile, Hitem3DError, ImportFailed
from .core.import_options import ImportOptions
from .core.jobs import CallResult, JobRunner
from .core.logs import register_secret
from .core.pipeline import DEFAULT_TIMEOUT_S, ImportJob
from .core.settings import ApiSettings
from .core.tasks import IllegalTransition, TaskBook, TaskRecord, TaskState, TaskUpdate

log = logging.getLogger(__package__)

ADDON_ID = __package__ or "hitem3d_blender"
BUSY_INTERVAL_S = 0.1
WAITING_INTERVAL_S = 0.5
# A download with no byte for this long is dropped and tried again.
DOWNLOAD_STALL_S = 30.0
CONNECTION_KEY = "connection-test"
JOURNAL_NAME = "journal.json"


@dataclass(frozen=True)
class ConnectionStatus:
    ok: bool
    text: str


class _State:
    """Module state in one object so ``shutdown`` can reset it in one line."""

    def __init__(self) -> None:
        self.runner: JobRunner | None = None
        self.book = TaskBook()
        self.loaded = False  # the journal has been read into the book
        self.resume_pending = False
        self.journal_dirty = False
        self.list_dirty = True
        self.import_requests: set[str] = set()
        self.connection: ConnectionStatus | None = None
        self.awaited_calls: dict[str, CallResult | None] = {}  # run_calls: key -> result once in
        self.notice: str = ""  # last input problem, shown under the ID field
        self.previews: Any = None  # bpy.utils.previews collection, made on first use
        self.preview_paths: dict[str, str] = {}


_state = _State()


# -- reading state -------------------------------------------------------------


def runs_to_end() -> bool:
    """Whether work runs to its end inside the operator that started it: yes
    without an event loop (``blender -b``, the ``bpy`` module), where timers
    never fire; tests switch it off to drive the interactive path."""
    return bool(bpy.app.background)


def book() -> TaskBook:
    _ensure_loaded()
    return _state.book


def record(task_id: str) -> TaskRecord | None:
    return book().get(task_id)


def notice() -> str:
    return _state.notice


def set_notice(text: str) -> None:
    _state.notice = text
    redraw()


def connection_status() -> ConnectionStatus | None:
    return _state.connection


def set_connection_status(ok: bool, text: str) -> None:
    _state.connection = ConnectionStatus(ok, text)
    redraw()


def is_running(task_id: str) -> bool:
    return _state.runner is not None and _state.runner.is_running(task_id)


def _runner() -> JobRunner:
    if _state.runner is None:
        _state.runner = JobRunner()
    return _state.runner


# -- files ------------------------------------------------------------------------


def user_dir() -> Path:
    return Path(bpy.utils.extension_path_user(ADDON_ID, create=True))


def results_dir() -> Path:
    """Where downloaded results live: the extension's own user folder."""
    return Path(bpy.utils.extension_path_user(ADDON_ID, path="results", create=True))


def _file_stem(task_id: str) -> str:
    """A cache file name from a hash of the ID: never a path from the server
    or the user, and safe on every file system (no case clashes, no reserved
    Windows names such as CON.*)."""
    return "task-" + hashlib.sha256(task_id.encode("utf-8")).hexdigest()[:24]


def result_path(task_id: str) -> Path:
    return results_dir() / f"{_file_stem(task_id)}.glb"


def cover_path(task_id: str) -> Path:
    # Named .webp whatever it holds: Blender reads images by content, but its
    # previews only consider files with an image extension.
    return results_dir() / f"{_file_stem(task_id)}.cover.webp"


def journal_path() -> Path:
    return user_dir() / JOURNAL_NAME


def remove_partial_files() -> None:
    """Leftovers of a Blender that was killed mid-download: never imported,
    never shown, just removed."""
    for partial in results_dir().glob("*" + PARTIAL_SUFFIX):
        partial.unlink(missing_ok=True)


def cache_size() -> int:
    """Bytes used by downloaded models."""
    return sum(path.stat().st_size for path in results_dir().glob("*.glb"))


def clear_cache() -> int:
    """Delete downloaded models of tasks that are not running; returns bytes freed.
    Covers stay: they are small and make the history recognisable."""
    freed = 0
    running = {result_path(rec.task_id) for rec in book() if is_running(rec.task_id)}
    for path in results_dir().glob("*.glb"):
        if path in running:
            continue
        freed += path.stat().st_size
        path.unlink(missing_ok=True)
    for rec in book():
        if rec.result_path and not Path(rec.result_path).is_file():
            rec.result_path = ""
            _state.journal_dirty = True
    _save_journal()
    return freed


# -- the journal -----------------------------------------------------------------


def _ensure_loaded() -> None:
    """Read the journal once: finished tasks become history, unfinished ones
    are queued to resume (interactive sessions resume them from ``tick``)."""
    if _state.loaded:
        return
    _state.loaded = True
    try:
        loaded = journal.load(journal_path())
    except OSError:
        log.warning("Could not open the task journal", exc_info=True)
        return
    for rec in loaded.records:
        if rec.state.is_active:
            # Interrupted by a quit or a disable: it starts again from the top.
            rec.state = TaskState.PENDING
            rec.restart()
            _state.resume_pending = True
        _state.book.put(rec)
    _state.list_dirty = True
    if loaded.warning:
        post_report(loaded.warning, "WARNING")
    if _state.resume_pending:
        _ensure_timer()


def _save_journal() -> None:
    if not _state.loaded:
        return
    _state.journal_dirty = False
    try:
        path = journal_path()
    except OSError:
        log.warning("Could not save the task journal", exc_info=True)
        return
    entries = journal.snapshot(_state.book.oldest_first())
    if runs_to_end():
        _write_journal(path, entries)
    else:
        # NOTE: the write ends in an fsync, milliseconds long (tens during a
        # download): the main thread only takes the snapshot.
        _runner().write_later(JOURNAL_NAME, lambda: _write_journal(path, entries))


def _write_journal(path: Path, entries: list[dict[str, Any]]) -> None:
    try:
        journal.write(path, entries)
    except OSError:
        log.warning("Could not save the task journal", exc_info=True)


def resume_unfinished() -> None:
    """Start every restored task that is waiting to resume."""
    _state.resume_pending = False
    from . import preferences  # noqa: PLC0415 - preferences imports this module

    for rec in book().active():
        if rec.state is not TaskState.PENDING or is_running(rec.task_id):
            continue
        try:
            settings = preferences.usable_settings()
        except Hitem3DError as exc:
            fail_without_start(rec.task_id, exc)
            continue
        start_import(rec.task_id, settings, timeout_s=DEFAULT_TIMEOUT_S, options=rec.options)


# -- starting and stopping work ----------------------------------------------------


def start_import(task_id: str, settings: ApiSettings, *, timeout_s: float = DEFAULT_TIMEOUT_S,
                 options: ImportOptions | None = None, model: str = "") -> TaskRecord:
    """Start (or restart) the job for ``task_id``; returns its record."""
    register_secret(settings.client_secret)
    rec = book().add(task_id)
    if options is not None:
        rec.options = options
    if model:
        rec.model = model
    runner = _runner()
    _state.list_dirty = True
    if runner.is_running(task_id):
        return rec
    if rec.state is not TaskState.PENDING:
        rec.move_to(TaskState.PENDING)
    else:
        rec.restart()
    from . import preferences  # noqa: PLC0415 - preferences imports this module

    job = ImportJob(
        task_id=task_id,
        dest=result_path(task_id),
        timeout_s=timeout_s,
        poll_interval_s=settings.poll_interval_s,
        max_bytes=preferences.max_download_bytes(),
        download_timeout_s=DOWNLOAD_STALL_S,
        cover_dest=cover_path(task_id),
    )
    runner.start_import(job, settings)
    _state.journal_dirty = True
    _save_journal()
    _ensure_timer()
    redraw()
    return rec


def fail_without_start(task_id: str, error: Hitem3DError) -> TaskRecord:
    """Record a task that could not even start (online access off, no
    credentials), so the panel shows why and offers Retry."""
    rec = book().add(task_id)
    if rec.state.is_terminal:
        rec.move_to(TaskState.PENDING)
    rec.move_to(TaskState.FAILED)
    rec.message = str(error)
    _state.list_dirty = True
    _state.journal_dirty = True
    _save_journal()
    post_report(rec.message, "ERROR")
    redraw()
    return rec


def cancel(task_id: str) -> None:
    if _state.runner is not None:
        _state.runner.cancel(task_id)


def remove(task_id: str) -> None:
    """Forget a task (cancelling it first). Its downloaded file stays in the
    cache until the cache is cleared."""
    cancel(task_id)
    book().remove(task_id)
    _state.import_requests.discard(task_id)
    _state.list_dirty = True
    _state.journal_dirty = True
    _sync_list()
    _save_journal()
    redraw()


def clear_finished() -> int:
    finished = [rec.task_id for rec in book() if rec.state.is_terminal]
    for task_id in finished:
        book().remove(task_id)
    _state.list_dirty = True
    _state.journal_dirty = True
    _sync_list()
    _save_journal()
    redraw()
    return len(finished)


def import_now(task_id: str, options: ImportOptions | None = None) -> TaskRecord | None:
    """Import a task's downloaded file now, with no download: "Import" for a
    task waiting for a click, "Import again" for a finished one. Returns None
    when there is no usable file (the caller downloads it again)."""
    rec = book().get(task_id)
    if rec is None or rec.state not in (TaskState.DOWNLOADED, TaskState.DONE):
        return None
    path = result_path(task_id)
    try:
        check_glb(path)
    except (BadResultFile, OSError):
        return None
    if options is not None:
        rec.options = options
    rec.result_path = str(path)
    _import(rec)
    _sync_list()
    _save_journal()
    redraw()
    return rec


def test_connection(settings: ApiSettings) -> None:
    _state.connection = ConnectionStatus(True, "Connecting…")
    start_call(CONNECTION_KEY, settings, lambda client: client.fetch_token() and True)


def start_call(key: str, settings: ApiSettings, call: Callable[[Hitem3DClient], Any]) -> None:
    """Run ``call(client)`` on a worker; its result reaches ``tick`` as a ``CallResult``."""
    register_secret(settings.client_secret)
    _runner().start_call(key, settings, call)
    _ensure_timer()


def journal_changed() -> None:
    """A record changed outside an update: the next ``tick`` saves the journal."""
    _state.journal_dirty = True


# -- the main-thread side ------------------------------------------------------


def tick() -> float | None:
    """The timer callback: apply worker results, import what is ready, save the
    journal, redraw. Returns the next interval, or None (the timer ends) when
    nothing is running. Never raises."""
    try:
        return _tick()
    except Exception:  # noqa: BLE001
        # An exception would reach Blender's console and unregister the timer,
        # stranding every other task: log it (with traceback, in the log file)
        # and keep going.
        log.exception("Unexpected error in the Hitem3D timer")
        return WAITING_INTERVAL_S


def _tick() -> float | None:
    if _state.resume_pending and not runs_to_end():
        # NOTE: never in background mode: a batch job must not import tasks
        # that an artist left unfinished in the last interactive session.
        resume_unfinished()
    runner = _state.runner
    results = runner.drain() if runner is not None else []
    for result in results:
        if isinstance(result, TaskUpdate):
            _apply(result)
        else:
            _apply_call(result)
    ready = [rec for rec in _state.book if rec.state is TaskState.DOWNLOADED and _should_import(rec)]
    # NOTE: after an import the workers stay held until this call is over:
    # released at once, sixteen of them would wake together and keep the rest
    # of this call waiting for the GIL (16 ms instead of 1 in the benchmark).
    with _runner().gate.held() if ready else contextlib.nullcontext():
        for rec in ready:
            _import(rec)
        _sync_list()
        if _state.journal_dirty:
            _save_journal()
        if results:
            redraw()
    if runner is not None and runner.busy:
        return BUSY_INTERVAL_S if results else WAITING_INTERVAL_S
    if runner is not None and results:
        return BUSY_INTERVAL_S  # one more pass for results that raced the busy check
    return None


def _should_import(rec: TaskRecord) -> bool:
    if rec.task_id in _state.import_requests or runs_to_end():
        return True
    from . import preferences  # noqa: PLC0415

    return preferences.auto_import()


def request_import(task_id: str) -> None:
    """Import this task when its download is done, even with auto-import off."""
    _state.import_requests.add(task_id)


def _apply(update: TaskUpdate) -> None:
    rec = _state.book.get(update.task_id)
    if rec is None:  # removed while its worker was finishing
        return
    previous = rec.state
    try:
        rec.apply(update)
    except IllegalTransition as exc:
        log.debug("Ignored stale update: %s", exc)
        return
    # NOTE: loading the journal sends every unfinished task back to the start,
    # so moves between running states need no save (each is a snapshot of the
    # whole list on the main thread); an ending and a cover do.
    if (rec.state is not previous and rec.state.is_terminal) or update.cover_path:
        _state.journal_dirty = True
    if update.state is TaskState.FAILED:
        post_report(f"Task {rec.short_id}: {update.message}", "ERROR")


def _apply_call(result: CallResult) -> None:
    if result.key in _state.awaited_calls:
        _state.awaited_calls[result.key] = result
        return
    if submit_calls.apply_call(result):
        return
    if result.key == CONNECTION_KEY:
        if result.ok:
            _state.connection = ConnectionStatus(True, "Connected: credentials accepted")
            post_report("Hitem3D connection OK", "INFO")
        else:
            _state.connection = ConnectionStatus(False, result.error)
            post_report(result.error, "ERROR")


def _import(rec: TaskRecord) -> None:
    rec.move_to(TaskState.IMPORTING)
    _state.import_requests.discard(rec.task_id)
    _state.journal_dirty = True
    provenance = {
        importer.TASK_ID_PROPERTY: rec.task_id,
        "hitem3d_imported_at": datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
    }
    if rec.model:
        provenance["hitem3d_model"] = rec.model
    cover = Path(rec.cover_path) if rec.cover_path else None
    try:
        # Workers wait at their next checkpoint while Blender's importer runs
        # (see core.cancel.WorkerGate): downloads pause for the import.
        with _runner().gate.held():
            names = importer.import_glb(Path(rec.result_path), rec.options, cover=cover, provenance=provenance)
    except Exception as exc:  # noqa: BLE001 - any failure must leave a retryable task
        if not isinstance(exc, ImportFailed):
            log.exception("Import of task %s failed", rec.task_id)
            exc = ImportFailed("Unexpected error while importing: see the Hitem3D log, then retry")
        rec.move_to(TaskState.FAILED)
        rec.message = str(exc)
        post_report(f"Task {rec.short_id}: {exc}", "ERROR")
        return
    rec.imported_objects = names
    rec.move_to(TaskState.DONE)
    rec.message = ""
    post_report(f"Imported {len(names)} object(s) from Hitem3D task {rec.short_id}", "INFO")


def wait_for(task_ids: list[str], timeout_s: float,
             on_tick: Callable[[list[TaskRecord]], None] | None = None) -> list[TaskRecord]:
    """Background mode: drive ``tick`` until the tasks end or time runs out.
    ``on_tick`` sees the records after every tick (the command line's progress)."""
    deadline = time.monotonic() + timeout_s
    while True:
        tick()
        records = [rec for rec in (book().get(task_id) for task_id in task_ids) if rec is not None]
        if on_tick is not None:
            on_tick(records)
        if all(rec.state.is_terminal for rec in records):
            return records
        if time.monotonic() >= deadline:
            for task_id in task_ids:
                cancel(task_id)
        time.sleep(0.02)


def run_calls(settings: ApiSettings, calls: dict[str, Callable[[Hitem3DClient], Any]],
              timeout_s: float) -> dict[str, CallResult]:
    """Background mode: run each ``call(client)`` on a worker and wait for all
    of them, driving ``tick``; a call with no answer in time is cancelled and
    comes back with an error."""
    register_secret(settings.client_secret)
    runner = _runner()
    for key, call in calls.items():
        _state.awaited_calls[key] = None
        runner.start_call(key, settings, call)
    deadline = time.monotonic() + timeout_s
    try:
        while any(_state.awaited_calls.get(key) is None for key in calls) and time.monotonic() < deadline:
            tick()
            time.sleep(0.02)
        results: dict[str, CallResult] = {}
        for key in calls:
            result = _state.awaited_calls.get(key)
            if result is None:
                runner.cancel(key)
                result = CallResult(key, error="No answer from Hitem3D in time: retry")
            results[key] = result
        return results
    finally:
        for key in calls:
            _state.awaited_calls.pop(key, None)


def wait_for_call(timeout_s: float) -> None:
    """Background mode: drive ``tick`` until the runner is idle."""
    deadline = time.monotonic() + timeout_s
    while _state.runner is not None and _state.runner.busy and time.monotonic() < deadline:
        tick()
        time.sleep(0.02)
    tick()


# -- Blender plumbing ----------------------------------------------------------


def select(task_id: str) -> None:
    """Make ``task_id`` the selected row of the task list."""
    _state.list_dirty = True
    _sync_list()
    state = getattr(getattr(bpy.context, "window_manager", None), "hitem3d", None)
    if state is None:
        return
    for index, item in enumerate(state.tasks):
        if item.task_id == task_id:
            state.active_index = index




def _ensure_timer() -> None:
    if not bpy.app.timers.is_registered(tick):
        bpy.app.timers.register(tick, first_interval=BUSY_INTERVAL_S, persistent=True)


def _sync_list() -> None:
    """Mirror the book's order into the window manager's task list (the
    UIList needs an RNA collection). Cheap when nothing changed."""
    wm = getattr(bpy.context, "window_manager", None)
    state = getattr(wm, "hitem3d", None)
    if state is None:
        return
    wanted = [rec.task_id for rec in _state.book]
    if not _state.list_dirty and [item.task_id for item in state.tasks] == wanted:
        return
    _state.list_dirty = False
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


def on_file_loaded() -> None:
    """After File > Open or New: the window manager's list may be new; the
    tasks (and the persistent timer) carry on."""
    _state.list_dirty = True
    _sync_list()


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


def post_report(message: str, level: str) -> None:
    """To the log and to Blender's Info log (through a tiny operator, since a
    timer has no operator of its own to report with)."""
    if bpy.app.background:
        # The waiting operator reports the outcome itself: log it only quietly.
        log.info(message)
        return
    log.log({"ERROR": logging.ERROR, "WARNING": logging.WARNING}.get(level, logging.INFO), message)
    try:
        # NOTE: an ERROR report raises RuntimeError in the caller after the
        # report has gone to the window manager's Info log: that is expected.
        getattr(bpy.ops, "hitem3d").report(message=message, level=level)
    except Exception:  # noqa: BLE001 - no window (module, quitting): the log has it
        log.debug("Could not post report to Info log", exc_info=True)


def shutdown() -> None:
    """Stop every worker (within about a second) and the timer; keep nothing.

    The journal is not rewritten: tasks that were running stay unfinished in
    it and resume next time."""
    global _state
    state, _state = _state, _State()
    submit_calls.reset()
    if bpy.app.timers.is_registered(tick):
        bpy.app.timers.unregister(tick)
    if state.runner is not None:
        state.runner.shutdown(timeout_s=1.0)
    if state.previews is not None:
        bpy.utils.previews.remove(state.previews)
