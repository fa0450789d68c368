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


def test_numbers_that_are_not_finite_or_out_of_range_keep_their_default(tmp_path: Path) -> None:
    """Issue 21.12: a NaN poll interval polled at 20 Hz, a NaN download limit broke every import."""
    defaults = {"poll_interval": 3.0, "max_download_gb": 2.0, "max_converters": 2, "request_timeout": 30.0,
                "auto_import": True}
    bounds = {"poll_interval": settings_store.Bounds(0.1, 60.0), "max_download_gb": settings_store.Bounds(0.0001, 1e6),
              "max_converters": settings_store.Bounds(1, 16), "request_timeout": settings_store.Bounds(1.0, 600.0)}
    path = tmp_path / "settings.json"
    for bad in ("NaN", "Infinity", "-Infinity", "-1", "1e300", "true", '"3"', "[3]"):
        path.write_text('{"settings": {"poll_interval": %s, "max_download_gb": %s, "max_converters": %s, '
                        '"request_timeout": %s, "auto_import": 1}}' % (bad, bad, bad, bad))
        assert settings_store.load(path, defaults, bounds) == {}, bad
    path.write_text('{"settings": {"max_converters": 2.5}}')  # a count is whole
    assert settings_store.load(path, defaults, bounds) == {}
    path.write_text('{"settings": {"poll_interval": 0.5, "max_download_gb": 4, "max_converters": 3}}')
    assert settings_store.load(path, defaults, bounds) == {"poll_interval": 0.5, "max_download_gb": 4.0,
                                                           "max_converters": 3}


def test_texts_too_long_with_a_nul_or_an_unknown_item_keep_their_default(tmp_path: Path) -> None:
    path = tmp_path / "settings.json"
    bounds = {"proxy_mode": settings_store.Bounds(choices=("SYSTEM", "NONE"))}
    path.write_text('{"settings": {"client_id": "%s", "client_secret": "a\\u0000b", "proxy_mode": "EVIL"}}'
                    % ("x" * 5000))
    assert settings_store.load(path, DEFAULTS, bounds) == {}


def test_a_settings_file_that_is_huge_or_a_fifo_is_not_read(tmp_path: Path) -> None:
    path = tmp_path / "settings.json"
    path.write_text('{"settings": {"client_id": "%s"}}' % ("x" * 300_000))
    assert settings_store.load(path, DEFAULTS) == {}
    if hasattr(os, "mkfifo"):
        path.unlink()
        os.mkfifo(path)
        assert settings_store.load(path, DEFAULTS) == {}  # returns at once: never waits for a writer


def test_a_poll_interval_or_timeout_that_is_not_a_number_is_the_default() -> None:
    settings = resolve(poll_interval_s=float("nan"), request_timeout_s=float("inf"), environ={})
    assert settings.poll_interval_s == 3.0 and settings.request_timeout_s == 30.0
