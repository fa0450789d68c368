"""The journal glue: the book is read from the journal once and saved to it
after changes, off the main thread when there is an event loop."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from ..core import journal
from ..core.tasks import TaskBook, TaskRecord, TaskState
from . import files, ownership, state

log = logging.getLogger(__package__)

# Records converted for the journal per timer call (about 6 µs each): keeps
# the call short after a paste of many IDs; the rest follows a tick later.
MAX_FRESH_PER_SAVE = 50


def book() -> TaskBook:
    """The session's tasks, read from the journal on first use."""
    ensure_loaded()
    return state.current.book


def record(task_id: str) -> TaskRecord | None:
    return book().get(task_id)


def ensure_loaded() -> None:
    """Read the journal once: finished tasks become history, unfinished ones
    are queued to resume (interactive sessions resume them from the timer,
    which ``session.connect`` starts)."""
    session = state.current
    if session.loaded:
        return
    session.loaded = True
    try:
        loaded = journal.load(files.journal_path())
    except OSError:
        log.warning("Could not open the task journal", exc_info=True)
        return
    owner = ownership.owns_folder()
    for rec in loaded.records:
        if rec.state.is_active and not owner:
            continue  # the owning Blender runs it
        if rec.state.is_active:
            # Interrupted by a quit or a disable: it starts again from the top.
            rec.state = TaskState.PENDING
            rec.restart()
            session.resume_pending = True
        session.book.put(rec)
    session.list_dirty = True
    if loaded.warning:
        state.hooks.post_report(loaded.warning, "WARNING")


def changed() -> None:
    """A record changed outside an update: the next tick saves the journal."""
    state.current.journal_dirty = True


def save() -> None:
    session = state.current
    if not session.loaded or not ownership.owns_folder():
        return
    session.journal_dirty = False
    try:
        path = files.journal_path()
    except OSError:
        log.warning("Could not save the task journal", exc_info=True)
        return
    background = state.runs_to_end()
    session.snapshots.max_fresh = None if background else MAX_FRESH_PER_SAVE
    entries = journal.snapshot(session.book.oldest_first(), session.snapshots)
    if not session.snapshots.complete:
        session.journal_dirty = True  # the rest at the next tick, then one write
        return
    if background:
        _write(path, entries)
    else:
        # NOTE: the write ends in an fsync, milliseconds long (tens during a
        # download): the main thread only takes the snapshot.
        state.runner().write_later(files.JOURNAL_NAME, lambda: _write(path, entries))


def _write(path: Path, entries: list[dict[str, Any]]) -> None:
    try:
        journal.write(path, entries)
    except OSError as exc:
        # A full disk says so in one line (DiskFull names the folder).
        log.warning("Could not save the task journal: %s", exc, exc_info=True)
