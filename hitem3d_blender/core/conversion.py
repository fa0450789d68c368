"""Converting a GLB to a ``.blend`` in a separate, headless Blender process.

No ``bpy`` here. Blender's glTF importer runs on the thread that calls it; in a
window that freezes the interface for seconds on a typical result. A child
Blender does the import (and everything that does not depend on the open
scene) and saves one ``.blend``; the main thread only appends it.

This module owns the child process: its command line and environment, its
limits (time, memory; ``core.process_guard`` holds them on each system),
cancelling it, and reading its result. Nothing here waits on a child: ``poll``
never blocks, a killed child is reaped later (``Reaper``: a killed Blender
takes tens of milliseconds to end), starting one never copies Blender's
memory (``vfork`` or ``posix_spawn``, see ``spawn``), and given a ``Starter``
the start itself happens on its thread (``begin``): a spawn returns only when
the child has reached ``exec``, 0.8 ms on a quiet machine and up to 4 ms on a
busy one, time Blender's main thread does not wait. Only quitting waits, at
most a second.

NOTE: the child runs in its own process group (session on POSIX), so a kill
reaches it and anything it started, and a Ctrl+C in Blender's terminal does
not reach it. Its temporary files go to a folder of ours in the work folder,
removed when it has ended: a killed Blender cannot remove its own
``blender_*`` folder from the system's temporary folder.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import shutil
import signal
import stat
import queue
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import IO, Any, Callable, Mapping, Protocol

from . import safe_files
from .display import duration
from .errors import Hitem3DError
from .import_options import ImportOptions
from .logs import clean_lines
from .messages import N_, NONE, Message, msg
from .process_guard import EXIT_OUT_OF_MEMORY, EXIT_TIMED_OUT, WindowsJob, resident_bytes, windows_job
from .safe_files import Seal

log = logging.getLogger(__package__)

DEFAULT_TIMEOUT_S = 600.0
# A result file larger than this is not a result of ours.
MAX_RESULT_BYTES = 256 * 1024
# Variables a child never needs: our credentials, and Python start-up hooks
# that would run code in it that nobody asked for.
_DROPPED_ENV_PREFIXES = ("HITEM3D_",)
_DROPPED_ENV = ("PYTHONSTARTUP", "PYTHONINSPECT")
# Blender's bundled Python must not see another Python's paths.
_DROPPED_ENV_FOR_BLENDER = ("PYTHONPATH", "PYTHONHOME", "PYTHONUSERBASE")
# Where Blender and Python put temporary files: TMPDIR on Linux and macOS, TMP and TEMP on Windows.
TEMP_VARIABLES = ("TMPDIR", "TMP", "TEMP")
TEMP_PREFIX = "tmp-"

# One memory budget for all converters together: half of this computer's
# memory, between these bounds. A bad file must never take Blender's own.
MIN_BUDGET = 2 * 1024**3
MAX_BUDGET = 16 * 1024**3
# What one converter should be able to use: a 5-million-face model took about
# 3.5 GB to import. The default number at once gives each at least this.
SHARE_WANTED = 4 * 1024**3
DEFAULT_MAX_AT_ONCE = 4
MAX_AT_ONCE = 16  # the preference's upper end


class ConversionFailed(Hitem3DError):
    """The child could not turn the GLB into a ``.blend``: nothing was imported."""


# What the child reports (by kind, never by free text: its output is input).
CHILD_ERRORS: dict[str, str] = {
    "import_failed": N_("Blender could not import the GLB: retry, or report it with the log"),
    "no_objects": N_("The GLB holds no objects"),
    "save_failed": N_("Could not save the converted model to the Hitem3D asset library: check the folder "
                      "in the add-on preferences, then retry"),
}
# The child's GLB check refused the file: the check's own message travels in
# the result (``refusal_message``), so the artist reads why, not "could not import".
REFUSED = "refused"
CRASHED = msg("Blender crashed while converting the model: retry, or report it with the log")
NO_RESULT = msg("The model converter ended without a result: retry, or report it with the log")


def refusal_message(saved: object) -> Message:
    """The GLB check's message as the child saved it (``Message.to_dict``);
    read like the journal (checked, never trusted), else the plain message."""
    try:
        return Message.from_dict(saved)
    except ValueError:
        return msg(CHILD_ERRORS["import_failed"])


# -- limits -----------------------------------------------------------------------------------------


def total_memory() -> int:
    """This computer's memory in bytes; 8 GB when the system does not say."""
    try:
        return int(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES"))  # Linux, macOS
    except (AttributeError, ValueError, OSError):
        pass
    try:
        import ctypes  # noqa: PLC0415 - Windows only

        class Status(ctypes.Structure):
            _fields_ = [("dwLength", ctypes.c_uint32), ("dwMemoryLoad", ctypes.c_uint32),
                        ("ullTotalPhys", ctypes.c_uint64), ("ullAvailPhys", ctypes.c_uint64),
                        ("ullTotalPageFile", ctypes.c_uint64), ("ullAvailPageFile", ctypes.c_uint64),
                        ("ullTotalVirtual", ctypes.c_uint64), ("ullAvailVirtual", ctypes.c_uint64),
                        ("ullAvailExtendedVirtual", ctypes.c_uint64)]

        status = Status()
        status.dwLength = ctypes.sizeof(Status)
        if getattr(ctypes, "windll").kernel32.GlobalMemoryStatusEx(ctypes.byref(status)):
            return int(status.ullTotalPhys)
    except Exception:  # noqa: BLE001 - no answer: the fallback below
        pass
    return 8 * 1024**3


def memory_budget(total: int | None = None) -> int:
    """Bytes all converters together may use: half of this computer's memory,
    between 2 and 16 GB."""
    total = total_memory() if total is None else total
    return int(min(MAX_BUDGET, max(MIN_BUDGET, total // 2)))


def default_at_once(budget: int | None = None) -> int:
    """How many converters may run at once unless the artist says otherwise:
    as many as the budget gives 4 GB each, from 1 to 4 (a computer with 24 GB:
    3; with 8 GB: 1)."""
    budget = memory_budget() if budget is None else budget
    return max(1, min(DEFAULT_MAX_AT_ONCE, budget // SHARE_WANTED))


def memory_share(budget: int, at_once: int) -> int:
    """Each converter's part of the budget: together they never pass it."""
    return budget // max(1, at_once)


@dataclass(frozen=True)
class Limits:
    """One converter's limits. ``shared``: its memory is a share of the
    budget, so fewer converters at once would give it more."""

    timeout_s: float = DEFAULT_TIMEOUT_S
    memory_bytes: int = field(default_factory=memory_budget)
    shared: bool = False


def limits_for(at_once: int, budget: int | None = None, timeout_s: float = DEFAULT_TIMEOUT_S) -> Limits:
    """The limits of each of ``at_once`` converters sharing ``budget``."""
    budget = memory_budget() if budget is None else budget
    return Limits(timeout_s=timeout_s, memory_bytes=memory_share(budget, at_once), shared=at_once > 1)


def size_text(size: int) -> str:
    return f"{size / 1024**3:.1f} GB" if size >= 1024**3 else f"{size / 1024**2:.0f} MB"


def out_of_memory_message(limits: Limits) -> Message:
    if limits.shared:
        return msg("Converting the model needed more than {limit} of memory, each converter's share: not "
                   "imported; allow fewer converters at once in the add-on preferences, then retry",
                   limit=size_text(limits.memory_bytes))
    return msg("Converting the model needed more than {limit} of memory, the converter's limit: "
               "not imported; retry, or report the task", limit=size_text(limits.memory_bytes))


def timeout_message(timeout_s: float) -> Message:
    return msg("Converting the model took longer than {span}: not imported; retry", span=duration(timeout_s))


# -- what the child is given and gives back -------------------------------------------------------------


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
    timeout_s: float = 0.0  # the child's own alarm (``process_guard.arm_alarm``); 0: none
    # A private folder of ours (``make_temp_folder``) where Blender writes the
    # entry before it is moved into the library (``library_entry.write_entry``).
    staging: str = ""

    def to_json(self) -> str:
        # NOTE: not ``asdict``, whose deep copy took most of the 0.1 to 0.2 ms
        # this cost the timer call that starts a conversion.
        data: dict[str, Any] = {each.name: getattr(self, each.name) for each in fields(self)}
        data["options"] = self.options.to_dict()
        data["provenance"] = dict(self.provenance)
        asset = {each.name: getattr(self.asset, each.name) for each in fields(self.asset)}
        asset["properties"] = dict(self.asset.properties)
        data["asset"] = asset
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
    seal: Seal = Seal()  # what the entry held when the child wrote it

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
    """The memory ``pid`` holds (``process_guard.resident_bytes``), None where the system does not say."""
    return resident_bytes(pid)


# -- files of ours: the only places this module creates or removes files --------------------------------


# Temporary folders of converters that have ended, emptied, for the next ones:
# a converter's start then creates no folder (a few tenths of a millisecond
# of Blender's main thread, more when the disk is busy).
_spare_temp_folders: list[Path] = []


def _is_plain_folder(path: Path) -> bool:
    """A folder, not a symlink to one (planted while it was spare)."""
    try:
        return stat.S_ISDIR(os.lstat(path).st_mode)
    except OSError:
        return False


def make_temp_folder(work: Path, owner: int | None = None) -> Path:
    """An empty, private folder in ``work`` for one child's temporary files:
    a spare one of ours, else a new one (never an existing one). Its name
    carries the process ID of the Blender it is for (``owner``, else ours),
    so ``prune_temp_folders`` can tell whose it is."""
    owner = os.getpid() if owner is None else owner
    while _spare_temp_folders:
        folder = _spare_temp_folders.pop()
        if folder.parent == work and folder.name.startswith(f"{TEMP_PREFIX}{owner}-") and _is_plain_folder(folder):
            return folder
        remove_temp_folder(folder)
    return safe_files.private_folder(work, f"{TEMP_PREFIX}{owner}-")


def release_temp_folder(folder: Path) -> None:
    """A child has ended: what it left in its folder goes (Blender's
    ``blender_*`` folder, when it was killed); the folder is kept for the next."""
    try:
        entries = list(os.scandir(folder))
    except OSError:
        return
    for entry in entries:
        if entry.is_dir(follow_symlinks=False):
            shutil.rmtree(entry.path, ignore_errors=True)
        else:
            _remove(Path(entry.path))
    _spare_temp_folders.append(folder)


def remove_temp_folder(folder: Path) -> None:
    """Remove a child's temporary folder and what it holds; a symlink in it is
    removed, never followed (``shutil.rmtree`` works by file descriptor)."""
    shutil.rmtree(folder, ignore_errors=True)


def remove_spare_temp_folders() -> None:
    """Quitting, disabling: no folder of ours is left behind."""
    while _spare_temp_folders:
        remove_temp_folder(_spare_temp_folders.pop())


def prune_temp_folders(work: Path, alive: Callable[[int], bool]) -> int:
    """Remove the temporary folders of converters whose Blender is gone (it
    crashed, and its converters with it); returns how many."""
    pruned = 0
    try:
        entries = list(os.scandir(work))
    except OSError:
        return 0
    for entry in entries:
        name = entry.name
        if not name.startswith(TEMP_PREFIX) or not entry.is_dir(follow_symlinks=False):
            continue
        owner = name[len(TEMP_PREFIX):].split("-", 1)[0]
        if owner.isdigit() and int(owner) != os.getpid() and not alive(int(owner)):
            remove_temp_folder(Path(entry.path))
            pruned += 1
    return pruned


def _remove(path: Path) -> None:
    """Remove a file of ours if it is there; a failure (a read-only folder) is
    logged, never raised: cleaning up must not stop a conversion's end from
    being reported."""
    try:
        safe_files.remove(path)
    except OSError as exc:
        log.warning("Could not remove %s: %s", path.name, exc)


def _open_log(path: Path) -> IO[bytes]:
    """A new log file for a child's output; a symlink planted there is removed, never followed."""
    safe_files.ensure_folder(path.parent)
    return safe_files.create_new(path, 0o600)


@dataclass(frozen=True)
class SpecFile:
    """A conversion's spec as its converter reads it: written by whoever
    starts that converter, or gives a converter started ahead its path, just
    before: the starter's thread or the worker process, so Blender's main
    thread never creates a file for it (0.3 to 0.7 ms on a busy machine)."""

    path: Path
    text: str
    # Files of an earlier run that must be gone first: its result, which a
    # converter that dies before writing its own must not be judged by.
    stale: tuple[Path, ...] = ()

    @property
    def line(self) -> bytes:
        """Its path, as a converter started ahead reads it on stdin."""
        return str(self.path).encode("utf-8") + b"\n"

    def write(self) -> None:
        """No rename, no fsync (it is read from the page cache a moment later,
        and a crash ends the child too). A symlink planted there is removed,
        never followed. ``OSError`` (``DiskFull``, ``FolderUnusable``) if it
        cannot be written."""
        try:
            for path in self.stale:
                safe_files.remove(path)
            safe_files.ensure_folder(self.path.parent)
            with safe_files.create_new(self.path, 0o600) as file:
                file.write(self.text.encode("utf-8"))
        except OSError as exc:
            raise safe_files.write_error(exc, self.path.parent) from None

    def to_dict(self) -> dict[str, Any]:
        return {"path": str(self.path), "text": self.text, "stale": [str(path) for path in self.stale]}

    @classmethod
    def from_dict(cls, data: Any) -> SpecFile:
        """From the worker's wire (input: ``ValueError`` unless absolute paths and a text)."""
        if not isinstance(data, dict) or not isinstance(data.get("path"), str) or not isinstance(data.get("text"), str):
            raise ValueError("a spec needs a path and a text")
        stale = data.get("stale", [])
        if not isinstance(stale, list) or not all(isinstance(each, str) for each in stale):
            raise ValueError("a spec's stale files must be paths")
        paths = [Path(data["path"]), *(Path(each) for each in stale)]
        if not all(path.is_absolute() for path in paths):
            raise ValueError("a spec's paths must be absolute")
        return cls(paths[0], data["text"], tuple(paths[1:]))


def read_result(path: Path) -> dict[str, Any] | None:
    """The child's result, or None when it is missing, too big, not a plain
    file or not a JSON object."""
    try:
        if not safe_files.is_regular_file(path) or path.stat().st_size > MAX_RESULT_BYTES:
            return None
        data = json.loads(safe_files.read_bytes(path).decode("utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def write_result(path: Path, data: Mapping[str, Any]) -> None:
    """Atomically: the parent never reads half a result."""
    safe_files.write_atomic(path, json.dumps(dict(data)).encode("utf-8"), fsync=False)


# -- a child process ---------------------------------------------------------------------------------


def _session_options() -> dict[str, Any]:
    if os.name == "posix":
        return {"start_new_session": True}
    return {"creationflags": getattr(subprocess, "CREATE_NEW_PROCESS_GROUP", 0)}


def _cannot_start(exc: OSError) -> ConversionFailed:
    if isinstance(exc, Hitem3DError):  # our work folder is read-only, gone or full
        return ConversionFailed(exc.message)
    reason = exc.strerror or type(exc).__name__
    return ConversionFailed(msg("Could not start Blender to convert the model ({reason}): retry, "
                                "or check that Blender is installed completely", reason=reason))


class ChildProcess:
    """A started converter: its process, its temporary folder and, on Windows,
    its job object. ``kill`` never waits; ``poll`` reaps it, and then its
    folder and job go."""

    def __init__(self, process: subprocess.Popen[bytes] | SpawnedProcess, temp_folder: Path,
                 job: WindowsJob | None, log_path: Path) -> None:
        self.process = process
        self.temp_folder = temp_folder
        self.job = job
        self.log_path = log_path
        self.peak_job_memory = 0  # Windows: the most it committed, read before the job closes
        self.returncode: int | None = None
        self.error: ConversionFailed | None = None  # its spec could not be written (``hand``)
        self._on_end: list[Callable[[], None]] = []

    @property
    def pid(self) -> int:
        return self.process.pid

    @property
    def started(self) -> bool:
        return True

    def give(self, line: bytes) -> bool:
        """One line on its stdin, which then closes (a converter started
        ahead takes its spec's path so); False if it has no stdin or cannot
        take it. NOTE: one short line into an empty pipe: it never blocks."""
        stdin = self.process.stdin
        if stdin is None:
            return False
        try:
            stdin.write(line)
            stdin.close()
        except OSError:
            return False
        return True

    def hand(self, spec: SpecFile) -> bool:
        """Write ``spec``, then give its path (a converter started ahead);
        False if it cannot take it. If the spec cannot be written, it is
        killed and ``error`` says why: it takes no other."""
        if self.returncode is not None or self.process.stdin is None:
            return False
        try:
            spec.write()
        except OSError as exc:
            self.error = _cannot_start(exc)
            self.kill()
            return True
        return self.give(spec.line)

    def when_ended(self, action: Callable[[], None]) -> None:
        """Run ``action`` once the process has been reaped (now, if it has)."""
        if self.returncode is not None:
            action()
        else:
            self._on_end.append(action)

    def poll(self) -> int | None:
        """The exit code once it has ended (and been reaped), else None. Never waits."""
        if self.returncode is None and self.process.poll() is not None:
            self._ended()
        return self.returncode

    def wait(self, timeout_s: float) -> int | None:
        """For quitting only: wait up to ``timeout_s`` for it to end."""
        if self.returncode is None:
            try:
                self.process.wait(timeout=max(0.0, timeout_s))
            except subprocess.TimeoutExpired:
                log.warning("Converter process %s did not end within %s s", self.pid, timeout_s)
                return None
            self._ended()
        return self.returncode

    def kill(self) -> None:
        """Kill it and everything it started; the next ``poll`` reaps it."""
        if self.returncode is not None or self.process.returncode is not None:
            return
        try:
            if os.name == "posix":
                os.killpg(self.process.pid, signal.SIGKILL)
            else:
                self.process.kill()
        except (ProcessLookupError, PermissionError):
            pass  # it ended by itself meanwhile
        if self.job is not None:
            self.job.close()  # on Windows, whatever it started goes too

    def _ended(self) -> None:
        self.returncode = self.process.returncode
        if self.process.stdin is not None:
            try:
                self.process.stdin.close()
            except OSError:
                pass
        if self.job is not None:
            self.peak_job_memory = self.job.peak_process_memory()
            self.job.close()
        release_temp_folder(self.temp_folder)
        actions, self._on_end = self._on_end, []
        for action in actions:
            action()


class SpawnedProcess:
    """A child started with ``os.posix_spawn``: the part of ``Popen`` a
    converter needs (``pid``, ``stdin``, ``returncode``, ``poll``, ``wait``, ``kill``)."""

    def __init__(self, pid: int, stdin: IO[bytes] | None) -> None:
        self.pid = pid
        self.stdin = stdin
        self.returncode: int | None = None

    def poll(self) -> int | None:
        if self.returncode is None:
            try:
                pid, status = os.waitpid(self.pid, os.WNOHANG)
            except ChildProcessError:
                self.returncode = -int(signal.SIGKILL)  # reaped elsewhere: it is gone
                return self.returncode
            if pid:
                self.returncode = os.waitstatus_to_exitcode(status)
        return self.returncode

    def wait(self, timeout: float | None = None) -> int:
        deadline = time.monotonic() + (timeout if timeout is not None else 1e9)
        while self.poll() is None:
            if time.monotonic() >= deadline:
                raise subprocess.TimeoutExpired(str(self.pid), timeout or 0.0)
            time.sleep(0.005)
        assert self.returncode is not None
        return self.returncode

    def kill(self) -> None:
        os.kill(self.pid, signal.SIGKILL)


# NOTE: Python's Popen uses vfork on Linux only; on macOS it forks, which
# copies the map of Blender's memory. posix_spawn is a system call there.
SPAWN_WITH_POSIX_SPAWN = sys.platform == "darwin"


def _posix_spawn(command: list[str], env: Mapping[str, str], output: IO[bytes], stdin: int) -> SpawnedProcess:
    """``command`` in a session of its own, its output to ``output``, its stdin
    from /dev/null (``subprocess.DEVNULL``) or a pipe (``subprocess.PIPE``).
    Only descriptors that cannot be inherited stay closed: Python makes all
    of its own so."""
    read_end = write_end = -1
    if stdin == subprocess.PIPE:
        read_end, write_end = os.pipe()
        source = read_end
    else:
        source = os.open(os.devnull, os.O_RDONLY | getattr(os, "O_CLOEXEC", 0))
    try:
        actions = [(os.POSIX_SPAWN_DUP2, source, 0), (os.POSIX_SPAWN_DUP2, output.fileno(), 1),
                   (os.POSIX_SPAWN_DUP2, output.fileno(), 2)]
        starter = os.posix_spawn if os.path.dirname(command[0]) else os.posix_spawnp
        pid = starter(command[0], command, dict(env), file_actions=actions, setsid=True,
                      setsigdef=(signal.SIGPIPE, signal.SIGXFSZ))  # as Popen restores them
    except BaseException:
        if write_end >= 0:
            os.close(write_end)
        raise
    finally:
        os.close(source)
    return SpawnedProcess(pid, os.fdopen(write_end, "wb") if write_end >= 0 else None)


def spawn(command: list[str], env: Mapping[str, str], log_path: Path, *, stdin: int,
          memory_limit: int, posix_spawn: bool | None = None, owner: int | None = None) -> ChildProcess:
    """Start a converter with its output in ``log_path``, in a session (or
    process group) of its own so it can be stopped whole, with a temporary
    folder of its own; ``OSError`` if it cannot start.

    NOTE: on the main thread, in Blender's big process, so never with a
    ``fork`` that copies its memory map (45 to 60 ms for a 1.8 GB parent):
    on Linux Python's ``Popen`` uses ``vfork`` as long as it is given no
    ``preexec_fn`` (nor user or group changes), 0.3 to 0.5 ms whatever
    Blender's size; on macOS ``posix_spawn`` (``posix_spawn``: True forces it,
    for tests). Whatever must happen in the child before it runs happens in
    its script instead (``process_guard.guard``). ``owner``: the Blender
    it converts for, when another process of ours starts it
    (``converter_host``)."""
    temp = make_temp_folder(log_path.parent, owner)
    env = {**env, **{name: str(temp) for name in TEMP_VARIABLES}}
    use_posix_spawn = SPAWN_WITH_POSIX_SPAWN if posix_spawn is None else posix_spawn
    process: Any
    try:
        with _open_log(log_path) as output:
            if use_posix_spawn:
                process = _posix_spawn(command, env, output, stdin)
            else:
                process = subprocess.Popen(command, stdin=stdin, stdout=output, stderr=subprocess.STDOUT, env=env,
                                           close_fds=True, **_session_options())
    except OSError:
        remove_temp_folder(temp)
        raise
    job = None
    if os.name == "nt":
        job = windows_job(memory_limit, int(getattr(process, "_handle")))
    return ChildProcess(process, temp, job, log_path)


# A child whose start failed: its exit code, never one a process gives
# (``StartingChild.error`` says why).
START_FAILED = -1000


class _Job:
    """Work for ``Starter``'s thread: ``done`` once it has run, whatever happened."""

    def __init__(self) -> None:
        self._done = threading.Event()

    @property
    def done(self) -> bool:
        return self._done.is_set()

    def wait(self, timeout_s: float) -> bool:
        return self._done.wait(max(0.0, timeout_s))

    def run(self) -> None:
        try:
            self._run()
        finally:
            self._done.set()

    def _run(self) -> None:
        raise NotImplementedError


class Start(_Job):
    """One converter's start, run on ``Starter``'s thread: its spec written
    (if it has one), then the spawn; ``child`` once it returned, or ``error``
    if it could not start."""

    def __init__(self, command: list[str], env: Mapping[str, str], log_path: Path, *, stdin: int,
                 memory_limit: int, spec: SpecFile | None = None) -> None:
        super().__init__()
        self.command = list(command)
        self.env = dict(env)
        self.log_path = log_path
        self.stdin = stdin
        self.memory_limit = memory_limit
        self.spec = spec
        self.child: ChildProcess | None = None
        self.error: ConversionFailed | None = None

    def _run(self) -> None:
        try:
            if self.spec is not None:
                self.spec.write()
            self.child = spawn(self.command, self.env, self.log_path, stdin=self.stdin,
                               memory_limit=self.memory_limit)
        except OSError as exc:
            self.error = _cannot_start(exc)
        except Exception as exc:  # noqa: BLE001 - the thread goes on; the conversion says so
            log.exception("Could not start a converter")
            self.error = _cannot_start(OSError(type(exc).__name__))


class Hand(_Job):
    """A spec handed to a converter started ahead, on ``Starter``'s thread
    (``ChildProcess.hand``: the file written there, not on Blender's)."""

    def __init__(self, child: ChildProcess, spec: SpecFile) -> None:
        super().__init__()
        self.child = child
        self.spec = spec
        self.taken = False

    def _run(self) -> None:
        try:
            self.taken = self.child.hand(self.spec)
        except Exception:  # noqa: BLE001 - the thread goes on; the converter ends without a result
            log.exception("Could not hand a spec to a converter")
            self.child.kill()


class Starter:
    """A thread that starts converters and hands them their specs, so
    Blender's main thread never waits for a spawn nor writes a spec. Started
    with the first converter, stopped by ``stop``.

    NOTE: it must outlive the converters it started: on Linux a converter
    asks to be killed when the *thread* that started it ends
    (``process_guard.watch_parent_linux``), so this thread ends only once
    they are all stopped (``engine.conversions.stop_all``).
    NOTE: on Linux ``Popen`` lets go of the GIL while ``vfork`` waits for the
    child's ``exec``; ``os.posix_spawn`` (macOS) holds it, so there the main
    thread may still wait for a spawn if it runs Python meanwhile."""

    def __init__(self, name: str = "hitem3d-converter-starter") -> None:
        self.name = name
        self._queue: queue.SimpleQueue[_Job | None] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    @property
    def ready(self) -> bool:
        """It can start a converter now (``Launcher``): always."""
        return True

    def launch(self, command: list[str], env: Mapping[str, str], log_path: Path, *, stdin: int,
               memory_limit: int, spec: SpecFile | None = None) -> StartingChild:
        start = Start(command, env, log_path, stdin=stdin, memory_limit=memory_limit, spec=spec)
        self.submit(start)
        return StartingChild(start, self)

    def submit(self, job: _Job) -> None:
        if not self.running:
            self._thread = threading.Thread(target=self._run, name=self.name, daemon=True)
            self._thread.start()
        self._queue.put(job)

    def stop(self, timeout_s: float = 1.0) -> None:
        """End the thread once the jobs handed over have run (quitting,
        disabling: after every converter was stopped)."""
        thread, self._thread = self._thread, None
        if thread is None:
            return
        self._queue.put(None)
        thread.join(max(0.0, timeout_s))
        if thread.is_alive():
            log.warning("The converter starter did not end within %s s", timeout_s)

    def _run(self) -> None:
        while True:
            job = self._queue.get()
            if job is None:
                return
            job.run()


class StartingChild:
    """A converter handed to a ``Starter``: what its owners use of
    ``ChildProcess``, answered as a child that runs until the spawn has
    returned. A kill asked for meanwhile happens as soon as it has; a start
    that failed ends it with ``START_FAILED`` and ``error``. A spec handed to
    it is written on the starter's thread too; until that is done it counts
    as running (its end then waits: its files are not cleaned up while that
    thread still writes one)."""

    def __init__(self, start: Start, starter: Starter | None = None) -> None:
        self._start = start
        self._starter = starter
        self._child: ChildProcess | None = None
        self._hand: Hand | None = None
        self._kill_asked = False
        self._on_end: list[Callable[[], None]] = []
        self._error: ConversionFailed | None = None
        self.returncode: int | None = None

    @property
    def log_path(self) -> Path:
        return self._start.log_path

    @property
    def error(self) -> ConversionFailed | None:
        """Why it could not start, or could not take its spec."""
        if self._error is None and self._child is not None:
            return self._child.error
        return self._error

    @property
    def started(self) -> bool:
        """The spawn has returned (started or failed)."""
        return self._settle() is not None or self.returncode is not None

    @property
    def pid(self) -> int | None:
        child = self._settle()
        return child.pid if child is not None else None

    def give(self, line: bytes) -> bool:
        """As ``ChildProcess.give``, once started (False before)."""
        child = self._settle()
        return child is not None and child.give(line)

    def hand(self, spec: SpecFile) -> bool:
        """As ``ChildProcess.hand``, on the starter's thread; False before it
        has started, or once it has ended."""
        child = self._settle()
        if child is None or self._hand is not None or child.poll() is not None:
            return False
        if self._starter is None:
            return child.hand(spec)
        self._hand = Hand(child, spec)
        self._starter.submit(self._hand)
        return True

    @property
    def peak_job_memory(self) -> int:
        return self._child.peak_job_memory if self._child is not None else 0

    def _settle(self) -> ChildProcess | None:
        """The child once the spawn has returned; None before, or if it failed."""
        if self._child is not None or self.returncode is not None or not self._start.done:
            return self._child
        if self._start.child is None:
            self._error = self._start.error or _cannot_start(OSError("no process"))
            self._end(START_FAILED)
            return None
        child = self._child = self._start.child
        log.info("Converter process %s started", child.pid)
        actions, self._on_end = self._on_end, []
        for action in actions:
            child.when_ended(action)
        if self._kill_asked:
            child.kill()
        return child

    def _end(self, code: int) -> None:
        self.returncode = code
        actions, self._on_end = self._on_end, []
        for action in actions:
            action()

    def when_ended(self, action: Callable[[], None]) -> None:
        child = self._settle()
        if child is not None:
            child.when_ended(action)
        elif self.returncode is not None:
            action()
        else:
            self._on_end.append(action)

    def poll(self) -> int | None:
        child = self._settle()
        if child is not None and self.returncode is None and (self._hand is None or self._hand.done):
            self.returncode = child.poll()
        return self.returncode

    def wait(self, timeout_s: float) -> int | None:
        """For quitting only: wait up to ``timeout_s`` for the start (and a
        spec being handed), then the end."""
        deadline = time.monotonic() + timeout_s
        if not self._start.wait(timeout_s):
            log.warning("A converter did not start within %s s", timeout_s)
            return None
        child = self._settle()
        if self._hand is not None and not self._hand.wait(deadline - time.monotonic()):
            return None
        if child is not None and self.returncode is None:
            self.returncode = child.wait(deadline - time.monotonic())
        return self.returncode

    def kill(self) -> None:
        self._kill_asked = True
        child = self._settle()
        if child is not None:
            child.kill()


class Child(Protocol):
    """A converter as its owners see it, however it was started:
    ``ChildProcess`` (here, now), ``StartingChild`` (on a ``Starter``'s
    thread), ``converter_host.RemoteChild`` (by the worker process). Until
    ``started`` it has no ``pid`` and takes no spec; a start that failed
    ends it with ``START_FAILED`` and ``error``. ``hand`` gives a converter
    started ahead its spec, written by whoever started it; one that cannot be
    written ends it, with ``error``."""

    @property
    def pid(self) -> int | None: ...
    @property
    def started(self) -> bool: ...
    @property
    def log_path(self) -> Path: ...
    @property
    def returncode(self) -> int | None: ...
    @property
    def peak_job_memory(self) -> int: ...
    @property
    def error(self) -> ConversionFailed | None: ...
    def hand(self, spec: SpecFile) -> bool: ...
    def poll(self) -> int | None: ...
    def wait(self, timeout_s: float) -> int | None: ...
    def kill(self) -> None: ...
    def when_ended(self, action: Callable[[], None]) -> None: ...


class Launcher(Protocol):
    """Who starts converters so that Blender's main thread never waits for a
    spawn nor writes a spec: a ``Starter`` (a thread, where Python threads
    are safe in Blender), the worker process (``converter_host.RemoteStarter``)."""

    @property
    def ready(self) -> bool:
        """It would start one now (else ``begin`` starts it on the caller's thread)."""
        ...

    def launch(self, command: list[str], env: Mapping[str, str], log_path: Path, *, stdin: int,
               memory_limit: int, spec: SpecFile | None = None) -> Child | None:
        """The converter, started or starting, ``spec`` written first; None if it cannot take it now."""
        ...


def begin(command: list[str], env: Mapping[str, str], log_path: Path, *, stdin: int, memory_limit: int,
          starter: Launcher | None, spec: SpecFile | None = None) -> Child:
    """Start a converter, ``spec`` written first: by ``starter``, the caller
    never waiting for it (a start that fails ends the child with
    ``START_FAILED``); without one, or one that cannot take it now, here and
    now (``OSError`` if it cannot start)."""
    if starter is not None:
        child = starter.launch(command, env, log_path, stdin=stdin, memory_limit=memory_limit, spec=spec)
        if child is not None:
            return child
    if spec is not None:
        spec.write()
    return spawn(command, env, log_path, stdin=stdin, memory_limit=memory_limit)


class Reaper:
    """Converters killed and not yet reaped. The timer polls them: the main
    thread never waits for a killed Blender to end."""

    def __init__(self) -> None:
        self._children: list[Child] = []

    def add(self, child: Child) -> None:
        child.kill()
        if child.poll() is None:
            self._children.append(child)

    def poll(self) -> None:
        self._children = [child for child in self._children if child.poll() is None]

    def wait(self, timeout_s: float) -> None:
        """For quitting: reap them all, waiting at most ``timeout_s`` in all."""
        deadline = time.monotonic() + timeout_s
        for child in self._children:
            child.wait(deadline - time.monotonic())
        self.poll()

    @property
    def pids(self) -> list[int]:
        return [pid for pid in (child.pid for child in self._children) if pid is not None]

    def __len__(self) -> int:
        return len(self._children)


class WarmChild:
    """A converter started before its model is there: Blender starts while the
    download runs, then waits for a spec's path on its stdin. Blender's
    start-up (about a second) then never adds to the time to scene."""

    def __init__(self, command: list[str], env: Mapping[str, str], log_path: Path,
                 limits: Limits | None = None, starter: Launcher | None = None) -> None:
        self.command = command
        self.env = dict(env)
        self.log_path = log_path
        self.limits = limits or Limits()
        self.starter = starter
        self._child: Child | None = None

    @property
    def pid(self) -> int | None:
        return self._child.pid if self._child is not None else None

    def start(self) -> None:
        """Start it (on the starter's thread, if it has one: ``failed`` then
        says later if it could not start); ``ConversionFailed`` if it cannot start now."""
        try:
            self._child = begin(self.command, self.env, self.log_path, stdin=subprocess.PIPE,
                                memory_limit=self.limits.memory_bytes, starter=self.starter)
        except OSError as exc:
            raise _cannot_start(exc) from None

    @property
    def alive(self) -> bool:
        """Starting or started, and not ended."""
        return self._child is not None and self._child.poll() is None

    @property
    def failed(self) -> ConversionFailed | None:
        """Why its start on the starter's thread failed, if it did."""
        child = self._child
        if child is not None and child.poll() is not None:
            return child.error
        return None

    def take(self) -> Child | None:
        """Hand the running child over (once); None (and reaped) if it has died."""
        child, self._child = self._child, None
        if child is None or child.poll() is None:
            return child
        _remove(child.log_path)
        return None

    def abandon(self, reaper: Reaper) -> None:
        """Not needed after all: killed now, reaped by ``reaper``; its output goes too."""
        child, self._child = self._child, None
        if child is not None:
            child.when_ended(lambda: _remove(child.log_path))
            reaper.add(child)

    def stop(self, timeout_s: float = 1.0) -> None:
        """Kill and reap it; its output goes too. Never waits longer than ``timeout_s``."""
        child, self._child = self._child, None
        if child is None:
            return
        child.kill()
        child.wait(timeout_s)
        _remove(child.log_path)


class ConversionProcess:
    """One child converting one GLB. Start it, ``poll`` it from a timer,
    ``cancel``, ``abandon`` or ``stop`` it; it cleans its own files."""

    def __init__(self, spec: ConversionSpec, spec_path: Path, command: list[str], env: Mapping[str, str],
                 limits: Limits, log_path: Path, starter: Launcher | None = None) -> None:
        self.spec = spec
        self.spec_path = spec_path
        self.command = command
        self.env = dict(env)
        self.limits = limits
        self.log_path = log_path
        self._own_log_path = log_path
        self.starter = starter
        self._child: Child | None = None
        self._handing_over = False  # a converter started ahead still starts: its spec's path waits
        self._started = 0.0
        self._ending: Message | None = None  # why we decided to kill it
        self._cancelled = False
        self._outcome: ConversionOutcome | None = None
        self._spec_file: SpecFile | None = None

    @property
    def pid(self) -> int | None:
        return self._child.pid if self._child is not None else None

    @property
    def started(self) -> bool:
        return self._child is not None

    @property
    def waiting(self) -> bool:
        """Not started, nor cancelled or failed to start."""
        return self._child is None and self._outcome is None

    @property
    def running(self) -> bool:
        """Started, and not seen to end yet by ``poll``.
        NOTE: not by its child's exit code, which the worker process's word
        sets when the timer drains it (``converter_host``), before this
        call's ``poll``: the call that appends a model must not also start
        the next converter, as when ``poll`` reaped it here."""
        return self._child is not None and self._outcome is None

    def start(self, warm: WarmChild | None = None, limits: Limits | None = None) -> None:
        """Hand the spec to ``warm`` if that child is still waiting, else start
        a child; ``ConversionFailed`` if it cannot start now (one that cannot
        start, or whose spec cannot be written, on a starter ends with why).
        ``limits``: this converter's, if they changed since it was made."""
        if limits is not None:
            self.limits = limits
        self.spec = dataclasses.replace(self.spec, memory_limit_bytes=self.limits.memory_bytes,
                                        timeout_s=self.limits.timeout_s)
        # Written by whoever starts the converter, or gives one started ahead its path.
        self._spec_file = SpecFile(self.spec_path, self.spec.to_json(), stale=(Path(self.spec.result),))
        if warm is not None and self._adopt(warm):
            self._started = time.monotonic()
            return
        self._begin()

    def _begin(self) -> None:
        """A converter of its own (on the starter's thread, if it has one)."""
        try:
            self._child = begin(self.command, self.env, self.log_path, stdin=subprocess.DEVNULL,
                                memory_limit=self.limits.memory_bytes, starter=self.starter, spec=self._spec_file)
        except OSError as exc:
            self._cleanup(keep_entry=False)
            raise _cannot_start(exc) from None
        self._started = time.monotonic()

    def fail_to_start(self, error: Message) -> None:
        """It could not start: ``poll`` says so."""
        self._outcome = ConversionOutcome(error=error)

    def _adopt(self, warm: WarmChild) -> bool:
        """Send the spec's path to a waiting child (once it has started, if it
        still starts); False if it is gone."""
        child = warm.take()
        if child is None:
            return False
        if not child.started:
            self._child = child
            self.log_path = child.log_path
            self._handing_over = True  # poll sends the path once the spawn has returned
            return True
        return self._send_spec(child)

    def _send_spec(self, child: Child) -> bool:
        """The spec to a child started ahead; False (and that child killed,
        its output gone) if it cannot take it."""
        if self._spec_file is None or not child.hand(self._spec_file):
            child.when_ended(lambda: _remove(child.log_path))
            child.kill()
            child.wait(1.0)
            return False
        self._child = child
        self.log_path = child.log_path
        return True

    def poll(self) -> ConversionOutcome | None:
        """None while the child runs (or waits to start); its outcome once it
        has ended (then the process is reaped and the spec and result files
        are gone). Never waits."""
        if self._outcome is not None:
            return self._outcome
        child = self._child
        if child is None:
            return None
        if self._handing_over and self._hand_over(child):
            return None
        code = child.poll()
        if code is None:
            self._watch(child)
            return None
        self._outcome = self._conclude(code)
        return self._outcome

    def _hand_over(self, child: Child) -> bool:
        """The converter started ahead was still starting when the spec came:
        send it the spec's path once started, or start one of our own if it
        cannot take it. True while that is not settled."""
        if not child.started:
            return True
        self._handing_over = False
        if self._ending is not None or self._cancelled:
            return False  # we stop it: poll concludes
        if child.poll() is None:
            if self._send_spec(child):
                return False
        else:
            _remove(child.log_path)  # it could not start, or died waiting: as if none had been started ahead
        self._child = None
        self.log_path = self._own_log_path
        try:
            self._begin()
        except ConversionFailed as exc:
            self._outcome = ConversionOutcome(error=exc.message)
            return False
        return True

    def _watch(self, child: Child) -> None:
        if self._ending is not None or child.pid is None:
            return
        if time.monotonic() - self._started > self.limits.timeout_s:
            self._kill(timeout_message(self.limits.timeout_s))
            return
        rss = read_rss(child.pid)
        if rss is not None and rss > self.limits.memory_bytes:
            self._kill(out_of_memory_message(self.limits))

    def cancel(self) -> None:
        """Kill the child now; the next ``poll`` reaps it. One that has not
        started yet ends at once."""
        if self._outcome is not None:
            return
        if self._ending is None:
            self._cancelled = True
        if self._child is None:
            self._cleanup(keep_entry=True)  # its private folder goes; an entry it never wrote stays
            self._outcome = ConversionOutcome(cancelled=True)
            return
        self._kill(NONE)

    def abandon(self, reaper: Reaper) -> None:
        """Nobody wants it any more (its task was removed): killed now; reaped
        by ``reaper``, and then its files (its entry too) go."""
        self.cancel()
        child = self._child
        if child is None or self._outcome is not None:
            return
        child.when_ended(self._forget_files)
        reaper.add(child)
        self._outcome = ConversionOutcome(cancelled=True)

    def _forget_files(self) -> None:
        """Nobody wants this conversion: its output goes too."""
        self._cleanup(keep_entry=False)
        _remove(self.log_path)

    def stop(self, timeout_s: float = 1.0) -> None:
        """Kill the child and reap it (quitting, disabling): no process is left."""
        self.cancel()
        child = self._child
        if child is not None and self._outcome is None:
            code = child.wait(timeout_s)
            if code is not None:
                self._outcome = self._conclude(code)

    def _kill(self, message: Message) -> None:
        child = self._child
        if child is None or child.returncode is not None or self._ending is not None:
            return
        self._ending = message
        child.kill()  # poll reaps it

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
            with safe_files.open_read(self.log_path) as file:
                file.seek(max(0, os.fstat(file.fileno()).st_size - 4096))
                text = file.read().decode("utf-8", "replace")
        except OSError:
            return "(no output)"
        # NOTE: cleaned line by line: the importer prints the GLB's own text.
        return clean_lines(text, max_lines=lines) or "(no output)"

    def _judge(self, code: int, seconds: float) -> ConversionOutcome:
        if self._cancelled:
            return ConversionOutcome(cancelled=True, seconds=seconds)
        if self._ending is not None:
            return ConversionOutcome(error=self._ending, seconds=seconds)
        if self._child is not None and self._child.error is not None:  # not started, or no spec
            return ConversionOutcome(error=self._child.error.message, seconds=seconds)
        if code == EXIT_OUT_OF_MEMORY or (code != 0 and self._child is not None
                                          and self._child.peak_job_memory >= self.limits.memory_bytes > 0):
            return ConversionOutcome(error=out_of_memory_message(self.limits), seconds=seconds)
        if code == EXIT_TIMED_OUT or code == -int(getattr(signal, "SIGALRM", 14)):
            # Its own alarm: nobody (this timer) watched it when its time was up.
            return ConversionOutcome(error=timeout_message(self.limits.timeout_s), seconds=seconds)
        result = read_result(Path(self.spec.result))
        if code != 0 or result is None:
            if result is not None and result.get("error") == REFUSED:
                return ConversionOutcome(error=refusal_message(result.get("message")), seconds=seconds)
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
                or not safe_files.is_regular_file(Path(self.spec.entry))):
            return ConversionOutcome(error=NO_RESULT, seconds=seconds)
        import_s = result.get("import_s")
        digest, identity = result.get("digest"), result.get("identity")
        seal = Seal(digest, identity) if isinstance(digest, str) and isinstance(identity, str) else Seal()
        return ConversionOutcome(objects=tuple(objects), seconds=seconds, seal=seal,
                                 import_s=float(import_s) if isinstance(import_s, (int, float)) else 0.0)

    def _cleanup(self, *, keep_entry: bool) -> None:
        for path in (self.spec_path, Path(self.spec.result)):
            _remove(path)
        if self.spec.staging:
            release_temp_folder(Path(self.spec.staging))  # emptied, kept for the next one
        if keep_entry:
            # The output only matters when something went wrong.
            _remove(self.log_path)
        else:
            # A child killed between its rename and its result leaves an entry
            # nobody asked for: the library holds only what was imported.
            _remove(Path(self.spec.entry))


def this_python() -> str:
    return sys.executable
