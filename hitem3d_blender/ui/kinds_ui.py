"""Parts, multicolour and reliefs from Blender: the settings, the operators
that send them, and their sidebar panels.

The settings live on the scene (``Scene.hitem3d_kinds``). Every choice the
service offers comes from the table in ``core.task_kinds``; an operator turns
the settings into a ``core.kind_requests.KindRequest`` and sends it the way
New Generation sends a generation (``spending.send``), so the new task joins
the list and is imported according to its kind.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import bpy
from bpy.props import BoolProperty, EnumProperty, FloatProperty, IntProperty, PointerProperty, StringProperty

from . import spending, submit_calls, text_fit
from ..scene import picture_export
from ..scene import mesh_export
from ..i18n import translations
from ..bpy_compat import pointer_property
from ..core import prices, task_kinds
from ..core.errors import Hitem3DError
from ..core.messages import OWN_CONTEXT, msg
from ..core.kind_requests import DEFAULT_RELIEF_HEIGHT, MAX_RELIEF_HEIGHT, KindRequest
from ..core.result_files import cached_result
from ..core.submission import InvalidSubmission
from ..core.task_kinds import ResultStyle, TaskKind, kind_of
from ..core.pipeline import DEFAULT_TIMEOUT_S
from ..core.tasks import TaskRecord, TaskState
from ..engine import files, history
from .operators import Result, refuse
from .panels import SidebarPanel
from .properties import window_state




def _items(kind: TaskKind, name: str) -> list[tuple[str, str, str]]:
    spec = kind.field(name)
    assert spec is not None and spec.choices, name
    return [(value, label, "") for value, label in spec.choices]


def _default(kind: TaskKind, name: str) -> Any:
    spec = kind.field(name)
    assert spec is not None
    return spec.default


_SPLIT, _SEG, _DEPTH, _COLOUR = task_kinds.SPLIT, task_kinds.SEGMENTATION, task_kinds.DEPTH, task_kinds.MULTICOLOUR


class HITEM3D_KindSettings(bpy.types.PropertyGroup):
    """What the Parts and Colours and the Relief panels send."""

    source: EnumProperty(  # type: ignore[valid-type]
        name="Mesh",
        description="The mesh to send",
        items=(
            # NOTE: one word each: three side by side must fit the default sidebar width.
            ("TASK", "Task", "The finished task selected in the Hitem3D task list"),
            ("SELECTION", "Objects", "The selected mesh objects, exported to one GLB (at most 200 MB)"),
            ("FILE", "File", "A GLB, STL or OBJ file of at most 200 MB"),
        ),
        default="TASK",
    )
    mesh_path: StringProperty(  # type: ignore[valid-type]
        name="Mesh File", description="A GLB, STL or OBJ file of at most 200 MB", subtype="FILE_PATH",
    )
    split_model: EnumProperty(  # type: ignore[valid-type]
        name="Split", description="Character: body parts from a template; General: parts by level of detail",
        items=_items(_SPLIT, "model"), default=_default(_SPLIT, "model"),
    )
    template: EnumProperty(  # type: ignore[valid-type]
        name="Template", description="How a character is cut into parts",
        items=_items(_SPLIT, "part"), default=_default(_SPLIT, "part"),
    )
    joint: EnumProperty(  # type: ignore[valid-type]
        name="Joint", description="The joint between printed parts",
        # NOTE: our context: Blender's catalogue has "None" as 无.
        translation_context=OWN_CONTEXT,
        items=_items(_SPLIT, "joint"), default=_default(_SPLIT, "joint"),
    )
    level: EnumProperty(  # type: ignore[valid-type]
        name="Level", description="How many parts a general split makes",
        items=_items(_SPLIT, "level"), default=_default(_SPLIT, "level"),
    )
    seg_level: EnumProperty(  # type: ignore[valid-type]
        name="Segmentation Level", description="How finely the model is segmented",
        items=_items(_SEG, "seg_level"), default=_default(_SEG, "seg_level"),
    )
    number_color: IntProperty(  # type: ignore[valid-type]
        name="Colours", description="How many colours to print with (0: as many as needed)",
        default=int(_default(_COLOUR, "number_color")), min=0, max=8,
    )
    picture_source: EnumProperty(  # type: ignore[valid-type]
        name="Source",
        # NOTE: our context, like New Generation's source: Blender's catalogue has "Source" another way.
        translation_context=OWN_CONTEXT,
        items=(
            ("FILE", "File", "A picture file on disk"),
            ("IMAGE", "Blender Image", "An image in this file, such as a reference image or the Render Result"),
        ),
        default="FILE",
    )
    image_path: StringProperty(  # type: ignore[valid-type]
        name="Picture", description="A PNG, JPEG or WebP picture of at most 20 MB", subtype="FILE_PATH",
    )
    image: PointerProperty(  # type: ignore[valid-type]
        type=bpy.types.Image, name="Picture",
        description="An image in this file (sent as PNG unless it is a PNG, JPEG or WebP file already)",
    )
    quality: EnumProperty(  # type: ignore[valid-type]
        name="Quality", items=_items(_DEPTH, "model_type"), default=_default(_DEPTH, "model_type"),
        # NOTE: our context: Blender's catalogue has "Base" as 基础(基数).
        translation_context=OWN_CONTEXT,
    )
    remove_background: BoolProperty(  # type: ignore[valid-type]
        name="Remove background", description="Hitem3D removes the picture's background first", default=True,
    )
    relief_height: FloatProperty(  # type: ignore[valid-type]
        name="Height", description="How deep the relief is (the Displace modifier's strength)",
        default=DEFAULT_RELIEF_HEIGHT, min=0.001, max=MAX_RELIEF_HEIGHT, unit="LENGTH",
    )


def settings_of(context: bpy.types.Context) -> HITEM3D_KindSettings:
    props: HITEM3D_KindSettings = getattr(context.scene, "hitem3d_kinds")
    return props


# -- where the mesh comes from ---------------------------------------------------------------------


def selected_task(context: bpy.types.Context) -> TaskRecord | None:
    state = window_state(context)
    if 0 <= state.active_index < len(state.tasks):
        return history.record(state.tasks[state.active_index].task_id)
    return None


def mesh_source(rec: TaskRecord | None) -> dict[str, Any]:
    """A finished task as the source: its cached mesh when there is one (sent
    as a file), else its ID (the worker asks for a fresh model link)."""
    if rec is None or rec.state not in (TaskState.DOWNLOADED, TaskState.DONE):
        raise InvalidSubmission(msg("Select a finished task in the Hitem3D list first"))
    kind = kind_of(rec.task_id)
    if kind.result_style is ResultStyle.RELIEF:
        raise InvalidSubmission(msg("A depth map is not a mesh: select a task with a model"))
    name = rec.imported_objects[0] if rec.imported_objects else rec.short_id
    cached = cached_result(files.result_path(rec.task_id), kind)
    if cached is not None:
        return {"source_path": str(cached), "source_name": name}
    return {"source_task_id": rec.task_id, "source_name": name}


def source_of(context: bpy.types.Context, props: HITEM3D_KindSettings) -> dict[str, Any]:
    if props.source == "FILE":
        text = props.mesh_path.strip()
        if not text:
            raise InvalidSubmission(msg("Choose a mesh file first"))
        path = bpy.path.abspath(text)
        return {"source_path": path, "source_name": Path(path).stem}
    if props.source == "SELECTION":
        # Removed once Hitem3D has answered (submit_calls).
        exported = mesh_export.export_meshes(mesh_export.selected_meshes(context), context)
        return {"source_path": str(exported.path), "source_name": exported.title}
    return mesh_source(selected_task(context))


def _picture(props: HITEM3D_KindSettings) -> str:
    """The relief's picture as a file: the chosen file, or an image of this
    file written for upload (``picture_export.image_file``)."""
    if props.picture_source == "IMAGE":
        if props.image is None:
            raise InvalidSubmission(msg("Choose a picture first"))
        folder = picture_export.uploads_dir()
        picture_export.prune_uploads(folder)
        return picture_export.image_file(props.image, folder)
    text = props.image_path.strip()
    if not text:
        raise InvalidSubmission(msg("Choose a picture first"))
    return bpy.path.abspath(text)


def request_of(kind: str, context: bpy.types.Context) -> KindRequest:
    """The panel's settings as a request of ``kind``."""
    props = settings_of(context)
    values: dict[str, str]
    if kind == "depth":
        path = _picture(props)
        values = {"model_type": props.quality, "rmbg": "1" if props.remove_background else "0"}
        return KindRequest(kind, values, source_path=path, source_name=Path(path).stem,
                           relief_height=props.relief_height)
    if kind == "split":
        values = {"model": props.split_model}
        if props.split_model == "character":
            values.update(part=props.template, joint=props.joint)
        else:
            values["level"] = props.level
    elif kind == "segmentation":
        values = {"seg_level": props.seg_level}
    else:
        values = {"number_color": str(props.number_color)}
    return KindRequest(kind, values, **source_of(context, props))


# -- operators ---------------------------------------------------------------------------------------


class _KindOperator(bpy.types.Operator):
    bl_options = {"REGISTER"}
    kind = ""

    timeout: FloatProperty(  # type: ignore[valid-type]
        name="Timeout", description="Give up waiting for the result after this many seconds",
        default=DEFAULT_TIMEOUT_S, min=1.0, unit="TIME_ABSOLUTE",
    )

    def execute(self, context: bpy.types.Context) -> Result:
        try:
            request = request_of(self.kind, context)
        except Hitem3DError as exc:
            submit_calls.set_generate_notice(exc.message)
            return refuse(self, exc)
        return spending.send(self, context, request, self.timeout)


class HITEM3D_OT_split_parts(_KindOperator):
    """Split the mesh into printable parts on Hitem3D; they arrive as separate objects"""

    bl_idname = "hitem3d.split_parts"
    bl_label = "Split into Parts"
    kind = "split"


class HITEM3D_OT_segment_parts(_KindOperator):
    """Segment the mesh into its parts on Hitem3D; they arrive as separate objects"""

    bl_idname = "hitem3d.segment_parts"
    bl_label = "Segment"
    kind = "segmentation"


class HITEM3D_OT_multicolour(_KindOperator):
    """Colour the mesh for multicolour printing on Hitem3D; it arrives with its colours visible"""

    bl_idname = "hitem3d.multicolour"
    bl_label = "Multicolour"
    kind = "multicolor"


class HITEM3D_OT_make_relief(_KindOperator):
    """Make a depth map of the picture on Hitem3D; it arrives as a relief (a displaced plane)"""

    bl_idname = "hitem3d.make_relief"
    bl_label = "Make Relief"
    kind = "depth"


# -- panels --------------------------------------------------------------------------------------------


def _notice(layout: bpy.types.UILayout, context: bpy.types.Context) -> None:
    width = context.region.width if context.region else 300
    if submit_calls.generate_notice():
        text_fit.wrapped(layout, translations.text(submit_calls.generate_notice()), width, icon="ERROR")


class HITEM3D_PT_parts(SidebarPanel, bpy.types.Panel):
    bl_idname = "HITEM3D_PT_parts"
    bl_label = "Parts and Colours"
    bl_parent_id = "HITEM3D_PT_main"
    bl_options = {"DEFAULT_CLOSED"}

    def draw(self, context: bpy.types.Context) -> None:
        layout = self.layout
        assert layout is not None
        props = settings_of(context)
        width = context.region.width if context.region else 300
        layout.row().prop(props, "source", expand=True)
        if props.source == "FILE":
            layout.prop(props, "mesh_path", text="")
        elif props.source == "SELECTION":
            count = len(mesh_export.selected_meshes(context))
            layout.label(text=translations.text(msg("{count} mesh object(s) selected", count=count)),
                         icon="RESTRICT_SELECT_OFF", translate=False)
        else:
            rec = selected_task(context)
            task = rec.short_id if rec is not None else msg("no task selected")
            layout.label(text=translations.text(msg("Task: {task}", task=task)), icon="OUTLINER_OB_MESH",
                         translate=False)

        col = layout.column()
        col.use_property_split = True
        col.use_property_decorate = False
        box = col.box()
        box.prop(props, "split_model")
        if props.split_model == "character":
            box.prop(props, "template")
            box.prop(props, "joint")
        else:
            box.prop(props, "level")
        box.operator(HITEM3D_OT_split_parts.bl_idname, icon="MOD_EXPLODE")
        spending.draw_cost(box, prices.for_kind(task_kinds.SPLIT.id), width, boxes=1)
        box = col.box()
        box.prop(props, "seg_level", text="Level")
        box.operator(HITEM3D_OT_segment_parts.bl_idname, icon="MOD_BUILD")
        spending.draw_cost(box, prices.for_kind(task_kinds.SEGMENTATION.id), width, boxes=1)
        box = col.box()
        box.prop(props, "number_color")
        box.operator(HITEM3D_OT_multicolour.bl_idname, icon="COLOR")
        spending.draw_cost(box, prices.for_kind(task_kinds.MULTICOLOUR.id), width, boxes=1)
        _notice(layout, context)


class HITEM3D_PT_relief(SidebarPanel, bpy.types.Panel):
    bl_idname = "HITEM3D_PT_relief"
    bl_label = "Relief"
    bl_parent_id = "HITEM3D_PT_main"
    bl_options = {"DEFAULT_CLOSED"}

    def draw(self, context: bpy.types.Context) -> None:
        layout = self.layout
        assert layout is not None
        props = settings_of(context)
        layout.row().prop(props, "picture_source", expand=True)
        layout.prop(props, "image_path" if props.picture_source == "FILE" else "image", text="")
        col = layout.column()
        col.use_property_split = True
        col.use_property_decorate = False
        col.prop(props, "quality")
        col.prop(props, "remove_background")
        col.prop(props, "relief_height")
        layout.operator(HITEM3D_OT_make_relief.bl_idname, icon="MOD_DISPLACE")
        spending.draw_cost(layout, prices.for_kind(task_kinds.DEPTH.id), context.region.width if context.region else 300)
        _notice(layout, context)


classes = (
    HITEM3D_KindSettings,
    HITEM3D_OT_split_parts,
    HITEM3D_OT_segment_parts,
    HITEM3D_OT_multicolour,
    HITEM3D_OT_make_relief,
    HITEM3D_PT_parts,
    HITEM3D_PT_relief,
)


def register() -> None:
    setattr(bpy.types.Scene, "hitem3d_kinds", pointer_property(HITEM3D_KindSettings))


def unregister() -> None:
    delattr(bpy.types.Scene, "hitem3d_kinds")
