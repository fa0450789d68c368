"""WorkerGate: workers wait at their checkpoints while the main thread runs a Blender operator."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from hitem3d_blender.core.cancel import CancelToken, WorkerGate
from hitem3d_blender.core.errors import Cancelled
from hitem3d_blender.core.jobs import JobRunner
from hitem3d_blender.core.pipeline import ImportJob
from hitem3d_blender.core.settings import ApiSettings
from hitem3d_blender.core.tasks import TaskState, TaskUpdate
from tests.support.glb_factory import minimal_glb_bytes
from tests.support.simulator import Hitem3DSimulator

TASK = "dddddddd000000000000000000000000.jjewelry-aigc-api.DDDD"


def in_thread(target: Callable[[], None]) -> threading.Thread:
    thread = threading.Thread(target=target, daemon=True)
    thread.start()
    return thread


def test_checkpoints_pass_while_the_gate_is_open() -> None:
    token = CancelToken(WorkerGate())
    done = threading.Event()
    in_thread(lambda: (token.raise_if_cancelled(), done.set())).join(2.0)
    assert done.is_set()


def test_a_held_gate_stops_workers_at_their_next_checkpoint_until_released() -> None:
    gate = WorkerGate()
    token = CancelToken(gate)
    passed: list[float] = []
    with gate.held():
        assert not gate.is_open
        worker = in_thread(lambda: (token.raise_if_cancelled(), passed.append(time.monotonic())))
        time.sleep(0.3)
        assert passed == []
        released = time.monotonic()
    worker.join(2.0)
    assert gate.is_open
    assert passed and passed[0] >= released


def test_the_end_of_a_wait_is_a_checkpoint_too() -> None:
    gate = WorkerGate()
    token = CancelToken(gate)
    woke = threading.Event()
    with gate.held():
        in_thread(lambda: (token.wait(0.01), woke.set()))
        time.sleep(0.3)
        assert not woke.is_set()
    assert woke.wait(2.0)


def test_a_cancel_frees_a_held_worker_at_once() -> None:
    gate = WorkerGate()
    token = CancelToken(gate)
    outcome: list[str] = []

    def work() -> None:
        try:
            token.raise_if_cancelled()
            outcome.append("went on")
        except Cancelled:
            outcome.append("cancelled")

    with gate.held():
        worker = in_thread(work)
        time.sleep(0.1)
        begun = time.monotonic()
        token.cancel()
        worker.join(2.0)
        assert outcome == ["cancelled"]
        assert time.monotonic() - begun < 1.0


def test_wait_reports_a_cancel_while_the_gate_is_held() -> None:
    gate = WorkerGate()
    token = CancelToken(gate)
    answer: list[bool] = []
    with gate.held():
        worker = in_thread(lambda: answer.append(token.wait(0.01)))
        time.sleep(0.1)
        token.cancel()
        worker.join(2.0)
    assert answer == [True]


def test_the_main_thread_never_waits_at_its_own_gate() -> None:
    gate = WorkerGate()
    token = CancelToken(gate)
    with gate.held():
        token.raise_if_cancelled()  # returns: a main thread waiting here would hang forever


def test_holds_nest_and_the_gate_opens_after_the_last() -> None:
    gate = WorkerGate()
    with gate.held():
        with gate.held():
            pass
        assert not gate.is_open
    assert gate.is_open


def test_the_gate_opens_again_when_the_held_block_raises() -> None:
    gate = WorkerGate()
    with pytest.raises(RuntimeError):
        with gate.held():
            raise RuntimeError("importer failed")
    assert gate.is_open


def test_a_runner_sends_no_request_while_its_gate_is_held(tmp_path: Path) -> None:
    with Hitem3DSimulator() as sim:
        sim.add_task(TASK, ["success"], glb=minimal_glb_bytes())
        runner = JobRunner()
        try:
            with runner.gate.held():
                runner.start_import(ImportJob(task_id=TASK, dest=tmp_path / "d.glb", poll_interval_s=0.05),
                                    ApiSettings(sim.base_url, sim.client_id, sim.client_secret))
                time.sleep(0.4)
                assert sim.requests == []
            deadline = time.monotonic() + 10
            updates: list[TaskUpdate] = []
            while time.monotonic() < deadline and not any(u.state is TaskState.DOWNLOADED for u in updates):
                updates += [r for r in runner.drain() if isinstance(r, TaskUpdate)]
                time.sleep(0.02)
            assert updates[-1].state is TaskState.DOWNLOADED
        finally:
            runner.shutdown()


def test_a_journal_write_never_runs_while_the_gate_is_held_even_if_it_passed_just_before(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """The writer passed its checkpoint, then the main thread closed the gate
    and asked whether a write was under way before the writer said so: the
    write ran beside Blender's undo push and crashed bpy 4.2 and 4.5 in CI."""
    from hitem3d_blender.core.jobs import _Writer

    gate = WorkerGate()
    writer = _Writer(gate)
    passed, proceed, held = threading.Event(), threading.Event(), threading.Event()
    original = gate.pass_through

    def pass_then_pause(token: CancelToken) -> None:
        original(token)
        passed.set()
        proceed.wait(2.0)

    monkeypatch.setattr(gate, "pass_through", pass_then_pause)
    writes_while_held: list[bool] = []
    writer.start()
    writer.submit("journal", lambda: writes_while_held.append(held.is_set()))
    assert passed.wait(2.0)
    with gate.held():
        held.set()
        proceed.set()  # the writer goes on from just past its checkpoint
        assert writer.wait_parked(1.0)
        time.sleep(0.2)  # a write that slipped through runs now
        held.clear()
    assert writer.flush(2.0)
    writer.close(1.0)

    assert writes_while_held == [False]
