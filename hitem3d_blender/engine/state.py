"""The engine's state for one session, and the hooks that connect it to the UI.

The state is one object so a shutdown can drop it in one line; every module
reads it as ``state.current`` at the moment it needs it.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Callable

import bpy

from ..core import journal
from ..core.conversion import default_at_once
from ..core.downloader import DEFAULT_MAX_BYTES
from ..core.errors import CredentialsMissing
from ..core.instance_lock import InstanceLock
from ..core.jobs import CallResult
from ..core.messages import Message
from ..core.settings import ApiSettings
from ..core.tasks import TaskBook, TaskRecord
from ..core.worker_process import WorkerProcess

log = logging.getLogger(__package__)


def _nothing() -> None:
    pass


def _log_report(message: Message, level: str) -> None:
    log.log({"ERROR": logging.ERROR, "WARNING": logging.WARNING}.get(level, logging.INFO), "%s", message)


def _ignore_call(result: CallResult) -> None:
    log.debug("No one waits for call %s", result.key)


def _names_as_they_are(rec: TaskRecord, names: list[str]) -> list[str]:
    return names


def _no_settings() -> ApiSettings:
    # Only before ``session.connect``: no preferences to read credentials from.
    raise CredentialsMissing()


@dataclass
class Hooks:
    """What the engine tells the UI, and the policy the UI decides.

    The defaults let the engine run with no UI at all (they log)."""

    # Something the panels show changed (a state, a progress, a message).
    shown_changed: Callable[[], None] = _nothing
    # Tasks were added, removed or reordered: the UI list mirrors the book.
    list_changed: Callable[[], None] = _nothing
    # A message for the user: (text, "INFO" | "WARNING" | "ERROR").
    post_report: Callable[[Message, str], None] = _log_report
    # A one-off call (not awaited by ``batch.run_calls``) has its result.
    call_done: Callable[[CallResult], None] = _ignore_call
    # Every tick: move the queue of requests that spend credits on (a slot may
    # have freed); True while one waits, so the timer keeps ticking for it.
    pump_sends: Callable[[], bool] = lambda: False
    # Policy.
    auto_import: Callable[[], bool] = lambda: True
    max_download_bytes: Callable[[], int] = lambda: DEFAULT_MAX_BYTES
    # How many converters may run at once (``engine.conversions``).
    max_converters: Callable[[], int] = default_at_once
    # Settings for restarting unfinished tasks; raises ``Hitem3DError`` when unusable.
    settings: Callable[[], ApiSettings] = _no_settings
    # Right after a task's objects are imported (main thread): may rename or
    # move them (Texture Selection places its result beside the original);
    # returns the objects' names.
    after_import: Callable[[TaskRecord, list[str]], list[str]] = _names_as_they_are


class Session:
    """Everything the engine holds between two shutdowns."""

    def __init__(self) -> None:
        self.runner: WorkerProcess | None = None  # the workers, in a process of their own
        self.book = TaskBook()
        self.loaded = False  # the journal has been read into the book
        self.resume_pending = False
        self.journal_dirty = False
        self.journal_changes = journal.Changes()  # what changed since the last save
        self.journal_file: journal.JournalFile | None = None  # made when the journal is read
        self.list_dirty = True
        self.import_requests: set[str] = set()
        self.downloaded: set[str] = set()  # tasks that reached DOWNLOADED: the timer imports from here
        self.awaited_calls: dict[str, CallResult | None] = {}  # batch.run_calls: key -> result once in
        self.lock: InstanceLock | None = None  # ownership of the folder, taken on first use


current = Session()
hooks = Hooks()


def reset() -> Session:
    """Start a fresh session; returns the old one (for its runner)."""
    global current
    old, current = current, Session()
    return old


def runs_to_end() -> bool:
    """Whether work runs to its end inside the operator that started it: yes
    without an event loop (``blender -b``, the ``bpy`` module), where timers
    never fire; tests switch it off to drive the interactive path."""
    return bool(bpy.app.background)


def runner() -> WorkerProcess:
    """The workers. NOTE: in a process of their own: no Python thread of ours
    may run in Blender's (see ``core.worker_process``)."""
    if current.runner is None:
        current.runner = WorkerProcess()
    return current.runner


def is_running(task_id: str) -> bool:
    return current.runner is not None and current.runner.is_running(task_id)
