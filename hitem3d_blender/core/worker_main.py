"""The worker process: where the add-on's Python threads run, outside Blender.

``worker_process.WorkerProcess`` starts this with Blender's own Python
(``sys.executable``, which cannot import ``bpy``; nothing here needs it). It
reads one line on stdin (the port to connect back to on 127.0.0.1 and a
one-time token), connects, sends the token, and then runs the commands that
arrive, one JSON line each (``wire``): status checks, downloads and calls on a
``JobRunner``, journal writes on its writer. Results, the end of each run and
log records go back the same way.

NOTE: why a process: with Python 3.11 (Blender 4.2 to 5.0), Blender's test
"does this thread hold the GIL?" reads the interpreter's global thread state,
so while any Python thread holds the GIL, Blender's main thread, inside an
operator, believes it holds it and uses Python objects without it. Any Python
thread in Blender's process can then crash Blender; see
``docs/threads-in-blender.md``.

It ends when Blender says so (``shutdown``) or when the connection closes
(Blender quit or crashed: the operating system closes the socket), after the
journal writes it was given are on disk.
"""

from __future__ import annotations

import faulthandler
import json
import logging
import os
import queue
import signal
import socket
import sys
import threading
from functools import partial
from pathlib import Path
from typing import Any, Iterator

# The package this module is in: imported under a private name by the start
# command (``worker_process.BOOT``), never as the add-on.
_ROOT = __name__.rsplit(".", 2)[0]
log = logging.getLogger(__name__)


def _read_lines(sock: socket.socket) -> Iterator[bytes]:
    """Lines from Blender until the connection closes."""
    from .wire import LineBuffer

    buffer = LineBuffer()
    while True:
        try:
            data = sock.recv(1 << 20)
        except OSError:
            return
        if not data:
            return
        yield from buffer.feed(data)


class _ToBlender(logging.Handler):
    """Log records go to Blender, which writes them to the add-on's log.
    Redacted here too: only this process knows the tokens it was issued."""

    def __init__(self, outgoing: queue.SimpleQueue[Any]) -> None:
        super().__init__(logging.INFO)
        self._outgoing = outgoing

    def emit(self, record: logging.LogRecord) -> None:
        from .logs import redact

        try:
            trace = logging.Formatter().formatException(record.exc_info) if record.exc_info else None
            name = record.name[len(_ROOT) + 1:] if record.name.startswith(_ROOT + ".") else record.name
            self._outgoing.put({"op": "log", "level": record.levelno, "name": name,
                                "text": redact(record.getMessage()), "trace": redact(trace) if trace else None})
        except Exception:  # noqa: BLE001 - a record that cannot be sent is dropped
            self.handleError(record)


class Worker:
    """One connection's worth of commands."""

    def __init__(self, sock: socket.socket, config: dict[str, Any]) -> None:
        from .jobs import JobRunner

        self.sock = sock
        self.outgoing: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self.runner = JobRunner(int(config["max_workers"]), transfer_workers=int(config["transfer_workers"]),
                                checks_per_s=config.get("checks_per_s"), results=self.outgoing,
                                report_ends=True)
        self.settings: dict[int, Any] = {}
        self.secrets: dict[int, dict[str, str]] = {}  # pieces, until their settings arrive
        self.journals: dict[str, Any] = {}  # path -> journal.JournalFile
        from .converter_host import ConverterHost

        self.converters = ConverterHost(self.outgoing.put)
        self._sender = threading.Thread(target=self._send_all, name="hitem3d-sender", daemon=True)
        self._sender.start()

    # -- to Blender -------------------------------------------------------------------------

    def _send_all(self) -> None:
        """Send what the workers put out; what is there already goes in one write."""
        while True:
            batch = [self.outgoing.get()]
            while len(batch) < 512:
                try:
                    batch.append(self.outgoing.get_nowait())
                except queue.Empty:
                    break
            stop = None in batch
            lines = [self._line(item) for item in batch if item is not None]
            try:
                self.sock.sendall(b"".join(line for line in lines if line))
            except OSError:
                return  # Blender is gone; the reader sees it too
            if stop:
                return

    @staticmethod
    def _line(item: Any) -> bytes:
        from .jobs import CallResult, JobEnded
        from .messages import msg
        from .tasks import TaskUpdate
        from .wire import call_result_to_wire, encode, update_to_wire

        if isinstance(item, TaskUpdate):
            message = update_to_wire(item)
        elif isinstance(item, CallResult):
            message = call_result_to_wire(item)
        elif isinstance(item, JobEnded):
            message = {"op": "ended", "key": item.key, "run": item.run}
        else:
            message = item
        try:
            return encode(message)
        except (TypeError, ValueError):
            log.exception("Could not send %s", type(item).__name__)
            if not isinstance(item, CallResult):
                return b""
            return encode(call_result_to_wire(CallResult(item.key, error=msg("Unexpected error: see the Hitem3D log"))))

    # -- from Blender -----------------------------------------------------------------------

    def serve(self, lines: Iterator[bytes]) -> float:
        """Run commands until ``shutdown`` or the end of the connection;
        returns how long the workers may take to stop."""
        from .wire import decode

        for line in lines:
            message: dict[str, Any] = {}
            try:
                message = decode(line)
                if message["op"] == "shutdown":
                    return float(message.get("timeout", 1.0))
                self.handle(message)
            except Exception:  # noqa: BLE001 - one bad command costs that command
                log.exception("Could not run a command from Blender")
                self._refuse(message)
        return 1.0

    def _refuse(self, message: dict[str, Any]) -> None:
        """A start that failed here ends its run on Blender's side, failed and
        retryable, instead of leaving it waiting for ever."""
        from .jobs import CallResult, JobEnded
        from .messages import msg
        from .tasks import TaskState, TaskUpdate

        error = msg("Unexpected error: see the Hitem3D log")
        try:
            run = int(message["run"])
            if message.get("op") == "import":
                task_id = str(message["job"]["task_id"])
                self.outgoing.put(TaskUpdate(task_id, TaskState.FAILED, message=error, run=run))
                self.outgoing.put(JobEnded(task_id, run))
            elif message.get("op") == "call":
                self.outgoing.put(CallResult(str(message["key"]), error=error))
                self.outgoing.put(JobEnded(str(message["key"]), run))
        except (KeyError, TypeError, ValueError):
            pass  # not a start: nothing waits on it

    def handle(self, message: dict[str, Any]) -> None:
        from . import calls
        from .logs import register_secret
        from .wire import job_from_wire, settings_from_wire

        op = message["op"]
        if op == "secret":
            pieces = self.secrets.setdefault(int(message["id"]), {})
            name = str(message["name"])
            pieces[name] = pieces.get(name, "") + str(message["piece"])
        elif op == "settings":
            number = int(message["id"])
            settings = settings_from_wire(message["value"], self.secrets.pop(number, {}))
            register_secret(settings.client_secret)
            self.settings[number] = settings
        elif op == "import":
            job = job_from_wire(message["job"])
            # A failure here (Blender's side never asks twice) ends the run: see ``_refuse``.
            self.runner.start_import(job, self.settings[int(message["settings"])], run=int(message["run"]))
        elif op == "call":
            key, run = str(message["key"]), int(message["run"])
            call = calls.Call(str(message["name"]), dict(message.get("args") or {}))
            if not calls.known(call.name):
                raise ValueError(f"no call named {call.name!r} (call {key})")
            self.runner.start_call(key, self.settings[int(message["settings"])], partial(calls.run, call), run=run)
        elif op == "cancel":
            self.runner.cancel(str(message["key"]))
        elif op == "journal":
            self._journal(message)
        elif op == "write":
            item = calls.Write(str(message["name"]), dict(message.get("args") or {}))
            if not calls.known_write(item.name):
                raise ValueError(f"no write named {item.name!r}")
            self.runner.write_later(str(message["key"]), partial(calls.write, item))
        elif op.startswith("converter_"):
            self.converters.handle(message)
        elif op == "flush":
            threading.Thread(target=self._flush, args=(message["id"], float(message.get("timeout", 5.0))),
                             name="hitem3d-flush", daemon=True).start()
        else:
            raise ValueError(f"unknown command {op!r}")

    def _journal(self, message: dict[str, Any]) -> None:
        """Tasks that changed (their saved form), then (``write``) the journal
        written, on the writer thread. Blender sends each task once per
        change; this process keeps the rest, read from the file at first."""
        from . import journal

        path = str(message["path"])
        target = self.journals.get(path)
        if target is None:
            target = self.journals[path] = journal.JournalFile.read(Path(path))
        target.post(journal.OrderChange.from_wire(message), dict(message.get("entries") or {}))
        if message.get("write"):
            self.runner.write_later(path, partial(_write_journal, target))

    def _flush(self, flush_id: Any, timeout_s: float) -> None:
        self.outgoing.put({"op": "flushed", "id": flush_id, "ok": self.runner.flush_writes(timeout_s)})

    def stop(self, timeout_s: float) -> None:
        """Cancel everything, finish the writes, say goodbye with what would not stop."""
        from .conversion import remove_spare_temp_folders

        self.converters.stop(timeout_s)  # Blender's side stopped them first, unless it is gone
        remove_spare_temp_folders()
        alive = self.runner.shutdown(timeout_s=timeout_s)
        self.outgoing.put({"op": "bye", "alive": alive})
        self.outgoing.put(None)
        self._sender.join(5.0)


def _write_journal(target: Any) -> None:
    try:
        target.write()
    except OSError as exc:
        # A full disk says so in one line (DiskFull names the folder).
        log.warning("Could not save the task journal: %s", exc, exc_info=True)


def main() -> int:  # ends the process itself once connected
    faulthandler.enable()
    if hasattr(signal, "SIGINT"):
        # Ctrl+C in Blender's terminal is for Blender; this process ends with it.
        signal.signal(signal.SIGINT, signal.SIG_IGN)
    hello = json.loads(sys.stdin.buffer.readline() or b"null")
    if not isinstance(hello, dict):
        return 2  # Blender went away before saying where it listens
    try:
        sock = socket.create_connection(("127.0.0.1", int(hello["port"])), timeout=30.0)
    except OSError:
        return 2
    sock.settimeout(None)
    sock.sendall(json.dumps({"op": "hello", "token": hello["token"], "pid": os.getpid()}).encode() + b"\n")
    lines = _read_lines(sock)
    first = next(lines, None)
    config = json.loads(first) if first else None
    if not isinstance(config, dict) or config.get("op") != "config":
        return 2
    if hasattr(os, "nice") and config.get("niceness"):
        try:
            os.nice(int(config["niceness"]))  # Blender first when both want a core
        except OSError:
            pass
    # What Blender's Python can import, this one can too (``requests`` lives
    # beside Blender's Python; an extension's wheels elsewhere).
    for entry in config.get("path") or []:
        if isinstance(entry, str) and entry not in sys.path:
            sys.path.append(entry)
    package_log = logging.getLogger(_ROOT)
    package_log.setLevel(logging.INFO)
    package_log.propagate = False
    worker = Worker(sock, config)
    package_log.addHandler(_ToBlender(worker.outgoing))
    timeout_s = worker.serve(lines)
    worker.stop(timeout_s)
    try:
        sock.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass
    sock.close()
    # NOTE: every write is on disk and Blender has its goodbye: the
    # interpreter's own teardown (modules, daemon threads) only kept Blender
    # waiting in a disable, a tenth of a second or more.
    sys.stderr.flush()
    os._exit(0)
