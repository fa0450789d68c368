"""Hitem3DClient against a mocked HTTP layer (``responses``)."""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
import requests
import responses

from hitem3d_blender.core.api import (
    TOKEN_LIFETIME_S,
    TOKEN_RENEW_MARGIN_S,
    Hitem3DClient,
)
from hitem3d_blender.core.downloader import CancelToken, stream_to_file
from hitem3d_blender.core.errors import (
    ApiError,
    CredentialsMissing,
    GenerationFailed,
    InvalidCredentials,
    NetworkError,
    ServerError,
    TaskNotFound,
)
from hitem3d_blender.core.settings import ApiSettings
from tests.support.glb_factory import minimal_glb_bytes

BASE = "https://api.hitem3d.ai"
HOST = "api.hitem3d.ai"
TOKEN_URL = f"{BASE}/open-api/v1/auth/token"
QUERY_URL = f"{BASE}/open-api/v1/query-task"
BALANCE_URL = f"{BASE}/open-api/v1/balance"
CLIENT_ID = "my-client-id"
CLIENT_SECRET = "my-client-secret-123"
TASK_ID = "2c2ad20cb3204697ba7f80351c3e8606.jjewelry-aigc-api.1NraEb5ohU"
CDN_URL = "https://cdn.hitem3d.example/target//original/0.glb?auth_key=1700000000-ab12-0-ffee"


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def rsps() -> Iterator[responses.RequestsMock]:
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        yield mock


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def client(clock: FakeClock) -> Iterator[Hitem3DClient]:
    settings = ApiSettings(BASE, CLIENT_ID, CLIENT_SECRET, request_timeout_s=5.0)
    instance = Hitem3DClient(settings, clock=clock)
    yield instance
    instance.close()


def token_body(token: str) -> dict[str, Any]:
    return {"code": 200, "message": "success", "data": {"accessToken": token, "tokenType": "Bearer", "nonce": "n"}}


def add_tokens(rsps: responses.RequestsMock, *tokens: str) -> None:
    """Each token call answers the next token (the last one repeats)."""
    for token in tokens:
        rsps.add(responses.POST, TOKEN_URL, json=token_body(token))


def task_body(state: str = "processing", **data: Any) -> dict[str, Any]:
    return {"code": 200, "msg": "success", "data": {"task_id": TASK_ID, "state": state, **data}}


def calls_to(rsps: responses.RequestsMock, url: str) -> list[Any]:
    return [call for call in rsps.calls if str(call.request.url).split("?")[0] == url]


# -- token -------------------------------------------------------------------------


def test_token_request_is_post_with_basic_credentials_and_json_type(
    rsps: responses.RequestsMock, client: Hitem3DClient
) -> None:
    add_tokens(rsps, "tok-1")
    assert client.fetch_token() == "tok-1"
    (call,) = rsps.calls
    expected = "Basic " + base64.b64encode(f"{CLIENT_ID}:{CLIENT_SECRET}".encode()).decode()
    assert call.request.method == "POST"
    assert call.request.url == TOKEN_URL
    assert call.request.headers["Authorization"] == expected
    assert call.request.headers["Content-Type"] == "application/json"


def test_token_request_without_credentials_raises_credentials_missing_and_sends_nothing(
    rsps: responses.RequestsMock,
) -> None:
    client = Hitem3DClient(ApiSettings(BASE, "", ""))
    with pytest.raises(CredentialsMissing):
        client.query_task(TASK_ID)
    assert len(rsps.calls) == 0


def test_token_answer_without_access_token_is_a_retryable_server_error(
    rsps: responses.RequestsMock, client: Hitem3DClient
) -> None:
    rsps.add(responses.POST, TOKEN_URL, json={"code": 200, "message": "success", "data": {}})
    with pytest.raises(ServerError) as caught:
        client.fetch_token()
    assert caught.value.retryable


def test_token_is_cached_for_many_queries(rsps: responses.RequestsMock, client: Hitem3DClient) -> None:
    add_tokens(rsps, "tok-1")
    rsps.add(responses.GET, QUERY_URL, json=task_body())
    rsps.add(responses.GET, BALANCE_URL, json={"code": 200, "msg": "success", "data": {"totalBalance": 5}})
    for _ in range(5):
        client.query_task(TASK_ID)
    client.balance()
    assert len(calls_to(rsps, TOKEN_URL)) == 1
    assert len(calls_to(rsps, QUERY_URL)) == 5
    assert all(c.request.headers["Authorization"] == "Bearer tok-1" for c in calls_to(rsps, QUERY_URL))


def test_token_still_used_just_before_renewal_time(
    rsps: responses.RequestsMock, client: Hitem3DClient, clock: FakeClock
) -> None:
    add_tokens(rsps, "tok-1", "tok-2")
    rsps.add(responses.GET, QUERY_URL, json=task_body())
    client.query_task(TASK_ID)
    clock.now += TOKEN_LIFETIME_S - TOKEN_RENEW_MARGIN_S - 1
    client.query_task(TASK_ID)
    assert len(calls_to(rsps, TOKEN_URL)) == 1


def test_token_renewed_after_its_lifetime(
    rsps: responses.RequestsMock, client: Hitem3DClient, clock: FakeClock
) -> None:
    add_tokens(rsps, "tok-1", "tok-2")
    rsps.add(responses.GET, QUERY_URL, json=task_body())
    client.query_task(TASK_ID)
    clock.now += TOKEN_LIFETIME_S
    client.query_task(TASK_ID)
    assert len(calls_to(rsps, TOKEN_URL)) == 2
    assert calls_to(rsps, QUERY_URL)[-1].request.headers["Authorization"] == "Bearer tok-2"


def test_token_renewed_before_the_documented_24_hours(
    rsps: responses.RequestsMock, client: Hitem3DClient, clock: FakeClock
) -> None:
    add_tokens(rsps, "tok-1", "tok-2")
    rsps.add(responses.GET, QUERY_URL, json=task_body())
    client.query_task(TASK_ID)
    clock.now += 24 * 3600 - 60  # a minute before the server's expiry
    client.query_task(TASK_ID)
    assert calls_to(rsps, QUERY_URL)[-1].request.headers["Authorization"] == "Bearer tok-2"


def test_http_401_gets_one_new_token_and_one_repeat(rsps: responses.RequestsMock, client: Hitem3DClient) -> None:
    add_tokens(rsps, "tok-old", "tok-new")
    rsps.add(responses.GET, QUERY_URL, json={"code": 401, "msg": "Unauthorized"}, status=401)
    rsps.add(responses.GET, QUERY_URL, json=task_body("queueing"))
    assert client.query_task(TASK_ID).state == "queueing"
    assert len(calls_to(rsps, TOKEN_URL)) == 2
    queries = calls_to(rsps, QUERY_URL)
    assert [q.request.headers["Authorization"] for q in queries] == ["Bearer tok-old", "Bearer tok-new"]


def test_body_code_401_gets_one_new_token_and_one_repeat(
    rsps: responses.RequestsMock, client: Hitem3DClient
) -> None:
    add_tokens(rsps, "tok-old", "tok-new")
    rsps.add(responses.GET, QUERY_URL, json={"code": 401, "msg": "Unauthorized"}, status=200)
    rsps.add(responses.GET, QUERY_URL, json=task_body("queueing"))
    assert client.query_task(TASK_ID).state == "queueing"
    assert len(calls_to(rsps, TOKEN_URL)) == 2
    assert len(calls_to(rsps, QUERY_URL)) == 2


def test_string_code_401_in_body_also_renews_the_token(
    rsps: responses.RequestsMock, client: Hitem3DClient
) -> None:
    add_tokens(rsps, "tok-old", "tok-new")
    rsps.add(responses.GET, QUERY_URL, json={"code": "401", "msg": "Unauthorized"})
    rsps.add(responses.GET, QUERY_URL, json=task_body("queueing"))
    assert client.query_task(TASK_ID).state == "queueing"
    assert len(calls_to(rsps, TOKEN_URL)) == 2


def test_a_401_under_both_schemes_gives_a_clear_error_without_looping(
    rsps: responses.RequestsMock, client: Hitem3DClient
) -> None:
    add_tokens(rsps, "tok-1", "tok-2", "tok-3")
    rsps.add(responses.GET, QUERY_URL, json={"code": 401, "msg": "Unauthorized"}, status=401)
    with pytest.raises(ApiError) as caught:
        client.query_task(TASK_ID)
    assert "token" in str(caught.value)
    assert "credentials" in str(caught.value)
    # A new token once, then the other scheme once: three requests, two tokens.
    assert len(calls_to(rsps, TOKEN_URL)) == 2
    assert [q.request.headers["Authorization"] for q in calls_to(rsps, QUERY_URL)] == [
        "Bearer tok-1", "Bearer tok-2", "Token tok-2"]


def test_token_after_a_401_is_not_reused(rsps: responses.RequestsMock, client: Hitem3DClient) -> None:
    add_tokens(rsps, "tok-1", "tok-2", "tok-3")
    for _ in range(3):
        rsps.add(responses.GET, QUERY_URL, json={"code": 401, "msg": "Unauthorized"}, status=401)
    rsps.add(responses.GET, QUERY_URL, json=task_body())
    with pytest.raises(ApiError):
        client.query_task(TASK_ID)
    client.query_task(TASK_ID)
    assert calls_to(rsps, QUERY_URL)[-1].request.headers["Authorization"] == "Bearer tok-3"


def test_invalid_credentials_code_raises_invalid_credentials(
    rsps: responses.RequestsMock, client: Hitem3DClient
) -> None:
    rsps.add(responses.POST, TOKEN_URL, json={"code": 40010000, "msg": "client credentials are invalid", "data": {}})
    with pytest.raises(InvalidCredentials) as caught:
        client.query_task(TASK_ID)
    assert caught.value.code == "40010000"
    assert "Client ID" in str(caught.value)
    assert len(calls_to(rsps, QUERY_URL)) == 0


def test_http_401_on_token_request_raises_invalid_credentials(
    rsps: responses.RequestsMock, client: Hitem3DClient
) -> None:
    rsps.add(responses.POST, TOKEN_URL, json={"code": 401, "msg": "Unauthorized"}, status=401)
    with pytest.raises(InvalidCredentials):
        client.fetch_token()
    assert len(calls_to(rsps, TOKEN_URL)) == 1


# -- codes and messages -----------------------------------------------------------------


@pytest.mark.parametrize("code", [200, "200", " 200 "])
def test_success_code_accepted_as_number_or_string(
    rsps: responses.RequestsMock, client: Hitem3DClient, code: Any
) -> None:
    add_tokens(rsps, "tok")
    rsps.add(responses.GET, QUERY_URL, json={"code": code, "msg": "success", "data": task_body()["data"]})
    assert client.query_task(TASK_ID).state == "processing"


def test_an_answer_without_a_code_is_read_by_its_status_and_data(rsps: responses.RequestsMock,
                                                                  client: Hitem3DClient) -> None:
    add_tokens(rsps, "tok")
    rsps.add(responses.GET, QUERY_URL, json={"data": {**task_body()["data"], "extra": [1, 2]}})
    rsps.add(responses.GET, QUERY_URL, json={"msg": "busy"})  # no code and no data: not a success
    assert client.query_task(TASK_ID).state == "processing"
    with pytest.raises(ApiError):
        client.query_task(TASK_ID)


@pytest.mark.parametrize("code", [50010001, "50010001"])
def test_generate_failed_code_raises_generation_failed(
    rsps: responses.RequestsMock, client: Hitem3DClient, code: Any
) -> None:
    add_tokens(rsps, "tok")
    rsps.add(responses.GET, QUERY_URL, json={"code": code, "msg": "generate failed", "data": {}})
    with pytest.raises(GenerationFailed) as caught:
        client.query_task(TASK_ID)
    assert caught.value.code == "50010001"
    assert "refunded" in str(caught.value)
    assert not caught.value.retryable


@pytest.mark.parametrize("state", ["failed", "FAILED", "Failed"])
def test_failed_state_raises_generation_failed(
    rsps: responses.RequestsMock, client: Hitem3DClient, state: str
) -> None:
    add_tokens(rsps, "tok")
    rsps.add(responses.GET, QUERY_URL, json=task_body(state))
    with pytest.raises(GenerationFailed):
        client.query_task(TASK_ID)


@pytest.mark.parametrize(
    "sent, expected",
    [("SUCCESS", "success"), ("Processing", "processing"), ("QUEUEING", "queueing"), (" created ", "created")],
)
def test_state_casing_normalised(
    rsps: responses.RequestsMock, client: Hitem3DClient, sent: str, expected: str
) -> None:
    add_tokens(rsps, "tok")
    rsps.add(responses.GET, QUERY_URL, json=task_body(sent, url=CDN_URL))
    assert client.query_task(TASK_ID).state == expected


def test_unknown_state_is_an_api_error_naming_it(rsps: responses.RequestsMock, client: Hitem3DClient) -> None:
    add_tokens(rsps, "tok")
    rsps.add(responses.GET, QUERY_URL, json=task_body("teleporting"))
    with pytest.raises(ApiError, match="teleporting"):
        client.query_task(TASK_ID)


def test_success_carries_model_and_cover_urls(rsps: responses.RequestsMock, client: Hitem3DClient) -> None:
    add_tokens(rsps, "tok")
    cover = "https://cdn.hitem3d.example/target/cover/webp/0.webp?auth_key=x"
    rsps.add(responses.GET, QUERY_URL, json=task_body("success", url=CDN_URL, cover_url=cover))
    status = client.query_task(TASK_ID)
    assert (status.task_id, status.model_url, status.cover_url) == (TASK_ID, CDN_URL, cover)


def test_empty_urls_become_none(rsps: responses.RequestsMock, client: Hitem3DClient) -> None:
    add_tokens(rsps, "tok")
    rsps.add(responses.GET, QUERY_URL, json=task_body("success", url="", cover_url=None))
    status = client.query_task(TASK_ID)
    assert status.model_url is None and status.cover_url is None


@pytest.mark.parametrize(
    "sent, expected",
    [(40, 40.0), ("55.5", 55.5), (150, 100.0), (-5, 0.0), ("abc", None), (None, None)],
)
def test_progress_parsed_and_clamped(
    rsps: responses.RequestsMock, client: Hitem3DClient, sent: Any, expected: float | None
) -> None:
    add_tokens(rsps, "tok")
    rsps.add(responses.GET, QUERY_URL, json=task_body("processing", progress=sent))
    assert client.query_task(TASK_ID).progress == expected


def test_missing_progress_is_none(rsps: responses.RequestsMock, client: Hitem3DClient) -> None:
    add_tokens(rsps, "tok")
    rsps.add(responses.GET, QUERY_URL, json=task_body("processing"))
    assert client.query_task(TASK_ID).progress is None


def test_unknown_code_shown_verbatim_with_the_code(rsps: responses.RequestsMock, client: Hitem3DClient) -> None:
    add_tokens(rsps, "tok")
    rsps.add(responses.GET, QUERY_URL, json={"code": 77770001, "msg": "Quota Frobnicated Today", "data": {}})
    with pytest.raises(ApiError) as caught:
        client.query_task(TASK_ID)
    assert "Quota Frobnicated Today" in str(caught.value)
    assert "77770001" in str(caught.value)
    assert caught.value.code == "77770001"


def test_message_read_from_message_key_when_msg_is_absent(
    rsps: responses.RequestsMock, client: Hitem3DClient
) -> None:
    add_tokens(rsps, "tok")
    rsps.add(responses.GET, QUERY_URL, json={"code": 77770002, "message": "Spelled Message", "data": {}})
    with pytest.raises(ApiError, match="Spelled Message"):
        client.query_task(TASK_ID)


def test_message_read_from_msg_key(rsps: responses.RequestsMock, client: Hitem3DClient) -> None:
    add_tokens(rsps, "tok")
    rsps.add(responses.GET, QUERY_URL, json={"code": 77770003, "msg": "Spelled Msg", "data": {}})
    with pytest.raises(ApiError, match="Spelled Msg"):
        client.query_task(TASK_ID)


def test_unknown_code_without_message_still_names_the_code(
    rsps: responses.RequestsMock, client: Hitem3DClient
) -> None:
    add_tokens(rsps, "tok")
    rsps.add(responses.GET, QUERY_URL, json={"code": 77770004, "data": {}})
    with pytest.raises(ApiError, match="77770004"):
        client.query_task(TASK_ID)


def test_documented_code_uses_our_wording(rsps: responses.RequestsMock, client: Hitem3DClient) -> None:
    add_tokens(rsps, "tok")
    rsps.add(responses.GET, QUERY_URL, json={"code": 30010000, "msg": "balance is not enough", "data": {}})
    with pytest.raises(ApiError) as caught:
        client.query_task(TASK_ID)
    assert "credits" in str(caught.value)
    assert "30010000" in str(caught.value)


def test_system_error_code_is_a_retryable_server_error(
    rsps: responses.RequestsMock, client: Hitem3DClient
) -> None:
    add_tokens(rsps, "tok")
    rsps.add(responses.GET, QUERY_URL, json={"code": 10000000, "msg": "system error", "data": {}})
    with pytest.raises(ServerError) as caught:
        client.query_task(TASK_ID)
    assert caught.value.retryable


def test_task_not_exist_raises_task_not_found(rsps: responses.RequestsMock, client: Hitem3DClient) -> None:
    add_tokens(rsps, "tok")
    rsps.add(responses.GET, QUERY_URL, json={"code": 40040000, "msg": "task not exist", "data": {}})
    with pytest.raises(TaskNotFound):
        client.query_task(TASK_ID)


# -- transport faults ---------------------------------------------------------------------


@pytest.mark.parametrize("status", [500, 502, 503, 504])
def test_5xx_is_a_retryable_server_error_with_retry_after(
    rsps: responses.RequestsMock, client: Hitem3DClient, status: int
) -> None:
    add_tokens(rsps, "tok")
    rsps.add(responses.GET, QUERY_URL, body="<html>down</html>", status=status, headers={"Retry-After": "7"})
    with pytest.raises(ServerError) as caught:
        client.query_task(TASK_ID)
    assert caught.value.retryable
    assert caught.value.retry_after == 7.0
    assert str(status) in str(caught.value)


def test_429_is_a_retryable_server_error_with_retry_after(
    rsps: responses.RequestsMock, client: Hitem3DClient
) -> None:
    add_tokens(rsps, "tok")
    rsps.add(responses.GET, QUERY_URL, json={"code": 429}, status=429, headers={"Retry-After": "2.5"})
    with pytest.raises(ServerError) as caught:
        client.query_task(TASK_ID)
    assert caught.value.retryable
    assert caught.value.retry_after == 2.5


def test_5xx_without_retry_after_has_none(rsps: responses.RequestsMock, client: Hitem3DClient) -> None:
    add_tokens(rsps, "tok")
    rsps.add(responses.GET, QUERY_URL, body="", status=503)
    with pytest.raises(ServerError) as caught:
        client.query_task(TASK_ID)
    assert caught.value.retry_after is None


def test_unparseable_retry_after_is_ignored(rsps: responses.RequestsMock, client: Hitem3DClient) -> None:
    add_tokens(rsps, "tok")
    rsps.add(responses.GET, QUERY_URL, body="", status=503, headers={"Retry-After": "soon"})
    with pytest.raises(ServerError) as caught:
        client.query_task(TASK_ID)
    assert caught.value.retry_after is None


@pytest.mark.parametrize("body", ["<html>gateway</html>", '{"code": 200', "[1, 2]", ""])
def test_malformed_json_is_a_retryable_server_error(
    rsps: responses.RequestsMock, client: Hitem3DClient, body: str
) -> None:
    add_tokens(rsps, "tok")
    rsps.add(responses.GET, QUERY_URL, body=body, status=200)
    with pytest.raises(ServerError) as caught:
        client.query_task(TASK_ID)
    assert caught.value.retryable


def test_non_json_404_points_at_the_base_url(rsps: responses.RequestsMock, client: Hitem3DClient) -> None:
    add_tokens(rsps, "tok")
    rsps.add(responses.GET, QUERY_URL, body="Not Found", status=404)
    with pytest.raises(ApiError, match="base URL"):
        client.query_task(TASK_ID)


@pytest.mark.parametrize(
    "exc, words",
    [
        (requests.exceptions.ConnectionError("boom " + QUERY_URL + "?task_id=" + TASK_ID), "Cannot reach"),
        (requests.exceptions.ReadTimeout("read timed out " + QUERY_URL + "?task_id=" + TASK_ID), "did not answer"),
        (requests.exceptions.ConnectTimeout("connect timed out"), "did not answer"),
        (requests.exceptions.SSLError("cert " + QUERY_URL + "?task_id=" + TASK_ID), "TLS certificate"),
        (requests.exceptions.ProxyError("proxy"), "proxy"),
    ],
    ids=["connection", "read_timeout", "connect_timeout", "ssl", "proxy"],
)
def test_transport_failure_is_a_network_error_naming_the_host_without_the_query(
    rsps: responses.RequestsMock, client: Hitem3DClient, exc: Exception, words: str
) -> None:
    add_tokens(rsps, "tok")
    rsps.add(responses.GET, QUERY_URL, body=exc)
    with pytest.raises(NetworkError) as caught:
        client.query_task(TASK_ID)
    message = str(caught.value)
    assert caught.value.retryable
    assert words in message
    assert HOST in message
    assert "task_id" not in message
    assert TASK_ID not in message
    assert "?" not in message
    assert caught.value.__cause__ is None and caught.value.__suppress_context__


def test_task_id_is_url_encoded_in_the_query(rsps: responses.RequestsMock, client: Hitem3DClient) -> None:
    add_tokens(rsps, "tok")
    rsps.add(responses.GET, QUERY_URL, json=task_body())
    odd = "a b&state=success#frag/../x%41"
    client.query_task(odd)
    (query,) = calls_to(rsps, QUERY_URL)
    raw_query = urlsplit(query.request.url).query
    assert parse_qs(raw_query) == {"task_id": [odd]}
    assert "&state=" not in raw_query and "#" not in query.request.url


def test_real_task_id_sent_as_task_id_parameter(rsps: responses.RequestsMock, client: Hitem3DClient) -> None:
    add_tokens(rsps, "tok")
    rsps.add(responses.GET, QUERY_URL, json=task_body())
    client.query_task(TASK_ID)
    (query,) = calls_to(rsps, QUERY_URL)
    assert query.request.method == "GET"
    assert parse_qs(urlsplit(query.request.url).query) == {"task_id": [TASK_ID]}


# -- where the credentials go ----------------------------------------------------------------


def test_bearer_header_goes_only_to_the_api_host(rsps: responses.RequestsMock, tmp_path: Any) -> None:
    session = requests.Session()
    client = Hitem3DClient(ApiSettings(BASE, CLIENT_ID, CLIENT_SECRET), session=session)
    add_tokens(rsps, "tok-secret")
    rsps.add(responses.GET, QUERY_URL, json=task_body("success", url=CDN_URL))
    rsps.add(responses.GET, BALANCE_URL, json={"code": 200, "msg": "success", "data": {"totalBalance": 1}})
    rsps.add(responses.GET, CDN_URL.split("?")[0], body=minimal_glb_bytes(), auto_calculate_content_length=True)
    status = client.query_task(TASK_ID)
    client.balance()
    # The result file, both through the downloader and through the API client's own session.
    assert status.model_url is not None
    stream_to_file(requests.Session(), status.model_url, tmp_path / "a.glb", cancel=CancelToken())
    session.get(status.model_url).close()
    elsewhere = [c for c in rsps.calls if urlsplit(c.request.url).hostname != HOST]
    assert len(elsewhere) == 2
    for call in elsewhere:
        assert "Authorization" not in call.request.headers
        assert "tok-secret" not in json.dumps(dict(call.request.headers))
    assert "Authorization" not in session.headers


def test_bearer_header_not_forwarded_on_a_redirect_to_another_host(
    rsps: responses.RequestsMock, client: Hitem3DClient
) -> None:
    add_tokens(rsps, "tok-secret")
    rsps.add(responses.GET, QUERY_URL, status=302, headers={"Location": "https://evil.example/collect"})
    rsps.add(responses.GET, "https://evil.example/collect", json=task_body())
    try:
        client.query_task(TASK_ID)
    except Exception:  # noqa: BLE001 - only where the header went matters here
        pass
    evil = [c for c in rsps.calls if urlsplit(c.request.url).hostname == "evil.example"]
    assert evil, "the redirect was not followed: this test checks nothing"
    assert all("Authorization" not in c.request.headers for c in evil)


def test_basic_credentials_go_only_to_the_token_endpoint(
    rsps: responses.RequestsMock, client: Hitem3DClient
) -> None:
    add_tokens(rsps, "tok")
    rsps.add(responses.GET, QUERY_URL, json=task_body())
    client.query_task(TASK_ID)
    basic = [c for c in rsps.calls if str(c.request.headers.get("Authorization", "")).startswith("Basic ")]
    assert [c.request.url for c in basic] == [TOKEN_URL]


# -- balance -------------------------------------------------------------------------------


@pytest.mark.parametrize("sent, expected", [(1000, 1000.0), ("123.45", 123.45), (0, 0.0)])
def test_balance_parsed_as_a_number(
    rsps: responses.RequestsMock, client: Hitem3DClient, sent: Any, expected: float
) -> None:
    add_tokens(rsps, "tok")
    rsps.add(responses.GET, BALANCE_URL, json={"code": 200, "msg": "success", "data": {"totalBalance": sent}})
    assert client.balance() == pytest.approx(expected)
    (call,) = calls_to(rsps, BALANCE_URL)
    assert call.request.method == "GET"
    assert call.request.headers["Authorization"] == "Bearer tok"


@pytest.mark.parametrize("data", [{}, {"totalBalance": "lots"}, None, {"totalBalance": None}])
def test_unreadable_balance_is_a_retryable_server_error(
    rsps: responses.RequestsMock, client: Hitem3DClient, data: Any
) -> None:
    add_tokens(rsps, "tok")
    rsps.add(responses.GET, BALANCE_URL, json={"code": 200, "msg": "success", "data": data})
    with pytest.raises(ServerError):
        client.balance()
