"""What a worker runs to send one spending request: the whole sequence, as a
function of the client and plain values.

A generation goes to ``submit-task``; a task of a newer kind to its create
endpoint; a mesh of the artist's own to texture is first uploaded to Hitem3D's
object storage (``mesh_upload``) and then sent as ``mesh_url``. When the upload
fails nothing reaches ``submit-task``: no credit is spent and the request can
be sent again as it is.
"""

from __future__ import annotations

from pathlib import Path
from typing import Union

from . import glb_names
from .api import Hitem3DClient
from .kind_requests import KindRequest
from .mesh_files import MeshFileRejected, check_mesh_file
from .mesh_upload import StorageTarget, UploadBody, upload_mesh
from .messages import Message, msg
from .submission import InvalidSubmission, RequestType, Submission, validate

Request = Union[Submission, KindRequest]


def what_leaves(api_host: str, storage: StorageTarget) -> Message:
    """What leaves this computer and where it goes, said before the first
    request of a session and once when it is sent."""
    return msg("What leaves this computer: pictures go to {api} without their metadata (EXIF, GPS, text) or "
               "file names; meshes go as GLB files without object, mesh or material names, to Hitem3D's storage "
               "({storage}) for Texture Selection and to {api} for parts and colours",
               api=api_host, storage=storage.host)


def uploads_mesh(request: Request) -> bool:
    """Whether sending ``request`` uploads a mesh of the artist's own first."""
    return (isinstance(request, Submission) and request.request_type == RequestType.TEXTURE_MESH
            and bool(request.mesh) and not request.mesh_url)


def mesh_body(path: str, name: str = "") -> UploadBody:
    """What leaves the machine for the mesh at ``path``: the GLB with neutral
    object, mesh and material names (``glb_names``), its geometry as it is.
    Raises ``InvalidSubmission``."""
    try:
        size = check_mesh_file(path)
        head, offset = glb_names.neutral_head(Path(path), name)
    except MeshFileRejected as exc:
        raise InvalidSubmission(exc.message) from None
    except OSError as exc:
        raise InvalidSubmission(msg("Mesh: cannot read {name}: {reason}", name=name or Path(path).name,
                                    reason=exc.strerror or str(exc))) from None
    return UploadBody(head, Path(path), offset, size - offset)


def send(client: Hitem3DClient, request: Request, *, storage: StorageTarget) -> str:
    """Create the task ``request`` describes; returns its ID. Raises a
    ``Hitem3DError``. Never retried here: a repeated create could spend twice."""
    if isinstance(request, KindRequest):
        return client.submit_kind(request)
    if uploads_mesh(request):
        validate(request)  # before the upload: a request Hitem3D would refuse uploads nothing
        uploaded = upload_mesh(client, mesh_body(request.mesh, request.mesh_name), target=storage)
        request = request.with_mesh_url(uploaded.url)
    return client.submit_task(request)
