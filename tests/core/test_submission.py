"""The generation request: the model table, the checks before sending, and the
multipart parts for every combination of views. No Blender, no network."""

from __future__ import annotations

import itertools
from pathlib import Path

import pytest

from hitem3d_blender.core import models
from hitem3d_blender.core.submission import (
    MAX_IMAGE_BYTES,
    VIEWS,
    InvalidSubmission,
    RequestType,
    Submission,
    form_fields,
    form_files,
    format_credits,
    read_files,
    sniff_image_type,
    texture_request,
    texture_offered,
    upload_file_name,
    validate,
)
from hitem3d_blender.core.tasks import TaskRecord, TaskState
from tests.support.simulator import MAX_FACE, MAX_FACE_BY_MODEL, MIN_FACE, MODEL_RESOLUTIONS, _validate_submission
from hitem3d_blender.core.picture_metadata import strip
from tests.support.picture_factory import SECRETS, TINY_JPEG, jpeg_with_metadata
from tests.support.submission_helpers import PNG_BYTES, images, view_png  # noqa: F401 - a fixture

TASK_ID = "2c2ad20cb3204697ba7f80351c3e8606.jjewelry-aigc-api.1NraEb5ohU"



def single(image: str, **changes: object) -> Submission:
    values: dict[str, object] = {"model": "hitem3dv2.1", "resolution": "1536pro", "face": 1_000_000, "image": image}
    values.update(changes)
    return Submission(**values)  # type: ignore[arg-type]


def problem(submission: Submission) -> str:
    with pytest.raises(InvalidSubmission) as caught:
        validate(submission)
    return str(caught.value)


def all_view_sets() -> list[tuple[str, ...]]:
    return [combo for n in range(1, 5) for combo in itertools.combinations(VIEWS, n)]


WITH_FRONT = [combo for combo in all_view_sets() if "front" in combo]
WITHOUT_FRONT = [()] + [combo for combo in all_view_sets() if "front" not in combo]


# -- the model table ------------------------------------------------------------------------


def test_model_table_matches_the_documented_resolutions() -> None:
    assert {spec.id: frozenset(spec.resolutions) for spec in models.MODELS} == MODEL_RESOLUTIONS


def test_model_table_matches_the_documented_face_ranges() -> None:
    for spec in models.MODELS:
        assert (spec.face_min, spec.face_max) == (MIN_FACE, MAX_FACE_BY_MODEL.get(spec.id, MAX_FACE))
    assert models.get("hi3dv3.0").face_max == 5_000_000  # type: ignore[union-attr]


def test_texturing_a_mesh_is_offered_where_the_vendor_offers_it_and_no_page_forbids_it() -> None:
    # The vendor's texture node offers v2.1, v1.5, v2.0 and portrait v1.5; the
    # official page excludes the v2.0 models. v3.0 is third-party only.
    assert {spec.id for spec in models.MODELS if spec.can_texture_mesh} == {
        "hitem3dv2.1", "hitem3dv1.5", "scene-portraitv1.5", "hi3dv3.0"}


def test_the_default_model_is_the_vendors_and_documented_models_are_all_offered() -> None:
    assert models.DEFAULT_MODEL == "hitem3dv2.1" and models.default().source.confirmed
    assert models.default().default_resolution == "1536fast"  # the vendor's client takes the model's first
    assert {"hitem3dv1", "hitem3dv1.5", "hitem3dv2.0", "scene-portraitv1.5", "scene-portraitv2.0"} <= {
        spec.id for spec in models.MODELS}
    # Only third-party clients name v3.0: unconfirmed, and never the default.
    assert [spec.id for spec in models.MODELS if not spec.confirmed] == ["hi3dv3.0"]


def test_pbr_is_offered_only_where_the_vendor_sends_it() -> None:
    assert {spec.id for spec in models.MODELS if spec.pbr} == {"hitem3dv2.0", "hitem3dv2.1"}


def test_default_model_and_resolutions_are_valid() -> None:
    default = models.default()
    assert default.id == models.DEFAULT_MODEL
    for spec in models.MODELS:
        assert spec.default_resolution in spec.resolutions
        assert spec.allows_face(spec.face_default)
    assert models.widest_face_range() == (100_000, 5_000_000)
    assert models.label("hitem3dv9") == "hitem3dv9"


# -- checks before sending -------------------------------------------------------------------


def test_a_valid_single_image_passes(images: dict[str, str]) -> None:
    validate(single(images["front"]))


@pytest.mark.parametrize("views", WITH_FRONT, ids="-".join)
def test_every_view_set_with_a_front_view_passes(images: dict[str, str], views: tuple[str, ...]) -> None:
    validate(single("", views={view: images[view] for view in views}))


@pytest.mark.parametrize("views", WITHOUT_FRONT, ids=lambda v: "-".join(v) or "none")
def test_every_view_set_without_a_front_view_is_refused(images: dict[str, str], views: tuple[str, ...]) -> None:
    submission = single("", views={view: images[view] for view in views})
    expected = "Views need a front view" if views else "Add an image to generate from"
    assert problem(submission).startswith(expected)


def test_unknown_model_is_named(images: dict[str, str]) -> None:
    assert problem(single(images["front"], model="hitem3dv9")) == (
        "Unknown model version 'hitem3dv9': choose one from the list"
    )


def test_unknown_request_type_is_refused(images: dict[str, str]) -> None:
    assert problem(single(images["front"], request_type=4)).startswith("Request type 4 is unknown")


def test_image_and_views_together_are_refused(images: dict[str, str]) -> None:
    assert problem(single(images["front"], views={"front": images["front"]})) == "Send one image or views, not both"


def test_unknown_view_name_is_refused(images: dict[str, str]) -> None:
    assert problem(single("", views={"front": images["front"], "top": images["back"]})) == (
        "Unknown view 'top': use front, back, left and right"
    )


@pytest.mark.parametrize("name", ["photo.gif", "photo.bmp", "photo.tiff", "photo"])
def test_file_type_is_checked_by_extension(tmp_path: Path, name: str) -> None:
    path = tmp_path / name
    path.write_bytes(PNG_BYTES)
    assert problem(single(str(path))) == f"Image: {name} is not a PNG, JPEG or WebP file"


@pytest.mark.parametrize("name", ["a.png", "b.PNG", "c.jpg", "d.jpeg", "e.JPEG", "f.webp"])
def test_accepted_file_types(tmp_path: Path, name: str) -> None:
    path = tmp_path / name
    path.write_bytes(PNG_BYTES)
    validate(single(str(path)))


def test_missing_file_names_the_view_and_path(images: dict[str, str], tmp_path: Path) -> None:
    missing = str(tmp_path / "gone.png")
    assert problem(single("", views={"front": images["front"], "left": missing})) == (
        f"Left view: file not found: {missing}"
    )


def test_empty_file_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "empty.png"
    path.touch()
    assert problem(single(str(path))) == "Image: empty.png is empty"


def test_file_over_20_mb_names_the_view_its_size_and_the_limit(images: dict[str, str], tmp_path: Path) -> None:
    big = tmp_path / "huge.jpg"
    with big.open("wb") as stream:  # sparse: no 20 MB written to disk
        stream.truncate(MAX_IMAGE_BYTES + 3_000_000)
    assert problem(single("", views={"front": images["front"], "back": str(big)})) == (
        "Back view: huge.jpg is 23.0 MB; Hitem3D accepts at most 20 MB per image"
    )


def test_the_image_limit_is_20_decimal_megabytes(tmp_path: Path) -> None:
    assert MAX_IMAGE_BYTES == 20_000_000
    mib = tmp_path / "mib.png"
    with mib.open("wb") as stream:
        stream.truncate(20 * 1024 * 1024)  # 20 MiB: over Hitem3D's 20 MB
    assert problem(single(str(mib))) == "Image: mib.png is 21.0 MB; Hitem3D accepts at most 20 MB per image"


def test_file_of_exactly_20_mb_is_accepted(tmp_path: Path) -> None:
    path = tmp_path / "limit.png"
    with path.open("wb") as stream:
        stream.write(PNG_BYTES)
        stream.truncate(MAX_IMAGE_BYTES)
    validate(single(str(path)))


@pytest.mark.parametrize(("name", "content"), [
    ("notes.png", b"just some text, not a picture\n"), ("photo.jpg", b"GIF89a" + bytes(16)),
    ("photo.webp", b"RIFF\x10\x00\x00\x00WAVEfmt "), ("short.png", b"\x89PN"),
])
def test_a_file_is_judged_by_its_bytes_not_its_name(tmp_path: Path, name: str, content: bytes) -> None:
    path = tmp_path / name
    path.write_bytes(content)
    assert problem(single(str(path))) == f"Image: {name} is not a PNG, JPEG or WebP file"


def test_a_picture_is_sent_as_the_type_its_bytes_say(tmp_path: Path) -> None:
    path = tmp_path / "really-a-jpeg.png"
    path.write_bytes(TINY_JPEG)
    validate(single(str(path)))
    assert read_files(single(str(path))) == [("images", ("image.jpg", strip(TINY_JPEG)[0], "image/jpeg"))]


def test_resolution_must_belong_to_the_model(images: dict[str, str]) -> None:
    assert problem(single(images["front"], model="hitem3dv2.0", resolution="512")) == (
        "Resolution 512 is not available for Hitem3D v2.0: choose 1536 or 1536pro"
    )
    assert problem(single(images["front"], resolution="")) == "Choose a resolution for Hitem3D v2.1"


@pytest.mark.parametrize("spec", models.MODELS, ids=lambda spec: spec.id)
def test_every_resolution_of_each_model_passes_and_others_fail(images: dict[str, str],
                                                               spec: models.ModelSpec) -> None:
    for resolution in {res for other in models.MODELS for res in other.resolutions}:
        submission = single(images["front"], model=spec.id, resolution=resolution)
        if resolution in spec.resolutions:
            validate(submission)
        else:
            assert problem(submission).startswith(f"Resolution {resolution} is not available for {spec.label}")


@pytest.mark.parametrize(("model", "face", "ok"), [
    ("hitem3dv2.1", 99_999, False),
    ("hitem3dv2.1", 100_000, True),
    ("hitem3dv2.1", 2_000_000, True),
    ("hitem3dv2.1", 2_000_001, False),
    ("hi3dv3.0", 5_000_000, True),
    ("hi3dv3.0", 5_000_001, False),
])
def test_face_count_is_checked_against_the_models_range(images: dict[str, str], model: str, face: int,
                                                        ok: bool) -> None:
    spec = models.get(model)
    assert spec is not None
    submission = single(images["front"], model=model, resolution=spec.default_resolution, face=face)
    if ok:
        validate(submission)
    else:
        assert problem(submission) == (
            f"Face count {face:,} is out of range for {spec.label}: {spec.face_min:,} to {spec.face_max:,}"
        )


def test_texturing_is_refused_for_models_that_cannot(images: dict[str, str]) -> None:
    submission = single(images["front"], model="hitem3dv2.0", resolution="1536pro",
                        request_type=RequestType.TEXTURE_MESH, mesh_task_id=TASK_ID)
    assert problem(submission) == ("Hitem3D v2.0 cannot texture an existing model: use Hitem3D v2.1, Hitem3D v1.5, "
                                   "Portrait v1.5 or Hi3D v3.0")


def test_texturing_needs_a_mesh_and_an_http_url(images: dict[str, str]) -> None:
    base = single(images["front"], model="hi3dv3.0", resolution="2048quality", request_type=RequestType.TEXTURE_MESH)
    assert problem(base).startswith("Texturing needs the model to texture")
    assert problem(Submission(**{**base.__dict__, "mesh_url": "ftp://x/0.glb"})) == "The mesh URL must start with http"
    validate(Submission(**{**base.__dict__, "mesh_url": "https://cdn.example/0.glb"}))
    validate(Submission(**{**base.__dict__, "mesh_task_id": TASK_ID}))


def test_texturing_without_a_reference_image_says_so() -> None:
    submission = Submission("hi3dv3.0", "2048quality", request_type=RequestType.TEXTURE_MESH, mesh_task_id=TASK_ID)
    assert problem(submission) == "Texturing needs a reference image: add one under New Generation"


# -- the multipart parts --------------------------------------------------------------------------


def test_single_image_fields_and_file(images: dict[str, str]) -> None:
    submission = single(images["front"], model="hitem3dv2.1", resolution="1536pro", face=1_500_000, pbr=False)
    assert form_fields(submission) == [
        ("request_type", "3"),
        ("model", "hitem3dv2.1"),
        ("resolution", "1536pro"),
        ("format", "2"),
        ("face", "1500000"),
        ("pbr", "0"),
    ]
    assert form_files(submission) == [("images", images["front"])]


@pytest.mark.parametrize("views", WITH_FRONT, ids="-".join)
def test_every_view_set_sends_files_in_order_with_the_matching_bit_mask(images: dict[str, str],
                                                                        views: tuple[str, ...]) -> None:
    # Given in reverse order on purpose: the parts must still go front, back, left, right.
    submission = single("", views={view: images[view] for view in reversed(views)})
    fields = dict(form_fields(submission))
    expected_bits = "".join("1" if view in views else "0" for view in VIEWS)

    assert fields["multi_images_bit"] == expected_bits
    assert form_files(submission) == [("multi_images", images[view]) for view in VIEWS if view in views]
    assert "images" not in [name for name, _ in form_files(submission)]
    assert _validate_submission(fields, _parts(submission)) is None  # the simulator agrees


@pytest.mark.parametrize("request_type", list(RequestType))
@pytest.mark.parametrize("spec", models.MODELS, ids=lambda spec: spec.id)
def test_format_is_always_glb(images: dict[str, str], spec: models.ModelSpec, request_type: RequestType) -> None:
    submission = single(images["front"], model=spec.id, resolution=spec.default_resolution,
                        request_type=request_type, mesh_url="https://cdn.example/0.glb")
    assert dict(form_fields(submission))["format"] == "2"


def test_pbr_is_sent_only_where_it_applies(images: dict[str, str]) -> None:
    textured = single(images["front"])
    geometry = single(images["front"], request_type=RequestType.GEOMETRY)
    old_model = single(images["front"], model="hitem3dv1.5", resolution="1024")
    assert dict(form_fields(textured))["pbr"] == "1"
    assert "pbr" not in dict(form_fields(geometry))
    assert "pbr" not in dict(form_fields(old_model))


def test_texturing_sends_the_mesh_url_and_no_face_count(images: dict[str, str]) -> None:
    submission = single(images["front"], model="hitem3dv1.5", resolution="1536",
                        request_type=RequestType.TEXTURE_MESH, mesh_url="https://cdn.example/0.glb?auth_key=k")
    fields = dict(form_fields(submission))
    assert fields["request_type"] == "2" and fields["mesh_url"] == "https://cdn.example/0.glb?auth_key=k"
    assert "face" not in fields
    assert _validate_submission(fields, _parts(submission)) is None


def test_read_files_reads_each_part_with_a_neutral_name_and_its_type(tmp_path: Path, images: dict[str, str]) -> None:
    jpeg = tmp_path / "Client_X_secret_left.JPG"
    jpeg.write_bytes(TINY_JPEG)
    submission = single("", views={"front": images["front"], "left": str(jpeg)})
    assert read_files(submission) == [
        ("multi_images", ("front.png", view_png("front"), "image/png")),
        ("multi_images", ("left.jpg", strip(TINY_JPEG)[0], "image/jpeg")),
    ]
    [(_, (name, _, _))] = read_files(single(str(jpeg)))
    assert name == "image.jpg"


def test_read_files_sends_a_picture_without_its_metadata(tmp_path: Path) -> None:
    photo = tmp_path / "IMG_2026.jpg"
    photo.write_bytes(jpeg_with_metadata())
    [(_, (_, data, _))] = read_files(single(str(photo)))
    assert data == strip(jpeg_with_metadata())[0] and [secret for secret in SECRETS if secret in data] == []


def test_read_files_refuses_a_picture_it_cannot_follow(tmp_path: Path) -> None:
    photo = tmp_path / "cut.png"
    photo.write_bytes(PNG_BYTES[:30])
    with pytest.raises(InvalidSubmission) as caught:
        read_files(single(str(photo)))
    assert str(caught.value) == "Image: cut.png is damaged (a PNG chunk runs past the end): save it again as PNG or JPEG"


def test_read_files_reports_a_file_that_vanished(tmp_path: Path) -> None:
    with pytest.raises(InvalidSubmission) as caught:
        read_files(single(str(tmp_path / "gone.png")))
    assert str(caught.value).startswith("Image: cannot read gone.png")


def _parts(submission: Submission) -> list[tuple[str, str, str, bytes]]:
    return [(name, filename, ctype, data) for name, (filename, data, ctype) in read_files(submission)]


# -- saving and offering -----------------------------------------------------------------------------


def test_saved_form_round_trips_without_the_signed_url(images: dict[str, str]) -> None:
    submission = single("", views={"front": images["front"], "right": images["right"]},
                        mesh_url="https://cdn/0.glb?auth_key=secret", mesh_task_id=TASK_ID)
    saved = submission.to_dict()
    assert "secret" not in str(saved) and "secret" not in repr(submission)
    restored = Submission.from_dict(saved)
    assert restored == Submission(**{**submission.__dict__, "mesh_url": ""})
    assert Submission.from_dict({"model": 3}) is None


def _record(state: TaskState, generation: dict[str, object]) -> TaskRecord:
    record = TaskRecord(TASK_ID, state=state)
    record.generation = generation
    return record


@pytest.mark.parametrize(("model", "request_type", "state", "offered"), [
    ("hi3dv3.0", 1, TaskState.DONE, True),
    ("hitem3dv1.5", 1, TaskState.DOWNLOADED, True),
    ("hi3dv3.0", 3, TaskState.DONE, False),  # already textured
    ("hi3dv3.0", 2, TaskState.DONE, False),
    ("hitem3dv2.0", 1, TaskState.DONE, False),  # documented unsupported
    ("hitem3dv2.1", 1, TaskState.DONE, True),  # the vendor's texture node offers it
    ("scene-portraitv2.1", 1, TaskState.DONE, False),  # nobody says it can
    ("hi3dv3.0", 1, TaskState.PROCESSING, False),
    ("hi3dv3.0", 1, TaskState.FAILED, False),
])
def test_texture_is_offered_for_finished_geometry_only_results_of_able_models(
        model: str, request_type: int, state: TaskState, offered: bool) -> None:
    generation = Submission(model, "x", request_type=request_type).to_dict()
    assert texture_offered(_record(state, generation)) is offered


def test_texture_is_not_offered_for_tasks_imported_by_id() -> None:
    assert not texture_offered(_record(TaskState.DONE, {}))


def test_journal_keeps_the_generation(images: dict[str, str]) -> None:
    record = _record(TaskState.DONE, single(images["front"], request_type=1).to_dict())
    assert TaskRecord.from_dict(record.to_dict()).generation == record.generation


# -- small helpers ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(("value", "text"), [(980.0, "980"), (12.5, "12.5"), (1204.75, "1,204.75"), (0.0, "0")])
def test_credits_read_as_people_write_them(value: float, text: str) -> None:
    assert format_credits(value) == text


def test_upload_file_names_are_safe() -> None:
    assert upload_file_name("Render Result", "s1", "png") == "Render Result-s1.png"
    assert upload_file_name("../..\\etc/pass:wd*", "s1", "png") == "_.._etc_pass_wd_-s1.png"
    assert upload_file_name("...", "s1", "webp") == "image-s1.webp"


def test_image_types_are_recognised_by_content() -> None:
    assert sniff_image_type(PNG_BYTES) == "png"
    assert sniff_image_type(b"\xff\xd8\xff\xe0") == "jpg"
    assert sniff_image_type(b"RIFF\0\0\0\0WEBPVP8 ") == "webp"
    assert sniff_image_type(b"GIF89a") == ""


# -- texturing a mesh file, and light removal ----------------------------------------------------


def mesh_file(tmp_path: Path, size: int = 64) -> str:
    path = tmp_path / "chair.glb"
    path.write_bytes(b"glTF" + bytes(size - 4))
    return str(path)


def texture_mesh(image: str, mesh: str, **changes: object) -> Submission:
    values: dict[str, object] = {"model": "hitem3dv1.5", "resolution": "1024", "image": image, "mesh": mesh,
                                 "request_type": RequestType.TEXTURE_MESH, "mesh_name": "Chair"}
    values.update(changes)
    return Submission(**values)  # type: ignore[arg-type]


def test_an_own_mesh_is_never_a_file_part_but_the_link_it_was_uploaded_to(images: dict[str, str],
                                                                         tmp_path: Path) -> None:
    mesh = mesh_file(tmp_path)
    submission = texture_mesh(images["front"], mesh)
    validate(submission)
    assert form_files(submission) == [("images", images["front"])]
    assert [name for name, _ in read_files(submission)] == ["images"]
    assert ("request_type", "2") in form_fields(submission)
    assert not [name for name, _ in form_fields(submission) if name == "mesh_url"]  # not uploaded yet
    uploaded = submission.with_mesh_url("https://hitem3dstatic.zaohaowu.net/hitem3d-blender/mesh/d/u.glb")
    assert ("mesh_url", uploaded.mesh_url) in form_fields(uploaded)
    assert str(submission.describe()) == "Texture Chair from front.png (Hitem3D v1.5)"


def test_a_mesh_file_needs_a_model_that_textures_meshes(images: dict[str, str], tmp_path: Path) -> None:
    with pytest.raises(InvalidSubmission, match="Hitem3D v2.0 cannot texture an existing model: use Hitem3D v2.1"):
        validate(texture_mesh(images["front"], mesh_file(tmp_path), model="hitem3dv2.0", resolution="1536pro"))


def test_a_mesh_file_hitem3d_would_refuse_is_refused_before_sending(images: dict[str, str], tmp_path: Path,
                                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    from hitem3d_blender.core import mesh_files

    monkeypatch.setattr(mesh_files, "MAX_MESH_BYTES", 32)
    with pytest.raises(InvalidSubmission, match="accepts at most 200 MB"):
        validate(texture_mesh(images["front"], mesh_file(tmp_path)))
    with pytest.raises(InvalidSubmission, match="Texturing needs a reference image"):
        validate(texture_mesh("", mesh_file(tmp_path, 16)))


def test_a_mesh_file_survives_the_journal_with_its_name_and_place(images: dict[str, str], tmp_path: Path) -> None:
    submission = texture_mesh(images["front"], mesh_file(tmp_path), mesh_box=(0.0, -1.0, 0.0, 2.0, 1.0, 3.5),
                              shading=0.5)
    again = Submission.from_dict(submission.to_dict())
    assert again == submission


@pytest.mark.parametrize("box", [[1, 2, 3], ["a"] * 6, [float("nan")] * 6, [1e300] * 6, "box"])
def test_a_damaged_mesh_place_in_the_journal_is_dropped(images: dict[str, str], box: object) -> None:
    data = {**single(images["front"]).to_dict(), "mesh_box": box, "shading": 7}
    again = Submission.from_dict(data)
    assert again is not None and again.mesh_box == () and again.shading is None


def test_light_removal_is_sent_as_shading_where_the_model_offers_it(images: dict[str, str]) -> None:
    submission = single(images["front"], shading=0.75)
    validate(submission)
    assert ("shading", "0.75") in form_fields(submission)
    assert not [f for f in form_fields(single(images["front"])) if f[0] == "shading"]
    geometry = single(images["front"], shading=0.75, request_type=RequestType.GEOMETRY)
    assert not [f for f in form_fields(geometry) if f[0] == "shading"]  # no texture, no lighting to remove


def test_light_removal_is_refused_for_a_model_without_it(images: dict[str, str]) -> None:
    assert not models.get("hitem3dv1.5").shading  # type: ignore[union-attr]
    with pytest.raises(InvalidSubmission, match="Hitem3D v1.5 does not offer light removal"):
        validate(single(images["front"], model="hitem3dv1.5", resolution="1024", shading=0.5))
    with pytest.raises(InvalidSubmission, match="Light removal must be 0 to 1"):
        validate(single(images["front"], shading=1.5))


def test_what_we_send_for_a_mesh_passes_the_simulators_checks(images: dict[str, str], tmp_path: Path) -> None:
    submission = texture_mesh(images["front"], mesh_file(tmp_path), shading=0.3, model="hi3dv3.0",
                              resolution="2048quality").with_mesh_url("https://hitem3dstatic.zaohaowu.net/m.glb")
    files = [(name, Path(path).name, "", Path(path).read_bytes()) for name, path in form_files(submission)]
    assert _validate_submission(dict(form_fields(submission)), files) is None


# -- one builder for a texturing request ---------------------------------------------------------------


def test_a_texturing_request_of_a_task_or_of_a_file_is_built_in_one_place(images: dict[str, str],
                                                                          tmp_path: Path) -> None:
    of_task = texture_request(model="hitem3dv1.5", resolution="1024", pbr=False, image=images["front"],
                              mesh_task_id=TASK_ID, shading=None)
    of_file = texture_request(model="hitem3dv1.5", resolution="1024", pbr=False, views={"front": images["front"]},
                              mesh=mesh_file(tmp_path), mesh_name="Chair", mesh_box=(0, 0, 0, 1, 1, 1))
    for request in (of_task, of_file):
        validate(request)
        assert request.request_type == RequestType.TEXTURE_MESH and request.face is None
        assert not [name for name, _ in form_fields(request) if name == "face"]
    assert of_task.mesh_task_id == TASK_ID and not of_task.mesh
    assert of_file.mesh_name == "Chair" and of_file.mesh_box == (0, 0, 0, 1, 1, 1) and not of_file.mesh_task_id


@pytest.mark.parametrize("sources", [{}, {"mesh_task_id": TASK_ID, "mesh": "/x/a.glb"}])
def test_a_texturing_request_textures_exactly_one_model(images: dict[str, str], sources: dict[str, str]) -> None:
    with pytest.raises(ValueError):
        texture_request(model="hitem3dv1.5", resolution="1024", pbr=True, image=images["front"], **sources)
