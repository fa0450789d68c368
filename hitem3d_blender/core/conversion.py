"""Converting a GLB to a ``.blend`` in a separate, headless Blender process.

No ``bpy`` here. Blender's glTF importer runs on the thread that calls it; in a
window that freezes the interface for seconds on a typical result. A child
Blender does the import (and everything that does not depend on the open
scene) and saves one ``.blend``; the main thread only appends it.

This module owns the child process: its command line and environment, its
limits (time, memory), cancelling it, and reading its result. ``poll`` never
blocks, so the timer on Blender's main thread can call it every tick.

NOTE: the child runs in its own process group (session on POSIX), so a kill
reaches it and anything it started, and a Ctrl+C in Blender's terminal does
not reach it.
"""

from __future__ import annotations

import json
import logging
import os
import signal
import subprocess
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Mapping

from .display import duration
from .errors import Hitem3DError
from .import_options import ImportOptions
from .messages import N_, NONE, Message, msg

log = logging.getLogger(__package__)

# The child exits with this code when its own watchdog sees it over the memory cap.
EXIT_OUT_OF_MEMORY = 86
# ... and with this one when Blender, its parent, is gone.
EXIT_ORPHANED = 87
DEFAULT_TIMEOUT_S = 600.0
# A result file larger than this is not a result of ours.
MAX_RESULT_BYTES = 256 * 1024
# Variables a child never needs: our credentials, and Python start-up hooks
# that would run code in it that nobody asked for.
_DROPPED_ENV_PREFIXES = ("HITEM3D_",)
_DROPPED_ENV = ("PYTHONSTARTUP", "PYTHONINSPECT")
# Blender's bundled Python must not see another Python's paths.
_DROPPED_ENV_FOR_BLENDER = ("PYTHONPATH", "PYTHONHOME", "PYTHONUSERBASE")


class ConversionFailed(Hitem3DError):
    """The child could not turn the GLB into a ``.blend``: nothing was imported."""


# What the child reports (by kind, never by free text: its output is input).
CHILD_ERRORS: dict[str, str] = {
    "import_failed": N_("Blender could not import the GLB: retry, or report it with the log"),
    "no_objects": N_("The GLB holds no objects"),
    "save_failed": N_("Could not save the converted model to the Hitem3D asset library: check the folder "
                      "in the add-on preferences, then retry"),
}
CRASHED = msg("Blender crashed while converting the model: retry, or report it with the log")
NO_RESULT = msg("The model converter ended without a result: retry, or report it with the log")


def default_memory_limit() -> int:
    """Bytes the child may use: half of this computer's memory, between 2 and
    16 GB. A bad file must never take Blender's own memory away."""
    try:
        total = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (AttributeError, ValueError, OSError):
        total = 8 * 1024**3
    return int(min(16 * 1024**3, max(2 * 1024**3, total // 2)))


@dataclass(frozen=True)
class Limits:
    timeout_s: float = DEFAULT_TIMEOUT_S
    memory_bytes: int = field(default_factory=default_memory_limit)


@dataclass(frozen=True)
class AssetInfo:
    """What the Asset Browser shows about one task."""

    description: str = ""
    tags: tuple[str, ...] = ()
    properties: Mapping[str, str] = field(default_factory=dict)
    catalog_id: str = ""
    catalog_name: str = ""


@dataclass(frozen=True)
class ConversionSpec:
    """Everything the child needs, as plain values (written as JSON)."""

    task_id: str
    glb: str
    entry: str  # the .blend to write: the task's asset library entry
    result: str  # the JSON file the child writes last
    collection_name: str
    options: ImportOptions
    provenance: Mapping[str, str]
    cover: str = ""
    cover_pixel_limit: int = 4096 * 4096
    asset: AssetInfo = AssetInfo()
    memory_limit_bytes: int = 0
    parent_pid: int = 0

    def to_json(self) -> str:
        data = asdict(self)
        data["options"] = self.options.to_dict()
        return json.dumps(data)

    @classmethod
    def from_json(cls, text: str) -> ConversionSpec:
        data = json.loads(text)
        asset = data.pop("asset", {}) or {}
        asset["tags"] = tuple(asset.get("tags", ()))
        return cls(**{**data, "options": ImportOptions.from_dict(data.get("options")),
                      "asset": AssetInfo(**asset)})


@dataclass(frozen=True)
class ConversionOutcome:
    """How a child ended. ``error`` is empty on success."""

    objects: tuple[str, ...] = ()
    error: Message = NONE
    cancelled: bool = False
    seconds: float = 0.0  # the child's whole life, start-up included
    import_s: float = 0.0  # the glTF importer inside it

    @property
    def ok(self) -> bool:
        return not self.error and not self.cancelled


def child_command(*, script: Path, args: list[str], blender_binary: str, python: str) -> list[str]:
    """A headless Blender running ``script`` with ``args``: the Blender
    executable with factory settings (no user add-ons, no startup file) when
    there is one, else this Python importing the ``bpy`` module."""
    if blender_binary:
        return [blender_binary, "-b", "--factory-startup", "--python-exit-code", "1",
                "--python", str(script), "--", *args]
    return [python, "-E", str(script), *args]


def spec_args(spec_path: Path) -> list[str]:
    """The child converts the spec it is given."""
    return [str(spec_path)]


def wait_args(memory_limit: int, parent_pid: int) -> list[str]:
    """The child loads Blender, then waits for a spec's path on its stdin (``WarmChild``)."""
    return ["--wait", str(memory_limit), str(parent_pid)]


def child_environment(base: Mapping[str, str], *, real_blender: bool) -> dict[str, str]:
    """``base`` without our secrets and without what would change the child's Python."""
    dropped = set(_DROPPED_ENV) | (set(_DROPPED_ENV_FOR_BLENDER) if real_blender else set())
    return {key: value for key, value in base.items()
            if key not in dropped and not key.startswith(_DROPPED_ENV_PREFIXES)}


def read_rss(pid: int) -> int | None:
    """Resident memory of ``pid`` in bytes where the system tells (Linux,
    Windows), else None."""
    if os.name == "nt":
        return _windows_working_set(pid)
    try:
        with open(f"/proc/{pid}/status", "rb") as file:
            for line in file:
                if line.startswith(b"VmRSS:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        return None
    return None


def _windows_working_set(pid: int) -> int | None:
    """The working set of ``pid`` (Windows' resident memory); None if it cannot be read."""
    try:
        import ctypes  # noqa: PLC0415 - Windows only
        from ctypes import wintypes  # noqa: PLC0415

        class Counters(ctypes.Structure):
            _fields_ = [("cb", wintypes.DWORD), ("PageFaultCount", wintypes.DWORD),
                        ("PeakWorkingSetSize", ctypes.c_size_t), ("WorkingSetSize", ctypes.c_size_t),
                        ("QuotaPeakPagedPoolUsage", ctypes.c_size_t), ("QuotaPagedPoolUsage", ctypes.c_size_t),
                        ("QuotaPeakNonPagedPoolUsage", ctypes.c_size_t), ("QuotaNonPagedPoolUsage", ctypes.c_size_t),
                        ("PagefileUsage", ctypes.c_size_t), ("PeakPagefileUsage", ctypes.c_size_t)]

        windll: Any = getattr(ctypes, "windll")
        handle = windll.kernel32.OpenProcess(0x1000, False, pid)  # PROCESS_QUERY_LIMITED_INFORMATION
        if not handle:
            return None
        try:
            counters = Counters()
            counters.cb = ctypes.sizeof(Counters)
            if not windll.psapi.GetProcessMemoryInfo(handle, ctypes.byref(counters), counters.cb):
                return None
            return int(counters.WorkingSetSize)
        finally:
            windll.kernel32.CloseHandle(handle)
    except Exception:  # noqa: BLE001 - a missing API costs the check, never the import
        return None


def _mb(size: int) -> str:
    return f"{size / 1024**3:.1f} GB" if size >= 1024**3 else f"{size / 1024**2:.0f} MB"


def out_of_memory_message(limit: int) -> Message:
    return msg("Converting the model needed more than {limit} of memory, the converter's limit: "
               "not imported; retry, or report the task", limit=_mb(limit))


def timeout_message(timeout_s: float) -> Message:
    return msg("Converting the model took longer than {span}: not imported; retry", span=duration(timeout_s))


def _session_options() -> dict[str, Any]:
    if os.name == "posix":
        return {"start_new_session": True}
    return {"creationflags": getattr(subprocess, "CREATE_NEW_PROCESS_GROUP", 0)}


def _kill_group(process: subprocess.Popen[bytes]) -> None:
    try:
        if os.name == "posix":
            os.killpg(process.pid, signal.SIGKILL)
        else:
            process.kill()
    except (ProcessLookupError, PermissionError):
        pass  # it ended by itself meanwhile


def _spawn(command: list[str], env: Mapping[str, str], log_path: Path, stdin: int) -> subprocess.Popen[bytes]:
    """Start a converter with its output in ``log_path``, in a session (or
    process group) of its own so it can be stopped whole; ``OSError`` if it
    cannot start."""
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with log_path.open("wb") as output:
        return subprocess.Popen(command, stdin=stdin, stdout=output, stderr=subprocess.STDOUT, env=dict(env),
                                close_fds=True, **_session_options())


def _cannot_start(exc: OSError) -> ConversionFailed:
    reason = exc.strerror or type(exc).__name__
    return ConversionFailed(msg("Could not start Blender to convert the model ({reason}): retry, "
                                "or check that Blender is installed completely", reason=reason))


class WarmChild:
    """A converter started before its model is there: Blender starts while the
    download runs, then waits for a spec's path on its stdin. Blender's
    start-up (about a second) then never adds to the time to scene."""

    def __init__(self, command: list[str], env: Mapping[str, str], log_path: Path) -> None:
        self.command = command
        self.env = dict(env)
        self.log_path = log_path
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def pid(self) -> int | None:
        return self._process.pid if self._process is not None else None

    def start(self) -> None:
        """Start it; ``ConversionFailed`` if it cannot start."""
        try:
            self._process = _spawn(self.command, self.env, self.log_path, subprocess.PIPE)
        except OSError as exc:
            raise _cannot_start(exc) from None

    @property
    def alive(self) -> bool:
        return self._process is not None and self._process.poll() is None

    def take(self) -> subprocess.Popen[bytes] | None:
        """Hand the running child over (once); None (and reaped) if it has died."""
        process, self._process = self._process, None
        if process is None or process.poll() is None:
            return process
        self.log_path.unlink(missing_ok=True)
        return None

    def stop(self, timeout_s: float = 1.0) -> None:
        """Kill and reap it; its output goes too. Never waits longer than ``timeout_s``."""
        process, self._process = self._process, None
        if process is None:
            return
        _kill_group(process)
        try:
            process.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            log.warning("Converter process %s did not end within %s s", process.pid, timeout_s)
        if process.stdin is not None:
            process.stdin.close()
        self.log_path.unlink(missing_ok=True)


class ConversionProcess:
    """One child converting one GLB. Start it, ``poll`` it from a timer,
    ``cancel`` or ``stop`` it; it cleans its own files."""

    def __init__(self, spec: ConversionSpec, spec_path: Path, command: list[str], env: Mapping[str, str],
                 limits: Limits, log_path: Path) -> None:
        self.spec = spec
        self.spec_path = spec_path
        self.command = command
        self.env = dict(env)
        self.limits = limits
        self.log_path = log_path
        self._process: subprocess.Popen[bytes] | None = None
        self._started = 0.0
        self._ending: Message | None = None  # why we decided to kill it
        self._cancelled = False
        self._outcome: ConversionOutcome | None = None

    @property
    def pid(self) -> int | None:
        return self._process.pid if self._process is not None else None

    def start(self, warm: WarmChild | None = None) -> None:
        """Write the spec and hand it to ``warm`` if that child is still
        waiting, else start a child; ``ConversionFailed`` if it cannot start."""
        self.spec_path.parent.mkdir(parents=True, exist_ok=True)
        Path(self.spec.result).unlink(missing_ok=True)
        self.spec_path.write_text(self.spec.to_json(), encoding="utf-8")
        if warm is not None and self._adopt(warm):
            self._started = time.monotonic()
            return
        try:
            self._process = _spawn(self.command, self.env, self.log_path, subprocess.DEVNULL)
        except OSError as exc:
            self._cleanup(keep_entry=False)
            raise _cannot_start(exc) from None
        self._started = time.monotonic()

    def _adopt(self, warm: WarmChild) -> bool:
        """Send the spec's path to a waiting child; False if it is gone."""
        log_path = warm.log_path
        process = warm.take()
        if process is None or process.stdin is None:
            return False
        try:
            # NOTE: one short line into an empty pipe: the write never blocks.
            process.stdin.write(str(self.spec_path).encode("utf-8") + b"\n")
            process.stdin.close()
        except OSError:
            _kill_group(process)
            process.wait(timeout=1.0)
            log_path.unlink(missing_ok=True)
            return False
        self._process = process
        self.log_path = log_path
        return True

    def poll(self) -> ConversionOutcome | None:
        """None while the child runs; its outcome once it has ended (then the
        process is reaped and the spec and result files are gone). Never waits."""
        if self._outcome is not None:
            return self._outcome
        process = self._process
        if process is None:
            return None
        code = process.poll()
        if code is None:
            self._watch(process)
            return None
        self._outcome = self._conclude(code)
        return self._outcome

    def _watch(self, process: subprocess.Popen[bytes]) -> None:
        if self._ending is not None:
            return
        if time.monotonic() - self._started > self.limits.timeout_s:
            self._kill(timeout_message(self.limits.timeout_s))
            return
        rss = read_rss(process.pid)
        if rss is not None and rss > self.limits.memory_bytes:
            self._kill(out_of_memory_message(self.limits.memory_bytes))

    def cancel(self) -> None:
        """Kill the child now; the next ``poll`` reaps it."""
        if self._ending is None:
            self._cancelled = True
        self._kill(NONE)

    def stop(self, timeout_s: float = 1.0) -> None:
        """Kill the child and reap it (quitting, disabling): no process is left."""
        self.cancel()
        process = self._process
        if process is not None and self._outcome is None:
            try:
                process.wait(timeout=timeout_s)
            except subprocess.TimeoutExpired:
                log.warning("Converter process %s did not end within %s s", process.pid, timeout_s)
                return
            self._outcome = self._conclude(process.returncode)

    def _kill(self, message: Message) -> None:
        process = self._process
        if process is None or process.returncode is not None or self._ending is not None:
            return
        self._ending = message
        _kill_group(process)  # poll reaps it

    def _conclude(self, code: int) -> ConversionOutcome:
        seconds = time.monotonic() - self._started
        outcome = self._judge(code, seconds)
        self._cleanup(keep_entry=outcome.ok)
        if not outcome.ok and not outcome.cancelled:
            log.warning("Converting task %s failed (exit code %s): %s\nLast lines of the converter:\n%s",
                        self.spec.task_id[:8], code, outcome.error, self._output_tail())
        return outcome

    def _output_tail(self, lines: int = 15) -> str:
        """The end of the child's output, for the log (support needs it)."""
        try:
            with self.log_path.open("rb") as file:
                file.seek(max(0, self.log_path.stat().st_size - 4096))
                text = file.read().decode("utf-8", "replace")
        except OSError:
            return "(no output)"
        return "\n".join(text.splitlines()[-lines:]) or "(no output)"

    def _judge(self, code: int, seconds: float) -> ConversionOutcome:
        if self._cancelled:
            return ConversionOutcome(cancelled=True, seconds=seconds)
        if self._ending is not None:
            return ConversionOutcome(error=self._ending, seconds=seconds)
        if code == EXIT_OUT_OF_MEMORY:
            return ConversionOutcome(error=out_of_memory_message(self.limits.memory_bytes), seconds=seconds)
        result = read_result(Path(self.spec.result))
        if code != 0 or result is None:
            if result is not None and result.get("error") in CHILD_ERRORS:
                return ConversionOutcome(error=msg(CHILD_ERRORS[str(result["error"])]), seconds=seconds)
            return ConversionOutcome(error=CRASHED if code != 0 else NO_RESULT, seconds=seconds)
        error = result.get("error")
        if error:
            kind = str(error)
            return ConversionOutcome(error=msg(CHILD_ERRORS[kind]) if kind in CHILD_ERRORS else NO_RESULT,
                                     seconds=seconds)
        objects = result.get("objects")
        if (not isinstance(objects, list) or not objects or not all(isinstance(name, str) for name in objects)
                or not Path(self.spec.entry).is_file()):
            return ConversionOutcome(error=NO_RESULT, seconds=seconds)
        import_s = result.get("import_s")
        return ConversionOutcome(objects=tuple(objects), seconds=seconds,
                                 import_s=float(import_s) if isinstance(import_s, (int, float)) else 0.0)

    def _cleanup(self, *, keep_entry: bool) -> None:
        for path in (self.spec_path, Path(self.spec.result), partial_entry(self.spec)):
            path.unlink(missing_ok=True)
        if keep_entry:
            # The output only matters when something went wrong.
            self.log_path.unlink(missing_ok=True)
        else:
            # A child killed between its rename and its result leaves an entry
            # nobody asked for: the library holds only what was imported.
            Path(self.spec.entry).unlink(missing_ok=True)


def partial_entry(spec: ConversionSpec) -> Path:
    """Where the child writes the entry before renaming it into place. It ends
    in ``.blend`` (Blender writes nothing else) but is hidden from the Asset
    Browser, which skips dot files; the parent's process ID keeps two Blenders
    sharing a library (a studio share) out of each other's way."""
    entry = Path(spec.entry)
    return entry.with_name(f".{entry.stem}.{spec.parent_pid}.partial.blend")


def read_result(path: Path) -> dict[str, Any] | None:
    """The child's result, or None when it is missing, too big or not a JSON object."""
    try:
        if path.stat().st_size > MAX_RESULT_BYTES:
            return None
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def write_result(path: Path, data: Mapping[str, Any]) -> None:
    """Atomically: the parent never reads half a result."""
    partial = path.with_name(path.name + ".partial")
    partial.write_text(json.dumps(dict(data)), encoding="utf-8")
    os.replace(partial, path)


def this_python() -> str:
    return sys.executable


def start_watchdog(memory_limit: int, parent_pid: int, interval_s: float = 0.05) -> None:
    """In the child: end this process when it grows over ``memory_limit``
    bytes or when its parent is gone, so neither a bad file nor a crashed
    Blender leaves a converter running.

    NOTE: the parent watched is the one the child has now. It is Blender, or a
    launcher between them (a wrapper script that starts Blender without
    ``exec``); ``parent_pid`` is only logged. When it dies, the child is
    handed to another process and its parent ID changes."""
    import threading  # noqa: PLC0415 - only the child needs it

    parent = os.getppid()
    if parent_pid and parent != parent_pid:
        log.info("Converter started by process %s, not Blender (%s): watching %s", parent, parent_pid, parent)

    def watch() -> None:
        while True:
            if os.getppid() != parent:
                os._exit(EXIT_ORPHANED)
            if memory_limit and _peak_rss() > memory_limit:
                os._exit(EXIT_OUT_OF_MEMORY)
            time.sleep(interval_s)

    threading.Thread(target=watch, name="hitem3d-converter-watchdog", daemon=True).start()


def _peak_rss() -> int:
    current = read_rss(os.getpid())
    if current is not None:
        return current
    try:
        import resource  # noqa: PLC0415 - not on Windows
    except ImportError:
        return 0
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    # Kilobytes on Linux, bytes on macOS.
    return int(peak if sys.platform == "darwin" else peak * 1024)
