"""The runner's scheduling: waiting tasks hold no thread, every task is polled,
finished ones never wait behind running ones, one slow answer holds only its
task, and every wait gives way to a cancel within a second."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest

from hitem3d_blender.core.jobs import (
    DEFAULT_MAX_WORKERS,
    DEFAULT_TRANSFER_WORKERS,
    JobRunner,
    RequestBudget,
    Result,
)
from hitem3d_blender.core.pipeline import ImportJob
from hitem3d_blender.core.tasks import TaskState, TaskUpdate
from tests.support.simulator import Fault, Hitem3DSimulator
from tests.core.test_jobs import drain_until, import_job
from tests.core.test_jobs import sim_settings as settings_of

S = TaskState
QUERY = "/open-api/v1/query-task"


def task(n: int) -> str:
    return f"{n:032x}.jjewelry-aigc-api.Sched{n:05d}"


def job(task_id: str, folder: Path, poll_interval_s: float = 0.1) -> ImportJob:
    return import_job(task_id, folder, poll_interval_s)


def states(results: list[Result], task_id: str) -> list[TaskState]:
    return [r.state for r in results if isinstance(r, TaskUpdate) and r.task_id == task_id]


def query_times(sim: Hitem3DSimulator, task_id: str) -> list[float]:
    return [r.time for r in sim.requests if r.path == QUERY and r.query.get("task_id") == task_id]


def our_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name.startswith("hitem3d-") and t.name != "hitem3d-simulator"]


def polls(sim: Hitem3DSimulator, task_id: str) -> int:
    return sum(1 for r in list(sim.requests) if r.path.endswith("/query-task") and r.query.get("task_id") == task_id)


def test_a_poll_that_reads_as_the_last_is_not_sent_to_blender(sim: Hitem3DSimulator, tmp_path: Path) -> None:
    # Blender's main thread pays for what changed: five polls of a task still
    # processing are one update; a change of progress is another.
    runner = JobRunner(checks_per_s=None)
    task_id = task(1)
    sim.add_task(task_id, ["processing"] * 5 + [{"state": "processing", "progress": 40}] * 5 + ["processing"])
    try:
        runner.start_import(job(task_id, tmp_path, poll_interval_s=0.05), settings_of(sim))
        results = drain_until(runner, lambda r: polls(sim, task_id) >= 12)
        assert [(u.state, u.progress) for u in results if u.task_id == task_id] == [
            (S.PROCESSING, None), (S.PROCESSING, 0.4), (S.PROCESSING, None)]
    finally:
        runner.shutdown()


def test_tasks_waiting_between_polls_hold_no_thread(sim: Hitem3DSimulator, tmp_path: Path) -> None:
    runner = JobRunner(checks_per_s=None)
    ids = [task(n) for n in range(40)]
    try:
        for task_id in ids:
            sim.add_task(task_id, ["processing"])
            runner.start_import(job(task_id, tmp_path, poll_interval_s=0.2), settings_of(sim))
        # Each task checked twice (an answer that reads as the last one is not sent on: count at the service).
        drain_until(runner, lambda r: all(polls(sim, t) >= 2 for t in ids))
        assert len(our_threads()) <= DEFAULT_MAX_WORKERS + DEFAULT_TRANSFER_WORKERS + 1  # and the writer
    finally:
        assert runner.shutdown() == []


def test_finished_tasks_download_while_many_others_are_still_processing(sim: Hitem3DSimulator,
                                                                        tmp_path: Path) -> None:
    # Paste 16 IDs still processing and 4 finished: the 4 arrive at once.
    runner = JobRunner()
    processing = [task(n) for n in range(16)]
    finished = [task(100 + n) for n in range(4)]
    try:
        for task_id in processing:
            sim.add_task(task_id, ["processing"])
            runner.start_import(job(task_id, tmp_path, poll_interval_s=1.0), settings_of(sim))
        for task_id in finished:
            sim.add_task(task_id, ["success"])
            runner.start_import(job(task_id, tmp_path, poll_interval_s=1.0), settings_of(sim))
        drain_until(runner, lambda r: all(S.DOWNLOADED in states(r, t) for t in finished), timeout_s=3.0)
    finally:
        runner.shutdown()


def test_every_running_task_is_polled_at_its_interval(sim: Hitem3DSimulator, tmp_path: Path) -> None:
    runner = JobRunner(checks_per_s=None)
    ids = [task(n) for n in range(30)]
    interval = 0.3
    try:
        for task_id in ids:
            sim.add_task(task_id, ["processing"])
            runner.start_import(job(task_id, tmp_path, poll_interval_s=interval), settings_of(sim))
        time.sleep(2.0)
    finally:
        runner.shutdown()
    for task_id in ids:
        times = query_times(sim, task_id)
        gaps = [b - a for a, b in zip(times, times[1:])]
        assert len(times) >= 5, task_id
        assert max(gaps) < interval + 0.25, (task_id, gaps)


def test_the_request_budget_checks_every_task_equally_often(sim: Hitem3DSimulator, tmp_path: Path) -> None:
    # 20 tasks every 0.05 s would ask 400 times a second: the budget allows 40.
    runner = JobRunner(checks_per_s=40.0)
    ids = [task(n) for n in range(20)]
    try:
        for task_id in ids:
            sim.add_task(task_id, ["processing"])
            runner.start_import(job(task_id, tmp_path, poll_interval_s=0.05), settings_of(sim))
        time.sleep(2.0)
    finally:
        runner.shutdown()
    counts = [len(query_times(sim, task_id)) for task_id in ids]
    assert sum(counts) <= 40 * 2.0 + 40 + 5  # the rate, its first burst, a little slack
    assert max(counts) - min(counts) <= 2, counts


def test_a_stalled_answer_holds_only_its_own_task(sim: Hitem3DSimulator, tmp_path: Path) -> None:
    runner = JobRunner()
    slow, others = task(1), [task(2), task(3), task(4)]
    for task_id in [slow, *others]:
        sim.add_task(task_id, ["processing"])
    settings = settings_of(sim)
    runner.client_for(settings).fetch_token()  # the stall hits the first status answer, not the token
    sim.inject(QUERY, Fault.delay(6.0))
    try:
        runner.start_import(job(slow, tmp_path, poll_interval_s=0.2), settings)
        deadline = time.monotonic() + 3
        while not query_times(sim, slow) and time.monotonic() < deadline:
            time.sleep(0.01)
        for task_id in others:
            runner.start_import(job(task_id, tmp_path, poll_interval_s=0.2), settings)
        time.sleep(1.5)
        for task_id in others:
            assert len(query_times(sim, task_id)) >= 5, task_id
        # Cancel acts on the stalled one at once.
        begun = time.monotonic()
        runner.cancel(slow)
        results = drain_until(runner, lambda r: S.CANCELLED in states(r, slow), timeout_s=1.0)
        assert time.monotonic() - begun < 1.0
        assert states(results, slow)[-1] is S.CANCELLED
    finally:
        runner.shutdown()


def test_cancel_of_a_task_waiting_for_its_next_poll_reports_at_once(sim: Hitem3DSimulator,
                                                                     tmp_path: Path) -> None:
    runner = JobRunner()
    sim.add_task(task(1), ["processing"])
    try:
        runner.start_import(job(task(1), tmp_path, poll_interval_s=30.0), settings_of(sim))
        drain_until(runner, lambda r: S.PROCESSING in states(r, task(1)))
        begun = time.monotonic()
        runner.cancel(task(1))
        [update] = [r for r in runner.drain() if isinstance(r, TaskUpdate)]
        assert update.state is S.CANCELLED
        assert time.monotonic() - begun < 0.1
        assert not runner.busy
    finally:
        runner.shutdown()


def test_cancel_of_a_task_waiting_for_a_worker_reports_at_once(sim: Hitem3DSimulator, tmp_path: Path) -> None:
    runner = JobRunner(max_workers=1)
    release = threading.Event()
    sim.add_task(task(1), ["processing"])
    try:
        runner.start_call("busy", settings_of(sim), lambda client: release.wait(5))
        runner.start_import(job(task(1), tmp_path), settings_of(sim))
        time.sleep(0.1)
        runner.cancel(task(1))
        assert [r.state for r in runner.drain() if isinstance(r, TaskUpdate)] == [S.CANCELLED]
        assert not runner.is_running(task(1))
    finally:
        release.set()
        runner.shutdown()


def test_cancel_while_another_worker_fetches_the_token_acts_within_a_second(sim: Hitem3DSimulator,
                                                                             tmp_path: Path) -> None:
    runner = JobRunner()
    sim.inject("/open-api/v1/auth/token", Fault.delay(4.0))
    for n in (1, 2):
        sim.add_task(task(n), ["processing"])
    try:
        runner.start_import(job(task(1), tmp_path), settings_of(sim))
        time.sleep(0.3)  # task 1 is waiting for the token answer
        runner.start_import(job(task(2), tmp_path), settings_of(sim))
        time.sleep(0.3)  # task 2 waits for task 1's token request
        begun = time.monotonic()
        runner.cancel(task(2))
        drain_until(runner, lambda r: S.CANCELLED in states(r, task(2)), timeout_s=1.0)
        assert time.monotonic() - begun < 1.0
    finally:
        runner.shutdown()


def test_a_task_started_again_after_a_cancel_is_a_new_run(sim: Hitem3DSimulator, tmp_path: Path) -> None:
    runner = JobRunner()
    sim.add_task(task(1), ["processing"])
    try:
        first = runner.start_import(job(task(1), tmp_path, poll_interval_s=30.0), settings_of(sim))
        runner.cancel(task(1))
        second = runner.start_import(job(task(1), tmp_path, poll_interval_s=30.0), settings_of(sim))
        assert second != first and runner.is_running(task(1))
        results = drain_until(runner, lambda r: any(isinstance(u, TaskUpdate) and u.run == second for u in r))
        assert {u.run for u in results if isinstance(u, TaskUpdate) and u.state is S.CANCELLED} == {first}
    finally:
        runner.shutdown()


def test_the_budget_allows_its_burst_then_its_rate() -> None:
    now = [100.0]
    budget = RequestBudget(10.0, burst=3.0, clock=lambda: now[0])
    assert [budget.take() for _ in range(3)] == [0.0, 0.0, 0.0]
    assert budget.take() == pytest.approx(0.1)
    now[0] += 0.1
    assert budget.take() == 0.0
