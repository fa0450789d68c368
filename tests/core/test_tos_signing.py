"""Our TOS4-HMAC-SHA256 signer against Volcengine's own SDK (``tos`` on PyPI,
a dev requirement only): the same canonical request and the same signature for
the same inputs and time, and the same Authorization the SDK sends for the
PutObject the vendor's client makes."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest
import responses

tos = pytest.importorskip("tos")
from tos.auth import Auth, _canonical_request, _get_signed_headers  # noqa: E402
from tos.http import Request  # noqa: E402
from tos.models2 import GenericInput  # noqa: E402

from hitem3d_blender.core import tos_signing  # noqa: E402
from hitem3d_blender.core.tos_signing import StorageCredentials  # noqa: E402

REGION = "ap-southeast-1"
HOST = "mm-sparc3d-prod.tos-ap-southeast-1.volces.com"
CREDENTIALS = StorageCredentials("AKLTexampleKeyId", "c2VjcmV0LWtleS1leGFtcGxl==", "STS2eyJhbGciOi.token+/=")
WHEN = datetime(2026, 11, 3, 23, 59, 58, tzinfo=timezone.utc)
SHA = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"


def sdk_signed(method: str, path: str, params: dict[str, str], headers: dict[str, str],
               credentials: StorageCredentials, region: str, when: datetime) -> tuple[str, dict[str, str]]:
    """What the SDK's signer makes of one request: its canonical request and headers."""
    request = Request(method, f"https://{headers['Host']}{path}", path, headers["Host"], params=dict(params),
                      headers={name: value for name, value in headers.items() if name != "Host"},
                      generic_input=GenericInput(request_date=when.astimezone(timezone.utc).replace(tzinfo=None)))
    auth = Auth(credentials.access_key_id, credentials.secret_access_key, region,
                sts=credentials.security_token or None)
    auth.sign_request(request)
    canonical = _canonical_request(request, _get_signed_headers(request.headers))
    return canonical, dict(request.headers)


def ours(method: str, path: str, params: dict[str, str], headers: dict[str, str],
         credentials: StorageCredentials = CREDENTIALS, region: str = REGION,
         when: datetime = WHEN) -> tuple[str, dict[str, str]]:
    sent = tos_signing.sign(method, path, params, headers, credentials, region, when)
    return tos_signing.canonical_request(method, path, params, sent), sent


CASES: list[tuple[str, str, dict[str, str], dict[str, str]]] = [
    # A PutObject with a signed payload hash.
    ("PUT", "/hitem3d-blender/mesh/2026-11-03/0f8fad5b-d9cb-469f-a165-70867728950e.glb", {},
     {"Host": HOST, "Content-Type": "model/gltf-binary", "Content-Length": "1234", "x-tos-content-sha256": SHA}),
    # As the vendor's client sends it: no payload hash (UNSIGNED-PAYLOAD).
    ("PUT", "/comfyui/mesh/2026-11-03/a.glb", {}, {"Host": HOST, "content-type": "binary/octet-stream"}),
    # Characters that need encoding in the path, a query, a port in the host.
    ("PUT", "/dir with space/ünï~code+(1)&=.glb", {"uploadId": "a b/c", "partNumber": "2", "acl": ""},
     {"Host": "127.0.0.1:8123", "Content-Type": "model/gltf-binary", "X-Tos-Meta-Note": "x"}),
    ("GET", "/", {"list-type": "2", "prefix": "mesh/"}, {"Host": HOST}),
]


@pytest.mark.parametrize("method, path, params, headers", CASES)
def test_the_canonical_request_and_headers_match_the_sdk(method: str, path: str, params: dict[str, str],
                                                         headers: dict[str, str]) -> None:
    theirs, their_headers = sdk_signed(method, path, params, headers, CREDENTIALS, REGION, WHEN)
    mine, my_headers = ours(method, path, params, headers)
    assert mine == theirs
    assert my_headers["Authorization"] == their_headers["Authorization"]
    assert my_headers["x-tos-date"] == their_headers["x-tos-date"] == "20261103T235958Z"
    assert my_headers["x-tos-security-token"] == their_headers["x-tos-security-token"] == CREDENTIALS.security_token


@pytest.mark.parametrize("when", [WHEN, WHEN + timedelta(seconds=2),  # across midnight: a new day in the scope
                                  datetime(2027, 2, 28, 8, 0, 0, tzinfo=timezone(timedelta(hours=8)))])
@pytest.mark.parametrize("region", [REGION, "cn-beijing"])
def test_the_signature_matches_the_sdk_at_any_time_and_region(when: datetime, region: str) -> None:
    method, path, params, headers = CASES[0]
    _, theirs = sdk_signed(method, path, params, headers, CREDENTIALS, region, when)
    _, mine = ours(method, path, params, headers, region=region, when=when)
    assert mine["Authorization"] == theirs["Authorization"]
    day = when.astimezone(timezone.utc).strftime("%Y%m%d")
    assert f"Credential={CREDENTIALS.access_key_id}/{day}/{region}/tos/request," in mine["Authorization"]


def test_without_a_security_token_none_is_sent_and_the_signature_still_matches() -> None:
    plain = StorageCredentials("AK", "SK", "")
    method, path, params, headers = CASES[0]
    _, theirs = sdk_signed(method, path, params, headers, plain, REGION, WHEN)
    _, mine = ours(method, path, params, headers, credentials=plain)
    assert "x-tos-security-token" not in mine and mine["Authorization"] == theirs["Authorization"]


def test_signed_headers_are_host_content_type_and_x_tos_only() -> None:
    _, sent = ours(*CASES[0])
    assert "SignedHeaders=content-type;host;x-tos-content-sha256;x-tos-date;x-tos-security-token," \
        in sent["Authorization"]


def test_a_change_to_any_signed_part_changes_the_signature() -> None:
    method, path, params, headers = CASES[0]
    base = ours(method, path, params, headers)[1]["Authorization"]
    variants = [
        ours("POST", path, params, headers),
        ours(method, path + "x", params, headers),
        ours(method, path, {"a": "b"}, headers),
        ours(method, path, params, {**headers, "Host": "other.example"}),
        ours(method, path, params, {**headers, "x-tos-content-sha256": "0" * 64}),
        ours(method, path, params, headers, when=WHEN + timedelta(seconds=1)),
        ours(method, path, params, headers, region="cn-beijing"),
        ours(method, path, params, headers, credentials=StorageCredentials("AKLTexampleKeyId", "other", "t")),
    ]
    assert all(variant[1]["Authorization"] != base for variant in variants)
    # Content-Length is not signed (the SDK leaves it out too).
    assert ours(method, path, params, {**headers, "Content-Length": "9"})[1]["Authorization"] == base


def test_a_naive_time_is_refused() -> None:
    with pytest.raises(ValueError):
        tos_signing.signing_time(datetime(2026, 1, 1))


def test_signing_needs_the_host_header() -> None:
    with pytest.raises(ValueError):
        tos_signing.sign("PUT", "/k", {}, {"Content-Type": "x"}, CREDENTIALS, REGION, WHEN)


def test_the_credentials_secrets_stay_out_of_repr() -> None:
    text = repr(CREDENTIALS)
    assert CREDENTIALS.secret_access_key not in text and CREDENTIALS.security_token not in text


# -- the SDK's own PutObject, as the vendor's client calls it ---------------------------------


@pytest.fixture
def rsps() -> Iterator[responses.RequestsMock]:
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        yield mock


def test_our_headers_sign_the_put_object_the_sdk_sends_the_same_way(rsps: responses.RequestsMock) -> None:
    """``TosClientV2.put_object`` (the vendor's upload): whatever headers the SDK
    chose, signing them ourselves at the same time gives its Authorization."""
    key = "hitem3d-blender/mesh/2026-11-03/0f8fad5b-d9cb-469f-a165-70867728950e.glb"
    rsps.add(responses.PUT, f"https://{HOST}/{key}", status=200, headers={"x-tos-request-id": "r"})
    client = tos.TosClientV2(CREDENTIALS.access_key_id, CREDENTIALS.secret_access_key,
                             "tos-ap-southeast-1.volces.com", REGION, security_token=CREDENTIALS.security_token,
                             enable_crc=False, max_retry_count=0)
    client.put_object("mm-sparc3d-prod", key, content=b"glTF" + bytes(60), content_sha256=SHA,
                      generic_input=GenericInput(request_date=WHEN.replace(tzinfo=None)))
    [call] = rsps.calls
    sent: Any = call.request.headers
    assert sent["Host"] == HOST
    unsigned = {name: value for name, value in sent.items()
                if name.lower() not in ("authorization", "x-tos-date", "x-tos-security-token")}
    mine = tos_signing.sign("PUT", "/" + key, {}, unsigned, CREDENTIALS, REGION, WHEN)
    assert mine["Authorization"] == sent["Authorization"]


def test_our_put_object_has_the_headers_the_sdk_sends_by_default(rsps: responses.RequestsMock,
                                                                  tmp_path: Any) -> None:
    """The vendor's client calls ``put_object_from_file`` with no hash: the SDK
    then sends and signs ``x-tos-content-sha256: UNSIGNED-PAYLOAD``. Ours is
    the same, so a storage that takes the vendor's uploads takes ours, even
    one that signs the payload line as UNSIGNED-PAYLOAD whatever comes."""
    import requests

    from hitem3d_blender.core import mesh_upload

    key = "hitem3d-blender/mesh/2026-11-03/a.glb"
    rsps.add(responses.PUT, f"https://{HOST}/{key}", status=200)
    rsps.add(responses.PUT, f"https://{HOST}/comfyui/{key}", status=200)
    client = tos.TosClientV2(CREDENTIALS.access_key_id, CREDENTIALS.secret_access_key,
                             "tos-ap-southeast-1.volces.com", REGION, security_token=CREDENTIALS.security_token,
                             enable_crc=False, max_retry_count=0)
    client.put_object("mm-sparc3d-prod", "comfyui/" + key, content=b"glTF" + bytes(60))
    path = tmp_path / "a.glb"
    path.write_bytes(b"glTF" + bytes(60))
    with requests.Session() as session:
        mesh_upload.put_object(session, mesh_upload.HITEM3D_STORAGE, CREDENTIALS, key,
                               mesh_upload.UploadBody(b"", path, 0, 64), timeout_s=5.0, when=WHEN)
    sdk, mine = (call.request.headers for call in rsps.calls)
    assert sdk["x-tos-content-sha256"] == mine["x-tos-content-sha256"] == "UNSIGNED-PAYLOAD"
    signed = [headers["Authorization"].split("SignedHeaders=")[1].split(",")[0] for headers in (sdk, mine)]
    assert signed[0] == signed[1] == "content-type;host;x-tos-content-sha256;x-tos-date;x-tos-security-token"
    # A verifier that always signs UNSIGNED-PAYLOAD as the payload line agrees with our signature.
    canonical = tos_signing.canonical_request("PUT", "/" + key, {}, {
        name: mine[name] for name in ("Host", "Content-Type", "x-tos-content-sha256", "x-tos-date",
                                      "x-tos-security-token")})
    assert canonical.endswith("\nUNSIGNED-PAYLOAD")
    expected = tos_signing.signature(CREDENTIALS.secret_access_key, canonical, mine["x-tos-date"], REGION)
    assert mine["Authorization"].endswith("Signature=" + expected)
