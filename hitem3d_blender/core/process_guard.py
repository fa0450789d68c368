"""Keeping a converter process inside its limits on Linux, macOS and Windows.

No ``bpy``. A converter is a second Blender (``core.conversion``); whatever
happens to the artist's Blender, it must not run on without a time limit or
outgrow its memory. Each limit has a holder that does not depend on the
converter's Python getting its GIL (C code, the glTF importer's mesh
building, can hold it for seconds):

============  ================================  ================================  ==========================
limit         Linux                             macOS                             Windows
============  ================================  ================================  ==========================
parent dies   ``PR_SET_PDEATHSIG``: the kernel  a kqueue ``NOTE_EXIT`` wait on    a job object that kills
              kills the child                   the parent (a thread)             its processes when
                                                                                  Blender's handle closes
time          ``alarm()``: the kernel ends it   ``alarm()``                       the parent; no orphan
                                                                                  can outlive it (the job)
memory        the parent's check every tick     the parent's check (libproc)      the job's memory limit
              (``resident_bytes``)                                                and the parent's check
============  ================================  ================================  ==========================

Besides those, the child watches itself in a thread (its memory and its
parent ID): the second line for when Blender's timer does not run (a long
operator in the artist's Blender), as good as its GIL lets it be.

The parent's side: ``resident_bytes`` and ``WindowsJob``. The child's side:
``guard``. Code for a system this test machine is not is tested with fakes of
the system calls (``tests/core/test_process_guard.py`` says which).
"""

from __future__ import annotations

import ctypes
import logging
import math
import os
import signal
import sys
import threading
import time
from typing import Any, Callable

log = logging.getLogger(__package__)

# The child exits with this code when its own watchdog sees it over the memory cap ...
EXIT_OUT_OF_MEMORY = 86
# ... with this one when Blender, its parent, is gone ...
EXIT_ORPHANED = 87
# ... and with this one when its time is up and nobody ended it.
EXIT_TIMED_OUT = 88
# The kernel's alarm comes this long after the parent's own time limit: with
# Blender alive, the parent ends the converter first and says so.
ALARM_GRACE_S = 2
WATCH_INTERVAL_S = 0.05


# -- the parent's side: how much memory a converter holds ------------------------------------------


def resident_bytes(pid: int, platform: str = sys.platform) -> int | None:
    """The memory ``pid`` holds, in bytes, or None when the system does not
    say: resident memory on Linux, the physical footprint (what Activity
    Monitor shows, compressed memory included) on macOS, the working set on
    Windows."""
    if platform == "win32":
        return _windows_working_set(pid)
    if platform == "darwin":
        return darwin_footprint(pid)
    try:
        with open(f"/proc/{pid}/status", "rb") as file:
            for line in file:
                if line.startswith(b"VmRSS:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        return None
    return None


class RusageInfoV0(ctypes.Structure):
    """``struct rusage_info_v0`` of macOS's ``<sys/resource.h>``."""

    _fields_ = [("ri_uuid", ctypes.c_uint8 * 16), ("ri_user_time", ctypes.c_uint64),
                ("ri_system_time", ctypes.c_uint64), ("ri_pkg_idle_wkups", ctypes.c_uint64),
                ("ri_interrupt_wkups", ctypes.c_uint64), ("ri_pageins", ctypes.c_uint64),
                ("ri_wired_size", ctypes.c_uint64), ("ri_resident_size", ctypes.c_uint64),
                ("ri_phys_footprint", ctypes.c_uint64), ("ri_proc_start_abstime", ctypes.c_uint64),
                ("ri_proc_exit_abstime", ctypes.c_uint64)]


RUSAGE_INFO_V0 = 0
_libsystem: Any = None


def darwin_footprint(pid: int, libsystem: Any = None) -> int | None:
    """macOS: ``proc_pid_rusage`` (libproc, in libSystem) for a process of the
    same user; None if it cannot be asked."""
    global _libsystem
    try:
        if libsystem is None:
            if _libsystem is None:
                _libsystem = ctypes.CDLL("/usr/lib/libSystem.B.dylib")
            libsystem = _libsystem
        info = RusageInfoV0()
        if libsystem.proc_pid_rusage(int(pid), RUSAGE_INFO_V0, ctypes.pointer(info)) != 0:
            return None
        return int(info.ri_phys_footprint or info.ri_resident_size)
    except (OSError, AttributeError, TypeError, ValueError):
        return None


class _MemoryCounters(ctypes.Structure):
    _fields_ = [("cb", ctypes.c_uint32), ("PageFaultCount", ctypes.c_uint32),
                ("PeakWorkingSetSize", ctypes.c_size_t), ("WorkingSetSize", ctypes.c_size_t),
                ("QuotaPeakPagedPoolUsage", ctypes.c_size_t), ("QuotaPagedPoolUsage", ctypes.c_size_t),
                ("QuotaPeakNonPagedPoolUsage", ctypes.c_size_t), ("QuotaNonPagedPoolUsage", ctypes.c_size_t),
                ("PagefileUsage", ctypes.c_size_t), ("PeakPagefileUsage", ctypes.c_size_t)]


def _windows_working_set(pid: int) -> int | None:
    """The working set of ``pid`` (Windows' resident memory); None if it cannot be read."""
    try:
        windll: Any = getattr(ctypes, "windll")
        handle = windll.kernel32.OpenProcess(0x1000, False, pid)  # PROCESS_QUERY_LIMITED_INFORMATION
        if not handle:
            return None
        try:
            counters = _MemoryCounters()
            counters.cb = ctypes.sizeof(_MemoryCounters)
            if not windll.psapi.GetProcessMemoryInfo(handle, ctypes.byref(counters), counters.cb):
                return None
            return int(counters.WorkingSetSize)
        finally:
            windll.kernel32.CloseHandle(handle)
    except Exception:  # noqa: BLE001 - a missing API costs the check, never the import
        return None


# -- the parent's side on Windows: a job object ---------------------------------------------------


class JobObjectBasicLimitInformation(ctypes.Structure):
    _fields_ = [("PerProcessUserTimeLimit", ctypes.c_int64), ("PerJobUserTimeLimit", ctypes.c_int64),
                ("LimitFlags", ctypes.c_uint32), ("MinimumWorkingSetSize", ctypes.c_size_t),
                ("MaximumWorkingSetSize", ctypes.c_size_t), ("ActiveProcessLimit", ctypes.c_uint32),
                ("Affinity", ctypes.c_size_t), ("PriorityClass", ctypes.c_uint32),
                ("SchedulingClass", ctypes.c_uint32)]


class IoCounters(ctypes.Structure):
    _fields_ = [(name, ctypes.c_uint64) for name in ("ReadOperationCount", "WriteOperationCount",
                                                     "OtherOperationCount", "ReadTransferCount",
                                                     "WriteTransferCount", "OtherTransferCount")]


class JobObjectExtendedLimitInformation(ctypes.Structure):
    _fields_ = [("BasicLimitInformation", JobObjectBasicLimitInformation), ("IoInfo", IoCounters),
                ("ProcessMemoryLimit", ctypes.c_size_t), ("JobMemoryLimit", ctypes.c_size_t),
                ("PeakProcessMemoryUsed", ctypes.c_size_t), ("PeakJobMemoryUsed", ctypes.c_size_t)]


JOB_OBJECT_EXTENDED_LIMIT_INFORMATION = 9  # JOBOBJECTINFOCLASS
JOB_OBJECT_LIMIT_PROCESS_MEMORY = 0x100
JOB_OBJECT_LIMIT_DIE_ON_UNHANDLED_EXCEPTION = 0x400  # a crash ends it at once, no error dialog
JOB_OBJECT_LIMIT_KILL_ON_JOB_CLOSE = 0x2000


def _kernel32() -> Any:
    """Windows' kernel32 with the types our calls need (a private instance:
    setting types on ``ctypes.windll``'s would change them for everyone)."""
    from ctypes import wintypes  # noqa: PLC0415 - Windows only

    dll: Any = getattr(ctypes, "WinDLL")("kernel32", use_last_error=True)
    dll.CreateJobObjectW.restype = wintypes.HANDLE
    dll.CreateJobObjectW.argtypes = [ctypes.c_void_p, ctypes.c_wchar_p]
    dll.SetInformationJobObject.argtypes = [wintypes.HANDLE, ctypes.c_int, ctypes.c_void_p, wintypes.DWORD]
    dll.QueryInformationJobObject.argtypes = [wintypes.HANDLE, ctypes.c_int, ctypes.c_void_p, wintypes.DWORD,
                                              ctypes.c_void_p]
    dll.AssignProcessToJobObject.argtypes = [wintypes.HANDLE, wintypes.HANDLE]
    dll.OpenProcess.restype = wintypes.HANDLE
    dll.OpenProcess.argtypes = [wintypes.DWORD, wintypes.BOOL, wintypes.DWORD]
    dll.WaitForSingleObject.argtypes = [wintypes.HANDLE, wintypes.DWORD]
    dll.CloseHandle.argtypes = [wintypes.HANDLE]
    dll.GetExitCodeProcess.argtypes = [wintypes.HANDLE, ctypes.c_void_p]
    return dll


class WindowsJob:
    """A job object holding one converter (and whatever it starts): the
    system kills them all when the job's last handle closes, that is when
    Blender ends however it ends, and refuses each of them memory past
    ``memory_limit`` (committed memory, which is never trimmed away).

    ``kernel32`` is Windows' (by default) or a stand-in with the same calls."""

    def __init__(self, memory_limit: int, kernel32: Any = None) -> None:
        self._kernel32 = kernel32 if kernel32 is not None else _kernel32()
        self.memory_limit = memory_limit
        self.handle = self._kernel32.CreateJobObjectW(None, None)
        if not self.handle:
            raise OSError("CreateJobObjectW failed")
        info = JobObjectExtendedLimitInformation()
        info.BasicLimitInformation.LimitFlags = (JOB_OBJECT_LIMIT_KILL_ON_JOB_CLOSE
                                                 | JOB_OBJECT_LIMIT_DIE_ON_UNHANDLED_EXCEPTION
                                                 | (JOB_OBJECT_LIMIT_PROCESS_MEMORY if memory_limit else 0))
        info.ProcessMemoryLimit = memory_limit
        if not self._kernel32.SetInformationJobObject(self.handle, JOB_OBJECT_EXTENDED_LIMIT_INFORMATION,
                                                      ctypes.byref(info), ctypes.sizeof(info)):
            self.close()
            raise OSError("SetInformationJobObject failed")

    def assign(self, process_handle: int) -> None:
        """Put the process in the job; ``OSError`` if the system refuses."""
        if not self._kernel32.AssignProcessToJobObject(self.handle, process_handle):
            raise OSError("AssignProcessToJobObject failed")

    def peak_process_memory(self) -> int:
        """The most memory one process of the job has committed; 0 if unknown."""
        info = JobObjectExtendedLimitInformation()
        if not self.handle or not self._kernel32.QueryInformationJobObject(
                self.handle, JOB_OBJECT_EXTENDED_LIMIT_INFORMATION, ctypes.byref(info), ctypes.sizeof(info), None):
            return 0
        return int(info.PeakProcessMemoryUsed)

    def close(self) -> None:
        """Close the job: whatever is still in it is killed."""
        handle, self.handle = self.handle, None
        if handle:
            self._kernel32.CloseHandle(handle)


def windows_job(memory_limit: int, process_handle: int) -> WindowsJob | None:
    """A job for a converter just started on Windows; None (logged) when the
    system refuses one: the parent's check and the child's guard still hold."""
    try:
        job = WindowsJob(memory_limit)
    except Exception as exc:  # noqa: BLE001 - any failure costs this layer, never the import
        log.warning("No job object for the converter: %s", exc)
        return None
    try:
        job.assign(process_handle)
    except OSError as exc:
        log.warning("Converter not in its job object: %s", exc)
        job.close()
        return None
    return job


# -- the child's side ----------------------------------------------------------------------------


def _exit_orphaned() -> None:
    os._exit(EXIT_ORPHANED)


def alive(pid: int, platform: str = sys.platform, kernel32: Any = None) -> bool:
    """Whether a process with this ID exists (a guess of yes when the system will not say).

    NOTE: never ``os.kill(pid, 0)`` on Windows: there it terminates the process."""
    if platform == "win32":
        return _windows_alive(pid, kernel32)
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:
        return True  # it exists (or cannot be told): never act on a guess
    return True


PROCESS_QUERY_LIMITED_INFORMATION = 0x1000
STILL_ACTIVE = 259
ERROR_ACCESS_DENIED = 5


def _windows_alive(pid: int, kernel32: Any = None) -> bool:
    try:
        dll = kernel32 if kernel32 is not None else _kernel32()
        handle = dll.OpenProcess(PROCESS_QUERY_LIMITED_INFORMATION, False, pid)
        if not handle:
            return bool(dll.GetLastError() == ERROR_ACCESS_DENIED)  # there, but not ours
        try:
            code = ctypes.c_uint32()
            if not dll.GetExitCodeProcess(handle, ctypes.byref(code)):
                return True
            return code.value == STILL_ACTIVE
        finally:
            dll.CloseHandle(handle)
    except Exception:  # noqa: BLE001 - cannot tell: alive
        return True


PR_SET_PDEATHSIG = 1


def watch_parent_linux(parent_pid: int, on_orphan: Callable[[], None] = _exit_orphaned, libc: Any = None) -> int:
    """Linux: the kernel sends SIGKILL when our parent ends (``prctl``), then
    we look whether it had ended before we asked. Returns the parent's ID the
    rest of the guard watches.

    NOTE: "parent" is the thread that started us: Blender's ``Starter``
    thread (``core.conversion``), which ends only after it has stopped every
    converter, or the main thread."""
    expected = os.getppid()
    try:
        library = libc if libc is not None else ctypes.CDLL(None, use_errno=True)
        if library.prctl(PR_SET_PDEATHSIG, int(signal.SIGKILL), 0, 0, 0) != 0:
            log.warning("prctl(PR_SET_PDEATHSIG) failed (errno %s)", ctypes.get_errno())
    except (OSError, AttributeError) as exc:
        log.warning("No parent-death signal: %s", exc)
    # Ended before the prctl: we have been handed to another process already.
    if os.getppid() != expected or (parent_pid and expected != parent_pid and not alive(parent_pid)):
        on_orphan()
    return expected


def watch_parent_darwin(parent_pid: int, on_orphan: Callable[[], None] = _exit_orphaned,
                        select_module: Any = None) -> threading.Thread | None:
    """macOS: a thread waits in kqueue for the parent's ``NOTE_EXIT``; a parent
    already gone (ESRCH when the wait is registered) ends us at once."""
    if select_module is None:
        import select as select_module  # noqa: PLC0415
    pid = parent_pid or os.getppid()
    queue = select_module.kqueue()
    event = select_module.kevent(pid, filter=select_module.KQ_FILTER_PROC,
                                 flags=select_module.KQ_EV_ADD | select_module.KQ_EV_ONESHOT,
                                 fflags=select_module.KQ_NOTE_EXIT)
    try:
        queue.control([event], 0, 0)
    except OSError:  # ProcessLookupError: no such process any more
        on_orphan()
        return None

    def wait() -> None:
        while True:
            try:
                if queue.control(None, 1, None):
                    on_orphan()
                    return
            except InterruptedError:
                continue

    thread = threading.Thread(target=wait, name="hitem3d-converter-parent", daemon=True)
    thread.start()
    return thread


SYNCHRONIZE = 0x00100000
INFINITE = 0xFFFFFFFF
WAIT_OBJECT_0 = 0


def watch_parent_windows(parent_pid: int, on_orphan: Callable[[], None] = _exit_orphaned,
                         kernel32: Any = None) -> threading.Thread | None:
    """Windows: a thread waits on the parent's process handle. The job object
    (``WindowsJob``) kills us with Blender anyway; this covers the moment
    between our start and Blender putting us in the job, and a launcher in
    between (a virtual environment's python.exe starts the real one).

    NOTE: ``os.getppid`` never changes on Windows: a child keeps the ID of a
    parent that is long gone, so no check can be built on it."""
    if not parent_pid:
        return None
    dll = kernel32 if kernel32 is not None else _kernel32()
    handle = dll.OpenProcess(SYNCHRONIZE, False, parent_pid)
    if not handle:
        on_orphan()
        return None

    def wait() -> None:
        if dll.WaitForSingleObject(handle, INFINITE) == WAIT_OBJECT_0:
            on_orphan()

    thread = threading.Thread(target=wait, name="hitem3d-converter-parent", daemon=True)
    thread.start()
    return thread


def arm_alarm(timeout_s: float, platform: str = sys.platform) -> int:
    """POSIX: the kernel ends this process ``ALARM_GRACE_S`` after ``timeout_s``
    (SIGALRM's default action), whoever holds the GIL and whether or not
    anyone watches; 0 disarms. Returns the seconds armed (0: none, Windows)."""
    if platform == "win32" or not hasattr(signal, "alarm"):
        return 0
    seconds = int(math.ceil(timeout_s)) + ALARM_GRACE_S if timeout_s > 0 else 0
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGALRM, signal.SIG_DFL)  # ours: nobody may catch it
    signal.alarm(seconds)
    return seconds


def own_memory() -> int:
    """This process's memory as ``resident_bytes`` reads it, else its peak."""
    current = resident_bytes(os.getpid())
    if current is not None:
        return current
    try:
        import resource  # noqa: PLC0415 - not on Windows
    except ImportError:
        return 0
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    # Kilobytes on Linux, bytes on macOS.
    return int(peak if sys.platform == "darwin" else peak * 1024)


class Guard:
    """What the child arms first thing: see the module's table. ``limit``
    sets the memory cap and the time limit once they are known (a converter
    started ahead learns them with its spec)."""

    def __init__(self, parent_pid: int, platform: str = sys.platform) -> None:
        self.platform = platform
        self.memory_limit = 0
        self.deadline = 0.0
        self.parent = os.getppid()
        if platform.startswith("linux"):
            self.parent = watch_parent_linux(parent_pid)
        elif platform == "darwin":
            watch_parent_darwin(parent_pid)
        elif platform == "win32":
            watch_parent_windows(parent_pid)
        if parent_pid and self.parent != parent_pid:
            log.info("Converter started by process %s (the worker process, or a launcher), not Blender (%s)",
                 self.parent, parent_pid)
        threading.Thread(target=self._watch, name="hitem3d-converter-watchdog", daemon=True).start()

    def limit(self, memory_bytes: int, timeout_s: float) -> None:
        self.memory_limit = memory_bytes
        self.deadline = time.monotonic() + timeout_s if timeout_s > 0 else 0.0
        arm_alarm(timeout_s, self.platform)

    def _watch(self) -> None:
        posix = self.platform != "win32"
        while True:
            if posix and os.getppid() != self.parent:
                os._exit(EXIT_ORPHANED)
            if self.memory_limit and own_memory() > self.memory_limit:
                os._exit(EXIT_OUT_OF_MEMORY)
            if self.deadline and time.monotonic() > self.deadline + ALARM_GRACE_S:
                os._exit(EXIT_TIMED_OUT)  # nobody ended us in time: nobody is watching
            time.sleep(WATCH_INTERVAL_S)


def guard(parent_pid: int, memory_bytes: int = 0, timeout_s: float = 0.0) -> Guard:
    """Arm every limit of this converter (see the module's table)."""
    armed = Guard(parent_pid)
    if memory_bytes or timeout_s:
        armed.limit(memory_bytes, timeout_s)
    return armed
