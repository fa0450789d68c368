"""Parts, multicolour and reliefs from Blender: the settings, the operators
that send them, and their sidebar panels, all made from the kinds' table.

Each kind of ``core.task_kinds.offered()`` gets, from its entry alone: one
setting per field it offers (``Scene.hitem3d_kinds.<kind>_<field>``: a list,
a checkbox or a number), an operator ``hitem3d.<operator>`` that turns the
settings into a ``core.kind_requests.KindRequest`` and sends it the way New
Generation sends a generation (``spending.send``), and a box in a panel: Parts
and Colours for a kind that takes a mesh, Relief for one that takes a picture,
with its estimate and, when the kind rests on unconfirmed facts, a note that
says so before anything is spent.
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
from ..core.messages import DEFAULT_CONTEXT, OWN_CONTEXT, msg
from ..core.kind_requests import DEFAULT_RELIEF_HEIGHT, MAX_RELIEF_HEIGHT, KindRequest
from ..core.result_files import cached_result
from ..core.submission import InvalidSubmission
from ..core.task_kinds import FieldSpec, ResultStyle, TaskKind, kind_of
from ..core.pipeline import DEFAULT_TIMEOUT_S
from ..core.tasks import TaskRecord, TaskState
from ..engine import files, history
from .operators import Result, refuse
from .panels import SidebarPanel
from .properties import window_state


# -- the settings of each kind, from the table ----------------------------------------------------


def prop_name(kind: TaskKind, spec: FieldSpec) -> str:
    """The setting that holds ``spec`` of ``kind`` on ``Scene.hitem3d_kinds``."""
    return f"{kind.id}_{spec.name}"


def _context(spec: FieldSpec) -> str:
    # NOTE: a field with a word Blender's catalogue translates another way
    # ("None" is 无 there) is looked up in our context, its items with it.
    words = {spec.label, *(label for _, label in spec.choices)}
    return OWN_CONTEXT if words & translations.SHADOWED else DEFAULT_CONTEXT


def field_property(spec: FieldSpec) -> Any:
    """The Blender property that offers ``spec``: a checkbox for 0/1, a list
    for other choices, else a number in the field's range."""
    common: dict[str, Any] = {"name": spec.label, "description": spec.description,
                              "translation_context": _context(spec)}
    if spec.is_switch:
        return BoolProperty(default=spec.default == "1", **common)
    if spec.choices:
        return EnumProperty(items=[(value, label, "") for value, label in spec.choices], default=spec.default,
                            **common)
    low = spec.minimum if spec.minimum is not None else -1e9
    high = spec.maximum if spec.maximum is not None else 1e9
    if spec.integer:
        return IntProperty(default=int(float(spec.default)), min=int(low), max=int(high), **common)
    return FloatProperty(default=float(spec.default), min=low, max=high, **common)


def field_properties(kind: TaskKind) -> dict[str, Any]:
    """Every setting ``kind`` offers, by its name on ``Scene.hitem3d_kinds``
    (a field with one documented value has nothing to choose: it is just sent)."""
    return {prop_name(kind, spec): field_property(spec) for spec in kind.fields if spec.offered}


def values_of(kind: TaskKind, props: Any) -> dict[str, str]:
    """The settings of ``kind`` as form values."""
    values: dict[str, str] = {}
    for spec in kind.fields:
        if spec.offered:
            value = getattr(props, prop_name(kind, spec))
            values[spec.name] = ("1" if value else "0") if spec.is_switch else str(value)
    return values


class HITEM3D_KindSettings(bpy.types.PropertyGroup):
    """What the Parts and Colours and the Relief panels send (each kind's own
    settings are added from the table below)."""

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
    # A relief's depth is made here (ResultStyle.RELIEF): Hitem3D documents no height.
    relief_height: FloatProperty(  # type: ignore[valid-type]
        name="Height in Blender",
        description="How deep the relief is made in Blender (the Displace modifier's strength); "
                    "it is not sent to Hitem3D",
        default=DEFAULT_RELIEF_HEIGHT, min=0.001, max=MAX_RELIEF_HEIGHT, unit="LENGTH",
    )


for _kind in task_kinds.offered():
    HITEM3D_KindSettings.__annotations__.update(field_properties(_kind))


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
    """The picture as a file: the chosen file, or an image of this file
    written for upload (``picture_export.image_file``)."""
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


def request_of(kind_id: str, context: bpy.types.Context) -> KindRequest:
    """The panel's settings as a request of ``kind_id``."""
    kind = task_kinds.get(kind_id)
    if kind is None:
        raise InvalidSubmission(msg("Unknown task kind {kind}", kind=repr(kind_id)))
    props = settings_of(context)
    extra: dict[str, Any] = {}
    if kind.result_style is ResultStyle.RELIEF:
        extra["relief_height"] = props.relief_height
    if kind.takes_picture:
        path = _picture(props)
        source: dict[str, Any] = {"source_path": path, "source_name": Path(path).stem}
    else:
        source = source_of(context, props)
    return KindRequest(kind.id, values_of(kind, props), **source, **extra)


# -- operators, one per kind ---------------------------------------------------------------------------


def panel_of(kind: TaskKind | None) -> str:
    """Where a kind's requests and notices are shown: the Relief panel for a kind made from a picture."""
    return submit_calls.PANEL_RELIEF if kind is not None and kind.takes_picture else submit_calls.PANEL_PARTS


class _KindOperator(bpy.types.Operator):
    bl_options = {"REGISTER"}
    kind = ""

    timeout: FloatProperty(  # type: ignore[valid-type]
        name="Timeout", description="Give up waiting for the result after this many seconds",
        default=DEFAULT_TIMEOUT_S, min=1.0, unit="TIME_ABSOLUTE",
    )

    @classmethod
    def poll(cls, context: bpy.types.Context) -> bool:
        return spending.can_press(cls)

    @property
    def panel(self) -> str:
        return panel_of(task_kinds.get(self.kind))

    def execute(self, context: bpy.types.Context) -> Result:
        try:
            spending.refuse_if_in_flight(self)  # before a selection is exported
            request = request_of(self.kind, context)
        except Hitem3DError as exc:
            submit_calls.set_notice(self.panel, exc.message)
            return refuse(self, exc)
        return spending.send(self, context, request, self.timeout, panel=self.panel)


def operator_class(kind: TaskKind) -> type[bpy.types.Operator]:
    """The operator that sends ``kind`` from the panel's settings."""
    made: type[bpy.types.Operator] = type(f"HITEM3D_OT_{kind.operator}", (_KindOperator,), {
        "__doc__": kind.tooltip,
        "__module__": __name__,
        "bl_idname": f"hitem3d.{kind.operator}",
        "bl_label": kind.button,
        "kind": kind.id,
    })
    return made


OPERATORS: tuple[type[bpy.types.Operator], ...] = tuple(operator_class(kind) for kind in task_kinds.offered())


# -- panels --------------------------------------------------------------------------------------------


def _notice(layout: bpy.types.UILayout, context: bpy.types.Context, panel: str) -> None:
    """The panel's last problem (its own, not another panel's); each request
    on its way is under its kind's button."""
    spending.draw_sends(layout, panel, context.region.width if context.region else text_fit.default_region_width(),
                        placed=tuple(f"hitem3d.{kind.operator}" for kind in task_kinds.offered()))


def _unsplit(layout: bpy.types.UILayout) -> bpy.types.UILayout:
    row = layout.row()
    row.use_property_split = False
    return row


def draw_kind(layout: bpy.types.UILayout, props: HITEM3D_KindSettings, kind: TaskKind, width: float) -> None:
    """One kind's box: the settings that apply, what is unconfirmed, the
    button and its estimate."""
    box = layout.box()
    col = box.column()
    col.use_property_split = True
    col.use_property_decorate = False
    values = {**kind.defaults(), **values_of(kind, props)}
    for spec in kind.fields:
        if spec.offered and spec.applies(values):
            # NOTE: a checkbox with its name beside it, not in the split's
            # narrow name column, where "Remove background" was cut.
            (_unsplit(col) if spec.is_switch else col).prop(props, prop_name(kind, spec))
    if kind.result_style is ResultStyle.RELIEF:
        # The name inside the field: "Height in Blender" says where it applies and needs the room.
        _unsplit(col).prop(props, "relief_height")
    note = kind.unconfirmed()
    if note is not None:
        text_fit.wrapped(box, translations.text(note), width, icon="INFO", boxes=1)
    box.operator(f"hitem3d.{kind.operator}", icon=kind.icon)  # type: ignore[arg-type]
    spending.draw_cost(box, prices.for_kind(kind.id), width, boxes=1)
    spending.draw_sends(box, panel_of(kind), width, button=f"hitem3d.{kind.operator}", boxes=1)


class HITEM3D_PT_parts(SidebarPanel, bpy.types.Panel):
    bl_idname = "HITEM3D_PT_parts"
    bl_label = "Parts and Colours"
    bl_parent_id = "HITEM3D_PT_main"
    bl_options = {"DEFAULT_CLOSED"}

    def draw(self, context: bpy.types.Context) -> None:
        layout = self.layout
        assert layout is not None
        props = settings_of(context)
        width = context.region.width if context.region else text_fit.default_region_width()
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
        for kind in task_kinds.offered():
            if not kind.takes_picture:
                draw_kind(layout, props, kind, width)
        _notice(layout, context, submit_calls.PANEL_PARTS)


class HITEM3D_PT_relief(SidebarPanel, bpy.types.Panel):
    bl_idname = "HITEM3D_PT_relief"
    bl_label = "Relief"
    bl_parent_id = "HITEM3D_PT_main"
    bl_options = {"DEFAULT_CLOSED"}

    def draw(self, context: bpy.types.Context) -> None:
        layout = self.layout
        assert layout is not None
        props = settings_of(context)
        width = context.region.width if context.region else text_fit.default_region_width()
        layout.row().prop(props, "picture_source", expand=True)
        layout.prop(props, "image_path" if props.picture_source == "FILE" else "image", text="")
        for kind in task_kinds.offered():
            if kind.takes_picture:
                draw_kind(layout, props, kind, width)
        _notice(layout, context, submit_calls.PANEL_RELIEF)


classes = (HITEM3D_KindSettings, *OPERATORS, HITEM3D_PT_parts, HITEM3D_PT_relief)


def register() -> None:
    setattr(bpy.types.Scene, "hitem3d_kinds", pointer_property(HITEM3D_KindSettings))


def unregister() -> None:
    delattr(bpy.types.Scene, "hitem3d_kinds")
