"""Every kind of Hitem3D task, as data: one table, the only place.

A task's ID says its kind (``split_…``, ``depth_…``; no prefix: image to 3D),
and the kind says where to create and query it, what it uploads, which form
fields it takes with which values, which result formats it may return and how
the result is brought into Blender. When Hitem3D adds a kind, a field value or
a format, edit ``KINDS`` and nothing else. Facts from the API notes ("More task
kinds"); where they are a guess the entry says so.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from typing import Mapping

from .messages import N_, Message, msg

class ResultStyle(str, enum.Enum):
    """How a kind's result enters the scene (``kind_import`` acts on it)."""

    MODEL = "model"  # one model, as imported
    PARTS = "parts"  # separate objects in a collection of their own, named in order
    RELIEF = "relief"  # a depth map: a displaced plane (a mesh format: imported as is)
    COLOURS = "colours"  # a model whose vertex colours show in the viewport


@dataclass(frozen=True)
class FieldSpec:
    """One form field of a create request and the values it takes.

    ``choices`` (with labels) for a closed set, else ``minimum``/``maximum`` for
    a number. ``when`` = (other field, value): the field is sent only then.
    """

    name: str
    label: str
    default: str
    choices: tuple[tuple[str, str], ...] = ()
    minimum: float | None = None
    maximum: float | None = None
    integer: bool = False
    when: tuple[str, str] | None = None

    def applies(self, values: Mapping[str, str]) -> bool:
        return self.when is None or values.get(self.when[0]) == self.when[1]

    def problem(self, value: str) -> Message | None:
        """What is wrong with ``value`` (None when nothing)."""
        name = self.label  # an N_ entry of this table
        label = msg(name)
        if self.choices:
            allowed = [choice for choice, _ in self.choices]
            if value in allowed:
                return None
            return msg("{setting} must be one of {choices}, not {value}", setting=label,
                       choices=", ".join(allowed), value=repr(value))
        try:
            number = float(value)
        except ValueError:
            return msg("{setting} must be a number, not {value}", setting=label, value=repr(value))
        if self.integer and not number.is_integer():
            return msg("{setting} must be a whole number, not {value}", setting=label, value=value)
        if (self.minimum is not None and number < self.minimum) or (self.maximum is not None and number > self.maximum):
            return msg("{setting} must be from {low} to {high}, not {value}", setting=label,
                       low=_number(self.minimum), high=_number(self.maximum), value=value)
        return None


def _number(value: float | None) -> str:
    return "" if value is None else f"{value:g}"


@dataclass(frozen=True)
class TaskKind:
    """One kind of task: its endpoints, its request and its result."""

    id: str  # stored with requests in the journal
    label: str  # what the task list shows
    id_prefix: str  # task IDs of this kind start with it ('' for image to 3D)
    create_path: str  # under /open-api/v1
    query_path: str
    result_style: ResultStyle
    # Result formats this extension brings into Blender, by file extension.
    result_extensions: tuple[str, ...]
    # NOTE: False where the path is inferred, not documented: verify it and fix it here.
    query_path_documented: bool = True
    source_field: str = ""  # the file part uploaded ('' for image to 3D: see submission.py)
    source_url_field: str = ""  # the same as a link (a Hitem3D result URL)
    source_extensions: tuple[str, ...] = ()
    max_source_bytes: int = 0  # the largest upload the service takes
    formats: Mapping[str, str] = field(default_factory=dict)  # ``format`` code -> file extension
    request_format: str = ""  # the ``format`` we ask for
    fields: tuple[FieldSpec, ...] = ()
    has_cover: bool = True

    @property
    def title(self) -> Message:
        """The kind's name, for messages and panels."""
        name = self.label  # an N_ entry of this table
        return msg(name)

    def field(self, name: str) -> FieldSpec | None:
        return next((spec for spec in self.fields if spec.name == name), None)

    def defaults(self) -> dict[str, str]:
        return {spec.name: spec.default for spec in self.fields}


MB = 1024 * 1024
_LEVELS = (("low", "Low"), ("medium", "Medium"), ("high", "High"))
_MESH_FORMATS = {"1": "obj", "2": "glb", "3": "stl", "4": "fbx", "5": "usdz"}
_MESH_SOURCES = ("glb", "stl", "obj")

IMAGE_TO_3D = TaskKind(
    id="image3d", label=N_("Image to 3D"), id_prefix="",
    create_path="/submit-task", query_path="/query-task",
    result_style=ResultStyle.MODEL, result_extensions=("glb",),
    formats={"1": "obj", "2": "glb", "3": "stl", "4": "fbx", "5": "usdz", "6": "3mf"}, request_format="2",
)

SPLIT = TaskKind(
    id="split", label=N_("Split into parts"), id_prefix="split_",
    create_path="/split/create-task", query_path="/split/query-task",
    result_style=ResultStyle.PARTS, result_extensions=("glb", "stl"),
    source_field="mesh", source_url_field="mesh_url", source_extensions=_MESH_SOURCES, max_source_bytes=200 * MB,
    formats=_MESH_FORMATS, request_format="2",  # character split outputs GLB only
    fields=(
        FieldSpec("model", N_("Split"), "character", (("character", "Character"), ("general", "General"))),
        FieldSpec("part", N_("Template"), "a", (
            ("a", "A: 6 parts"), ("b", "B: 5 parts"), ("c", "C: 4 parts, no head"),
            ("d", "D: 4 parts with head"), ("e", "E: 3 parts"), ("f", "F: 2 parts"),
        ), when=("model", "character")),
        FieldSpec("joint", N_("Joint"), "none", (("none", "None"), ("ball", "Ball"), ("dovetail", "Dovetail")),
                  when=("model", "character")),
        FieldSpec("level", N_("Level"), "medium", _LEVELS, when=("model", "general")),
    ),
)

SEGMENTATION = TaskKind(
    id="segmentation", label=N_("Segmentation"), id_prefix="segmentation_",
    create_path="/segmentation/create-task",
    # NOTE: undocumented; by analogy with split. The only place to fix it.
    query_path="/segmentation/query-task", query_path_documented=False,
    result_style=ResultStyle.PARTS, result_extensions=("glb", "stl"),
    source_field="mesh", source_url_field="mesh_url", source_extensions=_MESH_SOURCES, max_source_bytes=200 * MB,
    formats=_MESH_FORMATS, request_format="2",
    fields=(FieldSpec("seg_level", N_("Level"), "medium", _LEVELS),),
)

DEPTH = TaskKind(
    id="depth", label=N_("Depth map / relief"), id_prefix="depth_",
    create_path="/depth/create-task", query_path="/depth/query-task",
    # NOTE: the codes of the mesh formats (stl, glb) clients offer are not
    # documented, so we ask for PNG; a task made elsewhere may bring a mesh.
    result_style=ResultStyle.RELIEF, result_extensions=("png", "exr", "glb", "stl"),
    source_field="image", source_url_field="image_url",
    source_extensions=("png", "jpeg", "jpg", "webp"), max_source_bytes=20 * MB,
    formats={"1": "exr", "2": "png"}, request_format="2",
    fields=(
        FieldSpec("model_type", N_("Quality"), "pro", (("pro", "Pro (2K)"), ("base", "Base"))),
        FieldSpec("rmbg", N_("Remove background"), "1", (("1", "Yes"), ("0", "No"))),
        FieldSpec("height_relief", N_("Relief height"), "1.3", minimum=0.1, maximum=50.0),
    ),
    has_cover=False,
)

MULTICOLOUR = TaskKind(
    id="multicolor", label=N_("Multicolour"), id_prefix="multicolor_",
    # The service itself spells the path "muilticolor".
    create_path="/muilticolor/create-task", query_path="/muilticolor/query-task",
    result_style=ResultStyle.COLOURS, result_extensions=("glb",),
    source_field="mesh", source_url_field="mesh_url", source_extensions=_MESH_SOURCES, max_source_bytes=200 * MB,
    formats={"1": "obj", "2": "glb", "4": "fbx", "6": "3mf"}, request_format="2",
    fields=(
        FieldSpec("model", N_("Model"), "multicolor", (("multicolor", "Multicolour"),)),
        FieldSpec("number_color", N_("Colours"), "0", minimum=0, maximum=8, integer=True),
    ),
)

KINDS: tuple[TaskKind, ...] = (IMAGE_TO_3D, SPLIT, SEGMENTATION, DEPTH, MULTICOLOUR)
_BY_ID: dict[str, TaskKind] = {kind.id: kind for kind in KINDS}


def get(kind_id: str) -> TaskKind | None:
    return _BY_ID.get(kind_id)


def kind_of(task_id: str) -> TaskKind:
    """The kind a task ID says it is: its prefix, else image to 3D."""
    for kind in KINDS:
        if kind.id_prefix and task_id.startswith(kind.id_prefix):
            return kind
    return IMAGE_TO_3D
