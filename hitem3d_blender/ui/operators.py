"""Operators: thin, they check input and hand work to the engine (``engine.control``)."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

import bpy
from bpy.props import EnumProperty, FloatProperty, StringProperty

from ..scene import asset_library
from . import connection, preferences, ui_sync
from ..i18n import translations
from ..core.errors import Hitem3DError
from ..core.import_options import ImportOptions
from ..core.messages import NONE, Message, msg, verbatim
from ..core.pipeline import DEFAULT_TIMEOUT_S
from ..core.task_ids import parse_task_ids, short_id
from ..engine import batch, control, history, state
from .properties import ImportOptionProps, copy_options, options_from, scene_options, window_state

if TYPE_CHECKING:
    from bpy.stub_internal.rna_enums import OperatorReturnItems

    Result = set[OperatorReturnItems]
else:
    Result = set

# How long the background path waits for a connection test.
CALL_TIMEOUT_S = 60.0


def refuse(op: bpy.types.Operator, error: Hitem3DError) -> Result:
    """Report ``error`` (translated for display) and cancel: how every operator
    turns a request down."""
    op.report({"ERROR"}, translations.text(error.message))
    return {"CANCELLED"}


def _start_or_wait(op: bpy.types.Operator, context: bpy.types.Context, task_ids: list[str],
                   timeout_s: float, options: ImportOptions | None, *, from_field: bool = False) -> Result:
    """Shared by Import and Retry: start the jobs, and in background mode run
    them to their end before returning. ``from_field``: the IDs were typed in
    the panel, whose field is cleared once they have started."""
    running = {task_id for task_id in task_ids if state.is_running(task_id)}
    for task_id in running:
        op.report({"INFO"}, translations.text(msg("Task {short} is already running", short=short_id(task_id))))
    idle = [task_id for task_id in task_ids if task_id not in running]
    if not idle:
        return {"CANCELLED"}
    try:
        settings = preferences.usable_settings(context)
    except Hitem3DError as exc:
        # Only the tasks this click would have started: running ones go on.
        for failed_id in idle:
            control.fail_without_start(failed_id, exc, report=False)  # refuse says it, once
        return refuse(op, exc)
    with control.starting_many():
        for task_id in idle:
            control.start_import(task_id, settings, timeout_s=timeout_s, options=options)
    started = idle
    # The list shows the newest first; IDs pasted together keep their order.
    history.book().bring_to_top(started)
    state.current.list_dirty = True
    if from_field:
        window_state(context).task_id = ""
    if not state.runs_to_end():
        if len(started) > 3:  # a pasted list: a count says more than a wall of IDs
            op.report({"INFO"}, translations.text(msg("Waiting for {count} Hitem3D tasks", count=len(started))))
        else:
            names = ", ".join(short_id(task_id) for task_id in started)
            op.report({"INFO"}, translations.text(msg("Waiting for Hitem3D task {names}", names=names)))
        return {"FINISHED"}
    records = batch.wait_for(started, timeout_s + 30.0)
    failed = [rec for rec in records if rec.state.value != "done"]
    imported = sum(len(rec.imported_objects) for rec in records if rec.state.value == "done")
    if not failed:
        op.report({"INFO"}, translations.text(msg("Imported {count} object(s) from {tasks} task(s)",
                                                                 count=imported, tasks=len(records))))
        return {"FINISHED"}
    for rec in failed:
        op.report({"ERROR"}, translations.text(
            rec.message if len(task_ids) == 1 else msg("Task {short}: {reason}", short=rec.short_id, reason=rec.message)))
    return {"CANCELLED"}


class HITEM3D_OT_import_task(ImportOptionProps, bpy.types.Operator):
    """Import the model of one or more Hitem3D tasks into the scene when ready"""

    bl_idname = "hitem3d.import_task"
    bl_label = "Import"
    bl_options = {"REGISTER"}

    task_id: StringProperty(  # type: ignore[valid-type]
        name="Task ID",
        description="Hitem3D task IDs, separated by spaces, commas or new lines "
                    "(empty: the IDs typed in the Hitem3D panel)",
        options={"SKIP_SAVE"},
    )
    timeout: FloatProperty(  # type: ignore[valid-type]
        name="Timeout",
        description="Give up waiting after this many seconds",
        default=DEFAULT_TIMEOUT_S,
        min=1.0,
        unit="TIME_ABSOLUTE",
    )

    def invoke(self, context: bpy.types.Context, event: bpy.types.Event) -> Result:
        # From the panel: the scene's import options. From a script
        # (execute only): the operator's own properties.
        copy_options(scene_options(context), self)
        return self.execute(context)

    def execute(self, context: bpy.types.Context) -> Result:
        text = self.task_id or window_state(context).task_id
        try:
            task_ids = parse_task_ids(text)
        except Hitem3DError as exc:
            ui_sync.set_notice(exc.message)
            return refuse(self, exc)
        ui_sync.set_notice(NONE)
        return _start_or_wait(self, context, task_ids, self.timeout, options_from(self), from_field=not self.task_id)


class _TaskOperator(bpy.types.Operator):
    bl_options = {"INTERNAL"}

    task_id: StringProperty(options={"SKIP_SAVE"})  # type: ignore[valid-type]


class HITEM3D_OT_retry_task(_TaskOperator):
    """Try this task again from the start"""

    bl_idname = "hitem3d.retry_task"
    bl_label = "Retry"

    def execute(self, context: bpy.types.Context) -> Result:
        rec = history.record(self.task_id)
        options = rec.options if rec is not None else None
        return _start_or_wait(self, context, [self.task_id], DEFAULT_TIMEOUT_S, options)


class HITEM3D_OT_import_again(_TaskOperator):
    """Import this task's model into the scene again, from the Hitem3D asset library (no download)"""

    bl_idname = "hitem3d.import_again"
    bl_label = "Import Again"

    def execute(self, context: bpy.types.Context) -> Result:
        options = options_from(scene_options(context))
        rec = control.import_now(self.task_id, options)
        if rec is None:
            # No usable file in the cache: fetch it again.
            control.request_import(self.task_id)
            return _start_or_wait(self, context, [self.task_id], DEFAULT_TIMEOUT_S, options)
        if rec.state.value == "importing" and state.runs_to_end():
            # Background mode converts too (no library entry was left): wait for it here.
            rec = batch.wait_for([rec.task_id], DEFAULT_TIMEOUT_S)[0]
        if rec.state.value == "importing":
            self.report({"INFO"}, translations.text(msg("Converting task {short}: it appears when ready",
                                                        short=rec.short_id)))
            return {"FINISHED"}
        if rec.state.value != "done":
            self.report({"ERROR"}, translations.text(rec.message))
            return {"CANCELLED"}
        self.report({"INFO"}, translations.text(msg("Imported {count} object(s) from task {short}",
                                                    count=len(rec.imported_objects), short=rec.short_id)))
        return {"FINISHED"}


class HITEM3D_OT_cancel_task(_TaskOperator):
    """Stop waiting for this task and delete its partial download"""

    bl_idname = "hitem3d.cancel_task"
    bl_label = "Cancel"

    def execute(self, context: bpy.types.Context) -> Result:
        control.cancel(self.task_id)
        return {"FINISHED"}


class HITEM3D_OT_remove_task(_TaskOperator):
    """Remove this task from the list and its model from the Hitem3D asset library (a running task is cancelled)"""

    bl_idname = "hitem3d.remove_task"
    bl_label = "Remove"

    def execute(self, context: bpy.types.Context) -> Result:
        if control.remove(self.task_id):
            self.report({"INFO"}, translations.text(msg(
                "Removed task {short} and its model in the Hitem3D asset library", short=short_id(self.task_id))))
        else:
            self.report({"INFO"}, translations.text(msg("Removed task {short}", short=short_id(self.task_id))))
        return {"FINISHED"}


class HITEM3D_OT_copy_task_id(_TaskOperator):
    """Copy the full task ID to the clipboard"""

    bl_idname = "hitem3d.copy_task_id"
    bl_label = "Copy Task ID"

    def execute(self, context: bpy.types.Context) -> Result:
        wm = context.window_manager
        assert wm is not None
        wm.clipboard = self.task_id
        self.report({"INFO"}, translations.text(msg("Task ID copied")))
        return {"FINISHED"}


class HITEM3D_OT_clear_finished(bpy.types.Operator):
    """Remove every finished, failed or cancelled task from the list"""

    bl_idname = "hitem3d.clear_finished"
    bl_label = "Clear Finished"
    bl_options = {"INTERNAL"}

    def execute(self, context: bpy.types.Context) -> Result:
        control.clear_finished()
        return {"FINISHED"}


class HITEM3D_OT_clear_cache(bpy.types.Operator):
    """Delete downloaded GLB files. Tasks stay in the list and models in the Hitem3D asset library, so Import Again still works"""

    bl_idname = "hitem3d.clear_cache"
    bl_label = "Clear Cache"
    bl_options = {"INTERNAL"}

    def execute(self, context: bpy.types.Context) -> Result:
        freed = control.clear_cache()
        kept = len(asset_library.entries())
        self.report({"INFO"}, translations.text(msg(
            "Deleted downloaded GLB files ({size} MB); the Hitem3D asset library keeps {count} model(s)",
            size=f"{freed / 1e6:.1f}", count=kept)))
        return {"FINISHED"}


class HITEM3D_OT_copy_diagnostics(bpy.types.Operator):
    """Copy versions, settings (without secrets) and recent problems, for a support request"""

    bl_idname = "hitem3d.copy_diagnostics"
    bl_label = "Copy Diagnostics"
    bl_options = {"INTERNAL"}

    def execute(self, context: bpy.types.Context) -> Result:
        from . import diagnostics

        wm = context.window_manager
        assert wm is not None
        wm.clipboard = diagnostics.report(context)
        self.report({"INFO"}, translations.text(msg("Diagnostics copied: paste them into your support request")))
        return {"FINISHED"}


class HITEM3D_OT_test_connection(bpy.types.Operator):
    """Ask Hitem3D for an access token with these credentials"""

    bl_idname = "hitem3d.test_connection"
    bl_label = "Test Connection"
    bl_options = {"INTERNAL"}

    def execute(self, context: bpy.types.Context) -> Result:
        try:
            settings = preferences.usable_settings(context)
        except Hitem3DError as exc:
            connection.set_connection_status(False, exc.message)
            return refuse(self, exc)
        connection.test_connection(settings)
        if not state.runs_to_end():
            return {"FINISHED"}
        batch.wait_for_call(CALL_TIMEOUT_S)
        status = connection.connection_status()
        if status is not None and status.ok:
            self.report({"INFO"}, translations.text(status.text))
            return {"FINISHED"}
        self.report({"ERROR"}, translations.text(status.text if status else msg("No answer from Hitem3D")))
        return {"CANCELLED"}


def _posted(text: str) -> Message:
    """The message ``ui_sync.post_report`` sent (its JSON form); text from
    anywhere else as it is."""
    try:
        return Message.from_dict(json.loads(text))
    except ValueError:
        return verbatim(text)


class HITEM3D_OT_report(bpy.types.Operator):
    """Post a message to Blender's Info log (used from the timer)"""

    bl_idname = "hitem3d.report"
    bl_label = "Hitem3D Report"
    bl_options = {"INTERNAL"}

    message: StringProperty(options={"SKIP_SAVE"})  # type: ignore[valid-type]
    level: EnumProperty(  # type: ignore[valid-type]
        items=(("INFO", "Info", ""), ("WARNING", "Warning", ""), ("ERROR", "Error", "")),
        options={"SKIP_SAVE"},
    )

    def execute(self, context: bpy.types.Context) -> Result:
        # Translated here, where it is shown: the engine and the log keep English.
        self.report({self.level}, translations.text(_posted(self.message)))
        return {"FINISHED"}


classes = (
    HITEM3D_OT_import_task,
    HITEM3D_OT_retry_task,
    HITEM3D_OT_import_again,
    HITEM3D_OT_cancel_task,
    HITEM3D_OT_remove_task,
    HITEM3D_OT_copy_task_id,
    HITEM3D_OT_clear_finished,
    HITEM3D_OT_clear_cache,
    HITEM3D_OT_copy_diagnostics,
    HITEM3D_OT_test_connection,
    HITEM3D_OT_report,
)
