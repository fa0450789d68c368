"""The requests that spend credits, on their way out: what may be sent now.

Every create request (a generation, a texturing, a split, a relief, ...)
waits here, in the order it was made, until it may go:

1. The first spend of a session waits for the balance: it is fetched, never
   guessed, and the main thread never waits for it (press, fetch, then send
   or refuse).
2. The balance, less what the requests already on their way will cost, must
   cover the least this one could cost (``prices``); otherwise it is refused
   here and nothing is sent. A request answered with a task is taken as paid
   until a balance fetched after that answer shows the charge.
3. At most ``limit`` tasks run on the account at once ([doc] FAQ: "Default 10
   concurrent tasks"): further requests wait for a free slot, in order.
4. What Hitem3D answers to one task too many is not documented. A refusal
   this version cannot place, while tasks of ours run on the account, is read
   as that: the request waits for one of them to end (or a minute) and goes
   again; it never fails for it. With none of ours running, the same refusal
   is shown as the failure it then is.

Plain data and decisions only: no thread, no ``bpy``. ``ui.submit_calls``
keeps a ``SendQueue`` on the main thread, feeds it the balance and the count
of running tasks, and does what ``advance`` says; ``create_task`` and
``remote_state`` are what its workers run.
"""

from __future__ import annotations

import enum
import os
from dataclasses import dataclass, field
from typing import Iterator, Mapping, Union

from . import sending
from .api import Hitem3DClient
from .errors import CODE_MESSAGES, LIKELY_CAUSES, ApiError, GenerationFailed, Hitem3DError, ServerError
from .kind_requests import KindRequest
from .messages import Message, msg
from .mesh_upload import HITEM3D_STORAGE, StorageTarget
from .prices import Estimate, missing, shortage_message
from .submission import Submission

Request = Union[Submission, KindRequest]

# The documented default of running tasks per account ([doc] FAQ; one
# [community] client says 30): the preference's default.
DEFAULT_MAX_RUNNING = 10
# The preference's bounds, and those of the variable and the command line's option.
MAX_RUNNING_RANGE = (1, 100)
# A pipeline's limit, as the other HITEM3D_* variables set the others
# (``limit_from``); the command line's --max-tasks wins over both.
ENV_MAX_RUNNING = "HITEM3D_MAX_TASKS"
# After a refusal read as "too many tasks", the request goes again as soon as
# one of our tasks ends, or after this long (tasks made elsewhere end unseen).
RESEND_AFTER_S = 60.0
# HTTP's own "Too Many Requests".
HTTP_TOO_MANY = 429


class InvalidLimit(Hitem3DError):
    """``$HITEM3D_MAX_TASKS`` is not a whole number in ``MAX_RUNNING_RANGE``."""


def checked_limit(text: str, source: str) -> int:
    """``text`` as a limit of running tasks; ``source`` names where it was set.
    Raises ``InvalidLimit``."""
    low, high = MAX_RUNNING_RANGE
    try:
        value = int(text.strip())
    except ValueError:
        value = 0
    if not low <= value <= high:
        raise InvalidLimit(msg("{source} must be a whole number from {low} to {high}, not {value}", source=source,
                               low=low, high=high, value=repr(text.strip()[:20])))
    return value


def limit_from(preference: int, environ: Mapping[str, str] | None = None) -> int:
    """How many tasks may run on the account at once: the preference when it
    was changed from the documented default, else ``$HITEM3D_MAX_TASKS`` when
    set, else the default (the rule of every HITEM3D_* variable: a value set
    in the preferences wins; one left at its default counts as not set).
    Raises ``InvalidLimit`` for a variable that is set but unusable."""
    env = os.environ if environ is None else environ
    if preference != DEFAULT_MAX_RUNNING:
        return preference
    text = env.get(ENV_MAX_RUNNING, "").strip()
    return checked_limit(text, ENV_MAX_RUNNING) if text else DEFAULT_MAX_RUNNING


class Stage(enum.Enum):
    BALANCE = "balance"  # waiting for the session's first balance
    SLOT = "slot"  # checked against the balance; waiting for a free slot on the account
    SENDING = "sending"  # on a worker: the upload, then Hitem3D's answer
    STOPPING = "stopping"  # cancelled while sending: waiting to learn how it ended
    KEPT = "kept"  # from an earlier session (``kept_sends``): goes only when the artist says so (``resume``)


# Cancelled in these, a request has not left: nothing is spent, nothing remains.
WAITING = frozenset({Stage.BALANCE, Stage.SLOT, Stage.KEPT})
# Moving on by themselves: what keeps the timer ticking.
MOVING = frozenset({Stage.BALANCE, Stage.SLOT})
# Past the balance check: what these will cost is set aside from the balance.
COMMITTED = frozenset({Stage.SLOT, Stage.SENDING, Stage.STOPPING})
# On a worker: each takes a slot on the account.
OUT = frozenset({Stage.SENDING, Stage.STOPPING})


@dataclass
class Send:
    """One request in the queue (its key names its worker call too)."""

    key: str
    estimate: Estimate = field(default_factory=lambda: Estimate(None))
    button: str = ""  # the button that made it: inactive while it is here
    panel: str = ""  # where its line and its notices are shown
    stage: Stage = Stage.BALANCE
    # After a refusal read as "too many tasks": go again once fewer than this
    # many run, or at ``resend_at`` (time.monotonic()).
    running_at_refusal: int | None = None
    resend_at: float = 0.0
    # Tasks of ours running on the account (and requests out) when it left:
    # its answer may come after they have ended.
    running_at_send: int = 0

    @property
    def cost(self) -> float:
        return float(self.estimate.lowest or 0)


@dataclass(frozen=True)
class FetchBalance:
    """Ask for the balance: a request waits for the session's first one."""


@dataclass(frozen=True)
class Go:
    """Send ``key`` now (its stage is SENDING)."""

    key: str


@dataclass(frozen=True)
class Refuse:
    """``key`` is not sent: the balance cannot cover it (it has left the queue)."""

    key: str
    message: Message
    panel: str = ""


Step = Union[FetchBalance, Go, Refuse]


@dataclass(frozen=True)
class Refused:
    """What a worker brings back when Hitem3D turned a create request down
    with an answer this version cannot place (see ``create_task``)."""

    message: Message
    code: str


def means_too_many(running: int) -> bool:
    """Whether an unplaced refusal reads as "too many tasks": only while tasks
    of ours run on the account (with none running it cannot be ours to wait for)."""
    return running > 0


class SendQueue:
    """The requests not yet answered, oldest first, and the charges not yet
    seen in a balance. Main thread only."""

    def __init__(self) -> None:
        self._sends: dict[str, Send] = {}
        self._charges: list[tuple[float, int]] = []  # (credits, the balance check that will show them)

    def __iter__(self) -> Iterator[Send]:
        return iter(list(self._sends.values()))

    def __len__(self) -> int:
        return len(self._sends)

    def add(self, send: Send) -> None:
        self._sends[send.key] = send

    def get(self, key: str) -> Send | None:
        return self._sends.get(key)

    def remove(self, key: str) -> Send | None:
        return self._sends.pop(key, None)

    def in_flight(self, button: str) -> bool:
        """A request of ``button`` is waiting or being sent (one kept from an
        earlier session waits for its own Send and holds no button)."""
        return any(send.button == button and send.stage is not Stage.KEPT for send in self._sends.values())

    def waiting(self) -> bool:
        """Some request has not left yet and moves on by itself."""
        return any(send.stage in MOVING for send in self._sends.values())

    def unsent(self) -> list[Send]:
        """The requests that have not left, oldest first: what ``kept_sends`` keeps."""
        return [send for send in self._sends.values() if send.stage in WAITING]

    def resume(self, key: str) -> bool:
        """A kept request goes on like a new one (balance, then a slot); False if it is not kept."""
        send = self._sends.get(key)
        if send is None or send.stage is not Stage.KEPT:
            return False
        send.stage = Stage.BALANCE
        return True

    # -- the balance ------------------------------------------------------------------

    def reserved(self) -> float:
        """Credits set aside from the balance: the requests past its check,
        and the answered ones no balance has shown the charge of yet."""
        return (sum(send.cost for send in self._sends.values() if send.stage in COMMITTED)
                + sum(credits for credits, _ in self._charges))

    def reserved_count(self) -> int:
        """How many requests ``reserved`` is for."""
        return sum(1 for send in self._sends.values() if send.stage in COMMITTED) + len(self._charges)

    def charge(self, credits: float, balance_check: int) -> None:
        """A request was (or may have been) paid: set ``credits`` aside until
        the balance check numbered ``balance_check`` (or a later one) answers."""
        if credits > 0:
            self._charges.append((credits, balance_check))

    def balance_seen(self, balance_check: int) -> None:
        """The balance check numbered ``balance_check`` answered: the charges it shows are in it."""
        self._charges = [(credits, check) for credits, check in self._charges if check > balance_check]

    # -- what may go now ----------------------------------------------------------------

    def advance(self, *, balance: float | None, balance_answered: bool, balance_checking: bool,
                running: int, limit: int, now: float) -> list[Step]:
        """Move every request as far as it may go now, in order; the steps
        for the caller. ``balance`` is the last known (None: unknown),
        ``balance_answered`` whether any balance answer came this session,
        ``running`` the tasks of ours running on the account."""
        steps: list[Step] = []
        for send in list(self._sends.values()):
            if send.stage is not Stage.BALANCE:
                continue
            if not balance_answered:
                if not balance_checking and not steps:
                    steps.append(FetchBalance())
                break  # the ones after it wait for the same answer
            if balance is not None and missing(send.estimate, balance, self.reserved()) > 0:
                del self._sends[send.key]
                steps.append(Refuse(send.key, shortage_message(send.estimate, balance, self.reserved(),
                                                               self.reserved_count()), send.panel))
                continue
            send.stage = Stage.SLOT
        # Requests out take a slot too: Hitem3D may have made their tasks already.
        occupied = running + self.out_count()
        for send in list(self._sends.values()):
            if send.stage is not Stage.SLOT:
                continue
            if send.running_at_refusal is not None:
                if occupied >= send.running_at_refusal and now < send.resend_at:
                    break  # Hitem3D said no: nothing goes before this one may
                send.running_at_refusal = None
            if occupied >= limit:
                break
            send.running_at_send = occupied
            occupied += 1
            send.stage = Stage.SENDING
            steps.append(Go(send.key))
        return steps

    def refused_too_many(self, key: str, running: int, now: float) -> None:
        """``key`` was turned down, read as "too many tasks": back to wait
        for a slot, and to go again once fewer than ``running`` run (or are out)."""
        send = self._sends.get(key)
        if send is not None:
            send.stage = Stage.SLOT
            send.running_at_refusal = running
            send.resend_at = now + RESEND_AFTER_S

    def out_count(self) -> int:
        """Requests on a worker now: each may have become a task on the account."""
        return sum(1 for send in self._sends.values() if send.stage in OUT)

    def running_when_refused(self, send: Send, running: int) -> int:
        """How many of ours ran when Hitem3D turned ``send`` (no longer in the
        queue) down: the tasks running now and the requests still out (either
        may have been on the account when it arrived), and at least as many as
        when it left (its answer may come after some of them have ended)."""
        return max(running + self.out_count(), send.running_at_send)


# -- on a worker ------------------------------------------------------------------------------------


def _unplaced(exc: ApiError | ServerError) -> bool:
    """A refusal this version cannot place: a code we have no reading of, or
    HTTP 429 ("Too Many Requests")."""
    if isinstance(exc, ServerError):
        return dict(exc.message.values).get("status") == HTTP_TOO_MANY
    return bool(exc.code) and exc.code not in CODE_MESSAGES and exc.code not in LIKELY_CAUSES


def create_task(client: Hitem3DClient, request: Request, *,
                storage: StorageTarget = HITEM3D_STORAGE) -> str | Refused:
    """Create the task on Hitem3D (``sending.send``: a mesh of the artist's own
    is uploaded to ``storage`` first); its ID, or ``Refused`` when Hitem3D
    turned it down in a way this version cannot place (the main thread decides
    whether that means "too many tasks"). Anything else raises as it is."""
    try:
        return sending.send(client, request, storage=storage)
    except (ApiError, ServerError) as exc:
        if _unplaced(exc):
            return Refused(exc.message, exc.code or str(HTTP_TOO_MANY))
        raise


def remote_state(client: Hitem3DClient, task_id: str) -> str:
    """The task's state on Hitem3D ("failed" for a failed one), to know when a
    task sent without being followed has ended and freed its slot."""
    try:
        return client.query_task(task_id).state
    except GenerationFailed:
        return "failed"
