"""Blender-side properties: runtime UI state on the window manager (never
written to a .blend) and the import options (saved with the scene, like any
importer's settings)."""

from __future__ import annotations

import bpy
from bpy.props import (
    BoolProperty,
    CollectionProperty,
    FloatProperty,
    IntProperty,
    StringProperty,
)

from ..bpy_compat import pointer_property
from ..core.import_options import DEFAULT_COLLECTION, ImportOptions

_DEFAULTS = ImportOptions()


class ImportOptionProps:
    """The import options as Blender properties. Mixed into the scene's
    property group and into the import operator (so scripts can pass them)."""

    collection: StringProperty(  # type: ignore[valid-type]
        name="Collection",
        description="Put imported objects in this collection, created if missing (empty: the active one)",
        default=DEFAULT_COLLECTION,
    )
    at_cursor: BoolProperty(  # type: ignore[valid-type]
        name="At 3D cursor",
        description="Place the model at the 3D cursor instead of the world origin",
        default=_DEFAULTS.at_cursor,
    )
    origin_bottom_center: BoolProperty(  # type: ignore[valid-type]
        name="Origin at bottom",
        description="Move each object's origin to the bottom centre of its bounds, so it stands on the floor",
        default=_DEFAULTS.origin_bottom_center,
    )
    scale_to_size: BoolProperty(  # type: ignore[valid-type]
        name="Scale to size",
        description="Scale the model so its longest side has the size below",
        default=_DEFAULTS.scale_to_size,
    )
    target_size: FloatProperty(  # type: ignore[valid-type]
        name="Size",
        description="Length of the model's longest side after scaling",
        default=_DEFAULTS.target_size,
        min=0.001,
        soft_max=100.0,
        unit="LENGTH",
    )
    shade_smooth: BoolProperty(  # type: ignore[valid-type]
        name="Shade smooth",
        description="Smooth shading on every imported mesh",
        default=_DEFAULTS.shade_smooth,
    )
    mark_asset: BoolProperty(  # type: ignore[valid-type]
        name="Mark as asset",
        description="Mark the model as an asset, with the task's cover as its preview",
        default=_DEFAULTS.mark_asset,
    )


def options_from(props: object) -> ImportOptions:
    """The plain options from any holder of ``ImportOptionProps``."""
    return ImportOptions.from_dict({name: getattr(props, name) for name in ImportOptions().to_dict()})


def copy_options(source: object, target: object) -> None:
    for name in ImportOptions().to_dict():
        setattr(target, name, getattr(source, name))


class HITEM3D_ImportOptions(ImportOptionProps, bpy.types.PropertyGroup):
    pass


class HITEM3D_TaskItem(bpy.types.PropertyGroup):
    """One row of the task list: the ID only; everything else is read from the
    task book when the row is drawn."""

    task_id: StringProperty()  # type: ignore[valid-type]


class HITEM3D_WindowState(bpy.types.PropertyGroup):
    task_id: StringProperty(  # type: ignore[valid-type]
        name="Task ID",
        description="One or more Hitem3D task IDs (separated by spaces, commas or new lines), "
                    "or a link that contains task_id=",
    )
    tasks: CollectionProperty(type=HITEM3D_TaskItem)  # type: ignore[valid-type]
    active_index: IntProperty(name="Task", default=-1)  # type: ignore[valid-type]


classes = (HITEM3D_ImportOptions, HITEM3D_TaskItem, HITEM3D_WindowState)


def window_state(context: bpy.types.Context) -> HITEM3D_WindowState:
    """The add-on's state on the window manager."""
    state: HITEM3D_WindowState = getattr(context.window_manager, "hitem3d")
    return state


def scene_options(context: bpy.types.Context) -> HITEM3D_ImportOptions:
    options: HITEM3D_ImportOptions = getattr(context.scene, "hitem3d_import")
    return options


def register() -> None:
    # On the window manager: its properties are not saved in .blend files.
    state = pointer_property(HITEM3D_WindowState)
    setattr(bpy.types.WindowManager, "hitem3d", state)
    options = pointer_property(HITEM3D_ImportOptions)
    setattr(bpy.types.Scene, "hitem3d_import", options)


def unregister() -> None:
    delattr(bpy.types.Scene, "hitem3d_import")
    delattr(bpy.types.WindowManager, "hitem3d")
