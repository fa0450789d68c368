"""Background mode (``blender -b``, the ``bpy`` module, the command line):
there is no event loop, so these drive ``timer.tick`` themselves until the
work they wait for is over."""

from __future__ import annotations

import time
from typing import Callable

from ..core.calls import Call
from ..core.jobs import CallResult
from ..core.logs import register_secret
from ..core.messages import msg
from ..core.settings import ApiSettings
from ..core.display import duration
from ..core.tasks import TaskRecord, TaskState
from . import control, history, state, timer

POLL_S = 0.02


def wait_for(task_ids: list[str], timeout_s: float,
             on_tick: Callable[[list[TaskRecord]], None] | None = None) -> list[TaskRecord]:
    """Drive ``tick`` until the tasks end or time runs out.
    ``on_tick`` sees the records after every tick (the command line's progress)."""
    deadline = time.monotonic() + timeout_s
    timed_out: set[str] = set()
    while True:
        timer.tick()
        records = [rec for rec in (history.book().get(task_id) for task_id in task_ids) if rec is not None]
        for rec in records:
            if rec.task_id in timed_out and rec.state is TaskState.CANCELLED and not rec.message:
                # A cancel of our own making: say why, or the caller shows "Error: ".
                rec.message = msg("No result within {duration}: the task goes on at Hitem3D; Retry waits for it again",
                                  duration=duration(timeout_s))
        if on_tick is not None:
            on_tick(records)
        if all(rec.state.is_terminal for rec in records):
            return records
        if time.monotonic() >= deadline and not timed_out:
            for rec in records:
                if not rec.state.is_terminal:
                    timed_out.add(rec.task_id)
                    control.cancel(rec.task_id)
        time.sleep(POLL_S)


def run_calls(settings: ApiSettings, calls: dict[str, Call],
              timeout_s: float) -> dict[str, CallResult]:
    """Run each call (``core.calls``) on a worker and wait for all of them, driving
    ``tick``; a call with no answer in time is cancelled and comes back with
    an error."""
    register_secret(settings.client_secret)
    runner = state.runner()
    awaited = state.current.awaited_calls
    for key, call in calls.items():
        awaited[key] = None
        runner.start_call(key, settings, call)
    deadline = time.monotonic() + timeout_s
    try:
        while any(awaited.get(key) is None for key in calls) and time.monotonic() < deadline:
            timer.tick()
            time.sleep(POLL_S)
        results: dict[str, CallResult] = {}
        for key in calls:
            result = awaited.get(key)
            if result is None:
                runner.cancel(key)
                result = CallResult(key, error=msg("No answer from Hitem3D in time: retry"))
            results[key] = result
        return results
    finally:
        for key in calls:
            awaited.pop(key, None)


def wait_for_call(timeout_s: float) -> None:
    """Drive ``tick`` until the runner is idle."""
    deadline = time.monotonic() + timeout_s
    while state.current.runner is not None and state.current.runner.busy and time.monotonic() < deadline:
        timer.tick()
        time.sleep(POLL_S)
    timer.tick()
