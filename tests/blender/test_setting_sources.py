"""Where a setting came from, in real Blender: with the credentials and the API
base URL in the environment (a farm's way, the sandbox's), the preferences,
Test Connection, Copy Diagnostics and the command line show the address
actually used and name the variables, never "the add-on preferences"."""

from __future__ import annotations

import io
from collections.abc import Iterator
from types import ModuleType
from typing import Any

import bpy
import pytest

from hitem3d_blender.i18n import translations
from tests.support.blender_helpers import TASK_ID
from tests.support.simulator import Hitem3DSimulator


@pytest.fixture
def from_environment(addon: ModuleType, sim: Hitem3DSimulator, monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    """The simulator and its credentials in the environment, the preferences' fields left as installed."""
    monkeypatch.setenv("HITEM3D_API_BASE", sim.base_url)
    monkeypatch.setenv("HITEM3D_CLIENT_ID", sim.client_id)
    monkeypatch.setenv("HITEM3D_CLIENT_SECRET", sim.client_secret)
    prefs = addon.ui.preferences.get()
    for name in ("base_url", "client_id", "client_secret"):
        prefs.property_unset(name)
    yield prefs
    for name in ("base_url", "client_id", "client_secret"):
        prefs.property_unset(name)


def test_the_preferences_show_the_address_in_use_and_where_each_value_came_from(
        from_environment: Any, sim: Hitem3DSimulator) -> None:
    notes = [translations.text(note) for note in from_environment.source_notes()]
    assert notes == ["Client ID in use: from HITEM3D_CLIENT_ID", "Client Secret in use: from HITEM3D_CLIENT_SECRET",
                     f"API base URL in use: {sim.base_url}, from HITEM3D_API_BASE"]
    # Values typed into the preferences win, and then there is nothing to add.
    from_environment.base_url = sim.base_url
    from_environment.client_id = sim.client_id
    from_environment.client_secret = sim.client_secret
    assert from_environment.source_notes() == []


def test_an_address_with_a_password_in_the_environment_is_shown_masked(from_environment: Any,
                                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HITEM3D_API_BASE", "https://user:hunter2@api.example.com")
    [*_, note] = [translations.text(note) for note in from_environment.source_notes()]
    assert "hunter2" not in note and "api.example.com" in note


def test_test_connection_names_the_host_it_reached_and_where_its_address_came_from(
        addon: ModuleType, from_environment: Any, sim: Hitem3DSimulator) -> None:
    assert bpy.ops.hitem3d.test_connection() == {"FINISHED"}
    status = addon.ui.connection.connection_status()
    assert status.ok
    assert translations.text(status.text) == (f"Connected to {sim.base_url.removeprefix('http://')}: credentials "
                                              "accepted (API base URL from HITEM3D_API_BASE)")


def test_a_rejected_key_from_the_environment_is_blamed_on_the_environment(
        addon: ModuleType, from_environment: Any, sim: Hitem3DSimulator, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HITEM3D_CLIENT_SECRET", "wrong-secret")
    with pytest.raises(RuntimeError, match="from HITEM3D_CLIENT_ID and HITEM3D_CLIENT_SECRET: check those "
                                           "environment variables"):
        bpy.ops.hitem3d.test_connection()

    # The command line, where a farm meets it: the same words, never "the add-on preferences".
    err = io.StringIO()
    code = addon.ui.cli.main(["status", TASK_ID], out=io.StringIO(), err=err)
    assert code == addon.ui.cli.EXIT_FAILED
    assert "HITEM3D_CLIENT_SECRET" in err.getvalue() and "add-on preferences" not in err.getvalue()


def test_copy_diagnostics_says_which_address_was_used_and_where_everything_came_from(
        addon: ModuleType, from_environment: Any, sim: Hitem3DSimulator) -> None:
    lines = addon.ui.diagnostics.report(bpy.context).splitlines()
    assert f"API base URL: {sim.base_url} (from $HITEM3D_API_BASE)" in lines
    assert "Client ID: from $HITEM3D_CLIENT_ID" in lines and "Client Secret: from $HITEM3D_CLIENT_SECRET" in lines
    from_environment.client_id = "typed-in"
    lines = addon.ui.diagnostics.report(bpy.context).splitlines()
    assert "Client ID: set in preferences" in lines
