"""What a request is expected to cost, from Hitem3D's public price list.

The table is data with its date: prices change, and no official price page is
published (docs/hitem3d-api.md, Prices), so every figure shown is an estimate,
labelled as one and shown beside the real balance. A request is refused here
only when the balance is below the *lowest* price it could plausibly cost;
otherwise it is sent and Hitem3D's own answer decides. No ``bpy``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from .errors import CODE_BALANCE_NOT_ENOUGH, Hitem3DError
from .kind_requests import KindRequest
from .messages import Message, msg
from .submission import RequestType, Submission, format_credits

# Public pricing as published (community catalogs, two figures checked live by
# a third party); 1 credit = 0.02 USD.
PRICES_DATE = "2026-11"
USD_PER_CREDIT = 0.02

# (model, resolution) -> credits per textured image-to-3D task (request_type 3).
# v1.5 "1536pro" and v2.0 "1536pro" are not listed: unknown.
GENERATION: dict[tuple[str, str], int] = {
    ("hi3dv3.0", "2048quality"): 105,
    ("hi3dv3.0", "2048master"): 455,
    ("hitem3dv2.1", "1536fast"): 25,
    ("hitem3dv2.1", "1536pro"): 45,
    ("scene-portraitv2.1", "1536profast"): 25,
    ("scene-portraitv2.1", "1536pro"): 45,
    ("hitem3dv2.0", "1536"): 35,
    # The list gives portrait v2.0 "1536: 35"; its only resolution is 1536pro.
    ("scene-portraitv2.0", "1536pro"): 35,
    ("hitem3dv1.5", "512"): 15,
    ("hitem3dv1.5", "1024"): 20,
    ("hitem3dv1.5", "1536"): 30,
    ("scene-portraitv1.5", "1536"): 30,
}

# Geometry only (request_type 1) costs less than textured, per several
# [community] sources; one gives a figure: 5 credits for v1.5 at 512 (15 textured).
GEOMETRY_ONLY: dict[tuple[str, str], int] = {
    ("hitem3dv1.5", "512"): 5,
}
# The least any source quotes for one task. Where the list has no figure for
# geometry only, or for texturing an existing mesh (request_type 2, the second
# half of a staged generation), the request could cost as little as this and
# at most the textured price: the estimate is that range, and only a balance
# below its low end is refused here.
LOWEST_QUOTED = 5

# Task kinds with one price per task (the kinds' own create endpoints).
# Segmentation is not on the list: unknown.
PER_TASK: dict[str, int] = {
    "split": 20,
    "multicolor": 20,
    "depth": 10,
}


@dataclass(frozen=True)
class Estimate:
    """The expected cost of one or more requests: at most ``credits`` and at
    least ``low`` (the same figure when the list gives one). ``credits`` None
    when the table does not know it: the request is sent, Hitem3D decides."""

    credits: int | None
    what: str = ""
    low: int | None = None  # None: ``credits``

    @property
    def known(self) -> bool:
        return self.credits is not None

    @property
    def lowest(self) -> int | None:
        """The least the request could cost: what a balance is checked against."""
        return self.credits if self.low is None or self.credits is None else min(self.low, self.credits)

    @property
    def is_range(self) -> bool:
        return self.credits is not None and self.lowest != self.credits


def for_generation(model: str, resolution: str, count: int = 1,
                   request_type: int = RequestType.GEOMETRY_AND_TEXTURE) -> Estimate:
    """``count`` image-to-3D tasks with this model and resolution: textured,
    geometry only, or texturing an existing mesh (``request_type``)."""
    what = f"{model} {resolution}"
    price = GENERATION.get((model, resolution))
    if request_type == RequestType.GEOMETRY and (model, resolution) in GEOMETRY_ONLY:
        price = GEOMETRY_ONLY[(model, resolution)]
        return Estimate(price * count, what)
    if price is None:
        return Estimate(None, what)
    if request_type == RequestType.GEOMETRY_AND_TEXTURE:
        return Estimate(price * count, what)
    return Estimate(price * count, what, low=min(LOWEST_QUOTED, price) * count)


def for_submission(submission: Submission) -> Estimate:
    """One ``submit-task`` request, priced by what it asks for."""
    return for_generation(submission.model, submission.resolution, request_type=submission.request_type)


def for_request(request: Submission | KindRequest) -> Estimate:
    """What any create request is expected to cost: per model, resolution and
    request type for a generation or a texturing, per task for the other kinds."""
    if isinstance(request, KindRequest):
        return for_kind(request.kind)
    return for_submission(request)


def for_kind(kind: str, count: int = 1) -> Estimate:
    """``count`` tasks of a per-task kind (split, multicolor, depth, ...)."""
    price = PER_TASK.get(kind)
    return Estimate(None if price is None else price * count, kind)


def total(estimates: list[Estimate]) -> Estimate:
    """The sum; unknown as soon as one part is."""
    if any(part.credits is None for part in estimates):
        return Estimate(None)
    return Estimate(sum(part.credits or 0 for part in estimates), low=sum(part.lowest or 0 for part in estimates))


def missing(estimate: Estimate, balance: float | None, reserved: float = 0.0) -> int:
    """Credits short of the lowest the request could cost, once ``reserved``
    (the requests being sent) is set aside: 0 when enough, or when either is
    unknown (then Hitem3D decides)."""
    lowest = estimate.lowest
    if lowest is None or balance is None:
        return 0
    short = lowest - (balance - reserved)
    return max(0, math.ceil(short)) if short > 0 else 0


def cost_line(estimate: Estimate, balance: float | None, reserved: float = 0.0) -> Message:
    """One line for a spending button: the estimate and the balance after it
    (the requests being sent, ``reserved``, already taken off)."""
    if estimate.credits is None:
        if balance is None:
            return msg("Estimated cost: unknown (not in the price list)")
        return msg("Estimated cost: unknown (not in the price list); balance {balance} credits",
                   balance=format_credits(balance - reserved))
    if estimate.is_range:
        if balance is None:
            return msg("Estimated cost: {low} to {high} credits", low=estimate.lowest or 0, high=estimate.credits)
        return msg("Estimated cost: {low} to {high} credits; balance after: {after} credits or more",
                   low=estimate.lowest or 0, high=estimate.credits,
                   after=format_credits(balance - reserved - estimate.credits))
    if balance is None:
        return msg("Estimated cost: {credits} credits", credits=estimate.credits)
    return msg("Estimated cost: {credits} credits; balance after: {after} credits", credits=estimate.credits,
               after=format_credits(balance - reserved - estimate.credits))


def shortage_message(estimate: Estimate, balance: float, reserved: float = 0.0, sending: int = 0) -> Message:
    """Why a request was not sent: the known balance, less what the requests
    being sent (``sending`` of them, ``reserved`` credits) will cost, is below
    the least this one could cost."""
    needed, short = estimate.lowest or 0, missing(estimate, balance, reserved)
    if sending:
        return msg("Not enough credits: at least {needed} needed, {left} left once the {count} request(s) being "
                   "sent are paid ({short} missing): top up on the Hitem3D platform, then refresh the balance",
                   needed=needed, left=format_credits(balance - reserved), count=sending, short=short)
    return msg("Not enough credits: at least {needed} needed, {left} left ({short} missing): top up on the Hitem3D "
               "platform, then refresh the balance", needed=needed, left=format_credits(balance), short=short)


class NotEnoughCredits(Hitem3DError):
    """The known balance is below the least the request could cost: it was not sent."""

    def __init__(self, message: Message) -> None:
        super().__init__(message, code=CODE_BALANCE_NOT_ENOUGH)


def check_balance(estimate: Estimate, balance: float | None, reserved: float = 0.0, sending: int = 0) -> None:
    """Raise ``NotEnoughCredits`` when the known balance, less ``reserved``
    for the ``sending`` requests on their way, is below the least the request
    could cost."""
    if balance is not None and missing(estimate, balance, reserved) > 0:
        raise NotEnoughCredits(shortage_message(estimate, balance, reserved, sending))


def _check_table() -> None:
    assert all(price > 0 for price in GENERATION.values())
    assert all(price > 0 for price in PER_TASK.values())
    assert all(0 < price <= GENERATION.get(key, price) for key, price in GEOMETRY_ONLY.items())
    assert 0 < LOWEST_QUOTED <= min(GENERATION.values())


_check_table()
