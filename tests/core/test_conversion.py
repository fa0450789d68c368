"""The converter process, without Blender: stand-in children written in Python
play each ending (success, crash, time-out, memory, cancel, no start)."""

from __future__ import annotations

import json
import os
import signal
import sys
import threading
import time
from pathlib import Path
from typing import Any, Callable

import pytest

from hitem3d_blender.core import conversion, converter_host, process_guard, safe_files
from hitem3d_blender.core.conversion import ConversionProcess, ConversionSpec, Limits
from hitem3d_blender.core.worker_process import WorkerProcess
from hitem3d_blender.core.import_options import ImportOptions

TASK_ID = "2c2ad20cb3204697ba7f80351c3e8606.jjewelry-aigc-api.1NraEb5ohU"
REPO_ROOT = Path(__file__).resolve().parents[2]

# A stand-in child: reads the spec like the real one, then does what $MODE says.
CHILD = r"""
import json, os, signal, sys, time
sys.path.insert(0, os.environ["REPO_ROOT"])
from hitem3d_blender.core import conversion, process_guard
path = sys.argv[1]
mode = os.environ["MODE"]
if path == "--wait":  # started ahead, as WarmChild does
    if mode == "die_waiting":
        sys.exit(5)
    path = sys.stdin.readline().strip()
    if not path:
        sys.exit(0)
spec = conversion.ConversionSpec.from_json(open(path).read())
if mode == "ok":
    open(spec.entry, "wb").write(b"BLENDER")
    conversion.write_result(__import__("pathlib").Path(spec.result), {"objects": ["Hitem3D_Sample"], "import_s": 0.5})
elif mode == "renamed_then_killed":
    open(spec.entry, "wb").write(b"BLENDER")
    os.kill(os.getpid(), signal.SIGKILL)
elif mode == "crash":
    os.kill(os.getpid(), signal.SIGSEGV)
elif mode == "sleep":
    time.sleep(60)
elif mode == "blender_temp":
    # What Blender does at start: a session folder in the temporary folder, removed only at a clean exit.
    import tempfile
    os.mkdir(os.path.join(tempfile.gettempdir(), "blender_stand_in"))
    open(spec.result + ".temp", "w").write(tempfile.gettempdir())
    time.sleep(60)
elif mode == "grow_holding_the_gil":
    # As if its own watchdog could not run: one allocation, then C code that keeps the GIL.
    import re
    pattern = re.compile(r"(a+)+$")
    block = bytearray(400 * 1024 * 1024)
    pattern.match("a" * 40 + "b")
elif mode == "alarm_with_the_gil_held":
    from hitem3d_blender.core import process_guard
    process_guard.guard(os.getppid(), timeout_s=spec.timeout_s)
    import re
    re.match(r"(a+)+$", "a" * 40 + "b")
elif mode == "grow":
    blocks = []
    for _ in range(200):
        blocks.append(bytearray(16 * 1024 * 1024))
        time.sleep(0.01)
    time.sleep(60)
elif mode == "grow_watched":
    from hitem3d_blender.core import process_guard
    process_guard.guard(os.getppid(), memory_bytes=int(os.environ["WATCH_LIMIT"]))
    blocks = []
    for _ in range(200):
        blocks.append(bytearray(16 * 1024 * 1024))
        time.sleep(0.02)
    time.sleep(60)
elif mode == "orphan":
    # A grandchild that outlives this process: it must notice and end itself.
    import subprocess
    grandchild = subprocess.Popen([sys.executable, "-c",
        "import os, sys, time; sys.path.insert(0, os.environ['REPO_ROOT']); "
        "from hitem3d_blender.core import process_guard; process_guard.guard(0); time.sleep(60)"])
    open(spec.result + ".pid", "w").write(str(grandchild.pid))
    time.sleep(0.5)
    os._exit(0)
elif mode == "error":
    conversion.write_result(__import__("pathlib").Path(spec.result), {"error": "import_failed", "text": "rm -rf /"})
    sys.exit(1)
elif mode == "unknown_error":
    conversion.write_result(__import__("pathlib").Path(spec.result), {"error": "<b>anything</b>"})
    sys.exit(1)
elif mode == "garbage":
    open(spec.result, "w").write("[not, json")
"""


def spec_in(folder: Path, **changes: object) -> ConversionSpec:
    values: dict[str, object] = dict(
        task_id=TASK_ID, glb=str(folder / "model.glb"), entry=str(folder / "library" / "task-1.blend"),
        result=str(folder / "work" / "task-1.result.json"), collection_name="Hitem3D 2c2ad20c",
        options=ImportOptions(), provenance={"hitem3d_task_id": TASK_ID}, memory_limit_bytes=64 * 1024**2)
    values.update(changes)
    return ConversionSpec(**values)  # type: ignore[arg-type]


def start_child(tmp_path: Path, mode: str, limits: Limits = Limits(timeout_s=30.0),
                env: dict[str, str] | None = None, **changes: object) -> ConversionProcess:
    (tmp_path / "library").mkdir(exist_ok=True)
    spec = spec_in(tmp_path, **changes)
    spec_path = tmp_path / "work" / "task-1.spec.json"
    env = {**os.environ, "MODE": mode, "REPO_ROOT": str(REPO_ROOT), **(env or {})}
    process = ConversionProcess(spec, spec_path, [sys.executable, "-c", CHILD, str(spec_path)], env, limits,
                                tmp_path / "work" / "task-1.log")
    process.start()
    return process


# What the timer's call does besides polling (the worker process's events are
# read when it drains the workers): set by the ``slow_starter`` fixture.
PUMPS: list[Callable[[], None]] = []


def pump() -> None:
    for each in PUMPS:
        each()


def outcome_of(process: ConversionProcess, timeout_s: float = 20.0) -> conversion.ConversionOutcome:
    """Poll the way the timer does until the child has ended."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        pump()
        outcome = process.poll()
        if outcome is not None:
            return outcome
        time.sleep(0.02)
    process.stop()
    raise AssertionError("the child did not end")


@pytest.fixture(autouse=True)
def no_spare_folders() -> Any:
    yield
    conversion.remove_spare_temp_folders()


def left_in(folder: Path) -> list[str]:
    """What conversions left in ``folder``. An empty temporary folder of ours
    is kept for the next converter (its start then makes none): not a leftover."""
    return sorted(p.name for p in folder.iterdir()
                  if not (p.name.startswith(conversion.TEMP_PREFIX) and p.is_dir() and not any(p.iterdir())))


def wait_until(condition: Any, timeout_s: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        pump()
        if condition():
            return True
        time.sleep(0.02)
    return bool(condition())


def gone(pid: int) -> bool:
    """No process (not even a zombie) with this ID, and none left in its group."""
    if Path(f"/proc/{pid}").exists():
        return False
    try:
        os.killpg(pid, 0)
    except ProcessLookupError:
        return True
    return False


# -- the command line and the environment ------------------------------------------------


def test_real_blender_runs_headless_with_factory_settings(tmp_path: Path) -> None:
    command = conversion.child_command(script=tmp_path / "convert_child.py",
                                       args=conversion.spec_args(tmp_path / "s.json"),
                                       blender_binary="/opt/blender/blender", python="/usr/bin/python3")
    assert command[:3] == ["/opt/blender/blender", "-b", "--factory-startup"]
    assert command[-2:] == ["--", str(tmp_path / "s.json")]


def test_the_bpy_module_child_is_this_python_importing_bpy(tmp_path: Path) -> None:
    command = conversion.child_command(script=tmp_path / "convert_child.py",
                                       args=conversion.spec_args(tmp_path / "s.json"),
                                       blender_binary="", python="/venv/bin/python")
    assert command == ["/venv/bin/python", "-E", str(tmp_path / "convert_child.py"), str(tmp_path / "s.json")]


def test_child_environment_has_no_secrets_or_startup_hooks() -> None:
    base = {"PATH": "/bin", "HITEM3D_CLIENT_SECRET": "s3cret", "HITEM3D_CLIENT_ID": "id",
            "PYTHONSTARTUP": "/tmp/evil.py", "PYTHONPATH": "/site", "HOME": "/home/a"}
    assert conversion.child_environment(base, real_blender=False) == {"PATH": "/bin", "PYTHONPATH": "/site",
                                                                       "HOME": "/home/a"}
    # Blender's bundled Python must not pick up another Python's modules.
    assert conversion.child_environment(base, real_blender=True) == {"PATH": "/bin", "HOME": "/home/a"}


def test_spec_survives_its_json_form(tmp_path: Path) -> None:
    spec = spec_in(tmp_path, options=ImportOptions(scale_to_size=True, target_size=2.0),
                   asset=conversion.AssetInfo(description="d", tags=("a", "b"), properties={"k": "v"},
                                              catalog_id="c", catalog_name="n"))
    assert ConversionSpec.from_json(spec.to_json()) == spec


# -- endings --------------------------------------------------------------------------


def test_success_keeps_the_entry_and_cleans_the_work_files(tmp_path: Path) -> None:
    process = start_child(tmp_path, "ok")
    outcome = outcome_of(process)
    assert outcome.ok and outcome.objects == ("Hitem3D_Sample",) and outcome.import_s == 0.5
    assert Path(process.spec.entry).read_bytes() == b"BLENDER"
    assert not left_in(tmp_path / "work")
    assert process.pid is not None and gone(process.pid)


def test_poll_never_waits_for_the_child(tmp_path: Path) -> None:
    process = start_child(tmp_path, "sleep")
    try:
        started = time.perf_counter()
        for _ in range(20):
            assert process.poll() is None
        assert (time.perf_counter() - started) / 20 < 0.005
    finally:
        process.stop()


def test_a_crash_says_so_and_leaves_no_entry(tmp_path: Path) -> None:
    outcome = outcome_of(start_child(tmp_path, "crash"))
    assert outcome.error == conversion.CRASHED
    assert not list((tmp_path / "library").iterdir())
    # Its output stays for support; the spec and any result are gone.
    assert left_in(tmp_path / "work") == ["task-1.log"]


def test_a_child_killed_after_writing_its_entry_leaves_no_entry(tmp_path: Path) -> None:
    outcome = outcome_of(start_child(tmp_path, "renamed_then_killed"))
    assert outcome.error == conversion.CRASHED
    assert not list((tmp_path / "library").iterdir())


def test_the_time_limit_ends_the_child(tmp_path: Path) -> None:
    process = start_child(tmp_path, "sleep", Limits(timeout_s=0.5))
    outcome = outcome_of(process)
    assert str(outcome.error) == "Converting the model took longer than 0.5s: not imported; retry"
    assert process.pid is not None and gone(process.pid)


def test_timeout_message_names_minutes() -> None:
    assert str(conversion.timeout_message(600)) == "Converting the model took longer than 10m: not imported; retry"


@pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="reads /proc")
def test_a_child_over_the_memory_cap_is_stopped_by_blender(tmp_path: Path) -> None:
    limit = 200 * 1024**2
    process = start_child(tmp_path, "grow", Limits(timeout_s=30.0, memory_bytes=limit))
    outcome = outcome_of(process)
    assert outcome.error == conversion.out_of_memory_message(Limits(memory_bytes=limit))
    assert str(outcome.error).startswith("Converting the model needed more than 200 MB of memory, the converter's")
    assert process.pid is not None and gone(process.pid)


@pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="reads /proc")
def test_blender_stops_a_child_over_its_cap_whose_gil_is_held(tmp_path: Path) -> None:
    limit = 200 * 1024**2
    process = start_child(tmp_path, "grow_holding_the_gil", Limits(timeout_s=30.0, memory_bytes=limit))
    outcome = outcome_of(process)
    assert outcome.error == conversion.out_of_memory_message(Limits(memory_bytes=limit))


def test_a_child_the_windows_job_refused_memory_is_out_of_memory(tmp_path: Path) -> None:
    # Windows cannot run here: a stand-in for the reaped child, as the job object reports its peak.
    limits = Limits(memory_bytes=3 * 1024**3)
    process = ConversionProcess(spec_in(tmp_path), tmp_path / "s.json", ["blender"], {}, limits, tmp_path / "l")
    process._child = type("Reaped", (), {"peak_job_memory": 3 * 1024**3, "returncode": 3, "error": None})()  # type: ignore
    assert process._judge(3, 1.0).error == conversion.out_of_memory_message(limits)
    process._child.peak_job_memory = 1024**3
    assert process._judge(3, 1.0).error == conversion.CRASHED


def test_a_child_over_the_memory_cap_stops_itself(tmp_path: Path) -> None:
    # The child's own watchdog, for when Blender's timer is not running.
    limit = 150 * 1024**2
    process = start_child(tmp_path, "grow_watched", Limits(timeout_s=30.0, memory_bytes=10 * 1024**3),
                          env={"WATCH_LIMIT": str(limit)})
    outcome = outcome_of(process)
    assert outcome.error == conversion.out_of_memory_message(Limits(memory_bytes=10 * 1024**3))


def test_a_converter_whose_parent_is_gone_ends_itself(tmp_path: Path) -> None:
    process = start_child(tmp_path, "orphan")
    outcome_of(process, timeout_s=5.0)
    pid_file = Path(process.spec.result + ".pid")
    orphan = int(pid_file.read_text())
    deadline = time.monotonic() + 2.0
    while Path(f"/proc/{orphan}").exists() and time.monotonic() < deadline:
        # Reparented to init (or a subreaper), which reaps it once it has ended.
        status = Path(f"/proc/{orphan}/stat").read_text() if Path(f"/proc/{orphan}/stat").exists() else ""
        if ") Z " in status:
            break
        time.sleep(0.05)
    status = Path(f"/proc/{orphan}/stat").read_text() if Path(f"/proc/{orphan}/stat").exists() else ""
    assert not status or ") Z " in status, status


def test_cancel_kills_the_child_within_a_second(tmp_path: Path) -> None:
    process = start_child(tmp_path, "sleep")
    time.sleep(0.2)
    started = time.monotonic()
    process.cancel()
    outcome = outcome_of(process, timeout_s=1.0)
    assert time.monotonic() - started < 1.0
    assert outcome.cancelled and not outcome.ok
    assert process.pid is not None and gone(process.pid)
    assert not list((tmp_path / "library").iterdir())


def test_stop_reaps_the_child_so_no_process_is_left(tmp_path: Path) -> None:
    process = start_child(tmp_path, "sleep")
    process.stop(timeout_s=1.0)
    assert process.pid is not None and gone(process.pid)


def test_a_child_that_cannot_start_says_so(tmp_path: Path) -> None:
    spec = spec_in(tmp_path)
    spec_path = tmp_path / "work" / "task-1.spec.json"
    process = ConversionProcess(spec, spec_path, [str(tmp_path / "no-blender")], {}, Limits(),
                                tmp_path / "task-1.log")
    with pytest.raises(conversion.ConversionFailed) as info:
        process.start()
    assert str(info.value).startswith("Could not start Blender to convert the model (No such file or directory)")
    assert not spec_path.exists()


def test_child_errors_are_known_kinds_never_its_text(tmp_path: Path) -> None:
    assert str(outcome_of(start_child(tmp_path, "error")).error) == conversion.CHILD_ERRORS["import_failed"]
    assert outcome_of(start_child(tmp_path, "unknown_error")).error == conversion.CRASHED


def test_a_garbled_result_is_no_result(tmp_path: Path) -> None:
    assert outcome_of(start_child(tmp_path, "garbage")).error == conversion.NO_RESULT


def test_an_oversized_result_is_not_read(tmp_path: Path) -> None:
    path = tmp_path / "r.json"
    path.write_text(json.dumps({"objects": ["x" * conversion.MAX_RESULT_BYTES]}))
    assert conversion.read_result(path) is None


def test_the_memory_budget_is_half_the_computer_within_bounds() -> None:
    assert conversion.memory_budget(24 * 1024**3) == 12 * 1024**3
    assert conversion.memory_budget(2 * 1024**3) == 2 * 1024**3
    assert conversion.memory_budget(256 * 1024**3) == 16 * 1024**3
    assert 2 * 1024**3 <= conversion.memory_budget() <= 16 * 1024**3


@pytest.mark.skipif(os.name == "nt", reason="the fallback for systems without the Windows API")
def test_a_missing_memory_api_costs_the_check_never_the_import() -> None:
    assert process_guard._windows_working_set(os.getpid()) is None
    assert conversion.read_rss(2**22 + 12345) is None  # no such process


# -- a converter started ahead ----------------------------------------------------------------


def warm_child(tmp_path: Path, mode: str, starter: conversion.Launcher | None = None,
               command: list[str] | None = None) -> conversion.WarmChild:
    env = {**os.environ, "MODE": mode, "REPO_ROOT": str(REPO_ROOT)}
    warm = conversion.WarmChild(command or [sys.executable, "-c", CHILD, "--wait"], env,
                                tmp_path / "work" / "warm.log", starter=starter)
    warm.start()
    return warm


def cold_process(tmp_path: Path, command: list[str],
                 starter: conversion.Launcher | None = None) -> ConversionProcess:
    (tmp_path / "library").mkdir(exist_ok=True)
    spec_path = tmp_path / "work" / "task-1.spec.json"
    env = {**os.environ, "MODE": "ok", "REPO_ROOT": str(REPO_ROOT)}
    return ConversionProcess(spec_in(tmp_path), spec_path, [*command, str(spec_path)], env, Limits(timeout_s=30.0),
                             tmp_path / "work" / "task-1.log", starter=starter)


def test_a_converter_started_ahead_takes_the_spec(tmp_path: Path) -> None:
    warm = warm_child(tmp_path, "ok")
    pid = warm.pid
    process = cold_process(tmp_path, [str(tmp_path / "no-such-blender")])  # a cold start would fail

    process.start(warm=warm)

    assert process.pid == pid
    assert outcome_of(process).ok
    assert pid is not None and gone(pid)
    assert not left_in(tmp_path / "work")


def test_a_converter_that_died_waiting_is_replaced_by_a_fresh_one(tmp_path: Path) -> None:
    warm = warm_child(tmp_path, "die_waiting")
    dead = warm.pid
    deadline = time.monotonic() + 10
    while warm.alive and time.monotonic() < deadline:
        time.sleep(0.02)
    process = cold_process(tmp_path, [sys.executable, "-c", CHILD])

    process.start(warm=warm)

    assert process.pid != dead and outcome_of(process).ok
    assert dead is not None and gone(dead)


def test_a_converter_not_needed_after_all_is_stopped_and_reaped(tmp_path: Path) -> None:
    warm = warm_child(tmp_path, "ok")
    pid = warm.pid
    started = time.monotonic()

    warm.stop()

    assert time.monotonic() - started < 1.0
    assert pid is not None and gone(pid)
    assert not (tmp_path / "work" / "warm.log").exists()


# -- nothing left behind, nothing waited for ----------------------------------------------------


def test_a_killed_converter_leaves_nothing_in_the_temporary_folder(tmp_path: Path) -> None:
    system_temp = tmp_path / "system-temp"
    system_temp.mkdir()
    process = start_child(tmp_path, "blender_temp", env={"TMPDIR": str(system_temp), "TMP": str(system_temp),
                                                          "TEMP": str(system_temp)})
    used = Path(process.spec.result + ".temp")
    assert wait_until(used.exists)
    # The converter's temporary folder is ours, inside the work folder.
    assert Path(used.read_text()).parent == tmp_path / "work"
    process.cancel()
    assert outcome_of(process).cancelled
    assert not list(system_temp.iterdir())
    assert not [name for name in left_in(tmp_path / "work") if name.startswith(conversion.TEMP_PREFIX)]


def test_a_killed_converter_is_never_waited_for(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    process = start_child(tmp_path, "sleep")
    time.sleep(0.3)
    reaper = conversion.Reaper()
    pid = process.pid
    # Waiting for a killed Blender to end took 15 to 30 ms of the main thread in the benchmark.
    monkeypatch.setattr(process._child.process, "wait", lambda *args, **kwargs: pytest.fail("waited"))
    process.abandon(reaper)
    assert pid is not None and wait_until(lambda: (reaper.poll(), not len(reaper))[1])
    assert gone(pid)
    assert not left_in(tmp_path / "work") and not list((tmp_path / "library").iterdir())


def test_the_converters_own_alarm_ends_it_when_nobody_watches(tmp_path: Path) -> None:
    if not hasattr(signal, "alarm"):
        pytest.skip("POSIX's alarm")
    # Blender's timer does not run (a long operator): nobody polls, and C code holds the converter's GIL.
    process = start_child(tmp_path, "alarm_with_the_gil_held", Limits(timeout_s=0.5))
    pid = process.pid
    assert pid is not None
    assert wait_until(lambda: Path(f"/proc/{pid}/stat").exists() and ") Z " in Path(f"/proc/{pid}/stat").read_text(),
                      timeout_s=10.0)
    assert str(outcome_of(process).error) == "Converting the model took longer than 0.5s: not imported; retry"


def test_temporary_folders_of_a_crashed_blender_are_removed(tmp_path: Path) -> None:
    ours = conversion.make_temp_folder(tmp_path)
    crashed = tmp_path / f"{conversion.TEMP_PREFIX}{2**22 + 5}-abc"
    (crashed / "blender_x").mkdir(parents=True)
    running = tmp_path / f"{conversion.TEMP_PREFIX}{os.getppid()}-def"
    running.mkdir()
    (tmp_path / "outside").symlink_to(tmp_path / "kept", target_is_directory=True)
    (tmp_path / "kept").mkdir()
    (tmp_path / f"{conversion.TEMP_PREFIX}{2**22 + 6}-link").symlink_to(tmp_path / "kept")

    assert conversion.prune_temp_folders(tmp_path, process_guard.alive) == 1

    assert ours.is_dir() and running.is_dir() and not crashed.exists() and (tmp_path / "kept").is_dir()


# -- one memory budget, shared ---------------------------------------------------------------


def test_by_default_each_converter_gets_four_gigabytes_and_one_to_four_run() -> None:
    gb = 1024**3
    assert [conversion.default_at_once(conversion.memory_budget(total * gb)) for total in (4, 8, 16, 24, 32, 64)] \
        == [1, 1, 2, 3, 4, 4]


def test_the_converters_together_never_pass_the_budget() -> None:
    budget = 12 * 1024**3
    for at_once in range(1, conversion.MAX_AT_ONCE + 1):
        limits = conversion.limits_for(at_once, budget)
        assert limits.memory_bytes * at_once <= budget
        assert limits.shared == (at_once > 1)


def test_a_shared_limit_says_fewer_converters_would_give_more() -> None:
    shared = conversion.out_of_memory_message(conversion.limits_for(3, 12 * 1024**3))
    assert str(shared) == ("Converting the model needed more than 4.0 GB of memory, each converter's share: not "
                           "imported; allow fewer converters at once in the add-on preferences, then retry")
    alone = conversion.out_of_memory_message(conversion.limits_for(1, 12 * 1024**3))
    assert str(alone).startswith("Converting the model needed more than 12.0 GB of memory, the converter's limit")


# -- macOS's spawn (posix_spawn: Popen forks there), run here through the same calls -------------------


@pytest.mark.skipif(not hasattr(os, "posix_spawn"), reason="POSIX")
def test_the_posix_spawn_start_plays_every_ending(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(conversion, "SPAWN_WITH_POSIX_SPAWN", True)
    for name in ("ok", "crash", "cancel", "warm", "missing"):
        (tmp_path / name).mkdir()
    process = start_child(tmp_path / "ok", "ok")
    assert isinstance(process._child.process, conversion.SpawnedProcess)  # type: ignore[union-attr]
    assert outcome_of(process).ok and process.pid is not None and gone(process.pid)
    assert outcome_of(start_child(tmp_path / "crash", "crash")).error == conversion.CRASHED

    sleeping = start_child(tmp_path / "cancel", "sleep")
    assert sleeping.pid is not None and os.getsid(sleeping.pid) == sleeping.pid  # a session of its own
    sleeping.cancel()
    assert outcome_of(sleeping, timeout_s=2.0).cancelled and gone(sleeping.pid)

    warm = warm_child(tmp_path / "warm", "ok")  # its spec's path goes down the pipe posix_spawn gave it
    waiting = warm.pid
    adopted = cold_process(tmp_path / "warm", [str(tmp_path / "no-such-blender")])
    adopted.start(warm=warm)
    assert adopted.pid == waiting and outcome_of(adopted).ok

    with pytest.raises(conversion.ConversionFailed):
        ConversionProcess(spec_in(tmp_path / "missing"), tmp_path / "missing" / "s.json",
                          [str(tmp_path / "no-blender")], {}, Limits(), tmp_path / "missing" / "l.log").start()
    assert not [p for p in (tmp_path / "missing").iterdir() if p.name.startswith(conversion.TEMP_PREFIX)]


def test_the_next_converter_takes_the_emptied_folder_and_quitting_removes_it(tmp_path: Path) -> None:
    first = start_child(tmp_path, "blender_temp")
    used = Path(first.spec.result + ".temp")
    assert wait_until(used.exists)
    folder = Path(used.read_text())
    first.cancel()
    assert outcome_of(first).cancelled
    assert folder.is_dir() and not list(folder.iterdir())  # Blender's folder went with it

    second = start_child(tmp_path, "blender_temp")
    assert wait_until(used.exists) and Path(used.read_text()) == folder
    second.cancel()
    outcome_of(second)

    conversion.remove_spare_temp_folders()
    assert not [p for p in (tmp_path / "work").iterdir() if p.name.startswith(conversion.TEMP_PREFIX)]


# -- started on the starter's thread: the main thread never waits for a spawn --------------------

SLOW_SPAWN_S = 0.4


@pytest.fixture(params=["thread", "worker process"])
def slow_starter(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> Any:
    """A ``Starter`` whose spawns take SLOW_SPAWN_S, as on a busy machine
    (4 ms there): long enough to act while the child is still starting.
    Or the worker process (``converter_host``), whose converter is starting
    until its word is read, as the timer does when it drains the workers
    (``pump``)."""
    if request.param == "worker process":
        workers = WorkerProcess()
        link = workers._ensure_link()
        assert link is not None
        workers.wait_for(lambda: link.connected, 30.0)
        assert link.connected
        PUMPS.append(lambda: workers.wait_for(lambda: False, 0.0))
        yield converter_host.RemoteStarter(lambda: workers)
        PUMPS.clear()
        workers.shutdown(5.0)
        assert not workers._converters  # every converter's end was heard
        return
    spawn = conversion.spawn

    def slow(*args: Any, **kwargs: Any) -> Any:
        time.sleep(SLOW_SPAWN_S)
        return spawn(*args, **kwargs)

    monkeypatch.setattr(conversion, "spawn", slow)
    starter = conversion.Starter()
    yield starter
    starter.stop(5.0)
    assert not starter.running


def started_pid(process: ConversionProcess) -> int:
    assert wait_until(lambda: process.pid is not None or process.poll() is not None)
    assert process.pid is not None
    return process.pid


def test_a_start_on_the_starter_thread_never_waits_for_the_spawn(tmp_path: Path, slow_starter: Any) -> None:
    process = cold_process(tmp_path, [sys.executable, "-c", CHILD], starter=slow_starter)
    asked = time.monotonic()
    process.start()
    assert time.monotonic() - asked < SLOW_SPAWN_S / 4
    assert process.pid is None and process.running and process.poll() is None  # still starting
    outcome = outcome_of(process)
    assert outcome.ok and process.pid is not None and gone(process.pid)
    assert not left_in(tmp_path / "work")


def test_a_conversion_cancelled_while_it_starts_leaves_no_process(tmp_path: Path, slow_starter: Any) -> None:
    process = cold_process(tmp_path, [sys.executable, "-c", CHILD], starter=slow_starter)
    process.start()
    process.cancel()  # the spawn has not returned yet
    assert process.poll() is None  # ended only once its process is reaped
    outcome = outcome_of(process, timeout_s=5.0)
    assert outcome.cancelled
    assert process.pid is not None and gone(process.pid)
    # As for any cancelled converter, its output stays (the caller removes it with the task).
    assert left_in(tmp_path / "work") == ["task-1.log"] and not list((tmp_path / "library").iterdir())


def test_a_conversion_abandoned_while_it_starts_is_reaped(tmp_path: Path, slow_starter: Any) -> None:
    process = cold_process(tmp_path, [sys.executable, "-c", CHILD], starter=slow_starter)
    process.start()
    reaper = conversion.Reaper()
    process.abandon(reaper)
    assert len(reaper) == 1 and reaper.pids == []  # no process yet to name
    assert wait_until(lambda: (reaper.poll(), not len(reaper))[1])
    assert process.pid is not None and gone(process.pid)
    assert not left_in(tmp_path / "work") and not list((tmp_path / "library").iterdir())


def test_stopping_a_conversion_while_it_starts_reaps_it(tmp_path: Path, slow_starter: Any) -> None:
    process = cold_process(tmp_path, [sys.executable, "-c", CHILD], starter=slow_starter)
    process.start()
    process.stop(timeout_s=5.0)
    assert process.pid is not None and gone(process.pid)


def test_a_start_that_fails_on_the_starter_thread_says_so_when_polled(tmp_path: Path, slow_starter: Any) -> None:
    process = cold_process(tmp_path, [str(tmp_path / "no-blender")], starter=slow_starter)
    process.start()  # nothing to say yet
    outcome = outcome_of(process)
    assert str(outcome.error).startswith("Could not start Blender to convert the model (No such file or directory)")
    assert not process.spec_path.exists()
    assert not [p for p in (tmp_path / "work").iterdir() if p.name.startswith(conversion.TEMP_PREFIX)]


def test_a_converter_started_ahead_still_starting_takes_the_spec_once_started(tmp_path: Path,
                                                                               slow_starter: Any) -> None:
    warm = warm_child(tmp_path, "ok", starter=slow_starter)
    assert warm.alive and warm.pid is None  # still starting
    process = cold_process(tmp_path, [str(tmp_path / "no-such-blender")], starter=slow_starter)  # would fail

    process.start(warm=warm)

    pid = started_pid(process)
    assert outcome_of(process).ok  # so the converter started ahead converted it
    assert gone(pid) and not left_in(tmp_path / "work")


def test_a_converter_started_ahead_that_could_not_start_is_replaced(tmp_path: Path, slow_starter: Any) -> None:
    warm = warm_child(tmp_path, "ok", starter=slow_starter, command=[str(tmp_path / "no-blender"), "--wait"])
    process = cold_process(tmp_path, [sys.executable, "-c", CHILD], starter=slow_starter)

    process.start(warm=warm)  # taken while it starts; its start fails after

    assert outcome_of(process).ok
    assert warm.failed is None  # handed over: the conversion's now
    assert not left_in(tmp_path / "work")


def test_a_converter_started_ahead_says_why_it_could_not_start(tmp_path: Path, slow_starter: Any) -> None:
    warm = warm_child(tmp_path, "ok", starter=slow_starter, command=[str(tmp_path / "no-blender"), "--wait"])
    assert warm.failed is None
    assert wait_until(lambda: not warm.alive)
    assert warm.failed is not None and "No such file or directory" in str(warm.failed)
    reaper = conversion.Reaper()
    warm.abandon(reaper)
    assert not len(reaper)


@pytest.fixture
def spec_writes(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The thread of each spec written in this process (the worker process writes its own elsewhere)."""
    threads: list[str] = []
    write = conversion.SpecFile.write

    def recorded(self: conversion.SpecFile) -> None:
        threads.append(threading.current_thread().name)
        write(self)

    monkeypatch.setattr(conversion.SpecFile, "write", recorded)
    return threads


@pytest.mark.parametrize("ahead", [False, True], ids=["cold", "started ahead"])
def test_with_a_starter_the_spec_is_never_written_on_the_callers_thread(
        tmp_path: Path, slow_starter: Any, spec_writes: list[str], ahead: bool) -> None:
    warm = warm_child(tmp_path, "ok", starter=slow_starter) if ahead else None
    if warm is not None:
        assert wait_until(lambda: warm.pid is not None)  # started: the spec goes to it at once
    process = cold_process(tmp_path, [sys.executable, "-c", CHILD], starter=slow_starter)
    process.start(warm=warm)
    assert outcome_of(process).ok  # so the spec was written, before it was read
    assert threading.current_thread().name not in spec_writes
    assert spec_writes == ([] if isinstance(slow_starter, converter_host.RemoteStarter) else [slow_starter.name])
    assert not left_in(tmp_path / "work")


@pytest.mark.parametrize("ahead", [False, True], ids=["cold", "started ahead"])
def test_a_spec_that_cannot_be_written_ends_the_conversion_with_why_and_no_process(
        tmp_path: Path, slow_starter: Any, ahead: bool) -> None:
    warm = warm_child(tmp_path, "ok", starter=slow_starter) if ahead else None
    if warm is not None:
        assert wait_until(lambda: warm.pid is not None)
    blocked = tmp_path / "blocked"
    blocked.write_text("a file where the work folder should be")
    (tmp_path / "library").mkdir(exist_ok=True)
    env = {**os.environ, "MODE": "ok", "REPO_ROOT": str(REPO_ROOT)}
    spec_path = blocked / "task-1.spec.json"
    process = ConversionProcess(spec_in(tmp_path), spec_path, [sys.executable, "-c", CHILD, str(spec_path)], env,
                                Limits(timeout_s=30.0), tmp_path / "work" / "task-1.log", starter=slow_starter)
    process.start(warm=warm)
    outcome = outcome_of(process)
    assert str(outcome.error) == str(safe_files.FolderUnusable(blocked).message)
    pid = process.pid
    if warm is None:
        assert pid is None  # nothing spawned for a spec that is not there
    else:
        assert pid is not None and wait_until(lambda: gone(pid))  # none left waiting for a spec for ever
    assert not list((tmp_path / "library").iterdir())


def test_an_earlier_runs_result_is_gone_before_a_converter_starts(tmp_path: Path, slow_starter: Any) -> None:
    """Removed by whoever writes the spec: a converter that ends without a result is not judged by an old one."""
    process = cold_process(tmp_path, [sys.executable, "-c", "import sys"], starter=slow_starter)
    (tmp_path / "library" / "task-1.blend").write_bytes(b"an earlier entry")
    conversion.write_result(Path(process.spec.result), {"objects": ["Old"], "import_s": 0.1})
    process.start()
    assert outcome_of(process).error == conversion.NO_RESULT


def test_without_a_starter_a_spec_that_cannot_be_written_kills_the_converter_started_ahead(tmp_path: Path) -> None:
    warm = warm_child(tmp_path, "ok")
    pid = warm.pid
    blocked = tmp_path / "blocked"
    blocked.write_text("a file where the work folder should be")
    (tmp_path / "library").mkdir(exist_ok=True)
    spec_path = blocked / "task-1.spec.json"
    process = ConversionProcess(spec_in(tmp_path), spec_path, [str(tmp_path / "no-blender")], {}, Limits(),
                                tmp_path / "work" / "task-1.log")
    process.start(warm=warm)
    assert str(outcome_of(process).error) == str(safe_files.FolderUnusable(blocked).message)
    assert pid is not None and gone(pid)


def test_the_starter_thread_ends_when_stopped(tmp_path: Path) -> None:
    starter = conversion.Starter()
    process = cold_process(tmp_path, [sys.executable, "-c", CHILD], starter=starter)
    process.start()
    assert starter.running
    assert outcome_of(process).ok
    starter.stop(2.0)
    assert not starter.running
    assert not [t for t in __import__("threading").enumerate() if t.name == starter.name]
