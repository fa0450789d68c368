"""Texturing an artist's own mesh the way the vendor's client does: the upload
token, a PutObject to the object storage signed with TOS4-HMAC-SHA256 (the
simulator's storage checks the signature), then ``mesh_url``. And every way it
fails: nothing reaches submit-task, nothing is spent, the message says what
happened, and sending again works."""

from __future__ import annotations

import re
import struct
import threading
from datetime import datetime, timezone
from pathlib import Path

import pytest

from hitem3d_blender.core import mesh_upload, sending
from hitem3d_blender.core.api import Hitem3DClient
from hitem3d_blender.core.cancel import CancelToken, cancel_scope
from hitem3d_blender.core.errors import Cancelled
from hitem3d_blender.core.logs import redact
from hitem3d_blender.core.mesh_upload import (
    HITEM3D_STORAGE,
    InvalidUploadTarget,
    StorageTarget,
    UploadFailed,
    target_from_env,
)
from hitem3d_blender.core.submission import RequestType, Submission
from hitem3d_blender.core.glb_names import neutral_glb
from tests.support.glb_factory import minimal_glb_bytes
from tests.support.simulator import API, Fault, Hitem3DSimulator
from tests.support.submission_helpers import images  # noqa: F401 - a fixture

GLB = minimal_glb_bytes()  # its object is named Hitem3D_Sample
SENT = neutral_glb(GLB, "Chair")  # what leaves: the same geometry, the names neutral
VENDOR_KEY = re.compile(r"comfyui/mesh/\d{4}-\d{2}-\d{2}/[0-9a-f-]{36}\.glb")
KEY = re.compile(r"hitem3d-blender/mesh/\d{4}-\d{2}-\d{2}/[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[0-9a-f]{4}-[0-9a-f]{12}\.glb")


@pytest.fixture
def storage(sim: Hitem3DSimulator) -> StorageTarget:
    return target_from_env(sim.upload_environment())


@pytest.fixture
def mesh(tmp_path: Path) -> Path:
    path = tmp_path / "Chair-20261103-101010-000001.glb"
    path.write_bytes(GLB)
    return path


def padded(extra: int) -> bytes:
    """A valid GLB made ``extra`` bytes bigger (a chunk of its own after the binary one)."""
    chunk = struct.pack("<II", extra, 0x12345678) + bytes(extra)
    return b"glTF" + struct.pack("<II", 2, len(GLB) + len(chunk)) + GLB[12:] + chunk


def texture(mesh: Path, images: dict[str, str]) -> Submission:
    return Submission("hitem3dv1.5", "1024", request_type=RequestType.TEXTURE_MESH, image=images["front"],
                      mesh=str(mesh), mesh_name="Chair")


def nothing_spent(sim: Hitem3DSimulator) -> bool:
    return sim.submissions == [] and sim.count(f"{API}/submit-task") == 0 and sim.balance == 1000.0


# -- the way it works ------------------------------------------------------------------------------


def test_the_mesh_goes_to_the_storage_and_submit_task_gets_its_public_link(
        sim: Hitem3DSimulator, client: Hitem3DClient, storage: StorageTarget, mesh: Path,
        images: dict[str, str]) -> None:
    task_id = sending.send(client, texture(mesh, images), storage=storage)
    [(key, body)] = sim.stored.items()
    assert KEY.fullmatch(key) and body == SENT and b"Hitem3D_Sample" not in body
    [submitted] = sim.submissions
    assert submitted.task_id == task_id
    assert submitted.fields["request_type"] == "2" and submitted.fields["mesh_url"] == sim.public_base + key
    assert [name for name, _, _, _ in submitted.files] == ["images"]  # no `mesh` part
    paths = [r.path for r in sim.requests if r.path != f"{API}/auth/token"]
    assert paths == [f"{API}/upload/token", "/" + key, f"{API}/submit-task"]


def test_the_put_is_signed_for_the_storage_and_carries_no_api_credential(
        sim: Hitem3DSimulator, client: Hitem3DClient, storage: StorageTarget, mesh: Path,
        images: dict[str, str]) -> None:
    sending.send(client, texture(mesh, images), storage=storage)
    [put] = sim.storage_requests
    authorization = put.header("Authorization") or ""
    assert authorization.startswith("TOS4-HMAC-SHA256 Credential=AKLT")
    assert "/ap-southeast-1/tos/request, SignedHeaders=content-type;host;x-tos-content-sha256;x-tos-date;" \
           "x-tos-security-token, Signature=" in authorization
    assert put.header("Host") == storage.host and put.header("Content-Type") == "model/gltf-binary"
    assert "Bearer" not in str(put.headers) and sim.client_secret not in str(put.headers)


def test_the_storage_secrets_are_masked_wherever_they_are_echoed(
        sim: Hitem3DSimulator, client: Hitem3DClient) -> None:
    credentials = client.upload_credentials()
    text = f"echo {credentials.secret_access_key} and {credentials.security_token}"
    assert credentials.secret_access_key not in redact(text) and credentials.security_token not in redact(text)
    assert credentials.secret_access_key not in repr(credentials)


def test_an_upload_token_answer_with_more_than_the_three_names_is_read(
        sim: Hitem3DSimulator, client: Hitem3DClient) -> None:
    """Only the three names the vendor's client reads are needed: a code as a
    string, ``message`` for ``msg`` and fields of its own do not matter."""
    sim.inject(f"{API}/upload/token", Fault.json({"code": "200", "message": "ok", "data": {
        "accessKeyId": "AKLTabc", "secretAccessKey": "c2VjcmV0", "sessionKey": "STS2xyz",
        "expiredTime": "2026-11-03T10:00:00Z", "bucket": "mm-sparc3d-prod", "region": "ap-southeast-1"}}))
    credentials = client.upload_credentials()
    assert (credentials.access_key_id, credentials.secret_access_key, credentials.security_token) == (
        "AKLTabc", "c2VjcmV0", "STS2xyz")


def test_an_expired_access_token_for_the_upload_token_is_renewed(
        sim: Hitem3DSimulator, client: Hitem3DClient, storage: StorageTarget, mesh: Path,
        images: dict[str, str]) -> None:
    client.fetch_token()
    sim.expire_tokens()
    sending.send(client, texture(mesh, images), storage=storage)
    assert sim.count(f"{API}/auth/token") == 2 and len(sim.submissions) == 1


def test_credentials_that_expire_before_the_put_are_fetched_anew_once(
        sim: Hitem3DSimulator, client: Hitem3DClient, storage: StorageTarget, mesh: Path,
        images: dict[str, str]) -> None:
    sim.inject("/hitem3d-blender/", Fault.json({"Code": "ExpiredToken", "Message": "The provided token has expired"},
                                               status=403))
    sending.send(client, texture(mesh, images), storage=storage)
    assert sim.count(f"{API}/upload/token") == 2 and len(sim.stored) == 1 and len(sim.submissions) == 1


# -- the ways it fails: nothing spent, a clear message, sending again works ---------------------------


def failure(client: Hitem3DClient, storage: StorageTarget, mesh: Path, images: dict[str, str]) -> str:
    with pytest.raises(UploadFailed) as caught:
        sending.send(client, texture(mesh, images), storage=storage)
    return str(caught.value)


def test_a_refused_upload_token_spends_nothing(sim: Hitem3DSimulator, client: Hitem3DClient,
                                               storage: StorageTarget, mesh: Path, images: dict[str, str]) -> None:
    sim.inject(f"{API}/upload/token", Fault.json({"code": 10000000, "msg": "system error", "data": {}}))
    message = failure(client, storage, mesh, images)
    assert message.startswith("Hitem3D gave no permission to upload the mesh (") and "nothing was spent" in message
    assert sim.storage_requests == [] and nothing_spent(sim)
    sending.send(client, texture(mesh, images), storage=storage)  # sent again: it goes
    assert len(sim.submissions) == 1


def test_incomplete_upload_credentials_spend_nothing(sim: Hitem3DSimulator, client: Hitem3DClient,
                                                     storage: StorageTarget, mesh: Path,
                                                     images: dict[str, str]) -> None:
    sim.inject(f"{API}/upload/token", Fault.json({"code": 200, "msg": "success", "data": {"accessKeyId": "AK"}}))
    assert "incomplete upload credentials" in failure(client, storage, mesh, images)
    assert sim.storage_requests == [] and nothing_spent(sim)


def test_a_storage_refusal_in_xml_says_its_code_and_spends_nothing(
        sim: Hitem3DSimulator, client: Hitem3DClient, storage: StorageTarget, mesh: Path,
        images: dict[str, str]) -> None:
    body = (b'<?xml version="1.0" encoding="UTF-8"?><Error><Code>NoSuchBucket</Code>'
            b"<Message>The bucket &amp; its keys are gone</Message><RequestId>1</RequestId></Error>")
    sim.inject("/hitem3d-blender/", Fault.raw(body, "application/xml", status=404))
    message = failure(client, storage, mesh, images)
    assert message == ("Hitem3D's storage refused the mesh (NoSuchBucket: The bucket & its keys are gone): nothing "
                       "was spent; try again in a few minutes")
    assert nothing_spent(sim) and sim.count(f"{API}/upload/token") == 1  # not the credentials: not asked again
    assert len(sim.storage_requests) == 1  # nor the key: not tried elsewhere


def test_credentials_that_allow_only_the_vendor_s_folder_upload_there_from_then_on(
        sim: Hitem3DSimulator, client: Hitem3DClient, storage: StorageTarget, mesh: Path,
        images: dict[str, str]) -> None:
    sim.storage_key_prefixes = ("comfyui/",)
    sending.send(client, texture(mesh, images), storage=storage)
    [(key, body)] = sim.stored.items()
    assert VENDOR_KEY.fullmatch(key) and body == SENT
    assert sim.submissions[0].fields["mesh_url"] == sim.public_base + key
    assert [r.path.split("/")[1] for r in sim.storage_requests] == ["hitem3d-blender", "comfyui"]
    assert sim.count(f"{API}/upload/token") == 1  # the same credentials, another key

    sending.send(client, texture(mesh, images), storage=storage)  # the session remembers where it may write
    assert [r.path.split("/")[1] for r in sim.storage_requests][2:] == ["comfyui"] and len(sim.submissions) == 2


def test_credentials_that_allow_neither_folder_spend_nothing_and_say_so(
        sim: Hitem3DSimulator, client: Hitem3DClient, storage: StorageTarget, mesh: Path,
        images: dict[str, str]) -> None:
    sim.storage_key_prefixes = ("someone-else/",)
    message = failure(client, storage, mesh, images)
    assert message == ("Hitem3D's storage did not let its upload credentials store the mesh under hitem3d-blender/, "
                       "comfyui/ (AccessDenied: Access Denied): nothing was spent; update the extension, or report it")
    assert len(sim.storage_requests) == 2 and sim.stored == {} and nothing_spent(sim)


def test_a_bare_403_from_the_storage_is_taken_as_access_denied(
        sim: Hitem3DSimulator, client: Hitem3DClient, storage: StorageTarget, mesh: Path,
        images: dict[str, str]) -> None:
    sim.inject("/hitem3d-blender/", Fault.status(403))
    sending.send(client, texture(mesh, images), storage=storage)
    assert [key.split("/")[0] for key in sim.stored] == ["comfyui"] and len(sim.submissions) == 1


def test_a_bad_signature_is_refused_by_the_storage_and_said(sim: Hitem3DSimulator, client: Hitem3DClient,
                                                            storage: StorageTarget, mesh: Path,
                                                            images: dict[str, str],
                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    """The simulator checks the signature: a signer that is off by one byte fails."""
    real = mesh_upload.tos_signing.signature
    monkeypatch.setattr(mesh_upload.tos_signing, "signature",
                        lambda secret, *rest: real(secret + "x", *rest))
    assert "SignatureDoesNotMatch" in failure(client, storage, mesh, images)
    assert nothing_spent(sim)


def test_credentials_that_stay_expired_are_said_once_asked_for_twice(
        sim: Hitem3DSimulator, client: Hitem3DClient, storage: StorageTarget, mesh: Path,
        images: dict[str, str]) -> None:
    sim.upload_credentials_lifetime_s = 0.0
    message = failure(client, storage, mesh, images)
    assert "ExpiredToken" in message and "nothing was spent" in message
    assert sim.count(f"{API}/upload/token") == 2 and len(sim.storage_requests) == 2 and nothing_spent(sim)


def test_a_clock_that_is_off_is_named(sim: Hitem3DSimulator, client: Hitem3DClient, storage: StorageTarget,
                                      mesh: Path, images: dict[str, str]) -> None:
    sim.inject("/hitem3d-blender/", Fault.json({"Code": "RequestTimeTooSkewed", "Message": "skewed"}, status=403))
    assert "this computer's clock is off" in failure(client, storage, mesh, images)
    assert nothing_spent(sim)


def test_a_connection_cut_mid_upload_spends_nothing_and_sending_again_works(
        sim: Hitem3DSimulator, client: Hitem3DClient, storage: StorageTarget, tmp_path: Path,
        images: dict[str, str]) -> None:
    big = tmp_path / "big.glb"
    big.write_bytes(padded(8 * 1024 * 1024))
    sim.inject("/hitem3d-blender/", Fault.cut_request(64 * 1024))
    message = failure(client, storage, big, images)
    assert message.startswith("Uploading the mesh failed, nothing was spent: ")
    assert storage.host in message and sim.stored == {} and nothing_spent(sim)
    sending.send(client, texture(big, images), storage=storage)
    assert len(sim.submissions) == 1 and list(sim.stored.values()) == [neutral_glb(big.read_bytes(), "big")]


def test_a_cancel_mid_upload_stops_it_and_spends_nothing(sim: Hitem3DSimulator, client: Hitem3DClient,
                                                         storage: StorageTarget, tmp_path: Path,
                                                         images: dict[str, str]) -> None:
    big = tmp_path / "big.glb"
    big.write_bytes(padded(16 * 1024 * 1024))
    sim.inject("/hitem3d-blender/", Fault.delay(5.0))  # the storage answers late: cancelled while it waits
    token = CancelToken()
    threading.Timer(0.5, token.cancel).start()
    with cancel_scope(token), pytest.raises(Cancelled):
        sending.send(client, texture(big, images), storage=storage)
    assert nothing_spent(sim)


def test_a_mesh_that_vanished_before_the_upload_is_refused_before_anything_is_sent(
        sim: Hitem3DSimulator, client: Hitem3DClient, storage: StorageTarget, mesh: Path,
        images: dict[str, str]) -> None:
    mesh.unlink()
    with pytest.raises(Exception) as caught:
        sending.send(client, texture(mesh, images), storage=storage)
    assert "file not found" in str(caught.value)
    assert sim.count(f"{API}/upload/token") == 0 and nothing_spent(sim)


def test_submit_task_never_sends_an_own_mesh_as_a_file_part(client: Hitem3DClient, mesh: Path,
                                                             images: dict[str, str]) -> None:
    with pytest.raises(ValueError):
        client.submit_task(texture(mesh, images))


# -- where it goes -----------------------------------------------------------------------------------


def test_by_default_the_mesh_goes_where_the_vendors_client_puts_it() -> None:
    target = target_from_env({})
    assert target == HITEM3D_STORAGE
    assert target.host == "mm-sparc3d-prod.tos-ap-southeast-1.volces.com" and target.region == "ap-southeast-1"
    when = datetime(2026, 11, 3, 23, 0, tzinfo=timezone.utc)
    key = mesh_upload.object_key(target, when, "0f8fad5b-d9cb-469f-a165-70867728950e")
    assert key == "hitem3d-blender/mesh/2026-11-03/0f8fad5b-d9cb-469f-a165-70867728950e.glb"
    assert target.url_of(key) == f"https://mm-sparc3d-prod.tos-ap-southeast-1.volces.com/{key}"
    assert target.public_url(key) == f"https://hitem3dstatic.zaohaowu.net/{key}"


def test_the_two_variables_point_the_upload_elsewhere() -> None:
    target = target_from_env({"HITEM3D_UPLOAD_ENDPOINT": "https://store.example.com/bucket/",
                              "HITEM3D_UPLOAD_PUBLIC_BASE": "https://cdn.example.com/m"})
    assert target.url_of("a/b.glb") == "https://store.example.com/bucket/a/b.glb"
    assert target.path_of("a/b.glb") == "/bucket/a/b.glb" and target.host == "store.example.com"
    assert target.public_url("a/b.glb") == "https://cdn.example.com/m/a/b.glb"


@pytest.mark.parametrize(("variable", "value", "words"), [
    ("HITEM3D_UPLOAD_ENDPOINT", "http://store.example.com", "must use https://"),
    ("HITEM3D_UPLOAD_ENDPOINT", "https://user:pw@store.example.com", "must not contain a user name"),
    ("HITEM3D_UPLOAD_ENDPOINT", "store.example.com", "must be an https:// address"),
    ("HITEM3D_UPLOAD_PUBLIC_BASE", "ftp://cdn.example.com/", "must be an https:// address"),
    ("HITEM3D_UPLOAD_PUBLIC_BASE", "https://cdn.example.com/?a=1", "must be an https:// address"),
])
def test_an_unusable_override_is_refused_and_named(variable: str, value: str, words: str) -> None:
    with pytest.raises(InvalidUploadTarget) as caught:
        target_from_env({variable: value})
    assert variable in str(caught.value) and words in str(caught.value) and "pw" not in str(caught.value)


@pytest.mark.parametrize("api", ["https://api.hitem3d.ai", "http://api.hitem3d.com", "https://eu.api.hitem3d.ai"])
def test_with_hitem3ds_own_api_the_mesh_goes_to_its_storage(api: str) -> None:
    assert target_from_env({}, api_base_url=api) == HITEM3D_STORAGE


@pytest.mark.parametrize("api", ["http://127.0.0.1:8765", "https://hitem3d.ai.example.com", "https://evilhitem3d.ai"])
def test_another_api_never_uploads_to_hitem3ds_storage_unless_told_where(api: str) -> None:
    # The sandbox set in the preferences: its uploads must not go to Hitem3D's real storage.
    with pytest.raises(InvalidUploadTarget) as caught:
        target_from_env({}, api_base_url=api)
    assert "HITEM3D_UPLOAD_ENDPOINT" in str(caught.value)
    named = target_from_env({"HITEM3D_UPLOAD_ENDPOINT": "http://127.0.0.1:8766"}, api_base_url=api)
    assert named.host == "127.0.0.1:8766"


def test_plain_http_is_allowed_to_this_computer_only() -> None:
    target = target_from_env({"HITEM3D_UPLOAD_ENDPOINT": "http://127.0.0.1:8000"})
    assert target.host == "127.0.0.1:8000"


@pytest.mark.parametrize(("body", "expected"), [
    (b'{"Code": "AccessDenied", "Message": "no", "RequestId": "r"}', ("AccessDenied", "no")),
    (b"<Error><Code>NoSuchBucket</Code><Message>gone \x1b[31m</Message></Error>", ("NoSuchBucket", "gone")),
    (b"<html>proxy error</html>", ("", "")),
    (b"\xff\xfe" * 100_000, ("", "")),
])
def test_a_storage_error_is_read_from_json_or_xml_and_cleaned(body: bytes, expected: tuple[str, str]) -> None:
    assert mesh_upload.error_of(body) == expected
