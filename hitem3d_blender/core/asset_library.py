"""The "Hitem3D" asset library: one ``.blend`` per task, catalogs by date.

No ``bpy`` here: names, metadata and the catalog file
(``blender_assets.cats.txt``, Blender's own format) as plain text.
"""

from __future__ import annotations

import uuid
from datetime import datetime, timezone
from pathlib import Path
from typing import Iterable

from . import safe_files
from .conversion import AssetInfo
from .task_ids import short_id

LIBRARY_NAME = "Hitem3D"
CATALOG_FILE = "blender_assets.cats.txt"
# A catalog file larger than this is not one we can merge into.
MAX_CATALOG_BYTES = 4 * 1024 * 1024
_NAMESPACE = uuid.UUID("6b1f1d0e-4c39-4a43-9d6e-8e2f1c0a7b31")
_CATALOG_HEADER = """# This is an Asset Catalog Definition file for Blender.
#
# Empty lines and lines starting with `#` will be ignored.
# The first non-ignored line should be the version indicator.
# Other lines are of the format "UUID:catalog/path/for/assets:simple catalog name"

VERSION 1

"""


def entry_name(file_stem: str) -> str:
    return f"{file_stem}.blend"


def collection_name(task_id: str) -> str:
    """The asset's name in the Asset Browser."""
    return f"Hitem3D {short_id(task_id)}"


def catalog_path(when: datetime) -> str:
    """Catalogs by date: a month, and a day inside it (``2026-11/2026-11-30``)."""
    day = when.astimezone(timezone.utc)
    return f"{day:%Y-%m}/{day:%Y-%m-%d}"


def catalog_id(path: str) -> str:
    """The same date gives the same catalog on every computer sharing the library."""
    return str(uuid.uuid5(_NAMESPACE, path))


def simple_name(path: str) -> str:
    return f"{LIBRARY_NAME}-{path.replace('/', '-')}"


def asset_info(*, task_id: str, model: str, when: datetime, source_image: str) -> AssetInfo:
    """Description, tags and custom properties of a task's asset."""
    path = catalog_path(when)
    stamp = when.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
    properties = {"hitem3d_task_id": task_id, "hitem3d_date": stamp}
    tags = ["Hitem3D", f"{when.astimezone(timezone.utc):%Y-%m-%d}"]
    if model:
        properties["hitem3d_model"] = model
        tags.append(model)
    if source_image:
        properties["hitem3d_source_image"] = Path(source_image).name
    lines = [f"Hitem3D task {task_id}", f"Made {stamp}"]
    if model:
        lines.append(f"Model {model}")
    if source_image:
        lines.append(f"From {Path(source_image).name}")
    return AssetInfo(description="\n".join(lines), tags=tuple(tags), properties=properties,
                     catalog_id=catalog_id(path), catalog_name=simple_name(path))


def _parents(path: str) -> Iterable[str]:
    parts = path.split("/")
    for end in range(1, len(parts) + 1):
        yield "/".join(parts[:end])


def ensure_catalog(library: Path, when: datetime) -> str:
    """Add the date's catalogs (month and day) to the library's catalog file
    unless they are there; returns the day's catalog ID. Lines written by
    Blender or by hand are kept as they are.

    NOTE: the library may be a studio share: the file is read only if it is
    a plain file (never through a link, never a FIFO), and written as a new
    file with a random name renamed into place, never through a link planted
    at any name. Raises ``OSError`` (``FolderUnusable``, ``DiskFull``) or
    ``ValueError`` for a file that is not text."""
    path = catalog_path(when)
    target = library / CATALOG_FILE
    try:
        text = safe_files.read_bytes(target, max_bytes=MAX_CATALOG_BYTES).decode("utf-8")
    except FileNotFoundError:
        text = _CATALOG_HEADER
    known = {line.split(":", 1)[0].strip() for line in text.splitlines() if line and not line.startswith("#")}
    missing = [f"{catalog_id(part)}:{part}:{simple_name(part)}" for part in _parents(path)
               if catalog_id(part) not in known]
    if missing:
        if not text.endswith("\n"):
            text += "\n"
        text += "".join(line + "\n" for line in missing)
        safe_files.write_atomic(target, text.encode("utf-8"), fsync=False)
    return catalog_id(path)
