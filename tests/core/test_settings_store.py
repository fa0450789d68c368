"""Settings kept in the extension's folder, and which value wins."""

from __future__ import annotations

import os
import stat
import sys
from pathlib import Path

import pytest

from hitem3d_blender.core import settings_store
from hitem3d_blender.core.settings import DEFAULT_BASE_URL, resolve

DEFAULTS = {"client_id": "", "client_secret": "", "poll_interval": 3.0, "auto_import": True, "proxy_mode": "SYSTEM"}


def test_saved_settings_come_back(tmp_path: Path) -> None:
    path = tmp_path / "settings.json"
    values = {"client_id": "id-1", "client_secret": "s3cret", "poll_interval": 5.0, "auto_import": False,
              "proxy_mode": "NONE"}
    settings_store.save(path, values)
    assert settings_store.load(path, DEFAULTS) == values


@pytest.mark.skipif(sys.platform == "win32", reason="POSIX file modes")
def test_the_settings_file_is_readable_by_the_user_only(tmp_path: Path) -> None:
    path = tmp_path / "settings.json"
    settings_store.save(path, {"client_secret": "s3cret"})
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600


def test_values_of_the_wrong_type_or_unknown_keys_are_left_out(tmp_path: Path) -> None:
    path = tmp_path / "settings.json"
    path.write_text('{"settings": {"client_id": 7, "poll_interval": 2, "auto_import": "yes", "evil": "x"}}')
    assert settings_store.load(path, DEFAULTS) == {"poll_interval": 2.0}


def test_a_damaged_or_symlinked_settings_file_gives_nothing(tmp_path: Path) -> None:
    path = tmp_path / "settings.json"
    path.write_text("{not json")
    assert settings_store.load(path, DEFAULTS) == {}
    path.unlink()
    elsewhere = tmp_path / "elsewhere.json"
    settings_store.save(elsewhere, {"client_id": "planted"})
    path.symlink_to(elsewhere)
    assert settings_store.load(path, DEFAULTS) == {}


def test_the_environment_wins_over_an_untouched_default_base_url() -> None:
    environ = {"HITEM3D_API_BASE": "http://localhost:8080"}
    assert resolve(base_url=DEFAULT_BASE_URL, environ=environ).base_url == "http://localhost:8080"
    assert resolve(base_url="", environ=environ).base_url == "http://localhost:8080"


def test_a_base_url_set_in_the_preferences_wins_over_the_environment() -> None:
    environ = {"HITEM3D_API_BASE": "http://localhost:8080"}
    assert resolve(base_url="https://eu.api.hitem3d.ai", environ=environ).base_url == "https://eu.api.hitem3d.ai"


def test_credentials_set_in_the_preferences_win_over_the_environment() -> None:
    environ = {"HITEM3D_CLIENT_ID": "env-id", "HITEM3D_CLIENT_SECRET": "env-secret"}
    assert resolve(client_id="pref-id", environ=environ).client_id == "pref-id"
    settings = resolve(environ=environ)
    assert (settings.client_id, settings.client_secret) == ("env-id", "env-secret")
