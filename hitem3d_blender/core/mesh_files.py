"""Mesh files sent to Hitem3D (texturing, and the task kinds that take a mesh):
the limits and the checks before sending. No ``bpy``.

A mesh goes as the ``mesh`` part of a multipart body; Hitem3D takes GLB for
texturing (``submit-task``, ``request_type`` 2) and GLB, STL or OBJ for the
kinds that split or recolour a model, each at most 200 MB.
"""

from __future__ import annotations

from pathlib import Path

from .errors import Hitem3DError
from .messages import msg

MAX_MESH_BYTES = 200_000_000  # "200 MB": Hitem3D's megabytes are decimal
MESH_TYPES: dict[str, str] = {
    "glb": "model/gltf-binary",
    "stl": "model/stl",
    "obj": "model/obj",
}
GLB_MAGIC = b"glTF"


class MeshFileRejected(Hitem3DError):
    """A mesh that cannot be sent: nothing was sent, no credit spent."""


def megabytes(size: int) -> str:
    return f"{size / 1_000_000:.1f} MB"


def check_mesh_file(path_text: str, *, allowed: tuple[str, ...] = ("glb",), name: str = "") -> int:
    """Raise ``MeshFileRejected`` for a mesh file Hitem3D would refuse (type,
    missing, empty, over 200 MB, a GLB without its magic); return its size.
    ``name`` is what the messages call it (what the artist selected, rather
    than the file an export was written to).

    Reads at most 4 bytes, so the main thread may call it.
    """
    path = Path(path_text)
    name = name or path.name or path_text
    extension = path.suffix.lower().lstrip(".")
    if extension not in allowed:
        kinds = ", ".join(kind.upper() for kind in allowed)
        raise MeshFileRejected(msg("Mesh: {name} is not a {kinds} file", name=name, kinds=kinds))
    try:
        size = path.stat().st_size
    except OSError:
        raise MeshFileRejected(msg("Mesh: file not found: {path}", path=path_text)) from None
    if not path.is_file():
        raise MeshFileRejected(msg("Mesh: {name} is not a file", name=name))
    if size == 0:
        raise MeshFileRejected(msg("Mesh: {name} is empty", name=name))
    if size > MAX_MESH_BYTES:
        raise MeshFileRejected(msg(
            "Mesh: {name} is {size}; Hitem3D accepts at most 200 MB: simplify it (Decimate modifier) or send fewer objects",
            name=name, size=megabytes(size)))
    if extension == "glb":
        try:
            with path.open("rb") as stream:
                head = stream.read(4)
        except OSError as exc:
            raise MeshFileRejected(msg("Mesh: cannot read {name}: {reason}", name=name,
                                       reason=exc.strerror or str(exc))) from None
        if head != GLB_MAGIC:
            raise MeshFileRejected(msg("Mesh: {name} is not a GLB file (no glTF header)", name=name))
    return size


def mesh_content_type(path: str) -> str:
    return MESH_TYPES.get(Path(path).suffix.lower().lstrip("."), "application/octet-stream")
