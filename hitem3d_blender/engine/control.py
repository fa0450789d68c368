"""Job control: starting, cancelling and removing work, and one-off calls.

Every function here runs on the main thread. Workers (``core.jobs``) do the
network and file work and hand plain results to ``timer.tick``.
"""

from __future__ import annotations

from pathlib import Path
from typing import ContextManager

from ..scene import asset_library
from . import conversions
from ..core import safe_files
from ..core.calls import Call
from ..core.errors import Hitem3DError
from ..core.import_options import ImportOptions
from ..core.logs import register_secret
from ..core.pipeline import DEFAULT_TIMEOUT_S, ImportJob
from ..core.result_files import cached_result
from ..core.settings import ApiSettings
from ..core.task_kinds import kind_of
from ..core.tasks import TaskRecord, TaskState
from . import clock, files, history, import_step, ownership, state

# A download with no byte for this long is dropped and tried again.
DOWNLOAD_STALL_S = 30.0


def start_import(task_id: str, settings: ApiSettings, *, timeout_s: float = DEFAULT_TIMEOUT_S,
                 options: ImportOptions | None = None, model: str = "") -> TaskRecord:
    """Start (or restart) the job for ``task_id``; returns its record."""
    register_secret(settings.client_secret)
    rec = history.book().add(task_id)
    if options is not None:
        rec.options = options
    if model:
        rec.model = model
    runner = state.runner()
    state.current.list_dirty = True
    if runner.is_running(task_id):
        return rec
    if rec.state is not TaskState.PENDING:
        rec.move_to(TaskState.PENDING)
    else:
        rec.restart()
    folder = files.results_dir()
    job = ImportJob(
        task_id=task_id,
        dest=files.result_path(task_id, folder),
        timeout_s=timeout_s,
        poll_interval_s=settings.poll_interval_s,
        max_bytes=state.hooks.max_download_bytes(),
        download_timeout_s=DOWNLOAD_STALL_S,
        cover_dest=files.cover_path(task_id, folder),
    )
    # Updates of an earlier run (removed, or cancelled, and started again
    # before it ended) carry its number and are ignored.
    rec.run = runner.start_import(job, settings)
    _save_soon()
    # The UI list follows at the next tick: pasting many IDs rebuilds it once.
    state.hooks.shown_changed()
    return rec


def starting_many() -> ContextManager[None]:
    """Wrap a loop of ``start_import`` calls (a paste of many IDs): the
    workers start once the loop is over."""
    return state.runner().starting_many()


def fail_without_start(task_id: str, error: Hitem3DError, *, report: bool = True) -> TaskRecord:
    """Record a task that could not even start (online access off, no
    credentials), so the panel shows why and offers Retry. A task that is
    running keeps running: its settings were fine when it started.
    ``report=False`` when the caller says it once for many tasks (an operator
    refusing, a resume): one reason, one report."""
    if state.is_running(task_id):
        rec = history.book().get(task_id)
        if rec is not None:
            return rec
    rec = history.book().add(task_id)
    if rec.state.is_terminal:
        rec.move_to(TaskState.PENDING)
    rec.move_to(TaskState.FAILED)
    rec.message = error.message
    state.current.list_dirty = True
    _save_soon()
    if report:
        state.hooks.post_report(rec.message, "ERROR")
    state.hooks.shown_changed()
    return rec


def resume_unfinished() -> None:
    """Start every restored task that is waiting to resume."""
    state.current.resume_pending = False
    refused: Hitem3DError | None = None
    for rec in history.book().active():
        if rec.state is not TaskState.PENDING or state.is_running(rec.task_id):
            continue
        try:
            settings = state.hooks.settings()
        except Hitem3DError as exc:
            fail_without_start(rec.task_id, exc, report=False)
            refused = exc
            continue
        start_import(rec.task_id, settings, timeout_s=DEFAULT_TIMEOUT_S, options=rec.options)
    if refused is not None:
        state.hooks.post_report(refused.message, "ERROR")


def cancel(task_id: str) -> None:
    if conversions.cancel(task_id):
        clock.start()  # the next tick reaps the child and marks the task cancelled
    if state.current.runner is not None:
        state.current.runner.cancel(task_id)


def remove(task_id: str) -> bool:
    """Forget a task (cancelling it first, a conversion too) and delete its
    entry in the asset library; True when there was an entry. Its downloaded
    file stays in the cache until the cache is cleared."""
    cancel(task_id)
    conversions.forget(task_id)
    removed_entry = asset_library.remove_entry(files.file_stem(task_id))
    history.book().remove(task_id)
    state.current.import_requests.discard(task_id)
    state.current.downloaded.discard(task_id)
    state.current.list_dirty = True
    _show_list()
    _save_soon()
    return removed_entry


def clear_finished() -> int:
    finished = [rec.task_id for rec in history.book() if rec.state.is_terminal]
    for task_id in finished:
        history.book().remove(task_id)
    state.current.list_dirty = True
    _show_list()
    _save_soon()
    return len(finished)


def clear_cache() -> int:
    """Delete downloaded models of tasks that are not running or converting;
    returns bytes freed."""
    book = history.book()
    running = {files.result_path(rec.task_id) for rec in book if state.is_running(rec.task_id)}
    # A converter reads its GLB when its Blender has started, a second or more after it was given it.
    freed = files.delete_results(keep=running | conversions.files_in_use())
    for rec in book:
        if rec.result_path and not Path(rec.result_path).is_file():
            # A task waiting for a click on Import downloads again when clicked.
            rec.result_path = ""
    _save_soon()
    state.hooks.shown_changed()
    return freed


def import_now(task_id: str, options: ImportOptions | None = None) -> TaskRecord | None:
    """Import a task's downloaded file now, with no download: "Import" for a
    task waiting for a click, "Import again" for a finished one. Returns None
    when there is no usable file (the caller downloads it again)."""
    rec = history.book().get(task_id)
    if rec is None or rec.state not in (TaskState.DOWNLOADED, TaskState.DONE) or conversions.is_converting(task_id):
        return None
    entry = asset_library.entry_path(files.file_stem(task_id))
    # A symlink planted at the entry's name is never appended from, nor an
    # entry this Blender did not write (no seal: converted again from the GLB).
    if rec.state is TaskState.DONE and rec.entry_seal and safe_files.is_regular_file(entry):
        if options is not None:
            rec.options = options
        import_step.append_from_library(rec, entry)
        _show_list()
        history.save()
        return rec
    path = cached_result(files.result_path(task_id), kind_of(task_id))
    if path is None:
        return None
    if options is not None:
        rec.options = options
    rec.result_path = str(path)
    import_step.run(rec)
    if conversions.is_converting(task_id):
        clock.start()  # the timer polls the converter and appends its result
    _show_list()
    _save_soon()
    return rec


def request_import(task_id: str) -> None:
    """Import this task when its download is done, even with auto-import off."""
    state.current.import_requests.add(task_id)


def cancel_call(key: str) -> None:
    """Cancel the call ``key``: dropped if it has not started, its sockets shut
    if it has; its result (a ``Cancelled`` error, or what it had already got)
    still reaches ``timer.tick``."""
    if state.current.runner is not None:
        state.current.runner.cancel(key)
        clock.start()


def start_call(key: str, settings: ApiSettings, call: Call) -> None:
    """Run ``call`` (``core.calls``) on a worker; its result reaches ``timer.tick`` as a ``CallResult``."""
    register_secret(settings.client_secret)
    state.runner().start_call(key, settings, call)
    clock.start()


def _save_soon() -> None:
    """Save the journal: now in background mode (the process may end next),
    else at the next tick, so a burst of changes (a paste of many IDs) costs
    one snapshot."""
    if state.runs_to_end():
        history.save()
    else:
        state.current.journal_dirty = True
        clock.start()


def _show_list() -> None:
    if state.current.list_dirty:
        state.current.list_dirty = False
        state.hooks.list_changed()
    state.hooks.shown_changed()


def shutdown() -> None:
    """Stop every worker (within about a second) and the timer; keep nothing.

    The journal is not rewritten: tasks that were running stay unfinished in
    it and resume next time."""
    old = state.reset()
    files.cache_changed()
    # NOTE: each step even when one before it failed: a converter that cannot
    # be cleaned up must not leave the timer, the workers or the lock behind.
    try:
        conversions.stop_all()
    finally:
        try:
            clock.stop()
            if old.runner is not None:
                old.runner.shutdown(timeout_s=1.0)
        finally:
            ownership.release(old)
