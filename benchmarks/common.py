"""Small helpers shared by the benchmarks: progress lines, summaries, clean stdout."""

from __future__ import annotations

import gc
import json
import math
import os
import sys
import time
try:
    import resource
except ImportError:  # not on Windows: no figure is then said to be preempted
    resource = None  # type: ignore[assignment]
from pathlib import Path
from typing import Any, Sequence

REPO_ROOT = Path(__file__).resolve().parents[1]


def log(message: str) -> None:
    """Progress goes to stderr: stdout carries nothing but the JSON result."""
    print(f"bench: {message}", file=sys.stderr, flush=True)


def percentile(values: Sequence[float], fraction: float) -> float:
    """Nearest-rank percentile (``fraction`` in 0..1); nan for no values."""
    if not values:
        return math.nan
    ordered = sorted(values)
    rank = max(1, math.ceil(fraction * len(ordered)))
    return ordered[rank - 1]


def summary_ms(values_ns: Sequence[int]) -> dict[str, Any]:
    """Max, p99 and median of durations given in nanoseconds, in milliseconds."""
    values = [value / 1e6 for value in values_ns]
    return {
        "calls": len(values),
        "max_ms": round(max(values), 3) if values else None,
        "p99_ms": round(percentile(values, 0.99), 3) if values else None,
        "median_ms": round(percentile(values, 0.5), 3) if values else None,
    }


def preemptions() -> int:
    """How often the system has taken the calling thread off a CPU for
    another while it could run (Linux's involuntary context switches of
    the thread); 0 where it cannot say.

    NOTE: a call that spans one measures the scheduler as much as the call:
    on the 2-core benchmark machine the simulator, the worker process and a
    converter compete with Blender's main thread, which a user's machine
    (the simulator stands for a server elsewhere, and more cores) does not."""
    who = getattr(resource, "RUSAGE_THREAD", None)
    if who is None:
        return 0
    return int(resource.getrusage(who).ru_nivcsw)


def waits() -> int:
    """How often the calling thread has given up its CPU by itself so far
    (Linux's voluntary context switches: a blocking read, write or lock); 0
    where it cannot say."""
    who = getattr(resource, "RUSAGE_THREAD", None)
    if who is None:
        return 0
    return int(resource.getrusage(who).ru_nvcsw)


class GcClock:
    """Adds up the time Python's garbage collector runs, while installed."""

    def __init__(self) -> None:
        self.ns = 0
        self._started = 0

    def __call__(self, phase: str, info: dict[str, Any]) -> None:
        if phase == "start":
            self._started = time.perf_counter_ns()
        elif self._started:
            self.ns += time.perf_counter_ns() - self._started
            self._started = 0

    def __enter__(self) -> GcClock:
        gc.callbacks.append(self)
        return self

    def __exit__(self, *exc_info: object) -> None:
        gc.callbacks.remove(self)


def target(value: float | None, limit: float, *, at_most: bool = True) -> dict[str, Any]:
    """A figure next to its limit, with the verdict."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return {"value": value, "limit": limit, "met": None}
    met = value <= limit if at_most else value >= limit
    return {"value": value, "limit": limit, "rule": "at most" if at_most else "at least", "met": met}


class JsonStdout:
    """Route everything written to fd 1 (Blender prints there too) to stderr,
    and keep the real stdout for the one JSON result."""

    def __enter__(self) -> JsonStdout:
        sys.stdout.flush()
        self._saved = os.dup(1)
        os.dup2(2, 1)
        return self

    def emit(self, result: Any) -> None:
        sys.stdout.flush()
        os.write(self._saved, (json.dumps(result) + "\n").encode())

    def __exit__(self, *exc_info: object) -> None:
        sys.stdout.flush()
        os.dup2(self._saved, 1)
        os.close(self._saved)
