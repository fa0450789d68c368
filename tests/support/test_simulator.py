"""Tests of the Hitem3D simulator itself, with plain `requests`: they keep it honest."""

from __future__ import annotations

import base64
import http.client
import re
import struct
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import requests

from tests.support.glb_factory import make_glb, make_webp, minimal_glb_bytes
from tests.support.simulator import (API, CODE_TOO_MANY_TASKS, DOCUMENTED_MAX_RUNNING, MAX_IMAGE_BYTES, Fault,
                                     Hitem3DSimulator)

TIMEOUT = 5.0
PNG = b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 4  # content is never decoded


@pytest.fixture
def sim() -> Iterator[Hitem3DSimulator]:
    with Hitem3DSimulator() as simulator:
        yield simulator


@pytest.fixture
def bearer(sim: Hitem3DSimulator) -> dict[str, str]:
    return {"Authorization": f"Bearer {sim.issue_token()}"}


def url(sim: Hitem3DSimulator, route: str) -> str:
    return f"{sim.base_url}{API}/{route}"


def basic(client_id: str, secret: str) -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(f"{client_id}:{secret}".encode()).decode()}


def query(sim: Hitem3DSimulator, headers: dict[str, str], task_id: str) -> dict[str, Any]:
    response = requests.get(url(sim, "query-task"), params={"task_id": task_id}, headers=headers, timeout=TIMEOUT)
    assert response.status_code == 200
    return response.json()


def raw_get(full_url: str) -> tuple[http.client.HTTPResponse, http.client.HTTPConnection]:
    """http.client shows what requests hides: the partial body of an incomplete read."""
    parts = urlsplit(full_url)
    connection = http.client.HTTPConnection(parts.hostname or "", parts.port, timeout=TIMEOUT)
    connection.request("GET", f"{parts.path}?{parts.query}")
    return connection.getresponse(), connection


def success_urls(sim: Hitem3DSimulator, headers: dict[str, str], **task: Any) -> tuple[str, str]:
    sim.add_task("t-done", ["success"], **task)
    data = query(sim, headers, "t-done")["data"]
    return data["url"], data["cover_url"]


# ---- authentication ----


def test_token_issued_for_valid_credentials(sim: Hitem3DSimulator) -> None:
    response = requests.post(url(sim, "auth/token"), headers=basic("sim-client-id", "sim-client-secret"), timeout=5)
    body = response.json()
    assert response.status_code == 200
    assert body["code"] == 200 and body["message"] == "success"
    assert body["data"]["tokenType"] == "Bearer" and body["data"]["nonce"]
    token = body["data"]["accessToken"]
    balance = requests.get(url(sim, "balance"), headers={"Authorization": f"Bearer {token}"}, timeout=TIMEOUT)
    assert balance.json()["code"] == 200
    assert sim.requests[0].header("authorization") == basic("sim-client-id", "sim-client-secret")["Authorization"]


@pytest.mark.parametrize(
    "headers",
    [basic("sim-client-id", "wrong"), basic("someone", "sim-client-secret"), {}, {"Authorization": "Basic !!!"}],
)
def test_token_refused_for_bad_credentials(sim: Hitem3DSimulator, headers: dict[str, str]) -> None:
    response = requests.post(url(sim, "auth/token"), headers=headers, timeout=TIMEOUT)
    assert response.status_code == 200
    assert response.json() == {"code": 40010000, "msg": "client credentials are invalid", "data": {}}


@pytest.mark.parametrize(
    "headers", [{}, {"Authorization": "Bearer not-a-token"}, basic("sim-client-id", "sim-client-secret")]
)
def test_bearer_token_required(sim: Hitem3DSimulator, headers: dict[str, str]) -> None:
    response = requests.get(url(sim, "balance"), headers=headers, timeout=TIMEOUT)
    assert response.status_code == 401
    assert response.json() == {"code": 401, "msg": "Unauthorized"}


@pytest.mark.parametrize(("style", "status"), [("http", 401), ("code", 200)])
def test_expire_tokens_gives_401_in_both_styles(style: str, status: int) -> None:
    with Hitem3DSimulator(auth_failure_style=style) as sim:  # type: ignore[arg-type]
        headers = {"Authorization": f"Bearer {sim.issue_token()}"}
        assert requests.get(url(sim, "balance"), headers=headers, timeout=TIMEOUT).status_code == 200
        sim.expire_tokens()
        response = requests.get(url(sim, "balance"), headers=headers, timeout=TIMEOUT)
        assert response.status_code == status
        assert response.json() == {"code": 401, "msg": "Unauthorized"}


def test_token_lifetime() -> None:
    with Hitem3DSimulator(token_lifetime_s=0.2) as sim:
        headers = {"Authorization": f"Bearer {sim.issue_token()}"}
        time.sleep(0.3)
        assert requests.get(url(sim, "balance"), headers=headers, timeout=TIMEOUT).status_code == 401


# ---- query-task and downloads ----


def test_state_sequence_advances_and_repeats_last(sim: Hitem3DSimulator, bearer: dict[str, str]) -> None:
    sim.add_task("t1", ["created", {"state": "processing", "progress": 40}, "SUCCESS"])
    answers = [query(sim, bearer, "t1") for _ in range(4)]
    assert [a["data"]["state"] for a in answers] == ["created", "processing", "SUCCESS", "SUCCESS"]
    assert answers[0] == {"code": 200, "msg": "success", "data": {"task_id": "t1", "state": "created"}}
    assert answers[1]["data"]["progress"] == 40 and "url" not in answers[1]["data"]
    done = answers[2]["data"]
    assert done["id"] == "t1_0" and done["url"] and done["cover_url"]
    assert answers[3]["data"]["url"] == done["url"]


def test_code_entry_replaces_the_answer(sim: Hitem3DSimulator, bearer: dict[str, str]) -> None:
    failure = {"code": 50010001, "msg": "generate failed", "data": {}}
    sim.add_task("t1", ["queueing", failure])
    assert query(sim, bearer, "t1")["data"]["state"] == "queueing"
    assert query(sim, bearer, "t1") == failure
    assert query(sim, bearer, "t1") == failure


def test_unknown_task(sim: Hitem3DSimulator, bearer: dict[str, str]) -> None:
    assert query(sim, bearer, "nope")["code"] == 40040000


def test_success_urls_download_exact_bytes_without_auth(
    sim: Hitem3DSimulator, bearer: dict[str, str], tmp_path: Path
) -> None:
    model = tmp_path / "big.glb"
    model.write_bytes(minimal_glb_bytes() + bytes(300_000))
    task_id = "2c2ad20cb3204697ba7f80351c3e8606.jjewelry-aigc-api.1NraEb5ohU"
    sim.add_task(task_id, ["success"], glb=model, cover=b"RIFF....WEBP")
    data = query(sim, bearer, task_id)["data"]
    assert data["task_id"] == task_id and data["id"] == f"{task_id}_0"
    assert re.fullmatch(r"http://127\.0\.0\.1:\d+/files/[0-9a-f]{32}/target//original/0\.glb\?auth_key=\S+", data["url"])
    assert re.fullmatch(r".+/files/[0-9a-f]{32}/target/cover/webp/0\.webp\?auth_key=\S+", data["cover_url"])

    glb = requests.get(data["url"], timeout=TIMEOUT)
    assert glb.status_code == 200 and glb.content == model.read_bytes()
    assert glb.headers["Content-Length"] == str(model.stat().st_size)
    assert glb.headers["Content-Type"] == "application/octet-stream"
    cover = requests.get(data["cover_url"], timeout=TIMEOUT)
    assert (cover.content, cover.headers["Content-Type"]) == (b"RIFF....WEBP", "image/webp")
    assert sim.auth_on_files == [] and sim.count("/files/", "GET") == 2


def test_extension_follows_task(sim: Hitem3DSimulator, bearer: dict[str, str]) -> None:
    model_url, _ = success_urls(sim, bearer, extension="obj")
    assert urlsplit(model_url).path.endswith("/target//original/0.obj")


def test_file_signature_is_checked(sim: Hitem3DSimulator, bearer: dict[str, str]) -> None:
    model_url, _ = success_urls(sim, bearer)
    assert requests.get(model_url.split("?")[0], timeout=TIMEOUT).status_code == 403
    assert requests.get(f"{sim.base_url}/files/{'0' * 32}/x.glb", timeout=TIMEOUT).status_code == 404


def test_auth_header_on_files_is_recorded_and_can_be_rejected(
    sim: Hitem3DSimulator, bearer: dict[str, str]
) -> None:
    model_url, _ = success_urls(sim, bearer)
    assert requests.get(model_url, headers=bearer, timeout=TIMEOUT).status_code == 200
    assert [r.header("Authorization") for r in sim.auth_on_files] == [bearer["Authorization"]]
    sim.reject_auth_on_files = True
    assert requests.get(model_url, headers=bearer, timeout=TIMEOUT).status_code == 400
    assert requests.get(model_url, timeout=TIMEOUT).status_code == 200


def test_expire_urls_then_query_gives_fresh_urls(sim: Hitem3DSimulator, bearer: dict[str, str]) -> None:
    old_model, old_cover = success_urls(sim, bearer)
    sim.expire_urls()
    assert requests.get(old_model, timeout=TIMEOUT).status_code == 403
    assert requests.get(old_cover, timeout=TIMEOUT).status_code == 403
    data = query(sim, bearer, "t-done")["data"]
    assert data["url"] != old_model
    assert requests.get(data["url"], timeout=TIMEOUT).content == minimal_glb_bytes()
    assert requests.get(data["cover_url"], timeout=TIMEOUT).status_code == 200


def test_file_rate_limit(sim: Hitem3DSimulator, bearer: dict[str, str]) -> None:
    model_url, _ = success_urls(sim, bearer, glb=bytes(30_000))
    sim.file_rate_limit = 100_000
    started = time.monotonic()
    assert len(requests.get(model_url, timeout=TIMEOUT).content) == 30_000
    assert time.monotonic() - started >= 0.25


# ---- faults ----


def test_status_fault_is_one_shot(sim: Hitem3DSimulator, bearer: dict[str, str]) -> None:
    sim.inject(f"{API}/balance", Fault.status(503, b"busy", {"Retry-After": "2"}), times=2)
    for _ in range(2):
        response = requests.get(url(sim, "balance"), headers=bearer, timeout=TIMEOUT)
        assert (response.status_code, response.headers["Retry-After"], response.content) == (503, "2", b"busy")
    assert requests.get(url(sim, "balance"), headers=bearer, timeout=TIMEOUT).status_code == 200
    assert sim.pending_faults == 0


def test_faults_match_by_prefix_in_order(sim: Hitem3DSimulator, bearer: dict[str, str]) -> None:
    sim.inject(f"{API}/query-task", Fault.json({"code": "200", "message": "odd"}))
    sim.inject(f"{API}/query-task", Fault.raw(b"{not json", "application/json"))
    sim.inject("/files/", Fault.raw(b"<html>oops</html>", "text/html"))
    assert requests.get(url(sim, "balance"), headers=bearer, timeout=TIMEOUT).json()["code"] == 200
    assert query(sim, bearer, "x") == {"code": "200", "message": "odd"}
    response = requests.get(url(sim, "query-task"), params={"task_id": "x"}, headers=bearer, timeout=TIMEOUT)
    assert response.content == b"{not json"
    assert sim.pending_faults == 1


def test_truncate_gives_a_short_body(sim: Hitem3DSimulator, bearer: dict[str, str]) -> None:
    model_url, _ = success_urls(sim, bearer, glb=bytes(100_000))
    sim.inject("/files/", Fault.truncate(1000), times=2)
    with pytest.raises(requests.exceptions.ChunkedEncodingError):
        requests.get(model_url, timeout=TIMEOUT)
    response, connection = raw_get(model_url)
    assert response.getheader("Content-Length") == "100000"
    with pytest.raises(http.client.IncompleteRead) as caught:
        response.read()
    assert len(caught.value.partial) == 1000
    connection.close()


def test_reset_breaks_the_connection(sim: Hitem3DSimulator, bearer: dict[str, str]) -> None:
    model_url, _ = success_urls(sim, bearer, glb=bytes(100_000))
    sim.inject("/files/", Fault.reset(500))
    with pytest.raises((requests.ConnectionError, requests.exceptions.ChunkedEncodingError)):
        requests.get(model_url, timeout=TIMEOUT)
    assert requests.get(model_url, timeout=TIMEOUT).status_code == 200


def test_delay_is_measurable(sim: Hitem3DSimulator, bearer: dict[str, str]) -> None:
    sim.inject(f"{API}/balance", Fault.delay(0.4))
    started = time.monotonic()
    assert requests.get(url(sim, "balance"), headers=bearer, timeout=TIMEOUT).json()["code"] == 200
    assert time.monotonic() - started >= 0.4


def test_stall_then_close(sim: Hitem3DSimulator, bearer: dict[str, str]) -> None:
    model_url, _ = success_urls(sim, bearer, glb=bytes(50_000))
    sim.inject("/files/", Fault.stall(2000, 0.4), times=2)
    started = time.monotonic()
    response, connection = raw_get(model_url)
    with pytest.raises(http.client.IncompleteRead) as caught:
        response.read()
    assert len(caught.value.partial) == 2000 and time.monotonic() - started >= 0.4
    connection.close()
    with pytest.raises(requests.ConnectionError):  # a read timeout shorter than the stall
        requests.get(model_url, timeout=(TIMEOUT, 0.1))


def test_stall_does_not_block_others_nor_stop() -> None:
    sim = Hitem3DSimulator().start()
    bearer = {"Authorization": f"Bearer {sim.issue_token()}"}
    model_url, _ = success_urls(sim, bearer)
    sim.inject("/files/", Fault.stall(10, 30.0))
    outcome: list[BaseException | None] = []

    def download() -> None:
        try:
            requests.get(model_url, timeout=60)
            outcome.append(None)
        except requests.RequestException as exc:
            outcome.append(exc)

    worker = threading.Thread(target=download, daemon=True)
    worker.start()
    deadline = time.monotonic() + TIMEOUT
    while sim.count("/files/") == 0 and time.monotonic() < deadline:
        time.sleep(0.01)
    assert requests.get(url(sim, "balance"), headers=bearer, timeout=1.0).status_code == 200
    started = time.monotonic()
    sim.stop()
    assert time.monotonic() - started < 1.0
    worker.join(timeout=2.0)
    assert len(outcome) == 1 and outcome[0] is not None  # the stalled download failed, promptly
    sim.stop()  # idempotent


def test_content_length_fault_announces_more_than_sent(sim: Hitem3DSimulator, bearer: dict[str, str]) -> None:
    model_url, _ = success_urls(sim, bearer)
    sim.inject("/files/", Fault.content_length(10**11), times=2)
    response, connection = raw_get(model_url)
    assert response.getheader("Content-Length") == str(10**11)
    received = b""
    while chunk := response.read(65536):  # read(n) returns short at EOF instead of raising
        received += chunk
    assert received == minimal_glb_bytes() and response.length == 10**11 - len(received)
    connection.close()
    with pytest.raises(requests.exceptions.ChunkedEncodingError):
        requests.get(model_url, timeout=TIMEOUT)


# ---- submit-task and balance ----

FIELDS = {"request_type": "3", "model": "hitem3dv2.0", "resolution": "1536pro", "face": "1000000", "format": "2"}
ONE_IMAGE = [("images", ("front.png", PNG, "image/png"))]


TEXTURE = {"request_type": "2", "model": "hitem3dv1.5", "resolution": "1024"}
GLB = b"glTF" + bytes(60)
MESH = [("mesh", ("chair.glb", GLB, "model/gltf-binary"))]


def views(*names: str) -> list[tuple[str, tuple[str, bytes, str]]]:
    return [("multi_images", (f"{name}.png", PNG + name.encode(), "image/png")) for name in names]


def submit(sim: Hitem3DSimulator, headers: dict[str, str], fields: dict[str, str], files: Any) -> dict[str, Any]:
    response = requests.post(url(sim, "submit-task"), data=fields, files=files, headers=headers, timeout=30)
    assert response.status_code == 200
    return response.json()


@pytest.mark.parametrize(
    ("changes", "files", "code"),
    [
        ({"model": "hitem3dv9"}, ONE_IMAGE, 10031006),
        ({}, ONE_IMAGE + views("front"), 10031007),
        ({}, [], 10031008),
        ({"multi_images_bit": "1111"}, views("f", "b", "l", "r", "x"), 10031009),
        ({"multi_images_bit": "1100"}, views("front"), 10031009),
        ({"multi_images_bit": "0100"}, views("back"), 10000000),
        ({}, [("images", ("front.gif", PNG, "image/gif"))], 10031005),
        ({}, [("images", ("front.png", b"", "image/png"))], 10031010),
        ({}, [("images", ("front.png", bytes(MAX_IMAGE_BYTES + 1), "image/png"))], 10031001),
        ({"face": "99999"}, ONE_IMAGE, 10031002),
        ({"face": "5000000"}, ONE_IMAGE, 10031002),
        ({"resolution": "2048master"}, ONE_IMAGE, 10031003),
        ({"format": "7"}, ONE_IMAGE, 10031004),
        ({"request_type": "2", "model": "hitem3dv1.5", "resolution": "1024"}, ONE_IMAGE, 10031011),
        ({"request_type": "2", "model": "hi3dv3.0", "resolution": "2048quality", "mesh_url": "ftp://x"}, ONE_IMAGE,
         10031012),
        ({**TEXTURE, "model": "hitem3dv2.0", "resolution": "1536pro", "mesh_url": "https://x.example/a.glb"},
         ONE_IMAGE, 10000000),
        # A `mesh` file part is on no official page: it is not a mesh to texture.
        (TEXTURE, ONE_IMAGE + MESH, 10031011),
        # Only a file Hitem3D has: one of its results, or an object in its storage.
        ({**TEXTURE, "mesh_url": "https://elsewhere.example/chair.glb"}, ONE_IMAGE, 10000000),
        (TEXTURE, [], 10031008),
        ({"shading": "1.5"}, ONE_IMAGE, 10000000),
        ({"shading": "none"}, ONE_IMAGE, 10000000),
    ],
)
def test_submit_validation(
    sim: Hitem3DSimulator, bearer: dict[str, str], changes: dict[str, str], files: Any, code: int
) -> None:
    body = submit(sim, bearer, {**FIELDS, **changes}, files)
    assert body["code"] == code and body["msg"]
    assert sim.balance == 1000.0 and sim.submissions == []


def test_submit_single_image(sim: Hitem3DSimulator, bearer: dict[str, str]) -> None:
    fields = {**FIELDS, "model": "hi3dv3.0", "resolution": "2048master", "face": "5000000"}
    body = submit(sim, bearer, fields, ONE_IMAGE)
    assert body["code"] == 200 and body["msg"] == "success"
    task_id = body["data"]["task_id"]
    assert re.fullmatch(r"[0-9a-f]{32}\.jjewelry-aigc-api\.[A-Za-z0-9]{10}", task_id)
    [submission] = sim.submissions
    assert submission.fields == fields and submission.task_id == task_id
    assert submission.files == [("images", "front.png", "image/png", PNG)]
    assert sim.balance == 1000.0 - sim.submit_cost
    states = [query(sim, bearer, task_id)["data"]["state"] for _ in range(4)]
    assert states == ["queueing", "processing", "success", "success"]
    assert requests.get(query(sim, bearer, task_id)["data"]["url"], timeout=TIMEOUT).content == minimal_glb_bytes()


# ---- the object storage: what the vendor's client uploads a mesh to ----


def upload_credentials(sim: Hitem3DSimulator, headers: dict[str, str]) -> dict[str, str]:
    response = requests.get(url(sim, "upload/token"), headers=headers, timeout=TIMEOUT)
    body = response.json()
    assert response.status_code == 200 and body["code"] == 200
    return body["data"]


def sdk_put(sim: Hitem3DSimulator, credentials: dict[str, str], key: str, data: bytes, **changes: Any) -> Any:
    """A PutObject made by Volcengine's own SDK, as the vendor's client makes it."""
    tos = pytest.importorskip("tos")
    values = {"ak": credentials["accessKeyId"], "sk": credentials["secretAccessKey"],
              "security_token": credentials["sessionKey"], "region": "ap-southeast-1"}
    extra = {name: changes.pop(name) for name in list(changes) if name in values}
    values.update(extra)
    client = tos.TosClientV2(values["ak"], values["sk"], sim.storage_url, values["region"],
                             security_token=values["security_token"], is_custom_domain=True, enable_crc=False,
                             max_retry_count=0)
    return client.put_object("mm-sparc3d-prod", key, content=data, **changes)


def test_the_upload_token_needs_a_bearer_token_and_names_three_credentials(sim: Hitem3DSimulator,
                                                                           bearer: dict[str, str]) -> None:
    assert requests.get(url(sim, "upload/token"), timeout=TIMEOUT).status_code == 401
    credentials = upload_credentials(sim, bearer)
    assert set(credentials) == {"accessKeyId", "secretAccessKey", "sessionKey"} and all(credentials.values())


def test_an_object_put_by_volcengines_sdk_is_stored_and_textured_from_its_public_link(
        sim: Hitem3DSimulator, bearer: dict[str, str]) -> None:
    key = "hitem3d-blender/mesh/2026-11-03/chair.glb"
    sdk_put(sim, upload_credentials(sim, bearer), key, GLB)
    assert sim.stored == {key: GLB}
    assert requests.get(sim.public_base + key, timeout=TIMEOUT).content == GLB
    fields = {**FIELDS, **TEXTURE, "shading": "0.5", "mesh_url": sim.public_base + key}
    del fields["face"]
    body = submit(sim, bearer, fields, ONE_IMAGE)
    assert body["code"] == 200
    [submission] = sim.submissions
    assert submission.fields["mesh_url"] == sim.public_base + key
    assert [r.header("Authorization") for r in sim.storage_requests][0].startswith("TOS4-HMAC-SHA256 ")


def test_the_sdk_with_a_signed_payload_hash_is_accepted_and_a_wrong_hash_refused(
        sim: Hitem3DSimulator, bearer: dict[str, str]) -> None:
    import hashlib

    credentials = upload_credentials(sim, bearer)
    sdk_put(sim, credentials, "a.glb", GLB, content_sha256=hashlib.sha256(GLB).hexdigest())
    tos = pytest.importorskip("tos")
    with pytest.raises(tos.exceptions.TosServerError) as caught:
        sdk_put(sim, credentials, "b.glb", GLB, content_sha256="0" * 64)
    assert caught.value.code == "BadDigest" and list(sim.stored) == ["a.glb"]


@pytest.mark.parametrize(("change", "code"), [
    ({"sk": "not-the-secret"}, "SignatureDoesNotMatch"),
    ({"security_token": "STS2-someone-elses"}, "InvalidSecurityToken"),
    ({"ak": "AKLTunknown"}, "InvalidAccessKeyId"),
    ({"region": "cn-beijing"}, "AuthorizationHeaderMalformed"),
])
def test_the_storage_refuses_a_request_signed_wrongly(sim: Hitem3DSimulator, bearer: dict[str, str],
                                                      change: dict[str, str], code: str) -> None:
    tos = pytest.importorskip("tos")
    with pytest.raises(tos.exceptions.TosServerError) as caught:
        sdk_put(sim, upload_credentials(sim, bearer), "k.glb", GLB, **change)
    assert caught.value.code == code and sim.stored == {}


def test_the_storage_refuses_expired_credentials_and_a_skewed_clock(sim: Hitem3DSimulator,
                                                                   bearer: dict[str, str]) -> None:
    from datetime import datetime, timedelta

    tos = pytest.importorskip("tos")
    credentials = upload_credentials(sim, bearer)
    late = tos.models2.GenericInput(request_date=datetime.utcnow() - timedelta(hours=1))
    with pytest.raises(tos.exceptions.TosServerError) as skewed:
        sdk_put(sim, credentials, "k.glb", GLB, generic_input=late)
    sim.expire_upload_credentials()
    with pytest.raises(tos.exceptions.TosServerError) as expired:
        sdk_put(sim, credentials, "k.glb", GLB)
    assert (skewed.value.code, expired.value.code) == ("RequestTimeTooSkewed", "ExpiredToken")
    sim.upload_credentials_lifetime_s = 0.0  # issued already expired
    with pytest.raises(tos.exceptions.TosServerError) as born_expired:
        sdk_put(sim, upload_credentials(sim, bearer), "k.glb", GLB)
    assert born_expired.value.code == "ExpiredToken" and sim.stored == {}


def test_credentials_scoped_to_a_folder_are_refused_elsewhere(sim: Hitem3DSimulator,
                                                              bearer: dict[str, str]) -> None:
    tos = pytest.importorskip("tos")
    sim.storage_key_prefixes = ("comfyui/",)
    credentials = upload_credentials(sim, bearer)
    with pytest.raises(tos.exceptions.TosServerError) as caught:
        sdk_put(sim, credentials, "hitem3d-blender/mesh/2026-11-03/a.glb", GLB)
    sdk_put(sim, credentials, "comfyui/mesh/2026-11-03/a.glb", GLB)
    assert caught.value.code == "AccessDenied" and list(sim.stored) == ["comfyui/mesh/2026-11-03/a.glb"]


def test_the_storage_words_a_refusal_in_json_or_in_xml(sim: Hitem3DSimulator) -> None:
    json_answer = requests.put(f"{sim.storage_url}/k.glb", data=GLB, timeout=TIMEOUT)
    sim.storage_error_format = "xml"
    xml_answer = requests.put(f"{sim.storage_url}/k.glb", data=GLB, timeout=TIMEOUT)
    assert json_answer.status_code == xml_answer.status_code == 403
    assert json_answer.json()["Code"] == "AccessDenied"
    assert "<Code>AccessDenied</Code>" in xml_answer.text and sim.stored == {}


def test_a_cut_request_dies_mid_upload(sim: Hitem3DSimulator) -> None:
    sim.inject("/", Fault.cut_request(10))
    with pytest.raises(requests.ConnectionError):
        requests.put(f"{sim.storage_url}/k.glb", data=bytes(4 * 1024 * 1024), timeout=TIMEOUT)
    [request] = sim.storage_requests
    assert len(request.body) == 10 and sim.stored == {}


@pytest.mark.parametrize(("body", "code"), [(b"", 10031010), (b"PK\x03\x04 not a glb", 10031004),
                                            (GLB + bytes(100), 10031001)])
def test_a_stored_mesh_that_is_empty_not_a_glb_or_too_big_is_refused(sim: Hitem3DSimulator, bearer: dict[str, str],
                                                                     body: bytes, code: int) -> None:
    sim.max_mesh_bytes = len(GLB)
    sdk_put(sim, upload_credentials(sim, bearer), "m.glb", body)
    answer = submit(sim, bearer, {**FIELDS, **TEXTURE, "mesh_url": sim.public_base + "m.glb"}, ONE_IMAGE)
    assert answer["code"] == code and sim.submissions == [] and sim.balance == 1000.0


def test_a_mesh_url_of_an_object_never_uploaded_is_refused(sim: Hitem3DSimulator, bearer: dict[str, str]) -> None:
    answer = submit(sim, bearer, {**FIELDS, **TEXTURE, "mesh_url": sim.public_base + "never.glb"}, ONE_IMAGE)
    assert answer["code"] == 10000000 and sim.submissions == []


def test_a_hitem3d_result_link_is_a_mesh_to_texture(sim: Hitem3DSimulator, bearer: dict[str, str]) -> None:
    model_url, _ = success_urls(sim, bearer)
    answer = submit(sim, bearer, {**FIELDS, **TEXTURE, "mesh_url": model_url}, ONE_IMAGE)
    assert answer["code"] == 200


def test_submit_multi_view_keeps_file_order(sim: Hitem3DSimulator, bearer: dict[str, str]) -> None:
    sim.default_states = ("success",)
    fields = {**FIELDS, "multi_images_bit": "1011"}
    fields.pop("format")  # the server's default format is obj
    body = submit(sim, bearer, fields, views("front", "left", "right"))
    [submission] = sim.submissions
    assert [(name, filename) for name, filename, _, _ in submission.files] == [
        ("multi_images", "front.png"),
        ("multi_images", "left.png"),
        ("multi_images", "right.png"),
    ]
    assert submission.files[1][3] == PNG + b"left"
    model_url = query(sim, bearer, body["data"]["task_id"])["data"]["url"]
    assert urlsplit(model_url).path.endswith("/0.obj")


def test_balance_and_deduction(sim: Hitem3DSimulator, bearer: dict[str, str]) -> None:
    sim.balance, sim.submit_cost = 30.5, 20.0

    def balance() -> Any:
        return requests.get(url(sim, "balance"), headers=bearer, timeout=TIMEOUT).json()

    assert balance() == {"code": 200, "msg": "success", "data": {"totalBalance": 30.5}}
    assert submit(sim, bearer, FIELDS, ONE_IMAGE)["code"] == 200
    assert balance()["data"]["totalBalance"] == 10.5
    assert submit(sim, bearer, FIELDS, ONE_IMAGE) == {"code": 30010000, "msg": "balance is not enough", "data": {}}
    assert len(sim.submissions) == 1


def test_the_limit_mode_refuses_one_task_too_many_until_one_ends(sim: Hitem3DSimulator,
                                                                 bearer: dict[str, str]) -> None:
    sim.max_running_tasks = 2
    sim.default_states = ("queueing", "success")
    first = submit(sim, bearer, FIELDS, ONE_IMAGE)["data"]["task_id"]
    submit(sim, bearer, FIELDS, ONE_IMAGE)
    balance = sim.balance

    refused = submit(sim, bearer, FIELDS, ONE_IMAGE)

    assert refused["code"] == CODE_TOO_MANY_TASKS and sim.too_many_refusals == 1
    assert sim.balance == balance and len(sim.submissions) == 2  # nothing made, nothing charged
    query(sim, bearer, first)  # queueing: still running
    assert submit(sim, bearer, FIELDS, ONE_IMAGE)["code"] == CODE_TOO_MANY_TASKS
    query(sim, bearer, first)  # success: its slot is free
    assert submit(sim, bearer, FIELDS, ONE_IMAGE)["code"] == 200
    assert sim.running_at_create == [0, 1, 1]


def test_without_the_limit_mode_any_number_runs(sim: Hitem3DSimulator, bearer: dict[str, str]) -> None:
    for _ in range(DOCUMENTED_MAX_RUNNING + 2):
        assert submit(sim, bearer, FIELDS, ONE_IMAGE)["code"] == 200
    assert sim.running_tasks() == DOCUMENTED_MAX_RUNNING + 2


def test_submit_requires_multipart(sim: Hitem3DSimulator, bearer: dict[str, str]) -> None:
    response = requests.post(url(sim, "submit-task"), json=FIELDS, headers=bearer, timeout=TIMEOUT)
    assert response.json()["code"] == 10000000


# ---- recording and connections ----


def test_requests_are_recorded(sim: Hitem3DSimulator, bearer: dict[str, str]) -> None:
    query(sim, bearer, "a.b c")
    [recorded] = sim.requests
    assert (recorded.method, recorded.path, recorded.query) == ("GET", f"{API}/query-task", {"task_id": "a.b c"})
    assert recorded.header("Authorization") == bearer["Authorization"] and recorded.body == b""
    assert sim.count(API) == 1 and sim.count(API, "POST") == 0
    sim.reset_log()
    assert sim.requests == [] and sim.connections_opened == 0


def test_keep_alive_reuses_one_connection(sim: Hitem3DSimulator, bearer: dict[str, str]) -> None:
    with requests.Session() as session:
        for _ in range(2):
            assert session.get(url(sim, "balance"), headers=bearer, timeout=TIMEOUT).status_code == 200
    assert sim.connections_opened == 1
    assert len({r.connection_id for r in sim.requests}) == 1


def test_simulator_has_no_handler_errors(sim: Hitem3DSimulator, bearer: dict[str, str]) -> None:
    success_urls(sim, bearer)
    submit(sim, bearer, FIELDS, ONE_IMAGE)
    assert sim.handler_errors == []


# ---- assets ----


def test_minimal_glb_is_consistent() -> None:
    data = minimal_glb_bytes()
    magic, version, total = struct.unpack_from("<4sII", data, 0)
    assert (magic, version, total) == (b"glTF", 2, len(data))
    json_length, json_type = struct.unpack_from("<II", data, 12)
    assert json_type == 0x4E4F534A and json_length % 4 == 0
    bin_offset = 20 + json_length
    bin_length, bin_type = struct.unpack_from("<II", data, bin_offset)
    assert bin_type == 0x004E4942 and bin_length % 4 == 0
    assert bin_offset + 8 + bin_length == len(data)
    import json

    document = json.loads(data[20:bin_offset])
    assert document["asset"]["version"] == "2.0"
    assert document["buffers"][0]["byteLength"] <= bin_length


@pytest.mark.slow
def test_blender_makes_real_assets(tmp_path: Path) -> None:
    glb = make_glb(tmp_path / "sample.glb", objects=2, subdivisions=1, texture_size=32)
    assert glb.read_bytes()[:4] == b"glTF" and b"Hitem3D_Sample_2" in glb.read_bytes()
    webp = make_webp(tmp_path / "cover.webp", size=32).read_bytes()
    assert webp[:4] == b"RIFF" and webp[8:12] == b"WEBP"


# -- the documented schemes, required fields and unpublished paths, as modes ------------------------


def _create(sim: Hitem3DSimulator, route: str, scheme: str, fields: dict[str, str]) -> dict[str, Any]:
    parts: dict[str, Any] = {name: (None, value) for name, value in fields.items()}
    parts["mesh"] = ("chair.glb", minimal_glb_bytes(), "model/gltf-binary")
    response = requests.post(url(sim, route), files=parts, timeout=TIMEOUT,
                             headers={"Authorization": f"{scheme} {sim.issue_token()}"})
    return response.json()


@pytest.mark.parametrize("mode, takes", [("documented", {"Token"}), ("bearer", {"Bearer"}),
                                         ("any", {"Token", "Bearer"})])
def test_split_create_takes_the_schemes_of_its_mode(mode: str, takes: set[str]) -> None:
    with Hitem3DSimulator(auth_mode=mode) as sim:  # type: ignore[arg-type]
        for scheme in ("Token", "Bearer"):
            answer = _create(sim, "split/create-task", scheme, {"model": "general", "level": "low", "format": "2"})
            assert (answer["code"] == 200) is (scheme in takes), (scheme, answer)


@pytest.mark.parametrize("route, fields, missing", [
    ("split/create-task", {"model": "character", "part": "a", "format": "2"}, "joint"),
    ("split/create-task", {"model": "general", "format": "2"}, "level"),
    ("segmentation/create-task", {"seg_level": "low"}, "format"),
    ("segmentation/create-task", {"format": "2"}, "seg_level"),
])
def test_a_missing_required_field_is_refused_and_nothing_charged(route: str, fields: dict[str, str],
                                                                  missing: str) -> None:
    with Hitem3DSimulator(auth_mode="any") as sim:
        answer = _create(sim, route, "Token", fields)
        assert answer["code"] == 10000000 and missing in answer["msg"]
        assert sim.balance == 1000.0 and sim.submissions == []


def test_depth_takes_only_the_documented_model_type() -> None:
    with Hitem3DSimulator() as sim:
        headers = {"Authorization": f"Bearer {sim.issue_token()}"}
        for model_type, code in (("pro", 200), ("base", 10000000)):
            answer = requests.post(url(sim, "depth/create-task"), headers=headers, timeout=TIMEOUT, files={
                "model_type": (None, model_type), "rmbg": (None, "1"), "format": (None, "2"),
                "image": ("a.png", PNG, "image/png")}).json()
            assert answer["code"] == code


@pytest.mark.parametrize("mode, own, generic", [("own", 200, 40040000), ("generic", 404, 200), ("none", 404, 40040000)])
def test_an_unpublished_query_path_is_served_per_its_mode(mode: str, own: int, generic: int) -> None:
    with Hitem3DSimulator(auth_mode="any") as sim:
        sim.query_routes["segmentation"] = mode
        task_id = sim.add_task("segmentation_0a1b2c3d", ["success"])
        headers = {"Authorization": f"Bearer {sim.issue_token()}"}

        at_own = requests.get(url(sim, "segmentation/query-task"), params={"task_id": task_id}, headers=headers,
                              timeout=TIMEOUT)
        at_generic = requests.get(url(sim, "query-task"), params={"task_id": task_id}, headers=headers,
                                  timeout=TIMEOUT)

        assert (at_own.status_code if at_own.status_code == 404 else at_own.json()["code"]) == own
        assert at_generic.json()["code"] == generic


def test_an_unpublished_create_path_can_be_unserved() -> None:
    with Hitem3DSimulator(auth_mode="any") as sim:
        sim.unserved_creates.add("multicolor")
        response = requests.post(url(sim, "muilticolor/create-task"), timeout=TIMEOUT,
                                 headers={"Authorization": f"Bearer {sim.issue_token()}"})
        assert response.status_code == 404
