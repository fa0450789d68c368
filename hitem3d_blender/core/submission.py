"""A generation request (``submit-task``): what to send, the checks before
sending, and the exact multipart parts.

No ``bpy`` here. ``validate`` only looks at file names and sizes (a ``stat``),
so the main thread may call it; the images are read by ``read_files`` on the
worker that sends them.
"""

from __future__ import annotations

import enum
import re
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Mapping

from . import models
from .errors import Hitem3DError
from .mesh_files import MeshFileRejected, check_mesh_file, mesh_content_type
from .tasks import TaskRecord, TaskState

VIEWS: tuple[str, ...] = ("front", "back", "left", "right")  # the order of multi_images
VIEW_LABELS: dict[str, str] = {"front": "Front", "back": "Back", "left": "Left", "right": "Right"}
IMAGE_TYPES: dict[str, str] = {"png": "image/png", "jpeg": "image/jpeg", "jpg": "image/jpeg", "webp": "image/webp"}
MAX_IMAGE_BYTES = 20 * 1024 * 1024
FORMAT_GLB = "2"  # the server's default is 1 (OBJ); this extension imports GLB


class RequestType(enum.IntEnum):
    GEOMETRY = 1
    TEXTURE_MESH = 2  # texture an existing mesh: a Hitem3D result (mesh_url) or a GLB file (mesh)
    GEOMETRY_AND_TEXTURE = 3


class InvalidSubmission(Hitem3DError):
    """A problem found before sending: nothing was sent, no credit spent."""


@dataclass(frozen=True)
class Submission:
    """One ``submit-task`` request as plain values.

    Exactly one of ``image`` (one picture) and ``views`` (view name -> path,
    front required) is set. For ``TEXTURE_MESH`` the mesh comes from
    ``mesh_url``, from ``mesh_task_id`` (a task whose model URL the worker asks
    for just before sending: the URLs live one hour), or from ``mesh``, a GLB
    file of the artist's own (Texture Selection). ``mesh_name`` and
    ``mesh_box`` (world min x, y, z, max x, y, z) say what the result is named
    after and where the original stands, so it can be placed beside it.
    """

    model: str
    resolution: str
    request_type: int = RequestType.GEOMETRY_AND_TEXTURE
    face: int | None = None  # None: not sent
    pbr: bool = True
    image: str = ""
    views: Mapping[str, str] = field(default_factory=dict)
    # NOTE: a signed URL: kept out of repr (logs) and out of to_dict (the journal).
    mesh_url: str = field(default="", repr=False)
    mesh_task_id: str = ""
    mesh: str = ""
    mesh_name: str = ""
    mesh_box: tuple[float, ...] = ()
    shading: float | None = None  # light removal, 0 to 1; None: not sent

    @property
    def is_multi_view(self) -> bool:
        return bool(self.views)

    @property
    def spec(self) -> models.ModelSpec | None:
        return models.get(self.model)

    def inputs(self) -> list[tuple[str, str]]:
        """(label, path) of each image in sending order."""
        if self.views:
            return [(f"{VIEW_LABELS.get(view, view)} view", self.views[view]) for view in VIEWS if view in self.views]
        return [("Image", self.image)] if self.image else []

    @property
    def thumbnail(self) -> str:
        """The picture that stands for the task until Hitem3D's cover arrives."""
        return self.views.get("front", "") if self.views else self.image

    @property
    def bit_mask(self) -> str:
        """``multi_images_bit``: one 0/1 per view, front, back, left, right."""
        return "".join("1" if view in self.views else "0" for view in VIEWS)

    def with_mesh_url(self, url: str) -> Submission:
        return replace(self, mesh_url=url)

    def describe(self) -> str:
        """A short line for the panel: what is being sent with which model."""
        kind = "views " + ", ".join(view for view in VIEWS if view in self.views) if self.views else Path(self.image).name
        if self.mesh:
            return f"Texture {self.mesh_name or Path(self.mesh).name} from {kind} ({models.label(self.model)})"
        action = "Texture" if self.request_type == RequestType.TEXTURE_MESH else "Generate"
        return f"{action} from {kind} ({models.label(self.model)})"

    # -- the journal's view --------------------------------------------------------

    def to_dict(self) -> dict[str, Any]:
        return {
            "request_type": int(self.request_type),
            "model": self.model,
            "resolution": self.resolution,
            "face": self.face,
            "pbr": self.pbr,
            "image": self.image,
            "views": dict(self.views),
            "mesh_task_id": self.mesh_task_id,
            "mesh": self.mesh,
            "mesh_name": self.mesh_name,
            "mesh_box": list(self.mesh_box),
            "shading": self.shading,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Submission | None:
        """A submission from its saved form; None when it is not one."""
        model = data.get("model")
        request_type = data.get("request_type")
        if not isinstance(model, str) or not isinstance(request_type, int) or isinstance(request_type, bool):
            return None
        face = data.get("face")
        views = data.get("views")
        box = data.get("mesh_box")
        shading = data.get("shading")
        return cls(
            model=model,
            resolution=_text(data.get("resolution")),
            request_type=request_type,
            face=face if isinstance(face, int) and not isinstance(face, bool) else None,
            pbr=bool(data.get("pbr", True)),
            image=_text(data.get("image")),
            views={str(k): str(v) for k, v in views.items() if isinstance(v, str)} if isinstance(views, dict) else {},
            mesh_task_id=_text(data.get("mesh_task_id")),
            mesh=_text(data.get("mesh")),
            mesh_name=_text(data.get("mesh_name")),
            mesh_box=_box(box),
            shading=_fraction(shading),
        )


def _text(value: object) -> str:
    return value if isinstance(value, str) else ""


def _is_number(value: object) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and value == value


def _fraction(value: object) -> float | None:
    """A number from 0 to 1, or None."""
    if isinstance(value, (int, float)) and _is_number(value) and 0.0 <= value <= 1.0:
        return float(value)
    return None


def _box(value: object) -> tuple[float, ...]:
    """Six finite numbers, or nothing (a hand-edited journal may hold anything)."""
    if not isinstance(value, list) or len(value) != 6 or not all(_is_number(v) for v in value):
        return ()
    numbers = tuple(float(v) for v in value)
    return numbers if all(abs(v) < 1e12 for v in numbers) else ()


# -- checks before sending ---------------------------------------------------------


def _megabytes(size: int) -> str:
    return f"{size / (1024 * 1024):.1f} MB"


def _check_file(label: str, path_text: str) -> None:
    path = Path(path_text)
    name = path.name or path_text
    extension = path.suffix.lower().lstrip(".")
    if extension not in IMAGE_TYPES:
        raise InvalidSubmission(f"{label}: {name} is not a PNG, JPEG or WebP file")
    try:
        info = path.stat()
    except OSError:
        raise InvalidSubmission(f"{label}: file not found: {path_text}") from None
    if not path.is_file():
        raise InvalidSubmission(f"{label}: {name} is not a file")
    if info.st_size == 0:
        raise InvalidSubmission(f"{label}: {name} is empty")
    if info.st_size > MAX_IMAGE_BYTES:
        raise InvalidSubmission(
            f"{label}: {name} is {_megabytes(info.st_size)}; Hitem3D accepts at most 20 MB per image"
        )


def validate(submission: Submission) -> None:
    """Raise ``InvalidSubmission`` with a precise message for the first problem
    the server would reject (or that would waste credits); return if none."""
    spec = submission.spec
    if spec is None:
        raise InvalidSubmission(f"Unknown model version {submission.model!r}: choose one from the list")
    try:
        request_type = RequestType(submission.request_type)
    except ValueError:
        raise InvalidSubmission(
            f"Request type {submission.request_type} is unknown: use 1 (geometry), 2 (texture a model) "
            "or 3 (geometry and texture)"
        ) from None
    if submission.image and submission.views:
        raise InvalidSubmission("Send one image or views, not both")
    if submission.views:
        unknown = sorted(set(submission.views) - set(VIEWS))
        if unknown:
            raise InvalidSubmission(f"Unknown view {unknown[0]!r}: use front, back, left and right")
        if not submission.views.get("front"):
            raise InvalidSubmission("Views need a front view: add an image in the Front slot")
        empty = [view for view in VIEWS if view in submission.views and not submission.views[view]]
        if empty:
            raise InvalidSubmission(f"{VIEW_LABELS[empty[0]]} view: no file given")
    elif not submission.image:
        if request_type is RequestType.TEXTURE_MESH:
            raise InvalidSubmission("Texturing needs a reference image: add one under New Generation")
        raise InvalidSubmission("Add an image to generate from")
    for label, path in submission.inputs():
        _check_file(label, path)
    if not submission.resolution:
        raise InvalidSubmission(f"Choose a resolution for {spec.label}")
    if submission.resolution not in spec.resolutions:
        raise InvalidSubmission(
            f"Resolution {submission.resolution} is not available for {spec.label}: "
            f"choose {' or '.join(spec.resolutions)}"
        )
    if request_type is RequestType.TEXTURE_MESH:
        if not spec.can_texture_mesh:
            able = " or ".join(other.label for other in models.MODELS if other.can_texture_mesh)
            raise InvalidSubmission(f"{spec.label} cannot texture an existing model: use {able}")
        if not submission.mesh_url and not submission.mesh_task_id and not submission.mesh:
            raise InvalidSubmission("Texturing needs the model to texture: choose a finished geometry-only task")
        if submission.mesh_url and not submission.mesh_url.startswith("http"):
            raise InvalidSubmission("The mesh URL must start with http")
        if submission.mesh:
            try:
                check_mesh_file(submission.mesh)
            except MeshFileRejected as exc:
                raise InvalidSubmission(str(exc)) from None
    elif submission.face is not None and not spec.allows_face(submission.face):
        raise InvalidSubmission(
            f"Face count {submission.face:,} is out of range for {spec.label}: "
            f"{spec.face_min:,} to {spec.face_max:,}"
        )
    if submission.shading is not None:
        if not spec.shading:
            raise InvalidSubmission(f"{spec.label} does not offer light removal: switch it off or choose another model")
        if not 0.0 <= submission.shading <= 1.0:
            raise InvalidSubmission(f"Light removal must be 0 to 1, not {submission.shading:g}")


# -- the multipart parts ---------------------------------------------------------------


def form_fields(submission: Submission) -> list[tuple[str, str]]:
    """The text parts, in order. ``format`` is always GLB."""
    spec = submission.spec
    texturing = submission.request_type == RequestType.TEXTURE_MESH
    fields = [
        ("request_type", str(int(submission.request_type))),
        ("model", submission.model),
        ("resolution", submission.resolution),
        ("format", FORMAT_GLB),
    ]
    if submission.face is not None and not texturing:
        fields.append(("face", str(submission.face)))
    if spec is not None and spec.pbr and submission.request_type != RequestType.GEOMETRY:
        fields.append(("pbr", "1" if submission.pbr else "0"))
    if submission.views:
        fields.append(("multi_images_bit", submission.bit_mask))
    if texturing and submission.mesh_url:
        fields.append(("mesh_url", submission.mesh_url))
    if submission.shading is not None and submission.request_type != RequestType.GEOMETRY:
        fields.append(("shading", f"{submission.shading:g}"))
    return fields


def form_files(submission: Submission) -> list[tuple[str, str]]:
    """(field name, path) of each file part, in order: ``images`` for one
    picture, ``multi_images`` repeated in front, back, left, right order, then
    ``mesh`` for a mesh of the artist's own to texture."""
    mesh = [("mesh", submission.mesh)] if submission.mesh and submission.request_type == RequestType.TEXTURE_MESH else []
    if submission.views:
        return [("multi_images", submission.views[view]) for view in VIEWS if view in submission.views] + mesh
    return ([("images", submission.image)] if submission.image else []) + mesh


def content_type(path: str) -> str:
    extension = Path(path).suffix.lower().lstrip(".")
    return IMAGE_TYPES[extension] if extension in IMAGE_TYPES else mesh_content_type(path)


def read_files(submission: Submission) -> list[tuple[str, tuple[str, bytes, str]]]:
    """The file parts for ``requests`` (``files=``), read now. Worker side only.

    NOTE: ``requests`` reads every part into memory to build the body anyway
    (at most 4 x 20 MB); holding bytes rather than open files means a repeated
    request (after a token renewal) sends them whole again.
    """
    parts: list[tuple[str, tuple[str, bytes, str]]] = []
    labels = dict((path, label) for label, path in submission.inputs())
    labels[submission.mesh] = "Mesh"
    for name, path in form_files(submission):
        try:
            data = Path(path).read_bytes()
        except OSError as exc:
            label = labels.get(path, "Image")
            raise InvalidSubmission(f"{label}: cannot read {Path(path).name}: {exc.strerror or exc}") from None
        parts.append((name, (Path(path).name, data, content_type(path))))
    return parts


# -- helpers for the Blender layer ----------------------------------------------------------

_UNSAFE = re.compile(r"[^A-Za-z0-9._ -]+")


def upload_file_name(name: str, stamp: str, extension: str) -> str:
    """A safe file name for an image written for upload: the datablock's name
    (which may hold any character), a stamp that keeps it unique, the extension."""
    base = _UNSAFE.sub("_", name).strip(" .") or "image"
    return f"{base[:60]}-{stamp}.{extension}"


def sniff_image_type(head: bytes) -> str:
    """'png', 'jpg' or 'webp' from a file's first bytes; '' for anything else."""
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return "png"
    if head.startswith(b"\xff\xd8\xff"):
        return "jpg"
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "webp"
    return ""


def texture_offered(record: TaskRecord) -> bool:
    """Whether the task list offers Texture for this task: a geometry-only
    result of our own submission, finished, made by a model that can texture
    an existing mesh."""
    if record.state not in (TaskState.DOWNLOADED, TaskState.DONE) or not record.generation:
        return False
    made = Submission.from_dict(record.generation)
    if made is None or made.request_type != RequestType.GEOMETRY:
        return False
    spec = made.spec
    return spec is not None and spec.can_texture_mesh


def format_credits(value: float) -> str:
    """``980``, ``12.5``, ``1,204.75``: credits as people read them."""
    text = f"{value:,.2f}"
    return text.rstrip("0").rstrip(".") if "." in text else text
