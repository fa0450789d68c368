"""Submit-task and balance calls, and what the New Generation panel shows of them.

The calls run on the engine's workers like every other network call
(``engine.control.start_call``); ``engine.timer.tick`` hands their results to
``apply_call`` on the main thread. A submission's answer is a task ID, which
then follows the import path like a pasted one.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any, Callable, Union
from urllib.parse import urlsplit

from ..scene import mesh_export
from . import ui_sync
from ..core import mesh_upload, sending
from ..core.import_options import ImportOptions
from ..core.api import Hitem3DClient
from ..core.jobs import CallResult
from ..core.kind_requests import KindRequest
from ..core.messages import NONE, Message, msg
from ..core.pipeline import DEFAULT_TIMEOUT_S
from ..core.settings import DEFAULT_BASE_URL, ApiSettings
from ..core.submission import Submission
from ..engine import control, history, timer

# A generation (submit-task) or a task of a newer kind (split, depth, …).
Request = Union[Submission, KindRequest]

SUBMIT_KEY_PREFIX = "submit-"
BALANCE_KEY_PREFIX = "balance-"
_KEPT_OUTCOMES = 20


@dataclass(frozen=True)
class PendingSubmission:
    """A submit-task call on its way: what the panel shows and what follows it."""

    key: str
    submission: Request
    settings: ApiSettings
    options: ImportOptions
    thumbnail: str
    timeout_s: float


@dataclass(frozen=True)
class SubmissionOutcome:
    task_id: str = ""
    error: Message = NONE


@dataclass(frozen=True)
class BalanceStatus:
    credits: float | None = None  # the last known balance
    error: Message = NONE
    checking: bool = False


class _State:
    """Module state in one object so ``reset`` can drop it in one line."""

    def __init__(self) -> None:
        self.submissions: dict[str, PendingSubmission] = {}  # by call key, oldest first
        self.outcomes: dict[str, SubmissionOutcome] = {}
        self.submit_count = 0
        self.notice = NONE
        self.balance: BalanceStatus | None = None
        self.balance_seq = 0  # the latest balance check started
        self.balance_applied = 0  # the latest balance check applied
        self.disclosed = False  # what leaves this computer was said (at the first request of a session)


_state = _State()


def reset() -> None:
    """Forget everything (``session.shutdown`` has stopped the workers)."""
    global _state
    _state = _State()


# -- submissions -------------------------------------------------------------------------------


def sender(submission: Request) -> Callable[[Hitem3DClient], Any]:
    """The worker's call that creates the task on Hitem3D (``core.sending``:
    with the upload of an own mesh first). Where an upload goes is read now,
    on the main thread: what the artist was told is where it goes."""
    try:
        storage = mesh_upload.target_from_env() if sending.uploads_mesh(submission) else mesh_upload.HITEM3D_STORAGE
    except mesh_upload.InvalidUploadTarget as exc:
        refusal = exc

        def refuse(client: Hitem3DClient) -> Any:
            raise refusal  # on the worker, so it comes back like any refusal
        return refuse
    return lambda client: sending.send(client, submission, storage=storage)


def start_submission(submission: Request, settings: ApiSettings, options: ImportOptions,
                     thumbnail_path: str = "", *, timeout_s: float = DEFAULT_TIMEOUT_S) -> str:
    """Send ``submission`` from a worker; returns the call's key. When Hitem3D
    answers, the new task joins the list and follows the import path."""
    _state.submit_count += 1
    key = f"{SUBMIT_KEY_PREFIX}{_state.submit_count}"
    _state.submissions[key] = PendingSubmission(key, submission, settings, options, thumbnail_path, timeout_s)
    _state.notice = NONE
    if not _state.disclosed:
        # Once a session, as the first request leaves: what goes where.
        _state.disclosed = True
        ui_sync.post_report(what_leaves(settings), "INFO")
    control.start_call(key, settings, sender(submission))
    ui_sync.redraw()
    return key


def disclosed() -> bool:
    """Whether this session has said what leaves this computer (its first request is sent)."""
    return _state.disclosed


def what_leaves(settings: ApiSettings | None) -> Message:
    """What leaves this computer, with the hosts it goes to now."""
    api = urlsplit(settings.base_url if settings is not None else DEFAULT_BASE_URL).netloc
    try:
        storage = mesh_upload.target_from_env()
    except mesh_upload.InvalidUploadTarget:
        storage = mesh_upload.HITEM3D_STORAGE
    return sending.what_leaves(api, storage)


def pending_submissions() -> list[PendingSubmission]:
    return list(_state.submissions.values())


def generate_notice() -> Message:
    """The last problem with a generation, shown in the New Generation panel."""
    return _state.notice


def set_generate_notice(text: Message) -> None:
    _state.notice = text
    ui_sync.redraw()


def wait_for_submission(key: str, timeout_s: float) -> SubmissionOutcome:
    """Background mode: drive ``timer.tick`` until the submission ``key`` is answered."""
    deadline = time.monotonic() + timeout_s
    while key in _state.submissions and time.monotonic() < deadline:
        timer.tick()
        time.sleep(0.02)
    return _state.outcomes.pop(key, SubmissionOutcome(
        error=msg("No answer from Hitem3D in time: check your tasks on the Hitem3D platform before sending again")))


# -- the balance -------------------------------------------------------------------------------


def balance_status() -> BalanceStatus | None:
    return _state.balance


def set_balance_error(text: Message) -> None:
    """Show why the balance could not be asked for (no credentials, offline)."""
    previous = _state.balance or BalanceStatus()
    _state.balance = BalanceStatus(previous.credits, text, previous.checking)
    ui_sync.redraw()


def refresh_balance(settings: ApiSettings, *, force: bool = False) -> None:
    """Ask for the balance on a worker. A check already on its way is enough
    unless ``force`` (after a submission: that answer may predate the charge)."""
    previous = _state.balance or BalanceStatus()
    if previous.checking and not force:
        return
    _state.balance_seq += 1
    _state.balance = BalanceStatus(previous.credits, NONE, checking=True)
    control.start_call(f"{BALANCE_KEY_PREFIX}{_state.balance_seq}", settings, lambda client: client.balance())
    ui_sync.redraw()


# -- results, on the main thread -----------------------------------------------------------------


def apply_call(result: CallResult) -> bool:
    """Apply a submission's or a balance check's result; False for other calls."""
    if result.key in _state.submissions:
        _apply_submission(_state.submissions.pop(result.key), result)
        return True
    if result.key.startswith(BALANCE_KEY_PREFIX):
        seq = int(result.key[len(BALANCE_KEY_PREFIX):])
        if seq < _state.balance_applied:
            return True  # an older answer that arrived late
        _state.balance_applied = seq
        previous = _state.balance or BalanceStatus()
        checking = seq < _state.balance_seq
        if result.ok:
            _state.balance = BalanceStatus(float(result.value), NONE, checking)
        else:
            _state.balance = BalanceStatus(previous.credits, result.error, checking)
        return True
    return False


def discard_mesh(submission: Request) -> None:
    """Remove the selection exported for ``submission`` (Texture Selection, a
    kind's mesh) once it is no longer needed: sent, or refused. Only ever a
    file of our own (``mesh_export.discard`` checks)."""
    path = submission.source_path if isinstance(submission, KindRequest) else submission.mesh
    if path:
        mesh_export.discard(path)


def _apply_submission(pending: PendingSubmission, result: CallResult) -> None:
    # A selection exported for this request has been sent (or refused): not
    # kept; a retry exports it again.
    discard_mesh(pending.submission)
    if not result.ok:
        _state.notice = result.error
        _remember_outcome(pending.key, SubmissionOutcome(error=result.error))
        ui_sync.post_report(result.error, "ERROR")
        refresh_balance(pending.settings, force=True)  # "not enough credits" shows how many
        return
    task_id = str(result.value)
    rec = control.start_import(task_id, pending.settings, timeout_s=pending.timeout_s, options=pending.options,
                              model=pending.submission.model)
    rec.generation = pending.submission.to_dict()
    if pending.thumbnail and not rec.cover_path:
        # Until Hitem3D's cover arrives (it replaces this through the update path).
        rec.cover_path = pending.thumbnail
    history.changed()
    ui_sync.select(task_id)
    _remember_outcome(pending.key, SubmissionOutcome(task_id=task_id))
    ui_sync.post_report(msg("Sent to Hitem3D: task {short}", short=rec.short_id), "INFO")
    refresh_balance(pending.settings, force=True)


def _remember_outcome(key: str, outcome: SubmissionOutcome) -> None:
    _state.outcomes[key] = outcome
    while len(_state.outcomes) > _KEPT_OUTCOMES:
        del _state.outcomes[next(iter(_state.outcomes))]
