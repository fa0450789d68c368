"""The journal: every task and its state, kept across Blender sessions.

One small JSON file in the extension's user folder, written atomically (a
temporary file, then ``os.replace``) so a crash mid-write leaves the previous
journal intact. A journal that cannot be read is moved aside, never fatal.
"""

from __future__ import annotations

import json
import logging
import os
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .messages import NONE, Message, msg
from . import safe_files
from .errors import clean_message
from .tasks import TaskRecord

log = logging.getLogger(__name__)

VERSION = 1
# Enough history for weeks of work; the oldest finished tasks drop off first.
MAX_ENTRIES = 500


@dataclass
class Loaded:
    records: list[TaskRecord] = field(default_factory=list)
    warning: Message = NONE  # for the user when the file had to be moved aside


def load(path: Path) -> Loaded:
    """The saved tasks, oldest first. A missing file is an empty journal; a
    corrupt one is renamed ``<name>.corrupt-<time>`` and reported in ``warning``."""
    try:
        raw = safe_files.read_bytes(path)  # a symlinked journal is not followed
    except FileNotFoundError:
        return Loaded()
    except OSError as exc:
        log.warning("Could not read the task journal %s: %s", path, exc)
        return Loaded(warning=msg("Could not read the Hitem3D task history: starting with an empty list"))
    try:
        data = json.loads(raw.decode("utf-8"))
        entries = data["tasks"] if isinstance(data, dict) else None
        if not isinstance(entries, list):
            raise ValueError("no task list")
    except (ValueError, KeyError, TypeError) as exc:
        aside = path.with_name(f"{path.name}.corrupt-{time.strftime('%Y%m%d-%H%M%S')}")
        try:
            os.replace(path, aside)
        except OSError:
            aside = path
        log.warning("Task journal %s is damaged (%s); moved to %s", path, exc, aside.name)
        return Loaded(warning=msg("The Hitem3D task history was damaged and was set aside as {name}",
                                  name=aside.name))
    records: list[TaskRecord] = []
    for entry in entries:
        try:
            record = TaskRecord.from_dict(entry if isinstance(entry, dict) else {})
        except ValueError as exc:
            log.warning("Skipped a journal entry: %s", exc)
            continue
        _forget_outside_paths(record, path.parent)
        records.append(record)
    return Loaded(records)


def _forget_outside_paths(record: TaskRecord, folder: Path) -> None:
    """A journal is input: a file path outside its folder (an edited or
    planted journal) is dropped, never read or imported, and the saved
    message is cleaned like any text from outside."""
    record.message = clean_message(record.message)
    for name in ("result_path", "cover_path"):
        value = getattr(record, name)
        if value and not safe_files.inside(folder, value):
            log.warning("Journal entry %s: ignored a file outside the Hitem3D folder", record.short_id)
            setattr(record, name, "")


def save(path: Path, records: list[TaskRecord]) -> None:
    """Write ``records`` (oldest first) atomically; keeps the newest MAX_ENTRIES,
    never dropping an unfinished task."""
    write(path, snapshot(records))


def snapshot(records: list[TaskRecord], snapshots: Snapshots | None = None) -> list[dict[str, Any]]:
    """What ``save`` writes, as fresh plain values: taken on the main thread
    (records are touched there only), written by ``write`` on any thread.
    With ``snapshots``, records unchanged since its last call cost nothing."""
    kept = records
    if len(records) > MAX_ENTRIES:
        excess = len(records) - MAX_ENTRIES
        kept = []
        for record in records:
            if excess > 0 and record.state.is_terminal:
                excess -= 1
                continue
            kept.append(record)
    if snapshots is not None:
        return snapshots.take(kept)
    return [record.to_dict() for record in kept]


class Snapshots:
    """The saved form of each record as of its last change.

    NOTE: a paste of 1,000 IDs, or a long history, would otherwise convert
    every record at every save on the main thread; the dicts handed out are
    never changed afterwards, so the writer thread may read them."""

    def __init__(self, max_fresh: int | None = None) -> None:
        self._taken: dict[str, tuple[int, dict[str, Any]]] = {}
        # At most this many records looked at per ``take`` while many have
        # changed (None: all at once): the saved forms of a paste of 1,000 IDs
        # are made over several timer calls, each short, and written once.
        self.max_fresh = max_fresh
        self.complete = True  # the last ``take`` returned every record's current form
        self._cursor = 0  # where the next partial ``take`` goes on

    def _stale(self, record: TaskRecord) -> bool:
        cached = self._taken.get(record.task_id)
        return cached is None or cached[0] != record.changes

    def _convert(self, record: TaskRecord) -> dict[str, Any]:
        entry = record.to_dict()
        self._taken[record.task_id] = (record.changes, entry)
        return entry

    def take(self, records: list[TaskRecord]) -> list[dict[str, Any]]:
        """Every record's saved form, oldest first; or, with ``max_fresh``
        and more stale records than that, ``[]`` with ``complete`` False: the
        next calls go on where this one stopped, the last one builds the list."""
        budget = self.max_fresh
        if budget is not None and self._cursor:
            # A pass in progress: convert on from where the last call stopped.
            while self._cursor < len(records):
                record = records[self._cursor]
                if self._stale(record):
                    if budget <= 0:
                        self.complete = False
                        return []
                    budget -= 1
                    self._convert(record)
                self._cursor += 1
        self._cursor = 0
        entries: list[dict[str, Any]] = []
        for index, record in enumerate(records):
            if self._stale(record):
                if budget is not None:
                    if budget <= 0:
                        self._cursor = index
                        self.complete = False
                        return []
                    budget -= 1
                entries.append(self._convert(record))
            else:
                entries.append(self._taken[record.task_id][1])
        self.complete = True
        if len(self._taken) > len(entries):  # forget removed tasks
            kept = {record.task_id for record in records}
            self._taken = {key: value for key, value in self._taken.items() if key in kept}
        return entries


def write(path: Path, entries: list[dict[str, Any]]) -> None:
    """Write a ``snapshot`` atomically (a temporary file, fsync, rename)."""
    # A full disk raises DiskFull and leaves the previous journal whole.
    safe_files.write_atomic(path, _encode(path, entries).encode("utf-8"))


# The entries of the last write to each journal with their JSON text.
# NOTE: a long history is mostly finished tasks that never change: encoding
# only what changed keeps a save cheap (a 500-task journal took 20 ms of
# Python, holding the GIL that Blender's main thread needs).
_encoded: dict[Path, dict[str, tuple[dict[str, Any], str]]] = {}
_encoded_lock = threading.Lock()


def _encode(path: Path, entries: list[dict[str, Any]]) -> str:
    """The journal's text: one task per line."""
    with _encoded_lock:
        previous = _encoded.get(path, {})
    current: dict[str, tuple[dict[str, Any], str]] = {}
    lines: list[str] = []
    for entry in entries:
        key = str(entry.get("task_id"))
        cached = previous.get(key)
        line = cached[1] if cached is not None and cached[0] == entry else json.dumps(entry)
        current[key] = (entry, line)
        lines.append(line)
    with _encoded_lock:
        _encoded[path] = current
    return f'{{"version": {VERSION}, "tasks": [\n' + ",\n".join(lines) + "\n]}\n"
