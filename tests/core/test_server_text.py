"""Text from the server is data: shortened, stripped of control characters and
redacted before it is shown, logged, stored or raised."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import responses

from hitem3d_blender.core import journal
from hitem3d_blender.core.api import MAX_RETRY_AFTER_S, Hitem3DClient
from hitem3d_blender.core.errors import ApiError, Hitem3DError, ServerError
from hitem3d_blender.core.logs import MASK, clean_text, redact
from hitem3d_blender.core.settings import ApiSettings, InvalidBaseUrl, normalize_base_url, resolve
from hitem3d_blender.core.tasks import TaskRecord, TaskState

BASE = "https://api.hitem3d.ai"
TOKEN_URL = f"{BASE}/open-api/v1/auth/token"
QUERY_URL = f"{BASE}/open-api/v1/query-task"
BALANCE_URL = f"{BASE}/open-api/v1/balance"
TASK_ID = "2c2ad20cb3204697ba7f80351c3e8606.jjewelry-aigc-api.1NraEb5ohU"
ISSUED_TOKEN = "issued-9f8e7d6c5b4a39281706f5e4d3c2b1a0"


@pytest.fixture
def rsps() -> Iterator[responses.RequestsMock]:
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        mock.add(responses.POST, TOKEN_URL,
                 json={"code": 200, "data": {"accessToken": ISSUED_TOKEN, "tokenType": "Bearer"}})
        yield mock


@pytest.fixture
def client() -> Iterator[Hitem3DClient]:
    instance = Hitem3DClient(ApiSettings(BASE, "client-id", "client-secret-456", request_timeout_s=5.0))
    yield instance
    instance.close()


def query_error(rsps: responses.RequestsMock, client: Hitem3DClient, body: dict[str, Any]) -> Hitem3DError:
    rsps.add(responses.GET, QUERY_URL, json=body)
    with pytest.raises(Hitem3DError) as caught:
        client.query_task(TASK_ID)
    return caught.value


def test_a_100_kb_message_is_shortened(rsps: responses.RequestsMock, client: Hitem3DClient) -> None:
    error = query_error(rsps, client, {"code": 10099999, "msg": "x" * 100_000})
    assert len(str(error)) < 400
    assert str(error).endswith("… (code 10099999)")


def test_escape_and_control_characters_are_removed(rsps: responses.RequestsMock, client: Hitem3DClient) -> None:
    error = query_error(rsps, client, {"code": 10099999,
                                       "msg": "\x1b[2J\x1b]0;pwned\x07Bad\rthing\x00\n\u202ehappened\x1b[31m"})
    assert str(error) == "Hitem3D answered: Bad thing happened (code 10099999)"


def test_a_message_echoing_the_issued_token_is_masked(rsps: responses.RequestsMock, client: Hitem3DClient,
                                                      tmp_path: Any) -> None:
    error = query_error(rsps, client, {"code": 10099999, "msg": f"session {ISSUED_TOKEN} is odd"})
    assert ISSUED_TOKEN not in str(error) and MASK in str(error)

    rec = TaskRecord(TASK_ID)
    rec.move_to(TaskState.FAILED)
    rec.message = error.message
    path = tmp_path / "journal.json"
    journal.save(path, [rec])
    assert ISSUED_TOKEN not in path.read_text(encoding="utf-8")


def test_an_error_raised_with_a_registered_secret_never_carries_it() -> None:
    from hitem3d_blender.core.logs import register_secret

    register_secret("s3cr3t-value-for-raise")
    assert "s3cr3t" not in str(ApiError("Hitem3D answered: s3cr3t-value-for-raise"))


def test_an_unknown_state_is_quoted_short_and_clean(rsps: responses.RequestsMock, client: Hitem3DClient) -> None:
    error = query_error(rsps, client, {"code": 200, "data": {"state": "\x1b[1m" + "w" * 5000}})
    assert "\x1b" not in str(error) and len(str(error)) < 120


@pytest.mark.parametrize("code", [200, 200.0, "200", "200.0"])
def test_code_200_in_any_number_form_is_success(rsps: responses.RequestsMock, client: Hitem3DClient,
                                                code: Any) -> None:
    rsps.add(responses.GET, BALANCE_URL, json={"code": code, "data": {"totalBalance": 12.5}})
    assert client.balance() == 12.5


def test_retry_after_is_capped_at_a_minute(rsps: responses.RequestsMock, client: Hitem3DClient) -> None:
    rsps.add(responses.GET, BALANCE_URL, status=503, headers={"Retry-After": "3600"})
    with pytest.raises(ServerError) as caught:
        client.balance()
    assert caught.value.retry_after == MAX_RETRY_AFTER_S == 60.0


def test_url_credentials_never_appear() -> None:
    assert redact("see https://bob:hunter2@api.example.com/x") == f"see https://{MASK}@api.example.com/x"
    assert "hunter2" not in clean_text("proxy http://u:hunter2@proxy:3128 failed")


@pytest.mark.parametrize("url", ["https://bob:hunter2@api.hitem3d.ai", "https://bob@api.hitem3d.ai",
                                 "http://:hunter2@localhost:8080"])
def test_an_api_base_url_with_credentials_is_refused(url: str) -> None:
    with pytest.raises(InvalidBaseUrl) as caught:
        normalize_base_url(url)
    assert "must not contain a user name or password" in str(caught.value)
    assert "hunter2" not in str(caught.value) and "bob" not in str(caught.value)
    with pytest.raises(InvalidBaseUrl):
        resolve(base_url="", environ={"HITEM3D_API_BASE": url})


def test_an_error_message_is_one_line() -> None:
    assert str(ServerError("Line one\nline two")) == "Line one line two"
