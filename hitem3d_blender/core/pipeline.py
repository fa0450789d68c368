"""The worker's whole job for one task: poll, download, hand the file over.

``import_steps`` is that job as steps (see ``steps``): each runs on a worker
thread, and between two polls the job waits in the runner's queue, holding no
thread. It never touches ``bpy`` and never raises: everything it learns leaves
as ``TaskUpdate`` values through ``emit``, and its last update is DOWNLOADED,
FAILED, CANCELLED or UNFOLLOWED (created, but no path this version knows
answers). ``run_import_job`` runs it to its end on one thread.
"""

from __future__ import annotations

import logging
import random
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import requests

from .api import Hitem3DClient, TaskStatus
from .display import duration
from .downloader import (
    DEFAULT_MAX_BYTES,
    CancelToken,
    check_image,
    stream_to_file,
    url_extension,
)
from .errors import BadResultFile, Cancelled, ExpiredUrl, Hitem3DError, NotFollowable, ServerError, TaskTimeout
from .messages import Message, msg, one_of
from .result_files import VALIDATORS, cached_result, path_for
from .steps import TRANSFER, Steps, Wait, drive
from .task_kinds import kind_of
from .tasks import TaskState, TaskUpdate

log = logging.getLogger(__name__)

Emit = Callable[[TaskUpdate], None]

# How long a task is waited for before it fails as timed out (retryable).
DEFAULT_TIMEOUT_S = 3600.0
MAX_RETRIES_IN_A_ROW = 6
BACKOFF_CAP_S = 60.0
MAX_URL_REFRESHES = 3
# Download progress sent to Blender at most this often: the sidebar shows it at
# most twice a second (ui_sync.REDRAWS_PER_S), and each update costs its main thread.
PROGRESS_EMIT_INTERVAL_S = 0.25
MAX_COVER_BYTES = 20 * 1024 * 1024

_REMOTE_STATES = {
    "created": TaskState.CREATED,
    "queueing": TaskState.QUEUEING,
    "processing": TaskState.PROCESSING,
}


@dataclass(frozen=True)
class ImportJob:
    """Plain inputs of one job: nothing here refers to Blender."""

    task_id: str
    dest: Path
    timeout_s: float = DEFAULT_TIMEOUT_S
    poll_interval_s: float = 3.0
    max_bytes: int = DEFAULT_MAX_BYTES
    download_timeout_s: float = 30.0
    cover_dest: Path | None = None  # where the cover preview goes; None: skip it


def backoff_delay(attempt: int, base_s: float, retry_after: float | None = None,
                  rng: Callable[[], float] = random.random) -> float:
    """Exponential backoff with jitter in the upper half, capped; never shorter
    than ``base_s`` (the poll interval), and a server's ``Retry-After`` is a floor.

    Retry ``attempt`` n waits between ``base * 2**(n-1)`` and ``base * 2**n``:
    an outage never brings more than one request per task per poll interval.
    """
    # The exponent is capped too: a huge float power would overflow.
    ceiling = min(BACKOFF_CAP_S, base_s * (2 ** min(max(0, attempt), 32)))
    delay = max(base_s, ceiling * (0.5 + 0.5 * rng()))
    return max(delay, retry_after or 0.0)


def run_import_job(
    job: ImportJob,
    client: Hitem3DClient,
    downloads: requests.Session,
    cancel: CancelToken,
    emit: Emit,
    *,
    clock: Callable[[], float] = time.monotonic,
) -> None:
    """Poll ``job.task_id`` until it succeeds, download its GLB to ``job.dest``,
    all on this thread (waits are ``cancel.wait``)."""
    drive(import_steps(job, client, downloads, cancel, emit, clock=clock), cancel)


def import_steps(
    job: ImportJob,
    client: Hitem3DClient,
    downloads: requests.Session,
    cancel: CancelToken,
    emit: Emit,
    *,
    clock: Callable[[], float] = time.monotonic,
) -> Steps:
    """The job as steps: yields ``Wait`` between polls and ``TRANSFER``
    before the download. A ``Cancelled`` thrown in at a yield ends it as
    CANCELLED, like a cancel seen inside a step."""
    try:
        yield from _steps(job, client, downloads, cancel, emit, clock)
    except Cancelled:
        emit(TaskUpdate(job.task_id, TaskState.CANCELLED))
    except NotFollowable as exc:
        # Created and paid for: kept with its ID, not failed (Retry asks again).
        log.info("Task %s: %s", job.task_id, exc)
        emit(TaskUpdate(job.task_id, TaskState.UNFOLLOWED, message=exc.message))
    except Hitem3DError as exc:
        log.info("Task %s failed: %s", job.task_id, exc)
        emit(TaskUpdate(job.task_id, TaskState.FAILED, message=exc.message))
    except Exception:  # noqa: BLE001 - a bug must still end the task, not the thread silently
        if cancel.cancelled:
            # Sockets torn down under a read can fail in any way: it is the
            # cancel the user asked for, not a bug to report.
            emit(TaskUpdate(job.task_id, TaskState.CANCELLED))
            return
        log.exception("Task %s: unexpected error", job.task_id)
        emit(TaskUpdate(job.task_id, TaskState.FAILED,
                        message=msg("Unexpected error: see the Hitem3D log, then retry")))


def _steps(job: ImportJob, client: Hitem3DClient, downloads: requests.Session,
           cancel: CancelToken, emit: Emit, clock: Callable[[], float]) -> Steps:
    cancel.raise_if_cancelled()
    cached = cached_result(job.dest, kind_of(job.task_id))
    if cached is not None:
        size = cached.stat().st_size
        emit(TaskUpdate(job.task_id, TaskState.DOWNLOADED, progress=1.0, result_path=str(cached),
                        bytes_done=size, bytes_total=size))
        return
    deadline = clock() + job.timeout_s
    failures = 0
    refreshes = 0
    state = TaskState.PENDING
    # NOTE: a poll whose answer reads as the last one sent says nothing new:
    # it is not sent, so Blender's main thread pays for what changed, not for
    # every poll of every task (20 a second at most).
    last_sent: tuple[TaskState, float | None] | None = None
    while True:
        cancel.raise_if_cancelled()
        try:
            status = client.query_task(job.task_id)
            if status.state == "success":
                # Retry notices after a download attempt stay in DOWNLOADING.
                state = TaskState.DOWNLOADING
                yield TRANSFER
                cancel.raise_if_cancelled()
                _download(job, status, downloads, cancel, emit)
                return
        except ExpiredUrl as exc:
            refreshes += 1
            if refreshes > MAX_URL_REFRESHES:
                raise
            log.info("Task %s: %s", job.task_id, exc)
            continue  # ask again at once: the new answer carries fresh links
        except Hitem3DError as exc:
            if not exc.retryable:
                raise
            failures += 1
            if failures >= MAX_RETRIES_IN_A_ROW or clock() >= deadline:
                raise
            retry_after = exc.retry_after if isinstance(exc, ServerError) else None
            delay = backoff_delay(failures, job.poll_interval_s, retry_after)
            log.info("Task %s: %s; retry %d in %.1f s", job.task_id, exc, failures, delay)
            emit(TaskUpdate(job.task_id, state,
                            message=msg("Retrying ({attempt} of {limit}): {reason}", attempt=failures + 1,
                                        limit=MAX_RETRIES_IN_A_ROW, reason=exc.message)))
            last_sent = None  # the next answer clears the notice
            yield Wait(min(delay, max(0.0, deadline - clock())))
            continue
        failures = 0
        state = _REMOTE_STATES[status.state]
        progress = None if status.progress is None else status.progress / 100.0
        if (state, progress) != last_sent:
            emit(TaskUpdate(job.task_id, state, progress=progress))
            last_sent = (state, progress)
        if clock() >= deadline:
            raise TaskTimeout(msg("Task not finished after {duration}: retry to keep waiting",
                                  duration=duration(job.timeout_s)))
        yield Wait(min(job.poll_interval_s, max(0.0, deadline - clock())))


def _fetch_cover(job: ImportJob, status: TaskStatus, downloads: requests.Session,
                 cancel: CancelToken) -> str:
    """The cover preview's path, or '' when there is none. A cover is a nicety:
    any failure except a cancel is logged and the model download goes on."""
    if job.cover_dest is None or not status.cover_url:
        return ""
    if job.cover_dest.is_file():
        return str(job.cover_dest)
    try:
        stream_to_file(downloads, status.cover_url, job.cover_dest, cancel=cancel,
                       max_bytes=MAX_COVER_BYTES, timeout_s=job.download_timeout_s,
                       validate=check_image)
    except Cancelled:
        raise
    except Hitem3DError as exc:
        log.info("Task %s: no cover preview: %s", job.task_id, exc)
        return ""
    return str(job.cover_dest)


def _download(job: ImportJob, status: TaskStatus, downloads: requests.Session,
              cancel: CancelToken, emit: Emit) -> None:
    if not status.model_url:
        raise ServerError(msg("Hitem3D reported success but sent no model link: retry in a few minutes"))
    extension = url_extension(status.model_url)
    accepted = kind_of(job.task_id).result_extensions
    if extension not in accepted:
        raise BadResultFile(msg(
            "The task's result is {kind}, not {wanted}: generate it again with {first} output",
            kind=extension.upper() or msg("an unknown format"),
            wanted=one_of([ext.upper() for ext in accepted]), first=accepted[0].upper()))
    emit(TaskUpdate(job.task_id, TaskState.DOWNLOADING, progress=0.0,
                    cover_path=_fetch_cover(job, status, downloads, cancel)))
    last_emit = 0.0

    def on_progress(done: int, total: int | None) -> None:
        nonlocal last_emit
        now = time.monotonic()
        if now - last_emit >= PROGRESS_EMIT_INTERVAL_S:
            last_emit = now
            fraction = done / total if total else None
            emit(TaskUpdate(job.task_id, TaskState.DOWNLOADING, progress=fraction,
                            bytes_done=done, bytes_total=total))

    result = stream_to_file(downloads, status.model_url, path_for(job.dest, extension), cancel=cancel,
                            on_progress=on_progress, max_bytes=job.max_bytes,
                            timeout_s=job.download_timeout_s, validate=VALIDATORS[extension])
    emit(TaskUpdate(job.task_id, TaskState.DOWNLOADED, progress=1.0, result_path=str(result.path),
                    bytes_done=result.size, bytes_total=result.size))
