"""The journal: every task and its state, kept across Blender sessions.

One small JSON file in the extension's user folder, written atomically (a
temporary file, then ``os.replace``) so a crash mid-write leaves the previous
journal intact. A journal that cannot be read is moved aside, never fatal.

The file is one task per line, oldest first:
``{"version": 1, "tasks": [`` / one JSON object a line / ``]}``. Any JSON with
that shape loads (older versions wrote it indented); the line form lets a load
parse only what it keeps and a write encode only what changed.
"""

from __future__ import annotations

import json
import logging
import os
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO, Callable, Iterable, TypeVar

from .messages import NONE, Message, msg
from . import safe_files
from .errors import clean_message
from .tasks import TERMINAL_STATES, TaskBook, TaskRecord

log = logging.getLogger(__name__)
T = TypeVar("T")

VERSION = 1
# Enough history for weeks of work: the newest finished tasks are kept (and
# every unfinished one); the oldest finished drop off first.
MAX_ENTRIES = 500

# The journal's name among those that follow the book's order (``TaskBook.take_moves``).
MOVES_FOLLOWER = "journal"

_HEAD = f'{{"version": {VERSION}, "tasks": [\n'
_TAIL = "\n]}\n"
_SEPARATOR = ",\n"
_FINISHED = frozenset(state.value for state in TERMINAL_STATES)
# A journal is read from its end in blocks of this size.
_BLOCK = 1 << 20


@dataclass
class Loaded:
    records: list[TaskRecord] = field(default_factory=list)
    warning: Message = NONE  # for the user when the file had to be moved aside
    # Each record's line as read, for ``JournalFile``: a record the load had
    # to change (a path outside the folder dropped) has none.
    lines: dict[str, str] = field(default_factory=dict)
    left_unread: bool = False  # the file held older tasks than it may keep

    @property
    def order(self) -> list[str]:
        """The task IDs read, oldest first, each once (where it first came)."""
        return list(dict.fromkeys(record.task_id for record in self.records))


def load(path: Path) -> Loaded:
    """The saved tasks, oldest first. A missing file is an empty journal; a
    corrupt one is renamed ``<name>.corrupt-<time>`` and reported in ``warning``.

    The file is read from its newest task back, and no further than its
    MAX_ENTRIES newest finished tasks: a journal this add-on wrote is read
    whole (it never keeps more), one that holds more (made elsewhere) costs
    what is kept, not its length."""
    try:
        with safe_files.open_read(path) as file:  # a symlinked journal is not followed
            newest = _newest_lines(file)
            if newest is None:
                file.seek(0)
                raw = file.read()
    except FileNotFoundError:
        return Loaded()
    except OSError as exc:
        log.warning("Could not read the task journal %s: %s", path, exc)
        return Loaded(warning=msg("Could not read the Hitem3D task history: starting with an empty list"))
    try:
        if newest is not None:
            pairs, left_unread = newest
        else:
            data = json.loads(raw.decode("utf-8"))
            entries = data["tasks"] if isinstance(data, dict) else None
            if not isinstance(entries, list):
                raise ValueError("no task list")
            kept = _newest(reversed(entries), _state_of)
            left_unread = len(kept) < len(entries)
            pairs = [(entry, "") for entry in kept]
    except (ValueError, KeyError, TypeError) as exc:
        aside = path.with_name(f"{path.name}.corrupt-{time.strftime('%Y%m%d-%H%M%S')}")
        try:
            os.replace(path, aside)
        except OSError:
            aside = path
        log.warning("Task journal %s is damaged (%s); moved to %s", path, exc, aside.name)
        return Loaded(warning=msg("The Hitem3D task history was damaged and was set aside as {name}",
                                  name=aside.name))
    loaded = Loaded(left_unread=left_unread)
    for entry, line in reversed(pairs):
        try:
            record = TaskRecord.from_dict(entry if isinstance(entry, dict) else {})
        except ValueError as exc:
            log.warning("Skipped a journal entry: %s", exc)
            continue
        if not _forget_outside_paths(record, path.parent) and line:
            loaded.lines[record.task_id] = line
        loaded.records.append(record)
    if left_unread:
        log.info("Task journal %s holds more than the newest %d finished tasks: the older ones were not read",
                 path.name, MAX_ENTRIES)
    return loaded


def _newest_lines(file: BinaryIO) -> tuple[list[tuple[Any, str]], bool] | None:
    """The entries of a journal in the line form with their lines, newest
    first, as far back as ``load`` keeps; with whether older ones were left
    unread. None for a journal in another form (the caller parses it whole).
    Raises ``ValueError`` for a line that is no JSON."""
    size = file.seek(0, os.SEEK_END)
    head, tail = _HEAD.encode(), _TAIL.encode()
    if size < len(head) + len(tail):
        return None
    file.seek(0)
    if file.read(len(head)) != head:
        return None
    file.seek(size - len(tail))
    if file.read(len(tail)) != tail:
        return None
    separator = _SEPARATOR.encode()
    lines: list[tuple[Any, str]] = []
    finished = 0
    position = size - len(tail)
    carry = b""  # the oldest line of the blocks read so far, maybe cut by the block's start
    while position > len(head):
        start = max(len(head), position - _BLOCK)
        file.seek(start)
        parts = (file.read(position - start) + carry).split(separator)
        position = start
        carry = parts.pop(0) if position > len(head) else b""
        for part in reversed(parts):
            line = part.decode("utf-8")
            entry = json.loads(line)
            if _state_of(entry) in _FINISHED:
                finished += 1
                if finished > MAX_ENTRIES:
                    return lines, True
            lines.append((entry, line))
    return lines, False


def _state_of(entry: object) -> object:
    return entry.get("state") if isinstance(entry, dict) else None


def _newest(newest_first: Iterable[T], state_of: Callable[[T], object]) -> list[T]:
    """What a load keeps, newest first: everything newer than the finished
    task that would be one too many."""
    kept: list[T] = []
    finished = 0
    for entry in newest_first:
        if state_of(entry) in _FINISHED:
            finished += 1
            if finished > MAX_ENTRIES:
                break
        kept.append(entry)
    return kept


def _kept(entries: list[Any], states: list[object]) -> list[Any]:
    """What a save keeps: every entry that is not finished, and the newest
    MAX_ENTRIES finished ones, oldest first."""
    skip = sum(1 for state in states if state in _FINISHED) - MAX_ENTRIES
    if skip <= 0:
        return entries
    kept = []
    for entry, state in zip(entries, states):
        if skip and state in _FINISHED:
            skip -= 1
            continue
        kept.append(entry)
    return kept


def _forget_outside_paths(record: TaskRecord, folder: Path) -> bool:
    """A journal is input: a file path outside its folder (an edited or
    planted journal) is dropped, never read or imported, and the saved
    message is cleaned like any text from outside. True when the record
    changed."""
    changed = False
    cleaned = clean_message(record.message)
    if cleaned != record.message:
        record.message = cleaned
        changed = True
    for name in ("result_path", "cover_path"):
        value = getattr(record, name)
        if value and not safe_files.inside(folder, value):
            log.warning("Journal entry %s: ignored a file outside the Hitem3D folder", record.short_id)
            setattr(record, name, "")
            changed = True
    return changed


def save(path: Path, records: list[TaskRecord]) -> None:
    """Write ``records`` (oldest first) at once, keeping what ``load`` keeps.
    The session saves through ``JournalFile`` instead: only what changed."""
    write(path, snapshot(records))


def snapshot(records: list[TaskRecord]) -> list[dict[str, Any]]:
    """What ``save`` writes: every unfinished record and the newest
    MAX_ENTRIES finished ones, as plain values."""
    kept = _kept(records, [record.state.value for record in records])
    return [record.to_dict() for record in kept]


def write(path: Path, entries: list[dict[str, Any]]) -> None:
    """Write entries atomically (a temporary file, fsync, rename)."""
    # A full disk raises DiskFull and leaves the previous journal whole.
    safe_files.write_atomic(path, _text(json.dumps(entry) for entry in entries).encode("utf-8"))


def _text(lines: Iterable[str]) -> str:
    return _HEAD + _SEPARATOR.join(lines) + _TAIL


@dataclass(frozen=True)
class OrderChange:
    """How the book's order moved between two saves: ``whole`` (every task
    ID, oldest first) when it is copied again, then ``moves`` in turn: (task
    ID, True) put last, (task ID, False) gone.

    NOTE: a save hands the moves over, not the order: one finished task
    pushing the oldest out of a 500-task history is two moves, where the
    order is 500 IDs to copy, encode and send on the main thread."""

    moves: tuple[tuple[str, bool], ...] = ()
    whole: tuple[str, ...] | None = None

    def then(self, later: OrderChange) -> OrderChange:
        """This change followed by ``later``, as one."""
        if later.whole is not None:
            return later
        return OrderChange(self.moves + later.moves, self.whole)

    def apply(self, order: dict[str, None]) -> dict[str, None]:
        """``order`` (task IDs oldest first, as dict keys) with this change made."""
        if self.whole is not None:
            order = dict.fromkeys(self.whole)
        for task_id, last in self.moves:
            order.pop(task_id, None)
            if last:
                order[task_id] = None
        return order

    def to_wire(self) -> dict[str, Any]:
        """The change as plain values for a message (``from_wire`` reads it back)."""
        value: dict[str, Any] = {"moves": [[task_id, 1 if last else 0] for task_id, last in self.moves]}
        if self.whole is not None:
            value["order"] = list(self.whole)
        return value

    @classmethod
    def from_wire(cls, value: Any) -> OrderChange | None:
        """A change sent by ``to_wire``; None when ``value`` holds none.
        Raises ``ValueError`` for one of another shape."""
        if not isinstance(value, dict) or ("moves" not in value and "order" not in value):
            return None
        whole, moves = value.get("order"), value.get("moves") or []
        if (whole is not None and not (isinstance(whole, list) and all(isinstance(t, str) for t in whole))) \
                or not isinstance(moves, list) \
                or not all(isinstance(m, list) and len(m) == 2 and isinstance(m[0], str) and m[1] in (0, 1)
                           for m in moves):
            raise ValueError("a journal order change of another shape")
        return cls(tuple((task_id, bool(last)) for task_id, last in moves),
                   tuple(whole) if whole is not None else None)


class Changes:
    """The main thread's side of saving: the saved form of each task that
    changed since the last save, and how the order moved, from the book's
    own record of changes.

    NOTE: a timer call must not cost more with a longer history: nothing here
    looks at a task that did not change, and the order goes as its moves. A
    paste of 1,000 IDs is converted over several calls (``max_fresh`` a call)
    and handed over once."""

    def __init__(self, in_step: bool = False) -> None:
        """``in_step``: the writer's order is the book's as of now (both read
        from the same file); else the first take copies the whole order."""
        self._todo: set[str] = set()
        self._entries: dict[str, dict[str, Any]] = {}
        self._in_step = in_step

    def take(self, book: TaskBook, max_fresh: int | None = None
             ) -> tuple[OrderChange | None, dict[str, dict[str, Any]]] | None:
        """``(order, entries)``: how the order moved since the last take
        (None: it has not) and the saved form of every task that changed; or
        None while converting goes on (``max_fresh`` records a call)."""
        self._todo |= book.take_changes()
        converted = 0
        while self._todo and (max_fresh is None or converted < max_fresh):
            task_id = self._todo.pop()
            record = book.get(task_id)
            if record is not None:
                self._entries[task_id] = record.to_dict()
                converted += 1
        if self._todo:
            return None
        moves = book.take_moves(MOVES_FOLLOWER)
        order: OrderChange | None = None
        if moves is None or not self._in_step:
            order = OrderChange(whole=tuple(book.ids_oldest_first()))
            self._in_step = True
        elif moves:
            order = OrderChange(tuple(moves))
        entries, self._entries = self._entries, {}
        return order, entries


class JournalFile:
    """The writer's side: the journal's text as one line per task, in the
    book's order. ``post`` (main thread, costs what changed) hands over what
    ``Changes.take`` gave; ``write`` (any one thread) encodes only the tasks
    that changed and writes the file.

    NOTE: the lines read at load are kept, so the first save after enabling
    encodes the tasks that changed, not the whole history."""

    def __init__(self, path: Path, lines: dict[str, str] | None = None, order: Iterable[str] = ()) -> None:
        """``lines``: each task's line as read; ``order``: the task IDs as
        read, oldest first (``Loaded.order``)."""
        self.path = path
        self._lines: dict[str, str] = dict(lines or {})
        self._lock = threading.Lock()
        self._order: dict[str, None] = dict.fromkeys(order)
        self._entries: dict[str, dict[str, Any]] = {}

    @classmethod
    def read(cls, path: Path) -> JournalFile:
        """The writer of the journal at ``path``, started from what is there."""
        loaded = load(path)
        return cls(path, loaded.lines, loaded.order)

    def post(self, order: OrderChange | None, entries: dict[str, dict[str, Any]]) -> None:
        """What changed since the last post: a write started later includes it."""
        with self._lock:
            if order is not None:
                self._order = order.apply(self._order)
            self._entries.update(entries)

    def order(self) -> list[str]:
        """The task IDs as the next write lists them, oldest first."""
        with self._lock:
            return list(self._order)

    def unwritten(self) -> tuple[list[str], dict[str, dict[str, Any]]]:
        """The order, and every entry posted since this file's own last write
        (Blender's copy never writes while a child does: all that changed)."""
        with self._lock:
            return list(self._order), dict(self._entries)

    def write(self) -> None:
        """Write the journal as of the last ``post``. Raises ``OSError``
        (``DiskFull``); what was posted is written by the next call."""
        with self._lock:
            order, entries, self._entries = list(self._order), self._entries, {}
        lines = self._lines
        for task_id, entry in entries.items():
            lines[task_id] = json.dumps(entry)
        if len(lines) > len(order):  # removed tasks
            kept = set(order)
            self._lines = lines = {task_id: line for task_id, line in lines.items() if task_id in kept}
        missing = [task_id for task_id in order if task_id not in lines]
        if missing:
            log.warning("Journal: %d tasks had no saved form and were left out", len(missing))
        safe_files.write_atomic(self.path, _text(lines[task_id] for task_id in order if task_id in lines)
                                .encode("utf-8"))
