"""Pictures in, the Blender way: drop a picture on the 3D Viewport to start a
New Generation with it, or take the viewport or the active camera as the
picture ("Use Current View").

Dropping uses Blender's file handler API (``bpy.types.FileHandler``, Blender
4.1 and newer); where it is missing, nothing is registered for it and the
panel's file field is the way in.
NOTE: file handlers are Blender's window-level drop target, asked after the
region's own: over the 3D view itself Blender's image drop (an image empty)
takes a picture first, so the drop reaches us on the viewport's sidebar,
header and toolbar.
NOTE: "Use Current View" draws the view with the GPU (``render.opengl``). In
background mode (``blender -b``, Blender as a Python module) there is no window
and Blender refuses that drawing altogether: the operator says so and what to
do instead (render the camera, then pick the Render Result as a Blender Image).
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import bpy
from bpy.props import CollectionProperty, EnumProperty, StringProperty

from . import generation_settings, preferences, spending, submit_calls
from ..core.pipeline import DEFAULT_TIMEOUT_S
from ..scene import picture_export
from ..i18n import translations
from ..core import prices
from ..core.errors import Hitem3DError
from ..core.messages import NONE, N_, msg
from ..core.submission import IMAGE_TYPES, InvalidSubmission, RequestType
from .operators import Result, refuse

log = logging.getLogger(__package__)

# NOTE: Blender refuses render.opengl whenever it runs in background mode
# ("no opengl context"), whatever the GPU: said before trying.
NO_VIEWPORT = N_("No 3D Viewport to draw: use the camera, or run this from a 3D Viewport")
BACKGROUND_MESSAGE = N_("Use Current View needs Blender's window (the view is drawn by the GPU): in background "
                      "mode, render the camera and choose the Render Result as a Blender Image")

# What the file handler offers to take: the picture types Hitem3D accepts.
DROP_EXTENSIONS = ";".join(f".{extension}" for extension in IMAGE_TYPES)


def _dropped_paths(op: Any) -> list[str]:
    """The files of a drop (``directory`` + ``files``) or of ``filepath``."""
    directory = str(getattr(op, "directory", "") or "")
    names = [item.name for item in getattr(op, "files", []) if item.name]
    if directory and names:
        return [str(Path(directory) / name) for name in names]
    return [op.filepath] if op.filepath else []


class HITEM3D_OT_generate_from_picture(bpy.types.Operator):
    """Start a New Generation from a picture file: check the settings and the estimated cost, then generate"""

    bl_idname = "hitem3d.generate_from_picture"
    bl_label = "Generate from Picture"
    bl_options = {"REGISTER"}

    filepath: StringProperty(subtype="FILE_PATH", options={"SKIP_SAVE"})  # type: ignore[valid-type]
    directory: StringProperty(subtype="DIR_PATH", options={"SKIP_SAVE", "HIDDEN"})  # type: ignore[valid-type]
    files: CollectionProperty(  # type: ignore[valid-type]
        type=bpy.types.OperatorFileListElement, options={"SKIP_SAVE", "HIDDEN"})
    filter_glob: StringProperty(  # type: ignore[valid-type]
        default=";".join(f"*{ext}" for ext in DROP_EXTENSIONS.split(";")), options={"HIDDEN"})

    def invoke(self, context: bpy.types.Context, event: bpy.types.Event) -> Result:
        paths = _dropped_paths(self)
        wm = context.window_manager
        assert wm is not None
        if not paths:
            wm.fileselect_add(self)
            return {"RUNNING_MODAL"}
        self._take(context, paths)
        # Credits are spent only after a look at what will be sent and its cost.
        result: Any = wm.invoke_props_dialog(self, width=360)
        return set(result)

    def _take(self, context: bpy.types.Context, paths: list[str]) -> None:
        props = generation_settings.settings_of(context)
        props.mode = "SINGLE"
        props.source = "FILE"
        props.image_path = paths[0]
        self.filepath = paths[0]
        if len(paths) > 1:
            self.report({"WARNING"}, translations.text(msg(
                "Only the first picture is used ({name}): for views, use Views in New Generation",
                name=Path(paths[0]).name)))

    def draw(self, context: bpy.types.Context) -> None:
        layout = self.layout
        assert layout is not None
        props = generation_settings.settings_of(context)
        layout.label(text=Path(self.filepath).name, icon="IMAGE_DATA", translate=False)
        col = layout.column()
        col.use_property_split = True
        col.prop(props, "model")
        col.prop(props, "resolution")
        col.prop(props, "request_type")
        spending.draw_cost(layout, prices.for_generation(props.model, props.resolution,
                                                         request_type=RequestType[props.request_type]), 360)

    @classmethod
    def poll(cls, context: bpy.types.Context) -> bool:
        return spending.can_press(cls)

    def execute(self, context: bpy.types.Context) -> Result:
        paths = _dropped_paths(self)
        props = generation_settings.settings_of(context)
        try:
            preferences.usable_settings(context)
            spending.refuse_if_in_flight(self)
            if paths:
                self._take(context, paths)
            elif not props.image_path:
                raise InvalidSubmission(msg("Add an image to generate from"))
            submission = generation_settings.submission_of(props)
        except Hitem3DError as exc:
            submit_calls.set_notice(submit_calls.PANEL_GENERATE, exc.message)
            return refuse(self, exc)
        return spending.send(self, context, submission, DEFAULT_TIMEOUT_S)


def _file_handler_class() -> type | None:
    """The drop target on the 3D Viewport, where Blender has file handlers."""
    base = getattr(bpy.types, "FileHandler", None)
    if base is None:
        return None

    class HITEM3D_FH_picture(base):  # type: ignore[valid-type, misc]
        bl_idname = "HITEM3D_FH_picture"
        bl_label = "Generate with Hitem3D"
        bl_import_operator = HITEM3D_OT_generate_from_picture.bl_idname
        bl_file_extensions = DROP_EXTENSIONS

        @classmethod
        def poll_drop(cls, context: bpy.types.Context) -> bool:
            area = context.area
            return area is not None and area.type == "VIEW_3D"

    return HITEM3D_FH_picture


# -- Use Current View ---------------------------------------------------------------------------


class HITEM3D_OT_use_current_view(bpy.types.Operator):
    """Draw the 3D Viewport (or the scene camera) into a picture and use it as the picture to generate from"""

    bl_idname = "hitem3d.use_current_view"
    bl_label = "Use Current View"
    bl_options = {"REGISTER"}

    view: EnumProperty(  # type: ignore[valid-type]
        name="View",
        items=(
            ("VIEWPORT", "Viewport", "The 3D Viewport as you see it (without overlays)"),
            ("CAMERA", "Camera", "The scene's active camera, at the render resolution"),
        ),
        default="VIEWPORT",
        options={"SKIP_SAVE"},
    )

    @classmethod
    def poll(cls, context: bpy.types.Context) -> bool:
        return context.scene is not None

    def execute(self, context: bpy.types.Context) -> Result:
        scene = context.scene
        assert scene is not None
        try:
            if not can_draw():
                raise InvalidSubmission(msg(BACKGROUND_MESSAGE))
            if self.view == "CAMERA" and scene.camera is None:
                raise InvalidSubmission(msg("The scene has no active camera: add one, or use the viewport"))
            if self.view == "VIEWPORT" and _viewport(context) is None:
                raise InvalidSubmission(msg(NO_VIEWPORT))
            image = draw_view(context, viewport=self.view == "VIEWPORT")
            path = picture_export.image_file(image, picture_export.uploads_dir())
        except Hitem3DError as exc:
            submit_calls.set_notice(submit_calls.PANEL_GENERATE, exc.message)
            return refuse(self, exc)
        props = generation_settings.settings_of(context)
        props.mode = "SINGLE"
        props.source = "FILE"
        props.image_path = path
        submit_calls.set_notice(submit_calls.PANEL_GENERATE, NONE)
        done = (msg("The viewport is the picture to generate from: press Generate") if self.view == "VIEWPORT"
                else msg("The camera view is the picture to generate from: press Generate"))
        self.report({"INFO"}, translations.text(done))
        return {"FINISHED"}


def can_draw() -> bool:
    """Whether Blender can draw a view here (never in background mode)."""
    return not bpy.app.background


def _viewport(context: bpy.types.Context) -> tuple[Any, Any] | None:
    """(window, area) of a 3D Viewport: the one the operator runs in, else the first."""
    if context.area is not None and context.area.type == "VIEW_3D":
        return context.window, context.area
    for window in getattr(context.window_manager, "windows", []):
        for area in window.screen.areas:
            if area.type == "VIEW_3D":
                return window, area
    return None


def draw_view(context: bpy.types.Context, *, viewport: bool) -> bpy.types.Image:
    """The viewport or the camera drawn by the GPU into the Render Result.

    Raises ``InvalidSubmission`` where Blender cannot draw (background mode
    without a GPU context).
    """
    override: dict[str, Any] = {}
    if viewport:
        found = _viewport(context)
        if found is None:
            raise InvalidSubmission(msg(NO_VIEWPORT))
        window, area = found
        region = next((r for r in area.regions if r.type == "WINDOW"), None)
        override = {"window": window, "area": area, "region": region}
    try:
        with context.temp_override(**override):
            result: Any = bpy.ops.render.opengl(view_context=viewport)
    except RuntimeError as exc:
        log.info("render.opengl failed: %s", exc)
        raise InvalidSubmission(msg("Blender could not draw the view: {reason}", reason=str(exc).strip())) from None
    image = bpy.data.images.get("Render Result")
    if "FINISHED" not in result or image is None:
        raise InvalidSubmission(msg("Blender could not draw the view: try again from the 3D Viewport"))
    return image


_handler = _file_handler_class()
classes: tuple[type, ...] = (HITEM3D_OT_generate_from_picture, HITEM3D_OT_use_current_view) + (
    (_handler,) if _handler is not None else ())
