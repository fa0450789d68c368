"""Network settings and diagnostics: proxy modes, a CA bundle that adds trust,
and one precise message per cause of failure. Real sockets on loopback: the
simulator (plain and over TLS) and a small recording proxy."""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests
import urllib3

from hitem3d_blender.core import logs, network
from hitem3d_blender.core.api import Hitem3DClient
from hitem3d_blender.core.downloader import stream_to_file
from hitem3d_blender.core.cancel import CancelToken
from hitem3d_blender.core.errors import InvalidCredentials, NetworkError
from hitem3d_blender.core.jobs import JobRunner
from hitem3d_blender.core.network import Cause, NetworkFailure, classify
from hitem3d_blender.core.pipeline import ImportJob
from hitem3d_blender.core.settings import (
    ENV_CA_BUNDLE,
    ApiSettings,
    InvalidNetworkSetting,
    NetworkConfig,
    resolve,
    resolve_network,
)
from hitem3d_blender.core.tasks import TaskState, TaskUpdate
from tests.support.network_helpers import Certificate, RecordingProxy, TlsSimulator, closed_port, make_certificate
from tests.support.simulator import Fault, Hitem3DSimulator

TASK_ID = "2c2ad20cb3204697ba7f80351c3e8606.jjewelry-aigc-api.1NraEb5ohU"
PROXY_VARIABLES = ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "NO_PROXY", "http_proxy", "https_proxy",
                   "all_proxy", "no_proxy", "REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE", ENV_CA_BUNDLE)


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """No proxy or CA variable from the machine running the tests."""
    for name in PROXY_VARIABLES:
        monkeypatch.delenv(name, raising=False)


@pytest.fixture(scope="module")
def certificate(tmp_path_factory: pytest.TempPathFactory) -> Certificate:
    return make_certificate(tmp_path_factory.mktemp("tls"))


@pytest.fixture
def tls_sim(certificate: Certificate) -> Iterator[TlsSimulator]:
    with TlsSimulator(certificate) as simulator:
        yield simulator


@pytest.fixture
def proxy() -> Iterator[RecordingProxy]:
    with RecordingProxy() as value:
        yield value


def settings_for(sim: Hitem3DSimulator, **network_values: str) -> ApiSettings:
    return resolve(base_url=sim.base_url, client_id=sim.client_id, client_secret=sim.client_secret,
                   environ={}, **network_values)


def failure_of(settings: ApiSettings) -> NetworkFailure:
    client = Hitem3DClient(settings)
    try:
        with pytest.raises(NetworkFailure) as caught:
            client.fetch_token()
    finally:
        client.close()
    return caught.value


# -- one message per cause ------------------------------------------------------------


def test_unresolvable_host_says_name_resolution_failed() -> None:
    error = failure_of(ApiSettings("https://api.hitem3d.invalid", "id", "secret"))
    assert error.cause is Cause.DNS
    assert str(error).startswith("Cannot reach api.hitem3d.invalid: the name does not resolve (DNS)")


def test_closed_port_says_the_connection_was_refused() -> None:
    port = closed_port()
    error = failure_of(ApiSettings(f"http://127.0.0.1:{port}", "id", "secret"))
    assert error.cause is Cause.REFUSED
    assert str(error) == f"Cannot reach 127.0.0.1:{port}: connection refused; check the API base URL and port"


def test_slow_answer_says_it_timed_out_and_names_the_timeout_setting(sim: Hitem3DSimulator) -> None:
    sim.inject("/open-api/v1/auth/token", Fault.delay(3.0))
    error = failure_of(ApiSettings(sim.base_url, sim.client_id, sim.client_secret, request_timeout_s=0.3))
    assert error.cause is Cause.TIMEOUT
    assert "did not answer in time" in str(error) and "timeout" in str(error)


def test_untrusted_certificate_says_tls_and_points_at_the_ca_bundle(tls_sim: TlsSimulator) -> None:
    error = failure_of(settings_for(tls_sim))
    assert error.cause is Cause.TLS_UNTRUSTED
    assert str(error).startswith(f"TLS certificate of 127.0.0.1:{tls_sim.port} is not trusted")
    assert "CA bundle" in str(error)


def test_certificate_for_another_host_says_it_does_not_match(tmp_path: Path) -> None:
    other = make_certificate(tmp_path, names=("DNS:elsewhere.example",), common_name="elsewhere.example")
    with TlsSimulator(other) as sim:
        error = failure_of(settings_for(sim, ca_bundle=str(other.cert)))
    assert error.cause is Cause.TLS_HOSTNAME
    assert "does not match" in str(error)


def test_refusing_proxy_says_proxy(sim: Hitem3DSimulator) -> None:
    error = failure_of(settings_for(sim, proxy_mode="custom", proxy_url=f"http://127.0.0.1:{closed_port()}"))
    assert error.cause is Cause.PROXY_REFUSED
    assert str(error).startswith("The proxy refused the connection")


def test_unresolvable_proxy_says_the_proxy_name_did_not_resolve(sim: Hitem3DSimulator) -> None:
    error = failure_of(settings_for(sim, proxy_mode="custom", proxy_url="http://proxy.hitem3d.invalid:3128"))
    assert error.cause is Cause.PROXY_DNS


def test_proxy_refusing_the_tunnel_says_proxy(tls_sim: TlsSimulator, certificate: Certificate) -> None:
    with RecordingProxy(answer=b"403 Forbidden") as proxy:
        error = failure_of(settings_for(tls_sim, proxy_mode="custom", proxy_url=proxy.url,
                                        ca_bundle=str(certificate.cert)))
    assert error.cause is Cause.PROXY
    assert str(error).startswith(f"The proxy could not connect to 127.0.0.1:{tls_sim.port}")


def test_proxy_asking_for_a_password_says_so_for_tunnels(tls_sim: TlsSimulator, certificate: Certificate) -> None:
    with RecordingProxy(answer=b"407 Proxy Authentication Required") as proxy:
        error = failure_of(settings_for(tls_sim, proxy_mode="custom", proxy_url=proxy.url,
                                        ca_bundle=str(certificate.cert)))
    assert error.cause is Cause.PROXY_AUTH
    assert "user:password@" in str(error)


def test_proxy_asking_for_a_password_says_so_for_plain_requests(sim: Hitem3DSimulator) -> None:
    with RecordingProxy(answer=b"407 Proxy Authentication Required") as proxy:
        error = failure_of(settings_for(sim, proxy_mode="custom", proxy_url=proxy.url))
    assert error.cause is Cause.PROXY_AUTH


def test_wrong_credentials_are_not_a_network_error(sim: Hitem3DSimulator) -> None:
    client = Hitem3DClient(ApiSettings(sim.base_url, sim.client_id, "wrong"))
    with pytest.raises(InvalidCredentials):
        client.fetch_token()
    client.close()


def test_every_cause_has_its_own_message() -> None:
    messages = [network.MESSAGES[cause].format(host="api.hitem3d.ai") for cause in Cause]
    assert len(set(messages)) == len(messages) == len(network.MESSAGES)


def test_messages_never_quote_the_exception_text() -> None:
    signed = "https://cdn.example/0.glb?auth_key=1700000000-ab-0-ffee"
    for exc in (requests.exceptions.ConnectionError(signed), requests.exceptions.SSLError(signed),
                requests.exceptions.ProxyError(signed), requests.exceptions.ReadTimeout(signed)):
        assert "auth_key" not in str(network.failure_error(exc, "cdn.example"))


def test_urllib3_1_style_chains_are_classified_too() -> None:
    # urllib3 1.26 (older Blenders) wraps the gaierror in NewConnectionError.
    def wrapped(inner: BaseException, proxy: bool = False) -> requests.RequestException:
        try:
            try:
                raise inner
            except OSError as os_error:
                raise urllib3.exceptions.NewConnectionError(None, "Failed to establish a new connection") from os_error
        except urllib3.exceptions.NewConnectionError as new_connection:
            reason: Exception = urllib3.exceptions.ProxyError("Cannot connect to proxy.", new_connection) \
                if proxy else new_connection
            error = urllib3.exceptions.MaxRetryError(None, "/x", reason)  # type: ignore[arg-type]
            return (requests.exceptions.ProxyError if proxy else requests.exceptions.ConnectionError)(error)

    assert classify(wrapped(socket.gaierror(-2, "Name or service not known"))) is Cause.DNS
    assert classify(wrapped(ConnectionRefusedError(111, "Connection refused"))) is Cause.REFUSED
    assert classify(wrapped(ConnectionRefusedError(111, "Connection refused"), proxy=True)) is Cause.PROXY_REFUSED
    assert classify(wrapped(socket.gaierror(-2, "Name or service not known"), proxy=True)) is Cause.PROXY_DNS


def test_socks_proxy_from_the_environment_says_socks_is_unsupported() -> None:
    exc = requests.exceptions.InvalidSchema("Missing dependencies for SOCKS support.")
    assert classify(exc) is Cause.PROXY_UNSUPPORTED


# -- the CA bundle ------------------------------------------------------------------


def test_ca_bundle_setting_makes_a_self_signed_server_trusted(tls_sim: TlsSimulator,
                                                              certificate: Certificate) -> None:
    client = Hitem3DClient(settings_for(tls_sim, ca_bundle=str(certificate.cert)))
    try:
        assert client.fetch_token()
    finally:
        client.close()


def test_downloads_trust_the_ca_bundle_too(tls_sim: TlsSimulator, certificate: Certificate,
                                           tmp_path: Path) -> None:
    tls_sim.add_task(TASK_ID, ["success"])
    client = Hitem3DClient(settings_for(tls_sim, ca_bundle=str(certificate.cert)))
    try:
        status = client.query_task(TASK_ID)
        assert status.model_url is not None and status.model_url.startswith("https://")
        downloaded = stream_to_file(client.downloads, status.model_url, tmp_path / "a.glb", cancel=CancelToken())
    finally:
        client.close()
    assert downloaded.size > 0


def test_ca_bundle_adds_to_the_public_authorities(certificate: Certificate) -> None:
    combined = Path(network.combined_ca_bundle(str(certificate.cert))).read_text()
    public = Path(requests.certs.where()).read_text()
    assert certificate.cert.read_text().strip() in combined
    assert public.strip() in combined


def test_ca_bundle_setting_wins_over_requests_ca_bundle_variable(
        tls_sim: TlsSimulator, certificate: Certificate, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", requests.certs.where())  # without our certificate
    client = Hitem3DClient(settings_for(tls_sim, ca_bundle=str(certificate.cert)))
    try:
        assert client.fetch_token()
    finally:
        client.close()


def test_verification_cannot_be_switched_off_per_request(tls_sim: TlsSimulator) -> None:
    session = network.new_session(NetworkConfig())
    with pytest.raises(requests.exceptions.SSLError):
        session.get(tls_sim.base_url + "/open-api/v1/balance", verify=False, timeout=5)
    session.close()


def test_ca_bundle_comes_from_the_environment_when_the_setting_is_empty(certificate: Certificate) -> None:
    config = resolve_network(environ={ENV_CA_BUNDLE: str(certificate.cert)})
    assert config.ca_bundle == str(certificate.cert)


def test_missing_ca_bundle_file_is_refused_before_any_request(tmp_path: Path) -> None:
    with pytest.raises(InvalidNetworkSetting, match="CA bundle file not found"):
        resolve_network(ca_bundle=str(tmp_path / "missing.pem"))


def test_ca_bundle_that_is_not_pem_is_refused(tmp_path: Path) -> None:
    der = tmp_path / "corporate.cer"
    der.write_bytes(b"\x30\x82\x01\x0a not a pem file")
    with pytest.raises(InvalidNetworkSetting, match="no PEM certificate"):
        resolve_network(ca_bundle=str(der))


def test_editing_the_ca_bundle_file_makes_new_settings(tmp_path: Path, certificate: Certificate) -> None:
    bundle = tmp_path / "ca.pem"
    bundle.write_bytes(certificate.cert.read_bytes())
    before = resolve_network(ca_bundle=str(bundle))
    bundle.write_bytes(certificate.cert.read_bytes() + b"\n")
    assert resolve_network(ca_bundle=str(bundle)) != before


# -- proxy modes ----------------------------------------------------------------------


def test_custom_proxy_carries_api_calls(sim: Hitem3DSimulator, proxy: RecordingProxy) -> None:
    sim.add_task(TASK_ID, ["processing"])
    client = Hitem3DClient(settings_for(sim, proxy_mode="custom", proxy_url=proxy.url))
    try:
        client.query_task(TASK_ID)
    finally:
        client.close()
    assert proxy.seen(f"POST {sim.base_url}/open-api/v1/auth/token")
    assert proxy.seen(f"GET {sim.base_url}/open-api/v1/query-task")


def test_custom_proxy_carries_downloads(sim: Hitem3DSimulator, proxy: RecordingProxy, tmp_path: Path) -> None:
    sim.add_task(TASK_ID, ["success"])
    settings = settings_for(sim, proxy_mode="custom", proxy_url=proxy.url)
    runner = JobRunner()
    try:
        runner.start_import(ImportJob(TASK_ID, tmp_path / "a.glb", poll_interval_s=0.01), settings)
        updates = _drain_until_done(runner)
    finally:
        runner.shutdown()
    assert updates[-1].state is TaskState.DOWNLOADED
    assert proxy.seen(f"GET {sim.base_url}/files/")


def test_custom_proxy_tunnels_https(tls_sim: TlsSimulator, certificate: Certificate,
                                    proxy: RecordingProxy) -> None:
    client = Hitem3DClient(settings_for(tls_sim, proxy_mode="custom", proxy_url=proxy.url,
                                        ca_bundle=str(certificate.cert)))
    try:
        assert client.fetch_token()
    finally:
        client.close()
    assert proxy.seen(f"CONNECT 127.0.0.1:{tls_sim.port}")


def test_no_proxy_mode_ignores_proxy_variables(sim: Hitem3DSimulator, proxy: RecordingProxy,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HTTP_PROXY", proxy.url)
    monkeypatch.setenv("http_proxy", proxy.url)
    client = Hitem3DClient(settings_for(sim, proxy_mode="none"))
    try:
        assert client.fetch_token()
    finally:
        client.close()
    assert proxy.lines == []
    assert sim.count("/open-api/v1/auth/token") == 1


def test_environment_mode_uses_the_proxy_variables(sim: Hitem3DSimulator, proxy: RecordingProxy,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("http_proxy", proxy.url)
    client = Hitem3DClient(settings_for(sim, proxy_mode="environment"))
    try:
        assert client.fetch_token()
    finally:
        client.close()
    assert proxy.seen("/open-api/v1/auth/token")


def test_environment_mode_honours_no_proxy(sim: Hitem3DSimulator, proxy: RecordingProxy,
                                           monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("http_proxy", proxy.url)
    monkeypatch.setenv("no_proxy", "127.0.0.1")
    client = Hitem3DClient(settings_for(sim, proxy_mode="environment"))
    try:
        assert client.fetch_token()
    finally:
        client.close()
    assert proxy.lines == []


def test_system_mode_follows_the_usual_variables(sim: Hitem3DSimulator, proxy: RecordingProxy,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("http_proxy", proxy.url)
    client = Hitem3DClient(settings_for(sim))
    try:
        assert client.fetch_token()
    finally:
        client.close()
    assert proxy.seen("/open-api/v1/auth/token")


def test_proxy_host_and_port_alone_mean_http() -> None:
    assert resolve_network(proxy_mode="custom", proxy_url=" proxy.corp:3128 ").proxy_url == "http://proxy.corp:3128"


@pytest.mark.parametrize("url, words", [
    ("", "proxy URL is empty"),
    ("socks5://proxy:1080", "SOCKS proxies are not supported"),
    ("ftp://proxy:21", "Proxy URL must look like"),
    ("http://proxy:port", "Proxy URL must look like"),
])
def test_unusable_custom_proxy_is_refused_before_any_request(url: str, words: str) -> None:
    with pytest.raises(InvalidNetworkSetting, match=words):
        resolve_network(proxy_mode="custom", proxy_url=url)


def test_unknown_proxy_mode_is_refused() -> None:
    with pytest.raises(InvalidNetworkSetting, match="Unknown proxy mode"):
        resolve_network(proxy_mode="auto")


def test_proxy_url_of_other_modes_is_ignored() -> None:
    assert resolve_network(proxy_mode="none", proxy_url="http://proxy:3128").proxy_url == ""


def test_proxy_password_is_never_shown(caplog: pytest.LogCaptureFixture) -> None:
    config = resolve_network(proxy_mode="custom", proxy_url="http://artist:Pr0xy-Pa55@proxy.corp:3128")
    assert "Pr0xy-Pa55" not in repr(ApiSettings("https://api.hitem3d.ai", "id", "secret", network=config))
    network.new_session(config).close()
    assert "Pr0xy-Pa55" not in logs.redact("proxy http://artist:Pr0xy-Pa55@proxy.corp:3128")


def test_proxy_password_from_the_environment_is_masked_in_logs(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("https_proxy", "http://artist:Env-Pa55word@proxy.corp:3128")
    network.new_session(NetworkConfig()).close()
    assert "Env-Pa55word" not in logs.redact("via http://artist:Env-Pa55word@proxy.corp:3128")


def test_network_errors_stay_network_errors() -> None:
    # Callers (the pipeline's retry, the panel) rely on the base class.
    assert issubclass(NetworkFailure, NetworkError)
    assert network.failure_error(requests.exceptions.ConnectionError("x"), "h").retryable


def _drain_until_done(runner: JobRunner, timeout_s: float = 10.0) -> list[TaskUpdate]:
    """Updates of the one job until its last (DOWNLOADED, FAILED or CANCELLED)."""
    updates: list[TaskUpdate] = []
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        updates += [item for item in runner.drain() if isinstance(item, TaskUpdate)]
        if updates and (updates[-1].state.is_terminal or updates[-1].state is TaskState.DOWNLOADED):
            return updates
        time.sleep(0.01)
    raise AssertionError(f"job did not finish: {updates}")
