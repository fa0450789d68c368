"""Texture Selection: Hitem3D textures the artist's own meshes.

The selected meshes are exported to one GLB (``mesh_export``); a worker
uploads it to Hitem3D's object storage and sends its link with the New
Generation picture as a texturing task (``request_type`` 2, ``mesh_url``:
``core.sending``) to a model that can texture a mesh, and the result is
imported beside the original (offset by its bounding box, at its size), named
after it: "<name> textured".
"""

from __future__ import annotations

import logging
from typing import Any

import bpy
from mathutils import Vector

from . import generation_settings, preferences, spending, submit_calls
from ..scene import mesh_export
from ..i18n import translations
from ..core import mesh_upload, models, prices
from ..core import submission as core_submission
from ..core.errors import Hitem3DError
from ..core.import_options import ImportOptions
from ..core.messages import Message, msg
from ..core.submission import InvalidSubmission, RequestType, Submission, cannot_texture
from ..core.tasks import TaskRecord
from .operators import Result, refuse
from ..scene.placement import Box, move_to
from .properties import options_from, scene_options

log = logging.getLogger(__package__)

SUFFIX = "textured"
# The gap between the original and its textured copy, as a share of its width.
GAP = 0.25


def placement_options(context: bpy.types.Context, exported: mesh_export.ExportedMesh) -> ImportOptions:
    """The scene's import options, but at the original's size and standing on
    the ground of its box; ``place_beside`` then moves it next to it."""
    chosen = options_from(scene_options(context))
    size = max(high - low for low, high in zip(exported.low, exported.high))
    return ImportOptions(
        collection=chosen.collection,
        at_cursor=False,
        scale_to_size=size > 0,
        target_size=size if size > 0 else 1.0,
        origin_bottom_center=True,
        shade_smooth=chosen.shade_smooth,
        mark_asset=chosen.mark_asset,
    )


def submission_for(props: Any, exported: mesh_export.ExportedMesh, image: str,
                   views: dict[str, str]) -> Submission:
    return core_submission.texture_request(
        model=props.model,
        resolution=props.resolution,
        pbr=props.pbr,
        image=image,
        views=views,
        mesh=str(exported.path),
        mesh_name=exported.title,
        mesh_box=exported.low + exported.high,
        shading=generation_settings.shading_of(props, props.model),
    )


class HITEM3D_OT_texture_selection(bpy.types.Operator):
    """Texture the selected meshes on Hitem3D from the New Generation picture; the result is placed beside them"""

    bl_idname = "hitem3d.texture_selection"
    bl_label = "Texture Selection"
    bl_options = {"REGISTER"}

    timeout: spending.timeout_property()  # type: ignore[valid-type]

    @classmethod
    def poll(cls, context: bpy.types.Context) -> bool:
        if not spending.can_press(cls):
            return False
        if not mesh_export.selected_meshes(context):
            cls.poll_message_set(translations.text(msg("Select one or more mesh objects")))
            return False
        spec = models.get(generation_settings.settings_of(context).model)
        if spec is not None and not spec.can_texture_mesh:
            cls.poll_message_set(translations.text(cannot_texture(spec)))
            return False
        return True

    def execute(self, context: bpy.types.Context) -> Result:
        props = generation_settings.settings_of(context)
        spec = models.get(props.model) or models.default()
        try:
            settings = preferences.usable_settings(context)
            spending.refuse_if_in_flight(self)
            if not spec.can_texture_mesh:
                raise InvalidSubmission(cannot_texture(spec))
            # Before the export, which can take seconds for a big model.
            spending.refuse_if_short(prices.for_generation(props.model, props.resolution,
                                                           request_type=RequestType.TEXTURE_MESH))
            image, views = generation_settings.inputs_of(props)
            if not image and not views:
                raise InvalidSubmission(msg("Texturing needs a reference image: add one under New Generation"))
            # Where it would go must be usable before the export.
            mesh_upload.target_from_env(api_base_url=settings.base_url)
            exported = mesh_export.export_meshes(mesh_export.selected_meshes(context), context)
        except Hitem3DError as exc:
            submit_calls.set_notice(submit_calls.PANEL_GENERATE, exc.message)
            return refuse(self, exc)
        submission = submission_for(props, exported, image, views)
        return spending.send(self, context, submission, self.timeout, placement_options(context, exported))


def upload_statement(api_base_url: str | None) -> tuple[Message, bool]:
    """What the button uploads and where, said beside it before anything is
    sent; (the problem, True) when the storage's address cannot be used."""
    try:
        return mesh_upload.destination(mesh_upload.target_from_env(api_base_url=api_base_url)), False
    except Hitem3DError as exc:
        return exc.message, True


def place_beside(rec: TaskRecord, names: list[str]) -> list[str]:
    """After a Texture Selection result is imported: name it after the original
    and move it beside it. Returns the objects' names (they changed)."""
    made = Submission.from_dict(rec.generation) if rec.generation else None
    if made is None or not made.mesh_name or made.request_type != RequestType.TEXTURE_MESH:
        return names
    objects = [bpy.data.objects[name] for name in names if name in bpy.data.objects]
    if not objects:
        return names
    if len(made.mesh_box) == 6:
        low, high = Vector(made.mesh_box[:3]), Vector(made.mesh_box[3:])
        original = Box(low, high)
        width = high.x - low.x
        move_to(objects, original.bottom_center + Vector((width * (1.0 + GAP) or 1.0, 0.0, 0.0)))
    base = f"{made.mesh_name} {SUFFIX}"
    # The main mesh takes the name; any other object is numbered after it.
    ordered = sorted(objects, key=lambda obj: obj.type != "MESH")
    for index, obj in enumerate(ordered):
        obj.name = base if index == 0 else f"{base} {index + 1}"
        data = obj.data
        if isinstance(data, bpy.types.Mesh) and data.users == 1:
            data.name = obj.name
    return [obj.name for obj in objects]


classes = (HITEM3D_OT_texture_selection,)

