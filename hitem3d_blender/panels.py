"""The sidebar panel: View3D > Sidebar (N) > Hitem3D."""

from __future__ import annotations

import textwrap
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import bpy

from . import translations, ui_sync
from .core.errors import OnlineAccessDisabled
from .core.messages import msg
from .core.submission import texture_offered
from .core.task_kinds import IMAGE_TO_3D, kind_of
from .core.tasks import TaskRecord, TaskState
from .engine import history
from .properties import scene_options, window_state

if TYPE_CHECKING:
    from bpy.stub_internal.rna_enums import IconItems, RegionTypeItems, SpaceTypeItems

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
        return translations.text(msg("{seconds}s", seconds=seconds))
    minutes, seconds = divmod(seconds, 60)
    if minutes < 60:
        return translations.text(msg("{minutes}m {seconds}s", minutes=minutes, seconds=f"{seconds:02d}"))
    hours, minutes = divmod(minutes, 60)
    return translations.text(msg("{hours}h {minutes}m", hours=hours, minutes=f"{minutes:02d}"))


def format_size(size: int) -> str:
    return f"{size / 1e6:.1f} MB"


def _wrapped(layout: bpy.types.UILayout, text: str, width_px: float, icon: IconItems = "NONE") -> None:
    # Labels do not wrap: split by the panel's width (about 7 px a character).
    chars = max(20, int(width_px / 7))
    if any(ord(ch) >= 0x2E80 for ch in text):
        chars = max(10, chars // 2)  # CJK characters are about twice as wide
    for index, line in enumerate(textwrap.wrap(text, chars) or [""]):
        layout.label(text=line, icon=icon if index == 0 else "BLANK1", translate=False)


def progress_text(rec: TaskRecord) -> str:
    if rec.state is TaskState.DOWNLOADING and rec.bytes_done:
        if rec.bytes_total:
            return f"{format_size(rec.bytes_done)} / {format_size(rec.bytes_total)}"
        return format_size(rec.bytes_done)
    if rec.progress is not None:
        return f"{translations.text(rec.state.label)} {rec.progress * 100:.0f}%"
    return translations.text(rec.state.label)


def _task_button(layout: bpy.types.UILayout, operator: str, task_id: str, **kwargs: Any) -> None:
    op = layout.operator(operator, **kwargs)
    setattr(op, "task_id", task_id)


class HITEM3D_UL_tasks(bpy.types.UIList):
    """One row per task: state icon, short ID, state or progress, elapsed time."""

    # Context | None: the newest stubs declare it optional, and an override may not narrow it.
    def draw_item(self, context: bpy.types.Context | None, layout: bpy.types.UILayout, data: Any, item: Any,
                  icon: int | None, active_data: Any, active_property: str | None,
                  index: int | None = 0, flt_flag: int | None = 0) -> None:
        rec = history.record(item.task_id)
        if rec is None:
            layout.label(text=item.task_id[:8], translate=False)
            return
        row = layout.row(align=True)
        row.label(text=rec.short_id, icon=STATE_ICONS[rec.state], translate=False)
        if rec.state.is_active and (rec.progress is not None or rec.state is TaskState.DOWNLOADING):
            row.progress(factor=rec.progress or 0.0, type="BAR", text=progress_text(rec), translate=False)
        else:
            row.label(text=translations.text(rec.state.label), translate=False)
        row.label(text=format_elapsed(rec.elapsed_s()), translate=False)


class SidebarPanel:
    """Where every Hitem3D panel lives: View3D > Sidebar (N) > Hitem3D."""

    bl_space_type: SpaceTypeItems = "VIEW_3D"
    bl_region_type: RegionTypeItems = "UI"
    bl_category = "Hitem3D"


class HITEM3D_PT_main(SidebarPanel, bpy.types.Panel):
    bl_idname = "HITEM3D_PT_main"
    bl_label = "Hitem3D"

    def draw(self, context: bpy.types.Context) -> None:
        layout = self.layout
        assert layout is not None
        width = context.region.width if context.region else 300
        state = window_state(context)
        col = layout.column(align=True)
        col.label(text="Task ID")
        col.prop(state, "task_id", text="")
        col.operator("hitem3d.import_task", icon="IMPORT")
        if ui_sync.notice():
            _wrapped(layout, translations.text(ui_sync.notice()), width, icon="ERROR")
        if not bpy.app.online_access:
            _wrapped(layout.box(), translations.text(OnlineAccessDisabled().message), width, icon="INFO")
        if not len(history.book()):
            return
        row = layout.row()
        row.template_list("HITEM3D_UL_tasks", "", state, "tasks", state, "active_index", rows=4)
        side = row.column(align=True)
        side.operator("hitem3d.clear_finished", text="", icon="BRUSH_DATA")
        if 0 <= state.active_index < len(state.tasks):
            rec = history.record(state.tasks[state.active_index].task_id)
            if rec is not None:
                draw_details(layout.box(), rec, width)


def draw_details(box: bpy.types.UILayout, rec: TaskRecord, width: float) -> None:
    """The selected task: ID, cover, state, error, file, and what can be done."""
    row = box.row(align=True)
    row.label(text=rec.task_id, translate=False)
    _task_button(row, "hitem3d.copy_task_id", rec.task_id, text="", icon="COPYDOWN")
    icon = ui_sync.cover_icon(rec)
    if icon:
        box.template_icon(icon_value=icon, scale=6.0)
    row = box.row()
    row.label(text=translations.text(rec.state.label), icon=STATE_ICONS[rec.state], translate=False)
    row.label(text=format_elapsed(rec.elapsed_s()), translate=False)
    if rec.state.is_active and (rec.progress is not None or rec.state is TaskState.DOWNLOADING):
        box.progress(factor=rec.progress or 0.0, type="BAR", text=progress_text(rec), translate=False)
    if rec.message:
        _wrapped(box, translations.text(rec.message), width,
                 icon="ERROR" if rec.state is TaskState.FAILED else "INFO")
    kind = kind_of(rec.task_id)
    if kind is not IMAGE_TO_3D:
        box.label(text=translations.text(msg("Kind: {kind}", kind=kind.title)), translate=False)
    if rec.model and rec.model != kind.id:
        box.label(text=translations.text(msg("Model: {model}", model=rec.model)), translate=False)
    if rec.result_path and Path(rec.result_path).is_file():
        box.label(text=translations.text(msg("File: {size}", size=format_size(Path(rec.result_path).stat().st_size))),
                  translate=False)
    if rec.finished_at is not None:
        box.label(text=translations.text(msg("Finished {when}", when=time.strftime("%Y-%m-%d %H:%M",
                                                                                  time.localtime(rec.finished_at)))),
                  translate=False)
    if rec.imported_objects and rec.state is TaskState.DONE:
        box.label(text=translations.text(msg("Imported {count} object(s)", count=len(rec.imported_objects))),
                  translate=False)
    row = box.row(align=True)
    if rec.state is TaskState.DOWNLOADED:
        _task_button(row, "hitem3d.import_again", rec.task_id, text="Import", icon="IMPORT")
    if rec.state is TaskState.DONE:
        _task_button(row, "hitem3d.import_again", rec.task_id, icon="IMPORT")
    if rec.state in (TaskState.FAILED, TaskState.CANCELLED):
        _task_button(row, "hitem3d.retry_task", rec.task_id, icon="FILE_REFRESH")
    if texture_offered(rec):
        _task_button(row, "hitem3d.texture_task", rec.task_id, icon="TEXTURE")
    if rec.state.is_active and rec.state is not TaskState.DOWNLOADED:
        _task_button(row, "hitem3d.cancel_task", rec.task_id, icon="CANCEL")
    _task_button(row, "hitem3d.remove_task", rec.task_id, text="", icon="TRASH")


class HITEM3D_PT_import_options(SidebarPanel, bpy.types.Panel):
    bl_idname = "HITEM3D_PT_import_options"
    bl_label = "Import Options"
    bl_parent_id = "HITEM3D_PT_main"
    bl_options = {"DEFAULT_CLOSED"}

    def draw(self, context: bpy.types.Context) -> None:
        layout = self.layout
        assert layout is not None
        layout.use_property_split = True
        layout.use_property_decorate = False
        options = scene_options(context)
        layout.prop(options, "collection")
        layout.prop(options, "at_cursor")
        layout.prop(options, "origin_bottom_center")
        layout.prop(options, "scale_to_size")
        row = layout.row()
        row.active = options.scale_to_size
        row.prop(options, "target_size")
        layout.prop(options, "shade_smooth")
        layout.prop(options, "mark_asset")


classes = (HITEM3D_UL_tasks, HITEM3D_PT_main, HITEM3D_PT_import_options)
