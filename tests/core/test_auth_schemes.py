"""The authorization scheme of each endpoint: the one its page shows, the
other one when Hitem3D refuses it, remembered, and the credentials blamed
only after both (against the simulator's auth modes; no Blender)."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path

import pytest

from hitem3d_blender.core.api import Hitem3DClient
from hitem3d_blender.core.errors import ApiError
from hitem3d_blender.core.kind_requests import KindRequest
from hitem3d_blender.core.settings import ApiSettings
from tests.support.glb_factory import minimal_glb_bytes
from tests.support.kind_assets import depth_png_bytes
from tests.support.simulator import API, Fault, Hitem3DSimulator

SPLIT_CREATE = f"{API}/split/create-task"
SPLIT_QUERY = f"{API}/split/query-task"
SPLIT_ID = "split_8f1c2d3e4b5a69788796a5b4c3d2e1f0"
TOKEN_PATH = f"{API}/auth/token"


@pytest.fixture
def mesh(tmp_path: Path) -> Path:
    path = tmp_path / "Chair.glb"
    path.write_bytes(minimal_glb_bytes())
    return path


@contextlib.contextmanager
def client_for(sim: Hitem3DSimulator) -> Iterator[Hitem3DClient]:
    instance = Hitem3DClient(ApiSettings(sim.base_url, sim.client_id, sim.client_secret, request_timeout_s=5.0))
    try:
        yield instance
    finally:
        instance.close()


@pytest.fixture(params=["documented", "bearer"])
def sim(request: pytest.FixtureRequest) -> Iterator[Hitem3DSimulator]:
    with Hitem3DSimulator(auth_mode=request.param) as simulator:
        yield simulator


@pytest.fixture
def client(sim: Hitem3DSimulator) -> Iterator[Hitem3DClient]:
    with client_for(sim) as instance:
        yield instance


def schemes(sim: Hitem3DSimulator, path: str) -> list[str]:
    return [(r.header("Authorization") or "").split(" ")[0] for r in sim.requests if r.path == path]


def test_each_endpoint_gets_the_scheme_its_page_shows(tmp_path: Path) -> None:
    picture = tmp_path / "coin.png"
    picture.write_bytes(depth_png_bytes())
    with Hitem3DSimulator(auth_mode="documented") as sim, client_for(sim) as client:
        sim.add_task(SPLIT_ID, ["success"])
        client.query_task(SPLIT_ID)
        client.submit_kind(KindRequest("depth", source_path=str(picture)))
        client.balance()

    # One request each, no probing: Token where the split pages show it, Bearer elsewhere.
    assert schemes(sim, SPLIT_QUERY) == ["Token"]
    assert schemes(sim, f"{API}/depth/create-task") == ["Bearer"]
    assert schemes(sim, f"{API}/balance") == ["Bearer"]
    assert sim.count(TOKEN_PATH) == 1


def test_a_split_is_created_whichever_scheme_hitem3d_takes(sim: Hitem3DSimulator, client: Hitem3DClient,
                                                           mesh: Path) -> None:
    task_id = client.submit_kind(KindRequest("split", source_path=str(mesh)))

    assert task_id.startswith("split_") and len(sim.submissions) == 1
    if sim.auth_mode == "documented":
        assert schemes(sim, SPLIT_CREATE) == ["Token"]
    else:
        # Refused as the page shows it: a new token (it may have expired), then Bearer once.
        assert schemes(sim, SPLIT_CREATE) == ["Token", "Token", "Bearer"]
        assert sim.count(TOKEN_PATH) == 2


def test_the_scheme_that_worked_is_kept_for_the_session(mesh: Path) -> None:
    with Hitem3DSimulator(auth_mode="bearer") as sim, client_for(sim) as client:
        client.submit_kind(KindRequest("split", source_path=str(mesh)))
        sim.reset_log()

        client.submit_kind(KindRequest("split", {"model": "general"}, source_path=str(mesh)))

        assert schemes(sim, SPLIT_CREATE) == ["Bearer"]  # straight away: no request is spent learning again
        assert sim.count(TOKEN_PATH) == 0


def test_once_a_token_page_took_bearer_the_other_token_pages_try_bearer_first(mesh: Path) -> None:
    with Hitem3DSimulator(auth_mode="bearer") as sim, client_for(sim) as client:
        task_id = client.submit_kind(KindRequest("split", source_path=str(mesh)))
        sim.reset_log()

        client.query_task(task_id)
        client.submit_kind(KindRequest("segmentation", source_path=str(mesh)))

        assert schemes(sim, SPLIT_QUERY) == ["Bearer"] and schemes(sim, f"{API}/segmentation/create-task") == ["Bearer"]
        assert sim.count(TOKEN_PATH) == 0


def test_a_token_page_that_takes_token_keeps_it_though_another_took_bearer(mesh: Path) -> None:
    """Only a hint: a Token page that refuses Bearer is answered as its page shows, and kept so."""
    with Hitem3DSimulator(auth_mode="documented") as sim, client_for(sim) as client:
        method, _, handler, kind = sim._routes[SPLIT_CREATE]
        sim._routes[SPLIT_CREATE] = (method, "Bearer", handler, kind)  # a service whose split page is wrong
        client.submit_kind(KindRequest("split", source_path=str(mesh)))  # Token refused twice: Bearer
        sim.reset_log()

        client.submit_kind(KindRequest("segmentation", source_path=str(mesh)))
        client.submit_kind(KindRequest("segmentation", source_path=str(mesh)))

        assert schemes(sim, f"{API}/segmentation/create-task") == ["Bearer", "Bearer", "Token", "Token"]


def test_an_expired_token_and_a_wrong_scheme_at_once_cost_three_requests(mesh: Path) -> None:
    with Hitem3DSimulator(auth_mode="bearer") as sim, client_for(sim) as client:
        client.balance()  # a token, then it expires on the server
        sim.expire_tokens()
        sim.reset_log()

        client.submit_kind(KindRequest("split", source_path=str(mesh)))

        assert schemes(sim, SPLIT_CREATE) == ["Token", "Token", "Bearer"]
        assert sim.count(TOKEN_PATH) == 1 and len(sim.submissions) == 1


def test_an_expired_token_is_renewed_once_under_the_documented_scheme(sim: Hitem3DSimulator,
                                                                       client: Hitem3DClient) -> None:
    sim.add_task(SPLIT_ID, ["processing"])
    client.query_task(SPLIT_ID)
    sim.expire_tokens()
    sim.reset_log()

    assert client.query_task(SPLIT_ID).state == "processing"

    expected = ["Token", "Token"] if sim.auth_mode == "documented" else ["Bearer", "Bearer"]
    assert schemes(sim, SPLIT_QUERY) == expected
    assert sim.count(TOKEN_PATH) == 1


def test_the_credentials_are_blamed_only_after_both_schemes(sim: Hitem3DSimulator, client: Hitem3DClient) -> None:
    client.balance()
    sim.reset_log()
    sim.inject(f"{API}/balance", Fault.json({"code": 401, "msg": "Unauthorized"}, status=401), times=5)

    with pytest.raises(ApiError, match="did not accept a fresh access token: check your credentials"):
        client.balance()

    assert schemes(sim, f"{API}/balance") == ["Bearer", "Bearer", "Token"]  # three, and no loop
    assert sim.count(TOKEN_PATH) == 1


def test_a_code_401_in_the_body_is_a_401_too(mesh: Path) -> None:
    with Hitem3DSimulator(auth_mode="bearer", auth_failure_style="code") as sim, client_for(sim) as client:
        assert client.submit_kind(KindRequest("segmentation", source_path=str(mesh))).startswith("segmentation_")
        assert schemes(sim, f"{API}/segmentation/create-task") == ["Token", "Token", "Bearer"]


def test_a_gateway_403_gets_the_other_scheme_like_a_401(mesh: Path) -> None:
    # Not documented: a 403 without a Hitem3D code is treated as a refused scheme.
    with Hitem3DSimulator(auth_failure_style="gateway403") as sim, client_for(sim) as client:
        assert client.submit_kind(KindRequest("segmentation", source_path=str(mesh))).startswith("segmentation_")
        assert schemes(sim, f"{API}/segmentation/create-task") == ["Token"]
    with Hitem3DSimulator(auth_mode="bearer", auth_failure_style="gateway403") as sim, client_for(sim) as client:
        assert client.submit_kind(KindRequest("segmentation", source_path=str(mesh))).startswith("segmentation_")
        assert schemes(sim, f"{API}/segmentation/create-task") == ["Token", "Token", "Bearer"]
        assert sim.count(TOKEN_PATH) == 2  # the first token, and one new one


def test_a_403_under_both_schemes_says_so_and_never_blames_the_credentials(sim: Hitem3DSimulator,
                                                                          client: Hitem3DClient) -> None:
    client.balance()
    sim.reset_log()
    sim.inject(f"{API}/balance", Fault.json({"message": "Plan does not include the API"}, status=403), times=5)

    with pytest.raises(ApiError) as raised:
        client.balance()

    assert str(raised.value) == ("Hitem3D refused this request (HTTP 403: Plan does not include the API): check on "
                                 "the Hitem3D platform that your key may use it")
    assert schemes(sim, f"{API}/balance") == ["Bearer", "Bearer", "Token"]  # three, and no loop


def test_a_403_with_a_code_of_hitem3d_s_own_is_that_code() -> None:
    with Hitem3DSimulator() as sim, client_for(sim) as client:
        sim.inject(f"{API}/balance", Fault.json({"code": 30010000, "msg": "balance not enough"}, status=403), times=1)
        with pytest.raises(ApiError, match="30010000"):
            client.balance()
        assert schemes(sim, f"{API}/balance") == ["Bearer"]  # answered, not a scheme to change
