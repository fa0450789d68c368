"""The journal glue: the book is read from the journal once and saved to it
after changes, off the main thread when there is an event loop.

What a save costs on the main thread follows what changed (``journal.Changes``);
the book keeps no more finished tasks than the journal does.
"""

from __future__ import annotations

import logging

from ..core import journal
from ..core.tasks import TaskBook, TaskRecord, TaskState
from . import files, ownership, state

log = logging.getLogger(__package__)

# Records converted for the journal per timer call (6 to 10 µs each): keeps
# the call short after a paste of many IDs; the rest follows a tick later.
MAX_FRESH_PER_SAVE = 20


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
        path = files.journal_path()
        loaded = journal.load(path)
    except OSError:
        log.warning("Could not open the task journal", exc_info=True)
        return
    owner = ownership.owns_folder()
    restarted = []
    for rec in loaded.records:
        if rec.state.is_active and not owner:
            continue  # the owning Blender runs it
        session.book.put(rec)
        if rec.state.is_active:
            restarted.append(rec)
    # What was read is saved as it is: only what changes from here is written
    # again, and the order as it moves (the writer reads the same file).
    session.book.take_changes()
    session.book.take_moves(journal.MOVES_FOLLOWER)
    order = loaded.order
    session.journal_file = journal.JournalFile(path, loaded.lines, order)
    session.journal_changes = journal.Changes(in_step=order == session.book.ids_oldest_first())
    for rec in session.book.oldest_first():
        if rec.task_id not in loaded.lines:
            session.book.mark_changed(rec.task_id)
    for rec in restarted:
        # Interrupted by a quit or a disable: it starts again from the top.
        rec.state = TaskState.PENDING
        rec.restart()
        session.resume_pending = True
    if loaded.left_unread:
        session.journal_dirty = True  # the file is written again without them
    session.list_dirty = True
    if loaded.warning:
        state.hooks.post_report(loaded.warning, "WARNING")


def changed() -> None:
    """A record changed outside an update: the next tick saves the journal."""
    state.current.journal_dirty = True


def trim() -> None:
    """Keep the book within the journal's bounds (the oldest finished tasks
    beyond them leave the list)."""
    if state.current.book.trim(journal.MAX_ENTRIES):
        state.current.list_dirty = True


def save(soon: bool = False) -> None:
    """Save what changed. ``soon`` (the timer's saves): the worker process
    gets it with a later timer call that has little else to do, within half
    a second; else at once."""
    session = state.current
    if not session.loaded or not ownership.owns_folder() or session.journal_file is None:
        return
    session.journal_dirty = False
    trim()
    background = state.runs_to_end()
    taken = session.journal_changes.take(session.book, None if background else MAX_FRESH_PER_SAVE)
    if taken is None:
        session.journal_dirty = True  # the rest at the next tick, then one write
        return
    target = session.journal_file
    target.post(*taken)
    if background:
        _write(target)
    else:
        # NOTE: the write ends in an fsync, milliseconds long (tens during a
        # download): the main thread only hands over what changed, to the
        # worker process.
        state.runner().write_journal(target, *taken, now=not soon)


def _write(target: journal.JournalFile) -> None:
    try:
        target.write()
    except OSError as exc:
        # A full disk says so in one line (DiskFull names the folder).
        log.warning("Could not save the task journal: %s", exc, exc_info=True)
