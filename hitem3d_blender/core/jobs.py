"""The one owner of worker threads.

Workers get plain values in and put plain results on one queue; the main
thread drains it (``drain``). Nothing else in the add-on starts threads.

NOTE: threads are daemons and every wait they do is a ``CancelToken`` wait, so
``shutdown`` can stop them all within about a second: Blender must be able to
disable the add-on or quit while a download runs.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from dataclasses import dataclass
from typing import Any, Callable, Union

from .api import Hitem3DClient
from .cancel import CancelToken, WorkerGate, cancel_scope
from .errors import Hitem3DError
from .messages import NONE, Message, msg
from .pipeline import ImportJob, run_import_job
from .settings import ApiSettings
from .tasks import TaskUpdate

log = logging.getLogger(__name__)

# Hitem3D runs 10 tasks per account at once by default: every one of them
# should be polled, not wait for a slot. Idle pollers cost a sleeping thread,
# and API calls share one keep-alive connection (see api.py) whatever the count.
DEFAULT_MAX_WORKERS = 16
# Longest a shutdown waits for pending journal writes (normally milliseconds).
WRITER_CLOSE_TIMEOUT_S = 5.0
_SLOT_POLL_S = 0.2


@dataclass(frozen=True)
class CallResult:
    """The outcome of a one-off call (test connection, balance)."""

    key: str
    value: Any = None
    error: Message = NONE

    @property
    def ok(self) -> bool:
        return not self.error


Result = Union[TaskUpdate, CallResult]


@dataclass
class _Running:
    thread: threading.Thread
    cancel: CancelToken


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
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="hitem3d-writer", daemon=True)
                self._thread.start()
            self._changed.notify()

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
            self._changed.notify()
        if thread is not None:
            thread.join(timeout_s)
            if thread.is_alive():
                log.warning("The journal writer did not finish within %.1f s", timeout_s)


class JobRunner:
    """Runs import jobs and calls on daemon threads, at most ``max_workers`` busy."""

    def __init__(self, max_workers: int = DEFAULT_MAX_WORKERS) -> None:
        self._results: queue.SimpleQueue[Result] = queue.SimpleQueue()
        self._lock = threading.Lock()
        self._running: dict[str, _Running] = {}
        self._clients: dict[ApiSettings, Hitem3DClient] = {}
        self._slots = threading.BoundedSemaphore(max_workers)
        self._closed = False
        self._writer = _Writer()
        # Held by the main thread around Blender operators (see WorkerGate).
        self.gate = WorkerGate()

    # -- starting work ---------------------------------------------------------

    def client_for(self, settings: ApiSettings) -> Hitem3DClient:
        """One client per settings: one cached token, and keep-alive sessions that
        follow the settings' network configuration (for the API and for downloads)."""
        with self._lock:
            client = self._clients.get(settings)
            if client is None:
                client = self._clients[settings] = Hitem3DClient(settings)
            return client

    def is_running(self, key: str) -> bool:
        with self._lock:
            running = self._running.get(key)
            return running is not None and running.thread.is_alive()

    def start_import(self, job: ImportJob, settings: ApiSettings) -> None:
        client = self.client_for(settings)

        def work(cancel: CancelToken) -> None:
            run_import_job(job, client, client.downloads, cancel, self._results.put)

        self._start(job.task_id, work)

    def start_call(self, key: str, settings: ApiSettings, call: Callable[[Hitem3DClient], Any]) -> None:
        """Run ``call(client)`` on a worker; its value or error message arrives
        as a ``CallResult`` named ``key``."""
        client = self.client_for(settings)

        def work(cancel: CancelToken) -> None:
            try:
                cancel.raise_if_cancelled()
                value = call(client)
            except Hitem3DError as exc:
                self._results.put(CallResult(key, error=exc.message))
            except Exception:  # noqa: BLE001
                log.exception("Call %s failed", key)
                self._results.put(CallResult(key, error=msg("Unexpected error: see the Hitem3D log")))
            else:
                self._results.put(CallResult(key, value=value))

        self._start(key, work)

    def write_later(self, key: str, write: Callable[[], None]) -> None:
        """Run ``write()`` on the writer thread, off the main thread; a newer
        write for the same ``key`` replaces one not yet started."""
        self._writer.submit(key, write)

    def flush_writes(self, timeout_s: float = 5.0) -> bool:
        """Wait for the writes handed to ``write_later``; False on timeout."""
        return self._writer.flush(timeout_s)

    def _start(self, key: str, work: Callable[[CancelToken], None]) -> None:
        with self._lock:
            if self._closed:
                raise RuntimeError("JobRunner is shut down")
            running = self._running.get(key)
            if running is not None and running.thread.is_alive():
                raise RuntimeError(f"{key} is already running")
            cancel = CancelToken(self.gate)
            thread = threading.Thread(target=self._worker, args=(key, work, cancel),
                                      name=f"hitem3d-{key[:8]}", daemon=True)
            self._running[key] = _Running(thread, cancel)
        thread.start()

    def _worker(self, key: str, work: Callable[[CancelToken], None], cancel: CancelToken) -> None:
        # Wait for a free slot, but stay cancellable while waiting.
        while not self._slots.acquire(timeout=_SLOT_POLL_S):
            if cancel.cancelled:
                # Let the job report its own cancellation (it checks first thing).
                work(cancel)
                self._forget(key)
                return
        try:
            with cancel_scope(cancel):
                work(cancel)
        finally:
            self._slots.release()
            self._forget(key)

    def _forget(self, key: str) -> None:
        with self._lock:
            running = self._running.get(key)
            if running is not None and running.thread is threading.current_thread():
                del self._running[key]

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
        with self._lock:
            running = self._running.get(key)
        if running is not None:
            running.cancel.cancel()

    @property
    def busy(self) -> bool:
        with self._lock:
            return any(running.thread.is_alive() for running in self._running.values())

    def shutdown(self, timeout_s: float = 1.0) -> list[str]:
        """Cancel everything, wait up to ``timeout_s`` in all, close connections.

        Returns the keys of threads still alive (should be none)."""
        with self._lock:
            self._closed = True
            running = dict(self._running)
        for item in running.values():
            item.cancel.cancel()
        deadline = time.monotonic() + timeout_s
        for item in running.values():
            item.thread.join(max(0.0, deadline - time.monotonic()))
        # Writes already handed over (the journal) still land. They have
        # their own budget: one journal write takes milliseconds, but an fsync
        # on a busy disk can take far longer than what the workers left over.
        self._writer.close(WRITER_CLOSE_TIMEOUT_S)
        for client in list(self._clients.values()):
            client.close()
        alive = [key for key, item in running.items() if item.thread.is_alive()]
        if alive:
            log.warning("Workers still running after shutdown: %s", ", ".join(alive))
        return alive

