"""Options for Blender's own operators (the glTF importer and exporter), taken
only where the running Blender declares them: they differ between versions."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Mapping


def supported(operator: Any, path: Path, preferred: Mapping[str, Any]) -> dict[str, Any]:
    """``filepath`` and each of ``preferred`` that ``operator`` (``bpy.ops.x.y``) has."""
    rna = operator.get_rna_type()
    available = {prop.identifier for prop in rna.properties}
    options: dict[str, Any] = {"filepath": str(path)}
    options.update({key: value for key, value in preferred.items() if key in available})
    return options
