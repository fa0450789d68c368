"""The workers in a process of their own: Blender's side never waits on it,
the child never outlives Blender, and a child that dies fails its tasks
(retryable) instead of taking Blender with it."""

from __future__ import annotations

import collections

import json
import logging
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from hitem3d_blender.core import calls, journal, worker_process
from hitem3d_blender.core.api import TaskStatus
from hitem3d_blender.core.errors import GenerationFailed
from hitem3d_blender.core.jobs import CallResult, Result
from hitem3d_blender.core.kind_requests import KindRequest
from hitem3d_blender.core.mesh_upload import HITEM3D_STORAGE
from hitem3d_blender.core.settings import ApiSettings
from hitem3d_blender.core.submission import Submission
from hitem3d_blender.core.tasks import TaskRecord, TaskState, TaskUpdate
from hitem3d_blender.core.worker_process import WORKER_ENDED, WorkerProcess, _JournalFeed
from tests.core.test_jobs import drain_until as jobs_drain_until
from tests.core.test_jobs import TASK_A, TASK_B, TASK_C, call_result, calls_done, finished, import_job, sim_settings, \
    updates_for
from tests.support.simulator import Fault, Hitem3DSimulator

S = TaskState
REPO_ROOT = Path(__file__).resolve().parents[2]
posix_only = pytest.mark.skipif(os.name != "posix", reason="reads /proc or sends POSIX signals")


@pytest.fixture
def workers() -> Iterator[WorkerProcess]:
    instance = WorkerProcess()
    yield instance
    instance.shutdown()
    if instance.pid is not None:
        assert not alive(instance.pid)


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A zombie is gone for every purpose but its table entry.
    status = Path(f"/proc/{pid}/status")
    return not (status.is_file() and "\nState:\tZ" in status.read_text())


def drain_until(workers: WorkerProcess, done: Callable[[list[Result]], bool], timeout_s: float = 10.0) -> list[Result]:
    # A process starts slower than threads: a longer wait, and the rest read too.
    return jobs_drain_until(workers, done, timeout_s, rest=True)


def wait_for(condition: Callable[[], bool], timeout_s: float = 10.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.01)


def started(workers: WorkerProcess, sim: Hitem3DSimulator) -> int:
    """The child's PID, once it has connected and answered."""
    workers.start_call("hello", sim_settings(sim), calls.balance())
    drain_until(workers, calls_done("hello"))
    assert workers.pid is not None
    return workers.pid


# -- the work, over the line ----------------------------------------------------------------


def test_an_import_runs_in_the_child_and_its_updates_arrive(workers: WorkerProcess, sim: Hitem3DSimulator,
                                                            tmp_path: Path) -> None:
    sim.add_task(TASK_A, ["queueing", "processing", "success"])
    run = workers.start_import(import_job(TASK_A, tmp_path), sim_settings(sim))
    assert workers.busy and workers.is_running(TASK_A)
    results = drain_until(workers, finished(TASK_A))
    updates = updates_for(results, TASK_A)
    assert updates[-1].state is S.DOWNLOADED and all(update.run == run for update in updates)
    assert Path(updates[-1].result_path).is_file()
    wait_for(lambda: not (workers.drain() or workers.busy))
    assert not workers.is_running(TASK_A)
    assert workers.pid != os.getpid() and workers.threads() == []


def test_named_calls_come_back_as_their_callers_read_them(workers: WorkerProcess, sim: Hitem3DSimulator) -> None:
    sim.add_task(TASK_A, ["processing"])
    sim.add_task(TASK_B, ["failed"])
    settings = sim_settings(sim)
    workers.start_call("token", settings, calls.fetch_token())
    workers.start_call("balance", settings, calls.balance())
    workers.start_call("a", settings, calls.query_task(TASK_A))
    workers.start_call("b", settings, calls.query_task(TASK_B))
    results = drain_until(workers, calls_done("token", "balance", "a", "b"))
    assert call_result(results, "token").value is True
    assert call_result(results, "balance").value == 1000.0
    status = call_result(results, "a").value
    assert isinstance(status, TaskStatus) and status.state == "processing"
    assert isinstance(call_result(results, "b").value, GenerationFailed)


def test_a_submission_and_its_signed_links_cross_whole() -> None:
    submission = Submission("hitem3dv1.5", "1024", image="/tmp/a.png", views={}, mesh_url="https://x/signed?k=1",
                            mesh_box=(0.0, 1.0, 2.0, 3.0, 4.0, 5.0))
    kind = KindRequest("split", {"model": "general"}, source_url="https://x/signed?k=2")
    for request in (submission, kind):
        call = json.loads(json.dumps(calls.submit(request).args))
        assert calls._request(call) == request
    assert json.loads(json.dumps(calls.submit(submission).args))["storage"]["endpoint"] == HITEM3D_STORAGE.endpoint


def test_an_error_comes_back_as_its_message(workers: WorkerProcess, sim: Hitem3DSimulator) -> None:
    wrong = ApiSettings(sim.base_url, sim.client_id, "not-the-secret")
    workers.start_call("token", wrong, calls.fetch_token())
    result = call_result(drain_until(workers, calls_done("token")), "token")
    assert not result.ok and "rejected the client id or client secret" in str(result.error).lower()


def test_the_childs_log_records_reach_the_addons_log(workers: WorkerProcess, sim: Hitem3DSimulator,
                                                     caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO)
    workers.start_call("odd", sim_settings(sim), calls.Call("no-such-call"))
    result = call_result(drain_until(workers, calls_done("odd")), "odd")
    assert str(result.error) == "Unexpected error: see the Hitem3D log"
    wait_for(lambda: not (workers.drain() or workers.busy))
    [record] = [r for r in caplog.records if "Could not run a command from Blender" in r.getMessage()]
    assert record.name == "hitem3d_blender.core.worker_main" and record.levelno == logging.ERROR
    assert "no call named 'no-such-call' (call odd)" in (record.exc_text or "")


def test_a_start_the_child_cannot_read_ends_failed_not_waiting(workers: WorkerProcess, sim: Hitem3DSimulator,
                                                               tmp_path: Path,
                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    from hitem3d_blender.core import wire

    real = wire.job_to_wire
    monkeypatch.setattr(wire, "job_to_wire", lambda job: {**real(job), "not_a_field": 1})
    run = workers.start_import(import_job(TASK_A, tmp_path), sim_settings(sim))
    results = drain_until(workers, lambda r: not workers.busy)
    [update] = updates_for(results, TASK_A)
    assert update.state is S.FAILED and update.run == run
    assert str(update.message) == "Unexpected error: see the Hitem3D log"


def test_settings_cross_whole_and_stay_usable_as_keys() -> None:
    from hitem3d_blender.core import wire
    from hitem3d_blender.core.settings import NetworkConfig, Sources

    settings = ApiSettings("https://api.example", "id", "secret", poll_interval_s=0.5,
                           network=NetworkConfig("custom", "http://u:p@proxy:3128", "/ca.pem", (5, 6)),
                           sources=Sources("environment", "environment", "preferences"))
    value, hidden = wire.settings_to_wire(settings)
    back = wire.settings_from_wire(json.loads(json.dumps(value)), hidden)
    assert back == settings and hash(back) == hash(settings)


def test_cancel_ends_the_run_with_its_cancel(workers: WorkerProcess, sim: Hitem3DSimulator, tmp_path: Path) -> None:
    sim.add_task(TASK_A, ["processing"])
    workers.start_import(import_job(TASK_A, tmp_path, poll_interval_s=30.0), sim_settings(sim))
    drain_until(workers, lambda r: any(u.state is S.PROCESSING for u in updates_for(r, TASK_A)))
    workers.cancel(TASK_A)
    assert not workers.is_running(TASK_A)  # at once, as the panel needs it
    results = drain_until(workers, lambda r: any(u.state is S.CANCELLED for u in updates_for(r, TASK_A)),
                          timeout_s=1.0)
    assert updates_for(results, TASK_A)[-1].state is S.CANCELLED
    wait_for(lambda: not (workers.drain() or workers.busy), timeout_s=1.0)


def test_a_key_cancelled_then_started_again_runs_again(workers: WorkerProcess, sim: Hitem3DSimulator,
                                                       tmp_path: Path) -> None:
    sim.add_task(TASK_A, ["processing", "success"])
    first = workers.start_import(import_job(TASK_A, tmp_path, poll_interval_s=30.0), sim_settings(sim))
    workers.cancel(TASK_A)
    second = workers.start_import(import_job(TASK_A, tmp_path), sim_settings(sim))
    assert second != first and workers.is_running(TASK_A)
    with pytest.raises(RuntimeError):
        workers.start_import(import_job(TASK_A, tmp_path), sim_settings(sim))
    results = drain_until(workers, lambda r: any(u.run == second and u.state is S.DOWNLOADED
                                                 for u in updates_for(r, TASK_A)))
    assert {u.state for u in updates_for(results, TASK_A) if u.run == first} <= {S.CANCELLED, S.PROCESSING}


# -- never waiting on it ----------------------------------------------------------------------


@posix_only
def test_nothing_waits_on_a_child_that_does_not_answer(workers: WorkerProcess, sim: Hitem3DSimulator,
                                                       tmp_path: Path) -> None:
    pid = started(workers, sim)
    os.kill(pid, signal.SIGSTOP)  # frozen: it reads nothing and sends nothing
    try:
        ids = [f"{n:032x}.jjewelry-aigc-api.Frozen{n:05d}" for n in range(2000)]
        for task_id in ids:
            sim.add_task(task_id, ["processing"])
        began = time.perf_counter()
        with workers.starting_many():
            for task_id in ids:  # far more than the socket's buffers hold
                workers.start_import(import_job(task_id, tmp_path, poll_interval_s=30.0), sim_settings(sim))
        workers.write_journal(journal.JournalFile(tmp_path / "journal.json"), whole(ids),
                              {task_id: record(task_id) for task_id in ids})
        workers.cancel(ids[0])
        worst = 0.0
        for _ in range(20):
            tick = time.perf_counter()
            assert workers.drain() == []
            worst = max(worst, time.perf_counter() - tick)
        assert time.perf_counter() - began < 2.0
        assert worst < 0.05
    finally:
        os.kill(pid, signal.SIGCONT)
    for task_id in ids[1:]:
        workers.cancel(task_id)
    results = drain_until(workers, lambda r: not workers.busy, timeout_s=30.0)
    assert {u.task_id for u in results if isinstance(u, TaskUpdate) and u.state is S.CANCELLED} == set(ids)


# -- a child that dies, a Blender that dies -----------------------------------------------------


@posix_only
def test_a_child_that_dies_fails_its_runs_and_the_next_start_gets_a_new_one(workers: WorkerProcess,
                                                                           sim: Hitem3DSimulator,
                                                                           tmp_path: Path) -> None:
    first = started(workers, sim)
    sim.add_task(TASK_A, ["processing"])
    workers.start_import(import_job(TASK_A, tmp_path, poll_interval_s=30.0), sim_settings(sim))
    sim.inject("/open-api/v1/balance", Fault.delay(5.0))
    workers.start_call("slow", sim_settings(sim), calls.balance())
    drain_until(workers, lambda r: bool(updates_for(r, TASK_A)))
    os.kill(first, signal.SIGKILL)
    results = drain_until(workers, lambda r: not workers.busy)
    assert updates_for(results, TASK_A)[-1].state is S.FAILED
    assert updates_for(results, TASK_A)[-1].message == WORKER_ENDED
    assert call_result(results, "slow").error == WORKER_ENDED
    # Retry works: a new child.
    sim.add_task(TASK_B, ["success"])
    workers.start_import(import_job(TASK_B, tmp_path), sim_settings(sim))
    assert updates_for(drain_until(workers, finished(TASK_B)), TASK_B)[-1].state is S.DOWNLOADED
    assert workers.pid not in (None, first)


def test_a_child_that_cannot_start_fails_its_runs_with_the_reason(sim: Hitem3DSimulator, tmp_path: Path) -> None:
    workers = WorkerProcess(python=str(tmp_path / "no-python-here"))
    try:
        run = workers.start_import(import_job(TASK_A, tmp_path), sim_settings(sim))
        workers.start_call("balance", sim_settings(sim), calls.balance())
        results = drain_until(workers, lambda r: not workers.busy, timeout_s=1.0)
    finally:
        workers.shutdown()
    [update] = updates_for(results, TASK_A)
    assert update.state is S.FAILED and update.run == run
    assert str(update.message).startswith("Could not start the Hitem3D background process (")
    assert call_result(results, "balance").error == update.message


@posix_only
def test_a_child_that_never_connects_is_given_up_on(sim: Hitem3DSimulator, tmp_path: Path) -> None:
    sleeper = tmp_path / "python"
    sleeper.write_text("#!/bin/sh\nexec sleep 30\n")
    sleeper.chmod(0o755)
    workers = WorkerProcess(python=str(sleeper), start_timeout_s=0.5)
    try:
        workers.start_import(import_job(TASK_A, tmp_path), sim_settings(sim))
        pid = workers.pid
        results = drain_until(workers, lambda r: not workers.busy, timeout_s=5.0)
    finally:
        workers.shutdown()
    assert str(updates_for(results, TASK_A)[-1].message) == str(worker_process.worker_not_started("no answer"))
    assert pid is not None and not alive(pid)


PARENT = """
import sys, time
sys.path.insert(0, {repo!r})
from hitem3d_blender.core import calls
from hitem3d_blender.core.settings import ApiSettings
from hitem3d_blender.core.worker_process import WorkerProcess
from hitem3d_blender.core.pipeline import ImportJob
from pathlib import Path
workers = WorkerProcess()
settings = ApiSettings({base!r}, {client!r}, {secret!r})
workers.start_import(ImportJob({task!r}, Path({dest!r}), poll_interval_s=0.05), settings)
while not workers.drain():
    time.sleep(0.01)
print(workers.pid, flush=True)
time.sleep(60)
"""


@posix_only
def test_the_child_ends_when_blender_dies(sim: Hitem3DSimulator, tmp_path: Path) -> None:
    """Killed (a crash, or the system's OOM killer), Blender closes nothing
    itself: the system closes its end of the socket, and the child goes."""
    sim.add_task(TASK_A, ["processing"])
    code = PARENT.format(repo=str(REPO_ROOT), base=sim.base_url, client=sim.client_id, secret=sim.client_secret,
                         task=TASK_A, dest=str(tmp_path / "a.glb"))
    parent = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    try:
        assert parent.stdout is not None
        child = int(parent.stdout.readline())
        assert alive(child)
        parent.send_signal(signal.SIGKILL)
        parent.wait(5)
        began = time.monotonic()
        wait_for(lambda: not alive(child), timeout_s=5.0)
        assert time.monotonic() - began < 1.0
    finally:
        parent.kill()
        parent.wait()


def test_shutdown_ends_the_child_within_a_second(sim: Hitem3DSimulator, tmp_path: Path) -> None:
    workers = WorkerProcess()
    pid = started(workers, sim)
    for task_id in (TASK_A, TASK_B):
        sim.add_task(task_id, ["processing"])
        workers.start_import(import_job(task_id, tmp_path, poll_interval_s=30.0), sim_settings(sim))
    sim.inject("/open-api/v1/balance", Fault.delay(10.0))
    workers.start_call("stalled", sim_settings(sim), calls.balance())
    drain_until(workers, lambda r: bool(updates_for(r, TASK_A)) and bool(updates_for(r, TASK_B)))
    time.sleep(0.2)  # the balance call is waiting on the server
    began = time.monotonic()
    assert workers.shutdown(timeout_s=1.0) == []
    assert time.monotonic() - began < 1.0
    assert not alive(pid)
    results = workers.drain()
    assert {u.task_id for u in results if isinstance(u, TaskUpdate) and u.state is S.CANCELLED} == {TASK_A, TASK_B}
    assert call_result(results, "stalled").error == calls_cancelled()
    with pytest.raises(RuntimeError):
        workers.start_call("late", sim_settings(sim), calls.balance())


def calls_cancelled() -> Any:
    from hitem3d_blender.core.errors import Cancelled

    return Cancelled().message


# -- secrets -----------------------------------------------------------------------------------


@pytest.mark.skipif(not Path("/proc/self/environ").exists(), reason="reads /proc")
def test_the_secret_is_on_neither_the_command_line_nor_the_environment(
        workers: WorkerProcess, sim: Hitem3DSimulator, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HITEM3D_CLIENT_SECRET", sim.client_secret)
    pid = started(workers, sim)
    for name in ("cmdline", "environ"):
        seen = Path(f"/proc/{pid}/{name}").read_bytes()
        assert sim.client_secret.encode() not in seen and b"HITEM3D_" not in seen, name


@posix_only
def test_a_connection_without_the_token_gets_nothing(sim: Hitem3DSimulator, tmp_path: Path) -> None:
    sleeper = tmp_path / "python"
    sleeper.write_text("#!/bin/sh\nexec sleep 30\n")  # a child that never connects: an impostor tries first
    sleeper.chmod(0o755)
    workers = WorkerProcess(python=str(sleeper))
    try:
        workers.start_call("balance", sim_settings(sim), calls.balance())
        link = workers._link
        assert link is not None
        impostor = socket.create_connection(link.listener.getsockname()[:2])
        impostor.sendall(json.dumps({"op": "hello", "token": "guess"}).encode() + b"\n")
        impostor.settimeout(2.0)
        received = b""
        deadline = time.monotonic() + 1.0
        while time.monotonic() < deadline:
            workers.drain()
            time.sleep(0.02)
        try:
            while chunk := impostor.recv(65536):
                received += chunk
        except (socket.timeout, ConnectionResetError):
            pass
        impostor.close()
        assert received == b"" and not link.connected
    finally:
        workers.shutdown()


# -- the journal and other writes ------------------------------------------------------------------


def record(task_id: str, state: TaskState = S.DONE) -> dict[str, Any]:
    return TaskRecord(task_id, state).to_dict()


def whole(ids: list[str]) -> journal.OrderChange:
    return journal.OrderChange(whole=tuple(ids))


def moves(*moved: tuple[str, bool]) -> journal.OrderChange:
    return journal.OrderChange(tuple(moved))


def handed_over(workers: WorkerProcess, target: journal.JournalFile, order: journal.OrderChange | None,
                entries: dict[str, dict[str, Any]]) -> None:
    """What ``history.save`` does: post to Blender's copy, hand the same to the workers."""
    target.post(order, entries)
    workers.write_journal(target, order, entries)


def saved(path: Path) -> list[tuple[str, str]]:
    return [(rec.task_id, rec.state.value) for rec in journal.load(path).records]


def test_journal_records_go_over_once_per_change() -> None:
    feed = _JournalFeed(journal.JournalFile(Path("/j.json")))
    first, second = record("a"), record("b", S.PROCESSING)
    feed.stage(whole(["a", "b"]), {"a": first, "b": second})
    assert feed.take(None) == [{"op": "journal", "path": "/j.json", "entries": {"a": first, "b": second},
                                "write": True, "order": ["a", "b"], "moves": []}]
    changed = record("b")
    feed.stage(None, {"b": changed})  # the order did not move
    assert feed.take(None) == [{"op": "journal", "path": "/j.json", "entries": {"b": changed}, "write": True}]
    feed.stage(moves(("a", False)), {})  # "a" removed: only the move says so
    feed.stage(moves(("c", True)), {})  # two saves before a write: both moves go, in turn
    assert feed.take(None) == [{"op": "journal", "path": "/j.json", "write": True, "moves": [["a", 0], ["c", 1]]}]


def test_a_new_child_hears_again_what_the_last_one_was_told() -> None:
    """A child that never heard of a journal reads the file as Blender read
    it: moves suffice. One started after another was told may find an older
    file: the whole order goes, and every record told since the last write here."""
    target = journal.JournalFile(Path("/j.json"), order=["a"])
    feed = _JournalFeed(target)
    feed.restart()  # the first child: nothing is sent again
    assert feed.take(None) == []
    first = record("b")
    handed = (moves(("b", True)), {"b": first})
    target.post(*handed)
    feed.stage(*handed)
    assert feed.take(None)[-1]["moves"] == [["b", 1]]
    feed.restart()  # that child is gone
    assert feed.take(None) == [{"op": "journal", "path": "/j.json", "entries": {"b": first}, "write": True,
                                "order": ["a", "b"], "moves": []}]


def test_the_timers_saves_go_over_in_its_calls_spare_time(monkeypatch: pytest.MonkeyPatch) -> None:
    """A save from the timer is handed over in batches while the call has
    time left, and a batch however late once it has waited half a second: a
    call that applies a burst of results does not also encode them all."""
    workers = WorkerProcess()
    fed: list[int | None] = []
    feed = _JournalFeed(journal.JournalFile(Path("/j.json")))

    def feed_journals(budget: int | None) -> None:
        fed.append(budget)
        feed.take(budget)

    monkeypatch.setattr(workers, "_feed_journals", feed_journals)
    monkeypatch.setattr(workers, "_ensure_link", lambda: None)
    workers._journals[feed.path] = feed
    clock = [100.0]
    monkeypatch.setattr(worker_process.time, "monotonic", lambda: clock[0])
    ids = [f"t{n}" for n in range(12)]
    workers.write_journal(feed.target, whole(ids), {task_id: record(task_id) for task_id in ids}, now=False)
    assert fed == [] and workers.busy  # the timer goes on for it
    spent = time.perf_counter() - 1.0
    workers.hand_over_journal(spent)  # a call with no time left: not now
    assert fed == []
    clock[0] += worker_process.JOURNAL_WAIT_S
    workers.hand_over_journal(spent)  # waited, but this call is far past its budget: not yet
    assert fed == []
    workers.hand_over_journal(time.perf_counter() - worker_process.JOURNAL_LATE_GRACE_S / 4)
    assert fed == [worker_process.JOURNAL_BATCH] and workers.busy  # one batch in a call just past its budget
    workers.hand_over_journal(spent)  # the rest waits its turn again
    assert len(fed) == 1
    clock[0] += worker_process.JOURNAL_MAX_WAIT_S
    workers.hand_over_journal(spent)  # however busy the call, once it has waited that long
    assert len(fed) == 2
    workers.hand_over_journal(time.perf_counter() + 10.0)  # a call with time to spare: all of it
    assert len(fed) == 3 and not feed.waiting and not workers.busy
    workers.write_journal(feed.target, None, {"b": record("b")})
    assert len(fed) == 4  # a save outside the timer goes at once


def test_many_journal_records_go_over_a_batch_per_call() -> None:
    feed = _JournalFeed(journal.JournalFile(Path("/j.json")))
    ids = [str(n) for n in range(120)]
    feed.stage(whole(ids), {task_id: record(task_id) for task_id in ids})
    batches = [feed.take(50) for _ in range(3)]
    assert [len(batch[0]["entries"]) for batch in batches] == [50, 50, 20]
    assert [batch[0].get("write") for batch in batches] == [None, None, True]  # with the last batch
    assert feed.take(50) == []


def test_a_long_run_of_order_moves_goes_over_in_parts_with_the_write_last() -> None:
    """1,000 pasted IDs are 1,000 moves: one message of them cost a timer call 2 ms."""
    target = journal.JournalFile(Path("/j.json"), order=["old"])
    feed = _JournalFeed(target)
    ids = [f"t{n}" for n in range(250)]
    feed.stage(moves(*((task_id, True) for task_id in ids)), {task_id: record(task_id) for task_id in ids[:3]})
    messages = []
    while feed.waiting:
        messages += feed.take(worker_process.JOURNAL_BATCH)
    assert len(messages[0]["entries"]) == 3  # the entries go first (moves only once none wait)
    parts = [m for m in messages if "moves" in m]
    assert [len(m["moves"]) for m in parts] == [50] * 5
    assert [m.get("write") for m in parts] == [None] * 4 + [True]  # written once, with the last part
    child = journal.JournalFile(Path("/j.json"), order=["old"])  # what the child applies, message by message
    for message in messages:
        child.post(journal.OrderChange.from_wire(message), dict(message.get("entries") or {}))
    assert child.order() == ["old", *ids]
    feed.stage(moves(*((task_id, True) for task_id in ids)), {})
    assert len(feed.take(None)[0]["moves"]) == 250  # quitting, flushing: all at once


def test_a_backlog_of_commands_goes_to_the_child_a_slice_a_call(monkeypatch: pytest.MonkeyPatch) -> None:
    import socket

    link = object.__new__(worker_process._Link)
    ours, theirs = socket.socketpair()
    try:
        ours.setblocking(False)
        theirs.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1024 * 1024)
        link.sock, link.ended = ours, False
        link.outbox = collections.deque((b"x" * 199 + b"\n", False) for _ in range(1000))  # 200 KB of starts
        link.send()
        first = 1000 - len(link.outbox)
        assert 0 < first * 200 <= worker_process.SEND_BYTES_PER_CALL + 200 * 256  # one slice, not all of it
        link.send(None)
        assert not link.outbox or len(link.outbox) < 1000 - first  # no limit: as far as the socket takes
    finally:
        ours.close()
        theirs.close()


def test_the_journal_is_written_by_the_child(workers: WorkerProcess, tmp_path: Path) -> None:
    path = tmp_path / "journal.json"
    target = journal.JournalFile(path)
    handed_over(workers, target, whole([TASK_A, TASK_B]),
                {TASK_A: record(TASK_A), TASK_B: record(TASK_B, S.FAILED)})
    assert workers.flush_writes(10.0)
    assert saved(path) == [(TASK_A, "done"), (TASK_B, "failed")]
    handed_over(workers, target, moves((TASK_A, False)), {})
    assert workers.flush_writes(10.0)
    assert saved(path) == [(TASK_B, "failed")]


def test_the_child_starts_from_the_journal_on_disk(workers: WorkerProcess, tmp_path: Path) -> None:
    """Blender sends what changed, never the history it read: the child reads
    it from the file, its order too, and follows the moves."""
    path = tmp_path / "journal.json"
    journal.save(path, [TaskRecord(TASK_A, S.DONE), TaskRecord(TASK_B, S.FAILED)])
    target = journal.JournalFile.read(path)
    handed_over(workers, target, moves((TASK_C, True)), {TASK_C: record(TASK_C)})
    assert workers.flush_writes(10.0)
    assert saved(path) == [(TASK_A, "done"), (TASK_B, "failed"), (TASK_C, "done")]
    handed_over(workers, target, moves((TASK_A, True), (TASK_B, False)), {})
    assert workers.flush_writes(10.0)
    assert saved(path) == [(TASK_C, "done"), (TASK_A, "done")]


def test_a_journal_write_handed_over_lands_even_at_once_shut_down(tmp_path: Path) -> None:
    workers = WorkerProcess()
    path = tmp_path / "journal.json"
    handed_over(workers, journal.JournalFile(path), whole([TASK_A]), {TASK_A: record(TASK_A)})
    workers.shutdown()
    assert saved(path) == [(TASK_A, "done")]


@posix_only
def test_a_dead_child_is_replaced_and_the_journal_stays_whole(workers: WorkerProcess, tmp_path: Path) -> None:
    path = tmp_path / "journal.json"
    target = journal.JournalFile(path)
    handed_over(workers, target, whole([TASK_A]), {TASK_A: record(TASK_A)})
    assert workers.flush_writes(10.0)
    pid = workers.pid
    assert pid is not None
    # Told, never written: a frozen child reads nothing of it, then dies; Blender writes it.
    os.kill(pid, signal.SIGSTOP)
    handed_over(workers, target, moves((TASK_C, True)), {TASK_C: record(TASK_C)})
    os.kill(pid, signal.SIGKILL)
    wait_for(lambda: workers.drain() == [] and workers.pid is None)
    assert saved(path) == [(TASK_A, "done"), (TASK_C, "done")]
    # A new child reads the file as Blender left it, then follows the moves.
    handed_over(workers, target, moves((TASK_B, True)), {TASK_B: record(TASK_B, S.FAILED)})
    assert workers.flush_writes(10.0)
    assert saved(path) == [(TASK_A, "done"), (TASK_C, "done"), (TASK_B, "failed")]


@posix_only
def test_the_timer_goes_on_until_a_journal_write_has_gone_over(workers: WorkerProcess, sim: Hitem3DSimulator,
                                                               tmp_path: Path) -> None:
    pid = started(workers, sim)
    wait_for(lambda: not (workers.drain() or workers.busy))  # as the timer asks
    path = tmp_path / "journal.json"
    ids = [f"{n:032x}.jjewelry-aigc-api.J{n:05d}" for n in range(400)]
    os.kill(pid, signal.SIGSTOP)
    try:
        handed_over(workers, journal.JournalFile(path), whole(ids), {task_id: record(task_id) for task_id in ids})
        assert workers.busy  # 50 records a call: the rest waits for the next ones
    finally:
        os.kill(pid, signal.SIGCONT)
    wait_for(lambda: not (workers.drain() or workers.busy))
    assert workers.flush_writes(10.0)
    assert len(saved(path)) == 400


@posix_only
def test_a_child_lost_with_a_journal_write_leaves_it_written_here(workers: WorkerProcess, sim: Hitem3DSimulator,
                                                                  tmp_path: Path) -> None:
    pid = started(workers, sim)
    path = tmp_path / "journal.json"
    os.kill(pid, signal.SIGSTOP)
    handed_over(workers, journal.JournalFile(path), whole([TASK_A]), {TASK_A: record(TASK_A)})
    os.kill(pid, signal.SIGKILL)
    wait_for(lambda: workers.drain() == [] and workers.pid is None)
    assert saved(path) == [(TASK_A, "done")]
    assert not workers.busy


def test_a_small_file_is_written_by_the_child(workers: WorkerProcess, tmp_path: Path) -> None:
    path = tmp_path / "kept.json"
    workers.write_later("kept", calls.kept_requests(path, b'{"version": 1, "requests": [1]}'))
    workers.write_later("kept", calls.kept_requests(path, b'{"version": 1, "requests": [2]}'))
    assert workers.flush_writes(10.0)
    assert json.loads(path.read_text())["requests"] == [2]


def test_results_are_plain_values() -> None:
    # The wire's own round trip: what a worker emits is what the timer reads.
    from hitem3d_blender.core import wire
    from hitem3d_blender.core.messages import msg

    update = TaskUpdate(TASK_A, S.DOWNLOADING, progress=0.5, message=msg("Retrying ({attempt} of {limit}): {reason}",
                        attempt=2, limit=5, reason=msg("Hitem3D is busy")), bytes_done=10, bytes_total=20, run=3)
    assert wire.update_from_wire(wire.decode(wire.encode(wire.update_to_wire(update)))) == update
    result = CallResult("k", 1.5)
    assert wire.call_result_from_wire(wire.decode(wire.encode(wire.call_result_to_wire(result))))[:2] == ("k", 1.5)
    with pytest.raises(ValueError):
        wire.update_from_wire({"op": "update", "task_id": TASK_A, "state": "exploded"})


def test_a_secret_crosses_only_in_small_lines_and_arrives_whole() -> None:
    """Python takes buffers over 512 bytes from the C heap, whose freed
    memory Blender reuses for data it writes to .blend files uninitialised:
    a line holding a secret stays under that, however long the secret."""
    from hitem3d_blender.core import wire
    from hitem3d_blender.core.settings import NetworkConfig

    secret = "s3cr3t-" * 150
    proxy = "http://user:" + "p" * 700 + "@proxy:8080"
    settings = ApiSettings("https://api.example", "id", secret, network=NetworkConfig("custom", proxy))
    workers = WorkerProcess(python=sys.executable)
    lines: list[tuple[bytes, bool]] = []
    try:
        workers._settings_id(settings)
        assert workers._link is not None
        lines = list(workers._link.outbox)[1:]  # after the config
    finally:
        workers.shutdown()
    pieces: dict[str, str] = {}
    for line, is_secret in lines:
        message = wire.decode(line)
        if message["op"] == "secret":
            assert is_secret and len(line) < 400
            pieces[message["name"]] = pieces.get(message["name"], "") + message["piece"]
        else:
            assert not is_secret and secret.encode() not in line and b"pppp" not in line
            assert wire.settings_from_wire(message["value"], pieces) == settings
