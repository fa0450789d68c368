"""The one place where the Blender API stubs of 4.2 and of the newest Blender disagree.

`python build.py typecheck` checks the add-on twice: against fake-bpy-module-4-2
(the oldest Blender we support, so nothing newer is used by accident) and
against fake-bpy-module-latest. Where the two type the same runtime API
differently, the call goes through a helper here, typed once, so the rest of
the code needs no `# type: ignore` that only one of the two passes wants (mypy
reports an unneeded ignore as an error). Each helper says what differs.

Differences in Blender itself (glTF importer options, image format settings)
are not here: they are detected at run time where they are used, and
tests/test_blender_versions.py proves the detection in every supported Blender.
"""

from __future__ import annotations

from typing import Any

import bpy
from mathutils import Matrix, Vector


def pointer_property(cls: type[bpy.types.ID] | type[bpy.types.PropertyGroup]) -> Any:
    """`PointerProperty(type=cls)`, to assign to a Blender type at register time.

    4.2's stubs say the call returns None; newer ones return a deferred property.
    """
    make: Any = bpy.props.PointerProperty
    return make(type=cls)


def translation(offset: Vector) -> Matrix:
    """`Matrix.Translation(offset)`: newer stubs accept a sequence of floats, not a Vector."""
    return Matrix.Translation(offset.to_tuple())


def image_size(image: bpy.types.Image) -> tuple[int, int]:
    """`Image.size` as (width, height): newer stubs type it as a bare, unindexable `bpy_prop_array`."""
    size: Any = image.size
    return int(size[0]), int(size[1])
