"""Connects the engine to the interface while the add-on is enabled.

The engine (``engine/``) never imports the UI: here its hooks are pointed at
the task list, the reports and the call results the panels show, and at the
policy the preferences decide. ``shutdown`` stops everything the session holds.
"""

from __future__ import annotations

from . import connection, preferences, submit_calls, texture_selection, ui_sync
from ..core.jobs import CallResult
from ..engine import clock, control, history, state, timer


def _call_done(result: CallResult) -> None:
    for apply in (submit_calls.apply_call, connection.apply_call):
        if apply(result):
            return


def _shown_changed() -> None:
    ui_sync.refresh()


def _list_changed() -> None:
    ui_sync.sync_list()


def connect() -> None:
    """Install the hooks and the timer's tick, then read the journal (history
    shows, unfinished tasks resume) and the requests kept unsent."""
    clock.install(timer.tick)
    state.hooks = state.Hooks(
        shown_changed=_shown_changed,
        list_changed=_list_changed,
        post_report=ui_sync.post_report,
        call_done=_call_done,
        pump_sends=submit_calls.pump,
        auto_import=preferences.auto_import,
        max_download_bytes=preferences.max_download_bytes,
        max_converters=preferences.max_converters,
        settings=preferences.usable_settings,
        after_import=texture_selection.place_beside,
    )
    history.book()
    submit_calls.restore_kept()
    # The list is filled here (once, a few milliseconds for the longest
    # history), not in a timer call.
    if ui_sync.sync_list():
        state.current.list_dirty = False
    if state.current.journal_dirty:
        history.save()  # a journal longer than it may be is written again now, not in a timer call
    if state.current.resume_pending:
        clock.start()


def shutdown() -> None:
    """Stop every worker (within about a second) and the timer; keep nothing.
    The hooks stay: the add-on may still be enabled (a test, a restart)."""
    control.shutdown()
    submit_calls.reset()
    connection.reset()
    ui_sync.reset()


def disconnect() -> None:
    """Back to hooks that only log: the UI they called is being unregistered."""
    state.hooks = state.Hooks()
