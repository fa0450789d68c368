"""What a request is expected to cost, from Hitem3D's public price list.

The table is data with its date: prices change, so every figure shown is an
estimate, shown beside the real balance, and Hitem3D's own answer (code
30010000 "balance is not enough") always wins. No ``bpy``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from .errors import CODE_BALANCE_NOT_ENOUGH, Hitem3DError
from .kind_requests import KindRequest
from .messages import Message, msg
from .submission import Submission, format_credits

# Public pricing as published; 1 credit = 0.02 USD.
PRICES_DATE = "2026-11"
USD_PER_CREDIT = 0.02

# (model, resolution) -> credits per image-to-3D task.
# NOTE: the list has no separate figure for geometry only or for texturing an
# existing mesh (request_type 1 and 2): we show the model's price, labelled
# as an estimate. v1.5 "1536pro" and v2.0 "1536pro" are not listed: unknown.
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

# Task kinds with one price per task (the kinds' own create endpoints).
# Segmentation is not on the list: unknown.
PER_TASK: dict[str, int] = {
    "split": 20,
    "multicolor": 20,
    "depth": 10,
}


@dataclass(frozen=True)
class Estimate:
    """The expected cost of one request; ``credits`` None when the table does
    not know it (the request may still be sent)."""

    credits: int | None
    what: str = ""

    @property
    def known(self) -> bool:
        return self.credits is not None


def for_generation(model: str, resolution: str, count: int = 1) -> Estimate:
    """``count`` image-to-3D tasks (or texturing tasks) with this model and resolution."""
    price = GENERATION.get((model, resolution))
    return Estimate(None if price is None else price * count, f"{model} {resolution}")


def for_submission(submission: Submission) -> Estimate:
    """One ``submit-task`` request (any request_type: the list has one price per model and resolution)."""
    return for_generation(submission.model, submission.resolution)


def for_request(request: Submission | KindRequest) -> Estimate:
    """What any create request is expected to cost: per model and resolution
    for a generation or a texturing, per task for the other kinds."""
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
    return Estimate(sum(part.credits or 0 for part in estimates))


def missing(estimate: Estimate, balance: float | None) -> int:
    """Credits short of the estimate: 0 when enough, or when either is unknown
    (then Hitem3D decides)."""
    if estimate.credits is None or balance is None:
        return 0
    short = estimate.credits - balance
    return max(0, math.ceil(short)) if short > 0 else 0


def cost_line(estimate: Estimate, balance: float | None) -> Message:
    """One line for a spending button: the estimate and the balance after it."""
    if estimate.credits is None:
        if balance is None:
            return msg("Estimated cost: unknown (not in the price list)")
        return msg("Estimated cost: unknown (not in the price list); balance {balance} credits",
                   balance=format_credits(balance))
    if balance is None:
        return msg("Estimated cost: {credits} credits", credits=estimate.credits)
    return msg("Estimated cost: {credits} credits; balance after: {after} credits", credits=estimate.credits,
               after=format_credits(balance - estimate.credits))


def shortage_message(estimate: Estimate, balance: float) -> Message:
    """Why a request was not sent: the known balance is below the estimate."""
    return msg("Not enough credits: about {needed} needed, {left} left ({short} missing): top up on the Hitem3D "
               "platform, then refresh the balance", needed=estimate.credits or 0, left=format_credits(balance),
               short=missing(estimate, balance))


class NotEnoughCredits(Hitem3DError):
    """The known balance is below the estimate: the request was not sent."""

    def __init__(self, message: Message) -> None:
        super().__init__(message, code=CODE_BALANCE_NOT_ENOUGH)


def check_balance(estimate: Estimate, balance: float | None) -> None:
    """Raise ``NotEnoughCredits`` when the known balance is below the estimate."""
    if balance is not None and missing(estimate, balance) > 0:
        raise NotEnoughCredits(shortage_message(estimate, balance))


def _check_table() -> None:
    assert all(price > 0 for price in GENERATION.values())
    assert all(price > 0 for price in PER_TASK.values())


_check_table()
