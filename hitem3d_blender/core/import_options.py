"""How a result is placed in the scene: plain values, saved with each task.

The options are captured when the artist presses Import, so a task that
finishes an hour later is placed the way it was asked for.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Any, Mapping

DEFAULT_COLLECTION = "Hitem3D"


@dataclass(frozen=True)
class ImportOptions:
    collection: str = DEFAULT_COLLECTION  # empty: the active collection
    at_cursor: bool = True  # place the model's origin at the 3D cursor
    scale_to_size: bool = False
    target_size: float = 1.0  # metres, the longest side when scale_to_size
    origin_bottom_center: bool = True  # so the model stands on what it is placed on
    shade_smooth: bool = False
    mark_asset: bool = False  # with the task's cover as the asset preview

    def to_dict(self) -> dict[str, Any]:
        # NOTE: not dataclasses.asdict, whose deep copy made each journal save
        # cost milliseconds on Blender's main thread: the fields are plain
        # scalars, and a (slot-less) dataclass keeps exactly them in __dict__.
        return dict(vars(self))

    @classmethod
    def from_dict(cls, data: Mapping[str, Any] | None) -> ImportOptions:
        """Options from a saved dict; unknown keys are ignored and wrong types
        fall back to defaults, so an old or hand-edited journal still loads."""
        if not data:
            return cls()
        values: dict[str, Any] = {}
        defaults = cls()
        for field in fields(cls):
            value = data.get(field.name, getattr(defaults, field.name))
            default = getattr(defaults, field.name)
            if isinstance(default, bool):
                value = value if isinstance(value, bool) else default
            elif isinstance(default, float):
                value = float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else default
                value = value if value > 0 else default
            elif isinstance(default, str):
                value = value if isinstance(value, str) else default
            values[field.name] = value
        return cls(**values)
