"""The task model: states, the legal moves between them, and the book of tasks.

Workers describe progress with immutable ``TaskUpdate`` values; only the main
thread applies them to ``TaskRecord`` objects in the ``TaskBook``, so records
need no locks.
"""

from __future__ import annotations

import enum
import time
from dataclasses import dataclass, field
from typing import Any, Iterable, Iterator, Mapping

from .import_options import ImportOptions
from .messages import NONE, N_, Message, msg, msg_own, verbatim
from .safe_files import Seal

from .task_ids import is_task_id, short_id


class TaskState(str, enum.Enum):
    PENDING = "pending"  # accepted here, no answer from Hitem3D yet
    CREATED = "created"
    QUEUEING = "queueing"
    PROCESSING = "processing"
    DOWNLOADING = "downloading"
    DOWNLOADED = "downloaded"  # file on disk, import not yet done
    IMPORTING = "importing"
    DONE = "done"
    FAILED = "failed"
    CANCELLED = "cancelled"
    # Created on Hitem3D, but no query path this version knows answers for it
    # (``errors.NotFollowable``): kept with its ID, never called failed.
    UNFOLLOWED = "unfollowed"

    @property
    def label(self) -> Message:
        return msg_own(_LABELS[self])

    @property
    def is_terminal(self) -> bool:
        return self in TERMINAL_STATES

    @property
    def is_active(self) -> bool:
        return not self.is_terminal


# NOTE: in our own translation context, as one family: Blender's catalogue
# reads "Starting" as 未完善 ("incomplete").
_LABELS: dict[TaskState, str] = {
    TaskState.PENDING: N_("Starting"),
    TaskState.CREATED: N_("Created"),
    TaskState.QUEUEING: N_("Queueing"),
    TaskState.PROCESSING: N_("Processing"),
    TaskState.DOWNLOADING: N_("Downloading"),
    TaskState.DOWNLOADED: N_("Ready to import"),
    TaskState.IMPORTING: N_("Importing"),
    TaskState.DONE: N_("Done"),
    TaskState.FAILED: N_("Failed"),
    TaskState.CANCELLED: N_("Cancelled"),
    TaskState.UNFOLLOWED: N_("Not followed"),
}

TERMINAL_STATES = frozenset({TaskState.DONE, TaskState.FAILED, TaskState.CANCELLED, TaskState.UNFOLLOWED})

_S = TaskState
# Where each state may go next. Remote states can repeat (each poll reports one)
# and may skip ahead; anything running can fail, be cancelled or turn out not
# followable (UNFOLLOWED: created, but no known path answers); a finished task
# only starts again through PENDING (retry) or IMPORTING (import again).
TRANSITIONS: dict[TaskState, frozenset[TaskState]] = {
    _S.PENDING: frozenset({_S.PENDING, _S.CREATED, _S.QUEUEING, _S.PROCESSING, _S.DOWNLOADING, _S.DOWNLOADED}),
    _S.CREATED: frozenset({_S.CREATED, _S.QUEUEING, _S.PROCESSING, _S.DOWNLOADING}),
    _S.QUEUEING: frozenset({_S.QUEUEING, _S.PROCESSING, _S.DOWNLOADING}),
    _S.PROCESSING: frozenset({_S.PROCESSING, _S.DOWNLOADING}),
    # An expired link sends a download back to asking for the task again.
    _S.DOWNLOADING: frozenset({_S.DOWNLOADING, _S.DOWNLOADED, _S.PROCESSING}),
    # Back to PENDING: its file was deleted (Clear Cache) before the import.
    _S.DOWNLOADED: frozenset({_S.IMPORTING, _S.PENDING}),
    _S.IMPORTING: frozenset({_S.DONE}),
    _S.DONE: frozenset({_S.IMPORTING, _S.PENDING}),
    _S.FAILED: frozenset({_S.PENDING}),
    _S.CANCELLED: frozenset({_S.PENDING}),
    _S.UNFOLLOWED: frozenset({_S.PENDING}),
}
for _state in TaskState:
    if not _state.is_terminal:
        TRANSITIONS[_state] = TRANSITIONS[_state] | {_S.FAILED, _S.CANCELLED, _S.UNFOLLOWED}


class IllegalTransition(Exception):
    pass


@dataclass(frozen=True)
class TaskUpdate:
    """One fact from a worker about one task. Plain values only."""

    task_id: str
    state: TaskState
    progress: float | None = None  # 0..1 when known
    message: Message = NONE  # the error for FAILED; otherwise a detail such as a retry notice
    result_path: str = ""
    bytes_done: int = 0
    bytes_total: int | None = None
    cover_path: str = ""
    # Which run of the task this came from (``jobs.JobRunner.start_import``);
    # 0: any. Updates of an earlier run (cancelled, then started again) are stale.
    run: int = 0


@dataclass
class TaskRecord:
    """What the panel shows about one task; touched on the main thread only."""

    task_id: str
    state: TaskState = TaskState.PENDING
    progress: float | None = None
    message: Message = NONE
    result_path: str = ""
    bytes_done: int = 0
    bytes_total: int | None = None
    started_at: float = field(default_factory=time.time)
    finished_at: float | None = None
    imported_objects: list[str] = field(default_factory=list)
    cover_path: str = ""
    model: str = ""  # model version, when we submitted the task ourselves
    # The request that created the task (``core.submission.Submission.to_dict``);
    # empty for a task imported by ID.
    generation: dict[str, Any] = field(default_factory=dict)
    options: ImportOptions = field(default_factory=ImportOptions)
    # What the task's asset library entry held when this Blender wrote it:
    # Import Again appends it only if it still does (``scene.append``).
    entry_seal: Seal = Seal()
    run: int = 0  # the run whose updates count (not saved: runs end with the session)

    def __setattr__(self, name: str, value: Any) -> None:
        # Every assignment counts as a change, and the book holding the record
        # hears of it: the journal then saves only the records that changed.
        # NOTE: fields are replaced, never changed in place, so this sees all.
        super().__setattr__(name, value)
        fields = self.__dict__
        fields["_changes"] = fields.get("_changes", 0) + 1
        book = fields.get("_book")
        if book is not None:
            book._touched(self, name)

    @property
    def changes(self) -> int:
        """A number that differs after any assignment to the record."""
        return int(self.__dict__.get("_changes", 0))

    @property
    def short_id(self) -> str:
        return short_id(self.task_id)

    def elapsed_s(self, now: float | None = None) -> float:
        end = self.finished_at if self.finished_at is not None else (time.time() if now is None else now)
        return max(0.0, end - self.started_at)

    def move_to(self, state: TaskState) -> None:
        if state not in TRANSITIONS[self.state]:
            raise IllegalTransition(f"{self.short_id}: {self.state.value} -> {state.value}")
        previous, self.state = self.state, state
        if state.is_terminal:
            self.finished_at = time.time()
        elif state is TaskState.PENDING and previous is not TaskState.PENDING:
            # A retry notice before the first answer repeats PENDING: the
            # attempt goes on, and so does its elapsed time.
            self.restart()

    def restart(self) -> None:
        self.progress = None
        self.message = NONE
        self.bytes_done = 0
        self.bytes_total = None
        self.started_at = time.time()
        self.finished_at = None

    def apply(self, update: TaskUpdate) -> None:
        """Take a worker's update. Raises ``IllegalTransition`` for a move the
        state machine does not allow (a stale update, say)."""
        self.move_to(update.state)
        self.progress = update.progress
        self.message = update.message
        if update.result_path:
            self.result_path = update.result_path
        if update.cover_path:
            self.cover_path = update.cover_path
        if update.state is TaskState.DOWNLOADING:
            self.bytes_done = update.bytes_done
            self.bytes_total = update.bytes_total


    # -- the journal's view of a record ------------------------------------------

    def to_dict(self) -> dict[str, Any]:
        return {
            "task_id": self.task_id,
            "state": self.state.value,
            # English for people who read the file, the template and values to show it translated.
            "message": str(self.message),
            "message_id": self.message.to_dict(),
            "result_path": self.result_path,
            "cover_path": self.cover_path,
            "bytes_total": self.bytes_total,
            "started_at": self.started_at,
            "finished_at": self.finished_at,
            "imported_objects": list(self.imported_objects),
            "model": self.model,
            "generation": dict(self.generation),
            "options": self.options.to_dict(),
            "entry_digest": self.entry_seal.digest,
            "entry_identity": self.entry_seal.identity,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> TaskRecord:
        """A record from its saved form. Raises ``ValueError`` for an entry that
        cannot be a task (the journal skips it)."""
        task_id = data.get("task_id")
        if not isinstance(task_id, str) or not task_id:
            raise ValueError("task entry without task_id")
        if not is_task_id(task_id):
            # An edited journal is input too: its IDs are shown and sent.
            raise ValueError("task entry whose task_id is not one")
        try:
            state = TaskState(data.get("state"))
        except ValueError:
            raise ValueError(f"unknown state {data.get('state')!r}") from None
        record = cls(task_id, state=state)
        record.message = _message(data)
        record.result_path = _text(data.get("result_path"))
        record.cover_path = _text(data.get("cover_path"))
        record.model = _text(data.get("model"))
        generation = data.get("generation")
        record.generation = dict(generation) if isinstance(generation, dict) else {}
        total = data.get("bytes_total")
        record.bytes_total = total if isinstance(total, int) and not isinstance(total, bool) else None
        started = data.get("started_at")
        record.started_at = float(started) if isinstance(started, (int, float)) else time.time()
        finished = data.get("finished_at")
        record.finished_at = float(finished) if isinstance(finished, (int, float)) else None
        objects = data.get("imported_objects")
        record.imported_objects = [str(name) for name in objects] if isinstance(objects, list) else []
        options = data.get("options")
        record.options = ImportOptions.from_dict(options if isinstance(options, dict) else None)
        record.entry_seal = Seal(_text(data.get("entry_digest")), _text(data.get("entry_identity")))
        return record


def _text(value: object) -> str:
    return value if isinstance(value, str) else ""


def _message(data: Mapping[str, Any]) -> Message:
    """A saved message: translatable when its template and values are sound,
    else its English text as it is (a journal from before messages had IDs)."""
    try:
        return Message.from_dict(data.get("message_id"))
    except ValueError:
        return verbatim(_text(data.get("message")))


class TaskBook:
    """All tasks this session knows, newest first.

    NOTE: the timer runs many times a second beside a history of hundreds of
    finished tasks: the book keeps what that work asks about (the unfinished
    tasks, what changed since the journal last looked, whether the order
    moved) up to date as records change, so nothing walks the whole list.
    """

    def __init__(self) -> None:
        self._records: dict[str, TaskRecord] = {}  # oldest first
        self._unfinished: dict[str, TaskRecord] = {}
        self._changed: set[str] = set()
        # Bumped whenever a task is added, removed or moved: the UI list only
        # copies the order when it moved.
        self.order_version = 0
        # How the order moved since each follower (the journal, the UI list)
        # last looked (``take_moves``): (task ID, True) put last, (task ID,
        # False) gone; None when more moved than the book holds.
        self._moves: dict[str, list[tuple[str, bool]] | None] = {}

    def __len__(self) -> int:
        return len(self._records)

    def __iter__(self) -> Iterator[TaskRecord]:
        return iter(reversed(list(self._records.values())))

    def __contains__(self, task_id: object) -> bool:
        return task_id in self._records

    def get(self, task_id: str) -> TaskRecord | None:
        return self._records.get(task_id)

    def add(self, task_id: str) -> TaskRecord:
        """A new PENDING record, or the existing one moved to the end (newest)."""
        record = self._records.pop(task_id, None) or TaskRecord(task_id)
        self._adopt(record)
        return record

    def put(self, record: TaskRecord) -> None:
        """Add a restored record as the newest (the journal loads oldest first)."""
        previous = self._records.pop(record.task_id, None)
        if previous is not None and previous is not record:
            previous.__dict__.pop("_book", None)
        self._adopt(record)

    def bring_to_top(self, task_ids: list[str]) -> None:
        """List ``task_ids`` first, in the order given (the book lists the
        newest first: what was pasted together stays in its pasted order)."""
        for task_id in reversed(task_ids):
            record = self._records.pop(task_id, None)
            if record is not None:
                self._records[task_id] = record
                self.order_version += 1
                self._moved(task_id, True)

    def oldest_first(self) -> list[TaskRecord]:
        return list(self._records.values())

    def ids_newest_first(self) -> list[str]:
        return list(reversed(self._records))

    def ids_oldest_first(self) -> list[str]:
        return list(self._records)

    def remove(self, task_id: str) -> None:
        record = self._records.pop(task_id, None)
        if record is not None:
            record.__dict__.pop("_book", None)
            self._unfinished.pop(task_id, None)
            self._changed.discard(task_id)
            self.order_version += 1
            self._moved(task_id, False)

    def active(self) -> list[TaskRecord]:
        return [record for record in self if record.state.is_active]

    def unfinished(self) -> Iterable[TaskRecord]:
        """The tasks not finished, in no particular order; costs nothing per finished task."""
        return self._unfinished.values()

    @property
    def finished_count(self) -> int:
        return len(self._records) - len(self._unfinished)

    def latest(self) -> TaskRecord | None:
        return next(iter(self), None)

    def trim(self, max_finished: int) -> list[str]:
        """Forget the oldest finished tasks beyond ``max_finished``, never an
        unfinished one; returns their IDs. Costs nothing while within bounds."""
        excess = self.finished_count - max_finished
        if excess <= 0:
            return []
        dropped = []
        for task_id, record in self._records.items():
            if record.state.is_terminal:
                dropped.append(task_id)
                if len(dropped) == excess:
                    break
        for task_id in dropped:
            self.remove(task_id)
        return dropped

    def take_changes(self) -> set[str]:
        """The IDs of the tasks added or changed since the last call (removed
        ones are left out: they are gone from the order)."""
        changed, self._changed = self._changed, set()
        return changed

    def take_moves(self, follower: str) -> list[tuple[str, bool]] | None:
        """How the order moved since ``follower`` last asked, oldest move
        first: (task ID, True) put last, (task ID, False) gone; None when the
        whole order should be copied (its first call, or more moved than the
        book holds). What follows a copy of the order costs what moved."""
        moves = self._moves.get(follower)
        self._moves[follower] = []
        return moves

    def _moved(self, task_id: str, last: bool) -> None:
        for follower, moves in self._moves.items():
            if moves is None:
                continue
            moves.append((task_id, last))
            # NOTE: bounded: a follower that stops asking (a journal never
            # saved while another Blender owns the folder) keeps no more.
            if len(moves) > 2 * len(self._records) + 64:
                self._moves[follower] = None

    def mark_changed(self, task_id: str) -> None:
        if task_id in self._records:
            self._changed.add(task_id)

    def _adopt(self, record: TaskRecord) -> None:
        self._records[record.task_id] = record
        record.__dict__["_book"] = self
        self.order_version += 1
        self._moved(record.task_id, True)
        self._touched(record, "state")

    def _touched(self, record: TaskRecord, name: str) -> None:
        """``record`` had ``name`` assigned (``TaskRecord.__setattr__``)."""
        self._changed.add(record.task_id)
        if name == "state":
            if record.state.is_terminal:
                self._unfinished.pop(record.task_id, None)
            else:
                self._unfinished[record.task_id] = record
