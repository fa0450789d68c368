"""The main-thread consumer of worker results.

``tick`` (a persistent ``bpy.app.timers`` callback) drains the runner's
queue, applies updates to the book, hands call results on, imports what is
ready, saves the journal and tells the UI. In background mode there is no
event loop, so ``batch`` calls ``tick`` itself: both modes apply results
through the same code.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import time
from typing import Callable

from ..core.conversion import ConversionOutcome
from ..core import logs
from ..core.jobs import CallResult
from ..core.messages import msg
from ..core.tasks import IllegalTransition, TaskRecord, TaskState, TaskUpdate
from . import control, conversions, files, history, import_step, ownership, state

log = logging.getLogger(__package__)

BUSY_INTERVAL_S = 0.1
# States in which a task is on its way to an import.
_WARM_STATES = frozenset({TaskState.CREATED, TaskState.QUEUEING, TaskState.PROCESSING, TaskState.DOWNLOADING})
WAITING_INTERVAL_S = 0.5
# A timer call starts imports and appends converted models while less than
# this has gone (a frame at 60 Hz), then leaves the rest to the next call: an
# append of a big model takes a tenth of a second, and Blender should draw and
# take input between two.
IMPORT_BUDGET_S = 1 / 60
# Worker results applied per call. Steady work brings fewer (at most 20 status
# checks a second, and a poll that reads as the last one is not sent); a burst
# (20 tasks cancelled at once, a paste of finished tasks) is applied over a few
# calls 0.1 s apart, so no call grows with it: a result costs its decoding,
# its record, and its share of the journal's save and of the list (up to 200
# µs on the 2-core benchmark machine), so 3 keep a call under a millisecond
# there, and 20 cancels all show within 0.7 s.
# NOTE: a fixed count, not a time budget (tried: under load a call then took
# one result, and a task's last update was applied a call before its job's
# end, so a task shown failed refused Retry until the next call; 7 tests saw it).
RESULTS_PER_CALL = 3
# Without a converter starter thread (Python 3.11), a converter is started
# ahead only by a call that has taken less than this.
WARM_START_BUDGET_S = 0.3e-3
# A call hands journal changes to the worker process while it has taken less
# than this (a batch however late once they have waited half a second).
JOURNAL_BUDGET_S = 0.5e-3
# Log lines wait to be written (``core.logs.held_writes``) while a call has
# taken more than this; the last call (the timer ends) writes them all.
LOG_BUDGET_S = 0.35e-3


def tick() -> float | None:
    """The timer callback: apply worker results, import what is ready, save the
    journal, tell the UI. Returns the next interval, or None (the timer ends)
    when nothing is running. Never raises."""
    started = time.perf_counter()
    interval: float | None = WAITING_INTERVAL_S
    # A log line costs a call up to 0.3 ms: in a window, written in a quieter
    # call; where work runs to its end in the operator, nobody waits for a frame.
    with logs.held_writes() if not state.runs_to_end() else contextlib.nullcontext():
        try:
            interval = _tick()
        except Exception:  # noqa: BLE001
            # An exception would reach Blender's console and unregister the timer,
            # stranding every other task: log it (with traceback, in the log file)
            # and keep going.
            log.exception("Unexpected error in the Hitem3D timer")
    logs.write_held(until=started + LOG_BUDGET_S, final=interval is None)
    return interval


def _tick() -> float | None:
    # NOTE: what a call costs follows what changed since the last one (the
    # results drained, the tasks that moved): never a pass over the history.
    started = time.perf_counter()
    session = state.current
    if session.resume_pending and not state.runs_to_end():
        # NOTE: never in background mode: a batch job must not import tasks
        # that an artist left unfinished in the last interactive session.
        control.resume_unfinished()
    runner = session.runner
    results = runner.drain(RESULTS_PER_CALL) if runner is not None else []
    shown = False
    for result in results:
        if isinstance(result, TaskUpdate):
            shown = apply_update(result) or shown
        else:
            apply_call(result)
            shown = True
    # A task that ended may have freed a slot for a request waiting to be sent.
    sends_waiting = state.hooks.pump_sends()
    converted = conversions.finished()
    ready = [rec for rec in (session.book.get(task_id) for task_id in list(session.downloaded))
             if rec is not None and rec.state is TaskState.DOWNLOADED and _should_import(rec)]
    importing = bool(ready or converted)
    left = _import_in_turns(converted, ready)
    # A converter starts while a task is made on Hitem3D or downloads, so
    # Blender's start-up (about a second) is over when the model arrives;
    # none is kept when no task is on its way to an import. Its start runs
    # on the converter starter's thread where there is one (this call only
    # asks for it), else it waits for a call that has done little else (0.1 s
    # later at most).
    conversions.keep_warm(_import_ahead(), files.work_dir,
                          may_start=time.perf_counter() - started < WARM_START_BUDGET_S)
    if session.journal_dirty:
        history.save(soon=True)  # handed to the worker process in this call's spare time
    # NOTE: asked after the drain and the save: the worker process reads its
    # child's lines in order (a run's results, then its end), so a runner idle
    # now has no result to come without a new run, started from this thread
    # with the timer; it is busy while a save waits to be handed over.
    busy = session.runner is not None and session.runner.busy
    if session.list_dirty:
        session.list_dirty = False
        state.hooks.list_changed()
    if shown or importing or busy:
        # The UI looks at the rows it shows (the elapsed times move while tasks run).
        state.hooks.shown_changed()
    if session.runner is not None:
        session.runner.hand_over_journal(started + JOURNAL_BUDGET_S)
        busy = session.runner.busy  # the save may all have gone
    if conversions.busy() or left:
        return BUSY_INTERVAL_S  # a child is converting: poll it (never wait on it)
    if busy:
        return BUSY_INTERVAL_S if results else WAITING_INTERVAL_S
    if results:
        return BUSY_INTERVAL_S
    if sends_waiting:
        return WAITING_INTERVAL_S  # a request waits for its time to go again
    # Nothing runs: partial files a Blender that is gone left here (a guest
    # that crashed mid-download) go now, not at the owner's next start.
    try:
        ownership.remove_partial_files()
    except OSError:
        log.debug("Could not look for partial downloads", exc_info=True)
    return None


def _import_in_turns(converted: list[tuple[str, ConversionOutcome]], ready: list[TaskRecord]) -> bool:
    """Append converted models, then start the imports that are ready, while
    the call is within IMPORT_BUDGET_S (the first always); True when some are
    left for the next call."""
    steps: list[Callable[[], None]] = [functools.partial(import_step.finish_conversion, task_id, outcome)
                                       for task_id, outcome in converted]
    steps += [functools.partial(import_step.run, rec) for rec in ready]
    started = time.perf_counter()
    for index, step in enumerate(steps):
        if index and time.perf_counter() - started >= IMPORT_BUDGET_S:
            return True
        step()
    return False


def _import_ahead() -> bool:
    """Whether a task that will be imported is still made on Hitem3D or downloading."""
    session = state.current
    if state.runs_to_end():
        return False
    if state.hooks.auto_import():
        return any(rec.state in _WARM_STATES for rec in session.book.unfinished())
    requested = (session.book.get(task_id) for task_id in session.import_requests)
    return any(rec is not None and rec.state in _WARM_STATES for rec in requested)


def _should_import(rec: TaskRecord) -> bool:
    if rec.task_id in state.current.import_requests or state.runs_to_end():
        return True
    return state.hooks.auto_import()


def apply_update(update: TaskUpdate) -> bool:
    """Take a worker's update; True when the panels show something new."""
    rec = state.current.book.get(update.task_id)
    if rec is None:  # removed while its worker was finishing
        return False
    if update.run and update.run != rec.run:
        log.debug("Ignored an update of an earlier run of %s", rec.short_id)
        return False
    previous = rec.state
    seen = (rec.state, rec.progress, rec.message, rec.bytes_done)
    try:
        rec.apply(update)
    except IllegalTransition as exc:
        log.debug("Ignored stale update: %s", exc)
        return False
    if rec.state is TaskState.DOWNLOADED:
        state.current.downloaded.add(rec.task_id)
        files.cache_changed()
    # NOTE: loading the journal sends every unfinished task back to the start,
    # so moves between running states need no save (each is a snapshot of the
    # whole list on the main thread); an ending and a cover do.
    if (rec.state is not previous and rec.state.is_terminal) or update.cover_path:
        state.current.journal_dirty = True
    if update.state is TaskState.FAILED:
        state.hooks.post_report(msg("Task {short}: {reason}", short=rec.short_id, reason=update.message), "ERROR")
    elif update.state is TaskState.UNFOLLOWED:  # not a failure: the task exists, this version cannot follow it
        state.hooks.post_report(msg("Task {short}: {reason}", short=rec.short_id, reason=update.message), "WARNING")
    return (rec.state, rec.progress, rec.message, rec.bytes_done) != seen or bool(update.cover_path)


def apply_call(result: CallResult) -> None:
    awaited = state.current.awaited_calls
    if result.key in awaited:
        awaited[result.key] = result
        return
    state.hooks.call_done(result)

