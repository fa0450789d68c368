"""Converters started by the worker process (``core.converter_host``): the
worker's side alone, then both sides over a real worker process. The
conversion's own endings with the worker starting them are the ``worker
process`` cases of ``test_conversion.py``."""

from __future__ import annotations

import os
import queue
import signal
import sys
import time
from pathlib import Path
from typing import Any, Iterator

import pytest

from hitem3d_blender.core import conversion, converter_host
from hitem3d_blender.core.conversion import ConversionProcess, Limits
from hitem3d_blender.core.worker_process import WorkerProcess

from .test_conversion import CHILD, REPO_ROOT, gone, spec_in

SLEEPER = [sys.executable, "-c", "import sys, time; sys.stdin.readline() if len(sys.argv) > 1 else None; "
           "time.sleep(60)", "x"]


def start_message(tmp_path: Path, number: int, command: list[str] | None = None, **changes: Any) -> dict[str, Any]:
    return {"op": "converter_start", "id": number, "command": command or SLEEPER, "env": dict(os.environ),
            "log": str(tmp_path / f"converter-{number}.log"), "stdin": "pipe", "memory_limit": 1024**3,
            "owner": os.getpid(), **changes}


class Events:
    def __init__(self) -> None:
        self.queue: queue.SimpleQueue[dict[str, Any]] = queue.SimpleQueue()

    def __call__(self, event: dict[str, Any]) -> None:
        self.queue.put(event)

    def next(self, timeout_s: float = 10.0) -> dict[str, Any]:
        return self.queue.get(timeout=timeout_s)


@pytest.fixture
def host() -> Iterator[tuple[converter_host.ConverterHost, Events]]:
    events = Events()
    each = converter_host.ConverterHost(events)
    yield each, events
    each.stop(5.0)
    assert each.count == 0
    conversion.remove_spare_temp_folders()


# -- the worker's side ---------------------------------------------------------------------------------


def test_the_host_says_the_pid_then_the_exit_code_and_reaps(host: Any, tmp_path: Path) -> None:
    each, events = host
    each.handle(start_message(tmp_path, 1, [sys.executable, "-c", "import sys; sys.exit(3)"]))
    started = events.next()
    assert started["op"] == "converter" and started["event"] == "started" and started["id"] == 1
    ended = events.next()
    assert ended["event"] == "ended" and ended["code"] == 3 and ended["peak"] == 0
    assert gone(started["pid"])  # reaped: not even a zombie
    assert each.count == 0


def test_a_kill_asked_before_the_spawn_returned_kills_it_once_started(host: Any, tmp_path: Path) -> None:
    each, events = host
    each.handle(start_message(tmp_path, 2))
    each.handle({"op": "converter_kill", "id": 2})  # the spawn runs on its thread: likely not returned yet
    assert events.next()["event"] == "started"
    ended = events.next()
    assert ended["event"] == "ended" and ended["code"] == -signal.SIGKILL


# A converter started ahead: it reads a spec's path on stdin and exits 0 if that file says "spec".
READER = [sys.executable, "-c", "import sys; path = sys.stdin.readline().rstrip('\\n'); "
          "sys.exit(0 if open(path).read() == 'spec' else 4)"]


def test_a_spec_handed_to_a_converter_started_ahead_is_written_by_the_worker_then_its_path_given(
        host: Any, tmp_path: Path) -> None:
    each, events = host
    spec = tmp_path / "work" / "task.spec.json"
    each.handle(start_message(tmp_path, 3, READER))
    each.handle({"op": "converter_give", "id": 3, "spec": {"path": str(spec), "text": "spec"}})
    assert events.next()["event"] == "started"
    assert events.next()["code"] == 0
    assert spec.read_text() == "spec" and spec.stat().st_mode & 0o777 == 0o600


def test_a_spec_for_a_cold_start_is_written_before_the_spawn(host: Any, tmp_path: Path) -> None:
    each, events = host
    spec = tmp_path / "task.spec.json"
    reads = [sys.executable, "-c", "import sys; sys.exit(0 if open(sys.argv[1]).read() == 'spec' else 4)", str(spec)]
    each.handle(start_message(tmp_path, 9, reads, spec={"path": str(spec), "text": "spec"}))
    assert events.next()["event"] == "started"
    assert events.next()["code"] == 0


def test_a_spec_that_cannot_be_written_fails_the_start_with_why_and_spawns_nothing(host: Any, tmp_path: Path) -> None:
    each, events = host
    folder = tmp_path / "not-a-folder"
    folder.write_text("a file where the work folder should be")
    each.handle(start_message(tmp_path, 10, spec={"path": str(folder / "x.spec.json"), "text": "spec"}))
    failed = events.next()
    assert failed["event"] == "failed" and "started" not in failed
    said = str(conversion.Message.from_dict(failed["message"]))
    assert str(folder) in said, said  # which folder: the artist can act on it
    each.handle(start_message(tmp_path, 11, READER))
    assert events.next()["event"] == "started"
    each.handle({"op": "converter_give", "id": 11, "spec": {"path": str(folder / "y.spec.json"), "text": "s"}})
    failed = events.next()
    assert failed["event"] == "failed" and str(conversion.Message.from_dict(failed["message"])) == said
    assert events.next()["event"] == "ended"  # killed: it never waits for a path for ever


def test_the_environment_is_sent_once_and_again_only_when_it_changed(tmp_path: Path) -> None:
    sent: list[dict[str, Any]] = []

    class Host:
        can_start_converters = True

        def start_converter(self, fields: dict[str, Any], listener: Any) -> int:
            sent.append(fields)
            return len(sent)

    one, other = Host(), Host()
    hosts = [one]
    starter = converter_host.RemoteStarter(lambda: hosts[0])  # type: ignore[arg-type, return-value]
    env = {"A": "1"}
    for _ in range(2):
        starter.launch(["x"], env, tmp_path / "a.log", stdin=-1, memory_limit=1)
    starter.launch(["x"], {"A": "2"}, tmp_path / "a.log", stdin=-1, memory_limit=1)
    hosts[0] = other  # a new worker process holds none yet
    starter.launch(["x"], {"A": "2"}, tmp_path / "a.log", stdin=-1, memory_limit=1)
    assert [each.get("env") for each in sent] == [{"A": "1"}, None, {"A": "2"}, {"A": "2"}]


def test_a_worker_given_no_environment_refuses_the_start(host: Any, tmp_path: Path) -> None:
    each, events = host
    message = start_message(tmp_path, 12)
    del message["env"]
    each.handle(message)
    assert events.next()["event"] == "failed"


def test_a_bad_start_is_refused_with_a_failure_not_silence(host: Any, tmp_path: Path) -> None:
    each, events = host
    each.handle(start_message(tmp_path, 4, log="relative/converter.log"))
    failed = events.next()
    assert failed["event"] == "failed"
    assert "Could not start Blender to convert the model" in str(conversion.Message.from_dict(failed["message"]))
    each.handle(start_message(tmp_path, 5, [str(tmp_path / "no-blender")]))
    failed = events.next()
    assert failed["event"] == "failed" and "No such file or directory" in str(failed["message"])
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(conversion.TEMP_PREFIX)]


def test_stopping_the_host_kills_and_reaps_every_converter(tmp_path: Path) -> None:
    events = Events()
    each = converter_host.ConverterHost(events)
    for number in (6, 7):
        each.handle(start_message(tmp_path, number))
    pids = [events.next()["pid"], events.next()["pid"]]
    started = time.monotonic()
    each.stop(5.0)
    assert time.monotonic() - started < 2.0
    assert each.count == 0 and all(gone(pid) for pid in pids)
    conversion.remove_spare_temp_folders()


def test_its_temporary_folder_is_named_for_blender_not_the_worker(host: Any, tmp_path: Path) -> None:
    each, events = host
    each.handle(start_message(tmp_path, 8, owner=424242))
    events.next()
    folders = [p.name for p in tmp_path.iterdir() if p.name.startswith(conversion.TEMP_PREFIX)]
    assert len(folders) == 1 and folders[0].startswith(f"{conversion.TEMP_PREFIX}424242-")
    each.handle({"op": "converter_kill", "id": 8})
    events.next()


# -- both sides ----------------------------------------------------------------------------------------


@pytest.fixture
def workers() -> Iterator[WorkerProcess]:
    each = WorkerProcess()
    link = each._ensure_link()
    assert link is not None
    each.wait_for(lambda: link.connected, 30.0)
    yield each
    each.shutdown(5.0)
    conversion.remove_spare_temp_folders()


def conversion_in(tmp_path: Path, workers: WorkerProcess, mode: str) -> ConversionProcess:
    (tmp_path / "library").mkdir(exist_ok=True)
    spec_path = tmp_path / "work" / "task-1.spec.json"
    env = {**os.environ, "MODE": mode, "REPO_ROOT": str(REPO_ROOT)}
    return ConversionProcess(spec_in(tmp_path), spec_path, [sys.executable, "-c", CHILD, str(spec_path)], env,
                             Limits(timeout_s=30.0), tmp_path / "work" / "task-1.log",
                             starter=converter_host.RemoteStarter(lambda: workers))


def poll_until_started(process: ConversionProcess, workers: WorkerProcess) -> int:
    workers.wait_for(lambda: process.pid is not None, 10.0)
    assert process.pid is not None
    return process.pid


def test_a_converter_is_a_child_of_the_worker_process_not_of_blender(tmp_path: Path, workers: WorkerProcess) -> None:
    process = conversion_in(tmp_path, workers, "sleep")
    process.start()
    pid = poll_until_started(process, workers)
    assert int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1]) == workers.pid
    process.stop(timeout_s=5.0)
    assert gone(pid)


def test_when_the_worker_process_dies_its_converters_end_and_the_conversion_says_retry(
        tmp_path: Path, workers: WorkerProcess) -> None:
    process = conversion_in(tmp_path, workers, "sleep")
    process.start()
    pid = poll_until_started(process, workers)
    assert workers.pid is not None
    os.kill(workers.pid, signal.SIGKILL)
    deadline = time.monotonic() + 10.0
    outcome = None
    while outcome is None and time.monotonic() < deadline:
        workers.drain()
        outcome = process.poll()
        time.sleep(0.02)
    assert outcome is not None and not outcome.ok
    assert str(outcome.error) == str(converter_host.WORKER_LOST)
    deadline = time.monotonic() + 5.0
    while not gone(pid) and time.monotonic() < deadline:  # the kernel's parent-death signal
        time.sleep(0.02)
    assert gone(pid)
    assert not process.spec_path.exists() and not list((tmp_path / "library").iterdir())


def test_a_converters_end_is_read_before_a_backlog_of_results(tmp_path: Path, workers: WorkerProcess) -> None:
    """1,000 results wait to be drained 3 a call: the converter's end is not behind them."""
    process = conversion_in(tmp_path, workers, "ok")
    link = workers._link
    assert link is not None
    backlog = [b'{"op":"log","level":10,"name":"x","text":"backlog"}'] * 1000
    link.lines.extend(backlog)
    process.start()
    deadline = time.monotonic() + 20.0
    outcome = None
    while outcome is None and time.monotonic() < deadline:
        workers.drain(0)
        outcome = process.poll()
        time.sleep(0.02)
    assert outcome is not None and outcome.ok
    assert len(link.lines) >= 1000 - 10  # still there: read at the pace of results


def test_with_no_worker_process_the_conversion_starts_its_converter_itself(tmp_path: Path) -> None:
    idle = WorkerProcess()  # none started: no download ran yet
    starter = converter_host.RemoteStarter(lambda: idle)
    assert not starter.ready
    process = conversion_in(tmp_path, idle, "ok")
    process.starter = starter
    process.start()
    assert process.pid is not None and isinstance(process._child, conversion.ChildProcess)
    deadline = time.monotonic() + 20.0
    while process.poll() is None and time.monotonic() < deadline:
        time.sleep(0.02)
    assert process.poll() is not None and process.poll().ok  # type: ignore[union-attr]
    assert idle.pid is None  # no worker process started for it
    conversion.remove_spare_temp_folders()


def test_a_remote_child_is_plain_state_read_from_events() -> None:
    """No thread in Blender's process: the remote child only reads the worker's events (checked)."""
    before = {thread.ident for thread in __import__("threading").enumerate()}
    child = converter_host.RemoteChild(WorkerProcess(), Path("/tmp/x.log"))
    child.event({"event": "started", "pid": 1234})
    child.event({"event": "ended", "code": 0, "peak": "not a number"})
    assert child.returncode == 0 and child.peak_job_memory == 0 and child.pid == 1234
    assert {thread.ident for thread in __import__("threading").enumerate()} == before


def test_a_garbled_event_never_starts_or_ends_a_converter() -> None:
    child = converter_host.RemoteChild(WorkerProcess(), Path("/tmp/x.log"))
    child.event({"event": "started", "pid": -1})
    child.event({"event": "started", "pid": "1"})
    assert not child.started
    child.event({"event": "failed", "message": {"template": 3}})
    assert child.returncode == conversion.START_FAILED and child.error is not None
    assert str(child.error).startswith("Could not start Blender to convert the model")



@pytest.mark.parametrize("cut", [5, 12, 30, 60])
def test_a_converters_event_cut_across_two_reads_is_still_told_apart(workers: WorkerProcess, cut: int) -> None:
    import socket

    link = workers._link
    assert link is not None
    ours, theirs = socket.socketpair()
    ours.setblocking(False)
    real, link.sock = link.sock, ours
    try:
        event = b'{"op":"converter","id":1,"event":"ended","code":0,"peak":0}'
        result = b'{"op":"log","level":10,"name":"x","text":"before"}'
        stream = result + b"\n" + event + b"\n" + result + b"\n"
        at = len(result) + 1 + cut
        theirs.sendall(stream[:at])
        link.receive()
        theirs.sendall(stream[at:])
        link.receive()
        assert list(link.events) == [event]
        assert list(link.lines)[-2:] == [result, result]
    finally:
        link.sock = real
        link.events.clear()
        ours.close()
        theirs.close()
