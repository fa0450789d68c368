"""Hitem3DClient.submit_task: the multipart body as sent, the token renewal,
the documented codes, and the whole round trip against the simulator."""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import responses

from hitem3d_blender.core.api import Hitem3DClient
from hitem3d_blender.core.errors import CODE_MESSAGES, LIKELY_CAUSES, ApiError, ServerError
from hitem3d_blender.core.settings import ApiSettings
from hitem3d_blender.core.submission import VIEWS, InvalidSubmission, RequestType, Submission
from tests.support.simulator import Hitem3DSimulator, _parse_multipart
from tests.support.submission_helpers import images, view_png  # noqa: F401 - a fixture

BASE = "https://api.hitem3d.ai"
TOKEN_URL = f"{BASE}/open-api/v1/auth/token"
SUBMIT_URL = f"{BASE}/open-api/v1/submit-task"
QUERY_URL = f"{BASE}/open-api/v1/query-task"
NEW_ID = "0123456789abcdef0123456789abcdef.jjewelry-aigc-api.Q1w2E3r4T5"
OLD_ID = "2c2ad20cb3204697ba7f80351c3e8606.jjewelry-aigc-api.1NraEb5ohU"
# The submit-task code an official page documents, and those only third parties describe.
OFFICIAL_CODES = ["10000000"]
COMMUNITY_CODES = ["30010000"] + [f"100310{n:02d}" for n in range(1, 13)]


@pytest.fixture
def rsps() -> Iterator[responses.RequestsMock]:
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        yield mock


@pytest.fixture
def client() -> Iterator[Hitem3DClient]:
    instance = Hitem3DClient(ApiSettings(BASE, "id", "secret-123", request_timeout_s=5.0))
    yield instance
    instance.close()


def token(rsps: responses.RequestsMock, *tokens: str) -> None:
    for value in tokens:
        rsps.add(responses.POST, TOKEN_URL,
                 json={"code": 200, "message": "success", "data": {"accessToken": value, "tokenType": "Bearer"}})


def accepted(task_id: str = NEW_ID) -> dict[str, Any]:
    return {"code": 200, "msg": "success", "data": {"task_id": task_id}}


def sent(call: Any) -> tuple[dict[str, str], list[tuple[str, str, str, bytes]]]:
    body = call.request.body
    return _parse_multipart(body if isinstance(body, bytes) else body.encode(), call.request.headers["Content-Type"])


def submits(rsps: responses.RequestsMock) -> list[Any]:
    return [call for call in rsps.calls if call.request.url == SUBMIT_URL]


def single(path: str, **changes: Any) -> Submission:
    values: dict[str, Any] = {"model": "hitem3dv2.0", "resolution": "1536pro", "face": 800_000, "image": path}
    values.update(changes)
    return Submission(**values)


# -- the request as sent -------------------------------------------------------------------


def test_single_image_goes_as_multipart_with_bearer_and_glb_format(rsps: responses.RequestsMock,
                                                                   client: Hitem3DClient,
                                                                   images: dict[str, str]) -> None:
    token(rsps, "tok-1")
    rsps.add(responses.POST, SUBMIT_URL, json=accepted())

    assert client.submit_task(single(images["front"])) == NEW_ID

    [call] = submits(rsps)
    assert call.request.headers["Authorization"] == "Bearer tok-1"
    assert call.request.headers["Content-Type"].startswith("multipart/form-data; boundary=")
    fields, files = sent(call)
    assert fields == {"request_type": "3", "model": "hitem3dv2.0", "resolution": "1536pro", "format": "2",
                      "face": "800000", "pbr": "1"}
    # The picture alone: a neutral file name, not the artist's.
    assert files == [("images", "image.png", "image/png", view_png("front"))]


@pytest.mark.parametrize("views", [combo for n in range(1, 5) for combo in itertools.combinations(VIEWS, n)
                                   if "front" in combo], ids="-".join)
def test_views_go_as_repeated_multi_images_in_order(rsps: responses.RequestsMock, client: Hitem3DClient,
                                                    images: dict[str, str], views: tuple[str, ...]) -> None:
    token(rsps, "tok-1")
    rsps.add(responses.POST, SUBMIT_URL, json=accepted())

    client.submit_task(single("", views={view: images[view] for view in views}))

    fields, files = sent(submits(rsps)[0])
    assert fields["multi_images_bit"] == "".join("1" if view in views else "0" for view in VIEWS)
    assert [(name, filename, data) for name, filename, _, data in files] == [
        ("multi_images", f"{view}.png", view_png(view)) for view in VIEWS if view in views
    ]


def test_a_401_gets_a_new_token_and_sends_the_files_again(rsps: responses.RequestsMock, client: Hitem3DClient,
                                                          images: dict[str, str]) -> None:
    token(rsps, "tok-old", "tok-new")
    rsps.add(responses.POST, SUBMIT_URL, json={"code": 401, "msg": "Unauthorized"}, status=401)
    rsps.add(responses.POST, SUBMIT_URL, json=accepted())

    assert client.submit_task(single("", views={"front": images["front"], "right": images["right"]})) == NEW_ID

    first, second = submits(rsps)
    assert second.request.headers["Authorization"] == "Bearer tok-new"
    assert sent(first) == sent(second)
    assert [filename for _, filename, _, _ in sent(second)[1]] == ["front.png", "right.png"]
    assert all(data for _, _, _, data in sent(second)[1])


def test_a_problem_found_locally_sends_nothing(rsps: responses.RequestsMock, client: Hitem3DClient,
                                               images: dict[str, str]) -> None:
    with pytest.raises(InvalidSubmission):
        client.submit_task(single(images["front"], resolution="2048master"))
    assert len(rsps.calls) == 0


def test_texturing_asks_for_a_fresh_model_url_first(rsps: responses.RequestsMock, client: Hitem3DClient,
                                                    images: dict[str, str]) -> None:
    mesh_url = "https://cdn.example/target//original/0.glb?auth_key=1-2-0-abc"
    token(rsps, "tok-1")
    rsps.add(responses.GET, QUERY_URL, json={"code": 200, "msg": "success",
                                             "data": {"task_id": OLD_ID, "state": "success", "url": mesh_url}})
    rsps.add(responses.POST, SUBMIT_URL, json=accepted())
    submission = Submission("hi3dv3.0", "2048quality", request_type=RequestType.TEXTURE_MESH,
                            image=images["front"], mesh_task_id=OLD_ID)

    client.submit_task(submission)

    assert [urlsplit(call.request.url).path.rsplit("/", 1)[1] for call in rsps.calls] == [
        "token", "query-task", "submit-task"]
    fields, files = sent(submits(rsps)[0])
    assert fields["request_type"] == "2" and fields["mesh_url"] == mesh_url
    assert "face" not in fields and len(files) == 1


def test_an_answer_without_task_id_is_an_error(rsps: responses.RequestsMock, client: Hitem3DClient,
                                               images: dict[str, str]) -> None:
    token(rsps, "tok-1")
    rsps.add(responses.POST, SUBMIT_URL, json={"code": 200, "msg": "success", "data": {}})
    with pytest.raises(ApiError) as caught:
        client.submit_task(single(images["front"]))
    assert "no task ID" in str(caught.value)


# -- documented codes ----------------------------------------------------------------------------


@pytest.mark.parametrize("code", OFFICIAL_CODES)
def test_each_documented_submit_code_has_our_message(rsps: responses.RequestsMock, client: Hitem3DClient,
                                                     images: dict[str, str], code: str) -> None:
    token(rsps, "tok-1")
    rsps.add(responses.POST, SUBMIT_URL, json={"code": int(code), "msg": "model x not found", "data": {}})
    with pytest.raises((ApiError, ServerError)) as caught:
        client.submit_task(single(images["front"]))
    assert str(caught.value) == f"{CODE_MESSAGES[code]} (code {code})"
    assert caught.value.code == code


@pytest.mark.parametrize("code", COMMUNITY_CODES)
def test_a_code_only_third_parties_describe_shows_hitem3d_s_words_and_ours_as_a_likely_cause(
        rsps: responses.RequestsMock, client: Hitem3DClient, images: dict[str, str], code: str) -> None:
    token(rsps, "tok-1")
    # A number or a string, and words that would read as "no such task": our reading still applies.
    rsps.add(responses.POST, SUBMIT_URL, json={"code": code if code.endswith("1") else int(code),
                                               "msg": "task not found", "data": {}})
    with pytest.raises(ApiError) as caught:
        client.submit_task(single(images["front"]))
    assert str(caught.value) == f"Hitem3D answered: task not found (code {code}); likely cause: {LIKELY_CAUSES[code]}"
    assert caught.value.code == code


def test_only_the_official_pages_codes_are_worded_as_facts() -> None:
    assert set(CODE_MESSAGES) == set(OFFICIAL_CODES)
    assert set(LIKELY_CAUSES) == set(COMMUNITY_CODES)


def test_out_of_credits_tells_the_user_to_top_up(rsps: responses.RequestsMock, client: Hitem3DClient,
                                                 images: dict[str, str]) -> None:
    token(rsps, "tok-1")
    rsps.add(responses.POST, SUBMIT_URL, json={"code": 30010000, "msg": "balance is not enough", "data": {}})
    with pytest.raises(ApiError) as caught:
        client.submit_task(single(images["front"]))
    # Only third parties describe 30010000: the server's words first, ours as a likely cause.
    assert str(caught.value) == ("Hitem3D answered: balance is not enough (code 30010000); likely cause: not enough "
                                 "credits: top up on the Hitem3D platform, then refresh the balance and try again")
    assert caught.value.code == "30010000"


def test_an_unknown_code_is_shown_verbatim(rsps: responses.RequestsMock, client: Hitem3DClient,
                                           images: dict[str, str]) -> None:
    token(rsps, "tok-1")
    rsps.add(responses.POST, SUBMIT_URL, json={"code": 10031099, "msg": "image too dark", "data": {}})
    with pytest.raises(ApiError) as caught:
        client.submit_task(single(images["front"]))
    assert str(caught.value) == "Hitem3D answered: image too dark (code 10031099)"


# -- against the simulator ------------------------------------------------------------------------


def sim_client(sim: Hitem3DSimulator) -> Hitem3DClient:
    return Hitem3DClient(ApiSettings(sim.base_url, sim.client_id, sim.client_secret, request_timeout_s=5.0))


def test_the_simulator_accepts_what_we_send_and_makes_a_glb_task(sim: Hitem3DSimulator,
                                                                images: dict[str, str]) -> None:
    sim.default_states = ("success",)
    client = sim_client(sim)
    try:
        task_id = client.submit_task(single("", views={"front": images["front"], "left": images["left"]}))
        status = client.query_task(task_id)
    finally:
        client.close()
    [recorded] = sim.submissions
    assert recorded.task_id == task_id
    assert recorded.fields["multi_images_bit"] == "1010" and recorded.fields["format"] == "2"
    assert [filename for _, filename, _, _ in recorded.files] == ["front.png", "left.png"]
    assert status.model_url is not None and urlsplit(status.model_url).path.endswith(".glb")


def test_the_simulator_out_of_credits_answer_reaches_the_user(sim: Hitem3DSimulator,
                                                               images: dict[str, str]) -> None:
    sim.balance = 5.0
    client = sim_client(sim)
    try:
        with pytest.raises(ApiError) as caught:
            client.submit_task(single(images["front"]))
        assert client.balance() == 5.0
    finally:
        client.close()
    assert "top up" in str(caught.value) and sim.submissions == []


@pytest.mark.parametrize("sent_id", ["2c2ad20cb3204697ba7f8035\u202eevil.exe", "2c2ad20c\x1b]0;pwned\x07",
                                     "2c2ad20cb32046\nInjected line", "2c2ad20c" * 2500, "../../../etc/passwd"],
                         ids=["rtl-override", "escape", "newline", "20-kb", "path"])
def test_a_task_id_hitem3d_sends_back_is_checked_like_a_pasted_one(rsps: responses.RequestsMock,
                                                                   client: Hitem3DClient, images: dict[str, str],
                                                                   sent_id: str) -> None:
    """Issue 21.9: the ID of a new task reached the sidebar, the journal and
    the asset's metadata as it came."""
    token(rsps, "tok-1")
    rsps.add(responses.POST, SUBMIT_URL, json={"code": 200, "msg": "success", "data": {"task_id": sent_id}})
    with pytest.raises(ApiError) as caught:
        client.submit_task(single(images["front"]))
    text = str(caught.value)
    assert text.startswith("Hitem3D sent a task ID that is not one (") and text.endswith(
        "): check your tasks on the Hitem3D platform before sending again")
    assert sent_id[8:] not in text and len(text) < 200
