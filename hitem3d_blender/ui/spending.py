"""Every button that spends credits: the price before you pay, and the one
path that sends (``send``).

Each such button shows the estimate from ``core.prices`` and the balance after
it (when the balance is known), and its operator calls ``refuse_if_short``
before anything is sent: a known balance below the estimate turns the request
down with the number of credits missing. Hitem3D's own answer (code 30010000)
still decides when the balance is unknown or the table is out of date.
"""

from __future__ import annotations

from typing import Any

import bpy
from bpy.props import FloatProperty

from . import preferences, submit_calls
from .operators import Result, refuse
from .properties import options_from, scene_options
from ..i18n import translations
from ..core import kind_requests, prices
from ..core.errors import Hitem3DError
from ..core.import_options import ImportOptions
from ..core.messages import msg
from ..core.pipeline import DEFAULT_TIMEOUT_S
from ..core.kind_requests import KindRequest
from ..core.prices import Estimate
from ..core.submission import RequestType, Submission, validate
from ..core.tasks import TaskState
from ..engine import batch, state
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
    return (prices.for_generation(made.model, made.resolution, request_type=RequestType.TEXTURE_MESH)
            if made is not None else Estimate(None))


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


# -- sending -----------------------------------------------------------------------------------

# Background mode: how long to wait for Hitem3D to accept a submission (an
# upload of up to 4 x 20 MB) and for a balance check.
SUBMIT_TIMEOUT_S = 600.0
CALL_TIMEOUT_S = 60.0


def send(op: bpy.types.Operator, context: bpy.types.Context, submission: submit_calls.Request,
          timeout_s: float, options: ImportOptions | None = None) -> Result:
    """The one path that spends credits: check the request, then the known
    balance against the estimate, then send from a worker; in background mode
    wait for the model. Every spending operator ends here."""
    try:
        settings = preferences.usable_settings(context)
        if isinstance(submission, KindRequest):
            kind_requests.validate(submission)
        else:
            validate(submission)
        refuse_if_short(estimate_for(submission))
    except Hitem3DError as exc:
        submit_calls.set_generate_notice(exc.message)
        submit_calls.discard_mesh(submission)
        return refuse(op, exc)
    if options is None:
        options = options_from(scene_options(context))
    key = submit_calls.start_submission(submission, settings, options, submission.thumbnail, timeout_s=timeout_s)
    if not state.runs_to_end():
        op.report({"INFO"}, translations.text(msg("Sending to Hitem3D: {what}", what=submission.describe())))
        return {"FINISHED"}
    outcome = submit_calls.wait_for_submission(key, SUBMIT_TIMEOUT_S)
    if outcome.error:
        batch.wait_for_call(CALL_TIMEOUT_S)  # the balance check that follows every answer
        op.report({"ERROR"}, translations.text(outcome.error))
        return {"CANCELLED"}
    records = batch.wait_for([outcome.task_id], timeout_s + 30.0)
    batch.wait_for_call(CALL_TIMEOUT_S)
    rec = records[0] if records else None
    if rec is not None and rec.state is TaskState.DONE:
        op.report({"INFO"}, translations.text(msg("Imported {count} object(s) from new task {short}",
                                                  count=len(rec.imported_objects), short=rec.short_id)))
        return {"FINISHED"}
    op.report({"ERROR"}, translations.text(rec.message if rec is not None else msg("The new task was removed")))
    return {"CANCELLED"}


def timeout_property() -> Any:
    """The ``timeout`` of the operators that send a request and wait for its model."""
    return FloatProperty(
        name="Timeout",
        description="Give up waiting for the model after this many seconds",
        default=DEFAULT_TIMEOUT_S,
        min=1.0,
        unit="TIME_ABSOLUTE",
    )
