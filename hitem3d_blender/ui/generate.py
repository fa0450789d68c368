"""New Generation: start a Hitem3D generation from Blender.

The settings live on the scene (``Scene.hitem3d_generate``, saved with the
file like any tool's settings); the operators turn them into a plain
``core.submission.Submission``, check it, and hand it to ``submit_calls``, which
sends it from a worker and follows the new task like any imported one.
"""

from __future__ import annotations

import logging
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator

import bpy
from bpy.props import BoolProperty, EnumProperty, FloatProperty, IntProperty, PointerProperty, StringProperty

from .. import identity
from ..scene import mesh_export
from . import preferences, spending, submit_calls
from ..i18n import translations
from ..bpy_compat import pointer_property
from ..core import kind_requests, models, prices
from ..core.kind_requests import KindRequest
from ..core.errors import Hitem3DError
from ..core.import_options import ImportOptions
from ..core.messages import OWN_CONTEXT, Message, msg, msg_own, one_of
from ..core.pipeline import DEFAULT_TIMEOUT_S
from ..core.submission import (
    IMAGE_TYPES,
    VIEW_LABELS,
    VIEWS,
    InvalidSubmission,
    cannot_texture,
    RequestType,
    Submission,
    format_credits,
    sniff_image_type,
    texture_offered,
    upload_file_name,
    validate,
)
from ..core.tasks import TaskState
from ..engine import batch, history, state
from .operators import Result, refuse
from .panels import SidebarPanel, _wrapped
from .properties import options_from, scene_options

log = logging.getLogger(__package__)

# Background mode: how long to wait for Hitem3D to accept a submission (an
# upload of up to 4 x 20 MB) and for a balance check.
SUBMIT_TIMEOUT_S = 600.0
CALL_TIMEOUT_S = 60.0
# Images written for upload are kept this long: they are the thumbnails of new
# tasks and the reference for texturing them later.
UPLOAD_MAX_AGE_S = 7 * 24 * 3600.0

# (file path property, image property) of each input slot.
SLOT_PROPS: dict[str, tuple[str, str]] = {
    "image": ("image_path", "image"),
    **{view: (f"{view}_path", f"{view}_image") for view in VIEWS},
}

_MODEL_ITEMS = [(spec.id, spec.label, spec.description) for spec in models.MODELS]
# NOTE: Blender keeps only pointers to the strings of a dynamic enum's items:
# the lists must stay referenced for as long as they can be shown, so they are
# built once here, one per model, and never rebuilt.
_RESOLUTION_ITEMS: dict[str, list[tuple[str, str, str]]] = {
    spec.id: [(res, res, f"{res} with {spec.label}") for res in spec.resolutions] for spec in models.MODELS
}
_FACE_MIN, _FACE_MAX = models.widest_face_range()


def _resolution_items(self: Any, context: bpy.types.Context | None) -> list[tuple[str, str, str]]:
    return _RESOLUTION_ITEMS.get(getattr(self, "model", ""), _RESOLUTION_ITEMS[models.DEFAULT_MODEL])


def _on_model_changed(self: Any, context: bpy.types.Context) -> None:
    """A new model: its default resolution, and the face count kept in its range."""
    spec = models.get(self.model) or models.default()
    self.resolution = spec.default_resolution
    self.face = min(max(self.face, spec.face_min), spec.face_max)


def _slot_context(view: str) -> str:
    # NOTE: "Front", "Left", ... in our context: Blender's catalogue has them as
    # viewport directions (前, 左).
    return OWN_CONTEXT if view in VIEW_LABELS else "*"


def _image_slot(view: str, what: str) -> Any:
    return PointerProperty(
        type=bpy.types.Image, name=VIEW_LABELS.get(view, "Image"), translation_context=_slot_context(view),
        description=f"{what}: an image in this file, such as a reference image or the Render Result",
    )


def _file_slot(view: str, what: str) -> Any:
    return StringProperty(
        name=VIEW_LABELS.get(view, "Image"), translation_context=_slot_context(view),
        description=f"{what}: a PNG, JPEG or WebP file of at most 20 MB",
        subtype="FILE_PATH",
    )


class HITEM3D_GenerateSettings(bpy.types.PropertyGroup):
    """What the New Generation panel sends."""

    # NOTE: "Views", "Source" and "Faces" are words Blender's catalogue translates
    # another way (视图, 源, 面): these properties and their items use our context.
    mode: EnumProperty(  # type: ignore[valid-type]
        name="Input",
        translation_context=OWN_CONTEXT,
        items=(
            ("SINGLE", "One Image", "Generate from one picture"),
            ("VIEWS", "Views", "Generate from up to four views: front (required), back, left, right"),
        ),
        default="SINGLE",
    )
    source: EnumProperty(  # type: ignore[valid-type]
        name="Source",
        translation_context=OWN_CONTEXT,
        items=(
            ("FILE", "File", "Image files on disk"),
            ("IMAGE", "Blender Image", "Images in this file, such as a reference image or the Render Result"),
        ),
        default="FILE",
    )
    image_path: _file_slot("image", "The picture to generate from")  # type: ignore[valid-type]
    image: _image_slot("image", "The picture to generate from")  # type: ignore[valid-type]
    front_path: _file_slot("front", "Front view (required)")  # type: ignore[valid-type]
    front_image: _image_slot("front", "Front view (required)")  # type: ignore[valid-type]
    back_path: _file_slot("back", "Back view")  # type: ignore[valid-type]
    back_image: _image_slot("back", "Back view")  # type: ignore[valid-type]
    left_path: _file_slot("left", "Left view")  # type: ignore[valid-type]
    left_image: _image_slot("left", "Left view")  # type: ignore[valid-type]
    right_path: _file_slot("right", "Right view")  # type: ignore[valid-type]
    right_image: _image_slot("right", "Right view")  # type: ignore[valid-type]
    model: EnumProperty(  # type: ignore[valid-type]
        name="Model",
        description="Hitem3D model version",
        items=_MODEL_ITEMS,
        default=models.DEFAULT_MODEL,
        update=_on_model_changed,
    )
    resolution: EnumProperty(  # type: ignore[valid-type]
        name="Resolution",
        description="Generation resolution (the choices depend on the model)",
        items=_resolution_items,
    )
    face: IntProperty(  # type: ignore[valid-type]
        name="Faces",
        translation_context=OWN_CONTEXT,
        description="Target face count (each model has its own range, checked before sending)",
        default=models.FACE_DEFAULT,
        min=_FACE_MIN,
        max=_FACE_MAX,
    )
    request_type: EnumProperty(  # type: ignore[valid-type]
        name="Result",
        # NOTE: our context: Blender's catalogue has "Textured" as 纹理 ("texture").
        translation_context=OWN_CONTEXT,
        items=(
            # NOTE: one short word each: "Geometry and Texture" was cut at the default sidebar width.
            ("GEOMETRY_AND_TEXTURE", "Textured", "A model with geometry and texture"),
            ("GEOMETRY", "Untextured", "Geometry only, without texture (it can be textured later)"),
        ),
        default="GEOMETRY_AND_TEXTURE",
    )
    pbr: BoolProperty(  # type: ignore[valid-type]
        name="PBR materials",
        description="Physically based materials (metallic, roughness) where the model supports them",
        default=True,
    )
    remove_lighting: BoolProperty(  # type: ignore[valid-type]
        name="Remove lighting",
        description="Remove the picture's lights and shadows from the texture (where the model offers it)",
        default=False,
    )
    shading: FloatProperty(  # type: ignore[valid-type]
        name="Removal strength",
        description="How much of the picture's lighting to remove (sent as Hitem3D's shading field)",
        default=1.0,
        min=0.0,
        max=1.0,
        subtype="FACTOR",
    )


def settings_of(context: bpy.types.Context) -> HITEM3D_GenerateSettings:
    props: HITEM3D_GenerateSettings = getattr(context.scene, "hitem3d_generate")
    return props


# -- from Blender images to files ------------------------------------------------------------


def uploads_dir() -> Path:
    return identity.user_subdir(identity.UPLOADS)


def prune_uploads(folder: Path, max_age_s: float = UPLOAD_MAX_AGE_S) -> None:
    """Remove images written for earlier uploads once they are old."""
    limit = time.time() - max_age_s
    for path in folder.iterdir():
        try:
            if path.is_file() and path.stat().st_mtime < limit:
                path.unlink()
        except OSError:
            log.debug("Could not remove old upload %s", path, exc_info=True)


def _stamp() -> str:
    return time.strftime("%Y%m%d-%H%M%S") + f"-{time.monotonic_ns() % 1_000_000:06d}"


def image_file(image: bpy.types.Image, folder: Path) -> str:
    """A file holding ``image``, ready to send.

    A picture on disk in an accepted format is sent as it is, and a packed one
    as its own bytes. Anything else (the Render Result, a generated, painted or
    EXR picture) is saved as PNG.
    NOTE: main thread only (``bpy``). Saving encodes every pixel: about a
    second and tens of MB for a 4K render; it happens once per press of Generate.
    """
    if image.type == "IMAGE" and image.source == "FILE" and not image.is_dirty:
        packed = image.packed_file
        if packed is not None:
            raw: Any = packed.data  # bytes (the stubs say str)
            data = bytes(raw)
            kind = sniff_image_type(data[:16])
            if kind:
                path = folder / upload_file_name(image.name, _stamp(), kind)
                path.write_bytes(data)
                return str(path)
        else:
            source = Path(bpy.path.abspath(image.filepath, library=image.library))
            if source.suffix.lower().lstrip(".") in IMAGE_TYPES and source.is_file():
                return str(source)
    return _save_png(image, folder / upload_file_name(image.name, _stamp(), "png"))


# The output settings save_render needs for an 8-bit RGBA PNG (media_type: 5.0+).
_PNG_OUTPUT: tuple[tuple[str, str], ...] = (
    ("media_type", "IMAGE"), ("file_format", "PNG"), ("color_mode", "RGBA"), ("color_depth", "8"),
)


@contextmanager
def _png_output(scene: bpy.types.Scene) -> Iterator[None]:
    """The scene's output settings switched to PNG for the moment, then put back."""
    settings = scene.render.image_settings
    saved = [(name, getattr(settings, name)) for name, _ in _PNG_OUTPUT if hasattr(settings, name)]
    try:
        for name, value in _PNG_OUTPUT:
            if hasattr(settings, name):
                setattr(settings, name, value)
        yield
    finally:
        for name, value in saved:
            try:
                setattr(settings, name, value)
            except (TypeError, ValueError):
                log.warning("Could not restore the output setting %s", name)


def _save_png(image: bpy.types.Image, path: Path) -> str:
    # NOTE: save_render writes in a scene's output format and view transform.
    if image.type in {"RENDER_RESULT", "COMPOSITING"}:
        # A render belongs to the scene that made it and goes as the artist
        # sees it: saved through that scene, its format switched for the moment.
        scene = bpy.context.scene
        assert scene is not None
        owned = False
    else:
        # Any other picture keeps its pixels: a scene of our own without a view
        # transform, so the artist's settings are never touched.
        scene = bpy.data.scenes.new("Hitem3D upload")
        owned = True
        # NOTE: setattr: the stubs list only 'NONE' for this dynamic enum.
        setattr(scene.view_settings, "view_transform", "Standard")
    try:
        with _png_output(scene):
            image.save_render(str(path), scene=scene)
    except RuntimeError as exc:
        if "does not have any image data" in str(exc):
            raise InvalidSubmission(msg("Image '{name}' is empty: render first, or choose another image",
                                        name=image.name)) from None
        raise InvalidSubmission(msg("Image '{name}' could not be saved for sending: {reason}", name=image.name,
                                    reason=str(exc))) from None
    finally:
        if owned:
            bpy.data.scenes.remove(scene)
    return str(path)


def _slot_file(props: HITEM3D_GenerateSettings, slot: str, folder: Path) -> str:
    path_prop, image_prop = SLOT_PROPS[slot]
    if props.source == "FILE":
        text = str(getattr(props, path_prop)).strip()
        return bpy.path.abspath(text) if text else ""
    image = getattr(props, image_prop)
    return image_file(image, folder) if image is not None else ""


def inputs_of(props: HITEM3D_GenerateSettings) -> tuple[str, dict[str, str]]:
    """The panel's picture(s) as files: (one image, views). Images from this
    file are written to the uploads folder here."""
    folder = uploads_dir()
    prune_uploads(folder)
    if props.mode == "SINGLE":
        return _slot_file(props, "image", folder), {}
    views = {view: path for view in VIEWS if (path := _slot_file(props, view, folder))}
    if views and "front" not in views:
        # Say it now, before any other picture is written out.
        raise InvalidSubmission(msg("Views need a front view: add an image in the Front slot"))
    return "", views


def shading_of(props: HITEM3D_GenerateSettings, model: str) -> float | None:
    """The ``shading`` field: sent only when asked for and the model offers it."""
    spec = models.get(model)
    return float(props.shading) if props.remove_lighting and spec is not None and spec.shading else None


def submission_of(props: HITEM3D_GenerateSettings) -> Submission:
    image, views = inputs_of(props)
    request_type = RequestType[props.request_type]
    return Submission(
        model=props.model,
        resolution=props.resolution,
        request_type=request_type,
        face=props.face,
        pbr=props.pbr,
        image=image,
        views=views,
        shading=shading_of(props, props.model) if request_type != RequestType.GEOMETRY else None,
    )


# -- operators ---------------------------------------------------------------------------------


def _send(op: bpy.types.Operator, context: bpy.types.Context, submission: submit_calls.Request,
          timeout_s: float, options: ImportOptions | None = None) -> Result:
    """Check (the request, then the known balance against the estimate), then
    send from a worker; in background mode wait for the model."""
    try:
        settings = preferences.usable_settings(context)
        if isinstance(submission, KindRequest):
            kind_requests.validate(submission)
        else:
            validate(submission)
        spending.refuse_if_short(spending.estimate_for(submission))
    except Hitem3DError as exc:
        submit_calls.set_generate_notice(exc.message)
        submit_calls.discard_mesh(submission)
        return refuse(op, exc)
    if options is None:
        options = options_from(scene_options(context))
    key = submit_calls.start_submission(submission, settings, options, submission.thumbnail, timeout_s=timeout_s)
    if not state.runs_to_end():
        op.report({"INFO"}, translations.text(msg("Sending to Hitem3D: {what}", what=submission.describe())))
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


def timeout_property() -> Any:
    """The ``timeout`` of the operators that send a request and wait for its model."""
    return FloatProperty(
        name="Timeout",
        description="Give up waiting for the model after this many seconds",
        default=DEFAULT_TIMEOUT_S,
        min=1.0,
        unit="TIME_ABSOLUTE",
    )


class HITEM3D_OT_submit_generation(bpy.types.Operator):
    """Send the image(s) to Hitem3D to generate a model; it is imported when ready"""

    bl_idname = "hitem3d.submit_generation"
    bl_label = "Generate"
    bl_options = {"REGISTER"}

    timeout: timeout_property()  # type: ignore[valid-type]

    def execute(self, context: bpy.types.Context) -> Result:
        try:
            preferences.usable_settings(context)  # before writing any image out
            submission = submission_of(settings_of(context))
        except Hitem3DError as exc:
            submit_calls.set_generate_notice(exc.message)
            return refuse(self, exc)
        return _send(self, context, submission, self.timeout)


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
            if all(Path(path).is_file() for _, path in made.inputs()):
                image, views = made.image, dict(made.views)
            else:  # the original picture is gone: use the panel's
                image, views = inputs_of(props)
        except Hitem3DError as exc:
            submit_calls.set_generate_notice(exc.message)
            return refuse(self, exc)
        submission = Submission(
            model=made.model,
            resolution=made.resolution,
            request_type=RequestType.TEXTURE_MESH,
            pbr=props.pbr,
            image=image,
            views=views,
            mesh_task_id=rec.task_id,
            shading=shading_of(props, made.model),
        )
        return _send(self, context, submission, self.timeout)


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
        batch.wait_for_call(CALL_TIMEOUT_S)
        status = submit_calls.balance_status()
        if status is not None and status.credits is not None and not status.error:
            self.report({"INFO"}, translations.text(msg("Hitem3D balance: {credits} credits",
                                                        credits=format_credits(status.credits))))
            return {"FINISHED"}
        self.report({"ERROR"}, translations.text(
            status.error if status is not None and status.error else msg("No answer from Hitem3D")))
        return {"CANCELLED"}


# -- the panel ------------------------------------------------------------------------------------


def balance_text(status: submit_calls.BalanceStatus | None) -> Message:
    if status is not None and status.credits is not None:
        return msg("Balance: {credits} credits", credits=format_credits(status.credits))
    if status is not None and status.checking:
        return msg("Balance: checking…")
    return msg("Balance: not checked yet")


class HITEM3D_PT_generate(SidebarPanel, bpy.types.Panel):
    bl_idname = "HITEM3D_PT_generate"
    bl_label = "New Generation"
    bl_parent_id = "HITEM3D_PT_main"

    def draw(self, context: bpy.types.Context) -> None:
        layout = self.layout
        assert layout is not None
        width = context.region.width if context.region else 300
        props = settings_of(context)
        spec = models.get(props.model) or models.default()

        status = submit_calls.balance_status()
        row = layout.row(align=True)
        row.label(text=translations.text(balance_text(status)), icon="FUND", translate=False)
        row.operator("hitem3d.refresh_balance", text="", icon="FILE_REFRESH")
        if status is not None and status.error:
            _wrapped(layout, translations.text(status.error), width, icon="ERROR")

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
        row = col.row()
        row.alert = not spec.allows_face(props.face)
        row.prop(props, "face")
        if row.alert:
            col.label(text=translations.text(msg("{model}: {low} to {high} faces", model=spec.label,
                                                 low=f"{spec.face_min:,}", high=f"{spec.face_max:,}")),
                      icon="ERROR", translate=False)

        layout.operator("hitem3d.submit_generation", icon="PLAY")
        spending.draw_cost(layout, prices.for_generation(props.model, props.resolution), width)
        # Texture Selection (``texture_selection``): the same picture and model, the selected meshes.
        layout.separator()
        layout.operator("hitem3d.texture_selection", icon="TEXTURE")
        if not spec.can_texture_mesh:
            _wrapped(layout, translations.text(cannot_texture(spec)), width, icon="INFO")
        elif mesh_export.selected_meshes(context):
            spending.draw_cost(layout, prices.for_generation(props.model, props.resolution), width)
        for pending in submit_calls.pending_submissions():
            _wrapped(layout, translations.text(msg("Submitting… {what}", what=pending.submission.describe())), width,
                     icon="TIME")
        if submit_calls.generate_notice():
            _wrapped(layout, translations.text(submit_calls.generate_notice()), width, icon="ERROR")


classes = (
    HITEM3D_GenerateSettings,
    HITEM3D_OT_submit_generation,
    HITEM3D_OT_texture_task,
    HITEM3D_OT_refresh_balance,
    HITEM3D_PT_generate,
)


def register() -> None:
    settings = pointer_property(HITEM3D_GenerateSettings)
    setattr(bpy.types.Scene, "hitem3d_generate", settings)


def unregister() -> None:
    delattr(bpy.types.Scene, "hitem3d_generate")
