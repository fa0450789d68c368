"""The Hitem3D model versions a generation can use: one table, the only place.

When Hitem3D adds a version or a resolution, edit ``MODELS`` and nothing else:
the panel's choices, the local checks and the Texture button all read it.
Facts from the API notes (``submit-task``); where they are silent the entry
says so.
"""

from __future__ import annotations

from dataclasses import dataclass

# The documented face range; a model may allow more (v3.0).
FACE_MIN = 100_000
FACE_MAX = 2_000_000
# NOTE: the server's own default face count is undocumented; we always send one.
FACE_DEFAULT = 1_000_000


@dataclass(frozen=True)
class ModelSpec:
    """One model version as ``submit-task`` knows it."""

    id: str  # the ``model`` form field
    label: str  # what the panel shows
    resolutions: tuple[str, ...]  # in the order the panel lists them
    default_resolution: str
    face_min: int = FACE_MIN
    face_max: int = FACE_MAX
    face_default: int = FACE_DEFAULT
    pbr: bool = False  # the ``pbr`` field applies
    can_texture_mesh: bool = False  # request_type 2 (texture an existing mesh) is offered
    # The ``shading`` field (light removal, 0 to 1) is offered. ASSUMPTION: the
    # API notes list it without naming models; the v1.5 generation predates it.
    shading: bool = True
    description: str = ""

    def allows_face(self, face: int) -> bool:
        return self.face_min <= face <= self.face_max


MODELS: tuple[ModelSpec, ...] = (
    ModelSpec(
        "hi3dv3.0", "Hi3D v3.0", ("2048quality", "2048master"), "2048quality",
        face_max=5_000_000, pbr=True, can_texture_mesh=True,
        description="Newest general model, up to 5 million faces",
    ),
    # NOTE: texturing an existing mesh is undocumented for v2.1: not offered.
    ModelSpec(
        "hitem3dv2.1", "Hitem3D v2.1", ("1536fast", "1536pro"), "1536pro", pbr=True,
        description="General model",
    ),
    # Texturing an existing mesh is documented as unsupported for v2.0.
    ModelSpec(
        "hitem3dv2.0", "Hitem3D v2.0", ("1536", "1536pro"), "1536pro", pbr=True,
        description="General model",
    ),
    ModelSpec(
        "hitem3dv1.5", "Hitem3D v1.5", ("512", "1024", "1536", "1536pro"), "1024",
        can_texture_mesh=True, shading=False,
        description="First general model; fast low resolutions",
    ),
    ModelSpec(
        "scene-portraitv2.1", "Portrait v2.1", ("1536profast", "1536pro"), "1536pro", pbr=True,
        description="People and busts",
    ),
    ModelSpec(
        "scene-portraitv2.0", "Portrait v2.0", ("1536pro",), "1536pro", pbr=True,
        description="People and busts",
    ),
    ModelSpec(
        "scene-portraitv1.5", "Portrait v1.5", ("1536",), "1536", shading=False,
        description="People and busts",
    ),
)

DEFAULT_MODEL = "hi3dv3.0"

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
    assert DEFAULT_MODEL in _BY_ID
    for spec in MODELS:
        assert spec.resolutions and spec.default_resolution in spec.resolutions, spec.id
        assert spec.face_min <= spec.face_default <= spec.face_max, spec.id


_check_table()
