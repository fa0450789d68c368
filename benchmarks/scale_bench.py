"""6. Scale and 7. fairness: many tasks, and one answer that stalls.

Run inside ``blender_bench`` (an isolated Blender with the add-on installed
and the simulator in a child process).

Scale: 1, 100 and 1,000 tasks that stay "processing" are pasted at once; we
time the paste (the operator call on the main thread), every timer call while
they are polled, count our threads (in Blender's process and in the worker
process), and read from the simulator how many
status checks arrived and how far apart each task's checks were. The request
budget (``core.jobs.STATUS_CHECKS_PER_S``) decides the expected gap:
``max(interval, tasks / budget)``.

Fairness: 8 tasks polled every 0.5 s (within the budget); then one status
answer is held back for 8 s. The gaps between the checks of the other tasks
during those 8 s should stay at the interval, and Cancel on the stalled task
should act at once.
"""

from __future__ import annotations

import threading
import time
from pathlib import Path
from types import ModuleType
from typing import Any

from benchmarks.common import log, percentile, preemptions, summary_ms, target

QUERY_PATH = "/open-api/v1/query-task"
PASTE_LIMIT_MS = 100.0
TICK_LIMIT_MS = 2.0
THREAD_LIMIT = 30
STALL_S = 8.0


def _our_threads() -> int:
    """Our threads in Blender's process: none (the workers are a process of their own)."""
    return sum(1 for thread in threading.enumerate() if thread.name.startswith("hitem3d-"))


def _worker_threads(addon: ModuleType) -> int:
    """The threads of the worker process (Linux: its /proc entry), 0 when unknown."""
    runner = addon.engine.state.current.runner
    pid = getattr(runner, "pid", None) if runner is not None else None
    try:
        status = Path(f"/proc/{pid}/status").read_text() if pid else ""
    except OSError:
        return 0
    return next((int(line.split()[1]) for line in status.splitlines() if line.startswith("Threads:")), 0)


def _gaps_by_task(requests: list[dict[str, Any]], since: float, until: float) -> dict[str, list[float]]:
    times: dict[str, list[float]] = {}
    for request in requests:
        if request["path"] == QUERY_PATH and since <= request["time"] <= until:
            times.setdefault(request["query"].get("task_id", ""), []).append(request["time"])
    return {task: [b - a for a, b in zip(sorted(moments), sorted(moments)[1:])] for task, moments in times.items()}


def _one_scale(addon: ModuleType, count: int, seconds: float, poll_interval_s: float) -> dict[str, Any]:
    import bpy

    from benchmarks.blender_bench import SimulatorProcess, point_prefs_at, task_id

    addon.ui.session.shutdown()
    # A fresh history: the last run's unfinished tasks would resume.
    addon.engine.files.journal_path().unlink(missing_ok=True)
    ids = [task_id(50_000 + count * 10 + n) for n in range(count)]
    timer = addon.engine.timer
    budget = addon.core.jobs.STATUS_CHECKS_PER_S
    with SimulatorProcess() as sim:
        point_prefs_at(sim, poll_interval_s)
        for task in ids:
            sim.add_task(task, ["processing"])
        text = " ".join(ids)
        started = time.perf_counter()
        bpy.ops.hitem3d.import_task(task_id=text)
        paste_ms = (time.perf_counter() - started) * 1000.0
        began = time.time()
        ticks: list[int] = []
        without_warm: list[int] = []
        running: list[int] = []  # without the converter's start, calls the system did not interrupt
        first_tick_ns = 0
        threads = 0
        worker_threads = 0
        end = time.monotonic() + seconds
        conversions = addon.engine.conversions
        keep_warm = conversions.keep_warm
        warm_ns = [0]

        def timed_keep_warm(*args: Any, **kwargs: Any) -> None:
            started_ns = time.perf_counter_ns()
            try:
                keep_warm(*args, **kwargs)
            finally:
                warm_ns[0] += time.perf_counter_ns() - started_ns

        conversions.keep_warm = timed_keep_warm
        while time.monotonic() < end:
            warm_ns[0] = 0
            switched = preemptions()
            tick_started = time.perf_counter_ns()
            interval = timer.tick()
            elapsed = time.perf_counter_ns() - tick_started
            if not first_tick_ns:
                first_tick_ns = elapsed  # mirrors the pasted IDs into the UI list: once
            else:
                ticks.append(elapsed)
                without_warm.append(elapsed - warm_ns[0])
                if preemptions() == switched:
                    running.append(elapsed - warm_ns[0])
            threads = max(threads, _our_threads())
            worker_threads = max(worker_threads, _worker_threads(addon))
            time.sleep(interval if interval is not None else timer.BUSY_INTERVAL_S)
        conversions.keep_warm = keep_warm
        ended = time.time()
        requests = sim.requests()
        shutdown_started = time.perf_counter()
        addon.ui.session.shutdown()
        shutdown_ms = (time.perf_counter() - shutdown_started) * 1000.0
    queries = [r for r in requests if r["path"] == QUERY_PATH and began <= r["time"] <= ended]
    gaps = [gap for task_gaps in _gaps_by_task(requests, began, ended).values() for gap in task_gaps]
    polled = len({r["query"].get("task_id") for r in queries})
    expected_gap = max(poll_interval_s, count / budget)
    return {
        "tasks": count,
        "paste_ms": round(paste_ms, 2),
        "first_tick_ms": round(first_tick_ns / 1e6, 3),
        "tick": summary_ms(ticks),
        # Starting a converter ahead (benchmark 10) left out: what the list and the tasks cost.
        "tick_excluding_converter_start": summary_ms(without_warm),
        # The same, the calls the system interrupted left out (common.preemptions).
        "tick_excluding_converter_start_not_preempted": summary_ms(running),
        "calls_preempted": len(without_warm) - len(running),
        "threads_max": threads,
        "worker_process_threads_max": worker_threads,
        "status_checks_per_s": round(len(queries) / (ended - began), 1),
        "tasks_polled": polled,
        # The budget's first burst, then its rate: how many could be checked at all.
        "tasks_checkable": min(count, int(budget * (ended - began)) + int(budget)),
        "expected_gap_s": round(expected_gap, 2),
        "poll_gap_median_s": round(percentile(gaps, 0.5), 3) if gaps else None,
        "poll_gap_max_s": round(max(gaps), 3) if gaps else None,
        "shutdown_ms": round(shutdown_ms, 1),
    }


def bench_scale(addon: ModuleType, quick: bool) -> dict[str, Any]:
    poll_interval_s = 1.0
    budget = addon.core.jobs.STATUS_CHECKS_PER_S
    runs = []
    for count in (1, 100, 1000):
        # Long enough for the tasks checked first to be checked again.
        seconds = min(60.0, max(4.0, 1.2 * count / budget)) if not quick else min(30.0, max(3.0, 1.2 * count / budget))
        log(f"scale: {count} task(s) polled every {poll_interval_s:g} s for {seconds:.0f} s "
            f"(budget {budget:g} checks/s)")
        runs.append(_one_scale(addon, count, seconds, poll_interval_s))
    largest = runs[-1]
    return {
        "poll_interval_s": poll_interval_s,
        "status_checks_per_s_budget": budget,
        "runs": runs,
        "target_paste_1000_ms": target(largest["paste_ms"], PASTE_LIMIT_MS),
        # NOTE: what the list and the tasks cost (the converter's start has its
        # own benchmark), in the calls the system did not interrupt: every
        # call is beside, in "tick".
        "target_tick_max_1000_ms": target(largest["tick_excluding_converter_start_not_preempted"]["max_ms"],
                                          TICK_LIMIT_MS),
        # Ours in Blender's process (none) and the worker process's, together.
        "target_threads_1000": target(largest["threads_max"] + largest["worker_process_threads_max"], THREAD_LIMIT),
        "target_checks_per_s_1000": target(largest["status_checks_per_s"], budget * 1.1),
        "target_gap_max_1000_s": target(largest["poll_gap_max_s"], round(largest["expected_gap_s"] * 1.25, 2)),
        "target_every_checkable_task_polled_1000": target(largest["tasks_polled"],
                                                          int(largest["tasks_checkable"] * 0.95), at_most=False),
    }


def bench_fairness(addon: ModuleType, quick: bool) -> dict[str, Any]:
    import bpy

    from benchmarks.blender_bench import SimulatorProcess, point_prefs_at, task_id

    count = 8
    poll_interval_s = 0.5
    ids = [task_id(70_000 + n) for n in range(count)]
    timer = addon.engine.timer
    with SimulatorProcess() as sim:
        point_prefs_at(sim, poll_interval_s)
        for task in ids:
            sim.add_task(task, ["processing"])
        bpy.ops.hitem3d.import_task(task_id=" ".join(ids))

        def drive(seconds: float) -> None:
            end = time.monotonic() + seconds
            while time.monotonic() < end:
                interval = timer.tick()
                time.sleep(interval if interval is not None else timer.BUSY_INTERVAL_S)

        drive(2.0)
        log(f"fairness: {count} tasks polled every {poll_interval_s:g} s; one answer held back {STALL_S:g} s")
        stalled_at = time.time()
        sim.delay_next(QUERY_PATH, STALL_S)
        drive(STALL_S)
        ended = time.time()
        cancel_started = time.perf_counter()
        stalled_task = next((r["query"].get("task_id") for r in sim.requests()
                             if r["path"] == QUERY_PATH and r["time"] >= stalled_at), None)
        if stalled_task:
            bpy.ops.hitem3d.cancel_task(task_id=stalled_task)
            while addon.engine.state.is_running(stalled_task) or \
                    addon.engine.history.book().get(stalled_task).state.value != "cancelled":
                timer.tick()
                time.sleep(0.01)
                if time.perf_counter() - cancel_started > 5:
                    break
        cancel_ms = (time.perf_counter() - cancel_started) * 1000.0
        requests = sim.requests()
        addon.ui.session.shutdown()
    gaps = _gaps_by_task(requests, stalled_at, ended)
    others = [gap for task, task_gaps in gaps.items() if task != stalled_task for gap in task_gaps]
    return {
        "tasks": count,
        "poll_interval_s": poll_interval_s,
        "stall_s": STALL_S,
        "stalled_task_checks_during_stall": len(gaps.get(stalled_task or "", [])) + (1 if stalled_task else 0),
        "other_tasks_gap_median_s": round(percentile(others, 0.5), 3) if others else None,
        "cancel_of_the_stalled_task_ms": round(cancel_ms, 1),
        "target_other_tasks_gap_max_s": target(round(max(others), 3) if others else None,
                                               round(poll_interval_s * 1.5, 2)),
        "target_cancel_during_stall_ms": target(round(cancel_ms, 1), 1000.0),
    }
