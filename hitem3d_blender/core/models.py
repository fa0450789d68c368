"""The Hitem3D model versions a generation can use: one table, the only place.

When Hitem3D adds a version or a resolution, edit ``MODELS`` and nothing else:
the panel's choices, the command line's, the local checks and the Texture
button all read it. Every entry says where its facts come from
(``sources.Source``, docs/hitem3d-api.md): the official ``submit-task`` page,
the vendor's own client, or third-party clients only (unconfirmed: the panel
says so, and such a model is never the default).
"""

from __future__ import annotations

from dataclasses import dataclass

from .sources import Source

# The face range and default the vendor's client offers (the official page
# gives neither); v3.0's larger range is third-party only.
FACE_MIN = 100_000
FACE_MAX = 2_000_000
FACE_DEFAULT = 500_000


@dataclass(frozen=True)
class ModelSpec:
    """One model version as ``submit-task`` knows it."""

    id: str  # the ``model`` form field
    label: str  # what the panel shows
    resolutions: tuple[str, ...]  # in the order the panel lists them
    default_resolution: str
    source: Source  # of the model's name and its resolutions
    # The official default resolution is 1024; where a model has none, the
    # vendor's client takes the model's first: that rule is [vendor].
    default_source: Source = Source.DOC
    face_min: int = FACE_MIN
    face_max: int = FACE_MAX
    face_default: int = FACE_DEFAULT
    # ``pbr`` is sent only to the models the vendor's client sends it to.
    pbr: bool = False
    # request_type 2 (texture an existing mesh) is offered: the models of the
    # vendor's texture node, less v2.0, which the official page excludes.
    can_texture_mesh: bool = False
    # The ``shading`` field (light removal, 0 to 1). NOTE: third-party only
    # (no official page, not in the vendor's client): off unless asked for,
    # and marked unconfirmed in the panel. The v1 generation predates it.
    shading: bool = True
    description: str = ""

    def allows_face(self, face: int) -> bool:
        return self.face_min <= face <= self.face_max

    @property
    def confirmed(self) -> bool:
        return self.source.confirmed


_DOC, _VENDOR, _COMMUNITY = Source.DOC, Source.VENDOR, Source.COMMUNITY

MODELS: tuple[ModelSpec, ...] = (
    # The vendor client's default model; its resolutions and PBR are [vendor].
    ModelSpec(
        "hitem3dv2.1", "Hitem3D v2.1", ("1536fast", "1536pro"), "1536fast", _VENDOR, default_source=_VENDOR,
        pbr=True, can_texture_mesh=True, description="General model",
    ),
    # Texturing an existing mesh is documented as unsupported for v2.0 (the
    # vendor's texture node offers it: the page wins).
    ModelSpec(
        "hitem3dv2.0", "Hitem3D v2.0", ("1536", "1536pro"), "1536", _DOC, default_source=_VENDOR, pbr=True,
        description="General model",
    ),
    ModelSpec(
        "hitem3dv1.5", "Hitem3D v1.5", ("512", "1024", "1536", "1536pro"), "1024", _DOC,
        can_texture_mesh=True, shading=False,
        description="General model; fast low resolutions",
    ),
    ModelSpec(
        "hitem3dv1", "Hitem3D v1", ("512", "1024", "1536"), "1024", _DOC, shading=False,
        description="First general model",
    ),
    ModelSpec(
        "scene-portraitv2.1", "Portrait v2.1", ("1536profast", "1536pro"), "1536profast", _VENDOR,
        default_source=_VENDOR, description="People and busts",
    ),
    ModelSpec(
        "scene-portraitv2.0", "Portrait v2.0", ("1536pro",), "1536pro", _DOC, default_source=_VENDOR,
        description="People and busts",
    ),
    ModelSpec(
        "scene-portraitv1.5", "Portrait v1.5", ("1536",), "1536", _DOC, default_source=_VENDOR,
        can_texture_mesh=True, shading=False, description="People and busts",
    ),
    # NOTE: only third-party clients name this model, its resolutions and its
    # larger face range: kept for those who use it, last, never the default.
    ModelSpec(
        "hi3dv3.0", "Hi3D v3.0", ("2048quality", "2048master"), "2048quality", _COMMUNITY,
        default_source=_COMMUNITY, face_max=5_000_000, can_texture_mesh=True,
        description="Unconfirmed (not on Hitem3D's pages): newest general model, up to 5 million faces",
    ),
)

# The vendor client's default.
DEFAULT_MODEL = "hitem3dv2.1"

_BY_ID: dict[str, ModelSpec] = {spec.id: spec for spec in MODELS}


def get(model_id: str) -> ModelSpec | None:
    """The model with this ``model`` field, or None for an unknown one."""
    return _BY_ID.get(model_id)


def default() -> ModelSpec:
    return _BY_ID[DEFAULT_MODEL]


def widest_face_range() -> tuple[int, int]:
    """The face bounds over every model: the panel's field allows these and the
    check before sending applies the chosen model's own range."""
    return min(spec.face_min for spec in MODELS), max(spec.face_max for spec in MODELS)


def texturing_models() -> tuple[ModelSpec, ...]:
    """The models that can texture an existing mesh (request_type 2)."""
    return tuple(spec for spec in MODELS if spec.can_texture_mesh)


def label(model_id: str) -> str:
    """The model's name for people; the raw ID for one this table does not know."""
    spec = _BY_ID.get(model_id)
    return spec.label if spec is not None else model_id


def _check_table() -> None:
    # A malformed entry is a programming error: fail at import, in tests.
    assert len(_BY_ID) == len(MODELS), "duplicate model id"
    assert DEFAULT_MODEL in _BY_ID and default().confirmed, "the default must be an official or the vendor's model"
    for spec in MODELS:
        assert spec.resolutions and spec.default_resolution in spec.resolutions, spec.id
        assert spec.face_min <= spec.face_default <= spec.face_max, spec.id


_check_table()
