"""The sidebar panel: View3D > Sidebar (N) > Hitem3D."""

from __future__ import annotations

import functools
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import bpy

from . import spending, submit_calls, text_fit, ui_sync
from ..i18n import translations
from ..core import display, images, models
from ..core.errors import OnlineAccessDisabled
from ..core.messages import Message, msg, msg_own
from ..core.submission import texture_offered
from ..core.task_kinds import IMAGE_TO_3D, kind_of
from ..core.task_ids import short_id
from ..core.tasks import TaskRecord, TaskState
from ..engine import conversions, history
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
    TaskState.UNFOLLOWED: "QUESTION",
}


def state_label(rec: TaskRecord) -> Message:
    """The task's state in a word; a conversion waiting for a free converter is "Waiting"."""
    if rec.state is TaskState.IMPORTING and conversions.is_waiting(rec.task_id):
        return msg_own("Waiting")
    return rec.state.label


def format_size(size: int) -> str:
    return f"{size / 1e6:.1f} MB"


def has_bar(rec: TaskRecord) -> bool:
    return rec.state.is_active and (rec.progress is not None or rec.state is TaskState.DOWNLOADING)


def progress_text(rec: TaskRecord) -> str:
    """The details' bar: the state, and the size or percentage."""
    if rec.state is TaskState.DOWNLOADING and rec.bytes_done:
        if rec.bytes_total:
            return f"{format_size(rec.bytes_done)} / {format_size(rec.bytes_total)}"
        return format_size(rec.bytes_done)
    if rec.progress is not None:
        return f"{translations.text(rec.state.label)} {rec.progress * 100:.0f}%"
    return translations.text(rec.state.label)


def row_progress_text(rec: TaskRecord) -> str:
    """A row's bar: only the number, the state is the row's icon. A download
    of known size shows its share, one of unknown size the megabytes so far."""
    if rec.state is TaskState.DOWNLOADING and rec.bytes_done and not rec.bytes_total:
        return format_size(rec.bytes_done)
    if rec.state is TaskState.DOWNLOADING and rec.bytes_done and rec.bytes_total:
        return f"{min(1.0, rec.bytes_done / rec.bytes_total) * 100:.0f}%"
    return f"{(rec.progress or 0.0) * 100:.0f}%"


def row_texts(rec: TaskRecord) -> tuple[tuple[TaskState, str], str]:
    """What a task's row shows that moves: its state (the icon) and the bar's
    text (or the state in words); and the elapsed time in its largest unit."""
    middle = row_progress_text(rec) if has_bar(rec) else translations.text(state_label(rec))
    return (rec.state, middle), translations.text(display.duration(rec.elapsed_s(), units=1))


def details_texts(rec: TaskRecord) -> tuple[tuple[object, ...], str]:
    """What the selected task's details show that moves: state, bar, message,
    cover, file and what was imported; and the elapsed time."""
    return ((rec.state, translations.text(state_label(rec)), progress_text(rec) if has_bar(rec) else "", rec.message,
             rec.cover_path, rec.result_path, rec.finished_at, len(rec.imported_objects), rec.model),
            translations.text(display.duration(rec.elapsed_s())))


@functools.lru_cache(maxsize=64)
def _cover_size(path: str, mtime_ns: int) -> tuple[int, int] | None:
    return images.image_size(Path(path))  # the one header reader: no symlink followed


def cover_size(rec: TaskRecord) -> tuple[int, int] | None:
    """The cover's pixel size from its header (read once per file version)."""
    try:
        mtime = Path(rec.cover_path).stat().st_mtime_ns if rec.cover_path else 0
    except OSError:
        return None
    return _cover_size(rec.cover_path, mtime) if mtime else None


def _task_button(layout: bpy.types.UILayout, operator: str, task_id: str, **kwargs: Any) -> None:
    op = layout.operator(operator, **kwargs)
    setattr(op, "task_id", task_id)


class HITEM3D_UL_tasks(bpy.types.UIList):
    """One row per task: state icon and name, a bar with its percentage or
    size (or the state's word), and the time since it started.

    NOTE: rows cannot be taller than one line, so each part gets the width its
    text needs (measured with Blender's font) and the name what is left,
    shortened in the middle rather than cut at the end."""

    # Context | None: the newest stubs declare it optional, and an override may not narrow it.
    def draw_item(self, context: bpy.types.Context | None, layout: bpy.types.UILayout, data: Any, item: Any,
                  icon: int | None, active_data: Any, active_property: str | None,
                  index: int | None = 0, flt_flag: int | None = 0) -> None:
        rec = history.record(item.task_id)
        if rec is None:
            layout.label(text=short_id(item.task_id), translate=False)
            return
        region = context.region if context is not None else None
        width = text_fit.list_row_width(region.width if region is not None else text_fit.default_region_width())
        bar = has_bar(rec)
        texts = row_texts(rec)
        (_, middle), elapsed = texts
        # Only the rows drawn are watched for a change (Blender draws the visible ones).
        ui_sync.showing(region, rec.task_id, row_texts, texts)
        scale = text_fit.ui_scale()
        fitted = display.fit_row(width, display.task_name(rec), middle, elapsed, text_fit.measurer(),
                                 icon=text_fit.ICON_WIDTH * scale, padding=text_fit.CELL_PADDING * scale,
                                 bar_padding=text_fit.BAR_PADDING * scale if bar else None)
        split = layout.split(factor=fitted.name_factor, align=True)
        split.label(text=fitted.name, icon=STATE_ICONS[rec.state], translate=False)
        rest = split.split(factor=fitted.middle_factor, align=True)
        if bar:
            rest.progress(factor=rec.progress or 0.0, type="BAR", text=middle, translate=False)
        else:
            rest.label(text=middle, translate=False)
        if fitted.show_time:
            time_cell = rest.row()
            time_cell.alignment = "RIGHT"
            time_cell.label(text=elapsed, translate=False)


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
        width = context.region.width if context.region else text_fit.default_region_width()
        state = window_state(context)
        ui_sync.begin_draw(context.region)
        col = layout.column(align=True)
        col.label(text="Task ID")
        col.prop(state, "task_id", text="")
        col.operator("hitem3d.import_task", icon="IMPORT")
        if ui_sync.notice():
            text_fit.wrapped(layout, translations.text(ui_sync.notice()), width, icon="ERROR")
        if not bpy.app.online_access:
            text_fit.wrapped(layout.box(), translations.text(OnlineAccessDisabled().message), width, icon="INFO")
        if not len(history.book()):
            return
        # NOTE: no column of buttons beside the list, as Blender's lists often
        # have: the rows need that width for the name and the progress.
        layout.template_list("HITEM3D_UL_tasks", "", state, "tasks", state, "active_index", rows=4)
        if 0 <= state.active_index < len(state.tasks):
            rec = history.record(state.tasks[state.active_index].task_id)
            if rec is not None:
                ui_sync.showing(context.region, rec.task_id, details_texts, details_texts(rec))
                draw_details(layout.box(), rec, width)
        row = layout.row()
        row.alignment = "RIGHT"
        row.operator("hitem3d.clear_finished", icon="BRUSH_DATA")


def draw_details(box: bpy.types.UILayout, rec: TaskRecord, width: float) -> None:
    """The selected task: name, full ID, cover, state, error, file, and what
    can be done. ``width`` is the sidebar's; everything is laid out to fit it."""
    row = box.row(align=True)
    row.label(text=display.task_name(rec), icon=STATE_ICONS[rec.state], translate=False)
    _task_button(row, "hitem3d.copy_task_id", rec.task_id, text="", icon="COPYDOWN")
    _task_button(row, "hitem3d.remove_task", rec.task_id, text="", icon="TRASH")
    col = box.column(align=True)
    col.scale_y = 0.8  # the full ID is for reading and copying, not for the eye first
    text_fit.wrapped(col, rec.task_id, width, boxes=1)
    if display.cover_worth_showing(cover_size(rec)):
        icon = ui_sync.cover_icon(rec)
        if icon:
            box.template_icon(icon_value=icon, scale=6.0)
    row = box.row()
    row.label(text=translations.text(state_label(rec)), translate=False)
    elapsed = row.row()
    elapsed.alignment = "RIGHT"
    elapsed.label(text=translations.text(display.duration(rec.elapsed_s())), translate=False)
    if has_bar(rec):
        box.progress(factor=rec.progress or 0.0, type="BAR", text=progress_text(rec), translate=False)
    if rec.message:
        text_fit.wrapped(box, translations.text(rec.message), width, icon="ERROR" if rec.state is TaskState.FAILED else "INFO",
                 boxes=1)
    facts = []
    kind = kind_of(rec.task_id)
    if kind is not IMAGE_TO_3D:
        facts.append(msg("Kind: {kind}", kind=kind.title))
    if rec.model and rec.model != kind.id:
        spec = models.get(rec.model)  # its name as the New Generation panel shows it
        facts.append(msg("Model: {model}", model=spec.label if spec is not None else rec.model))
    if rec.result_path and Path(rec.result_path).is_file():
        facts.append(msg("File: {size}", size=format_size(Path(rec.result_path).stat().st_size)))
    if rec.finished_at is not None:
        facts.append(msg("Finished {when}", when=time.strftime("%Y-%m-%d %H:%M", time.localtime(rec.finished_at))))
    if rec.imported_objects and rec.state is TaskState.DONE:
        facts.append(msg("Imported {count} object(s)", count=len(rec.imported_objects)))
    for fact in facts:
        text_fit.wrapped(box, translations.text(fact), width, boxes=1)
    # One button a line: at the default width two side by side would be cut.
    col = box.column(align=True)
    if rec.state is TaskState.DOWNLOADED:
        _task_button(col, "hitem3d.import_again", rec.task_id, text="Import", icon="IMPORT")
    if rec.state is TaskState.DONE:
        _task_button(col, "hitem3d.import_again", rec.task_id, icon="IMPORT")
    if rec.state in (TaskState.FAILED, TaskState.CANCELLED, TaskState.UNFOLLOWED):
        _task_button(col, "hitem3d.retry_task", rec.task_id, icon="FILE_REFRESH")
    if texture_offered(rec):
        # Inactive while its request is on its way: a second press would pay twice.
        button = col.row(align=True)
        button.enabled = not submit_calls.in_flight(f"hitem3d.texture_task:{rec.task_id}")
        _task_button(button, "hitem3d.texture_task", rec.task_id, icon="TEXTURE")
        spending.draw_cost(col, spending.texture_estimate(rec), width, boxes=1)
    if rec.state.is_active and rec.state is not TaskState.DOWNLOADED:
        _task_button(col, "hitem3d.cancel_task", rec.task_id, icon="CANCEL")


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
