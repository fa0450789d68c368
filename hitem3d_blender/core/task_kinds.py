"""Every kind of Hitem3D task, as data: one table, the only place.

A task's ID says its kind (``split_…``, ``depth_…``; no prefix: image to 3D),
and the kind says where to create and query it and with which authorization
scheme, what it uploads, which form fields it takes with which values and
defaults, which result formats it may return, how the result is brought into
Blender, and how the sidebar and the command line offer it. When Hitem3D adds
a kind, a field value or a format, edit ``KINDS`` (and the price table and the
translations) and nothing else: the sidebar's settings and button
(``ui/kinds_ui.py``), the request (``kind_requests``), the command line's
options (``ui/cli.py``) and the price lookup (``prices.for_kind``) all read it.

Every fact carries its source (``sources.Source``, docs/hitem3d-api.md): an
unconfirmed one is said beside the kind's button before anything is spent.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from typing import Mapping

from .messages import N_, Message, msg
from .sources import Source

# Hitem3D's sizes are decimal megabytes: "20 MB" is 20,000,000 bytes.
MB = 1_000_000


def megabytes(size: int) -> str:
    """``200 MB``, ``230.4 MB``: a size as Hitem3D's limits are written."""
    return f"{size / MB:.0f} MB" if size % MB == 0 else f"{size / MB:.1f} MB"


class ResultStyle(str, enum.Enum):
    """How a kind's result enters the scene (``kind_import`` acts on it)."""

    MODEL = "model"  # one model, as imported
    PARTS = "parts"  # separate objects in a collection of their own, named in order
    RELIEF = "relief"  # a depth map: a displaced plane (a mesh format: imported as is)
    COLOURS = "colours"  # a model whose vertex colours show in the viewport


class Auth(str, enum.Enum):
    """The word before the access token in ``Authorization``."""

    BEARER = "Bearer"
    TOKEN = "Token"

    @property
    def other(self) -> Auth:
        return Auth.TOKEN if self is Auth.BEARER else Auth.BEARER


@dataclass(frozen=True)
class Endpoint:
    """One path under ``/open-api/v1`` and the scheme its page shows.

    NOTE: the client sends ``auth`` first and, on a 401, the other scheme once
    (``api.Hitem3DClient``), so a wrong entry here costs a request, not a task.
    """

    path: str
    auth: Auth
    source: Source  # of the path
    auth_source: Source  # of the scheme


# The documented query endpoint of image to 3D; the fallback of every kind
# whose own query path is not served.
GENERIC_QUERY = Endpoint("/query-task", Auth.BEARER, Source.DOC, Source.DOC)


@dataclass(frozen=True)
class FieldSpec:
    """One form field of a create request and the values it takes.

    ``choices`` (with labels) for a closed set, else ``minimum``/``maximum`` for
    a number. ``when`` = (other field, value): the field is sent only then.
    Every field that applies is sent, with ``default`` unless set: the pages
    mark these fields required. ``cli`` is the command line's option for it
    ('' for ``--<name>``, None for none) and ``cli_flag`` a switch that sets
    one value (``("--keep-background", "0")``).
    """

    name: str
    label: str
    default: str
    choices: tuple[tuple[str, str], ...] = ()
    minimum: float | None = None
    maximum: float | None = None
    integer: bool = False
    when: tuple[str, str] | None = None
    source: Source = Source.DOC
    description: str = ""  # the setting's tooltip, and its help on the command line
    cli: str | None = ""
    cli_flag: tuple[str, str] | None = None

    def applies(self, values: Mapping[str, str]) -> bool:
        return self.when is None or values.get(self.when[0]) == self.when[1]

    @property
    def is_switch(self) -> bool:
        """A yes/no setting (0 or 1): a checkbox, not a list."""
        return {choice for choice, _ in self.choices} == {"0", "1"}

    @property
    def offered(self) -> bool:
        """Whether there is anything to choose (one documented value is just sent)."""
        return len(self.choices) != 1

    @property
    def option(self) -> str:
        """The command line's option ('' when none)."""
        if self.cli is None:
            return ""
        return self.cli or "--" + self.name.replace("_", "-")

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
    """One kind of task: its endpoints, its request, its result, and how the
    sidebar and the command line offer it."""

    id: str  # stored with requests in the journal
    label: str  # what the task list shows
    id_prefix: str  # task IDs of this kind start with it ('' for image to 3D)
    create: Endpoint
    query: Endpoint
    result_style: ResultStyle
    # Result formats this extension brings into Blender, by file extension.
    result_extensions: tuple[str, ...]
    source_field: str = ""  # the file part uploaded ('' for image to 3D: see submission.py)
    source_url_field: str = ""  # the same as a link (a Hitem3D result URL)
    source_extensions: tuple[str, ...] = ()
    max_source_bytes: int = 0  # the largest upload the service takes
    formats: Mapping[str, str] = field(default_factory=dict)  # ``format`` code -> file extension
    request_format: str = ""  # the ``format`` we ask for (always sent: required where documented)
    fields: tuple[FieldSpec, ...] = ()
    has_cover: bool = True
    # How the sidebar and the command line offer it ('' for image to 3D, which
    # has panels of its own). ``button`` is an operator label, ``tooltip`` its
    # description and the command's help; ``icon`` a Blender icon name.
    operator: str = ""  # hitem3d.<operator>
    button: str = ""
    tooltip: str = ""
    icon: str = "NONE"
    command: str = ""  # blender --command hitem3d <command>
    # What a task of this kind that failed on Hitem3D says, and what to try
    # another of (``{input}``: ``input_noun``).
    failed_template: str = N_("{kind} failed on Hitem3D (credits are refunded): retry, or try another {input}")
    input_noun: str = N_("mesh")

    @property
    def create_path(self) -> str:
        return self.create.path

    @property
    def query_path(self) -> str:
        return self.query.path

    @property
    def title(self) -> Message:
        """The kind's name, for messages and panels."""
        name = self.label  # an N_ entry of this table
        return msg(name)

    @property
    def takes_picture(self) -> bool:
        """A picture goes in (the Relief panel), else a mesh (Parts and Colours)."""
        return self.source_field == "image"

    def field(self, name: str) -> FieldSpec | None:
        return next((spec for spec in self.fields if spec.name == name), None)

    def defaults(self) -> dict[str, str]:
        return {spec.name: spec.default for spec in self.fields}

    def unconfirmed(self) -> Message | None:
        """What this kind rests on that no official page or vendor client says,
        for the sidebar beside its button; None when everything is confirmed."""
        if not self.create.source.confirmed:
            return msg("Unconfirmed: not on Hitem3D's published pages")
        if not self.query.source.confirmed:
            return msg("Unconfirmed: following the task is not published; its ID is kept")
        if not all(spec.source.confirmed for spec in self.fields):
            return msg("Unconfirmed: some settings are not on Hitem3D's published pages")
        return None

    def failed_message(self) -> Message:
        """What a task of this kind that failed on Hitem3D says: what to try next."""
        template, noun = self.failed_template, self.input_noun  # N_ entries of this table
        return msg(template, kind=self.title, input=msg(noun))


_LEVELS = (("low", "Low"), ("medium", "Medium"), ("high", "High"))
_MESH_FORMATS = {"1": "obj", "2": "glb", "3": "stl", "4": "fbx", "5": "usdz"}
_MESH_SOURCES = ("glb", "stl", "obj")
_DOC, _VENDOR, _COMMUNITY = Source.DOC, Source.VENDOR, Source.COMMUNITY

IMAGE_TO_3D = TaskKind(
    id="image3d", label=N_("Image to 3D"), id_prefix="",
    create=Endpoint("/submit-task", Auth.BEARER, _DOC, _DOC), query=GENERIC_QUERY,
    result_style=ResultStyle.MODEL, result_extensions=("glb",),
    formats={"1": "obj", "2": "glb", "3": "stl", "4": "fbx", "5": "usdz", "6": "3mf"}, request_format="2",
    failed_template=N_("Generation failed on Hitem3D (credits are refunded): retry, or try another image"),
    input_noun=N_("image"),
)

SPLIT = TaskKind(
    id="split", label=N_("Split into parts"), id_prefix="split_",
    # The create page shows "Authorization: Token"; no query page is published
    # (a third-party note says it shows Token too).
    create=Endpoint("/split/create-task", Auth.TOKEN, _DOC, _DOC),
    query=Endpoint("/split/query-task", Auth.TOKEN, _COMMUNITY, _COMMUNITY),
    result_style=ResultStyle.PARTS, result_extensions=("glb", "stl"),
    source_field="mesh", source_url_field="mesh_url", source_extensions=_MESH_SOURCES, max_source_bytes=200 * MB,
    formats=_MESH_FORMATS, request_format="2",  # character split outputs GLB only [doc]
    fields=(
        FieldSpec("model", N_("Split"), "character", (("character", "Character"), ("general", "General")),
                  description=N_("Character: body parts from a template; General: parts by level of detail"),
                  cli=None, cli_flag=("--general", "general")),
        FieldSpec("part", N_("Template"), "a", (
            ("a", "A: 6 parts"), ("b", "B: 5 parts"), ("c", "C: 4 parts, no head"),
            ("d", "D: 4 parts with head"), ("e", "E: 3 parts"), ("f", "F: 2 parts"),
        ), when=("model", "character"), description=N_("How a character is cut into parts"), cli="--template"),
        # The documented default is ball.
        FieldSpec("joint", N_("Joint"), "ball", (("none", "None"), ("ball", "Ball"), ("dovetail", "Dovetail")),
                  when=("model", "character"), description=N_("The joint between printed parts")),
        FieldSpec("level", N_("Level"), "medium", _LEVELS, when=("model", "general"),
                  description=N_("How many parts a general split makes")),
    ),
    operator="split_parts", button="Split into Parts", icon="MOD_EXPLODE", command="split",
    tooltip=N_("Split the mesh into printable parts on Hitem3D; they arrive as separate objects"),
    input_noun=N_("mesh"),
)

SEGMENTATION = TaskKind(
    id="segmentation", label=N_("Segmentation"), id_prefix="segmentation_",
    create=Endpoint("/segmentation/create-task", Auth.TOKEN, _DOC, _DOC),
    # NOTE: no query page is published; one third-party client uses this path.
    # Its scheme is a guess after the create page. Unserved, the task is kept.
    query=Endpoint("/segmentation/query-task", Auth.TOKEN, _COMMUNITY, _COMMUNITY),
    result_style=ResultStyle.PARTS, result_extensions=("glb", "stl"),
    source_field="mesh", source_url_field="mesh_url", source_extensions=_MESH_SOURCES, max_source_bytes=200 * MB,
    # ``format`` is required, without a default [doc].
    formats=_MESH_FORMATS, request_format="2",
    fields=(FieldSpec("seg_level", N_("Level"), "medium", _LEVELS,
                      description=N_("How finely the model is segmented"), cli="--level"),),
    operator="segment_parts", button="Segment", icon="MOD_BUILD", command="segment",
    tooltip=N_("Segment the mesh into its parts on Hitem3D; they arrive as separate objects"),
    input_noun=N_("mesh"),
)

DEPTH = TaskKind(
    id="depth", label=N_("Depth map / relief"), id_prefix="depth_",
    create=Endpoint("/depth/create-task", Auth.BEARER, _DOC, _DOC),
    query=Endpoint("/depth/query-task", Auth.BEARER, _DOC, _DOC),
    # NOTE: the codes of the mesh formats (stl, glb) third-party clients offer
    # are not documented, so we ask for PNG; a task made elsewhere may bring a mesh.
    result_style=ResultStyle.RELIEF, result_extensions=("png", "exr", "glb", "stl"),
    source_field="image", source_url_field="image_url",
    source_extensions=("png", "jpeg", "jpg", "webp"), max_source_bytes=20 * MB,
    formats={"1": "exr", "2": "png"}, request_format="2",
    # ``model_type``, ``rmbg`` and ``format`` are required [doc]. "pro" is the
    # only documented model_type; "base" and ``height_relief`` are third-party
    # only and not sent (the relief's height is applied here, in Blender).
    fields=(
        FieldSpec("model_type", N_("Quality"), "pro", (("pro", "Pro (2K)"),), cli="--quality"),
        FieldSpec("rmbg", N_("Remove background"), "1", (("1", "Yes"), ("0", "No")),
                  description=N_("Hitem3D removes the picture's background first"),
                  cli=None, cli_flag=("--keep-background", "0")),
    ),
    has_cover=False,
    operator="make_relief", button="Make Relief", icon="MOD_DISPLACE", command="relief",
    tooltip=N_("Make a depth map of the picture on Hitem3D; it arrives as a relief (a displaced plane)"),
    input_noun=N_("picture"),
)

MULTICOLOUR = TaskKind(
    id="multicolor", label=N_("Multicolour"), id_prefix="multicolor_",
    # NOTE: nothing about this kind is on an official page or in the vendor's
    # client: paths (spelt "muilticolor" by the service, as third-party
    # clients send it), scheme and fields all come from third-party clients.
    create=Endpoint("/muilticolor/create-task", Auth.BEARER, _COMMUNITY, _COMMUNITY),
    query=Endpoint("/muilticolor/query-task", Auth.BEARER, _COMMUNITY, _COMMUNITY),
    result_style=ResultStyle.COLOURS, result_extensions=("glb",),
    source_field="mesh", source_url_field="mesh_url", source_extensions=_MESH_SOURCES, max_source_bytes=200 * MB,
    formats={"1": "obj", "2": "glb", "4": "fbx", "6": "3mf"}, request_format="2",
    fields=(
        FieldSpec("model", N_("Model"), "multicolor", (("multicolor", "Multicolour"),), source=_COMMUNITY, cli=None),
        FieldSpec("number_color", N_("Colours"), "0", minimum=0, maximum=8, integer=True, source=_COMMUNITY,
                  description=N_("How many colours to print with (0: as many as needed)"), cli="--colors"),
    ),
    operator="multicolour", button="Multicolour", icon="COLOR", command="multicolor",
    tooltip=N_("Colour the mesh for multicolour printing on Hitem3D; it arrives with its colours visible"),
    input_noun=N_("mesh"),
)

KINDS: tuple[TaskKind, ...] = (IMAGE_TO_3D, SPLIT, SEGMENTATION, DEPTH, MULTICOLOUR)


def get(kind_id: str) -> TaskKind | None:
    # NOTE: a look through five entries, not a dict made once: a test adds a
    # kind by replacing KINDS, and everything must see it.
    return next((kind for kind in KINDS if kind.id == kind_id), None)


def kind_of(task_id: str) -> TaskKind:
    """The kind a task ID says it is: its prefix, else image to 3D."""
    for kind in KINDS:
        if kind.id_prefix and task_id.startswith(kind.id_prefix):
            return kind
    return IMAGE_TO_3D


def offered() -> tuple[TaskKind, ...]:
    """The kinds the sidebar and the command line create (image to 3D has its own)."""
    return tuple(kind for kind in KINDS if kind.operator)
