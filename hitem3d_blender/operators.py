"""Operators: thin, they check input and hand work to ``bridge``."""

from __future__ import annotations

from typing import TYPE_CHECKING

import bpy
from bpy.props import EnumProperty, FloatProperty, StringProperty

from . import bridge, preferences
from .core.errors import Hitem3DError, OnlineAccessDisabled
from .core.settings import ApiSettings
from .core.task_ids import parse_task_id, short_id
from .properties import window_state

if TYPE_CHECKING:
    from bpy.stub_internal.rna_enums import OperatorReturnItems

    Result = set[OperatorReturnItems]
else:
    Result = set

DEFAULT_TIMEOUT_S = 3600.0
# How long the background path waits for a connection test.
CALL_TIMEOUT_S = 60.0


def runs_to_end() -> bool:
    """Whether operators wait for their work: yes without an event loop
    (``blender -b``, the ``bpy`` module), where the timer never fires."""
    return bool(bpy.app.background)


def _usable_settings(context: bpy.types.Context) -> ApiSettings:
    """Settings ready for a network call, or a ``Hitem3DError`` saying why not."""
    if not bpy.app.online_access:
        raise OnlineAccessDisabled()
    settings = preferences.get(context).settings()
    settings.require_credentials()
    return settings


def _start_or_wait(op: bpy.types.Operator, context: bpy.types.Context,
                   task_id: str, timeout_s: float) -> Result:
    """Shared by Import and Retry: start the job, and in background mode run it
    to its end before returning."""
    if bridge.is_running(task_id):
        op.report({"INFO"}, f"Task {short_id(task_id)} is already running")
        return {"CANCELLED"}
    try:
        settings = _usable_settings(context)
    except Hitem3DError as exc:
        bridge.fail_without_start(task_id, exc)
        op.report({"ERROR"}, str(exc))
        return {"CANCELLED"}
    bridge.start_import(task_id, settings, timeout_s=timeout_s)
    if not runs_to_end():
        op.report({"INFO"}, f"Waiting for Hitem3D task {short_id(task_id)}")
        return {"FINISHED"}
    record = bridge.wait_for(task_id, timeout_s + 30.0)
    if record is not None and record.state.value == "done":
        op.report({"INFO"}, f"Imported {len(record.imported_objects)} object(s) from task {short_id(task_id)}")
        return {"FINISHED"}
    message = record.message if record is not None and record.message else "Task did not finish"
    op.report({"ERROR"}, message)
    return {"CANCELLED"}


class HITEM3D_OT_import_task(bpy.types.Operator):
    """Import the model of a Hitem3D task into the scene when it is ready"""

    bl_idname = "hitem3d.import_task"
    bl_label = "Import"
    bl_options = {"REGISTER"}

    task_id: StringProperty(  # type: ignore[valid-type]
        name="Task ID",
        description="Hitem3D task ID (empty: the ID typed in the Hitem3D panel)",
        options={"SKIP_SAVE"},
    )
    timeout: FloatProperty(  # type: ignore[valid-type]
        name="Timeout",
        description="Give up waiting after this many seconds",
        default=DEFAULT_TIMEOUT_S,
        min=1.0,
        unit="TIME_ABSOLUTE",
    )

    def execute(self, context: bpy.types.Context) -> Result:
        text = self.task_id or window_state(context).task_id
        try:
            task_id = parse_task_id(text)
        except Hitem3DError as exc:
            bridge.set_notice(str(exc))
            self.report({"ERROR"}, str(exc))
            return {"CANCELLED"}
        bridge.set_notice("")
        return _start_or_wait(self, context, task_id, self.timeout)


class HITEM3D_OT_retry_task(bpy.types.Operator):
    """Try this task again from the start"""

    bl_idname = "hitem3d.retry_task"
    bl_label = "Retry"
    bl_options = {"INTERNAL"}

    task_id: StringProperty(options={"SKIP_SAVE"})  # type: ignore[valid-type]

    def execute(self, context: bpy.types.Context) -> Result:
        return _start_or_wait(self, context, self.task_id, DEFAULT_TIMEOUT_S)


class HITEM3D_OT_cancel_task(bpy.types.Operator):
    """Stop waiting for this task and delete its partial download"""

    bl_idname = "hitem3d.cancel_task"
    bl_label = "Cancel"
    bl_options = {"INTERNAL"}

    task_id: StringProperty(options={"SKIP_SAVE"})  # type: ignore[valid-type]

    def execute(self, context: bpy.types.Context) -> Result:
        bridge.cancel(self.task_id)
        return {"FINISHED"}


class HITEM3D_OT_test_connection(bpy.types.Operator):
    """Ask Hitem3D for an access token with these credentials"""

    bl_idname = "hitem3d.test_connection"
    bl_label = "Test connection"
    bl_options = {"INTERNAL"}

    def execute(self, context: bpy.types.Context) -> Result:
        try:
            settings = _usable_settings(context)
        except Hitem3DError as exc:
            bridge.set_connection_status(False, str(exc))
            self.report({"ERROR"}, str(exc))
            return {"CANCELLED"}
        bridge.test_connection(settings)
        if not runs_to_end():
            return {"FINISHED"}
        bridge.wait_for_call(CALL_TIMEOUT_S)
        status = bridge.connection_status()
        if status is not None and status.ok:
            self.report({"INFO"}, status.text)
            return {"FINISHED"}
        self.report({"ERROR"}, status.text if status else "No answer from Hitem3D")
        return {"CANCELLED"}


class HITEM3D_OT_report(bpy.types.Operator):
    """Post a message to Blender's Info log (used from the timer)"""

    bl_idname = "hitem3d.report"
    bl_label = "Hitem3D report"
    bl_options = {"INTERNAL"}

    message: StringProperty(options={"SKIP_SAVE"})  # type: ignore[valid-type]
    level: EnumProperty(  # type: ignore[valid-type]
        items=(("INFO", "Info", ""), ("WARNING", "Warning", ""), ("ERROR", "Error", "")),
        options={"SKIP_SAVE"},
    )

    def execute(self, context: bpy.types.Context) -> Result:
        self.report({self.level}, self.message)
        return {"FINISHED"}


classes = (
    HITEM3D_OT_import_task,
    HITEM3D_OT_retry_task,
    HITEM3D_OT_cancel_task,
    HITEM3D_OT_test_connection,
    HITEM3D_OT_report,
)
