"""Converters started by the worker process, so Blender's main thread never waits for a spawn.

No ``bpy``. A spawn returns only once the child has reached ``exec``: 0.6 ms
at the median and up to 4.4 ms on a busy 2-core machine, time a timer call
must not spend. Where Python threads are safe in Blender's process (Python
3.12 and newer: Blender 5.1 and newer) a thread of ours does it
(``conversion.Starter``). With Python 3.11 (Blender 4.2 to 5.0) no thread of
ours may run Python there (``docs/threads-in-blender.md``), so the worker
process, a process of ours that already runs, starts them: Blender's side
sends one line and goes on.

Both ends are here:

- Blender's side: ``RemoteStarter`` (a ``conversion.Launcher``) and
  ``RemoteChild`` (a ``conversion.Child``), answered by the worker's
  ``converter`` events, which ``WorkerProcess`` hands on whenever the timer
  drains it.
- The worker's side: ``ConverterHost``. One thread per converter spawns it
  (``conversion.spawn``: its temporary folder and, on Windows, its job), says
  its process ID, waits for its end and says its exit code.

NOTE: that thread lives exactly as long as its converter: on Linux a
converter is killed when the *thread* that started it ends
(``process_guard.watch_parent_linux``), and the worker's end ends them all
(its threads end with it). On macOS and Windows the converter's guard
watches its parent too (the worker, by its parent ID; Blender, by its own);
on Windows the job object, held by the worker, kills it with the worker.

The worker also writes each converter's spec (``conversion.SpecFile``)
before it starts it, or gives a converter started ahead its path: Blender's
side sends its text, and never creates the file itself. The converters'
environment is sent with the first start and then only when it changes.

NOTE: a kill, and the spec to a converter started ahead, go through
the worker too: only the process that reaps a converter knows its process ID
is still its own (a kill from Blender's side could reach a process that took
a reused ID). The worker looks at the ended child without reaping it
(``waitid`` with ``WNOWAIT``), then reaps it under the lock a kill takes.

NOTE: converters started so inherit the worker's lower priority
(``worker_process.WORKER_NICENESS``): the artist's Blender first when both
want a core, as for downloads.
"""

from __future__ import annotations

import logging
import os
import subprocess
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Mapping, Protocol

from .conversion import START_FAILED, ChildProcess, ConversionFailed, SpecFile, _cannot_start, spawn
from .messages import Message
from .worker_process import WORKER_ENDED

log = logging.getLogger(__name__)

# The worker process ended before its converter did (the converter ends with
# it): the conversion ends as the worker's other runs do, retryable.
WORKER_LOST = WORKER_ENDED
_STDIN = {"pipe": subprocess.PIPE, "null": subprocess.DEVNULL}


# -- Blender's side ------------------------------------------------------------------------------------


class Host(Protocol):
    """What ``RemoteStarter`` needs of ``worker_process.WorkerProcess``."""

    @property
    def can_start_converters(self) -> bool: ...
    def start_converter(self, fields: dict[str, Any], listener: Callable[[dict[str, Any]], None]) -> int | None: ...
    def tell_converter(self, number: int, op: str, fields: dict[str, Any] | None = None) -> None: ...
    def wait_for(self, done: Callable[[], bool], timeout_s: float) -> None: ...


class RemoteChild:
    """A converter the worker process starts: what ``conversion.ConversionProcess``
    and ``conversion.Reaper`` use of a child, from the worker's events. Never
    waits, but in ``wait`` (quitting)."""

    def __init__(self, host: Host, log_path: Path) -> None:
        self._host = host
        self.number = 0
        self.log_path = log_path
        self.pid: int | None = None
        self.returncode: int | None = None
        self.peak_job_memory = 0
        self.error: ConversionFailed | None = None
        self._kill_sent = False
        self._on_end: list[Callable[[], None]] = []

    @property
    def started(self) -> bool:
        return self.pid is not None or self.returncode is not None

    def event(self, message: dict[str, Any]) -> None:
        """What the worker said of it (input: checked, never trusted)."""
        kind = message.get("event")
        if self.returncode is not None:
            return
        if kind == "started":
            pid = message.get("pid")
            if isinstance(pid, int) and pid > 0:
                self.pid = pid
                log.info("Converter process %s started", pid)
        elif kind == "failed":
            try:
                self.error = ConversionFailed(Message.from_dict(message.get("message")))
            except ValueError:
                self.error = _cannot_start(OSError("no process"))
            self._end(START_FAILED)
        elif kind == "ended":
            code, peak = message.get("code"), message.get("peak")
            self.peak_job_memory = peak if isinstance(peak, int) else 0
            self._end(code if isinstance(code, int) else START_FAILED)
        elif kind == "lost":
            self.error = ConversionFailed(WORKER_LOST)
            self._end(START_FAILED)

    def _end(self, code: int) -> None:
        self.returncode = code
        if code == START_FAILED and self.error is None:
            self.error = ConversionFailed(WORKER_LOST)
        actions, self._on_end = self._on_end, []
        for action in actions:
            action()

    def hand(self, spec: SpecFile) -> bool:
        """The worker writes the spec and gives its path to its stdin (once
        started there). If it cannot, the worker kills it, and its end (with
        ``error`` if the spec could not be written) says so."""
        if self.returncode is not None:
            return False
        self._host.tell_converter(self.number, "give", {"spec": spec.to_dict()})
        return True

    def poll(self) -> int | None:
        return self.returncode

    def wait(self, timeout_s: float) -> int | None:
        """For quitting only: the worker's word that it ended, for up to ``timeout_s``."""
        if self.returncode is None:
            self._host.wait_for(lambda: self.returncode is not None, timeout_s)
            if self.returncode is None:
                log.warning("Converter process %s did not end within %s s", self.pid, timeout_s)
        return self.returncode

    def kill(self) -> None:
        """The worker kills it (once started there); its end comes as an event."""
        if self.returncode is None and not self._kill_sent:
            self._kill_sent = True
            self._host.tell_converter(self.number, "kill")

    def when_ended(self, action: Callable[[], None]) -> None:
        if self.returncode is not None:
            action()
        else:
            self._on_end.append(action)


class RemoteStarter:
    """A ``conversion.Launcher`` that has the worker process start converters.
    ``host`` gives the worker process of the moment (None: none runs). With
    none that can take it, ``launch`` says so and the caller starts the
    converter itself: starting a worker for it would cost the same spawn."""

    def __init__(self, host: Callable[[], Host | None]) -> None:
        self._host = host
        # The environment the worker of the moment holds: sent with the first
        # start, then only if it changed (encoding it costs the timer call
        # up to 0.2 ms on every start).
        self._sent: tuple[Host, dict[str, str]] | None = None

    @property
    def ready(self) -> bool:
        host = self._host()
        return host is not None and host.can_start_converters

    def launch(self, command: list[str], env: Mapping[str, str], log_path: Path, *, stdin: int,
               memory_limit: int, spec: SpecFile | None = None) -> RemoteChild | None:
        host = self._host()
        if host is None or not host.can_start_converters:
            return None
        child = RemoteChild(host, log_path)
        fields: dict[str, Any] = {
            "command": list(command), "log": str(log_path),
            "stdin": "pipe" if stdin == subprocess.PIPE else "null", "memory_limit": int(memory_limit),
            "owner": os.getpid()}
        sent = self._sent
        if sent is None or sent[0] is not host or sent[1] != env:
            fields["env"] = dict(env)
        if spec is not None:
            fields["spec"] = spec.to_dict()
        number = host.start_converter(fields, child.event)
        if number is None:
            return None
        if "env" in fields:
            self._sent = (host, fields["env"])
        child.number = number
        return child


# -- the worker's side ---------------------------------------------------------------------------------


@dataclass
class _Hosted:
    number: int
    child: ChildProcess | None = None
    kill_asked: bool = False
    spec: SpecFile | None = None  # handed to it before it had started
    ended: bool = False
    thread: threading.Thread | None = field(default=None, repr=False)


class ConverterHost:
    """The worker's converters: ``handle`` takes Blender's ``converter_*``
    commands, ``events`` gets what Blender is told (``{"op": "converter", ...}``)."""

    def __init__(self, events: Callable[[dict[str, Any]], None]) -> None:
        self._events = events
        self._lock = threading.Lock()
        self._hosted: dict[int, _Hosted] = {}
        self._env: dict[str, str] | None = None  # Blender sends it with the first start, then when it changes

    def handle(self, message: dict[str, Any]) -> None:
        op, number = message["op"], int(message["id"])
        if op == "converter_start":
            self._start(number, message)
        elif op == "converter_kill":
            self._kill(number)
        elif op == "converter_give":
            self._give(number, message.get("spec"))
        else:
            raise ValueError(f"unknown command {op!r}")

    def _say(self, number: int, event: str, **fields: Any) -> None:
        self._events({"op": "converter", "id": number, "event": event, **fields})

    def _start(self, number: int, message: dict[str, Any]) -> None:
        try:
            command = [str(part) for part in message["command"]]
            if "env" in message:
                self._env = {str(name): str(value) for name, value in dict(message["env"]).items()}
            env = self._env
            if env is None:
                raise ValueError("no environment")
            spec = SpecFile.from_dict(message["spec"]) if "spec" in message else None
            log_path = Path(str(message["log"]))
            stdin = _STDIN[str(message["stdin"])]
            memory_limit, owner = int(message["memory_limit"]), int(message["owner"])
            if not command or not log_path.is_absolute():
                raise ValueError("no command, or a log path that is not absolute")
        except (KeyError, TypeError, ValueError) as exc:
            log.warning("Refused a converter start: %s", exc)
            self._say(number, "failed", message=_cannot_start(OSError("bad command")).message.to_dict())
            return
        with self._lock:
            if number in self._hosted:
                return
            hosted = self._hosted[number] = _Hosted(number)
        hosted.thread = threading.Thread(target=self._run, args=(hosted, command, env, log_path, stdin, memory_limit,
                                                                 owner, spec),
                                         name=f"hitem3d-converter-{number}", daemon=True)
        try:
            hosted.thread.start()
        except RuntimeError as exc:  # no thread to be had: Blender's side must not wait for ever
            with self._lock:
                self._hosted.pop(number, None)
            self._say(number, "failed", message=_cannot_start(OSError(str(exc))).message.to_dict())

    def _run(self, hosted: _Hosted, command: list[str], env: dict[str, str], log_path: Path, stdin: int,
             memory_limit: int, owner: int, spec: SpecFile | None) -> None:
        """Write its spec, then start, watch and reap one converter: this
        thread must live as long as it does (see the module)."""
        try:
            if spec is not None:
                spec.write()
            child = spawn(command, env, log_path, stdin=stdin, memory_limit=memory_limit, owner=owner)
        except Exception as exc:  # noqa: BLE001 - Blender's side is told, whatever it was
            failure = _cannot_start(exc if isinstance(exc, OSError) else OSError(type(exc).__name__))
            with self._lock:
                self._hosted.pop(hosted.number, None)
            self._say(hosted.number, "failed", message=failure.message.to_dict())
            return
        with self._lock:
            hosted.child = child
            self._say(hosted.number, "started", pid=child.pid)
            if hosted.kill_asked:
                child.kill()
            elif hosted.spec is not None:
                self._hand_now(hosted, hosted.spec)
        self._wait_for_end(child)
        with self._lock:
            code = child.poll()  # reaps it: its ID may be reused from now on
            hosted.ended = True
            self._hosted.pop(hosted.number, None)
        self._say(hosted.number, "ended", code=code if code is not None else START_FAILED,
                  peak=child.peak_job_memory)

    @staticmethod
    def _wait_for_end(child: ChildProcess) -> None:
        """Until it has ended, without reaping it where the system allows (POSIX)."""
        waitid = getattr(os, "waitid", None)
        if waitid is not None:
            while True:
                try:
                    waitid(os.P_PID, child.pid, os.WEXITED | os.WNOWAIT)
                    return
                except InterruptedError:
                    continue
                except ChildProcessError:
                    return  # reaped already: poll says how it ended
        # Windows: the process handle keeps its ID from being reused until Popen closes it.
        try:
            child.process.wait()
        except OSError:
            pass

    def _kill(self, number: int) -> None:
        with self._lock:
            hosted = self._hosted.get(number)
            if hosted is None:
                return  # ended, or never started: nothing to kill
            hosted.kill_asked = True
            if hosted.child is not None and not hosted.ended:
                hosted.child.kill()

    def _give(self, number: int, data: Any) -> None:
        try:
            spec = SpecFile.from_dict(data)
        except ValueError as exc:
            log.warning("Refused a converter's spec: %s", exc)
            self._kill(number)  # it would wait for one for ever: its end says it ended without a result
            return
        with self._lock:
            hosted = self._hosted.get(number)
            if hosted is None:
                return  # ended meanwhile: its end says so
            if hosted.child is None:
                hosted.spec = spec
            elif not hosted.ended:
                self._hand_now(hosted, spec)

    def _hand_now(self, hosted: _Hosted, spec: SpecFile) -> None:
        """It takes the spec, or it is killed: its end says it ended without a
        result, or ("failed" first) why the spec could not be written. Under the lock."""
        child = hosted.child
        assert child is not None
        if not child.hand(spec):
            child.kill()
        elif child.error is not None:
            self._say(hosted.number, "failed", message=child.error.message.to_dict())

    def stop(self, timeout_s: float) -> None:
        """The worker ends: kill every converter and wait, up to ``timeout_s``, until each is reaped."""
        with self._lock:
            hosted = list(self._hosted.values())
            for each in hosted:
                each.kill_asked = True
                if each.child is not None and not each.ended:
                    each.child.kill()
        deadline = time.monotonic() + timeout_s
        for each in hosted:
            if each.thread is not None:
                each.thread.join(max(0.0, deadline - time.monotonic()))

    @property
    def count(self) -> int:
        with self._lock:
            return len(self._hosted)
