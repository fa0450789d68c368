"""Starting and stopping converters: what each costs Blender's main thread.

Run inside ``blender_bench`` (an isolated Blender with the add-on installed
and the simulator in a child process), as ``converter_start``.

Blender's process is made big first (``BALLAST_BYTES`` allocated and touched),
as an artist's is with a scene open: a spawn that copies the parent's page
tables (``fork``) costs in proportion to it. Then, with at most one converter
at once, timer calls are timed while:

- a task is made on Hitem3D: the call that starts the converter ahead (warm);
- the task is cancelled: the call that stops that converter (it is killed,
  never waited for, and reaped by a later call);
- two tasks finish together: the call that hands the first to the waiting
  converter (with the GLB check and the spec), and the call that starts a
  converter for the second when the first is done (a start from the queue).

Each figure is the timer call's whole time (``engine.timer.tick``), the
longest of ``rounds``, next to the limit of any other timer call (2 ms); the
start asked for inside it (``conversion.begin``) and, for reference, the spawn
itself, which runs on the converter starter's thread (Python 3.12 and newer)
or in the worker process (Python 3.11: ``spawn`` then counts no call here).
The spec file is written there too (``conversion.SpecFile``). For the longest
start from the queue, ``tick_starting_queued_converter_longest_phases_ms``
says where the call went: the conversion's start, of it the asking, and the rest.
"""

from __future__ import annotations

import time
from types import ModuleType
from typing import Any, Callable

from benchmarks.common import log, summary_ms, target

TICK_LIMIT_MS = 2.0
BALLAST_BYTES = 2 * 1024**3


class _Counted:
    """Wraps a function (a method too: the wrapper is a plain function): counts
    calls and adds up their time."""

    def __init__(self, owner: Any, name: str, kind: Callable[..., str] | None = None) -> None:
        self.owner, self.name = owner, name
        self.inner = getattr(owner, name)
        self.calls: list[tuple[str, int]] = []
        inner, calls = self.inner, self.calls

        def counted(*args: Any, **kwargs: Any) -> Any:
            started = time.perf_counter_ns()
            try:
                return inner(*args, **kwargs)
            finally:
                calls.append((kind(*args, **kwargs) if kind else name, time.perf_counter_ns() - started))

        setattr(owner, name, counted)

    def restore(self) -> None:
        setattr(self.owner, self.name, self.inner)


def _ballast(size: int) -> bytearray:
    block = bytearray(size)
    for offset in range(0, size, 4096):
        block[offset] = 1  # touched: resident, with page tables to copy
    return block


def bench_converter_start(addon: ModuleType, quick: bool) -> dict[str, Any]:
    import bpy

    from benchmarks.blender_bench import SimulatorProcess, point_prefs_at, task_id
    from tests.support.glb_factory import cached_glb

    rounds = 2 if quick else 5
    ballast = _ballast(BALLAST_BYTES // (4 if quick else 1))
    conversion = addon.core.conversion
    conversions = addon.engine.conversions
    conversions.USE_CHILD_PROCESS = True
    timer = addon.engine.timer
    # A start is asked for on the main thread (begin) and runs on the starter's
    # thread (spawn): the timer call is classed by what it asked for.
    kind_of_start = lambda *args, **kwargs: "warm" if kwargs.get("stdin") == -1 else "cold"  # noqa: E731
    begin = _Counted(conversion, "begin", kind_of_start)
    spawn = _Counted(conversion, "spawn", kind_of_start)
    abandon = _Counted(conversion.WarmChild, "abandon")
    hand_over = _Counted(addon.engine.import_step, "run")
    appended = _Counted(conversions, "append_result")
    conversion_start = _Counted(conversions, "_start")
    ticks: dict[str, list[int]] = {"warm_start": [], "warm_stop": [], "hand_over": [], "queued_start": [],
                                   "append": [], "other": []}
    # Where each queued start's call went: the conversion's start (spec, start
    # asked for, the task shown as converting), of it the asking, and the rest.
    queued_phases: list[tuple[int, dict[str, float]]] = []
    sample = cached_glb(objects=2)

    def drive(until: Callable[[], bool], timeout_s: float = 120.0) -> None:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            spawns, abandons, runs, appends, starts = (len(begin.calls), len(abandon.calls), len(hand_over.calls),
                                                       len(appended.calls), len(conversion_start.calls))
            started = time.perf_counter_ns()
            interval = timer.tick()
            elapsed = time.perf_counter_ns() - started
            new_spawns = [kind for kind, _ in begin.calls[spawns:]]
            if len(hand_over.calls) > runs:
                ticks["hand_over"].append(elapsed)
            elif "warm" in new_spawns:
                ticks["warm_start"].append(elapsed)
            elif "cold" in new_spawns:
                ticks["queued_start"].append(elapsed)
                start_ns = sum(ns for _, ns in conversion_start.calls[starts:])
                asked_ns = sum(ns for _, ns in begin.calls[spawns:])
                queued_phases.append((elapsed, {"conversion_start": round(start_ns / 1e6, 3),
                                                "of_it_start_asked": round(asked_ns / 1e6, 3),
                                                "rest_of_the_call": round((elapsed - start_ns) / 1e6, 3)}))
            elif len(abandon.calls) > abandons:
                ticks["warm_stop"].append(elapsed)
            elif len(appended.calls) > appends:
                ticks["append"].append(elapsed)
            else:
                ticks["other"].append(elapsed)
            if until():
                return
            time.sleep(interval if interval is not None else timer.BUSY_INTERVAL_S)
        raise RuntimeError("the converters did not get there in time")

    def state(task: str) -> str:
        rec = addon.engine.history.book().get(task)
        return rec.state.value if rec is not None else ""

    log(f"converter_start: Blender holds {len(ballast) / 1024**3:.1f} GB more; {rounds} rounds, "
        "at most 1 converter at once")
    with SimulatorProcess() as sim:
        prefs = point_prefs_at(sim, 0.2)
        prefs.max_converters = 1
        try:
            for number in range(rounds):
                made = task_id(70_000 + number)
                sim.add_task(made, ["queueing"] * 200)
                bpy.ops.hitem3d.import_task(task_id=made)
                drive(lambda: conversions.warm_pid() is not None)
                time.sleep(1.0)  # its Blender starts meanwhile
                bpy.ops.hitem3d.cancel_task(task_id=made)
                drive(lambda: state(made) == "cancelled" and conversions.warm_pid() is None
                      and not conversions.reaping())
                first, second = task_id(71_000 + number), task_id(72_000 + number)
                sim.add_task(first, ["processing", "processing", "success"], glb=sample)
                sim.add_task(second, ["processing", "processing", "success"], glb=sample)
                bpy.ops.hitem3d.import_task(task_id=f"{first} {second}")
                drive(lambda: state(first) in ("done", "failed") and state(second) in ("done", "failed")
                      and not conversions.busy())
                if state(first) != "done" or state(second) != "done":
                    raise RuntimeError(f"an import failed: {state(first)}, {state(second)}")
        finally:
            prefs.max_converters = prefs.bl_rna.properties["max_converters"].default
            for wrapped in (begin, spawn, abandon, hand_over, appended, conversion_start):
                wrapped.restore()
    del ballast

    def longest(name: str) -> float | None:
        return round(max(ticks[name]) / 1e6, 3) if ticks[name] else None

    spawn_ms = [elapsed for _, elapsed in spawn.calls]
    return {
        "scenario": {"rounds": rounds, "blender_extra_memory_bytes": BALLAST_BYTES // (4 if quick else 1),
                     "converters_at_once": 1},
        # On the converter starter's thread where there is one (Python 3.12 and
        # newer), else inside the timer call: a reference.
        "spawn": summary_ms(spawn_ms),
        "spawn_on_starter_thread": isinstance(conversions._starter, conversion.Starter),
        "spawn_in_worker_process": isinstance(conversions._starter, addon.core.converter_host.RemoteStarter),
        "start_asked_on_main_thread": summary_ms([elapsed for _, elapsed in begin.calls]),
        "tick_starting_warm_converter": summary_ms(ticks["warm_start"]),
        "tick_stopping_warm_converter": summary_ms(ticks["warm_stop"]),
        "tick_starting_queued_converter": summary_ms(ticks["queued_start"]),
        "tick_starting_queued_converter_longest_phases_ms": max(queued_phases, key=lambda each: each[0])[1]
        if queued_phases else None,
        # The GLB check and the spec are in it too: a reference, not held to the limit.
        "tick_handing_over_a_download": summary_ms(ticks["hand_over"]),
        # The append of a converted model (the import step, see main_thread): a reference.
        "tick_appending_a_model": summary_ms(ticks["append"]),
        "other_ticks": summary_ms(ticks["other"]),
        "target_warm_start_ms": target(longest("warm_start"), TICK_LIMIT_MS),
        "target_warm_stop_ms": target(longest("warm_stop"), TICK_LIMIT_MS),
        "target_queued_start_ms": target(longest("queued_start"), TICK_LIMIT_MS),
    }
