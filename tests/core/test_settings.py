"""Connection settings: environment fallbacks, base URL rules, secret hygiene."""

from __future__ import annotations

import pytest

from hitem3d_blender.core import settings
from hitem3d_blender.core.errors import CredentialsMissing
from hitem3d_blender.core.settings import (
    DEFAULT_BASE_URL,
    ENV_BASE_URL,
    ENV_CLIENT_ID,
    ENV_CLIENT_SECRET,
    ApiSettings,
    InvalidBaseUrl,
    normalize_base_url,
    resolve,
)

SECRET = "s3cret-Value-9f8e7d"


def test_base_url_defaults_to_the_public_api_without_prefs_or_env() -> None:
    assert resolve(environ={}).base_url == DEFAULT_BASE_URL == "https://api.hitem3d.ai"


def test_base_url_falls_back_to_env() -> None:
    result = resolve(environ={ENV_BASE_URL: "https://staging.hitem3d.example"})
    assert result.base_url == "https://staging.hitem3d.example"


def test_client_id_falls_back_to_env() -> None:
    assert resolve(environ={ENV_CLIENT_ID: " env-id "}).client_id == "env-id"


def test_client_secret_falls_back_to_env() -> None:
    assert resolve(environ={ENV_CLIENT_SECRET: f" {SECRET}\n"}).client_secret == SECRET


def test_env_is_os_environ_when_not_given(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(ENV_CLIENT_ID, "from-os-environ")
    assert resolve().client_id == "from-os-environ"


def test_prefs_win_over_env() -> None:
    env = {
        ENV_BASE_URL: "https://env.example",
        ENV_CLIENT_ID: "env-id",
        ENV_CLIENT_SECRET: "env-secret",
    }
    result = resolve(base_url="https://prefs.example", client_id="pref-id", client_secret="pref-secret", environ=env)
    assert (result.base_url, result.client_id, result.client_secret) == (
        "https://prefs.example",
        "pref-id",
        "pref-secret",
    )


def test_blank_pref_counts_as_empty_and_falls_back_to_env() -> None:
    result = resolve(client_id="   ", environ={ENV_CLIENT_ID: "env-id"})
    assert result.client_id == "env-id"


@pytest.mark.parametrize(
    "pasted",
    [
        "https://api.hitem3d.ai/",
        "https://api.hitem3d.ai///",
        "  https://api.hitem3d.ai  ",
        "https://api.hitem3d.ai/open-api/v1",
        "https://api.hitem3d.ai/open-api/v1/",
    ],
)
def test_base_url_normalised(pasted: str) -> None:
    assert normalize_base_url(pasted) == "https://api.hitem3d.ai"


def test_base_url_from_env_is_normalised_too() -> None:
    result = resolve(environ={ENV_BASE_URL: "https://api.hitem3d.ai/open-api/v1/"})
    assert result.base_url == "https://api.hitem3d.ai"


@pytest.mark.parametrize(
    "url",
    ["http://127.0.0.1:8765", "http://localhost:8765", "http://[::1]:8765", "http://127.0.0.1"],
)
def test_http_allowed_for_loopback(url: str) -> None:
    assert normalize_base_url(url) == url


@pytest.mark.parametrize(
    "url",
    [
        "http://api.hitem3d.ai",
        "http://api.hitem3d.com",
        "http://192.168.1.10:8765",
        "http://localhost.evil.example",
        "http://127.0.0.1.nip.io",
    ],
)
def test_http_refused_for_other_hosts(url: str) -> None:
    with pytest.raises(InvalidBaseUrl, match="https"):
        normalize_base_url(url)


@pytest.mark.parametrize("url", ["ftp://api.hitem3d.ai", "api.hitem3d.ai", "https://", "", "file:///etc/passwd"])
def test_base_url_without_scheme_or_host_refused(url: str) -> None:
    with pytest.raises(InvalidBaseUrl):
        normalize_base_url(url)


def test_resolve_refuses_plain_http_from_env() -> None:
    with pytest.raises(InvalidBaseUrl):
        resolve(environ={ENV_BASE_URL: "http://api.hitem3d.ai"})


def test_repr_never_contains_the_secret() -> None:
    result = resolve(client_id="visible-id", client_secret=SECRET, environ={})
    assert SECRET not in repr(result)
    assert SECRET not in str(result)
    assert "visible-id" in repr(result)


def test_has_credentials_needs_both_id_and_secret() -> None:
    assert ApiSettings(DEFAULT_BASE_URL, "id", SECRET).has_credentials
    assert not ApiSettings(DEFAULT_BASE_URL, "id", "").has_credentials
    assert not ApiSettings(DEFAULT_BASE_URL, "", SECRET).has_credentials


def test_require_credentials_raises_credentials_missing_with_guidance() -> None:
    with pytest.raises(CredentialsMissing) as caught:
        resolve(environ={}).require_credentials()
    message = str(caught.value)
    assert "Client ID" in message
    assert "Client Secret" in message
    assert "preferences" in message


def test_require_credentials_passes_when_both_are_set() -> None:
    ApiSettings(DEFAULT_BASE_URL, "id", SECRET).require_credentials()


def test_poll_interval_and_timeout_have_floors() -> None:
    result = resolve(poll_interval_s=0.0, request_timeout_s=0.0, environ={})
    assert result.poll_interval_s == pytest.approx(0.05)
    assert result.request_timeout_s == pytest.approx(1.0)


def test_env_variable_names_are_stable() -> None:
    assert (settings.ENV_BASE_URL, settings.ENV_CLIENT_ID, settings.ENV_CLIENT_SECRET) == (
        "HITEM3D_API_BASE",
        "HITEM3D_CLIENT_ID",
        "HITEM3D_CLIENT_SECRET",
    )
