"""The one owner of worker threads (in the worker process, see ``worker_process``).

Jobs are step generators (see ``steps``). A job that waits for its next poll
is an entry in a queue ordered by due time, not a sleeping thread: a small
pool of API workers runs the steps that are due (status checks, one-off
calls), and a separate pool of transfer workers runs downloads, so a large
body never keeps another task's status check waiting. Workers put plain
results on one queue; the main thread drains it (``drain``). Nothing else in
the add-on starts threads, and none of them runs in Blender's process: the
runner lives in the worker process (``worker_main``), and Blender's side talks
to it through ``worker_process.WorkerProcess``, which has the same methods.

NOTE: every wait here is cancellable within a fraction of a second: a queued
job that is cancelled ends at once (its CANCELLED result is queued by
``cancel`` itself), a running one has its sockets shut (``cancel``), and API
calls never wait for a connection (the pool has one per API worker). So
Blender can cancel, remove, disable the add-on or quit at any moment.
"""

from __future__ import annotations

import contextlib
import dataclasses
import heapq
import itertools
import logging
import queue
import threading
import time
from dataclasses import dataclass
from typing import Any, Callable, Iterator, Union

from .api import Hitem3DClient
from .cancel import CancelToken, cancel_scope
from .errors import Cancelled, Hitem3DError
from .messages import NONE, Message, msg
from .pipeline import ImportJob, import_steps
from .settings import ApiSettings
from .steps import Steps, Transfer, Wait
from .tasks import TaskState, TaskUpdate

log = logging.getLogger(__name__)

# Workers for API steps (status checks and calls) and the keep-alive
# connections to the API host: one each, so no call waits for a connection.
DEFAULT_MAX_WORKERS = 6
# Downloads at once; more wait their turn in the transfer queue (holding nothing).
DEFAULT_TRANSFER_WORKERS = 3
# The request budget: status checks per second in all, across every task.
# NOTE: Hitem3D documents no rate limit; this keeps one Blender polite. Tasks
# are checked in the order their checks fall due, so when more tasks run than
# the budget serves at their interval, every task is checked equally less
# often (interval = tasks / budget), none starves. Calls (balance, submit,
# connection test) come first and are not counted.
STATUS_CHECKS_PER_S = 20.0
# Longest a shutdown waits for pending journal writes (normally milliseconds).
WRITER_CLOSE_TIMEOUT_S = 5.0

_CALL, _CHECK = 0, 1  # priorities in a queue: calls before status checks


@dataclass(frozen=True)
class CallResult:
    """The outcome of a one-off call (test connection, balance)."""

    key: str
    value: Any = None
    error: Message = NONE

    @property
    def ok(self) -> bool:
        return not self.error


@dataclass(frozen=True)
class JobEnded:
    """A run is over and sends nothing more (``JobRunner(report_ends=True)``):
    the worker process passes it on, so Blender's side knows what still runs."""

    key: str
    run: int


Result = Union[TaskUpdate, CallResult]


class _Job:
    """One run of a job: its steps, its cancel token, where it is."""

    def __init__(self, key: str, run: int, steps: Steps, cancel: CancelToken, priority: int,
                 on_dropped: Callable[[], None]) -> None:
        self.key = key
        self.run = run
        self.steps = steps
        self.cancel = cancel
        self.priority = priority
        self.on_dropped = on_dropped  # the final result of a job cancelled before its first step
        self.queued = False  # in a pool's queue (not on a worker)
        self.done = False


class RequestBudget:
    """A token bucket: at most ``rate`` takes per second, ``burst`` at once."""

    def __init__(self, rate: float, burst: float | None = None,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.rate = rate
        self.burst = burst if burst is not None else max(1.0, rate)
        self._tokens = self.burst
        self._clock = clock
        self._stamp = clock()

    def take(self) -> float:
        """0 if a request may go now (and counts it), else seconds until one may."""
        now = self._clock()
        self._tokens = min(self.burst, self._tokens + (now - self._stamp) * self.rate)
        self._stamp = now
        if self._tokens >= 1.0 - 1e-9:  # float steps: 0.1 s at 10/s is one token
            self._tokens = max(0.0, self._tokens - 1.0)
            return 0.0
        return (1.0 - self._tokens) / self.rate


class _Pool:
    """Worker threads that run the due steps of queued jobs, at most ``size`` at once."""

    def __init__(self, runner: JobRunner, name: str, size: int, budget: RequestBudget | None) -> None:
        self._runner = runner
        self._name = name
        self._size = size
        self._budget = budget
        # Shares the runner's lock; a pool wakes only its own workers.
        self._cond = threading.Condition(runner._lock)
        self._heap: list[tuple[int, float, int, _Job]] = []
        self._threads: set[threading.Thread] = set()
        self._idle = 0
        self._seq = itertools.count()

    @property
    def threads(self) -> list[threading.Thread]:
        return list(self._threads)

    def put(self, job: _Job, due: float) -> None:
        """Queue ``job`` for a step at ``due``; caller holds the runner's lock."""
        job.queued = True
        heapq.heappush(self._heap, (job.priority, due, next(self._seq), job))
        if not self._runner._deferred:
            self.wake()

    def start(self) -> None:
        """Start every worker; they wait for work, holding nothing.

        NOTE: started at once, while nothing else runs: a thread started later,
        from a timer call while workers run Python, held the main thread for
        several milliseconds waiting for the new thread to say it is up."""
        for number in range(self._size):
            thread = threading.Thread(target=self._work, name=f"hitem3d-{self._name}-{number}", daemon=True)
            self._threads.add(thread)
            thread.start()

    def wake(self) -> None:
        """Get an idle worker looking at the queue; caller holds the runner's lock."""
        if self._heap and self._idle:
            self._cond.notify()

    def wake_all(self) -> None:
        """Caller holds the runner's lock."""
        self._cond.notify_all()

    def _next(self) -> _Job | None:
        """The next due job (None: the runner closed). Caller holds the runner's lock."""
        runner = self._runner
        while not runner._closed:
            while self._heap and self._heap[0][3].done:
                heapq.heappop(self._heap)  # dropped while queued
            timeout: float | None = None
            if self._heap:
                priority, due, _, job = self._heap[0]
                wait = due - time.monotonic()
                if wait <= 0 and priority == _CHECK and self._budget is not None:
                    wait = self._budget.take()
                if wait <= 0:
                    heapq.heappop(self._heap)
                    job.queued = False
                    if self._heap and self._heap[0][1] <= time.monotonic():
                        self.wake()  # more are due: another worker looks
                    return job
                timeout = wait
            self._idle += 1
            try:
                self._cond.wait(timeout)  # None: until work comes
            finally:
                self._idle -= 1
        return None

    def _work(self) -> None:
        runner = self._runner
        try:
            while True:
                with runner._changed:
                    job = self._next()
                    if job is None:
                        return
                runner._step(job)
        finally:
            with runner._changed:
                self._threads.discard(threading.current_thread())


class _Writer:
    """One daemon thread for small file writes handed over by the main thread.

    NOTE: a write that ends in fsync takes milliseconds, tens while a download
    fills the disk cache: too long for Blender's main thread. Only the newest
    write per key is kept, so a burst of state changes costs one write.
    """

    def __init__(self) -> None:
        self._changed = threading.Condition()
        self._pending: dict[str, Callable[[], None]] = {}
        self._idle = threading.Event()
        self._idle.set()
        self._thread: threading.Thread | None = None
        self._closed = False

    def submit(self, key: str, write: Callable[[], None]) -> None:
        with self._changed:
            if self._closed:
                raise RuntimeError("JobRunner is shut down")
            self._pending[key] = write
            self._idle.clear()
            self._changed.notify_all()

    def start(self) -> None:
        with self._changed:
            self._thread = threading.Thread(target=self._run, name="hitem3d-writer", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while True:
            with self._changed:
                while not self._pending and not self._closed:
                    self._idle.set()
                    self._changed.wait()
                if not self._pending:
                    self._idle.set()
                    return
                pending, self._pending = self._pending, {}
            for key, write in pending.items():
                try:
                    write()
                except Exception:  # noqa: BLE001 - a failed write must not end the writer
                    log.exception("Background write %s failed", key)

    def flush(self, timeout_s: float) -> bool:
        """Wait until every write handed over is done; False on timeout."""
        return self._idle.wait(timeout_s)

    def close(self, timeout_s: float) -> None:
        """Finish the writes handed over (up to ``timeout_s``), then stop."""
        with self._changed:
            self._closed = True
            thread = self._thread
            self._changed.notify_all()
        if thread is not None:
            thread.join(timeout_s)
            if thread.is_alive():
                log.warning("The journal writer did not finish within %.1f s", timeout_s)


class JobRunner:
    """Runs import jobs and calls: ``max_workers`` API workers (and as many
    keep-alive API connections), ``transfer_workers`` download workers, and
    the request budget for status checks."""

    def __init__(self, max_workers: int = DEFAULT_MAX_WORKERS, *,
                 transfer_workers: int = DEFAULT_TRANSFER_WORKERS,
                 checks_per_s: float | None = STATUS_CHECKS_PER_S,
                 results: queue.SimpleQueue[Any] | None = None, report_ends: bool = False) -> None:
        # Results go to ``results`` when given (the worker process sends them
        # on from there); with ``report_ends`` a ``JobEnded`` follows each run's last one.
        self._results: queue.SimpleQueue[Any] = results if results is not None else queue.SimpleQueue()
        self._report_ends = report_ends
        self._lock = threading.Lock()
        self._changed = threading.Condition(self._lock)
        self._current: dict[str, _Job] = {}  # the latest run of each key
        self._live: set[_Job] = set()  # every run not yet ended (cancelled ones included)
        self._clients: dict[ApiSettings, Hitem3DClient] = {}
        self._runs = itertools.count(1)
        self._closed = False
        self._deferred = 0  # inside ``starting_many``: workers are woken at its end
        self.max_workers = max_workers
        budget = RequestBudget(checks_per_s) if checks_per_s else None
        self._api = _Pool(self, "api", max_workers, budget)
        self._transfer = _Pool(self, "transfer", transfer_workers, None)
        self._writer = _Writer()
        # Every thread starts here, once (see ``_Pool.start``).
        self._api.start()
        self._transfer.start()
        self._writer.start()

    # -- starting work ---------------------------------------------------------

    def client_for(self, settings: ApiSettings) -> Hitem3DClient:
        """One client per settings: one cached token, and keep-alive sessions that
        follow the settings' network configuration (for the API and for downloads)."""
        with self._changed:
            client = self._clients.get(settings)
            if client is None:
                client = self._clients[settings] = Hitem3DClient(settings, pool_size=self.max_workers)
            return client

    def is_running(self, key: str) -> bool:
        """A run of ``key`` is under way and not cancelled."""
        # NOTE: no lock (see ``busy``): one dict read, then the job's own flags.
        job = self._current.get(key)
        return job is not None and not job.done and not job.cancel.cancelled

    def start_import(self, job: ImportJob, settings: ApiSettings, *, run: int | None = None) -> int:
        """Start polling and downloading ``job``; returns the run's number
        (``run``, or the next of our own), which every ``TaskUpdate`` of this run carries."""
        client = self.client_for(settings)
        run = next(self._runs) if run is None else run
        cancel = CancelToken()

        def emit(update: TaskUpdate) -> None:
            self._results.put(dataclasses.replace(update, run=run))

        steps = import_steps(job, client, client.downloads, cancel, emit)
        self._start(_Job(job.task_id, run, steps, cancel, _CHECK,
                         lambda: emit(TaskUpdate(job.task_id, TaskState.CANCELLED))))
        return run

    def start_call(self, key: str, settings: ApiSettings, call: Callable[[Hitem3DClient], Any], *,
                   run: int | None = None) -> None:
        """Run ``call(client)`` on an API worker; its value or error message
        arrives as a ``CallResult`` named ``key``."""
        client = self.client_for(settings)
        cancel = CancelToken()

        def steps() -> Steps:
            try:
                cancel.raise_if_cancelled()
                value = call(client)
            except Hitem3DError as exc:
                self._results.put(CallResult(key, error=exc.message))
            except Exception:  # noqa: BLE001
                if cancel.cancelled:
                    self._results.put(CallResult(key, error=Cancelled().message))
                else:
                    log.exception("Call %s failed", key)
                    self._results.put(CallResult(key, error=msg("Unexpected error: see the Hitem3D log")))
            else:
                self._results.put(CallResult(key, value=value))
            return
            yield  # a generator of one step

        self._start(_Job(key, next(self._runs) if run is None else run, steps(), cancel, _CALL,
                         lambda: self._results.put(CallResult(key, error=Cancelled().message))))

    @contextlib.contextmanager
    def starting_many(self) -> Iterator[None]:
        """Start many jobs in the block, waking the workers once at its end.

        NOTE: woken per job, workers would start their first checks while the
        main thread is still adding jobs, and take the GIL from it at every
        lock and system call: a paste of 1,000 IDs took three times as long."""
        with self._changed:
            self._deferred += 1
        try:
            yield
        finally:
            with self._changed:
                self._deferred -= 1
                if not self._deferred:
                    self._api.wake()
                    self._transfer.wake()

    def write_later(self, key: str, write: Callable[[], None]) -> None:
        """Run ``write()`` on the writer thread, off the main thread; a newer
        write for the same ``key`` replaces one not yet started."""
        self._writer.submit(key, write)

    def flush_writes(self, timeout_s: float = 5.0) -> bool:
        """Wait for the writes handed to ``write_later``; False on timeout."""
        return self._writer.flush(timeout_s)

    def _start(self, job: _Job) -> None:
        with self._changed:
            if self._closed:
                raise RuntimeError("JobRunner is shut down")
            previous = self._current.get(job.key)
            if previous is not None and not previous.done and not previous.cancel.cancelled:
                raise RuntimeError(f"{job.key} is already running")
            self._current[job.key] = job
            self._live.add(job)
            self._api.put(job, time.monotonic())

    # -- running steps -----------------------------------------------------------

    def _step(self, job: _Job) -> None:
        """Run one step of ``job`` on this worker, then queue it again or end it."""
        step: Wait | Transfer | None = None
        try:
            with cancel_scope(job.cancel):
                if job.cancel.cancelled:
                    step = job.steps.throw(Cancelled())
                else:
                    step = next(job.steps)
        except StopIteration:
            step = None
        except Cancelled:
            job.on_dropped()  # cancelled before its first step ran
        except Exception:  # noqa: BLE001 - jobs report their own errors; this is a bug
            log.exception("Job %s ended unexpectedly", job.key)
            job.on_dropped()
        with self._changed:
            if step is not None and not self._closed and not job.cancel.cancelled:
                if isinstance(step, Wait):
                    self._api.put(job, time.monotonic() + max(0.0, step.seconds))
                else:
                    self._transfer.put(job, time.monotonic())
                return
            self._end(job)
        if step is not None:
            # Cancelled (or shut down) after its step was over: it ends now,
            # not when its next poll falls due.
            self._drop(job)
        self._ended(job)

    def _end(self, job: _Job) -> None:
        """Caller holds the lock."""
        job.done = True
        self._live.discard(job)
        if self._current.get(job.key) is job:
            del self._current[job.key]

    def _ended(self, job: _Job) -> None:
        """After a run's last result (its final update, or the cancel ``_drop`` queued)."""
        if self._report_ends:
            self._results.put(JobEnded(job.key, job.run))

    # -- results and stopping ------------------------------------------------------

    def drain(self, limit: int = 1000) -> list[Result]:
        """Results waiting for the main thread, oldest first (never blocks)."""
        items: list[Result] = []
        while len(items) < limit:
            try:
                items.append(self._results.get_nowait())
            except queue.Empty:
                break
        return items

    def cancel(self, key: str) -> None:
        """Cancel the current run of ``key``. Queued, it ends here and now (its
        CANCELLED result is queued); on a worker, its sockets are shut and it
        ends within a moment."""
        with self._changed:
            job = self._current.get(key)
            if job is None or job.done:
                return
            job.cancel.cancel()
            if not job.queued:
                return
            self._end(job)  # its queue entry is skipped from now on
        self._drop(job)
        self._ended(job)

    @staticmethod
    def _drop(job: _Job) -> None:
        """End a queued job on this thread: the job reports its own cancel."""
        try:
            job.steps.throw(Cancelled())
        except StopIteration:
            return
        except Cancelled:
            job.on_dropped()
            return
        except Exception:  # noqa: BLE001
            log.exception("Job %s failed while cancelled", job.key)
            job.on_dropped()
            return
        job.steps.close()  # it wanted to go on: it may not

    @property
    def busy(self) -> bool:
        """Some run has not ended: more results may come."""
        # NOTE: no lock: the timer asks at every call, and a worker preempted
        # while holding the lock kept it waiting for milliseconds. Reading a
        # set's size is atomic; a job leaves it only after its last result.
        return bool(self._live)

    def threads(self) -> list[threading.Thread]:
        """The worker threads alive now (for tests and benchmarks)."""
        with self._changed:
            return self._api.threads + self._transfer.threads

    def shutdown(self, timeout_s: float = 1.0) -> list[str]:
        """Cancel everything, wait up to ``timeout_s`` in all, close connections.

        Returns the keys of runs still going (should be none)."""
        with self._changed:
            self._closed = True
            live = list(self._live)
            threads = self._api.threads + self._transfer.threads
            queued = [job for job in live if job.queued]
            for job in queued:
                self._end(job)
            self._api.wake_all()
            self._transfer.wake_all()
        for job in live:
            job.cancel.cancel()
        for job in queued:
            self._drop(job)  # each reports its cancel, like a running one
            self._ended(job)
        deadline = time.monotonic() + timeout_s
        for thread in threads:
            thread.join(max(0.0, deadline - time.monotonic()))
        # Writes already handed over (the journal) still land. They have
        # their own budget: one journal write takes milliseconds, but an fsync
        # on a busy disk can take far longer than what the workers left over.
        self._writer.close(WRITER_CLOSE_TIMEOUT_S)
        for client in list(self._clients.values()):
            client.close()
        alive = sorted({thread.name for thread in threads if thread.is_alive()})
        if alive:
            log.warning("Workers still running after shutdown: %s", ", ".join(alive))
        return alive
