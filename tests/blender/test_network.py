"""Network preferences in real Blender: proxy, CA bundle and timeout reach the
client, and Test Connection names the precise cause of a failure."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import bpy
import pytest

from tests.support.blender_helpers import TASK_ID, imported_objects
from tests.support.network_helpers import Certificate, RecordingProxy, TlsSimulator, closed_port, make_certificate
from tests.support.simulator import Hitem3DSimulator


@pytest.fixture
def net(prefs: Any, monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    """The preferences, with the network settings put back afterwards and no
    proxy variable from the machine running the tests."""
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy", "all_proxy",
                 "HITEM3D_CA_BUNDLE"):
        monkeypatch.delenv(name, raising=False)
    yield prefs
    prefs.proxy_mode = "SYSTEM"
    prefs.proxy_url = ""
    prefs.ca_bundle = ""
    prefs.request_timeout = 30.0


@pytest.fixture(scope="module")
def certificate(tmp_path_factory: pytest.TempPathFactory) -> Certificate:
    return make_certificate(tmp_path_factory.mktemp("tls"))


def connection_error() -> str:
    with pytest.raises(RuntimeError) as info:
        bpy.ops.hitem3d.test_connection()
    return str(info.value)


def test_network_settings_are_in_the_preferences(addon: ModuleType) -> None:
    properties = bpy.context.preferences.addons[addon.__name__].preferences.bl_rna.properties
    modes = tuple(item.identifier.lower() for item in properties["proxy_mode"].enum_items)
    assert modes == addon.core.settings.PROXY_MODES
    assert properties["proxy_mode"].default == "SYSTEM"
    assert properties["ca_bundle"].subtype == "FILE_PATH"
    assert properties["request_timeout"].default == 30.0


def test_network_settings_reach_the_client_settings(net: Any, certificate: Certificate) -> None:
    net.proxy_mode = "CUSTOM"
    net.proxy_url = "proxy.corp:3128"
    net.ca_bundle = str(certificate.cert)
    net.request_timeout = 12.0

    settings = net.settings()

    assert settings.network.proxy_mode == "custom"
    assert settings.network.proxy_url == "http://proxy.corp:3128"
    assert settings.network.ca_bundle == str(certificate.cert)
    assert settings.request_timeout_s == 12.0


def test_connection_test_names_a_refused_connection(net: Any) -> None:
    port = closed_port()
    net.base_url = f"http://127.0.0.1:{port}"
    assert f"Cannot reach 127.0.0.1:{port}: connection refused" in connection_error()


def test_connection_test_names_a_refusing_proxy(net: Any) -> None:
    net.proxy_mode = "CUSTOM"
    net.proxy_url = f"http://127.0.0.1:{closed_port()}"
    assert "The proxy refused the connection" in connection_error()


def test_connection_test_names_an_untrusted_certificate(net: Any, certificate: Certificate) -> None:
    with TlsSimulator(certificate) as tls_sim:
        net.base_url = tls_sim.base_url
        assert "is not trusted" in connection_error()


def test_connection_test_passes_with_the_ca_bundle(net: Any, certificate: Certificate) -> None:
    with TlsSimulator(certificate) as tls_sim:
        net.base_url = tls_sim.base_url
        net.ca_bundle = str(certificate.cert)
        assert bpy.ops.hitem3d.test_connection() == {"FINISHED"}


def test_missing_ca_bundle_is_reported_before_any_request(net: Any, sim: Hitem3DSimulator, tmp_path: Path) -> None:
    net.ca_bundle = str(tmp_path / "missing.pem")
    assert "CA bundle file not found" in connection_error()
    assert sim.requests == []


def test_import_goes_through_the_custom_proxy(net: Any, sim: Hitem3DSimulator, sample_glb: Path) -> None:
    sim.add_task(TASK_ID, ["success"], glb=sample_glb)
    with RecordingProxy() as proxy:
        net.proxy_mode = "CUSTOM"
        net.proxy_url = proxy.url
        assert bpy.ops.hitem3d.import_task(task_id=TASK_ID) == {"FINISHED"}
    assert imported_objects()
    assert proxy.seen("/open-api/v1/query-task")
    assert proxy.seen("/files/")
