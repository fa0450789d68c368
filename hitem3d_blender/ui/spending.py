"""Every button that spends credits: the price before you pay, the one path
that sends (``send``), and what a request on its way shows under its button.

Each such button shows the estimate from ``core.prices`` and the balance after
it (when the balance is known), is inactive while its own request is on its
way (``can_press``), and its operator ends in ``send``: the request is
checked, then the known balance, less what the requests on their way will
cost, against the least it could cost; then it waits in the send queue
(``submit_calls``) for the session's first balance and a free slot, and goes.
Hitem3D's own answer decides whenever the balance is unknown or enough.
"""

from __future__ import annotations

from typing import Any, Collection

import bpy
from bpy.props import FloatProperty, StringProperty

from . import preferences, submit_calls
from .operators import Result, refuse
from .properties import options_from, scene_options
from ..i18n import translations
from ..core import kind_requests, prices
from ..core.errors import Hitem3DError
from ..core.import_options import ImportOptions
from ..core.messages import Message, msg
from ..core.pipeline import DEFAULT_TIMEOUT_S
from ..core.kind_requests import KindRequest
from ..core.prices import Estimate
from ..core.send_queue import Stage
from ..core.submission import InvalidSubmission, RequestType, Submission, validate
from ..core.tasks import TaskState
from ..engine import batch, state
from ..core.tasks import TaskRecord
from .text_fit import CELL_PADDING, ICON_WIDTH, content_width, ui_scale, wrapped, wrapped_label


def known_balance() -> float | None:
    """The last balance Hitem3D gave, or None before the first answer."""
    status = submit_calls.balance_status()
    return status.credits if status is not None else None


def estimate_for(request: Submission | KindRequest) -> Estimate:
    return prices.for_request(request)


def texture_estimate(rec: TaskRecord) -> Estimate:
    """Texturing a geometry-only result: priced as texturing an existing mesh
    with the model and resolution it was made with."""
    made = Submission.from_dict(rec.generation) if rec.generation else None
    return (prices.for_generation(made.model, made.resolution, request_type=RequestType.TEXTURE_MESH)
            if made is not None else Estimate(None))


def refuse_if_short(estimate: Estimate) -> None:
    """Raise ``prices.NotEnoughCredits`` when the known balance, less what the
    requests on their way will cost, is below the least ``estimate`` could cost."""
    submit_calls.check_funds(estimate)


def draw_cost(layout: bpy.types.UILayout, estimate: Estimate, width: float, boxes: int = 0) -> None:
    """The estimate and the balance after it, under a spending button; in red
    with the credits missing when the known balance is too low. Nothing when
    the artist hid estimates in the preferences (the check still applies)."""
    balance = known_balance()
    reserved = submit_calls.reserved()
    if balance is not None and prices.missing(estimate, balance, reserved):
        col = layout.column()
        col.alert = True
        wrapped_label(col, translations.text(prices.shortage_message(
            estimate, balance, reserved, submit_calls.reserved_count())), content_width(width, boxes), "ERROR")
        return
    if not preferences.show_cost_estimate():
        return
    wrapped_label(layout, translations.text(prices.cost_line(estimate, balance, reserved)),
                  content_width(width, boxes), "FUND")


# -- a button's own request -------------------------------------------------------------------------


def button_of(op: Any) -> str:
    """What makes a button one: its operator, and the task it works on (Texture)."""
    task_id = getattr(op, "task_id", "")
    return f"{type(op).bl_idname}:{task_id}" if task_id else str(type(op).bl_idname)


def busy_message() -> Message:
    return msg("Already on its way to Hitem3D: wait for the answer, or cancel it")


def can_press(cls: Any) -> bool:
    """An operator's ``poll``: inactive while its request is on its way (a
    second press would send, and pay, twice)."""
    if submit_calls.in_flight(str(cls.bl_idname)):
        cls.poll_message_set(translations.text(busy_message()))
        return False
    return True


def refuse_if_in_flight(op: Any) -> None:
    if submit_calls.in_flight(button_of(op)):
        raise InvalidSubmission(busy_message())


def draw_sends(layout: bpy.types.UILayout, panel: str, width: float, *, button: str = "",
               placed: Collection[str] = (), boxes: int = 0) -> None:
    """Requests on their way, each with what it waits for and a Cancel:
    ``button``'s only, drawn right under that button; otherwise the panel's
    others (not those of the ``placed`` buttons), then its last problem.

    NOTE: under their button: at the end of a panel taller than the window
    (New Generation, a default window's sidebar), a pressed button only
    greyed out and its "Waiting for a free slot" was out of view."""
    for pending in submit_calls.pending_submissions(panel):
        made_by = submit_calls.button_of_request(pending.key)
        if (made_by != button) if button else (made_by in placed):
            continue
        row = layout.row(align=True)
        stage = submit_calls.stage_of(pending.key)
        # The buttons beside the text (Send for a kept request, Cancel) take a square each.
        buttons = 2 if stage is Stage.KEPT else 1
        text_width = content_width(width, boxes) - buttons * (ICON_WIDTH + CELL_PADDING) * ui_scale()
        wrapped_label(row.column(), translations.text(submit_calls.line_of(pending)), text_width,
                      "SORTTIME" if stage in (Stage.BALANCE, Stage.SLOT, Stage.KEPT) else "TIME")
        if stage is Stage.KEPT:
            setattr(row.operator("hitem3d.resume_send", text="", icon="PLAY"), "key", pending.key)
        if stage is not Stage.STOPPING:
            setattr(row.operator("hitem3d.cancel_send", text="", icon="X"), "key", pending.key)
    if not button and submit_calls.notice(panel):
        wrapped(layout, translations.text(submit_calls.notice(panel)), width, icon="ERROR")


# -- sending -----------------------------------------------------------------------------------

# Background mode: how long to wait for Hitem3D to accept a submission (an
# upload of up to 4 x 20 MB) and for a balance check.
SUBMIT_TIMEOUT_S = 600.0
CALL_TIMEOUT_S = 60.0


def send(op: bpy.types.Operator, context: bpy.types.Context, submission: submit_calls.Request,
         timeout_s: float, options: ImportOptions | None = None,
         panel: str = submit_calls.PANEL_GENERATE) -> Result:
    """The one path that spends credits: check the request, then the known
    balance against the least it could cost, then queue it to be sent from a
    worker; in background mode wait for the model. Every spending operator
    ends here."""
    estimate = estimate_for(submission)
    try:
        settings = preferences.usable_settings(context)
        refuse_if_in_flight(op)
        if isinstance(submission, KindRequest):
            kind_requests.validate(submission)
        else:
            validate(submission)
        refuse_if_short(estimate)
    except Hitem3DError as exc:
        submit_calls.set_notice(panel, exc.message)
        submit_calls.discard_mesh(submission)
        return refuse(op, exc)
    if options is None:
        options = options_from(scene_options(context))
    key = submit_calls.start_submission(submission, settings, options, submission.thumbnail, timeout_s=timeout_s,
                                        button=button_of(op), panel=panel, estimate=estimate)
    if not state.runs_to_end():
        stage = submit_calls.stage_of(key)
        what = submission.describe()
        text = (msg("Checking the balance, then sending: {what}", what=what) if stage is Stage.BALANCE
                else msg("Waiting for a free slot on Hitem3D: {what}", what=what) if stage is Stage.SLOT
                else msg("Sending to Hitem3D: {what}", what=what))
        op.report({"INFO"}, translations.text(text))
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


class HITEM3D_OT_cancel_send(bpy.types.Operator):
    """Cancel this request: before it leaves nothing is sent; during its upload Hitem3D may already have it"""

    bl_idname = "hitem3d.cancel_send"
    bl_label = "Cancel"
    bl_options = {"INTERNAL"}

    key: StringProperty(options={"SKIP_SAVE"})  # type: ignore[valid-type]

    def execute(self, context: bpy.types.Context) -> Result:
        self.report({"INFO"}, translations.text(submit_calls.cancel(self.key)))
        return {"FINISHED"}


class HITEM3D_OT_resume_send(bpy.types.Operator):
    """Send this request kept from your last session: it spends credits, after the balance check"""

    bl_idname = "hitem3d.resume_send"
    bl_label = "Send"
    bl_options = {"INTERNAL"}

    key: StringProperty(options={"SKIP_SAVE"})  # type: ignore[valid-type]

    def execute(self, context: bpy.types.Context) -> Result:
        try:
            settings = preferences.usable_settings(context)
        except Hitem3DError as exc:
            return refuse(self, exc)
        self.report({"INFO"}, translations.text(submit_calls.resume(self.key, settings)))
        return {"FINISHED"}


def timeout_property() -> Any:
    """The ``timeout`` of the operators that send a request and wait for its model."""
    return FloatProperty(
        name="Timeout",
        description="Give up waiting for the model after this many seconds",
        default=DEFAULT_TIMEOUT_S,
        min=1.0,
        unit="TIME_ABSOLUTE",
    )


classes = (HITEM3D_OT_cancel_send, HITEM3D_OT_resume_send)
