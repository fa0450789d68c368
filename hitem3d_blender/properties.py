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


def register() -> None:
    bpy.types.WindowManager.hitem3d = PointerProperty(type=HITEM3D_WindowState)  # type: ignore[attr-defined]


def unregister() -> None:
    del bpy.types.WindowManager.hitem3d  # type: ignore[attr-defined]
