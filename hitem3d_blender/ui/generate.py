"""New Generation: the panel and the operators that start a Hitem3D generation.

The settings live on the scene (``generation_settings``); the operators turn
them into a plain ``core.submission.Submission`` and hand it to
``spending.send``, which checks it, sends it from a worker and follows the new
task like any imported one.
"""

from __future__ import annotations

from pathlib import Path

import bpy
from bpy.props import FloatProperty, StringProperty

from ..scene import mesh_export
from . import preferences, spending, submit_calls, text_fit, texture_selection
from ..i18n import translations
from ..core import models, prices
from ..core import submission as core_submission
from ..core.errors import Hitem3DError
from ..core.messages import Message, msg, msg_own, one_of
from ..core.pipeline import DEFAULT_TIMEOUT_S
from ..core.settings import ApiSettings
from ..core.submission import VIEW_LABELS, VIEWS, RequestType, Submission, cannot_texture, format_credits, texture_offered
from ..engine import batch, history, state
from .generation_settings import SLOT_PROPS, inputs_of, settings_of, shading_of, submission_of
from .operators import Result, refuse
from .panels import SidebarPanel


class HITEM3D_OT_submit_generation(bpy.types.Operator):
    """Send the image(s) to Hitem3D to generate a model; it is imported when ready"""

    bl_idname = "hitem3d.submit_generation"
    bl_label = "Generate"
    bl_options = {"REGISTER"}

    timeout: spending.timeout_property()  # type: ignore[valid-type]

    @classmethod
    def poll(cls, context: bpy.types.Context) -> bool:
        return spending.can_press(cls)

    def execute(self, context: bpy.types.Context) -> Result:
        try:
            preferences.usable_settings(context)  # before writing any image out
            spending.refuse_if_in_flight(self)
            submission = submission_of(settings_of(context))
        except Hitem3DError as exc:
            submit_calls.set_notice(submit_calls.PANEL_GENERATE, exc.message)
            return refuse(self, exc)
        return spending.send(self, context, submission, self.timeout)


class HITEM3D_OT_texture_task(bpy.types.Operator):
    """Texture this geometry-only result on Hitem3D (a new task), from the image it was made from"""

    bl_idname = "hitem3d.texture_task"
    bl_label = "Texture"
    bl_options = {"INTERNAL"}

    task_id: StringProperty(options={"SKIP_SAVE"})  # type: ignore[valid-type]
    timeout: FloatProperty(default=DEFAULT_TIMEOUT_S, min=1.0, options={"SKIP_SAVE"})  # type: ignore[valid-type]

    def execute(self, context: bpy.types.Context) -> Result:
        rec = history.record(self.task_id)
        made = Submission.from_dict(rec.generation) if rec is not None else None
        if rec is None or made is None or not texture_offered(rec):
            able = one_of([spec.label for spec in models.MODELS if spec.can_texture_mesh])
            text = msg("Only a finished geometry-only task made here with {models} can be textured", models=able)
            self.report({"ERROR"}, translations.text(text))
            return {"CANCELLED"}
        props = settings_of(context)
        try:
            preferences.usable_settings(context)
            spending.refuse_if_in_flight(self)
            if all(Path(path).is_file() for _, path in made.inputs()):
                image, views = made.image, dict(made.views)
            else:  # the original picture is gone: use the panel's
                image, views = inputs_of(props)
        except Hitem3DError as exc:
            submit_calls.set_notice(submit_calls.PANEL_GENERATE, exc.message)
            return refuse(self, exc)
        submission = core_submission.texture_request(
            model=made.model,
            resolution=made.resolution,
            pbr=props.pbr,
            image=image,
            views=views,
            mesh_task_id=rec.task_id,
            shading=shading_of(props, made.model),
        )
        return spending.send(self, context, submission, self.timeout)


class HITEM3D_OT_refresh_balance(bpy.types.Operator):
    """Ask Hitem3D how many credits are left"""

    bl_idname = "hitem3d.refresh_balance"
    bl_label = "Refresh Balance"
    bl_options = {"INTERNAL"}

    def execute(self, context: bpy.types.Context) -> Result:
        try:
            settings = preferences.usable_settings(context)
        except Hitem3DError as exc:
            submit_calls.set_balance_error(exc.message)
            return refuse(self, exc)
        submit_calls.refresh_balance(settings)
        if not state.runs_to_end():
            return {"FINISHED"}
        batch.wait_for_call(spending.CALL_TIMEOUT_S)
        status = submit_calls.balance_status()
        if status is not None and status.credits is not None and not status.error:
            self.report({"INFO"}, translations.text(msg("Hitem3D balance: {credits} credits",
                                                        credits=format_credits(status.credits))))
            return {"FINISHED"}
        self.report({"ERROR"}, translations.text(
            status.error if status is not None and status.error else msg("No answer from Hitem3D")))
        return {"CANCELLED"}


# -- the panel ------------------------------------------------------------------------------------


def _settings_or_none(context: bpy.types.Context) -> ApiSettings | None:
    try:
        return preferences.get(context).settings()
    except Hitem3DError:
        return None


def balance_text(status: submit_calls.BalanceStatus | None) -> Message:
    if status is not None and status.credits is not None:
        return msg("Balance: {credits} credits", credits=format_credits(status.credits))
    if status is not None and status.checking:
        return msg("Balance: checking…")
    return msg("Balance: not checked yet")


GENERATE = "hitem3d.submit_generation"
TEXTURE_SELECTION = "hitem3d.texture_selection"


class HITEM3D_PT_generate(SidebarPanel, bpy.types.Panel):
    bl_idname = "HITEM3D_PT_generate"
    bl_label = "New Generation"
    bl_parent_id = "HITEM3D_PT_main"

    def draw(self, context: bpy.types.Context) -> None:
        layout = self.layout
        assert layout is not None
        width = context.region.width if context.region else text_fit.default_region_width()
        props = settings_of(context)
        spec = models.get(props.model) or models.default()

        status = submit_calls.balance_status()
        row = layout.row(align=True)
        row.label(text=translations.text(balance_text(status)), icon="FUND", translate=False)
        row.operator("hitem3d.refresh_balance", text="", icon="FILE_REFRESH")
        if status is not None and status.error:
            text_fit.wrapped(layout, translations.text(status.error), width, icon="ERROR")
        if not submit_calls.disclosed():
            # Before the first request of the session: what leaves this computer, and where to.
            text_fit.wrapped(layout, translations.text(submit_calls.what_leaves(_settings_or_none(context))), width,
                             icon="INFO")

        col = layout.column()
        col.row().prop(props, "mode", expand=True)
        col.row().prop(props, "source", expand=True)
        slots = ("image",) if props.mode == "SINGLE" else VIEWS
        for slot in slots:
            path_prop, image_prop = SLOT_PROPS[slot]
            name = msg("Image") if slot == "image" else msg_own(VIEW_LABELS[slot])
            if slot == "front":
                name = msg("{view} (required)", view=name)
            col.prop(props, path_prop if props.source == "FILE" else image_prop, text=translations.text(name),
                     translate=False)
        if props.mode == "SINGLE":
            # picture_input's Use Current View: one button a line, as side by side
            # the first was cut to "Use Current Vi…" at the default width.
            views = col.column(align=True)
            setattr(views.operator("hitem3d.use_current_view", icon="VIEW3D"), "view", "VIEWPORT")
            setattr(views.operator("hitem3d.use_current_view", text="Use Camera View", icon="CAMERA_DATA"),
                    "view", "CAMERA")

        col = layout.column()
        col.use_property_split = True
        col.use_property_decorate = False
        col.prop(props, "model")
        if not spec.confirmed:  # said before anything is spent (models.ModelSpec.source)
            text_fit.wrapped(col, translations.text(msg("Unconfirmed: {model} is not on Hitem3D's published pages",
                                                        model=spec.label)), width, icon="INFO")
        col.prop(props, "resolution")
        col.prop(props, "request_type")
        if props.request_type != "GEOMETRY" and spec.pbr:
            col.prop(props, "pbr")
        if props.request_type != "GEOMETRY" and spec.shading:
            row = col.row(heading=translations.iface("Lighting"), align=True)
            row.prop(props, "remove_lighting", text="")
            sub = row.row(align=True)
            sub.active = props.remove_lighting
            # NOTE: a short name: "Removal strength" beside the checkbox was cut at the default width.
            sub.prop(props, "shading", text=translations.text(msg_own("Strength")), translate=False)
            if props.remove_lighting:  # ``shading`` is third-party only (models.ModelSpec.shading)
                text_fit.wrapped(col, translations.text(msg("Unconfirmed: light removal is not on Hitem3D's "
                                                            "published pages")), width, icon="INFO")
        row = col.row()
        row.alert = not spec.allows_face(props.face)
        row.prop(props, "face")
        if row.alert:
            col.label(text=translations.text(msg("{model}: {low} to {high} faces", model=spec.label,
                                                 low=f"{spec.face_min:,}", high=f"{spec.face_max:,}")),
                      icon="ERROR", translate=False)

        layout.operator(GENERATE, icon="PLAY")
        spending.draw_cost(layout, prices.for_generation(props.model, props.resolution,
                                                         request_type=RequestType[props.request_type]), width)
        spending.draw_sends(layout, submit_calls.PANEL_GENERATE, width, button=GENERATE)
        # Texture Selection (``texture_selection``): the same picture and model, the selected meshes.
        layout.separator()
        layout.operator(TEXTURE_SELECTION, icon="TEXTURE")
        if not spec.can_texture_mesh:
            text_fit.wrapped(layout, translations.text(cannot_texture(spec)), width, icon="INFO")
        elif mesh_export.selected_meshes(context):
            spending.draw_cost(layout, prices.for_generation(props.model, props.resolution,
                                                             request_type=RequestType.TEXTURE_MESH), width)
        spending.draw_sends(layout, submit_calls.PANEL_GENERATE, width, button=TEXTURE_SELECTION)
        if spec.can_texture_mesh:
            settings = _settings_or_none(context)
            statement, wrong = texture_selection.upload_statement(settings.base_url if settings is not None else None)
            text_fit.wrapped(layout, translations.text(statement), width, icon="ERROR" if wrong else "EXPORT")
        spending.draw_sends(layout, submit_calls.PANEL_GENERATE, width, placed=(GENERATE, TEXTURE_SELECTION))


classes = (
    HITEM3D_OT_submit_generation,
    HITEM3D_OT_texture_task,
    HITEM3D_OT_refresh_balance,
    HITEM3D_PT_generate,
)
