"""A converter never outlives Blender and never runs past its limits, on each system.

Linux runs here: its tests start real stand-in processes (a "Blender" that
starts a "converter", both plain Python) and kill them the way a crash does.
The converter holds the GIL in C code (a regular expression that backtracks
for hours) while it should end, so nothing that needs its Python to run
can be what ends it.

macOS and Windows cannot run here. Their code paths are tested with stand-ins
for the system calls (a fake ``select`` module with kqueue, a fake kernel32,
a fake libSystem): these show which calls are made with which values, and
that the structures match the systems' layouts; they do not show that macOS
or Windows behave as documented.
"""

from __future__ import annotations

import ctypes
import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from hitem3d_blender.core import process_guard
from hitem3d_blender.core.process_guard import EXIT_ORPHANED

REPO_ROOT = Path(__file__).resolve().parents[2]
linux = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="Linux's own mechanism")

# Holds the GIL in C for far longer than any test: Python's re never releases it.
HOLD_THE_GIL = "import re; re.match(r'(a+)+$', 'a' * 40 + 'b')"

# A converter: arms the guard with the parent ID it is given, says so, then holds the GIL.
CONVERTER = textwrap.dedent("""
    import os, sys, time
    sys.path.insert(0, {root!r})
    from hitem3d_blender.core import process_guard
    parent, delay, marker, timeout = int(sys.argv[1]), float(sys.argv[2]), sys.argv[3], float(sys.argv[4])
    time.sleep(delay)
    process_guard.guard(parent, timeout_s=timeout)
    open(marker, "w").write(str(os.getpid()))
    {hold}
""").format(root=str(REPO_ROOT), hold=HOLD_THE_GIL)

# A Blender: starts the converter, prints its process ID, then waits (or ends at once).
BLENDER = textwrap.dedent("""
    import os, subprocess, sys, time
    converter = subprocess.Popen([sys.executable, "-c", sys.argv[1], str(os.getpid()), sys.argv[2], sys.argv[3],
                                  sys.argv[4]])
    print(converter.pid, flush=True)
    if sys.argv[5] == "exit":
        os._exit(0)
    time.sleep(120)
""")


def dead(pid: int) -> bool:
    """No such process, or a zombie (it runs no more and holds no memory)."""
    try:
        return ") Z " in Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return True


def wait_for(condition: Any, timeout_s: float) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.02)
    return bool(condition())


def start_blender(tmp_path: Path, *, delay_s: float = 0.0, blender_exits: bool = False,
                  timeout_s: float = 0.0) -> tuple[subprocess.Popen[str], int, Path]:
    marker = tmp_path / "armed"
    blender = subprocess.Popen([sys.executable, "-c", BLENDER, CONVERTER, str(delay_s), str(marker), str(timeout_s),
                                "exit" if blender_exits else "wait"], stdout=subprocess.PIPE, text=True)
    assert blender.stdout is not None
    converter = int(blender.stdout.readline())
    return blender, converter, marker


def kill(pid: int) -> None:
    try:
        os.kill(pid, signal.SIGKILL)
    except ProcessLookupError:
        pass


# -- Linux: real processes ---------------------------------------------------------------------


@linux
def test_a_converter_dies_with_blender_even_while_c_code_holds_its_gil(tmp_path: Path) -> None:
    blender, converter, marker = start_blender(tmp_path)
    try:
        assert wait_for(marker.exists, 10.0), "the converter never armed its guard"
        time.sleep(0.2)  # well inside the regular expression now
        assert not dead(converter)

        blender.kill()  # a crash: nothing of Blender's runs any more
        blender.wait()

        assert wait_for(lambda: dead(converter), 1.0), "the converter outlived Blender"
    finally:
        blender.kill()
        kill(converter)


@linux
def test_a_converter_whose_blender_ended_before_it_was_guarded_ends_at_once(tmp_path: Path) -> None:
    # Blender crashed in the second the converter's Blender was starting up.
    blender, converter, marker = start_blender(tmp_path, delay_s=0.5, blender_exits=True)
    blender.wait()
    try:
        assert wait_for(lambda: dead(converter), 5.0), "the orphan ran on"
        assert not marker.exists()  # it ended in the guard, before doing anything
    finally:
        kill(converter)


@linux
def test_the_guard_ends_a_converter_whose_parent_is_gone_with_its_own_code(tmp_path: Path) -> None:
    script = (f"import sys, time; sys.path.insert(0, {str(REPO_ROOT)!r}); "
              "from hitem3d_blender.core import process_guard; time.sleep(0.3); process_guard.guard(1)")
    # Parent ID 1 given, parent is this test: Blender (1) counts as gone only if it is not alive.
    alive_parent = subprocess.run([sys.executable, "-c", script], timeout=10)
    assert alive_parent.returncode == 0
    gone = subprocess.run([sys.executable, "-c", script.replace("guard(1)", "guard(2**22 + 7)")], timeout=10)
    assert gone.returncode == EXIT_ORPHANED


def test_the_time_limit_holds_with_nobody_watching_and_the_gil_held() -> None:
    if not hasattr(signal, "alarm"):
        pytest.skip("POSIX's alarm")
    script = (f"import sys; sys.path.insert(0, {str(REPO_ROOT)!r}); "
              "from hitem3d_blender.core import process_guard; process_guard.guard(0, timeout_s=0.5); "
              + HOLD_THE_GIL)
    started = time.monotonic()
    ended = subprocess.run([sys.executable, "-c", script], timeout=30)
    # The kernel's alarm: 1 s (0.5 rounded up) and the grace the parent's own limit gets first.
    assert ended.returncode == -signal.SIGALRM
    assert time.monotonic() - started < 1 + process_guard.ALARM_GRACE_S + 2


@linux
def test_the_parent_death_signal_is_asked_of_the_kernel() -> None:
    calls: list[tuple[int, ...]] = []

    class Libc:
        def prctl(self, *args: int) -> int:
            calls.append(args)
            return 0

    orphaned: list[bool] = []
    process_guard.watch_parent_linux(os.getppid(), on_orphan=lambda: orphaned.append(True), libc=Libc())
    assert calls == [(process_guard.PR_SET_PDEATHSIG, int(signal.SIGKILL), 0, 0, 0)]
    assert not orphaned


# -- macOS: kqueue, with a stand-in select module ---------------------------------------------------


class FakeKqueue:
    def __init__(self, events_when_waiting: list[Any], refuse: bool) -> None:
        self.registered: list[Any] = []
        self.events = events_when_waiting
        self.refuse = refuse

    def control(self, changes: Any, max_events: int, timeout: Any = None) -> list[Any]:
        if changes:
            if self.refuse:
                raise ProcessLookupError(3, "No such process")
            self.registered.extend(changes)
            return []
        return self.events


class FakeSelect:
    KQ_FILTER_PROC = -5
    KQ_EV_ADD = 0x1
    KQ_EV_ONESHOT = 0x10
    KQ_NOTE_EXIT = 0x80000000

    def __init__(self, refuse: bool = False) -> None:
        self.queue = FakeKqueue([object()], refuse)

    def kqueue(self) -> FakeKqueue:
        return self.queue

    def kevent(self, ident: int, **kwargs: int) -> dict[str, int]:
        return {"ident": ident, **kwargs}


def test_macos_waits_for_the_parents_exit_in_kqueue() -> None:
    fake = FakeSelect()
    orphaned = threading.Event()
    thread = process_guard.watch_parent_darwin(4321, on_orphan=orphaned.set, select_module=fake)
    assert thread is not None
    assert orphaned.wait(1.0)  # the stand-in reports the exit at once
    assert fake.queue.registered == [{"ident": 4321, "filter": FakeSelect.KQ_FILTER_PROC,
                                      "flags": FakeSelect.KQ_EV_ADD | FakeSelect.KQ_EV_ONESHOT,
                                      "fflags": FakeSelect.KQ_NOTE_EXIT}]


def test_macos_ends_at_once_when_the_parent_is_already_gone() -> None:
    orphaned: list[bool] = []
    thread = process_guard.watch_parent_darwin(4321, on_orphan=lambda: orphaned.append(True),
                                               select_module=FakeSelect(refuse=True))
    assert thread is None and orphaned == [True]


class FakeLibSystem:
    def __init__(self, footprint: int, resident: int, result: int = 0) -> None:
        self.values = (footprint, resident)
        self.result = result
        self.calls: list[tuple[int, int]] = []

    def proc_pid_rusage(self, pid: int, flavor: int, buffer: Any) -> int:
        self.calls.append((pid, flavor))
        buffer.contents.ri_phys_footprint, buffer.contents.ri_resident_size = self.values
        return self.result


def test_macos_memory_is_the_physical_footprint_from_libproc(monkeypatch: pytest.MonkeyPatch) -> None:
    # struct rusage_info_v0: a 16-byte UUID and ten 64-bit counters.
    assert ctypes.sizeof(process_guard.RusageInfoV0) == 96
    assert process_guard.RusageInfoV0.ri_phys_footprint.offset == 16 + 7 * 8
    fake = FakeLibSystem(footprint=3 * 1024**3, resident=2 * 1024**3)
    monkeypatch.setattr(process_guard, "_libsystem", fake)
    assert process_guard.resident_bytes(777, platform="darwin") == 3 * 1024**3
    assert fake.calls == [(777, process_guard.RUSAGE_INFO_V0)]
    monkeypatch.setattr(process_guard, "_libsystem", FakeLibSystem(0, 0, result=-1))
    assert process_guard.resident_bytes(777, platform="darwin") is None


# -- Windows: a job object and a wait on the parent, with a stand-in kernel32 ---------------------------


class FakeKernel32:
    """Records calls; the handles are numbers."""

    def __init__(self, *, open_process: int = 99, wait_result: int = 0, assign: int = 1,
                 exit_code: int = process_guard.STILL_ACTIVE, last_error: int = 0) -> None:
        self.calls: list[tuple[Any, ...]] = []
        self.limits: process_guard.JobObjectExtendedLimitInformation | None = None
        self.open_process, self.wait_result, self.assign = open_process, wait_result, assign
        self.exit_code, self.last_error = exit_code, last_error

    def CreateJobObjectW(self, attributes: Any, name: Any) -> int:  # noqa: N802 - Windows' names
        self.calls.append(("CreateJobObjectW",))
        return 1234

    def SetInformationJobObject(self, job: int, kind: int, info: Any, size: int) -> int:  # noqa: N802
        self.calls.append(("SetInformationJobObject", job, kind, size))
        self.limits = info._obj  # ctypes.byref keeps the structure here
        return 1

    def QueryInformationJobObject(self, job: int, kind: int, info: Any, size: int, returned: Any) -> int:  # noqa: N802
        info._obj.PeakProcessMemoryUsed = 5 * 1024**3
        return 1

    def AssignProcessToJobObject(self, job: int, process: int) -> int:  # noqa: N802
        self.calls.append(("AssignProcessToJobObject", job, process))
        return self.assign

    def CloseHandle(self, handle: int) -> int:  # noqa: N802
        self.calls.append(("CloseHandle", handle))
        return 1

    def OpenProcess(self, access: int, inherit: bool, pid: int) -> int:  # noqa: N802
        self.calls.append(("OpenProcess", access, pid))
        return self.open_process

    def WaitForSingleObject(self, handle: int, milliseconds: int) -> int:  # noqa: N802
        self.calls.append(("WaitForSingleObject", handle, milliseconds))
        return self.wait_result

    def GetExitCodeProcess(self, handle: int, code: Any) -> int:  # noqa: N802
        code._obj.value = self.exit_code
        return 1

    def GetLastError(self) -> int:  # noqa: N802
        return self.last_error


@pytest.mark.skipif(ctypes.sizeof(ctypes.c_void_p) != 8, reason="the 64-bit layouts")
def test_the_job_structures_have_windows_layouts() -> None:
    # JOBOBJECT_BASIC_LIMIT_INFORMATION and JOBOBJECT_EXTENDED_LIMIT_INFORMATION on x64.
    assert ctypes.sizeof(process_guard.JobObjectBasicLimitInformation) == 64
    assert ctypes.sizeof(process_guard.JobObjectExtendedLimitInformation) == 144
    assert process_guard.JobObjectExtendedLimitInformation.ProcessMemoryLimit.offset == 112


def test_windows_puts_the_converter_in_a_job_that_dies_with_blender_and_caps_its_memory() -> None:
    kernel32 = FakeKernel32()
    job = process_guard.WindowsJob(3 * 1024**3, kernel32=kernel32)
    job.assign(555)

    assert kernel32.limits is not None
    flags = kernel32.limits.BasicLimitInformation.LimitFlags
    assert flags & process_guard.JOB_OBJECT_LIMIT_KILL_ON_JOB_CLOSE
    assert flags & process_guard.JOB_OBJECT_LIMIT_PROCESS_MEMORY
    assert flags & process_guard.JOB_OBJECT_LIMIT_DIE_ON_UNHANDLED_EXCEPTION
    assert kernel32.limits.ProcessMemoryLimit == 3 * 1024**3
    assert kernel32.calls[1] == ("SetInformationJobObject", 1234, process_guard.JOB_OBJECT_EXTENDED_LIMIT_INFORMATION,
                                 144 if ctypes.sizeof(ctypes.c_void_p) == 8 else kernel32.calls[1][3])
    assert ("AssignProcessToJobObject", 1234, 555) in kernel32.calls
    assert job.peak_process_memory() == 5 * 1024**3
    job.close()
    job.close()
    assert kernel32.calls.count(("CloseHandle", 1234)) == 1


def test_windows_refusing_the_job_is_an_error_the_caller_can_log() -> None:
    with pytest.raises(OSError):
        process_guard.WindowsJob(1024, kernel32=FakeKernel32(assign=0)).assign(555)


def test_windows_waits_on_the_parents_handle() -> None:
    kernel32 = FakeKernel32(open_process=77, wait_result=process_guard.WAIT_OBJECT_0)
    orphaned = threading.Event()
    thread = process_guard.watch_parent_windows(4321, on_orphan=orphaned.set, kernel32=kernel32)
    assert thread is not None and orphaned.wait(1.0)
    assert kernel32.calls[:2] == [("OpenProcess", process_guard.SYNCHRONIZE, 4321),
                                  ("WaitForSingleObject", 77, process_guard.INFINITE)]


def test_windows_ends_at_once_when_the_parent_cannot_be_opened() -> None:
    orphaned: list[bool] = []
    process_guard.watch_parent_windows(4321, on_orphan=lambda: orphaned.append(True),
                                       kernel32=FakeKernel32(open_process=0))
    assert orphaned == [True]


def test_windows_is_never_asked_whether_a_process_lives_with_a_signal(monkeypatch: pytest.MonkeyPatch) -> None:
    # os.kill(pid, 0) terminates the process on Windows.
    monkeypatch.setattr(os, "kill", lambda *args: pytest.fail("os.kill on Windows"))
    assert process_guard.alive(10, platform="win32", kernel32=FakeKernel32())
    assert not process_guard.alive(10, platform="win32", kernel32=FakeKernel32(exit_code=0))
    assert not process_guard.alive(10, platform="win32", kernel32=FakeKernel32(open_process=0))
    assert process_guard.alive(10, platform="win32", kernel32=FakeKernel32(open_process=0, last_error=5))


def test_windows_has_no_alarm() -> None:
    assert process_guard.arm_alarm(10.0, platform="win32") == 0
