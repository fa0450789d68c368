"""The price before you pay, for every button that spends credits.

Each such button shows the estimate from ``core.prices`` and the balance after
it (when the balance is known), and its operator calls ``refuse_if_short``
before anything is sent: a known balance below the estimate turns the request
down with the number of credits missing. Hitem3D's own answer (code 30010000)
still decides when the balance is unknown or the table is out of date.
"""

from __future__ import annotations

import bpy

from . import preferences, submit_calls
from ..i18n import translations
from ..core import prices
from ..core.kind_requests import KindRequest
from ..core.prices import Estimate
from ..core.submission import Submission
from ..core.tasks import TaskRecord
from .text_fit import content_width, wrapped_label


def known_balance() -> float | None:
    """The last balance Hitem3D gave, or None before the first answer."""
    status = submit_calls.balance_status()
    return status.credits if status is not None else None


def estimate_for(request: Submission | KindRequest) -> Estimate:
    return prices.for_request(request)


def texture_estimate(rec: TaskRecord) -> Estimate:
    """Texturing a geometry-only result: the price of the model and resolution it was made with."""
    made = Submission.from_dict(rec.generation) if rec.generation else None
    return prices.for_generation(made.model, made.resolution) if made is not None else Estimate(None)


def refuse_if_short(estimate: Estimate) -> None:
    """Raise ``prices.NotEnoughCredits`` when the known balance is below ``estimate``."""
    prices.check_balance(estimate, known_balance())


def draw_cost(layout: bpy.types.UILayout, estimate: Estimate, width: float, boxes: int = 0) -> None:
    """The estimate and the balance after it, under a spending button; in red
    with the credits missing when the known balance is too low. Nothing when
    the artist hid estimates in the preferences (the check still applies)."""
    balance = known_balance()
    short = prices.missing(estimate, balance)
    if short and balance is not None:
        col = layout.column()
        col.alert = True
        wrapped_label(col, translations.text(prices.shortage_message(estimate, balance)),
                      content_width(width, boxes), "ERROR")
        return
    if not preferences.show_cost_estimate():
        return
    wrapped_label(layout, translations.text(prices.cost_line(estimate, balance)), content_width(width, boxes), "FUND")
