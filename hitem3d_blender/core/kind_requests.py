"""A create request of the newer task kinds (split, segmentation, depth,
multicolour): what to send, the checks before sending, the multipart parts.

No ``bpy`` here. ``validate`` only looks at names and sizes (a ``stat``), so
the main thread may call it; the file is read by ``read_files`` on the worker
that sends it. What each kind takes is data in ``task_kinds``.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Mapping

from . import glb_names, task_kinds
from .messages import Message, msg
from .mesh_files import check_mesh_file, mesh_content_type
from .submission import IMAGE_TYPES, InvalidSubmission, _check_file, read_picture
from .task_ids import short_id
from .task_kinds import TaskKind, megabytes

# The depth of a relief made from a depth map, in scene units: applied here,
# in Blender (the Displace modifier's strength after import), never sent:
# Hitem3D documents no height field.
DEFAULT_RELIEF_HEIGHT = 0.1
MAX_RELIEF_HEIGHT = 10.0

@dataclass(frozen=True)
class KindRequest:
    """One create request as plain values.

    The input is exactly one of ``source_path`` (a file to upload: a mesh, or
    the picture for a depth map), ``source_task_id`` (a finished task whose
    model link the worker asks for just before sending: links live one hour)
    and ``source_url``. ``source_name`` names what comes back ("Chair part 01").
    """

    kind: str
    values: Mapping[str, str] = field(default_factory=dict)  # form fields; missing ones take the kind's default
    source_path: str = ""
    source_task_id: str = ""
    # NOTE: a signed URL: kept out of repr (logs) and out of to_dict (the journal).
    source_url: str = field(default="", repr=False)
    source_name: str = ""
    relief_height: float = DEFAULT_RELIEF_HEIGHT  # depth maps only: how deep the relief is made

    @property
    def spec(self) -> TaskKind | None:
        return task_kinds.get(self.kind)

    @property
    def model(self) -> str:
        """What the task list shows as the model: the kind's own ``model`` field, or the kind."""
        return self.filled().get("model", self.kind)

    @property
    def thumbnail(self) -> str:
        """The picture that stands for the task (a depth map's source picture)."""
        extension = Path(self.source_path).suffix.lower().lstrip(".")
        return self.source_path if extension in IMAGE_TYPES else ""

    def filled(self) -> dict[str, str]:
        """The values that apply, defaults filled in."""
        spec = self.spec
        if spec is None:
            return dict(self.values)
        merged = {**spec.defaults(), **self.values}
        return {name: value for name, value in merged.items()
                if (field_spec := spec.field(name)) is None or field_spec.applies(merged)}

    def with_source_url(self, url: str) -> KindRequest:
        return replace(self, source_url=url)

    def describe(self) -> Message:
        """A short line for the panel: what is done to what."""
        spec = self.spec
        label = spec.title if spec is not None else self.kind
        source: Message | str = self.source_name or (
            Path(self.source_path).name if self.source_path
            else short_id(self.source_task_id) if self.source_task_id else msg("a linked model"))
        return msg("{kind} for {source}", kind=label, source=source)

    # -- the journal's view --------------------------------------------------------

    def to_dict(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "values": dict(self.values),
            "source_path": self.source_path,
            "source_task_id": self.source_task_id,
            "source_name": self.source_name,
            "relief_height": self.relief_height,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> KindRequest | None:
        """A request from its saved form; None when it is not one."""
        kind = data.get("kind")
        if not isinstance(kind, str) or task_kinds.get(kind) is None:
            return None
        values = data.get("values")
        spec = task_kinds.get(kind)
        assert spec is not None
        return cls(
            kind=kind,
            # Only the settings the kind still takes, with a value it takes: a
            # request saved by an older version may hold ones no longer sent.
            values={str(k): str(v) for k, v in values.items() if isinstance(v, (str, int, float))
                    and (field_spec := spec.field(str(k))) is not None and field_spec.problem(str(v)) is None}
            if isinstance(values, dict) else {},
            source_path=_text(data.get("source_path")),
            source_task_id=_text(data.get("source_task_id")),
            source_name=_text(data.get("source_name")),
            relief_height=_height(data.get("relief_height")),
        )


def _text(value: object) -> str:
    return value if isinstance(value, str) else ""


def _height(value: object) -> float:
    if isinstance(value, (int, float)) and not isinstance(value, bool) and 0 < value <= MAX_RELIEF_HEIGHT:
        return float(value)
    return DEFAULT_RELIEF_HEIGHT


def validate(request: KindRequest) -> None:
    """Raise ``InvalidSubmission`` for the first problem the server would
    reject (or that would waste credits); nothing is sent then."""
    spec = request.spec
    if spec is None or not spec.source_field:
        raise InvalidSubmission(msg("Unknown task kind {kind}", kind=repr(request.kind)))
    merged = {**spec.defaults(), **request.values}
    for name, value in request.values.items():
        field_spec = spec.field(name)
        if field_spec is None:
            raise InvalidSubmission(msg("{kind} has no setting {name}", kind=spec.title, name=repr(name)))
    for field_spec in spec.fields:
        if field_spec.applies(merged):
            problem = field_spec.problem(merged[field_spec.name])
            if problem is not None:
                raise InvalidSubmission(problem)
    given = [bool(request.source_path), bool(request.source_task_id), bool(request.source_url)]
    if sum(given) == 0:
        if spec.source_field == "image":
            raise InvalidSubmission(msg("{kind} needs a picture: choose a file", kind=spec.title))
        raise InvalidSubmission(msg("{kind} needs a mesh: choose a finished task, selected objects or a file",
                                    kind=spec.title))
    if sum(given) > 1:
        raise InvalidSubmission(msg("{kind} takes one input: a file, a task or a link", kind=spec.title))
    if request.source_url and not request.source_url.startswith("http"):
        raise InvalidSubmission(msg("The model link must start with http"))
    if request.source_path:
        _check_source(spec, request.source_path)


def _check_source(spec: TaskKind, path: str) -> None:
    try:
        size = Path(path).stat().st_size
    except OSError:
        size = 0  # the checks below say what is wrong
    if size > spec.max_source_bytes:
        raise InvalidSubmission(msg("{name} is {size}; Hitem3D accepts at most {limit} for {kind}",
                                    name=Path(path).name, size=megabytes(size),
                                    limit=megabytes(spec.max_source_bytes), kind=spec.title))
    if spec.source_field == "image":
        _check_file(msg("Picture"), path)
    else:
        check_mesh_file(path, allowed=spec.source_extensions)


def form_fields(request: KindRequest) -> list[tuple[str, str]]:
    """The text parts: every field that applies, in the table's order, with
    its default unless set (the pages mark them required), then ``format``
    (required where documented) and a link."""
    spec = request.spec
    assert spec is not None
    filled = request.filled()
    fields = [(field_spec.name, filled[field_spec.name]) for field_spec in spec.fields if field_spec.name in filled]
    fields.append(("format", spec.request_format))
    if request.source_url:
        fields.append((spec.source_url_field, request.source_url))
    return fields


def read_files(request: KindRequest) -> list[tuple[str, tuple[str, bytes | bytearray, str]]]:
    """The file part for ``requests`` (``files=``), read now. Worker side only:
    a mesh may be 200 MB."""
    spec = request.spec
    assert spec is not None
    if not request.source_path:
        return []
    path = Path(request.source_path)
    # What leaves is what the artist chose: a picture without its metadata, a
    # GLB without its object names, under a neutral file name.
    if spec.source_field == "image":
        picture, extension = read_picture(str(path), msg("Image"))
        return [(spec.source_field, (f"image.{extension}", picture, IMAGE_TYPES[extension]))]
    extension = path.suffix.lower().lstrip(".")
    try:
        data = _neutral_glb(path) if extension == "glb" else path.read_bytes()
    except OSError as exc:
        raise InvalidSubmission(msg("Cannot read {name}: {reason}", name=path.name,
                                    reason=str(exc.strerror or exc))) from None
    return [(spec.source_field, (f"mesh.{extension}", data, mesh_content_type(str(path))))]


def _neutral_glb(path: Path) -> bytearray:
    """The GLB at ``path`` with neutral names, read into one buffer (a mesh may be 200 MB)."""
    head, offset = glb_names.neutral_head(path)
    rest = path.stat().st_size - offset
    data = bytearray(len(head) + rest)
    data[:len(head)] = head
    with path.open("rb") as stream:
        stream.seek(offset)
        if stream.readinto(memoryview(data)[len(head):]) != rest:
            raise OSError(f"{path.name} changed while it was read")
    return data
