"""The New Generation settings (``Scene.hitem3d_generate``, saved with the file
like any tool's settings) and how they become a ``core.submission.Submission``."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import bpy
from bpy.props import BoolProperty, EnumProperty, FloatProperty, IntProperty, PointerProperty, StringProperty

from ..bpy_compat import pointer_property
from ..core import models
from ..core.messages import OWN_CONTEXT, msg
from ..core.submission import VIEW_LABELS, VIEWS, InvalidSubmission, RequestType, Submission
from ..scene import picture_export


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


def _slot_file(props: HITEM3D_GenerateSettings, slot: str, folder: Path) -> str:
    path_prop, image_prop = SLOT_PROPS[slot]
    if props.source == "FILE":
        text = str(getattr(props, path_prop)).strip()
        return bpy.path.abspath(text) if text else ""
    image = getattr(props, image_prop)
    return picture_export.image_file(image, folder) if image is not None else ""


def inputs_of(props: HITEM3D_GenerateSettings) -> tuple[str, dict[str, str]]:
    """The panel's picture(s) as files: (one image, views). Images from this
    file are written to the uploads folder here."""
    folder = picture_export.uploads_dir()
    picture_export.prune_uploads(folder)
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


def register() -> None:
    setattr(bpy.types.Scene, "hitem3d_generate", pointer_property(HITEM3D_GenerateSettings))


def unregister() -> None:
    delattr(bpy.types.Scene, "hitem3d_generate")


classes = (HITEM3D_GenerateSettings,)
