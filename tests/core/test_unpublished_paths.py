"""Query paths Hitem3D has not published (split, segmentation, multicolour):
asked at the kind's own path, then at the documented query-task, and a task
neither knows is kept as created, never failed (against the simulator's
modes for each such path; no Blender)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from hitem3d_blender.core.api import Hitem3DClient
from hitem3d_blender.core.cancel import CancelToken
from hitem3d_blender.core.errors import ApiError, GenerationFailed, NotFollowable, TaskNotFound
from hitem3d_blender.core.kind_requests import KindRequest
from hitem3d_blender.core.pipeline import ImportJob, run_import_job
from hitem3d_blender.core.tasks import TaskState, TaskUpdate
from tests.support.glb_factory import minimal_glb_bytes
from tests.support.simulator import API, GENERIC_ONLY, UNSERVED, Fault, Hitem3DSimulator

IDS = {
    "split": "split_8f1c2d3e4b5a69788796a5b4c3d2e1f0",
    "segmentation": "segmentation_0a1b2c3d4e5f60718293a4b5c6d7e8f9",
    "multicolor": "multicolor_1234567890abcdef1234567890abcdef",
}
OWN = {
    "split": f"{API}/split/query-task",
    "segmentation": f"{API}/segmentation/query-task",
    "multicolor": f"{API}/muilticolor/query-task",
}
GENERIC = f"{API}/query-task"
DEPTH_ID = "depth_77aa66bb55cc44dd33ee22ff11009988"
IMAGE_ID = "2c2ad20cb3204697ba7f80351c3e8606.jjewelry-aigc-api.1NraEb5ohU"


def paths(sim: Hitem3DSimulator) -> list[str]:
    return [r.path for r in sim.requests if r.method == "GET" and r.path != f"{API}/auth/token"]


def follow(client: Hitem3DClient, task_id: str, tmp_path: Path) -> list[TaskUpdate]:
    updates: list[TaskUpdate] = []
    run_import_job(ImportJob(task_id, tmp_path / "result.glb", poll_interval_s=0.01, timeout_s=10.0),
                   client, client.downloads, CancelToken(), updates.append)
    return updates


@pytest.mark.parametrize("kind", sorted(IDS))
def test_a_path_served_as_guessed_is_asked_once_a_poll(sim: Hitem3DSimulator, client: Hitem3DClient,
                                                       kind: str) -> None:
    sim.add_task(IDS[kind], ["processing", "success"])

    assert client.query_task(IDS[kind]).state == "processing"
    assert client.query_task(IDS[kind]).state == "success"

    assert paths(sim) == [OWN[kind]] * 2


@pytest.mark.parametrize("kind", sorted(IDS))
def test_a_kind_served_only_at_query_task_is_followed_there(sim: Hitem3DSimulator, client: Hitem3DClient,
                                                            kind: str, tmp_path: Path) -> None:
    sim.query_routes[kind] = GENERIC_ONLY
    sim.add_task(IDS[kind], ["processing", "processing", "success"])

    updates = follow(client, IDS[kind], tmp_path)

    assert updates[-1].state is TaskState.DOWNLOADED
    # The own path once (not there), then query-task, and from then on query-task only.
    assert paths(sim)[:4] == [OWN[kind], GENERIC, GENERIC, GENERIC]


@pytest.mark.parametrize("kind", sorted(IDS))
def test_a_task_no_path_answers_for_is_kept_as_created_not_failed(sim: Hitem3DSimulator, client: Hitem3DClient,
                                                                  kind: str, tmp_path: Path) -> None:
    sim.query_routes[kind] = UNSERVED
    sim.add_task(IDS[kind], ["processing", "success"])

    with pytest.raises(NotFollowable) as info:
        client.query_task(IDS[kind])
    updates = follow(client, IDS[kind], tmp_path)

    message = str(info.value)
    assert message.startswith("Created on Hitem3D: this version cannot follow it yet")
    assert "API base URL" not in message and "failed" not in message.lower()
    assert [update.state for update in updates] == [TaskState.UNFOLLOWED]  # at once: no retries
    assert updates[-1].message == info.value.message
    assert paths(sim)[:2] == [OWN[kind], GENERIC]


def test_a_guessed_path_that_does_not_know_the_task_falls_back_too(sim: Hitem3DSimulator,
                                                                   client: Hitem3DClient) -> None:
    # The own path answers, but "no such task", for a task query-task knows.
    sim.query_routes["segmentation"] = GENERIC_ONLY
    sim.add_task(IDS["segmentation"], ["success"])
    sim.inject(OWN["segmentation"], Fault.json({"code": 40040000, "msg": "task not exist", "data": {}}))

    assert client.query_task(IDS["segmentation"]).state == "success"
    assert paths(sim) == [OWN["segmentation"], GENERIC]


def test_a_documented_path_that_does_not_know_the_task_says_so(sim: Hitem3DSimulator,
                                                               client: Hitem3DClient) -> None:
    with pytest.raises(TaskNotFound):
        client.query_task(DEPTH_ID)
    assert paths(sim) == [f"{API}/depth/query-task"]  # a documented path's answer stands


def test_a_documented_path_not_served_falls_back_to_query_task(sim: Hitem3DSimulator,
                                                               client: Hitem3DClient) -> None:
    sim.add_task(DEPTH_ID, ["success"])
    sim.inject(f"{API}/depth/query-task", Fault.status(404, b"<html>Not Found</html>"))

    with pytest.raises(NotFollowable):  # this simulator's query-task knows only image-to-3D tasks
        client.query_task(DEPTH_ID)
    assert paths(sim) == [f"{API}/depth/query-task", GENERIC]


def test_the_refund_code_at_query_task_is_still_a_failure_of_its_kind(sim: Hitem3DSimulator,
                                                                      client: Hitem3DClient) -> None:
    sim.query_routes["split"] = GENERIC_ONLY
    sim.add_task(IDS["split"], [{"code": 5001001, "msg": "generate failed", "data": {}}])

    with pytest.raises(GenerationFailed, match="try another mesh"):
        client.query_task(IDS["split"])


def test_an_image_task_at_a_wrong_base_url_still_says_check_the_base_url(sim: Hitem3DSimulator,
                                                                         client: Hitem3DClient) -> None:
    sim.inject(GENERIC, Fault.status(404, b"<html>nginx</html>"))
    with pytest.raises(ApiError, match="check the API base URL"):
        client.query_task(IMAGE_ID)


def test_a_create_path_not_served_spends_nothing_and_blames_the_guess(sim: Hitem3DSimulator,
                                                                     client: Hitem3DClient, tmp_path: Path) -> None:
    sim.unserved_creates.add("multicolor")
    mesh = tmp_path / "Chair.glb"
    mesh.write_bytes(minimal_glb_bytes())

    with pytest.raises(ApiError) as info:
        client.submit_kind(KindRequest("multicolor", source_path=str(mesh)))

    assert str(info.value) == ("Hitem3D does not offer Multicolour at the path this version knows (HTTP 404): "
                               "nothing was spent; update the extension")
    assert sim.balance == 1000.0 and sim.submissions == []


def test_a_system_error_at_query_task_for_a_kind_it_does_not_serve_keeps_the_task(
        sim: Hitem3DSimulator, client: Hitem3DClient) -> None:
    # What a service may answer to an ID it cannot place: not a fault to wait out.
    sim.query_routes["split"] = UNSERVED
    sim.add_task(IDS["split"], ["success"])
    sim.inject(GENERIC, Fault.json({"code": 10000000, "msg": "system error", "data": {}}))

    with pytest.raises(NotFollowable):
        client.query_task(IDS["split"])


def test_an_outage_is_waited_out_not_taken_for_an_unserved_path(sim: Hitem3DSimulator, client: Hitem3DClient,
                                                                 tmp_path: Path) -> None:
    sim.add_task(IDS["split"], ["success"])
    sim.inject(OWN["split"], Fault.status(503, b"busy"), times=2)

    updates = follow(client, IDS["split"], tmp_path)

    assert updates[-1].state is TaskState.DOWNLOADED
    assert GENERIC not in paths(sim)


@pytest.mark.parametrize("answer", [
    Fault.json({"code": 200, "msg": "success", "data": None}),  # a success with no task in it
    Fault.json({"code": 200, "msg": "success", "data": {}}),
    Fault.status(405, b"Method Not Allowed"),
    Fault.json({"code": 400, "msg": "bad task_id"}),
])
def test_whatever_query_task_says_of_a_task_it_cannot_place_keeps_the_task(
        sim: Hitem3DSimulator, client: Hitem3DClient, answer: Any) -> None:
    sim.query_routes["multicolor"] = UNSERVED
    sim.add_task(IDS["multicolor"], ["success"])
    sim.inject(GENERIC, answer)

    with pytest.raises(NotFollowable):
        client.query_task(IDS["multicolor"])
