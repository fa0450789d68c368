"""What a job says to the runner between its steps.

A job is a generator: each ``next()`` runs one short step on a worker and
yields what should happen before the next one. While it waits it holds no
thread; the runner (``jobs.JobRunner``) keeps it in a queue ordered by due
time and hands it to a free worker when the time comes.

NOTE: new task kinds write their own step generators (see
``pipeline.import_steps``); ``drive`` runs any of them to its end on the
calling thread, for tests and tools.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Generator, Union

from .cancel import CancelToken
from .errors import Cancelled


@dataclass(frozen=True)
class Wait:
    """Come back after ``seconds`` (a poll interval, a backoff)."""

    seconds: float


@dataclass(frozen=True)
class Transfer:
    """Continue on a transfer worker: the next step moves a large body (a
    download), which must not keep a status check of another task waiting."""


TRANSFER = Transfer()
Step = Union[Wait, Transfer]
Steps = Generator[Step, None, None]


def drive(steps: Steps, cancel: CancelToken) -> None:
    """Run ``steps`` to the end here, sleeping through each ``Wait`` (a
    cancel ends the sleep and is thrown into the job, which reports it)."""
    try:
        step = next(steps)
        while True:
            if isinstance(step, Wait) and cancel.wait(step.seconds):
                step = steps.throw(Cancelled())
            else:
                step = next(steps)
    except StopIteration:
        return
