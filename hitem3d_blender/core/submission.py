"""A generation request (``submit-task``): what to send, the checks before
sending, and the exact multipart parts.

No ``bpy`` here. ``validate`` looks at file names, sizes (a ``stat``) and
the first bytes of each picture (its signature), so the main thread may call
it; the images are read whole by ``read_files`` on the worker that sends them.
"""

from __future__ import annotations

import enum
import re
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Mapping

from . import models, picture_metadata
from .errors import Hitem3DError
from .mesh_files import MeshFileRejected, check_mesh_file, mesh_content_type
from .messages import N_, Message, Value, listing, msg, msg_own, one_of
from .tasks import TaskRecord, TaskState

VIEWS: tuple[str, ...] = ("front", "back", "left", "right")  # the order of multi_images
# NOTE: in our own translation context: Blender's catalogue has these words for
# directions in the viewport (前, 左), not for the views of a picture.
VIEW_LABELS: dict[str, str] = {"front": N_("Front"), "back": N_("Back"), "left": N_("Left"), "right": N_("Right")}
_VIEW_NAMES: dict[str, str] = {"front": N_("Front view"), "back": N_("Back view"), "left": N_("Left view"),
                               "right": N_("Right view")}
_VIEWS_IN_TEXT: dict[str, str] = {"front": N_("front"), "back": N_("back"), "left": N_("left"), "right": N_("right")}
IMAGE_TYPES: dict[str, str] = {"png": "image/png", "jpeg": "image/jpeg", "jpg": "image/jpeg", "webp": "image/webp"}
MAX_IMAGE_BYTES = 20_000_000  # "20 MB": Hitem3D's megabytes are decimal
SIGNATURE_BYTES = 16  # enough for the PNG, JPEG and WebP signatures (``sniff_image_type``)
FORMAT_GLB = "2"  # the server's default is 1 (OBJ); this extension imports GLB


class RequestType(enum.IntEnum):
    GEOMETRY = 1
    TEXTURE_MESH = 2  # texture an existing mesh: always sent as mesh_url
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
    file of the artist's own (Texture Selection), which ``core.sending``
    uploads to Hitem3D's storage and sends as ``mesh_url``. ``mesh_name`` and
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

    def inputs(self) -> list[tuple[Message, str]]:
        """(label, path) of each image in sending order."""
        if self.views:
            return [(view_name(view), self.views[view]) for view in VIEWS if view in self.views]
        return [(msg("Image"), self.image)] if self.image else []

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

    def describe(self) -> Message:
        """A short line for the panel: what is being sent with which model."""
        source: Value = Path(self.image).name
        if self.views:
            source = msg("views {views}", views=listing([msg_own(_VIEWS_IN_TEXT[view]) for view in VIEWS
                                                         if view in self.views]))
        if self.mesh:
            return msg("Texture {mesh} from {source} ({model})", mesh=self.mesh_name or Path(self.mesh).name,
                       source=source, model=models.label(self.model))
        if self.request_type == RequestType.TEXTURE_MESH:
            return msg("Texture from {source} ({model})", source=source, model=models.label(self.model))
        return msg("Generate from {source} ({model})", source=source, model=models.label(self.model))

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


def texture_request(*, model: str, resolution: str, pbr: bool, image: str = "",
                    views: Mapping[str, str] | None = None, shading: float | None = None, mesh_task_id: str = "",
                    mesh: str = "", mesh_name: str = "", mesh_box: tuple[float, ...] = ()) -> Submission:
    """The one way a texturing request is built, whatever asks for it (Texture
    on a geometry-only result, Texture Selection, ``submit --texture-mesh``):
    the picture (``image`` or ``views``) and the model to texture, either a
    finished task of ours (``mesh_task_id``) or a GLB of the artist's own
    (``mesh``, named ``mesh_name``, standing in ``mesh_box``). No face count:
    the mesh has its faces."""
    if bool(mesh_task_id) == bool(mesh):
        raise ValueError("texture either a task (mesh_task_id) or a file (mesh)")
    return Submission(model=model, resolution=resolution, request_type=RequestType.TEXTURE_MESH, face=None,
                      pbr=pbr, image=image, views=dict(views or {}), mesh_task_id=mesh_task_id, mesh=mesh,
                      mesh_name=mesh_name, mesh_box=tuple(mesh_box), shading=shading)


def view_name(view: str) -> Message:
    """"Front view", ...: how messages name the picture of a view."""
    return msg(_VIEW_NAMES[view]) if view in _VIEW_NAMES else msg("{view} view", view=view)


# -- checks before sending ---------------------------------------------------------


def _megabytes(size: int) -> str:
    return f"{size / 1_000_000:.1f} MB"


def _check_file(label: Message, path_text: str) -> None:
    path = Path(path_text)
    name = path.name or path_text
    extension = path.suffix.lower().lstrip(".")
    if extension not in IMAGE_TYPES:
        raise InvalidSubmission(msg("{label}: {name} is not a PNG, JPEG or WebP file", label=label, name=name))
    try:
        info = path.stat()
    except OSError:
        raise InvalidSubmission(msg("{label}: file not found: {path}", label=label, path=path_text)) from None
    if not path.is_file():
        raise InvalidSubmission(msg("{label}: {name} is not a file", label=label, name=name))
    if info.st_size == 0:
        raise InvalidSubmission(msg("{label}: {name} is empty", label=label, name=name))
    if info.st_size > MAX_IMAGE_BYTES:
        raise InvalidSubmission(msg("{label}: {name} is {size}; Hitem3D accepts at most 20 MB per image",
                                    label=label, name=name, size=_megabytes(info.st_size)))
    # NOTE: a picture is judged by its bytes too: a text file named .png is
    # refused here, not uploaded to be refused by Hitem3D.
    if not is_picture_file(path):
        raise InvalidSubmission(msg("{label}: {name} is not a PNG, JPEG or WebP file", label=label, name=name))


def is_picture_file(path: Path) -> bool:
    """Whether the file's bytes are a PNG, JPEG or WebP picture (its name aside)."""
    return bool(sniff_image_type(_head(path)))


def _head(path: Path) -> bytes:
    """The first bytes of a file, enough for its signature; empty when unreadable."""
    try:
        with path.open("rb") as stream:
            return stream.read(SIGNATURE_BYTES)
    except OSError:
        return b""


def cannot_texture(spec: models.ModelSpec) -> Message:
    """Why ``spec`` cannot texture an existing mesh, and which models can."""
    able = one_of([other.label for other in models.texturing_models()])
    return msg("{model} cannot texture an existing model: use {models}", model=spec.label, models=able)


def validate(submission: Submission) -> None:
    """Raise ``InvalidSubmission`` with a precise message for the first problem
    the server would reject (or that would waste credits); return if none."""
    spec = submission.spec
    if spec is None:
        raise InvalidSubmission(msg("Unknown model version {model}: choose one from the list",
                                    model=repr(submission.model)))
    try:
        request_type = RequestType(submission.request_type)
    except ValueError:
        raise InvalidSubmission(msg("Request type {type} is unknown: use 1 (geometry), 2 (texture a model) "
                                    "or 3 (geometry and texture)", type=submission.request_type)) from None
    if submission.image and submission.views:
        raise InvalidSubmission(msg("Send one image or views, not both"))
    if submission.views:
        unknown = sorted(set(submission.views) - set(VIEWS))
        if unknown:
            raise InvalidSubmission(msg("Unknown view {view}: use front, back, left and right", view=repr(unknown[0])))
        if not submission.views.get("front"):
            raise InvalidSubmission(msg("Views need a front view: add an image in the Front slot"))
        empty = [view for view in VIEWS if view in submission.views and not submission.views[view]]
        if empty:
            raise InvalidSubmission(msg("{view}: no file given", view=view_name(empty[0])))
    elif not submission.image:
        if request_type is RequestType.TEXTURE_MESH:
            raise InvalidSubmission(msg("Texturing needs a reference image: add one under New Generation"))
        raise InvalidSubmission(msg("Add an image to generate from"))
    for label, path in submission.inputs():
        _check_file(label, path)
    if not submission.resolution:
        raise InvalidSubmission(msg("Choose a resolution for {model}", model=spec.label))
    if submission.resolution not in spec.resolutions:
        raise InvalidSubmission(msg("Resolution {resolution} is not available for {model}: choose {choices}",
                                    resolution=submission.resolution, model=spec.label,
                                    choices=one_of(list(spec.resolutions))))
    if request_type is RequestType.TEXTURE_MESH:
        if not spec.can_texture_mesh:
            raise InvalidSubmission(cannot_texture(spec))
        if not submission.mesh_url and not submission.mesh_task_id and not submission.mesh:
            raise InvalidSubmission(msg("Texturing needs the model to texture: choose a finished geometry-only task"))
        if submission.mesh_url and not submission.mesh_url.startswith("http"):
            raise InvalidSubmission(msg("The mesh URL must start with http"))
        if submission.mesh:
            try:
                check_mesh_file(submission.mesh)
            except MeshFileRejected as exc:
                raise InvalidSubmission(exc.message) from None
    elif submission.face is not None and not spec.allows_face(submission.face):
        raise InvalidSubmission(msg("Face count {face} is out of range for {model}: {low} to {high}",
                                    face=f"{submission.face:,}", model=spec.label,
                                    low=f"{spec.face_min:,}", high=f"{spec.face_max:,}"))
    if submission.shading is not None:
        if not spec.shading:
            raise InvalidSubmission(msg("{model} does not offer light removal: switch it off or choose another model",
                                        model=spec.label))
        if not 0.0 <= submission.shading <= 1.0:
            raise InvalidSubmission(msg("Light removal must be 0 to 1, not {value}", value=f"{submission.shading:g}"))


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
    picture, ``multi_images`` repeated in front, back, left, right order. A
    mesh of the artist's own is never a part: it goes to Hitem3D's storage
    and is sent as ``mesh_url`` (``core.sending``)."""
    if submission.views:
        return [("multi_images", submission.views[view]) for view in VIEWS if view in submission.views]
    return [("images", submission.image)] if submission.image else []


def content_type(path: str) -> str:
    extension = Path(path).suffix.lower().lstrip(".")
    return IMAGE_TYPES[extension] if extension in IMAGE_TYPES else mesh_content_type(path)


def read_files(submission: Submission) -> list[tuple[str, tuple[str, bytes, str]]]:
    """The file parts for ``requests`` (``files=``), read now. Worker side only.

    What leaves is the picture alone: its metadata stripped
    (``picture_metadata``) and a neutral file name in place of the artist's
    (``image.png``; ``front.jpg``, ... for views).

    NOTE: ``requests`` reads every part into memory to build the body anyway
    (at most 4 x 20 MB); holding bytes rather than open files means a repeated
    request (after a token renewal) sends them whole again.
    """
    parts: list[tuple[str, tuple[str, bytes, str]]] = []
    labels = dict((path, label) for label, path in submission.inputs())
    neutral = dict((path, view) for view, path in submission.views.items()) if submission.views else {}
    for name, path in form_files(submission):
        label = labels.get(path, msg("Image"))
        data, extension = read_picture(path, label)
        parts.append((name, (f"{neutral.get(path, 'image')}.{extension}", data, IMAGE_TYPES[extension])))
    return parts


def read_picture(path: str, label: Message) -> tuple[bytes, str]:
    """The picture at ``path`` as it may leave: without its metadata; and its
    type ('png', 'jpg', 'webp'), from its bytes. Raises ``InvalidSubmission``."""
    try:
        data = Path(path).read_bytes()
    except OSError as exc:
        raise InvalidSubmission(msg("{label}: cannot read {name}: {reason}", label=label, name=Path(path).name,
                                    reason=exc.strerror or str(exc))) from None
    try:
        return picture_metadata.strip(data)
    except picture_metadata.PictureUnreadable as exc:
        name = Path(path).name
        if exc.what is None:
            raise InvalidSubmission(msg("{label}: {name} is not a PNG, JPEG or WebP file", label=label,
                                        name=name)) from None
        raise InvalidSubmission(msg("{label}: {name} is damaged ({what}): save it again as PNG or JPEG",
                                    label=label, name=name, what=exc.what)) from None


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
