"""Blender's side of the worker process: the workers, one process away.

``WorkerProcess`` has the methods of ``jobs.JobRunner`` that Blender's side
uses (``start_import``, ``start_call``, ``cancel``, ``drain``, ``busy``, ...),
but the runner and its threads run in a child process (``worker_main``), so
Blender's process runs no Python thread of ours at all.

NOTE: why: with Python 3.11 (Blender 4.2 to 5.0), Blender decides whether it
must take the GIL by asking whether *any* thread holds it. While one of our
threads runs Python, Blender's main thread, inside an operator (an undo push,
a save, a modifier apply, typing in the Text Editor, an add-on's operator
under ``temp_override``), then uses Python objects without the GIL, and
Blender crashes. No gate can cover operators we do not call; see
``docs/threads-in-blender.md``.

Every method here returns at once (the main thread never waits on the child):
commands go into an outbox that non-blocking sends empty, answers are read
without blocking when the timer calls ``drain``. The connection is a loopback
socket, which can be read without blocking on every system (a pipe cannot, on
Windows); the child connects back and proves itself with a one-time token it
got on its stdin, and only then does anything (the client secret among it)
go out. The child ends when told (``shutdown``) or when Blender's end of the
socket closes, which the system does when Blender quits or crashes.

If the child dies, every run it had ends at once, failed and retryable
(``WORKER_ENDED``); the next start begins a new child.
"""

from __future__ import annotations

import collections
import contextlib
import hmac
import itertools
import json
import logging
import os
import secrets
import select
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterator, Mapping

from . import calls, wire
from .errors import Cancelled
from .journal import JournalFile, OrderChange
from .jobs import (
    DEFAULT_MAX_WORKERS,
    DEFAULT_TRANSFER_WORKERS,
    STATUS_CHECKS_PER_S,
    WRITER_CLOSE_TIMEOUT_S,
    CallResult,
    Result,
)
from .messages import Message, msg
from .pipeline import ImportJob
from .settings import ApiSettings
from .tasks import TaskState, TaskUpdate

log = logging.getLogger(__name__)

# Imports the core under a private name: the add-on's own ``__init__`` (which
# registers Blender classes) never runs there. Its argument is the add-on's folder.
BOOT = (
    "import sys, types\n"
    "package = types.ModuleType('hitem3d_worker')\n"
    "package.__path__ = [sys.argv[1]]\n"
    "sys.modules['hitem3d_worker'] = package\n"
    "from hitem3d_worker.core.worker_main import main\n"
    "sys.exit(main())\n"
)
# Longest a child may take to connect back (Python and ``requests`` load in a
# fraction of a second; a busy machine or a virus scanner can take far longer).
START_TIMEOUT_S = 60.0
# A secret crosses in pieces this long, so no line holding one leaves
# Python's small-object memory (see ``_Link.send``).
SECRET_PIECE_CHARS = 128
# Bytes read from the child at a time.
RECEIVE_BYTES = 256 * 1024
# How much less the child counts when it and Blender both want a core: the
# artist's Blender first, downloads in its idle moments (on a loaded machine,
# an equal child woken by each send took the core from the main thread).
WORKER_NICENESS = 5
# After a failed start, starts within this long fail the same way at once.
START_RETRY_S = 1.0
# Journal changes the timer hands over go in messages of this many records,
# while its call has time left; a batch goes however late once they have
# waited this long (``hand_over_journal``).
JOURNAL_BATCH = 5
# The most moves of the journal's order in one message: the write that ended
# a paste of 1,000 IDs carried 1,000 (143 KB) and cost its timer call 2 ms.
JOURNAL_MOVES_PER_MESSAGE = 50
# About the most a timer call sends to the child: a paste of 1,000 IDs queued
# 200 KB of starts, and the call that sent the rest took 1.6 ms.
SEND_BYTES_PER_CALL = 32 * 1024
JOURNAL_WAIT_S = 0.5
# ...in a call at most this past its budget (a batch costs up to 0.5 ms: one
# that went into a call that had applied results, saved and updated the list
# made it 1.2 ms), or in any call once they have waited JOURNAL_MAX_WAIT_S.
JOURNAL_LATE_GRACE_S = 0.2e-3
JOURNAL_MAX_WAIT_S = 3.0
# How often a running child's process is looked at (its socket says at once when it ends).
PROCESS_CHECK_S = 1.0
# Journal records encoded per timer call: after a paste of 1,000 IDs the
# records go over in many short calls, never in one long one.
JOURNAL_RECORDS_PER_CALL = 50
# Blender's own Python (it has ``requests``; it cannot import ``bpy``, which
# the child never needs), as it was when the add-on loaded.
PYTHON = sys.executable
# Variables the child never needs: our credentials (it gets what it needs on its socket).
_DROPPED_ENV_PREFIXES = ("HITEM3D_",)
# The add-on's package in this process, for the child's log records.
_ROOT = __name__.rsplit(".", 2)[0]
# How a converter's event begins on the line (``wire.encode`` puts ``op``
# first, without spaces): read apart from results, so a converter's end is
# never behind a backlog of them (``converter_host``).
_CONVERTER_EVENT = b'{"op":"converter",'

WORKER_ENDED = msg("The Hitem3D background process stopped unexpectedly: retry; if it happens again, "
                   "report it with the log")


def worker_not_started(reason: str) -> Message:
    return msg("Could not start the Hitem3D background process ({reason}): retry, or check that Blender "
               "is installed completely", reason=reason)


@dataclass
class _Run:
    key: str
    number: int
    call: str  # the call's name; "" for an import
    cancelled: bool = False


class _JournalFeed:
    """What goes to the child of one journal (``journal.JournalFile``): the
    saved form of each task that changed (``journal.Changes.take``), a batch
    a call, then a ``write`` with how the order moved. The child keeps its
    own ``JournalFile``, started from the file on disk; Blender's side keeps
    one too (``history.save`` posts to it), which writes the file itself
    when no child can (``WorkerProcess._write_journals_here``)."""

    def __init__(self, target: JournalFile) -> None:
        self.target = target
        self.path = str(target.path)
        self.pending: dict[str, dict[str, Any]] = {}
        self.order: OrderChange | None = None  # how the order moved since the child last heard
        self.write_wanted = False
        self.heard = False  # a child was told of this journal

    def stage(self, order: OrderChange | None, entries: dict[str, dict[str, Any]]) -> None:
        if order is not None:
            self.order = order if self.order is None else self.order.then(order)
        self.pending.update(entries)
        self.write_wanted = True

    def restart(self) -> None:
        """A new child starts from the file on disk: as read at the start
        when no child was told of it, else maybe older than what the last one
        heard (then the whole order goes with its next write)."""
        if self.heard:
            # What the last one was told and may not have written goes again.
            whole, posted = self.target.unwritten()
            self.order = OrderChange(whole=tuple(whole))
            self.pending = {**posted, **self.pending}
            self.write_wanted = True
            self.heard = False

    def take(self, budget: int | None) -> list[dict[str, Any]]:
        """The next message, with at most ``budget`` records (None: all): the
        last one of a save also says how the order moved and to write.
        NOTE: one message a call, so one send: a loopback send costs tens of
        microseconds of Blender's main thread."""
        message: dict[str, Any] = {"op": "journal", "path": self.path}
        if self.pending:
            count = len(self.pending) if budget is None else min(budget, len(self.pending))
            message["entries"] = {task_id: self.pending.pop(task_id)
                                  for task_id in list(itertools.islice(self.pending, count))}
        if not self.pending and self.write_wanted:
            order = self.order
            if order is not None and budget is not None and len(order.moves) > JOURNAL_MOVES_PER_MESSAGE:
                # The order's moves in parts, after every entry (the child
                # applies each part as it comes); the write with the last.
                message.update(OrderChange(order.moves[:JOURNAL_MOVES_PER_MESSAGE], order.whole).to_wire())
                self.order = OrderChange(order.moves[JOURNAL_MOVES_PER_MESSAGE:])
            else:
                message["write"] = True
                if order is not None:
                    message.update(order.to_wire())
                    self.order = None
                self.write_wanted = False
        if len(message) == 2:
            return []
        self.heard = True
        return [message]

    @property
    def waiting(self) -> bool:
        """Something is still to go over."""
        return bool(self.pending) or self.write_wanted

    def written_elsewhere(self) -> None:
        """Written without the child: nothing waits; a next child reads the
        file (the whole order goes with its first write, in case this write
        failed and the file is older)."""
        self.pending = {}
        self.write_wanted = False
        self.order = OrderChange(whole=tuple(self.target.order()))
        self.heard = False


class _Link:
    """One child process and its connection."""

    def __init__(self, python: str, config: dict[str, Any]) -> None:
        self.token = secrets.token_hex(16)
        self.started = time.monotonic()
        self.sock: socket.socket | None = None
        self.candidates: list[tuple[socket.socket, wire.LineBuffer, float]] = []
        self.inbox = wire.LineBuffer()
        self._buffer = bytearray(RECEIVE_BYTES)
        self._view = memoryview(self._buffer)
        self.lines: collections.deque[bytes] = collections.deque()
        self.events: collections.deque[bytes] = collections.deque()  # converters' (``_CONVERTER_EVENT``)
        # Lines to send, each with whether it holds a secret. The config goes
        # first, once the child has proved who it is.
        self.outbox: collections.deque[tuple[bytes, bool]] = collections.deque(
            [(wire.encode({"op": "config", **config}), False)])
        self.ended = False  # the connection closed or failed
        self.checked_at = 0.0  # time.monotonic() of the last look at the process
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.listener.setblocking(False)
        try:
            self.process = subprocess.Popen(
                [python, "-E", "-s", "-c", BOOT, str(Path(__file__).resolve().parents[1])],
                stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, env=_child_environment(), close_fds=True,
                **_session_options())
        except OSError:
            self.listener.close()
            raise
        assert self.process.stdin is not None
        # NOTE: one short line into an empty pipe: the write never blocks. The
        # pipe stays open: the child's stdin ends when Blender does.
        self.process.stdin.write(json.dumps({"port": self.listener.getsockname()[1],
                                             "token": self.token}).encode() + b"\n")
        self.process.stdin.flush()

    @property
    def pid(self) -> int:
        return self.process.pid

    @property
    def connected(self) -> bool:
        return self.sock is not None

    def accept(self) -> None:
        """Take the child's connection once it has shown its token (never waits)."""
        while True:
            try:
                conn, _ = self.listener.accept()
            except (BlockingIOError, InterruptedError):
                break
            except OSError:
                return
            conn.setblocking(False)
            self.candidates.append((conn, wire.LineBuffer(), time.monotonic()))
        for candidate in list(self.candidates):
            conn, buffer, since = candidate
            try:
                data = conn.recv(4096)
            except (BlockingIOError, InterruptedError):
                if time.monotonic() - since < 5.0:
                    continue
                data = b""
            except OSError:
                data = b""
            lines = buffer.feed(data) if data else []
            if not data or lines:
                self.candidates.remove(candidate)
            if not lines:
                if not data:
                    conn.close()
                continue
            try:
                hello = wire.decode(lines[0])
                good = hmac.compare_digest(str(hello.get("token", "")), self.token)
            except ValueError:
                good = False
            if not good:
                conn.close()  # not our child: it gets nothing
                continue
            self.sock = conn
            self.lines.extend(lines[1:])
            self.listener.close()
            for other, _, _ in self.candidates:
                other.close()
            self.candidates.clear()
            return

    def send(self, limit: int | None = SEND_BYTES_PER_CALL) -> None:
        """Send what the outbox holds, as far as the socket takes it now and
        up to about ``limit`` bytes (None: no limit); the rest goes with the
        timer's next calls (``busy`` says so while it waits).

        NOTE: a line with a secret is sent on its own, from the small object
        it was made as, never copied into a larger buffer: Python takes
        buffers over 512 bytes from the C heap, where Blender later reuses
        freed memory for data it writes into .blend files uninitialised (a
        saved file held the client secret that way)."""
        if self.sock is None or self.ended:
            return
        total = 0
        while self.outbox:
            line, secret = self.outbox[0]
            if not secret:
                lines = [line]
                while len(lines) < 256 and len(self.outbox) > len(lines) and not self.outbox[len(lines)][1]:
                    lines.append(self.outbox[len(lines)][0])
                line = b"".join(lines) if len(lines) > 1 else line
            try:
                sent = self.sock.send(line)
            except (BlockingIOError, InterruptedError):
                return
            except OSError:
                self.ended = True
                return
            total += sent
            if secret:
                self.outbox.popleft()
                if sent < len(line):
                    self.outbox.appendleft((line[sent:], True))
                continue
            while self.outbox and sent >= len(self.outbox[0][0]) and not self.outbox[0][1]:
                sent -= len(self.outbox.popleft()[0])
            if sent:
                self.outbox[0] = (self.outbox[0][0][sent:], False)
            if limit is not None and total >= limit:
                return

    def receive(self) -> None:
        """Take every complete line waiting on the socket (never waits)."""
        if self.sock is None or self.ended:
            return
        while True:
            try:
                # NOTE: into one buffer kept for the purpose: ``recv(n)`` makes
                # an n-byte object each call, which cost more than the read.
                size = self.sock.recv_into(self._buffer)
            except (BlockingIOError, InterruptedError):
                return
            except OSError:
                size = 0
            if not size:
                self.ended = True
                return
            data = bytes(self._view[:size])
            # Rare: a converter's event is looked for line by line only when
            # one is there (or began in the line an earlier read left partial).
            pending = self.inbox.pending
            event = _CONVERTER_EVENT in data or (bool(pending) and _CONVERTER_EVENT in bytes(pending) + data[:32])
            try:
                lines = self.inbox.feed(data)
            except ValueError:
                log.warning("The Hitem3D background process sent a line too long: closing it")
                self.ended = True
                return
            if event:
                for line in lines:
                    (self.events if line.startswith(_CONVERTER_EVENT) else self.lines).append(line)
            else:
                self.lines.extend(lines)
            if size < len(self._buffer):
                return  # all there was (a read that finds nothing costs an exception)

    def wait_readable(self, timeout_s: float) -> None:
        """Block up to ``timeout_s`` for the child (only ``flush_writes`` and ``shutdown`` do)."""
        sockets = [self.sock] if self.sock is not None else [self.listener] + [c for c, _, _ in self.candidates]
        if self.ended or timeout_s <= 0:
            return
        try:
            select.select(sockets, [], [], timeout_s)
        except (OSError, ValueError):
            time.sleep(min(timeout_s, 0.01))

    def close(self, timeout_s: float) -> None:
        """Close our ends (the child sees them go), wait up to ``timeout_s``, then kill."""
        for conn in [self.sock] + [c for c, _, _ in self.candidates]:
            if conn is not None:
                with contextlib.suppress(OSError):
                    conn.close()
        with contextlib.suppress(OSError):
            self.listener.close()
        if self.process.stdin is not None:
            with contextlib.suppress(OSError):
                self.process.stdin.close()
        try:
            self.process.wait(timeout=max(0.0, timeout_s))
        except subprocess.TimeoutExpired:
            if timeout_s > 0:
                log.warning("The Hitem3D background process did not end within %.1f s: stopped", timeout_s)
            with contextlib.suppress(OSError):
                self.process.kill()
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.process.wait(timeout=1.0)


def _child_environment() -> dict[str, str]:
    return {name: value for name, value in os.environ.items()
            if not name.upper().startswith(_DROPPED_ENV_PREFIXES)}


def _session_options() -> dict[str, Any]:
    """A session of its own (POSIX), so Ctrl+C in Blender's terminal does not
    reach it; on Windows no console window of its own, and a lower priority
    (on POSIX the child lowers its own: ``WORKER_NICENESS``)."""
    if os.name == "posix":
        return {"start_new_session": True}
    flags = (getattr(subprocess, "CREATE_NO_WINDOW", 0) | getattr(subprocess, "CREATE_NEW_PROCESS_GROUP", 0)
             | getattr(subprocess, "BELOW_NORMAL_PRIORITY_CLASS", 0))  # see WORKER_NICENESS
    return {"creationflags": flags}


class WorkerProcess:
    """The workers (``max_workers`` API workers, ``transfer_workers``
    download workers, the journal writer and the request budget) in a child
    process; see the module's docstring."""

    def __init__(self, max_workers: int = DEFAULT_MAX_WORKERS, *,
                 transfer_workers: int = DEFAULT_TRANSFER_WORKERS,
                 checks_per_s: float | None = STATUS_CHECKS_PER_S,
                 python: str | None = None, start_timeout_s: float = START_TIMEOUT_S) -> None:
        self.max_workers = max_workers
        self._config = {"max_workers": max_workers, "transfer_workers": transfer_workers,
                        "checks_per_s": checks_per_s, "niceness": WORKER_NICENESS,
                        "path": [entry for entry in sys.path if entry]}
        self._python = python or PYTHON
        self._start_timeout_s = start_timeout_s
        self._link: _Link | None = None
        self._runs = itertools.count(1)
        self._live: dict[int, _Run] = {}
        self._current: dict[str, _Run] = {}  # the latest live run of each key
        self._results: collections.deque[Result] = collections.deque()
        self._settings_ids: dict[ApiSettings, int] = {}
        self._journals: dict[str, _JournalFeed] = {}
        self._journal_since: float | None = None  # time.monotonic() since when journal changes wait
        self._journal_urgent = False  # a save outside the timer is still going over
        self._writes: dict[str, calls.Write] = {}  # the latest of each key, for when no child can
        self._flushed: dict[int, bool] = {}
        self._flush_ids = itertools.count(1)
        self._bye: list[str] | None = None
        self._start_failed: tuple[float, Message] | None = None  # when and why the last start failed
        self._batching = 0
        self._closed = False
        # Converters this process was asked to start (``converter_host``), by number: who hears of them.
        self._converters: dict[int, Callable[[dict[str, Any]], None]] = {}
        self._converter_numbers = itertools.count(1)  # never reused, even by a later child

    # -- starting work ---------------------------------------------------------------------

    def start_import(self, job: ImportJob, settings: ApiSettings) -> int:
        """Start polling and downloading ``job``; returns the run's number,
        which every ``TaskUpdate`` of this run carries."""
        settings_id = self._settings_id(settings)  # first: a new child may start here
        run = self._begin(job.task_id, "")
        self._send({"op": "import", "run": run.number, "settings": settings_id, "job": wire.job_to_wire(job)})
        return run.number

    def start_call(self, key: str, settings: ApiSettings, call: calls.Call) -> None:
        """Run ``call``; its value (as ``calls.decode`` reads it) or error
        message arrives as a ``CallResult`` named ``key``."""
        settings_id = self._settings_id(settings)  # first: a new child may start here
        run = self._begin(key, call.name)
        self._send({"op": "call", "run": run.number, "key": key, "settings": settings_id, "name": call.name,
                    "args": dict(call.args)})

    def _begin(self, key: str, call: str) -> _Run:
        if self._closed:
            raise RuntimeError("the workers are shut down")
        if self.is_running(key):
            raise RuntimeError(f"{key} is already running")
        run = _Run(key, next(self._runs), call)
        self._live[run.number] = self._current[key] = run
        return run

    def is_running(self, key: str) -> bool:
        """A run of ``key`` is under way and not cancelled."""
        run = self._current.get(key)
        return run is not None and not run.cancelled

    @contextlib.contextmanager
    def starting_many(self) -> Iterator[None]:
        """Start many jobs in the block; they go to the child in one send at its end."""
        self._batching += 1
        try:
            yield
        finally:
            self._batching -= 1
            if not self._batching and self._link is not None:
                self._link.send()

    def cancel(self, key: str) -> None:
        """Cancel the current run of ``key``: it ends in the child within a
        moment, with its CANCELLED update (or call result) as its last word."""
        run = self._current.get(key)
        if run is None or run.cancelled:
            return
        run.cancelled = True
        self._send({"op": "cancel", "key": key})

    # -- converters (``converter_host``) ------------------------------------------------------

    @property
    def can_start_converters(self) -> bool:
        """A child runs (or starts) that can start a converter now."""
        return not self._closed and self._link is not None and not self._link.ended

    def start_converter(self, fields: dict[str, Any], listener: Callable[[dict[str, Any]], None]) -> int | None:
        """Have the child start a converter (``converter_host.ConverterHost``);
        ``listener`` hears its events. None if no child can."""
        if not self.can_start_converters:
            return None
        number = next(self._converter_numbers)
        self._converters[number] = listener
        self._send({"op": "converter_start", "id": number, **fields})
        return number

    def tell_converter(self, number: int, op: str, fields: dict[str, Any] | None = None) -> None:
        """``kill`` or ``give`` one of its converters; nothing once it is gone
        (a converter ends with the child that started it)."""
        if number in self._converters and self.can_start_converters:
            self._send({"op": f"converter_{op}", "id": number, **(fields or {})})

    def wait_for(self, done: Callable[[], bool], timeout_s: float) -> None:
        """Read the child until ``done()``, for up to ``timeout_s``.
        NOTE: blocks; for quitting and tests, never for the timer."""
        self._wait(done, timeout_s)

    def _converter_events(self, link: _Link) -> None:
        while link.events:
            try:
                self._converter_event(wire.decode(link.events.popleft()))
            except (ValueError, KeyError, TypeError):
                log.warning("Ignored a message from the Hitem3D background process", exc_info=True)

    def _converter_event(self, message: dict[str, Any]) -> None:
        number = int(message["id"])
        listener = self._converters.get(number)
        if message.get("event") in ("ended", "failed"):
            self._converters.pop(number, None)
        if listener is not None:
            listener(message)

    def _lose_converters(self) -> None:
        """The child is gone, and its converters with it."""
        listeners, self._converters = self._converters, {}
        for listener in listeners.values():
            listener({"event": "lost"})

    def write_journal(self, target: JournalFile, order: OrderChange | None,
                      entries: dict[str, dict[str, Any]], *, now: bool = True) -> None:
        """Have ``target``'s file written off Blender's process with what
        ``journal.Changes.take`` gave (``order`` None: it has not moved); the
        caller has posted the same to ``target``. Only what changed goes over."""
        feed = self._journals.get(str(target.path))
        if feed is None:
            feed = self._journals[str(target.path)] = _JournalFeed(target)
        feed.target = target
        feed.stage(order, entries)
        self._ensure_link()
        if now:
            self._feed_journals(JOURNAL_RECORDS_PER_CALL)
            # A long one goes on a batch a drain, as it always did.
            self._journal_urgent = feed.waiting
        # Else in the timer's spare time (``hand_over_journal``).
        if self._journal_since is None and feed.waiting:
            self._journal_since = time.monotonic()

    def write_later(self, key: str, write: calls.Write) -> None:
        """Have ``write`` (``calls.Write``: a small file of ours) done off
        Blender's process; a newer write for the same ``key`` replaces one
        not yet done there."""
        self._writes[key] = write
        self._send({"op": "write", "key": key, "name": write.name, "args": dict(write.args)})

    def flush_writes(self, timeout_s: float = 5.0) -> bool:
        """Wait until every write handed over is on disk; False on timeout.
        NOTE: blocks; for tests, never for the timer."""
        if self._link is None:
            return True
        self._feed_journals(None)
        flush_id = next(self._flush_ids)
        self._send({"op": "flush", "id": flush_id, "timeout": timeout_s})
        self._wait(lambda: flush_id in self._flushed, timeout_s + 1.0)
        return self._flushed.pop(flush_id, False)

    # -- results -----------------------------------------------------------------------------

    def drain(self, limit: int = 1000) -> list[Result]:
        """Results waiting for the main thread, oldest first (never blocks)."""
        self._pump()
        self._decode(limit)
        taken = [self._results.popleft() for _ in range(min(limit, len(self._results)))]
        return taken

    def hand_over_journal(self, until: float) -> None:
        """Hand the journal changes saved with ``now=False`` to the child, in
        messages of JOURNAL_BATCH records, while ``time.perf_counter()`` is
        before ``until`` (what is left of the timer call's budget); one
        message past it once they have waited JOURNAL_WAIT_S, in a call not
        much past its budget (JOURNAL_LATE_GRACE_S), and however late the
        call once they have waited JOURNAL_MAX_WAIT_S. Never waits.
        NOTE: encoding a record and sending it cost the main thread tens of
        microseconds: a burst of saves goes over in the calls' spare time."""
        since = self._journal_since
        if since is None:
            return
        waited = time.monotonic() - since
        late = waited >= JOURNAL_MAX_WAIT_S or (waited >= JOURNAL_WAIT_S
                                                and time.perf_counter() < until + JOURNAL_LATE_GRACE_S)
        sent = False
        while any(feed.waiting for feed in self._journals.values()):
            if not late and time.perf_counter() >= until:
                break
            self._feed_journals(JOURNAL_BATCH)
            late, sent = False, True
        if not any(feed.waiting for feed in self._journals.values()):
            self._journal_since = None
        elif sent:
            self._journal_since = time.monotonic()  # the rest waits its turn again

    @property
    def busy(self) -> bool:
        """Some run has not ended (more results may come), or something is still
        to go to the child (a journal write), so the timer goes on. As of the
        last ``drain``: a run's end follows its last result on the line, so
        when this says no, that drain had every result there is."""
        return bool(self._live) or bool(self._results) or self._sending()

    def _sending(self) -> bool:
        link = self._link
        if link is not None and (link.outbox or not link.connected):
            return True
        return any(feed.waiting for feed in self._journals.values())

    def threads(self) -> list[Any]:
        """Worker threads in this process: none (they run in the child)."""
        return []

    @property
    def pid(self) -> int | None:
        """The child's process ID while there is one (for tests and diagnostics)."""
        return self._link.pid if self._link is not None else None

    # -- stopping ------------------------------------------------------------------------------

    def shutdown(self, timeout_s: float = 1.0) -> list[str]:
        """Cancel everything and end the child: its workers get ``timeout_s``,
        the journal writes it has (normally milliseconds) their own budget.
        Returns the keys of runs still going (should be none)."""
        if self._closed:
            return []
        self._closed = True
        link = self._link
        if link is None:
            return []
        self._feed_journals(None)
        self._wait(lambda: link.connected or link.ended, min(timeout_s, self._start_timeout_s))
        if not link.connected:
            # Never connected (it was still starting): nothing ran there but
            # the journal writes it would have done; they are done here.
            self._lose(NONE_REASON)
            self._write_journals_here()
            link.close(0.0)
            return []
        self._send({"op": "shutdown", "timeout": timeout_s})
        self._wait(lambda: self._bye is not None, timeout_s + WRITER_CLOSE_TIMEOUT_S + 0.5)
        self._read_all()
        alive = self._bye
        if alive is None:
            log.warning("The Hitem3D background process did not stop within %.1f s", timeout_s)
            self._write_journals_here()
            alive = sorted({run.key for run in self._live.values()})
        link.close(0.5)
        self._lose(NONE_REASON)
        self._link = None
        if alive:
            log.warning("Workers still running after shutdown: %s", ", ".join(alive))
        return list(alive)

    # -- the connection --------------------------------------------------------------------------

    def _ensure_link(self) -> _Link | None:
        if self._link is not None and not self._link.ended:
            return self._link
        if self._link is not None:
            self._lose(WORKER_ENDED)
        if self._closed:
            return None
        failed = self._start_failed
        if failed is not None and time.monotonic() - failed[0] < START_RETRY_S:
            self._fail_live(failed[1])  # one attempt per moment, not one per pasted ID
            return None
        try:
            self._link = _Link(self._python, self._config)
        except OSError as exc:
            reason = exc.strerror or type(exc).__name__
            log.warning("Could not start the Hitem3D background process %s: %s", self._python, reason)
            self._start_failed = (time.monotonic(), worker_not_started(reason))
            self._fail_live(self._start_failed[1])
            self._write_journals_here()  # nobody else can: written now, here
            return None
        self._start_failed = None
        self._settings_ids = {}
        for feed in self._journals.values():
            feed.restart()
        return self._link

    def _send(self, message: Mapping[str, Any], *, secret: bool = False) -> None:
        link = self._ensure_link()
        if link is None:
            return
        link.outbox.append((wire.encode(message), secret))
        if not self._batching:
            link.send()

    def _settings_id(self, settings: ApiSettings) -> int:
        """Settings go to the child once (secret included, on its socket); commands name them."""
        known = self._settings_ids.get(settings)
        if known is not None and self._link is not None and not self._link.ended:
            return known
        self._ensure_link()
        number = len(self._settings_ids) + 1
        self._settings_ids[settings] = number
        value, hidden = wire.settings_to_wire(settings)
        for name, text in hidden.items():
            # In short pieces: each line stays a small object (see ``_Link.send``).
            for start in range(0, len(text), SECRET_PIECE_CHARS):
                self._send({"op": "secret", "id": number, "name": name,
                            "piece": text[start:start + SECRET_PIECE_CHARS]}, secret=True)
        self._send({"op": "settings", "id": number, "value": value})
        return number

    def _feed_journals(self, budget: int | None) -> None:
        for feed in self._journals.values():
            if feed.pending or feed.write_wanted:
                for message in feed.take(budget):
                    self._send(message)

    def _pump(self) -> None:
        """Everything the timer's call does for the link (never waits)."""
        link = self._link
        if link is None:
            return
        if not link.connected and not link.ended:
            link.accept()
            if not link.connected:
                self._check_start(link)
                return
        if self._journal_urgent:
            self._feed_journals(JOURNAL_RECORDS_PER_CALL)
            self._journal_urgent = any(feed.waiting for feed in self._journals.values())
        link.send()
        link.receive()
        if link.events:
            self._converter_events(link)
        if link.ended or self._exited(link):
            self._read_all()  # what it said before it went
            if self._link is link and not self._closed:
                self._lose(WORKER_ENDED)

    @staticmethod
    def _exited(link: _Link) -> bool:
        """Whether the child has ended, asked at most every PROCESS_CHECK_S.
        NOTE: its end closes the socket, which ``receive`` sees at once; the
        system call is a second check, not worth tens of microseconds a tick."""
        now = time.monotonic()
        if now - link.checked_at < PROCESS_CHECK_S:
            return False
        link.checked_at = now
        return link.process.poll() is not None

    def _check_start(self, link: _Link) -> None:
        code = link.process.poll()
        if code is None and time.monotonic() - link.started < self._start_timeout_s:
            return
        reason = f"exit code {code}" if code is not None else "no answer"
        log.warning("The Hitem3D background process did not start (%s)", reason)
        link.ended = True
        self._lose(worker_not_started(reason))

    def _read_all(self) -> None:
        link = self._link
        if link is not None:
            self._converter_events(link)
        while self._decode_next():
            pass

    def _decode(self, limit: int) -> None:
        """Decode what the child sent until ``limit`` results wait (a flood is
        read over several timer calls, each short)."""
        while len(self._results) < limit and self._decode_next():
            pass

    def _decode_next(self) -> bool:
        """Handle the next line the child sent; False when there is none."""
        link = self._link
        if link is None or not link.lines:
            return False
        line = link.lines.popleft()
        try:
            self._handle(wire.decode(line))
        except (ValueError, KeyError, TypeError):
            log.warning("Ignored a message from the Hitem3D background process", exc_info=True)
        return True

    def _handle(self, message: dict[str, Any]) -> None:
        op = message["op"]
        if op == "update":
            self._results.append(wire.update_from_wire(message))
        elif op == "call_result":
            key, value, error = wire.call_result_from_wire(message)
            run = self._current.get(key)
            if not error and run is not None and run.call:
                try:
                    value = calls.decode(run.call, value)
                except ValueError:
                    log.warning("Call %s answered with %.200r", key, value)
                    error = msg("Unexpected error: see the Hitem3D log")
            self._results.append(CallResult(key, None if error else value, error))
        elif op == "ended":
            run = self._live.pop(int(message["run"]), None)
            if run is not None and self._current.get(run.key) is run:
                del self._current[run.key]
        elif op == "log":
            self._log(message)
        elif op == "flushed":
            self._flushed[int(message["id"])] = bool(message.get("ok"))
        elif op == "bye":
            self._bye = [str(key) for key in message.get("alive") or []]
        elif op == "converter":
            self._converter_event(message)

    def _log(self, message: dict[str, Any]) -> None:
        """A record of the child's, into the add-on's log (its handlers redact again)."""
        level = int(message.get("level", logging.INFO))
        logger = logging.getLogger(f"{_ROOT}.{message.get('name', 'worker')}")
        if not logger.isEnabledFor(level):
            return
        record = logger.makeRecord(logger.name, level, "(background process)", 0, str(message.get("text", "")),
                                   (), None)
        if message.get("trace"):
            record.exc_text = str(message["trace"])
        logger.handle(record)

    def _wait(self, done: Any, timeout_s: float) -> None:
        """Pump until ``done()`` or ``timeout_s`` (shutdown and flush only)."""
        deadline = time.monotonic() + timeout_s
        while True:
            self._pump()
            self._read_all()
            link = self._link
            if done() or link is None or link.ended:
                return
            left = deadline - time.monotonic()
            if left <= 0:
                return
            link.wait_readable(min(left, 0.05))

    def _lose(self, reason: Message) -> None:
        """The child is gone: every run it had ends here (failed, or
        cancelled when it was), and the next start begins a new child."""
        link, self._link = self._link, None
        if link is not None and reason:
            code = link.process.poll()
            log.warning("The Hitem3D background process ended (exit code %s)", code)
        if link is not None:
            link.close(0.0)  # gone, or no longer answering: never waited on
        self._fail_live(reason)
        self._lose_converters()
        if link is not None and reason:
            # Its last journal write may not have landed: done here, once
            # (a child that dies at every start must not be started for it).
            self._write_journals_here()

    def _fail_live(self, reason: Message) -> None:
        for run in list(self._live.values()):
            cancelled = run.cancelled or not reason
            if run.call:
                error = Cancelled().message if cancelled else reason
                self._results.append(CallResult(run.key, error=error))
            else:
                self._results.append(TaskUpdate(run.key, TaskState.CANCELLED if cancelled else TaskState.FAILED,
                                                message=Message("") if cancelled else reason, run=run.number))
        self._live.clear()
        self._current.clear()

    def _write_journals_here(self) -> None:
        """The last writes, in this process: the child could not do them, or
        may not have (it ended). Blender's copy of each journal has everything."""
        for feed in self._journals.values():
            try:
                feed.target.write()
            except OSError as exc:
                log.warning("Could not save the task journal: %s", exc)
            feed.written_elsewhere()
        for write in self._writes.values():
            calls.write(write)


# A shutdown's runs end cancelled, not failed.
NONE_REASON = Message("")
