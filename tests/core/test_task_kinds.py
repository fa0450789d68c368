"""Every task kind is a task: IDs of each kind, their own endpoints, their
create requests and checks, their failures, and their results on disk,
against the simulator (no Blender)."""

from __future__ import annotations

import struct
from pathlib import Path

import pytest
import requests

from hitem3d_blender.core import task_kinds
from hitem3d_blender.core.api import Hitem3DClient
from hitem3d_blender.core.cancel import CancelToken
from hitem3d_blender.core.glb_names import neutral_glb
from hitem3d_blender.core.errors import ApiError, BadResultFile, GenerationFailed, Hitem3DError, TaskNotFound
from hitem3d_blender.core.kind_requests import KindRequest, form_fields, validate
from hitem3d_blender.core.pipeline import ImportJob, run_import_job
from hitem3d_blender.core.result_files import cached_result, check_exr, check_png, check_stl
from hitem3d_blender.core.submission import InvalidSubmission
from hitem3d_blender.core.task_ids import parse_task_id
from hitem3d_blender.core.tasks import TaskState, TaskUpdate
from tests.support.glb_factory import minimal_glb_bytes
from tests.support.kind_assets import depth_png_bytes, stl_bytes
from tests.support.simulator import API, BAD_MESH_MARK, Hitem3DSimulator

IMAGE_ID = "2c2ad20cb3204697ba7f80351c3e8606.jjewelry-aigc-api.1NraEb5ohU"
IDS = {
    "image3d": IMAGE_ID,
    "split": "split_8f1c2d3e4b5a69788796a5b4c3d2e1f0",
    "segmentation": "segmentation_0a1b2c3d4e5f60718293a4b5c6d7e8f9",
    "depth": "depth_77aa66bb55cc44dd33ee22ff11009988",
    "multicolor": "multicolor_1234567890abcdef1234567890abcdef",
}
QUERY_PATHS = {
    "image3d": f"{API}/query-task",
    "split": f"{API}/split/query-task",
    "segmentation": f"{API}/segmentation/query-task",
    "depth": f"{API}/depth/query-task",
    "multicolor": f"{API}/muilticolor/query-task",
}


@pytest.fixture
def mesh(tmp_path: Path) -> Path:
    path = tmp_path / "Chair.glb"
    path.write_bytes(minimal_glb_bytes())
    return path


@pytest.fixture
def picture(tmp_path: Path) -> Path:
    path = tmp_path / "coin.png"
    path.write_bytes(depth_png_bytes())
    return path


# -- IDs and endpoints ---------------------------------------------------------------------------


@pytest.mark.parametrize("kind", sorted(IDS))
def test_an_id_of_every_kind_is_accepted_and_says_its_kind(kind: str) -> None:
    assert parse_task_id(f"  {IDS[kind]} ") == IDS[kind]
    assert task_kinds.kind_of(IDS[kind]).id == kind


@pytest.mark.parametrize("kind", sorted(IDS))
def test_every_kind_is_queried_at_its_own_endpoint(sim: Hitem3DSimulator, client: Hitem3DClient,
                                                   kind: str) -> None:
    sim.add_task(IDS[kind], ["success"])

    status = client.query_task(IDS[kind])

    assert status.state == "success" and status.model_url
    assert [r.path for r in sim.requests if r.method == "GET"] == [QUERY_PATHS[kind]]


def test_the_query_paths_are_data_in_one_table() -> None:
    assert {kind.id: f"{API}{kind.query_path}" for kind in task_kinds.KINDS} == QUERY_PATHS
    # No official page publishes these query paths: the table says so.
    assert [kind.id for kind in task_kinds.KINDS if not kind.query.source.confirmed] == [
        "split", "segmentation", "multicolor"]


def test_every_endpoint_says_the_scheme_its_page_shows() -> None:
    schemes = {kind.id: (kind.create.auth.value, kind.query.auth.value) for kind in task_kinds.KINDS}
    assert schemes == {"image3d": ("Bearer", "Bearer"), "split": ("Token", "Token"),
                       "segmentation": ("Token", "Token"), "depth": ("Bearer", "Bearer"),
                       "multicolor": ("Bearer", "Bearer")}
    # The pages show Token for split and segmentation create: official.
    assert task_kinds.SPLIT.create.auth_source is task_kinds.Source.DOC
    assert task_kinds.SEGMENTATION.create.auth_source is task_kinds.Source.DOC


def test_a_kind_that_rests_on_unconfirmed_facts_says_so() -> None:
    assert task_kinds.DEPTH.unconfirmed() is None and task_kinds.IMAGE_TO_3D.unconfirmed() is None
    assert str(task_kinds.MULTICOLOUR.unconfirmed()) == "Unconfirmed: not on Hitem3D's published pages"
    for kind in (task_kinds.SPLIT, task_kinds.SEGMENTATION):
        assert str(kind.unconfirmed()).startswith("Unconfirmed: following the task is not published")


def test_a_task_asked_at_another_kinds_endpoint_is_unknown(sim: Hitem3DSimulator) -> None:
    # What a client that sends every ID to query-task gets from the service.
    sim.add_task(IDS["split"], ["success"])
    token = sim.issue_token()

    wrong = requests.get(f"{sim.base_url}{API}/query-task", params={"task_id": IDS["split"]},
                         headers={"Authorization": f"Bearer {token}"})
    right = requests.get(f"{sim.base_url}{API}/split/query-task", params={"task_id": IDS["split"]},
                         headers={"Authorization": f"Token {token}"})

    assert wrong.json()["code"] == 40040000
    assert right.json()["data"]["state"] == "success"


def test_only_the_misspelt_multicolour_path_exists(sim: Hitem3DSimulator) -> None:
    headers = {"Authorization": f"Bearer {sim.issue_token()}"}

    spelt_right = requests.post(f"{sim.base_url}{API}/multicolor/create-task", headers=headers)
    as_served = requests.post(f"{sim.base_url}{API}/muilticolor/create-task", headers=headers)

    assert spelt_right.status_code == 404
    assert as_served.json()["code"] != 404  # the route exists (it refuses the empty body)


def test_an_unknown_task_of_a_kind_is_not_found(client: Hitem3DClient) -> None:
    with pytest.raises(TaskNotFound):
        client.query_task(IDS["depth"])


@pytest.mark.parametrize("code", [50010001, 5001001])
def test_both_refund_codes_fail_the_task_with_credits_refunded(sim: Hitem3DSimulator, client: Hitem3DClient,
                                                              code: int) -> None:
    sim.add_task(IDS["split"], [{"code": code, "msg": "generate failed", "data": {}}])

    with pytest.raises(GenerationFailed, match="credits are refunded"):
        client.query_task(IDS["split"])


@pytest.mark.parametrize("kind, message", [
    ("image3d", "Generation failed on Hitem3D (credits are refunded): retry, or try another image"),
    ("split", "Split into parts failed on Hitem3D (credits are refunded): retry, or try another mesh"),
    ("segmentation", "Segmentation failed on Hitem3D (credits are refunded): retry, or try another mesh"),
    ("multicolor", "Multicolour failed on Hitem3D (credits are refunded): retry, or try another mesh"),
    ("depth", "Depth map / relief failed on Hitem3D (credits are refunded): retry, or try another picture"),
])
@pytest.mark.parametrize("answer", ["state", "code"])
def test_a_failed_task_says_what_to_try_another_of_for_its_kind(sim: Hitem3DSimulator, client: Hitem3DClient,
                                                                kind: str, message: str, answer: str) -> None:
    failed = "failed" if answer == "state" else {"code": 5001001, "msg": "generate failed", "data": {}}
    sim.add_task(IDS[kind], [failed])

    with pytest.raises(GenerationFailed) as info:
        client.query_task(IDS[kind])

    assert str(info.value) == (message if answer == "state" else f"{message} (code 5001001)")


def test_a_depth_answer_has_no_cover(sim: Hitem3DSimulator, client: Hitem3DClient) -> None:
    sim.add_task(IDS["depth"], ["success"], glb=depth_png_bytes(), extension="png")

    status = client.query_task(IDS["depth"])

    assert status.model_url and status.model_url.split("?")[0].endswith(".png")
    assert status.cover_url is None


# -- create requests ---------------------------------------------------------------------------


def test_a_character_split_sends_the_mesh_template_joint_and_glb(sim: Hitem3DSimulator, client: Hitem3DClient,
                                                                 mesh: Path) -> None:
    request = KindRequest("split", {"model": "character", "part": "c", "joint": "dovetail", "level": "high"},
                          source_path=str(mesh))

    task_id = client.submit_kind(request)

    [sent] = sim.submissions
    assert task_id.startswith("split_") and sent.task_id == task_id
    assert sent.path == f"{API}/split/create-task"
    # The level belongs to a general split: not sent with a character split.
    assert sent.fields == {"model": "character", "part": "c", "joint": "dovetail", "format": "2"}
    # Under a neutral name, without the object names inside (core.glb_names).
    assert sent.files == [("mesh", "mesh.glb", "model/gltf-binary", neutral_glb(mesh.read_bytes(), "Chair"))]


def test_a_general_split_sends_its_level_only(sim: Hitem3DSimulator, client: Hitem3DClient, mesh: Path) -> None:
    client.submit_kind(KindRequest("split", {"model": "general", "level": "low"}, source_path=str(mesh)))

    assert sim.submissions[0].fields == {"model": "general", "level": "low", "format": "2"}


def test_segmentation_sends_its_level(sim: Hitem3DSimulator, client: Hitem3DClient, mesh: Path) -> None:
    task_id = client.submit_kind(KindRequest("segmentation", {"seg_level": "high"}, source_path=str(mesh)))

    assert task_id.startswith("segmentation_")
    assert sim.submissions[0].path == f"{API}/segmentation/create-task"
    assert sim.submissions[0].fields == {"seg_level": "high", "format": "2"}


def test_multicolour_goes_to_the_misspelt_path_with_its_colour_count(sim: Hitem3DSimulator, client: Hitem3DClient,
                                                                    mesh: Path) -> None:
    task_id = client.submit_kind(KindRequest("multicolor", {"number_color": "5"}, source_path=str(mesh)))

    assert task_id.startswith("multicolor_")
    assert sim.submissions[0].path == f"{API}/muilticolor/create-task"
    assert sim.submissions[0].fields == {"model": "multicolor", "number_color": "5", "format": "2"}


def test_a_depth_map_sends_the_picture_and_asks_for_png(sim: Hitem3DSimulator, client: Hitem3DClient,
                                                        picture: Path) -> None:
    task_id = client.submit_kind(KindRequest("depth", source_path=str(picture), relief_height=2.5))

    assert task_id.startswith("depth_")
    [sent] = sim.submissions
    assert sent.path == f"{API}/depth/create-task"
    # The required fields with their documented values; the height is Blender's, never sent.
    assert sent.fields == {"model_type": "pro", "rmbg": "1", "format": "2"}
    assert [(name, filename) for name, filename, _, _ in sent.files] == [("image", "image.png")]
    assert sim.balance == 990.0  # a depth map costs 10 credits, the others 20


def test_a_finished_task_as_source_sends_a_fresh_model_link(sim: Hitem3DSimulator, client: Hitem3DClient) -> None:
    sim.add_task(IMAGE_ID, ["success"])

    client.submit_kind(KindRequest("multicolor", source_task_id=IMAGE_ID))

    [sent] = sim.submissions
    assert sent.files == []
    assert sent.fields["mesh_url"].startswith(sim.base_url + "/files/")
    assert "mesh_url" not in KindRequest("multicolor", source_task_id=IMAGE_ID).to_dict()


def test_a_source_task_that_is_not_finished_is_not_sent(sim: Hitem3DSimulator, client: Hitem3DClient) -> None:
    sim.add_task(IMAGE_ID, ["processing"])

    with pytest.raises(InvalidSubmission, match="no finished model"):
        client.submit_kind(KindRequest("split", source_task_id=IMAGE_ID))
    assert sim.submissions == []


@pytest.mark.parametrize("values, message", [
    ({"model": "character", "part": "g"}, "Template must be one of a, b, c, d, e, f"),
    ({"model": "robot"}, "Split must be one of character, general"),
    ({"joint": "glue"}, "Joint must be one of none, ball, dovetail"),
    ({"height_relief": "1.3"}, None),
    ({"colour": "red"}, "has no setting 'colour'"),
])
def test_a_bad_split_setting_is_refused_before_sending(mesh: Path, values: dict[str, str], message: str | None) -> None:
    with pytest.raises(InvalidSubmission, match=message or "has no setting"):
        validate(KindRequest("split", values, source_path=str(mesh)))


@pytest.mark.parametrize("values", [{"model_type": "base"}, {"height_relief": "1.3"}])
def test_depth_settings_no_official_page_documents_are_refused(picture: Path, values: dict[str, str]) -> None:
    with pytest.raises(InvalidSubmission):
        validate(KindRequest("depth", values, source_path=str(picture)))


def test_a_saved_request_with_settings_no_longer_sent_still_loads() -> None:
    saved = {"kind": "depth", "values": {"model_type": "base", "height_relief": "1.3", "rmbg": "0"},
             "source_path": "/p/coin.png"}
    again = KindRequest.from_dict(saved)
    assert again is not None and again.values == {"rmbg": "0"}


@pytest.mark.parametrize("count", ["-1", "9", "2.5", "many"])
def test_a_colour_count_outside_0_to_8_is_refused(mesh: Path, count: str) -> None:
    with pytest.raises(InvalidSubmission, match="Colours must be"):
        validate(KindRequest("multicolor", {"number_color": count}, source_path=str(mesh)))


def test_the_upload_limits_are_the_documented_ones() -> None:
    # Decimal megabytes, as Hitem3D writes them: "20 MB" is 20,000,000 bytes.
    assert {kind.id: kind.max_source_bytes for kind in task_kinds.KINDS if kind.source_field} == {
        "split": 200_000_000, "segmentation": 200_000_000, "depth": 20_000_000, "multicolor": 200_000_000}


@pytest.mark.parametrize("kind, name, size, message", [
    ("split", "huge.glb", 200_000_001, "huge.glb is 200.0 MB; Hitem3D accepts at most 200 MB for Split"),
    ("depth", "poster.png", 20_000_001, "poster.png is 20.0 MB; Hitem3D accepts at most 20 MB for Depth"),
    # 20 MiB is over the decimal limit.
    ("depth", "mib.png", 20 * 1024 * 1024, "mib.png is 21.0 MB; Hitem3D accepts at most 20 MB for Depth"),
])
def test_an_upload_over_its_kinds_limit_is_refused_before_reading_it(tmp_path: Path, kind: str, name: str,
                                                                    size: int, message: str) -> None:
    big = tmp_path / name
    with big.open("wb") as file:  # sparse: nothing is written but the size
        file.truncate(size)

    with pytest.raises(Hitem3DError, match=message):
        validate(KindRequest(kind, source_path=str(big)))


def test_a_mesh_in_another_format_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "chair.fbx"
    path.write_bytes(b"fbx")
    with pytest.raises(Hitem3DError, match="is not a GLB, STL, OBJ file"):
        validate(KindRequest("segmentation", source_path=str(path)))


def test_a_request_without_a_source_is_refused() -> None:
    with pytest.raises(InvalidSubmission, match="needs a mesh"):
        validate(KindRequest("split"))
    with pytest.raises(InvalidSubmission, match="needs a picture"):
        validate(KindRequest("depth"))


def test_form_fields_follow_the_table_order_with_defaults() -> None:
    # Every required field with its documented default: joint is ball.
    assert form_fields(KindRequest("split", source_path="x.glb")) == [
        ("model", "character"), ("part", "a"), ("joint", "ball"), ("format", "2")]
    assert form_fields(KindRequest("split", {"model": "general"}, source_path="x.glb")) == [
        ("model", "general"), ("level", "medium"), ("format", "2")]
    assert form_fields(KindRequest("segmentation", source_path="x.glb")) == [("seg_level", "medium"), ("format", "2")]
    assert form_fields(KindRequest("depth", source_path="x.png")) == [
        ("model_type", "pro"), ("rmbg", "1"), ("format", "2")]


# -- the simulator's failures, as the client sees them ------------------------------------------


def test_too_large_an_upload_is_refused_by_the_service(sim: Hitem3DSimulator, client: Hitem3DClient,
                                                       mesh: Path) -> None:
    sim.max_source_bytes["split"] = 10  # the service's 200 MB, scaled down

    with pytest.raises(ApiError, match="code 10031001"):
        client.submit_kind(KindRequest("split", source_path=str(mesh)))
    assert sim.balance == 1000.0


def test_a_bad_mesh_fails_later_with_the_refund_code(sim: Hitem3DSimulator, client: Hitem3DClient,
                                                     tmp_path: Path) -> None:
    bad = tmp_path / "broken.stl"
    bad.write_bytes(b"solid " + BAD_MESH_MARK)

    task_id = client.submit_kind(KindRequest("split", source_path=str(bad)))
    client.query_task(task_id)  # queueing

    with pytest.raises(GenerationFailed, match="credits are refunded"):
        client.query_task(task_id)
    assert sim.balance == 1000.0


def test_not_enough_credits_for_a_kind(sim: Hitem3DSimulator, client: Hitem3DClient, picture: Path) -> None:
    sim.balance = 5.0
    with pytest.raises(ApiError, match="likely cause: not enough credits"):
        client.submit_kind(KindRequest("depth", source_path=str(picture)))


# -- results on disk ---------------------------------------------------------------------------


def _run(sim: Hitem3DSimulator, client: Hitem3DClient, task_id: str, dest: Path) -> list[TaskUpdate]:
    updates: list[TaskUpdate] = []
    job = ImportJob(task_id=task_id, dest=dest, poll_interval_s=0.01)
    run_import_job(job, client, client.downloads, CancelToken(), updates.append)
    return updates


def test_a_depth_map_is_downloaded_as_png(sim: Hitem3DSimulator, client: Hitem3DClient, tmp_path: Path) -> None:
    sim.add_task(IDS["depth"], ["processing", "success"], glb=depth_png_bytes(), extension="png")

    updates = _run(sim, client, IDS["depth"], tmp_path / "task-1.glb")

    assert updates[-1].state is TaskState.DOWNLOADED
    assert updates[-1].result_path == str(tmp_path / "task-1.png")
    assert (tmp_path / "task-1.png").read_bytes() == depth_png_bytes()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["task-1.png"]


def test_split_parts_may_come_as_stl(sim: Hitem3DSimulator, client: Hitem3DClient, tmp_path: Path) -> None:
    sim.add_task(IDS["split"], ["success"], glb=stl_bytes(3), extension="stl")

    updates = _run(sim, client, IDS["split"], tmp_path / "task-2.glb")

    assert updates[-1].result_path == str(tmp_path / "task-2.stl")
    check_stl(tmp_path / "task-2.stl")


def test_a_format_the_kind_cannot_import_is_refused(sim: Hitem3DSimulator, client: Hitem3DClient,
                                                    tmp_path: Path) -> None:
    sim.add_task(IDS["multicolor"], ["success"], glb=b"3mf", extension="3mf")

    updates = _run(sim, client, IDS["multicolor"], tmp_path / "task-3.glb")

    assert updates[-1].state is TaskState.FAILED
    assert str(updates[-1].message) == "The task's result is 3MF, not GLB: generate it again with GLB output"
    assert list(tmp_path.iterdir()) == []


def test_a_cached_result_of_any_importable_format_is_found(tmp_path: Path) -> None:
    dest = tmp_path / "task-4.glb"
    assert cached_result(dest, task_kinds.DEPTH) is None
    (tmp_path / "task-4.png").write_bytes(b"not a png")  # damaged: not a result
    assert cached_result(dest, task_kinds.DEPTH) is None
    (tmp_path / "task-4.png").write_bytes(depth_png_bytes())
    assert cached_result(dest, task_kinds.DEPTH) == tmp_path / "task-4.png"
    assert cached_result(dest, task_kinds.SPLIT) is None


def test_a_truncated_stl_is_not_a_result(tmp_path: Path) -> None:
    path = tmp_path / "parts.stl"
    path.write_bytes(stl_bytes(4)[:-10])
    with pytest.raises(Exception, match="incomplete"):
        check_stl(path)


# -- the journal's view ------------------------------------------------------------------------


def test_a_request_survives_the_journal_without_its_link() -> None:
    request = KindRequest("depth", {"rmbg": "0"}, source_path="/p/coin.png", source_name="coin",
                          relief_height=0.4).with_source_url("https://cdn/x.png?auth_key=secret")

    saved = request.to_dict()

    assert "secret" not in repr(saved) and "secret" not in repr(request)
    assert KindRequest.from_dict(saved) == KindRequest("depth", {"rmbg": "0"}, source_path="/p/coin.png",
                                                       source_name="coin", relief_height=0.4)


@pytest.mark.parametrize("saved", [
    {}, {"kind": "teleport"}, {"kind": 3}, {"model": "hitem3dv2.1", "request_type": 3},
])
def test_what_is_not_a_kind_request_reads_as_none(saved: dict[str, object]) -> None:
    assert KindRequest.from_dict(saved) is None


def test_a_damaged_request_keeps_what_is_usable() -> None:
    request = KindRequest.from_dict({"kind": "split", "values": {"part": "b", "joint": ["x"]}, "source_path": 5,
                                     "relief_height": 1e9})

    assert request == KindRequest("split", {"part": "b"})


def _exr(width: int, height: int) -> bytes:
    """An OpenEXR header (no pixels): a channel list, then the data window."""
    def attribute(name: bytes, kind: bytes, value: bytes) -> bytes:
        return name + b"\0" + kind + b"\0" + struct.pack("<i", len(value)) + value
    return (b"\x76\x2f\x31\x01" + struct.pack("<I", 2) + attribute(b"channels", b"chlist", b"Y\0" + b"\0" * 17)
            + attribute(b"dataWindow", b"box2i", struct.pack("<4i", 0, 0, width - 1, height - 1)) + b"\0")


def test_depth_maps_of_a_usable_size_pass(tmp_path: Path) -> None:
    (tmp_path / "d.png").write_bytes(depth_png_bytes(40, 20))
    (tmp_path / "d.exr").write_bytes(_exr(2048, 1024))
    check_png(tmp_path / "d.png")
    check_exr(tmp_path / "d.exr")


@pytest.mark.parametrize("name, data", [
    ("big.png", b"\x89PNG\r\n\x1a\n" + struct.pack(">I", 13) + b"IHDR" + struct.pack(">II", 60000, 100)),
    ("big.exr", _exr(100, 70000)),
    ("empty.png", b"\x89PNG\r\n\x1a\n" + struct.pack(">I", 13) + b"IHDR" + struct.pack(">II", 0, 10)),
])
def test_a_depth_map_too_large_to_displace_with_is_refused(tmp_path: Path, name: str, data: bytes) -> None:
    path = tmp_path / name
    path.write_bytes(data)
    with pytest.raises(BadResultFile, match="pixels; at most 16384 a side"):
        (check_png if name.endswith(".png") else check_exr)(path)


def test_an_exr_without_a_data_window_is_not_a_depth_map(tmp_path: Path) -> None:
    path = tmp_path / "odd.exr"
    path.write_bytes(b"\x76\x2f\x31\x01" + b"\0" * 40)
    with pytest.raises(BadResultFile, match="not an EXR file"):
        check_exr(path)
