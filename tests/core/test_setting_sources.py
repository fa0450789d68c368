"""Messages follow the source of the setting: a Client ID, Client Secret or
API base URL taken from the environment (a farm's, the sandbox's) is named as
such in every message about it, never sent to "the add-on preferences"."""

from __future__ import annotations


import pytest

from hitem3d_blender.core.api import Hitem3DClient
from hitem3d_blender.core.errors import CredentialsMissing, InvalidCredentials, NetworkError
from hitem3d_blender.core.settings import (
    ENV_BASE_URL,
    ENV_CLIENT_ID,
    ENV_CLIENT_SECRET,
    FROM_DEFAULT,
    FROM_ENVIRONMENT,
    FROM_PREFERENCES,
    InvalidBaseUrl,
    Sources,
    resolve,
    where_from,
)
from tests.support.network_helpers import closed_port
from tests.support.simulator import API, Fault, Hitem3DSimulator

PREFERENCES_MESSAGE = "Hitem3D rejected the Client ID or Client Secret: check them in the add-on preferences"


def test_each_setting_says_where_it_came_from() -> None:
    env = {ENV_BASE_URL: "http://127.0.0.1:8765", ENV_CLIENT_ID: "env-id", ENV_CLIENT_SECRET: "env-secret"}
    assert resolve(environ=env).sources == Sources(FROM_ENVIRONMENT, FROM_ENVIRONMENT, FROM_ENVIRONMENT)
    assert resolve(base_url="https://api.hitem3d.ai", client_id="id", environ={}).sources == Sources(
        FROM_DEFAULT, FROM_PREFERENCES, FROM_DEFAULT)
    mixed = resolve(base_url="https://eu.example", client_secret="secret", environ=env)
    assert mixed.sources == Sources(FROM_PREFERENCES, FROM_ENVIRONMENT, FROM_PREFERENCES)
    # The cheap form the preferences draw with agrees, and gives the address in use.
    assert where_from(environ=env) == (resolve(environ=env).sources, "http://127.0.0.1:8765")
    assert where_from(environ={}) == (Sources(FROM_DEFAULT, FROM_DEFAULT, FROM_DEFAULT), "https://api.hitem3d.ai")


@pytest.mark.parametrize(("env", "words"), [
    ({ENV_CLIENT_ID: "env-id"}, "HITEM3D_CLIENT_ID is set, so set HITEM3D_CLIENT_SECRET too"),
    ({ENV_CLIENT_SECRET: "env-secret"}, "HITEM3D_CLIENT_SECRET is set, so set HITEM3D_CLIENT_ID too"),
    ({}, "set Client ID and Client Secret in the add-on preferences"),
])
def test_missing_credentials_name_the_variable_still_missing(env: dict[str, str], words: str) -> None:
    with pytest.raises(CredentialsMissing) as info:
        resolve(environ=env).require_credentials()
    assert words in str(info.value)


@pytest.mark.parametrize(("prefs", "env", "expected"), [
    ({}, {ENV_CLIENT_ID: "wrong", ENV_CLIENT_SECRET: "wrong"},
     "Hitem3D rejected the Client ID or Client Secret from HITEM3D_CLIENT_ID and HITEM3D_CLIENT_SECRET: "
     "check those environment variables"),
    ({"client_id": "wrong"}, {ENV_CLIENT_SECRET: "wrong"},
     "Hitem3D rejected the Client ID or Client Secret: check the Client ID in the add-on preferences and "
     "HITEM3D_CLIENT_SECRET"),
    ({"client_secret": "wrong"}, {ENV_CLIENT_ID: "wrong"},
     "Hitem3D rejected the Client ID or Client Secret: check HITEM3D_CLIENT_ID and the Client Secret in the add-on "
     "preferences"),
    ({"client_id": "wrong", "client_secret": "wrong"}, {ENV_CLIENT_ID: "ignored"}, PREFERENCES_MESSAGE),
])
@pytest.mark.parametrize("style", ["code", "http"])
def test_rejected_credentials_send_the_artist_where_they_came_from(
        sim: Hitem3DSimulator, prefs: dict[str, str], env: dict[str, str], expected: str, style: str) -> None:
    # The service refuses a key with code 40010000 [doc]; a proxy or an older
    # service may answer HTTP 401 instead: both say the same.
    if style == "http":
        sim.inject(f"{API}/auth/token", Fault.json({"code": 401, "msg": "Unauthorized"}, status=401))
    client = Hitem3DClient(resolve(base_url=sim.base_url, environ=env, **prefs))
    try:
        with pytest.raises(InvalidCredentials) as info:
            client.fetch_token()
    finally:
        client.close()
    assert str(info.value) == expected


def test_an_unreachable_api_at_an_address_from_the_environment_says_where_it_came_from() -> None:
    url = f"http://127.0.0.1:{closed_port()}"
    for prefs, env, noted in (({}, {ENV_BASE_URL: url}, True), ({"base_url": url}, {}, False)):
        client = Hitem3DClient(resolve(client_id="id", client_secret="secret", environ=env, **prefs))
        try:
            with pytest.raises(NetworkError) as info:
                client.fetch_token()
        finally:
            client.close()
        assert str(info.value).startswith("Cannot reach 127.0.0.1:")
        assert str(info.value).endswith(" (API base URL from HITEM3D_API_BASE)") is noted, str(info.value)


def test_an_unusable_base_url_from_the_environment_names_the_variable() -> None:
    with pytest.raises(InvalidBaseUrl) as info:
        resolve(environ={ENV_BASE_URL: "http://api.example.com"})
    assert str(info.value) == ("API base URL must use https:// (http:// only for this computer) "
                               "(API base URL from HITEM3D_API_BASE)")
    with pytest.raises(InvalidBaseUrl) as info:
        resolve(base_url="http://api.example.com", environ={})
    assert str(info.value) == "API base URL must use https:// (http:// only for this computer)"
