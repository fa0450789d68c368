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

import requests

from .api import Hitem3DClient
from .downloader import CancelToken
from .errors import Hitem3DError
from .pipeline import ImportJob, run_import_job
from .settings import ApiSettings
from .tasks import TaskUpdate

log = logging.getLogger(__name__)

DEFAULT_MAX_WORKERS = 6
_SLOT_POLL_S = 0.2


@dataclass(frozen=True)
class CallResult:
    """The outcome of a one-off call (test connection, balance)."""

    key: str
    value: Any = None
    error: str = ""

    @property
    def ok(self) -> bool:
        return not self.error


Result = Union[TaskUpdate, CallResult]


@dataclass
class _Running:
    thread: threading.Thread
    cancel: CancelToken


class JobRunner:
    """Runs import jobs and calls on daemon threads, at most ``max_workers`` busy."""

    def __init__(self, max_workers: int = DEFAULT_MAX_WORKERS) -> None:
        self._results: queue.SimpleQueue[Result] = queue.SimpleQueue()
        self._lock = threading.Lock()
        self._running: dict[str, _Running] = {}
        self._clients: dict[ApiSettings, Hitem3DClient] = {}
        self._downloads = requests.Session()
        self._slots = threading.BoundedSemaphore(max_workers)
        self._closed = False

    # -- starting work ---------------------------------------------------------

    def client_for(self, settings: ApiSettings) -> Hitem3DClient:
        """One client (one keep-alive session, one cached token) per settings."""
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
            run_import_job(job, client, self._downloads, cancel, self._results.put)

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
                self._results.put(CallResult(key, error=str(exc)))
            except Exception:  # noqa: BLE001
                log.exception("Call %s failed", key)
                self._results.put(CallResult(key, error="Unexpected error: see the Hitem3D log"))
            else:
                self._results.put(CallResult(key, value=value))

        self._start(key, work)

    def _start(self, key: str, work: Callable[[CancelToken], None]) -> None:
        with self._lock:
            if self._closed:
                raise RuntimeError("JobRunner is shut down")
            running = self._running.get(key)
            if running is not None and running.thread.is_alive():
                raise RuntimeError(f"{key} is already running")
            cancel = CancelToken()
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
        for client in list(self._clients.values()):
            client.close()
        self._downloads.close()
        alive = [key for key, item in running.items() if item.thread.is_alive()]
        if alive:
            log.warning("Workers still running after shutdown: %s", ", ".join(alive))
        return alive

