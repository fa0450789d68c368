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

from .api import Hitem3DClient
from .kind_requests import KindRequest
from .mesh_files import MeshFileRejected, check_mesh_file
from .mesh_upload import StorageTarget, UploadBody, upload_mesh
from .submission import InvalidSubmission, RequestType, Submission, validate

Request = Union[Submission, KindRequest]


def uploads_mesh(request: Request) -> bool:
    """Whether sending ``request`` uploads a mesh of the artist's own first."""
    return (isinstance(request, Submission) and request.request_type == RequestType.TEXTURE_MESH
            and bool(request.mesh) and not request.mesh_url)


def mesh_body(path: str) -> UploadBody:
    """What leaves the machine for the mesh at ``path``. Raises ``InvalidSubmission``."""
    try:
        size = check_mesh_file(path)
    except MeshFileRejected as exc:
        raise InvalidSubmission(exc.message) from None
    return UploadBody(b"", Path(path), 0, size)


def send(client: Hitem3DClient, request: Request, *, storage: StorageTarget) -> str:
    """Create the task ``request`` describes; returns its ID. Raises a
    ``Hitem3DError``. Never retried here: a repeated create could spend twice."""
    if isinstance(request, KindRequest):
        return client.submit_kind(request)
    if uploads_mesh(request):
        validate(request)  # before the upload: a request Hitem3D would refuse uploads nothing
        uploaded = upload_mesh(client, mesh_body(request.mesh), target=storage)
        request = request.with_mesh_url(uploaded.url)
    return client.submit_task(request)
