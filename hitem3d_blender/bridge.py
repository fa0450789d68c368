"""Compatibility names for code written before the engine was split up.

NOTE: new code imports the module that does the job (``engine.control``,
``engine.timer``, ``engine.files``, ``ui_sync``, ...). Names are re-exported,
not wrapped, so ``bridge.tick is engine.timer.tick``; monkeypatching a name
here changes nothing, which is why ``runs_to_end`` is deliberately absent
(patch ``engine.state.runs_to_end``).
"""

from __future__ import annotations

from .engine.batch import run_calls, wait_for, wait_for_call
from .engine.control import (
    cancel,
    clear_cache,
    clear_finished,
    fail_without_start,
    import_now,
    remove,
    request_import,
    resume_unfinished,
    start_call,
    start_import,
)
from .engine.files import cache_size, cover_path, journal_path, result_path, results_dir, user_dir
from .engine.history import book, record
from .engine.state import is_running
from .engine.timer import tick
from .session import shutdown
from .ui_sync import cover_icon, cover_preview, post_report, redraw, select

__all__ = [
    "book", "cache_size", "cancel", "clear_cache", "clear_finished", "cover_icon", "cover_path", "cover_preview",
    "fail_without_start", "import_now", "is_running", "journal_path", "post_report", "record", "redraw", "remove",
    "request_import", "result_path", "results_dir", "resume_unfinished", "run_calls", "select", "shutdown",
    "start_call", "start_import", "tick", "user_dir", "wait_for", "wait_for_call",
]


