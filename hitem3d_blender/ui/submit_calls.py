"""Requests that spend credits, the balance, and what the panels show of them.

A request waits in the send queue (``core.send_queue``) until it may go: the
session's first balance, a balance that covers it, a free slot on the account.
Then it is sent on the engine's workers like every other network call
(``engine.control.start_call``); ``engine.timer.tick`` hands the answers to
``apply_call`` and moves the queue on (``pump``) on the main thread. A
request's answer is a task ID, which then follows the import path like a
pasted one.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, replace
from typing import Callable, Union
from urllib.parse import urlsplit

from ..scene import mesh_export
from . import preferences, ui_sync
from .. import identity
from ..core import calls, kept_sends, kind_requests, mesh_upload, prices, send_queue, sending
from ..core.errors import Cancelled, Hitem3DError
from ..core.import_options import ImportOptions
from ..core.jobs import CallResult
from ..core.kind_requests import KindRequest
from ..core.messages import NONE, Message, msg
from ..core.pipeline import DEFAULT_TIMEOUT_S
from ..core.prices import Estimate
from ..core.send_queue import FetchBalance, Go, Refuse, Refused, Send, Stage
from ..core.settings import DEFAULT_BASE_URL, ApiSettings
from ..core.submission import Submission, validate
from ..core.tasks import TaskState
from ..engine import control, history, ownership, state, timer

log = logging.getLogger(__package__)

# A generation (submit-task) or a task of a newer kind (split, depth, …).
Request = Union[Submission, KindRequest]

SUBMIT_KEY_PREFIX = "submit-"
BALANCE_KEY_PREFIX = "balance-"
WATCH_KEY_PREFIX = "watch-"
_KEPT_OUTCOMES = 20

# Where a request's line and its notices are shown: each panel its own.
PANEL_GENERATE = "generate"
PANEL_PARTS = "parts"
PANEL_RELIEF = "relief"

# After a cancel during an upload the balance is asked for at once and again
# this much later: Hitem3D may still be working on what it had received.
RECHECK_AFTER_STOP_S = 5.0

# A task in these states, followed by a worker, holds a slot on the account.
RUNNING_STATES = frozenset({TaskState.PENDING, TaskState.CREATED, TaskState.QUEUEING, TaskState.PROCESSING})


@dataclass(frozen=True)
class PendingSubmission:
    """A request on its way: what the panel shows and what follows it.
    ``follow``: the new task joins the list and is imported (off: the command
    line without --wait, which only prints its ID)."""

    key: str
    submission: Request
    settings: ApiSettings
    options: ImportOptions
    thumbnail: str
    timeout_s: float
    follow: bool = True


@dataclass(frozen=True)
class SubmissionOutcome:
    task_id: str = ""
    error: Message = NONE


@dataclass(frozen=True)
class BalanceStatus:
    credits: float | None = None  # the last known balance
    error: Message = NONE
    checking: bool = False


@dataclass
class _Watched:
    """A task sent without being followed: asked about now and then, only to
    know when it ends and frees its slot."""

    settings: ApiSettings
    deadline: float
    next_at: float = 0.0
    asking: bool = False


class _State:
    """Module state in one object so ``reset`` can drop it in one line."""

    def __init__(self) -> None:
        self.submissions: dict[str, PendingSubmission] = {}  # by call key, oldest first
        self.queue = send_queue.SendQueue()
        self.outcomes: dict[str, SubmissionOutcome] = {}
        self.submit_count = 0
        self.notices: dict[str, Message] = {}  # by panel
        self.balance: BalanceStatus | None = None
        self.balance_answered = False  # some balance answer came this session
        self.balance_seq = 0  # the latest balance check started
        self.balance_applied = 0  # the latest balance check applied
        self.disclosed = False  # what leaves this computer was said (at the first request of a session)
        self.disclosed_by = ""  # the key of that first request
        self.watched: dict[str, _Watched] = {}
        self.recheck: tuple[float, ApiSettings] | None = None  # (when, with what) to ask for the balance again
        self.max_running: int | None = None  # a command's --max-tasks, over the preference
        # The requests not yet left, as last handed to the kept file (``_keep_unsent``).
        self.kept_keys: tuple[str, ...] = ()
        self.keeping = False  # this session keeps them (interactive, and the folder is ours)


_state = _State()


def reset() -> None:
    """Forget everything (``session.shutdown`` has stopped the workers). A
    selection exported for a request that never left is removed with it,
    unless the request is kept for the next session (``kept_sends``)."""
    global _state
    for pending in _state.submissions.values():
        if pending.key not in _state.kept_keys:
            discard_mesh(pending.submission)
    _state = _State()


# -- kept for the next session ---------------------------------------------------------------------


def restore_kept() -> None:
    """At the start of an interactive session: the requests that had not
    left when the last one ended come back, kept, each waiting for its Send.
    Only the Blender that owns the folder keeps them; background mode
    (the command line) neither reads nor writes them."""
    if state.runs_to_end() or not ownership.owns_folder():
        return
    _state.keeping = True
    restored = kept_sends.load(identity.kept_requests_path(), mesh_export.exports_dir())
    # Never sent as they are: the settings of the moment replace these when Send is pressed.
    unset = ApiSettings(DEFAULT_BASE_URL, "", "")
    for item in restored:
        _state.submit_count += 1
        key = f"{SUBMIT_KEY_PREFIX}{_state.submit_count}"
        _state.submissions[key] = PendingSubmission(key, item.request, unset, item.options, item.thumbnail,
                                                    DEFAULT_TIMEOUT_S)
        _state.queue.add(Send(key, prices.for_request(item.request), item.button, item.panel, stage=Stage.KEPT))
    _state.kept_keys = tuple(_state.submissions)
    if restored:
        log.info("%d request(s) kept from the last session, not sent", len(restored))
        ui_sync.redraw()


def resume(key: str, settings: ApiSettings) -> Message:
    """Send a kept request now, with ``settings``: it waits for the balance
    and a slot like a new one. Returns what to tell the artist."""
    pending = _state.submissions.get(key)
    send = _state.queue.get(key)
    if pending is None or send is None or send.stage is not Stage.KEPT:
        return msg("Nothing to send: it was sent or cancelled already")
    try:
        # Its files may have gone since (an export is kept a day, a picture a week).
        if isinstance(pending.submission, KindRequest):
            kind_requests.validate(pending.submission)
        else:
            validate(pending.submission)
    except Hitem3DError as exc:
        _state.queue.remove(key)
        del _state.submissions[key]
        message = msg("The kept request was not sent: {reason}", reason=exc.message)
        _failed(pending, message, send.panel)
        pump()
        return message
    _state.submissions[key] = replace(pending, settings=settings)
    _state.queue.resume(key)
    _state.notices.pop(send.panel, None)
    pump()
    ui_sync.redraw()
    return msg("Sending to Hitem3D: {what}", what=pending.submission.describe())


def _keep_unsent() -> None:
    """Hand the requests that have not left to the kept file when they
    changed (off the main thread): a quit, a crash or a disable keeps them."""
    if not _state.keeping:
        return
    unsent = [send for send in _state.queue.unsent() if send.key in _state.submissions]
    keys = tuple(send.key for send in unsent)
    if keys == _state.kept_keys:
        return
    _state.kept_keys = keys
    data = kept_sends.encode([
        kept_sends.Kept(_state.submissions[send.key].submission, send.panel, send.button,
                        _state.submissions[send.key].thumbnail, _state.submissions[send.key].options)
        for send in unsent])
    path = identity.kept_requests_path()
    state.runner().write_later(identity.KEPT_REQUESTS_NAME, calls.kept_requests(path, data))


# -- sending ---------------------------------------------------------------------------------------


def start_submission(submission: Request, settings: ApiSettings, options: ImportOptions,
                     thumbnail_path: str = "", *, timeout_s: float = DEFAULT_TIMEOUT_S, button: str = "",
                     panel: str = PANEL_GENERATE, estimate: Estimate | None = None, follow: bool = True) -> str:
    """Queue ``submission``; returns its key. It goes as soon as it may (see
    ``core.send_queue``); when Hitem3D answers, the new task joins the list
    and follows the import path (``follow``)."""
    _state.submit_count += 1
    key = f"{SUBMIT_KEY_PREFIX}{_state.submit_count}"
    _state.submissions[key] = PendingSubmission(key, submission, settings, options, thumbnail_path, timeout_s,
                                                follow)
    _state.queue.add(Send(key, estimate if estimate is not None else prices.for_request(submission), button, panel))
    _state.notices.pop(panel, None)
    pump()
    ui_sync.redraw()
    return key


def pending_submissions(panel: str | None = None) -> list[PendingSubmission]:
    """The requests not yet answered (of ``panel``), oldest first."""
    return [pending for pending in _state.submissions.values()
            if panel is None or (_send(pending.key) or Send("")).panel == panel]


def button_of_request(key: str) -> str:
    """The button that made the request ``key`` ("" once it is answered)."""
    send = _state.queue.get(key)
    return send.button if send is not None else ""


def stage_of(key: str) -> Stage | None:
    send = _state.queue.get(key)
    return send.stage if send is not None else None


def in_flight(button: str) -> bool:
    """A request of ``button`` is waiting or being sent: the button is inactive."""
    return bool(button) and _state.queue.in_flight(button)


def line_of(pending: PendingSubmission) -> Message:
    """What the panel says of a request on its way."""
    what = pending.submission.describe()
    send = _send(pending.key)
    stage = send.stage if send is not None else Stage.SENDING
    if stage is Stage.KEPT:
        return msg("Kept from your last session, not sent: {what}", what=what)
    if stage is Stage.BALANCE:
        return msg("Checking the balance before sending: {what}", what=what)
    if stage is Stage.SLOT and send is not None and send.running_at_refusal is not None:
        return msg("Waiting: Hitem3D turned it down while {running} tasks ran (likely too many at once); it goes "
                   "again when one ends: {what}", running=send.running_at_refusal, what=what)
    if stage is Stage.SLOT:
        return msg("Waiting for a free slot ({running} of {limit} tasks running on Hitem3D): {what}",
                   running=running_on_account(), limit=max_running(), what=what)
    if stage is Stage.STOPPING:
        return msg("Stopping… {what}", what=what)
    return msg("Submitting… {what}", what=what)


def max_running() -> int:
    """How many tasks may run on the account at once: a command's
    ``--max-tasks`` (``set_max_running``), else the preference or
    ``$HITEM3D_MAX_TASKS`` (``preferences.max_running_tasks``)."""
    return _state.max_running or preferences.max_running_tasks()


def set_max_running(limit: int | None) -> None:
    """The command line's ``--max-tasks`` for one command (None: the preference again)."""
    _state.max_running = limit


def running_on_account() -> int:
    """Tasks of ours running on Hitem3D, from our own book: followed and not
    yet finished there, and those sent without being followed."""
    book = history.book()
    followed = sum(1 for rec in book if rec.state in RUNNING_STATES and state.is_running(rec.task_id))
    return followed + len(_state.watched)


def pump() -> bool:
    """Move the queue on: fetch the first balance, refuse what it cannot
    cover, send what a free slot allows; keep what has not left. True while
    a request waits (the timer keeps ticking for it). Main thread; cheap when
    nothing waits."""
    moving = _advance()
    _keep_unsent()
    return moving


def _advance() -> bool:
    if _state.recheck is not None and time.monotonic() >= _state.recheck[0]:
        settings, _state.recheck = _state.recheck[1], None
        refresh_balance(settings, force=True)
    if not _state.submissions:
        _state.watched.clear()  # only counted for requests that wait
        return _state.recheck is not None
    _ask_watched()
    status = _state.balance or BalanceStatus()
    steps = _state.queue.advance(balance=status.credits, balance_answered=_state.balance_answered,
                                 balance_checking=status.checking, running=running_on_account(),
                                 limit=max_running(), now=time.monotonic())
    for step in steps:
        if isinstance(step, FetchBalance):
            first = next(pending for pending in _state.submissions.values() if stage_of(pending.key) is Stage.BALANCE)
            refresh_balance(first.settings)
        elif isinstance(step, Refuse):
            _failed(_state.submissions.pop(step.key), step.message, step.panel)
        elif isinstance(step, Go):
            pending = _state.submissions[step.key]
            if not _state.disclosed:
                # Once a session, as the first request leaves: what goes where.
                _state.disclosed, _state.disclosed_by = True, step.key
                ui_sync.post_report(what_leaves(pending.settings), "INFO")
            control.start_call(step.key, pending.settings, sender(pending.submission, pending.settings))
    if steps:
        ui_sync.redraw()
    return _state.queue.waiting()


def cancel(key: str) -> Message:
    """Cancel a request: before it leaves, nothing is spent and nothing
    remains; once its upload is under way, what is known is said when the
    worker ends (``apply_call``). Returns what to tell the artist now."""
    send = _state.queue.get(key)
    pending = _state.submissions.get(key)
    if send is None or pending is None:
        return msg("Nothing to cancel: it was answered already")
    if send.stage in send_queue.WAITING:
        _state.queue.remove(key)
        del _state.submissions[key]
        discard_mesh(pending.submission)
        _remember_outcome(key, SubmissionOutcome(error=msg("Cancelled before sending: nothing was sent")))
        ui_sync.redraw()
        pump()  # the one behind it may go now
        return msg("Cancelled before sending: nothing was sent")
    if send.stage is Stage.SENDING:
        send.stage = Stage.STOPPING
        control.cancel_call(key)
        ui_sync.redraw()
    return msg("Stopping the upload: Hitem3D may have the request already")


def wait_for_submission(key: str, timeout_s: float,
                        on_waiting: Callable[[Message], None] | None = None) -> SubmissionOutcome:
    """Background mode: drive ``timer.tick`` until the request ``key`` is
    answered. Waiting in the queue has no time limit (it ends when tasks
    do); ``timeout_s`` counts from when the request leaves. ``on_waiting``
    hears once that it waits for a slot."""
    deadline: float | None = None
    told = False
    while key in _state.submissions:
        timer.tick()
        pump()  # also when no hooks are installed (the engine without its UI)
        stage = stage_of(key)
        if stage in send_queue.OUT and deadline is None:
            deadline = time.monotonic() + timeout_s
        if deadline is not None and time.monotonic() >= deadline:
            break
        if stage is Stage.SLOT and on_waiting is not None and not told and key in _state.submissions:
            told = True
            on_waiting(line_of(_state.submissions[key]))
        time.sleep(0.02)
    return _state.outcomes.pop(key, SubmissionOutcome(
        error=msg("No answer from Hitem3D in time: check your tasks on the Hitem3D platform before sending again")))


def _send(key: str) -> Send | None:
    return _state.queue.get(key)


def sender(submission: Request, settings: ApiSettings) -> calls.Call:
    """The worker's call that creates the task on Hitem3D (``core.sending``:
    with the upload of an own mesh first; ``core.send_queue.create_task``
    brings back a refusal it cannot place as a value). Where an upload goes is
    read now, on the main thread: what the artist was told is where it goes."""
    try:
        storage = (mesh_upload.target_from_env(api_base_url=settings.base_url) if sending.uploads_mesh(submission)
                   else mesh_upload.HITEM3D_STORAGE)
    except mesh_upload.InvalidUploadTarget as exc:
        return calls.refuse(exc)  # on the worker, so it comes back like any refusal
    return calls.submit(submission, storage)


def disclosed() -> bool:
    """Whether this session has said what leaves this computer: its first
    request is sent and answered. NOTE: not as it leaves: the panel's
    statement then went at the press, moving what was below it up under the
    mouse, where a double click's second click landed (on Texture Selection,
    say)."""
    return _state.disclosed and _state.disclosed_by not in _state.submissions


def what_leaves(settings: ApiSettings | None) -> Message:
    """What leaves this computer, with the hosts it goes to now."""
    base_url = settings.base_url if settings is not None else DEFAULT_BASE_URL
    api = urlsplit(base_url).netloc
    try:
        storage = mesh_upload.target_from_env(api_base_url=base_url)
    except mesh_upload.InvalidUploadTarget:
        storage = mesh_upload.HITEM3D_STORAGE
    return sending.what_leaves(api, storage)


def _failed(pending: PendingSubmission, message: Message, panel: str, level: str = "ERROR") -> None:
    """``pending`` ended without a task: said in its panel and reported; its
    exported selection removed."""
    discard_mesh(pending.submission)
    _state.notices[panel] = message
    _remember_outcome(pending.key, SubmissionOutcome(error=message))
    ui_sync.post_report(message, level)


# -- notices ------------------------------------------------------------------------------------------


def notice(panel: str) -> Message:
    """The last problem of a request made from ``panel``, shown there (and only there)."""
    return _state.notices.get(panel, NONE)


def set_notice(panel: str, text: Message) -> None:
    if text:
        _state.notices[panel] = text
    else:
        _state.notices.pop(panel, None)
    ui_sync.redraw()


# -- the balance ----------------------------------------------------------------------------------------


def balance_status() -> BalanceStatus | None:
    return _state.balance


def reserved() -> float:
    """Credits the requests on their way (and those answered but not yet in a
    balance) will cost, at the least: set aside from the balance."""
    return _state.queue.reserved()


def reserved_count() -> int:
    """How many requests ``reserved`` is for."""
    return _state.queue.reserved_count()


def check_funds(estimate: Estimate) -> None:
    """Raise ``prices.NotEnoughCredits`` when the known balance, less what the
    requests on their way will cost, is below the least ``estimate`` could cost."""
    status = _state.balance
    prices.check_balance(estimate, status.credits if status is not None else None, _state.queue.reserved(),
                         _state.queue.reserved_count())


def set_balance_error(text: Message) -> None:
    """Show why the balance could not be asked for (no credentials, offline)."""
    previous = _state.balance or BalanceStatus()
    _state.balance = BalanceStatus(previous.credits, text, previous.checking)
    ui_sync.redraw()


def refresh_balance(settings: ApiSettings, *, force: bool = False) -> int:
    """Ask for the balance on a worker. A check already on its way is enough
    unless ``force`` (after an answer: that check may predate the charge).
    Returns the number of the check that will answer."""
    previous = _state.balance or BalanceStatus()
    if previous.checking and not force:
        return _state.balance_seq
    _state.balance_seq += 1
    _state.balance = BalanceStatus(previous.credits, NONE, checking=True)
    control.start_call(f"{BALANCE_KEY_PREFIX}{_state.balance_seq}", settings, calls.balance())
    ui_sync.redraw()
    return _state.balance_seq


# -- results, on the main thread -----------------------------------------------------------------------


def apply_call(result: CallResult) -> bool:
    """Apply a request's, a balance check's or a watch's result; False for other calls."""
    if result.key in _state.submissions:
        pending = _state.submissions.pop(result.key)
        send = _state.queue.remove(result.key)
        _apply_submission(pending, send or Send(result.key), result)
        pump()
        return True
    if result.key.startswith(BALANCE_KEY_PREFIX):
        _apply_balance(int(result.key[len(BALANCE_KEY_PREFIX):]), result)
        pump()
        return True
    if result.key.startswith(WATCH_KEY_PREFIX):
        _apply_watch(result.key[len(WATCH_KEY_PREFIX):], result)
        return True
    return False


def _apply_balance(seq: int, result: CallResult) -> None:
    if seq < _state.balance_applied:
        return  # an older answer that arrived late
    _state.balance_applied = seq
    _state.balance_answered = True
    previous = _state.balance or BalanceStatus()
    checking = seq < _state.balance_seq
    if result.ok:
        credits = float(result.value)
        _state.queue.balance_seen(seq)
        if previous.credits is not None and credits != previous.credits:
            # A top-up, or a charge: what the notices said may be over.
            _state.notices.clear()
        _state.balance = BalanceStatus(credits, NONE, checking)
    else:
        _state.balance = BalanceStatus(previous.credits, result.error, checking)


def discard_mesh(submission: Request) -> None:
    """Remove the selection exported for ``submission`` (Texture Selection, a
    kind's mesh) once it is no longer needed: sent, refused or cancelled. Only
    ever a file of our own (``mesh_export.discard`` checks)."""
    path = submission.source_path if isinstance(submission, KindRequest) else submission.mesh
    if path:
        mesh_export.discard(path)


def _apply_submission(pending: PendingSubmission, send: Send, result: CallResult) -> None:
    # A selection exported for this request has been sent (or refused): not
    # kept; a retry exports it again.
    stopped = send.stage is Stage.STOPPING
    if result.ok and isinstance(result.value, Refused):
        running = _state.queue.running_when_refused(send, running_on_account())
        if not stopped and send_queue.means_too_many(running):
            # Undocumented: read as "too many tasks". Back in the queue, never failed for it.
            log.info("Hitem3D turned a request down while %d tasks ran (%s): it waits and goes again",
                     running, result.value.message)
            _state.submissions[pending.key] = pending
            _state.queue.add(send)
            _state.queue.refused_too_many(pending.key, running, time.monotonic())
            ui_sync.redraw()
            return
        if stopped:
            _failed(pending, msg("Cancelled: Hitem3D turned the request down, nothing was spent"), send.panel, "INFO")
        else:
            _failed(pending, result.value.message, send.panel)
        return
    discard_mesh(pending.submission)
    if not result.ok:
        if stopped:
            # NOTE: a cancel may land before, during or after the upload; the
            # balance, asked for now and again a little later, says whether a
            # task was made and paid. Until the second answer its cost is set aside.
            _state.queue.charge(send.cost, refresh_balance(pending.settings, force=True) + 1)
            _state.recheck = (time.monotonic() + RECHECK_AFTER_STOP_S, pending.settings)
            _failed(pending, msg("Sending stopped: if the upload had reached Hitem3D, a task was made and paid; "
                                 "the balance is checked again, and your tasks are on the Hitem3D platform"),
                    send.panel, "WARNING")
            return
        _failed(pending, result.error, send.panel)
        refresh_balance(pending.settings, force=True)  # the balance shows where things stand
        return
    task_id = str(result.value)
    _state.queue.charge(send.cost, refresh_balance(pending.settings, force=True))
    _remember_outcome(pending.key, SubmissionOutcome(task_id=task_id))
    if not pending.follow:
        _state.watched[task_id] = _Watched(pending.settings, time.monotonic() + pending.timeout_s)
        return
    rec = control.start_import(task_id, pending.settings, timeout_s=pending.timeout_s, options=pending.options,
                               model=pending.submission.model)
    rec.generation = pending.submission.to_dict()
    if pending.thumbnail and not rec.cover_path:
        # Until Hitem3D's cover arrives (it replaces this through the update path).
        rec.cover_path = pending.thumbnail
    history.changed()
    ui_sync.select(task_id)
    if stopped:
        ui_sync.post_report(msg("Hitem3D had made the task before the cancel reached it: task {short} is in the "
                                "list", short=rec.short_id), "WARNING")
    else:
        ui_sync.post_report(msg("Sent to Hitem3D: task {short}", short=rec.short_id), "INFO")


def _remember_outcome(key: str, outcome: SubmissionOutcome) -> None:
    _state.outcomes[key] = outcome
    while len(_state.outcomes) > _KEPT_OUTCOMES:
        del _state.outcomes[next(iter(_state.outcomes))]


# -- tasks sent without being followed (the command line without --wait) --------------------------------


def _ask_watched() -> None:
    """While requests wait for a slot, ask now and then about the tasks sent
    without being followed: one that ended frees its slot."""
    if not _state.watched:
        return
    now = time.monotonic()
    for task_id, watched in list(_state.watched.items()):
        if now >= watched.deadline:
            del _state.watched[task_id]  # not ours to wait for any longer
        elif not watched.asking and now >= watched.next_at:
            watched.asking = True
            control.start_call(f"{WATCH_KEY_PREFIX}{task_id}", watched.settings, _asker(task_id))


def _asker(task_id: str) -> calls.Call:
    return calls.remote_state(task_id)


def _apply_watch(task_id: str, result: CallResult) -> None:
    watched = _state.watched.get(task_id)
    if watched is None:
        return
    if result.ok and str(result.value) not in ("created", "queueing", "processing"):
        del _state.watched[task_id]  # ended: its slot is free
        return
    if not result.ok and result.error == Cancelled().message:
        del _state.watched[task_id]
        return
    watched.asking = False
    watched.next_at = time.monotonic() + watched.settings.poll_interval_s
