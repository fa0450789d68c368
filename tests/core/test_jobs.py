"""JobRunner, the one owner of worker threads, against the local simulator."""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, Protocol

import pytest

from hitem3d_blender.core.errors import InvalidCredentials
from hitem3d_blender.core.jobs import CallResult, JobRunner, Result
from hitem3d_blender.core.pipeline import ImportJob
from hitem3d_blender.core.settings import ApiSettings
from hitem3d_blender.core.tasks import TaskRecord, TaskState, TaskUpdate
from tests.support.glb_factory import minimal_glb_bytes
from tests.support.simulator import Fault, Hitem3DSimulator, StateEntry

S = TaskState
GLB = minimal_glb_bytes()
SETTINGS = ApiSettings("https://api.hitem3d.invalid", "id", "secret")
TASK_A = "aaaaaaaa000000000000000000000000.jjewelry-aigc-api.AAAA"
TASK_B = "bbbbbbbb000000000000000000000000.jjewelry-aigc-api.BBBB"
TASK_C = "cccccccc000000000000000000000000.jjewelry-aigc-api.CCCC"


@pytest.fixture
def runner() -> Iterator[JobRunner]:
    instance = JobRunner()
    yield instance
    instance.shutdown()


def sim_settings(sim: Hitem3DSimulator) -> ApiSettings:
    return ApiSettings(sim.base_url, sim.client_id, sim.client_secret)


def import_job(task_id: str, folder: Path, poll_interval_s: float = 0.01) -> ImportJob:
    return ImportJob(task_id=task_id, dest=folder / f"{task_id}.glb", poll_interval_s=poll_interval_s,
                     timeout_s=30.0, download_timeout_s=10.0)


class Drains(Protocol):
    def drain(self, limit: int = 1000) -> list[Result]: ...


def drain_until(runner: Drains, done: Callable[[list[Result]], bool], timeout_s: float = 3.0, *,
                rest: bool = False) -> list[Result]:
    """Results of ``runner`` (a ``JobRunner`` or a ``WorkerProcess``) until
    ``done`` says so; ``rest``: then whatever else has arrived too."""
    results: list[Result] = []
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        results.extend(runner.drain())
        if done(results):
            while rest and (more := runner.drain()):  # a drain takes at most 1,000
                results.extend(more)
            return results
        time.sleep(0.005)
    raise AssertionError(f"timed out; results so far: {results}")


def updates_for(results: list[Result], task_id: str) -> list[TaskUpdate]:
    return [r for r in results if isinstance(r, TaskUpdate) and r.task_id == task_id]


def finished(*task_ids: str) -> Callable[[list[Result]], bool]:
    def check(results: list[Result]) -> bool:
        return all(
            any(u.state in (S.DOWNLOADED, S.FAILED, S.CANCELLED) for u in updates_for(results, t)) for t in task_ids
        )

    return check


def calls_done(*keys: str) -> Callable[[list[Result]], bool]:
    return lambda results: {r.key for r in results if isinstance(r, CallResult)} >= set(keys)


def call_result(results: list[Result], key: str) -> CallResult:
    (result,) = [r for r in results if isinstance(r, CallResult) and r.key == key]
    return result


def worker_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name.startswith("hitem3d-") and t.name != "hitem3d-simulator"]


# -- calls ------------------------------------------------------------------------------------


def test_start_call_delivers_the_value(runner: JobRunner) -> None:
    runner.start_call("balance", SETTINGS, lambda client: 42.5)
    result = call_result(drain_until(runner, calls_done("balance")), "balance")
    assert result == CallResult("balance", value=42.5)
    assert result.ok


def test_start_call_passes_a_client_for_the_settings(runner: JobRunner) -> None:
    runner.start_call("who", SETTINGS, lambda client: client.settings)
    assert call_result(drain_until(runner, calls_done("who")), "who").value is SETTINGS


def test_start_call_delivers_a_hitem3d_error_as_its_message(runner: JobRunner) -> None:
    def call(client: Any) -> None:
        raise InvalidCredentials()

    runner.start_call("connect", SETTINGS, call)
    result = call_result(drain_until(runner, calls_done("connect")), "connect")
    assert not result.ok
    assert result.error == InvalidCredentials().message
    assert result.value is None


def test_start_call_hides_an_unexpected_error_behind_a_generic_message(runner: JobRunner) -> None:
    def call(client: Any) -> None:
        raise KeyError("internal detail")

    runner.start_call("connect", SETTINGS, call)
    result = call_result(drain_until(runner, calls_done("connect")), "connect")
    assert str(result.error).startswith("Unexpected error")
    assert "internal detail" not in str(result.error)


def test_same_settings_share_one_client(runner: JobRunner) -> None:
    twin = ApiSettings(SETTINGS.base_url, SETTINGS.client_id, SETTINGS.client_secret)
    assert runner.client_for(SETTINGS) is runner.client_for(twin)
    assert runner.client_for(SETTINGS) is not runner.client_for(ApiSettings(SETTINGS.base_url, "other", "x"))


def test_jobs_run_concurrently(runner: JobRunner) -> None:
    barrier = threading.Barrier(3, timeout=2)

    def call(client: Any) -> str:
        barrier.wait()  # only passes when all three run at the same time
        return "met"

    for key in ("one", "two", "three"):
        runner.start_call(key, SETTINGS, call)
    results = drain_until(runner, calls_done("one", "two", "three"))
    assert [call_result(results, k).value for k in ("one", "two", "three")] == ["met"] * 3


def test_max_workers_limits_concurrent_jobs() -> None:
    runner = JobRunner(max_workers=1)
    release, second_started = threading.Event(), threading.Event()
    try:
        runner.start_call("first", SETTINGS, lambda client: release.wait(3))
        runner.start_call("second", SETTINGS, lambda client: second_started.set())
        assert not second_started.wait(0.3)
        release.set()
        assert second_started.wait(2)
        drain_until(runner, calls_done("first", "second"))
    finally:
        release.set()
        assert runner.shutdown() == []


def test_second_start_of_a_running_key_is_refused(runner: JobRunner) -> None:
    release = threading.Event()
    runner.start_call("k", SETTINGS, lambda client: release.wait(3))
    assert runner.is_running("k")
    with pytest.raises(RuntimeError, match="already running"):
        runner.start_call("k", SETTINGS, lambda client: "second")
    release.set()
    results = drain_until(runner, calls_done("k"))
    time.sleep(0.05)
    results += runner.drain()
    assert [r.value for r in results if isinstance(r, CallResult)] == [True]


def test_a_key_can_start_again_after_it_finished(runner: JobRunner) -> None:
    runner.start_call("k", SETTINGS, lambda client: 1)
    drain_until(runner, calls_done("k"))
    deadline = time.monotonic() + 2
    while runner.is_running("k") and time.monotonic() < deadline:
        time.sleep(0.005)
    runner.start_call("k", SETTINGS, lambda client: 2)
    assert call_result(drain_until(runner, calls_done("k")), "k").value == 2


def test_busy_while_a_job_runs(runner: JobRunner) -> None:
    release = threading.Event()
    assert not runner.busy
    runner.start_call("k", SETTINGS, lambda client: release.wait(3))
    assert runner.busy
    release.set()
    drain_until(runner, calls_done("k"))
    deadline = time.monotonic() + 2
    while runner.busy and time.monotonic() < deadline:
        time.sleep(0.005)
    assert not runner.busy


def test_drain_of_an_empty_queue_returns_at_once(runner: JobRunner) -> None:
    begun = time.monotonic()
    assert runner.drain() == []
    # Generous for a loaded CI machine; what it rules out is a blocking get().
    assert time.monotonic() - begun < 0.5


def test_drain_respects_its_limit(runner: JobRunner) -> None:
    for key in ("a1", "a2", "a3"):
        runner.start_call(key, SETTINGS, lambda client: None)
    deadline = time.monotonic() + 2
    while runner.busy and time.monotonic() < deadline:
        time.sleep(0.005)
    first = runner.drain(limit=2)
    rest = runner.drain()
    assert len(first) == 2 and len(rest) == 1
    assert {r.key for r in first + rest if isinstance(r, CallResult)} == {"a1", "a2", "a3"}


# -- imports against the simulator -------------------------------------------------------------


def test_imports_run_concurrently_and_drain_in_order_per_task(
    runner: JobRunner, sim: Hitem3DSimulator, tmp_path: Path
) -> None:
    states: list[StateEntry] = ["created", "queueing", {"state": "processing", "progress": 30}, "processing", "success"]
    sim.add_task(TASK_A, states)
    sim.add_task(TASK_B, states)
    runner.start_import(import_job(TASK_A, tmp_path), sim_settings(sim))
    runner.start_import(import_job(TASK_B, tmp_path), sim_settings(sim))
    results = drain_until(runner, finished(TASK_A, TASK_B))
    for task_id in (TASK_A, TASK_B):
        updates = updates_for(results, task_id)
        record = TaskRecord(task_id)
        for update in updates:
            record.apply(update)  # in the order drained; raises if out of order
        assert [u.state for u in updates if u.state is not S.DOWNLOADING][:3] == [S.CREATED, S.QUEUEING, S.PROCESSING]
        assert record.state is S.DOWNLOADED
        assert Path(record.result_path).read_bytes() == GLB
    # Both tasks were being polled at the same time.
    query_times = {
        t: [r.time for r in sim.requests if r.query.get("task_id") == t] for t in (TASK_A, TASK_B)
    }
    assert min(query_times[TASK_B]) < max(query_times[TASK_A])
    assert min(query_times[TASK_A]) < max(query_times[TASK_B])


def test_imports_with_the_same_settings_share_one_token(
    runner: JobRunner, sim: Hitem3DSimulator, tmp_path: Path
) -> None:
    sim.add_task(TASK_A, ["success"])
    sim.add_task(TASK_B, ["success"])
    runner.start_import(import_job(TASK_A, tmp_path), sim_settings(sim))
    drain_until(runner, finished(TASK_A))
    runner.start_import(import_job(TASK_B, tmp_path), sim_settings(sim))
    drain_until(runner, finished(TASK_B))
    assert sim.count("/open-api/v1/auth/token") == 1


def test_imports_never_send_credentials_to_the_file_host(
    runner: JobRunner, sim: Hitem3DSimulator, tmp_path: Path
) -> None:
    sim.reject_auth_on_files = True
    sim.add_task(TASK_A, ["processing", "success"])
    runner.start_import(import_job(TASK_A, tmp_path), sim_settings(sim))
    results = drain_until(runner, finished(TASK_A))
    assert updates_for(results, TASK_A)[-1].state is S.DOWNLOADED
    assert sim.count("/files/") == 1
    assert sim.auth_on_files == []


def test_import_recovers_from_expired_tokens_and_urls(
    runner: JobRunner, sim: Hitem3DSimulator, tmp_path: Path
) -> None:
    sim.add_task(TASK_A, ["success"])
    sim.inject("/files/", Fault.status(403, b"Forbidden"))
    runner.start_import(import_job(TASK_A, tmp_path), sim_settings(sim))
    drain_until(runner, finished(TASK_A))
    sim.expire_tokens()
    sim.add_task(TASK_B, ["success"])
    runner.start_import(import_job(TASK_B, tmp_path), sim_settings(sim))
    results = drain_until(runner, finished(TASK_B))
    assert updates_for(results, TASK_B)[-1].state is S.DOWNLOADED
    assert sim.count("/open-api/v1/auth/token") == 2


def test_cancel_stops_only_that_job(runner: JobRunner, sim: Hitem3DSimulator, tmp_path: Path) -> None:
    sim.add_task(TASK_A, ["processing"])
    sim.add_task(TASK_B, ["processing"] * 5 + ["success"])
    runner.start_import(import_job(TASK_A, tmp_path, poll_interval_s=30), sim_settings(sim))
    runner.start_import(import_job(TASK_B, tmp_path), sim_settings(sim))
    drain_until(runner, lambda results: bool(updates_for(results, TASK_A)))
    begun = time.monotonic()
    runner.cancel(TASK_A)
    results = drain_until(runner, finished(TASK_A, TASK_B))
    assert updates_for(results, TASK_A)[-1].state is S.CANCELLED
    assert updates_for(results, TASK_B)[-1].state is S.DOWNLOADED
    assert time.monotonic() - begun < 1.0


def test_cancel_of_an_unknown_key_is_harmless(runner: JobRunner) -> None:
    runner.cancel("never-started")


# -- shutdown ------------------------------------------------------------------------------------


def test_shutdown_cancels_running_jobs_within_a_second(sim: Hitem3DSimulator, tmp_path: Path) -> None:
    runner = JobRunner(max_workers=2, transfer_workers=1)
    # A: waiting between polls; B: blocked in a stalled download; C: waiting for the transfer worker.
    sim.add_task(TASK_A, ["processing"])
    sim.add_task(TASK_B, ["success"], glb=os.urandom(512 * 1024))
    sim.add_task(TASK_C, ["success"])
    sim.inject("/files/", Fault.stall(after_bytes=16 * 1024, seconds=5))
    runner.start_import(import_job(TASK_A, tmp_path, poll_interval_s=30), sim_settings(sim))
    runner.start_import(import_job(TASK_B, tmp_path), sim_settings(sim))
    results = drain_until(
        runner,
        lambda r: any(u.state is S.DOWNLOADING for u in updates_for(r, TASK_B)) and bool(updates_for(r, TASK_A)),
    )
    # C only now, so B (not C) holds the one transfer worker.
    runner.start_import(import_job(TASK_C, tmp_path), sim_settings(sim))
    time.sleep(0.2)  # B is now blocked reading the socket; C is queued behind it
    begun = time.monotonic()
    alive = runner.shutdown(timeout_s=1.0)
    elapsed = time.monotonic() - begun
    assert alive == []
    assert elapsed < 1.2
    results += drain_until(runner, finished(TASK_A, TASK_B, TASK_C), timeout_s=1.0)
    for task_id in (TASK_A, TASK_B, TASK_C):
        assert updates_for(results, task_id)[-1].state is S.CANCELLED, task_id
    assert not (tmp_path / f"{TASK_B}.glb").exists()
    assert list(tmp_path.glob("*.part")) == []


def test_no_worker_thread_remains_after_shutdown(tmp_path: Path) -> None:
    with Hitem3DSimulator() as sim:
        runner = JobRunner()
        sim.add_task(TASK_A, ["processing"])
        runner.start_import(import_job(TASK_A, tmp_path, poll_interval_s=30), sim_settings(sim))
        runner.start_call("call", SETTINGS, lambda client: None)
        drain_until(runner, lambda r: bool(updates_for(r, TASK_A)))
        assert worker_threads()
        assert runner.shutdown() == []
    assert worker_threads() == []
    assert not runner.busy


def test_start_after_shutdown_is_refused() -> None:
    runner = JobRunner()
    runner.shutdown()
    with pytest.raises(RuntimeError, match="shut down"):
        runner.start_call("k", SETTINGS, lambda client: None)


def test_shutdown_with_nothing_running_returns_at_once() -> None:
    runner = JobRunner()
    begun = time.monotonic()
    assert runner.shutdown() == []
    # What it rules out is waiting out the one-second worker budget anyway.
    assert time.monotonic() - begun < 0.5


def test_a_slow_journal_write_still_lands_before_shutdown_returns() -> None:
    # The writer has its own budget: an fsync on a busy disk can outlast the
    # second the workers get, and a write cut short would lose the journal.
    runner = JobRunner()
    landed = threading.Event()

    def slow_write() -> None:
        time.sleep(0.8)
        landed.set()

    runner.write_later("journal", slow_write)
    assert runner.shutdown(timeout_s=0.05) == []
    assert landed.is_set()
    assert not [t for t in threading.enumerate() if t.name == "hitem3d-writer"]


def test_a_newer_write_replaces_one_not_yet_started() -> None:
    runner = JobRunner()
    started, release = threading.Event(), threading.Event()
    done: list[str] = []

    def first() -> None:
        started.set()
        release.wait(5.0)

    runner.write_later("first", first)
    assert started.wait(5.0)
    runner.write_later("journal", lambda: done.append("old"))
    runner.write_later("journal", lambda: done.append("new"))
    release.set()
    assert runner.flush_writes(5.0)
    runner.shutdown()
    assert done == ["new"]
