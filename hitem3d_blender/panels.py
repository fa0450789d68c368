"""The sidebar panel: View3D > Sidebar (N) > Hitem3D."""

from __future__ import annotations

import textwrap
from typing import TYPE_CHECKING

import bpy

from . import bridge
from .core.tasks import TaskRecord, TaskState
from .properties import window_state

if TYPE_CHECKING:
    from bpy.stub_internal.rna_enums import IconItems

MAX_TASKS_SHOWN = 5

STATE_ICONS: dict[TaskState, IconItems] = {
    TaskState.PENDING: "TIME",
    TaskState.CREATED: "TIME",
    TaskState.QUEUEING: "SORTTIME",
    TaskState.PROCESSING: "MOD_REMESH",
    TaskState.DOWNLOADING: "IMPORT",
    TaskState.DOWNLOADED: "IMPORT",
    TaskState.IMPORTING: "IMPORT",
    TaskState.DONE: "CHECKMARK",
    TaskState.FAILED: "ERROR",
    TaskState.CANCELLED: "CANCEL",
}


def format_elapsed(seconds: float) -> str:
    seconds = int(seconds)
    if seconds < 60:
        return f"{seconds}s"
    minutes, seconds = divmod(seconds, 60)
    if minutes < 60:
        return f"{minutes}m {seconds:02d}s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h {minutes:02d}m"


def format_size(size: int) -> str:
    return f"{size / 1e6:.1f} MB"


def _wrapped(layout: bpy.types.UILayout, text: str, width_px: float, icon: IconItems = "NONE") -> None:
    # Labels do not wrap: split by the panel's width (about 7 px a character).
    chars = max(20, int(width_px / 7))
    for index, line in enumerate(textwrap.wrap(text, chars) or [""]):
        layout.label(text=line, icon=icon if index == 0 else "BLANK1")


def _progress_text(record: TaskRecord) -> str:
    if record.state is TaskState.DOWNLOADING and record.bytes_done:
        if record.bytes_total:
            return f"{format_size(record.bytes_done)} / {format_size(record.bytes_total)}"
        return format_size(record.bytes_done)
    if record.progress is not None:
        return f"{record.progress * 100:.0f}%"
    return record.state.label


class HITEM3D_PT_main(bpy.types.Panel):
    bl_idname = "HITEM3D_PT_main"
    bl_label = "Hitem3D"
    bl_space_type = "VIEW_3D"
    bl_region_type = "UI"
    bl_category = "Hitem3D"

    def draw(self, context: bpy.types.Context) -> None:
        layout = self.layout
        assert layout is not None
        width = context.region.width if context.region else 300
        state = window_state(context)
        col = layout.column(align=True)
        col.label(text="Task ID")
        col.prop(state, "task_id", text="")
        col.operator("hitem3d.import_task", icon="IMPORT")
        if bridge.notice():
            _wrapped(layout, bridge.notice(), width, icon="ERROR")
        if not bpy.app.online_access:
            box = layout.box()
            _wrapped(box, "Online access is off: enable Preferences > System > Network > Allow Online Access",
                     width, icon="INFO")
        records = list(bridge.book())[:MAX_TASKS_SHOWN]
        for record in records:
            self._draw_task(layout.box(), record, width)

    def _draw_task(self, box: bpy.types.UILayout, record: TaskRecord, width: float) -> None:
        row = box.row()
        row.label(text=f"{record.short_id}  {record.state.label}", icon=STATE_ICONS[record.state])
        row.label(text=format_elapsed(record.elapsed_s()))
        if record.state.is_active:
            if record.progress is not None or record.state is TaskState.DOWNLOADING:
                box.progress(factor=record.progress or 0.0, type="BAR", text=_progress_text(record))
            op = row.operator("hitem3d.cancel_task", text="", icon="X", emboss=False)
            op.task_id = record.task_id
        if record.message:
            _wrapped(box, record.message, width,
                     icon="ERROR" if record.state is TaskState.FAILED else "INFO")
        if record.state in (TaskState.FAILED, TaskState.CANCELLED):
            op = box.operator("hitem3d.retry_task", icon="FILE_REFRESH")
            op.task_id = record.task_id
        if record.state is TaskState.DONE and record.imported_objects:
            box.label(text=f"Imported {len(record.imported_objects)} object(s)")


classes = (HITEM3D_PT_main,)
