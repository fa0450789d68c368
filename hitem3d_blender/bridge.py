"""The timer bridge: the only place that owns worker threads and the timer.

Operators ask it to start work; workers put plain results on the runner's
queue; ``tick`` (a persistent ``bpy.app.timers`` callback on the main thread)
drains the queue, updates the task book, imports finished files and redraws.
In background mode there is no event loop, so ``wait_for`` calls ``tick``
itself: both modes apply results through the same code.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from pathlib import Path

import bpy

from . import importer
from .core.downloader import PARTIAL_SUFFIX
from .core.errors import Hitem3DError, ImportFailed
from .core.jobs import CallResult, JobRunner
from .core.logs import register_secret
from .core.pipeline import ImportJob
from .core.settings import ApiSettings
from .core.tasks import IllegalTransition, TaskBook, TaskRecord, TaskState, TaskUpdate

log = logging.getLogger(__package__)

ADDON_ID = __package__ or "hitem3d_blender"
BUSY_INTERVAL_S = 0.1
WAITING_INTERVAL_S = 0.5
CONNECTION_KEY = "connection-test"


@dataclass(frozen=True)
class ConnectionStatus:
    ok: bool
    text: str


class _State:
    """Module state in one object so ``shutdown`` can reset it in one line."""

    def __init__(self) -> None:
        self.runner: JobRunner | None = None
        self.book = TaskBook()
        self.connection: ConnectionStatus | None = None
        self.notice: str = ""  # last input problem, shown under the ID field


_state = _State()


def book() -> TaskBook:
    return _state.book


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


def _runner() -> JobRunner:
    if _state.runner is None:
        _state.runner = JobRunner()
    return _state.runner


def results_dir() -> Path:
    """Where downloaded results live: the extension's own user folder."""
    return Path(bpy.utils.extension_path_user(ADDON_ID, path="results", create=True))


def result_path(task_id: str) -> Path:
    # The ID is already restricted to URL- and file-safe characters.
    return results_dir() / f"{task_id}.glb"


def remove_partial_files() -> None:
    """Leftovers of a Blender that was killed mid-download: never imported,
    never shown, just removed."""
    for partial in results_dir().glob("*" + PARTIAL_SUFFIX):
        partial.unlink(missing_ok=True)


def _remember_secrets(settings: ApiSettings) -> None:
    register_secret(settings.client_secret)


# -- starting work -------------------------------------------------------------


def start_import(task_id: str, settings: ApiSettings, *, timeout_s: float) -> TaskRecord:
    """Start (or restart) the job for ``task_id``; returns its record."""
    _remember_secrets(settings)
    record = _state.book.add(task_id)
    runner = _runner()
    if runner.is_running(task_id):
        return record
    if record.state is not TaskState.PENDING:
        record.move_to(TaskState.PENDING)
    else:
        record.restart()
    job = ImportJob(
        task_id=task_id,
        dest=result_path(task_id),
        timeout_s=timeout_s,
        poll_interval_s=settings.poll_interval_s,
    )
    runner.start_import(job, settings)
    _ensure_timer()
    redraw()
    return record


def fail_without_start(task_id: str, error: Hitem3DError) -> TaskRecord:
    """Record a task that could not even start (online access off, no
    credentials), so the panel shows why and offers Retry."""
    record = _state.book.add(task_id)
    if record.state.is_terminal:
        record.move_to(TaskState.PENDING)
    record.move_to(TaskState.FAILED)
    record.message = str(error)
    _report(record.message, "ERROR")
    redraw()
    return record


def is_running(task_id: str) -> bool:
    return _state.runner is not None and _state.runner.is_running(task_id)


def cancel(task_id: str) -> None:
    if _state.runner is not None:
        _state.runner.cancel(task_id)


def test_connection(settings: ApiSettings) -> None:
    _remember_secrets(settings)
    _state.connection = ConnectionStatus(True, "Connecting…")
    _runner().start_call(CONNECTION_KEY, settings, lambda client: client.fetch_token() and True)
    _ensure_timer()


# -- the main-thread side ------------------------------------------------------


def tick() -> float | None:
    """The timer callback: apply worker results, import what is ready, redraw.

    Returns the next interval, or None (timer ends) when nothing is running.
    """
    runner = _state.runner
    if runner is None:
        return None
    results = runner.drain()
    for result in results:
        if isinstance(result, TaskUpdate):
            _apply(result)
        else:
            _apply_call(result)
    for record in list(_state.book):
        if record.state is TaskState.DOWNLOADED:
            _import(record)
    if results:
        redraw()
    if runner.busy:
        return BUSY_INTERVAL_S if results else WAITING_INTERVAL_S
    if any(r.state is TaskState.DOWNLOADED for r in _state.book):
        return BUSY_INTERVAL_S
    return None


def _apply(update: TaskUpdate) -> None:
    record = _state.book.get(update.task_id)
    if record is None:  # removed while its worker was finishing
        return
    try:
        record.apply(update)
    except IllegalTransition as exc:
        log.debug("Ignored stale update: %s", exc)
        return
    if update.state is TaskState.FAILED:
        _report(f"Task {record.short_id}: {update.message}", "ERROR")


def _apply_call(result: CallResult) -> None:
    if result.key == CONNECTION_KEY:
        if result.ok:
            _state.connection = ConnectionStatus(True, "Connected: credentials accepted")
            _report("Hitem3D connection OK", "INFO")
        else:
            _state.connection = ConnectionStatus(False, result.error)
            _report(result.error, "ERROR")


def _import(record: TaskRecord) -> None:
    record.move_to(TaskState.IMPORTING)
    try:
        names = importer.import_glb(Path(record.result_path), record.task_id)
    except ImportFailed as exc:
        record.move_to(TaskState.FAILED)
        record.message = str(exc)
        _report(f"Task {record.short_id}: {exc}", "ERROR")
        return
    record.imported_objects = names
    record.move_to(TaskState.DONE)
    record.message = ""
    _report(f"Imported {len(names)} object(s) from Hitem3D task {record.short_id}", "INFO")


def wait_for(task_id: str, timeout_s: float) -> TaskRecord | None:
    """Background mode: drive ``tick`` until the task ends or time runs out."""
    deadline = time.monotonic() + timeout_s
    while True:
        tick()
        record = _state.book.get(task_id)
        if record is None or record.state.is_terminal:
            return record
        if time.monotonic() >= deadline:
            cancel(task_id)
        time.sleep(0.02)


def wait_for_call(timeout_s: float) -> None:
    """Background mode: drive ``tick`` until the runner is idle."""
    deadline = time.monotonic() + timeout_s
    while _state.runner is not None and _state.runner.busy and time.monotonic() < deadline:
        tick()
        time.sleep(0.02)
    tick()


# -- Blender plumbing ----------------------------------------------------------


def _ensure_timer() -> None:
    if not bpy.app.timers.is_registered(tick):
        bpy.app.timers.register(tick, first_interval=BUSY_INTERVAL_S, persistent=True)


def redraw() -> None:
    wm = getattr(bpy.context, "window_manager", None)
    if wm is None:
        return
    for window in wm.windows:
        for area in window.screen.areas:
            if area.type in {"VIEW_3D", "PREFERENCES"}:
                area.tag_redraw()


def _report(message: str, level: str) -> None:
    """To the log and to Blender's Info log (through a tiny operator, since a
    timer has no operator of its own to report with)."""
    if bpy.app.background:
        # The waiting operator reports the outcome itself: log it only quietly.
        log.info(message)
        return
    log.log(logging.ERROR if level == "ERROR" else logging.INFO, message)
    try:
        # NOTE: an ERROR report raises RuntimeError in the caller after the
        # report has gone to the window manager's Info log: that is expected.
        getattr(bpy.ops, "hitem3d").report(message=message, level=level)
    except Exception:  # noqa: BLE001 - no window (module, quitting): the log has it
        log.debug("Could not post report to Info log", exc_info=True)


def shutdown() -> None:
    """Stop every worker (within about a second) and the timer; keep nothing."""
    if bpy.app.timers.is_registered(tick):
        bpy.app.timers.unregister(tick)
    runner, _state.runner = _state.runner, None
    if runner is not None:
        runner.shutdown(timeout_s=1.0)
    _state.book = TaskBook()
    _state.connection = None
    _state.notice = ""
