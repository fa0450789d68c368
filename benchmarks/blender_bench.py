"""The benchmarks that need Blender: main-thread cost, time to scene, request economy.

    python -m benchmarks.blender_bench NAME --zip PATH [--quick]

Each runs in a fresh process: an isolated Blender (its own user folder), the
built zip installed the way Blender installs extensions, the add-on pointed at
the simulator running in a child process (so the server never competes with
the code under test for the GIL). As Blender's module, ``bpy`` fires no
timers: the benchmark calls the timer callback ``engine.timer.tick`` itself, waiting
the interval each call returns, as Blender's event loop would, and times every
call. Prints one JSON object on stdout.
"""

from __future__ import annotations

import argparse
import functools
import json
import logging
import math
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any, Callable

from benchmarks import assets, converter_bench, scale_bench
from benchmarks.common import REPO_ROOT, GcClock, JsonStdout, log, preemptions, summary_ms, target, waits
from benchmarks.simproc import SimulatorProcess
from tests.support.isolation import throwaway_user_folder

ADDON_MODULE = "bl_ext.user_default.hitem3d_blender"
MAIN_THREAD_LIMIT_MS = 5.0
# With a history in the list, a timer call costs what changed, not what is kept.
LONG_HISTORY_LIMIT_MS = 1.0
TIME_TO_SCENE_LIMIT = 1.1
ENABLE_LIMIT_S = 0.5  # enabling the add-on on a journal of 100,000 tasks
OVERSIZED_JOURNAL = 100_000


def task_id(number: int) -> str:
    """A task ID shaped like Hitem3D's."""
    return f"{number:032x}.jjewelry-aigc-api.Bench{number:05d}"


# -- an isolated Blender with the add-on ---------------------------------------------


def isolate() -> Path:
    """Point Blender at a throwaway user folder. Must run before ``import bpy``."""
    return throwaway_user_folder("hitem3d-bench-user-")


def install(zip_path: Path) -> ModuleType:
    import bpy

    bpy.context.preferences.system.use_online_access = True
    result = bpy.ops.extensions.package_install_files(
        repo="user_default", filepath=str(zip_path), enable_on_install=True
    )
    if result != {"FINISHED"}:
        raise RuntimeError(f"installing {zip_path.name} returned {result}")
    addon = sys.modules[ADDON_MODULE]
    # NOTE: the interactive path (operators return at once, the timer applies
    # results), as in Blender's UI; the tests switch it the same way.
    addon.engine.state.runs_to_end = lambda: False
    return addon


def point_prefs_at(sim: SimulatorProcess, poll_interval_s: float) -> Any:
    import bpy

    prefs = bpy.context.preferences.addons[ADDON_MODULE].preferences
    prefs.base_url = sim.base_url
    prefs.client_id = sim.client_id
    prefs.client_secret = sim.client_secret
    prefs.poll_interval = poll_interval_s
    prefs.auto_import = True
    return prefs


def clear_scene() -> None:
    """Remove every object and the data an import left, so runs do not add up."""
    import bpy

    for obj in list(bpy.data.objects):
        bpy.data.objects.remove(obj)
    for collection in (bpy.data.meshes, bpy.data.materials, bpy.data.images, bpy.data.textures):
        for block in list(collection):
            collection.remove(block)


class _Timed:
    """Wraps a callable (an operator too: other attributes pass through) and adds up its time."""

    def __init__(self, inner: Any) -> None:
        self._inner = inner
        self.ns = 0
        self.calls = 0

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        started = time.perf_counter_ns()
        try:
            return self._inner(*args, **kwargs)
        finally:
            self.ns += time.perf_counter_ns() - started
            self.calls += 1

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)


class _Proxy:
    """A stand-in for a module: the given attributes, everything else from ``real``."""

    def __init__(self, real: Any, **overrides: Any) -> None:
        self._real = real
        self.__dict__.update(overrides)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._real, name)


class _Sum:
    """The time of several ``_Timed`` together."""

    def __init__(self, *parts: _Timed) -> None:
        self.parts = parts

    @property
    def ns(self) -> int:
        return sum(part.ns for part in self.parts)


class ImportClock:
    """Times the add-on's import step on the main thread: all that
    ``engine.import_step`` does for a task in a timer call (in-process, the
    glTF operator and placement; with a converter process, the hand-over
    with the library entry's registration, then the append with placement
    and the undo step) and, inside it, the glTF operator and the appends alone."""

    def __init__(self, addon: ModuleType) -> None:
        import bpy

        importer = addon.scene.importer
        conversions = addon.engine.conversions
        import_step = addon.engine.import_step
        # The outer calls only: everything else of an import happens inside them.
        run, finish = _Timed(import_step.run), _Timed(import_step.finish_conversion)
        self.step = _Sum(run, finish)
        self.appended = _Timed(conversions.append_result)
        self.gltf = _Timed(bpy.ops.import_scene.gltf)
        # A converter started ahead, while a task is made on Hitem3D or downloads.
        self.warm = _Timed(conversions.keep_warm)
        import_step.run, import_step.finish_conversion = run, finish
        conversions.keep_warm, conversions.append_result = self.warm, self.appended
        # importer calls bpy.ops.import_scene.gltf through its module global `bpy`.
        importer.bpy = _Proxy(bpy, ops=_Proxy(bpy.ops, import_scene=_Proxy(bpy.ops.import_scene, gltf=self.gltf)))
        # Where a timer call's time goes besides the import step: reported for
        # its longest calls, so a long one says what it did.
        workers, hooks, history = addon.core.worker_process.WorkerProcess, addon.engine.state.hooks, addon.engine.history
        self.phases: dict[str, _Timed] = {
            "drain": _timed_method(workers, "drain"),
            "finished": _Timed(conversions.finished),
            "save": _Timed(history.save),
            "list_changed": _Timed(hooks.list_changed),
            "shown_changed": _Timed(hooks.shown_changed),
            "hand_over_journal": _timed_method(workers, "hand_over_journal"),
            # Log lines held from busier calls, written in this one's spare time.
            "write_logs": _Timed(addon.core.logs.write_held),
        }
        addon.core.logs.write_held = self.phases["write_logs"]
        conversions.finished, history.save = self.phases["finished"], self.phases["save"]
        hooks.list_changed, hooks.shown_changed = self.phases["list_changed"], self.phases["shown_changed"]

    def phase_ns(self) -> dict[str, int]:
        return {name: timed.ns for name, timed in self.phases.items()}


def _timed_method(owner: type, name: str) -> _Timed:
    """Time a method of ``owner`` (every instance's)."""
    timed = _Timed(getattr(owner, name))

    def method(self: Any, *args: Any, **kwargs: Any) -> Any:
        return timed(self, *args, **kwargs)

    setattr(owner, name, method)
    return timed


@dataclass
class TickSample:
    total_ns: int
    import_ns: int  # importer.import_glb inside this call
    gltf_ns: int  # bpy.ops.import_scene.gltf inside this call
    warm_ns: int = 0  # conversions.keep_warm (a converter started ahead) inside this call
    preempted: bool = False  # the system ran something else on the main thread's CPU meanwhile
    waited: int = 0  # times the call gave up its CPU by itself (blocked)
    gc_ns: int = 0  # Python's garbage collector inside this call
    results: int = 0  # worker results the call applied
    cpu_ns: int = 0  # the main thread's CPU time in the call (less than total_ns: it waited, or lost its CPU)
    phases_ns: dict[str, int] = field(default_factory=dict)  # ImportClock.phases inside this call


@dataclass
class TickDriver:
    """Calls ``engine.timer.tick`` the way Blender's timer would and times each call."""

    addon: ModuleType
    clock: ImportClock
    samples: list[TickSample] = field(default_factory=list)
    stopped_early: int = 0  # tick said "no more calls" while work was still expected
    gc_clock: GcClock = field(default_factory=GcClock)

    def run(self, until: Callable[[], bool], timeout_s: float) -> bool:
        with self.gc_clock:
            return self._run(until, timeout_s)

    def _run(self, until: Callable[[], bool], timeout_s: float) -> bool:
        timer = self.addon.engine.timer
        applied = [0]
        apply_update, apply_call = timer.apply_update, timer.apply_call

        def counted(function: Callable[[Any], Any]) -> Callable[[Any], Any]:
            def call(result: Any) -> Any:
                applied[0] += 1
                return function(result)
            return call

        timer.apply_update, timer.apply_call = counted(apply_update), counted(apply_call)
        try:
            return self._loop(timer, until, timeout_s, applied)
        finally:
            timer.apply_update, timer.apply_call = apply_update, apply_call

    def _loop(self, timer: Any, until: Callable[[], bool], timeout_s: float, applied: list[int]) -> bool:
        deadline = time.monotonic() + timeout_s
        next_at = time.perf_counter()
        while time.monotonic() < deadline:
            pause = next_at - time.perf_counter()
            if pause > 0:
                time.sleep(pause)
            import_before, gltf_before, warm_before = self.clock.step.ns, self.clock.gltf.ns, self.clock.warm.ns
            phases_before = self.clock.phase_ns()
            switched, waited, gc_before, applied[0] = preemptions(), waits(), self.gc_clock.ns, 0
            cpu_before = time.thread_time_ns()
            started = time.perf_counter_ns()
            interval = timer.tick()
            elapsed = time.perf_counter_ns() - started
            cpu = time.thread_time_ns() - cpu_before
            self.samples.append(TickSample(elapsed, self.clock.step.ns - import_before,
                                           self.clock.gltf.ns - gltf_before, self.clock.warm.ns - warm_before,
                                           preempted=preemptions() != switched, waited=waits() - waited,
                                           gc_ns=self.gc_clock.ns - gc_before, results=applied[0], cpu_ns=cpu,
                                           phases_ns={name: ns - phases_before[name]
                                                      for name, ns in self.clock.phase_ns().items()}))
            if until():
                return True
            if interval is None:
                self.stopped_early += 1
                interval = timer.BUSY_INTERVAL_S
            next_at = time.perf_counter() + interval
        return False


def _records(addon: ModuleType, ids: list[str]) -> list[Any]:
    book = addon.engine.history.book()
    return [book.get(task) for task in ids]


def _all_terminal(addon: ModuleType, ids: list[str]) -> bool:
    return all(rec is not None and rec.state.is_terminal for rec in _records(addon, ids))


def _any_running(addon: ModuleType, ids: list[str]) -> bool:
    return any(addon.engine.state.is_running(task) for task in ids)


# -- 2. main-thread cost ---------------------------------------------------------------


def _history_entries(addon: ModuleType, count: int) -> list[dict[str, Any]]:
    """``count`` finished tasks as the add-on saves them (weeks of use): files
    in its folder, imported objects, import options, half of them generations."""
    files, tasks = addon.engine.files, addon.core.tasks
    now = time.time()
    entries = []
    for n in range(count):
        task = task_id(10_000 + n)
        rec = tasks.TaskRecord(task, state=tasks.TaskState.DONE, started_at=now - 86400 + n,
                               finished_at=now - 86300 + n, result_path=str(files.result_path(task)),
                               cover_path=str(files.cover_path(task)), imported_objects=[f"Hitem3D_{n:05d}"],
                               model="hitem3dv2.0")
        if n % 2:
            rec.generation = {"request_type": 3, "model": "hitem3dv2.0", "resolution": "1536", "face": 1_000_000,
                              "pbr": False, "image": f"/home/artist/refs/chair {n}.png", "views": {},
                              "mesh_task_id": "", "mesh": "", "mesh_name": "", "mesh_box": [], "shading": None}
        entries.append(rec.to_dict())
    return entries


def _write_journal(addon: ModuleType, count: int) -> Path:
    """A journal of ``count`` finished tasks in the add-on's own form (one per line)."""
    path = addon.engine.files.journal_path()
    addon.core.journal.write(path, _history_entries(addon, count))
    return path


def _fill_history(addon: ModuleType, count: int, in_journal: int | None = None) -> None:
    """Give the task list ``count`` finished tasks, as weeks of use would, by
    writing ``in_journal`` (default ``count``) into the journal and letting
    the add-on read it again."""
    addon.ui.session.shutdown()
    _write_journal(addon, in_journal or count)
    addon.ui.session.connect()  # as enabling the add-on does: the journal is read, the list filled
    if len(addon.engine.history.book()) != count:
        raise RuntimeError(f"the add-on read {len(addon.engine.history.book())} tasks from the journal, not {count}")


def bench_main_thread(addon: ModuleType, quick: bool, *, history: int = 0,
                      in_journal: int | None = None) -> dict[str, Any]:
    """20 tasks polling and one big download (then its import), every tick timed.

    Every task is polled at its interval (waiting tasks hold no worker).
    ``history`` puts that many finished tasks in the list first, from a
    journal of ``in_journal`` (default ``history``) tasks.
    """
    import bpy

    size = 50_000_000 if quick else 200_000_000
    pollers = 20
    poll_interval_s = 1.0
    rate = 25e6  # bytes/s (200 Mbit/s): the download lasts seconds, as on a good connection
    model = assets.padded_glb(assets.realistic_glb(quick=quick), size)
    if history:
        _fill_history(addon, history, in_journal)
    slots = addon.core.jobs.DEFAULT_MAX_WORKERS
    clock = ImportClock(addon)
    driver = TickDriver(addon, clock)
    download = task_id(1)
    polling = [task_id(100 + n) for n in range(pollers)]
    with SimulatorProcess() as sim:
        sim.set_file_rate(rate)
        point_prefs_at(sim, poll_interval_s)
        sim.add_task(download, ["processing", "success"], glb=model)
        for task in polling:
            sim.add_task(task, ["queueing", "queueing", "processing"])  # the last state repeats
        # The download first, so it has a worker whatever the number of slots.
        bpy.ops.hitem3d.import_task(task_id=download)
        bpy.ops.hitem3d.import_task(task_id=" ".join(polling))
        started = time.monotonic()
        log(f"main thread: {pollers} tasks polling every {poll_interval_s:g} s "
            f"({slots} API workers), {size / 1e6:.0f} MB downloading at {rate / 1e6:.0f} MB/s, then its import; "
            f"{history} finished tasks in the list")
        if not driver.run(lambda: _all_terminal(addon, [download]), timeout_s=600):
            raise RuntimeError("the download task did not finish in 10 minutes")
        # Keep the pollers going a while after the import, then cancel them all.
        driver.run(lambda: time.monotonic() - started > (6 if quick else 20), timeout_s=60)
        cancelled_at = time.time()
        for task in polling:
            bpy.ops.hitem3d.cancel_task(task_id=task)
        driver.run(lambda: _all_terminal(addon, polling) and not _any_running(addon, polling), timeout_s=60)
        requests = sim.requests()
    rec = addon.engine.history.book().get(download)
    # Tasks that polled in the last three intervals before the cancel: polling at once.
    recent = {r["query"].get("task_id") for r in requests if r["path"].endswith("/query-task")
              and cancelled_at - 3 * poll_interval_s <= r["time"] < cancelled_at}
    samples = driver.samples
    without_step = [s.total_ns - s.import_ns for s in samples]
    without_gltf = [s.total_ns - s.gltf_ns for s in samples]
    without_start = [s.total_ns - s.import_ns - s.warm_ns for s in samples]
    running = [s.total_ns - s.import_ns - s.warm_ns for s in samples if not s.preempted]
    if history:
        # What the list and the tasks cost: the converter's start has its own
        # benchmark and limit (converter_start), and the import step its own.
        # NOTE: the limit (1 ms) is shorter than a time slice the system gives
        # another process: judged on the calls it did not interrupt, with
        # every call beside (common.preemptions).
        worst = round(max(running) / 1e6, 3) if running else None
        verdict = target(worst, LONG_HISTORY_LIMIT_MS)
    else:
        worst = round(max(without_step) / 1e6, 3) if without_step else None
        verdict = target(worst, MAIN_THREAD_LIMIT_MS)
    return {
        "scenario": {
            "tasks_polling": pollers,
            "api_workers": slots,
            "tasks_polling_at_once": len(recent - {download}),
            "finished_tasks_in_list": history,
            "tasks_in_the_journal_read": in_journal or history,
            "journal_max_finished_tasks": addon.core.journal.MAX_ENTRIES,
            "poll_interval_s": poll_interval_s,
            "download_bytes": size,
            "download_rate_limit_bytes_per_s": rate,
            "download_task_state": rec.state.value if rec else None,
            "model_triangles": assets.glb_stats(assets.realistic_glb(quick=quick))["triangles"],
        },
        "tick_excluding_import_step": summary_ms(without_step),
        "tick_excluding_gltf_operator_only": summary_ms(without_gltf),
        "tick_including_everything": summary_ms([s.total_ns for s in samples]),
        # Starting a converter ahead (a process spawn) inside a timer call, and the calls without it.
        "converter_start_in_tick": summary_ms([s.warm_ns for s in samples if s.warm_ns > 1_000_000]),
        "tick_excluding_import_step_and_converter_start": summary_ms(without_start),
        "tick_excluding_import_step_and_converter_start_not_preempted": summary_ms(running),
        "calls_preempted": sum(1 for s in samples if s.preempted),
        # The five longest calls the limit is judged on, with what may explain them.
        "longest_not_preempted": [
            {"ms": round((s.total_ns - s.import_ns - s.warm_ns) / 1e6, 3), "results": s.results,
             "waited": s.waited, "gc_ms": round(s.gc_ns / 1e6, 3), "cpu_ms": round(s.cpu_ns / 1e6, 3),
             "phases_ms": {name: round(ns / 1e6, 3) for name, ns in s.phases_ns.items() if ns >= 50_000}}
            for s in sorted((s for s in samples if not s.preempted),
                            key=lambda s: s.total_ns - s.import_ns - s.warm_ns, reverse=True)[:5]],
        "import_step_ms": round(clock.step.ns / 1e6, 1),
        "gltf_operator_ms": round(clock.gltf.ns / 1e6, 1),
        "placement_ms": round((clock.step.ns - clock.gltf.ns) / 1e6, 1),
        "timer_stopped_early": driver.stopped_early,
        "target_max_ms": verdict,
    }


# -- 4. time to scene ----------------------------------------------------------------------


def _plain_download(url: str, dest: Path) -> tuple[float, str]:
    """Seconds to fetch ``url`` to ``dest`` with curl (a plain Python copy without curl)."""
    dest.unlink(missing_ok=True)
    curl = shutil.which("curl")
    started = time.perf_counter()
    if curl:
        subprocess.run([curl, "-s", "-f", "-o", str(dest), url], check=True)
        return time.perf_counter() - started, "curl -o"
    import urllib.request

    with urllib.request.urlopen(url) as response, dest.open("wb") as file:  # noqa: S310 - loopback
        shutil.copyfileobj(response, file, 1024 * 1024)
    return time.perf_counter() - started, "urllib + shutil.copyfileobj"


def bench_time_to_scene(addon: ModuleType, quick: bool) -> dict[str, Any]:
    """Success answer to objects in the scene with the import in this process,
    as in background mode and the command line (a window's converter path
    has its own figure: ``conversion``), against curl plus Blender's importer."""
    import bpy

    sys.path.insert(0, str(REPO_ROOT))
    from tests.support.glb_factory import cached_glb

    # NOTE: what we add around Blender's importer, as the row says: with the
    # converter process the figure measured the converter's start instead.
    addon.engine.conversions.USE_CHILD_PROCESS = False
    model = assets.realistic_glb(quick=quick)
    rounds = 2 if quick else 4
    clock = ImportClock(addon)
    workdir = Path(tempfile.mkdtemp(prefix="hitem3d-bench-scene-"))
    ours: list[dict[str, float]] = []
    plain: list[dict[str, float]] = []
    methods: set[str] = set()
    with SimulatorProcess() as sim:
        point_prefs_at(sim, 0.5)
        # Warm up: the glTF add-on's modules load on first use, for both paths alike.
        warm = task_id(2)
        sim.add_task(warm, ["success"], glb=cached_glb(objects=2))
        bpy.ops.hitem3d.import_task(task_id=warm)
        TickDriver(addon, clock).run(lambda: _all_terminal(addon, [warm]), timeout_s=120)
        # ...and the first import of a big model is slower than the next ones.
        bpy.ops.import_scene.gltf(filepath=str(model))
        clear_scene()
        def plain_round(number: int) -> None:
            """The same file, downloaded then imported, nothing else."""
            probe = task_id(10 + number)
            sim.add_task(probe, ["success"], glb=model)
            download_s, method = _plain_download(sim.model_url(probe), workdir / "plain.glb")
            methods.add(method)
            started = time.perf_counter()
            result = bpy.ops.import_scene.gltf(filepath=str(workdir / "plain.glb"))
            import_s = time.perf_counter() - started
            if "FINISHED" not in result:
                raise RuntimeError(f"plain glTF import returned {result}")
            plain.append({"download_s": download_s, "import_s": import_s, "total_s": download_s + import_s})
            clear_scene()
            (workdir / "plain.glb").unlink(missing_ok=True)
            log(f"time to scene: plain download {download_s:.2f} s + import {import_s:.2f} s")

        def our_round(number: int) -> None:
            """From the answer that says success to objects in the scene."""
            task = task_id(20 + number)
            sim.add_task(task, ["processing", "success"], glb=model)
            bpy.ops.hitem3d.import_task(task_id=task)
            driver = TickDriver(addon, clock)
            step_before, gltf_before = clock.step.ns, clock.gltf.ns
            if not driver.run(lambda: _all_terminal(addon, [task]), timeout_s=600):
                raise RuntimeError("the task did not finish in 10 minutes")
            in_scene = time.time()
            rec = addon.engine.history.book().get(task)
            if rec is None or rec.state.value != "done":
                raise RuntimeError(f"task ended {rec.state.value if rec else 'missing'}: {rec.message if rec else ''}")
            queries = sorted(r["time"] for r in sim.requests()
                             if r["path"].endswith("/query-task") and r["query"].get("task_id") == task)
            success_at = queries[1]  # the second answer is the success
            files = [r["time"] for r in sim.requests() if r["path"].endswith(".glb") and r["time"] >= success_at]
            total = in_scene - success_at
            ours.append({
                "total_s": total,
                "import_step_s": (clock.step.ns - step_before) / 1e9,
                "gltf_operator_s": (clock.gltf.ns - gltf_before) / 1e9,
                "success_to_download_request_s": (min(files) - success_at) if files else math.nan,
            })
            log(f"time to scene: ours {total:.2f} s (import step {ours[-1]['import_step_s']:.2f} s)")
            clear_scene()

        for number in range(rounds):
            # Each pair in turn order, so neither side always imports right after the other.
            for run in ((plain_round, our_round) if number % 2 == 0 else (our_round, plain_round)):
                run(number)
    shutil.rmtree(workdir, ignore_errors=True)
    # NOTE: the figure compares the best round of each side: other work on the
    # machine only ever adds time, and Blender's importer alone varies by 15 %
    # between identical imports. The paired ratios are reported beside it.
    ratios = [o["total_s"] / p["total_s"] for o, p in zip(ours, plain)]
    best_ratio = min(o["total_s"] for o in ours) / min(p["total_s"] for p in plain)
    for run in ours:
        # What we add around Blender's importer: poll answer to download, the
        # download, the wait for the timer, placement.
        run["around_gltf_operator_s"] = run["total_s"] - run["gltf_operator_s"]
    return {
        "model": {"file": model.name, **assets.glb_stats(model)},
        "import": "in this process (background mode, the command line)",
        "plain_method": f"{', '.join(sorted(methods))}, then bpy.ops.import_scene.gltf",
        "rounds": rounds,
        "ours": [{key: round(value, 3) for key, value in run.items()} for run in ours],
        "plain": [{key: round(value, 3) for key, value in run.items()} for run in plain],
        "paired_ratios": [round(ratio, 3) for ratio in ratios],
        "median_paired_ratio": round(statistics.median(ratios), 3),
        "target_ratio": target(round(best_ratio, 3), TIME_TO_SCENE_LIMIT),
    }


# -- 5. request economy --------------------------------------------------------------------


def bench_request_economy(addon: ModuleType, quick: bool) -> dict[str, Any]:
    import bpy

    sys.path.insert(0, str(REPO_ROOT))
    from tests.support.glb_factory import cached_glb

    poll_interval_s = 0.5
    sample = cached_glb(objects=2)
    plans: dict[str, list[Any]] = {}
    for n in range(20):
        task = task_id(200 + n)
        if n in (3, 11):
            plans[task] = ["queueing", "processing", "failed"]
        elif n in (5, 15):
            plans[task] = ["queueing"] + ["processing"] * 40  # cancelled by the user
        else:
            plans[task] = ["queueing"] * (1 + n % 3) + ["processing"] * (1 + n % 4) + ["success"]
    cancelled = [task for task, states in plans.items() if len(states) > 20]
    cancel_times: dict[str, float] = {}
    with SimulatorProcess() as sim:
        point_prefs_at(sim, poll_interval_s)
        for task, states in plans.items():
            sim.add_task(task, states, glb=sample)
        bpy.ops.hitem3d.import_task(task_id=" ".join(plans))
        clock = ImportClock(addon)
        driver = TickDriver(addon, clock)
        started = time.monotonic()
        log(f"request economy: {len(plans)} tasks polled every {poll_interval_s:g} s to their end")

        def until() -> bool:
            for task in cancelled:
                rec = addon.engine.history.book().get(task)
                if (task not in cancel_times and rec is not None and rec.state.value == "processing"
                        and time.monotonic() - started > 3):
                    cancel_times[task] = time.time()
                    bpy.ops.hitem3d.cancel_task(task_id=task)
            return _all_terminal(addon, list(plans)) and not _any_running(addon, list(plans))

        if not driver.run(until, timeout_s=300):
            raise RuntimeError("the tasks did not all end in 5 minutes")
        # Anything still arriving after the end counts too.
        time.sleep(2 * poll_interval_s)
        requests = sim.requests()
    api = [r for r in requests if r["path"].startswith("/open-api/")]
    files = [r for r in requests if r["path"].startswith("/files/")]
    per_task: dict[str, Any] = {}
    worst_rate = 0.0
    after_terminal = 0
    too_close = 0
    for task, states in plans.items():
        times = sorted(r["time"] for r in api if r["path"].endswith("/query-task") and r["query"].get("task_id") == task)
        rec = addon.engine.history.book().get(task)
        if task in cancel_times:
            late = sum(1 for moment in times if moment > cancel_times[task])
        else:
            final = next(i for i, state in enumerate(states) if state in ("success", "failed"))
            late = max(0, len(times) - (final + 1))
        gaps = [b - a for a, b in zip(times, times[1:])]
        span = times[-1] - times[0] if times else 0.0
        allowed = math.floor(span / poll_interval_s) + 1
        worst_rate = max(worst_rate, len(times) / allowed if allowed else 0.0)
        after_terminal += late
        too_close += sum(1 for gap in gaps if gap < poll_interval_s)
        per_task[task[-10:]] = {
            "state": rec.state.value if rec else None,
            "queries": len(times),
            "allowed_by_interval": allowed,
            "min_gap_s": round(min(gaps), 3) if gaps else None,
            "after_terminal": late,
        }
    api_connections = sorted({r["connection_id"] for r in api})
    return {
        "scenario": {"tasks": len(plans), "poll_interval_s": poll_interval_s, "failed": 2,
                     "cancelled_by_user": len(cancelled), "max_workers": addon.core.jobs.DEFAULT_MAX_WORKERS},
        "api_requests": len(api),
        "token_requests": sum(1 for r in api if r["path"].endswith("/auth/token")),
        "query_requests": sum(1 for r in api if r["path"].endswith("/query-task")),
        "file_requests": len(files),
        "file_connections": len({r["connection_id"] for r in files}),
        "per_task": per_task,
        # One keep-alive connection per API worker at most: a slow answer never holds the others.
        "target_api_connections": target(len(api_connections), addon.core.jobs.DEFAULT_MAX_WORKERS),
        "target_queries_per_interval": target(round(worst_rate, 3), 1.0),
        "gaps_shorter_than_interval": too_close,
        "target_queries_after_terminal": target(after_terminal, 0),
    }


# -- appends take turns -------------------------------------------------------------------


def bench_appends(addon: ModuleType, quick: bool) -> dict[str, Any]:
    """Two models finish converting at the same moment: each timer call should
    append what fits its budget (one big model) and leave the other to the next."""
    import bpy

    model = assets.realistic_glb(quick=quick)
    clock = ImportClock(addon)
    conversions = addon.engine.conversions
    ids = [task_id(30), task_id(31)]
    with SimulatorProcess() as sim:
        prefs = point_prefs_at(sim, 0.5)
        prefs.max_converters = 2  # both convert at once
        for task in ids:
            sim.add_task(task, ["success"], glb=model)
        bpy.ops.hitem3d.import_task(task_id=" ".join(ids))
        driver = TickDriver(addon, clock)
        log("appends: two models converted in their own processes, then appended at once")
        if not driver.run(lambda: all(conversions.is_converting(task) for task in ids), timeout_s=300):
            raise RuntimeError("the two conversions did not both start")
        # No timer call while they convert: both are done when the next one comes.
        # NOTE: with Python 3.11 the worker process starts converters and says
        # when they end; its word is read here as a timer call's drain would,
        # nothing else applied (from 80a7cfe to 0370f61 this loop waited for
        # ever there, and the benchmark reported an error instead of a figure).
        deadline = time.monotonic() + 600
        while len(conversions.finished()) < len(ids):
            if time.monotonic() > deadline:
                raise RuntimeError("the conversions did not end in 10 minutes")
            runner = addon.engine.state.current.runner
            if runner is not None:
                runner.wait_for(lambda: False, 0.0)
            time.sleep(0.05)
        calls: list[dict[str, Any]] = []
        timer = addon.engine.timer
        for _ in range(5):
            appended_before, appends_before = clock.appended.ns, clock.appended.calls
            started = time.perf_counter_ns()
            timer.tick()
            elapsed = time.perf_counter_ns() - started
            calls.append({"ms": round(elapsed / 1e6, 1), "appended": clock.appended.calls - appends_before,
                          "append_ms": round((clock.appended.ns - appended_before) / 1e6, 1)})
            if _all_terminal(addon, ids):
                break
            time.sleep(timer.BUSY_INTERVAL_S)
        prefs.max_converters = prefs.bl_rna.properties["max_converters"].default
    states = [rec.state.value if rec else None for rec in _records(addon, ids)]
    with_appends = [call for call in calls if call["appended"]]
    return {
        "model": {"file": model.name, **assets.glb_stats(model)},
        "states": states,
        "import_budget_ms": round(addon.engine.timer.IMPORT_BUDGET_S * 1000, 1),
        "timer_calls": calls,
        "longest_call_ms": max(call["ms"] for call in calls),
        "longest_append_ms": max((call["append_ms"] for call in with_appends), default=None),
        # Each append of this model takes longer than the budget: one a call.
        "target_appends_per_call": target(max(call["appended"] for call in calls), 1),
    }


# -- enabling on a long journal ----------------------------------------------------------------


def bench_enable(addon: ModuleType, quick: bool) -> dict[str, Any]:
    """Enable the add-on (register, read the journal, fill the list) on
    journals of growing length, and time the first timer call after it."""
    import addon_utils

    sizes = (0, 500, 10_000, OVERSIZED_JOURNAL)
    runs = []
    for size in sizes:
        addon_utils.disable(ADDON_MODULE, default_set=True)
        path = _write_journal(addon, size) if size else None
        journal_bytes = path.stat().st_size if path is not None else 0
        started = time.perf_counter()
        addon_utils.enable(ADDON_MODULE, default_set=True)
        enable_s = time.perf_counter() - started
        addon = sys.modules[ADDON_MODULE]
        addon.engine.state.runs_to_end = lambda: False
        kept = len(addon.engine.history.book())
        tick_started = time.perf_counter_ns()
        addon.engine.timer.tick()  # writes the journal again without what was dropped (off the main thread)
        first_tick_ms = (time.perf_counter_ns() - tick_started) / 1e6
        addon.engine.state.runner().flush_writes(30.0)
        written = len(addon.core.journal.load(addon.engine.files.journal_path()).records) if size else 0
        log(f"enable: journal of {size:,} tasks ({journal_bytes / 1e6:.1f} MB): {enable_s * 1000:.0f} ms, "
            f"{kept} kept; first timer call {first_tick_ms:.2f} ms")
        runs.append({"journal_tasks": size, "journal_mb": round(journal_bytes / 1e6, 1),
                     "enable_ms": round(enable_s * 1000, 1), "tasks_kept": kept, "journal_tasks_after": written,
                     "first_tick_ms": round(first_tick_ms, 3)})
    largest = runs[-1]
    return {
        "runs": runs,
        "journal_max_finished_tasks": addon.core.journal.MAX_ENTRIES,
        "enable_ms_empty_journal": runs[0]["enable_ms"],
        "target_enable_100000_s": target(round(largest["enable_ms"] / 1000, 3), ENABLE_LIMIT_S),
    }


BENCHMARKS: dict[str, Callable[[ModuleType, bool], dict[str, Any]]] = {
    "main_thread": bench_main_thread,
    "main_thread_long_history": functools.partial(bench_main_thread, history=500),
    # The journal's maximum of finished tasks, read from a journal 200 times longer.
    "main_thread_oversized_journal": lambda addon, quick: bench_main_thread(
        addon, quick, history=addon.core.journal.MAX_ENTRIES, in_journal=OVERSIZED_JOURNAL),
    "appends": bench_appends,
    "enable": bench_enable,
    "time_to_scene": bench_time_to_scene,
    "request_economy": bench_request_economy,
    "scale": lambda addon, quick: scale_bench.bench_scale(addon, quick),
    "fairness": lambda addon, quick: scale_bench.bench_fairness(addon, quick),
    "converter_start": converter_bench.bench_converter_start,
}


class _Errors(logging.Handler):
    """The add-on's errors during a benchmark. A timer call that raises is
    logged and cut short ("Unexpected error in the Hitem3D timer"): its time
    would look good and measure nothing (the scale benchmark's own wrapper
    made every call do so from commit fcbd951 to 69ff5c8)."""

    def __init__(self) -> None:
        super().__init__(logging.ERROR)
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(record.getMessage())


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.blender_bench")
    parser.add_argument("name", choices=sorted(BENCHMARKS))
    parser.add_argument("--zip", type=Path, required=True, help="the built extension zip")
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    user = isolate()
    with JsonStdout() as out:
        try:
            addon = install(args.zip)
            errors = _Errors()
            logging.getLogger(addon.__name__).addHandler(errors)
            result = BENCHMARKS[args.name](addon, args.quick)
            addon.ui.session.shutdown()
            if errors.messages:
                raise RuntimeError(f"the add-on logged {len(errors.messages)} error(s) during the benchmark, "
                                   f"so its figures measure something else; the first: {errors.messages[0]}")
        finally:
            shutil.rmtree(user, ignore_errors=True)
        out.emit(result)
    # NOTE: leave without interpreter teardown: bpy as a module can crash there
    # after a glTF import, and the result is already out.
    sys.stderr.flush()
    os._exit(0)


if __name__ == "__main__":
    sys.exit(main())
