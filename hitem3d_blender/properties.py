"""Runtime UI state on the window manager (never written to a .blend file)."""

from __future__ import annotations

import bpy
from bpy.props import PointerProperty, StringProperty


class HITEM3D_WindowState(bpy.types.PropertyGroup):
    task_id: StringProperty(  # type: ignore[valid-type]
        name="Task ID",
        description="Hitem3D task ID, or a link that contains task_id=",
    )


classes = (HITEM3D_WindowState,)


def window_state(context: bpy.types.Context) -> HITEM3D_WindowState:
    """The add-on's state on the window manager."""
    state: HITEM3D_WindowState = getattr(context.window_manager, "hitem3d")
    return state


def register() -> None:
    # Registered on the window manager: its properties are not saved in .blend files.
    pointer = PointerProperty(type=HITEM3D_WindowState)  # type: ignore[func-returns-value]
    setattr(bpy.types.WindowManager, "hitem3d", pointer)


def unregister() -> None:
    delattr(bpy.types.WindowManager, "hitem3d")
