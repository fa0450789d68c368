"""stream_to_file and its helpers: exact bytes, no credentials, nothing half-written."""

from __future__ import annotations

import os
import struct
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
import responses

from hitem3d_blender.core import downloader
from hitem3d_blender.core.api import Hitem3DClient
from hitem3d_blender.core.downloader import (
    CancelToken,
    check_glb,
    check_result_url,
    stream_to_file,
    url_extension,
)
from hitem3d_blender.core.errors import BadResultFile, Cancelled, ExpiredUrl, NetworkError
from hitem3d_blender.core.settings import ApiSettings
from tests.support.glb_factory import minimal_glb_bytes
from tests.support.simulator import Fault, Hitem3DSimulator

CDN = "https://cdn.hitem3d.example"
FILE_URL = f"{CDN}/target//original/0.glb?auth_key=1700000000-ab12-0-ffee"
FILE_PATH_URL = FILE_URL.split("?")[0]
GLB = minimal_glb_bytes()


@pytest.fixture
def rsps() -> Iterator[responses.RequestsMock]:
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        yield mock


@pytest.fixture
def session() -> Iterator[requests.Session]:
    with requests.Session() as value:
        yield value


def files_in(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.rglob("*") if p.is_file())


def glb_with_declared_length(length: int) -> bytes:
    return GLB[:8] + struct.pack("<I", length) + GLB[12:]


# -- happy path ----------------------------------------------------------------------


def test_writes_exact_bytes(rsps: responses.RequestsMock, session: requests.Session, tmp_path: Path) -> None:
    rsps.add(responses.GET, FILE_PATH_URL, body=GLB, auto_calculate_content_length=True)
    dest = tmp_path / "out" / "model.glb"
    result = stream_to_file(session, FILE_URL, dest, cancel=CancelToken())
    assert dest.read_bytes() == GLB
    assert (result.path, result.size) == (dest, len(GLB))
    assert files_in(tmp_path) == ["model.glb"]


def test_sends_the_full_signed_url(rsps: responses.RequestsMock, session: requests.Session, tmp_path: Path) -> None:
    rsps.add(responses.GET, FILE_PATH_URL, body=GLB)
    stream_to_file(session, FILE_URL, tmp_path / "m.glb", cancel=CancelToken())
    (call,) = rsps.calls
    assert call.request.url == FILE_URL


def test_reports_progress_up_to_the_total(
    rsps: responses.RequestsMock, session: requests.Session, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(downloader, "CHUNK_SIZE", 100)
    rsps.add(responses.GET, FILE_PATH_URL, body=GLB, auto_calculate_content_length=True)
    seen: list[tuple[int, int | None]] = []
    stream_to_file(session, FILE_URL, tmp_path / "m.glb", cancel=CancelToken(),
                   on_progress=lambda done, total: seen.append((done, total)))
    assert len(seen) >= 3
    assert [done for done, _ in seen] == sorted({done for done, _ in seen})  # strictly growing
    assert all(total == len(GLB) for _, total in seen)
    assert seen[-1] == (len(GLB), len(GLB))


def test_progress_total_is_none_without_content_length(
    rsps: responses.RequestsMock, session: requests.Session, tmp_path: Path
) -> None:
    rsps.add(responses.GET, FILE_PATH_URL, body=GLB, auto_calculate_content_length=False)
    seen: list[tuple[int, int | None]] = []
    stream_to_file(session, FILE_URL, tmp_path / "m.glb", cancel=CancelToken(),
                   on_progress=lambda done, total: seen.append((done, total)))
    assert seen[-1] == (len(GLB), None)


def test_sends_no_authorization_header(
    rsps: responses.RequestsMock, session: requests.Session, tmp_path: Path
) -> None:
    rsps.add(responses.GET, FILE_PATH_URL, body=GLB)
    stream_to_file(session, FILE_URL, tmp_path / "m.glb", cancel=CancelToken())
    (call,) = rsps.calls
    assert "Authorization" not in call.request.headers


def test_replaces_an_existing_file_atomically(
    rsps: responses.RequestsMock, session: requests.Session, tmp_path: Path
) -> None:
    dest = tmp_path / "m.glb"
    dest.write_bytes(b"old content")
    rsps.add(responses.GET, FILE_PATH_URL, body=GLB)
    stream_to_file(session, FILE_URL, dest, cancel=CancelToken())
    assert dest.read_bytes() == GLB
    assert files_in(tmp_path) == ["m.glb"]


def test_validate_none_skips_the_glb_check(
    rsps: responses.RequestsMock, session: requests.Session, tmp_path: Path
) -> None:
    rsps.add(responses.GET, FILE_PATH_URL, body=b"RIFF....WEBP")
    dest = tmp_path / "cover.webp"
    stream_to_file(session, FILE_URL, dest, cancel=CancelToken(), validate=None)
    assert dest.read_bytes() == b"RIFF....WEBP"


# -- failures leave nothing --------------------------------------------------------------


def test_short_body_is_a_network_error_and_leaves_no_file(
    rsps: responses.RequestsMock, session: requests.Session, tmp_path: Path
) -> None:
    rsps.add(responses.GET, FILE_PATH_URL, body=GLB[:50], headers={"Content-Length": str(len(GLB))})
    dest = tmp_path / "m.glb"
    with pytest.raises(NetworkError) as caught:
        stream_to_file(session, FILE_URL, dest, cancel=CancelToken())
    assert caught.value.retryable
    assert files_in(tmp_path) == []


def test_truncated_body_from_a_real_server_is_a_network_error_and_leaves_no_file(tmp_path: Path) -> None:
    with Hitem3DSimulator() as sim, requests.Session() as session:
        url = _simulated_file_url(sim, GLB)
        sim.inject("/files/", Fault.truncate(40))
        with pytest.raises(NetworkError):
            stream_to_file(session, url, tmp_path / "m.glb", cancel=CancelToken(), timeout_s=5)
    assert files_in(tmp_path) == []


def test_connection_reset_is_a_network_error_and_leaves_no_file(tmp_path: Path) -> None:
    with Hitem3DSimulator() as sim, requests.Session() as session:
        url = _simulated_file_url(sim, GLB)
        sim.inject("/files/", Fault.reset(after_bytes=30))
        with pytest.raises(NetworkError):
            stream_to_file(session, url, tmp_path / "m.glb", cancel=CancelToken(), timeout_s=5)
    assert files_in(tmp_path) == []


def test_not_a_glb_is_bad_result_file_and_leaves_nothing(
    rsps: responses.RequestsMock, session: requests.Session, tmp_path: Path
) -> None:
    rsps.add(responses.GET, FILE_PATH_URL, body=b"<html>Access denied</html>", auto_calculate_content_length=True)
    with pytest.raises(BadResultFile, match="not a GLB"):
        stream_to_file(session, FILE_URL, tmp_path / "m.glb", cancel=CancelToken())
    assert files_in(tmp_path) == []


def test_failed_download_keeps_an_earlier_good_file(
    rsps: responses.RequestsMock, session: requests.Session, tmp_path: Path
) -> None:
    dest = tmp_path / "m.glb"
    dest.write_bytes(GLB)
    rsps.add(responses.GET, FILE_PATH_URL, body=b"not a model")
    with pytest.raises(BadResultFile):
        stream_to_file(session, FILE_URL, dest, cancel=CancelToken())
    assert dest.read_bytes() == GLB
    assert files_in(tmp_path) == ["m.glb"]


def test_glb_with_wrong_declared_length_is_incomplete(
    rsps: responses.RequestsMock, session: requests.Session, tmp_path: Path
) -> None:
    body = glb_with_declared_length(len(GLB) + 1000)
    rsps.add(responses.GET, FILE_PATH_URL, body=body, auto_calculate_content_length=True)
    with pytest.raises(BadResultFile, match="incomplete"):
        stream_to_file(session, FILE_URL, tmp_path / "m.glb", cancel=CancelToken())
    assert files_in(tmp_path) == []


def test_content_length_over_max_bytes_refused_before_writing(
    rsps: responses.RequestsMock, session: requests.Session, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    rsps.add(responses.GET, FILE_PATH_URL, body=GLB, auto_calculate_content_length=True)
    opened: list[Path] = []
    real_open = Path.open

    def spy_open(self: Path, *args: Any, **kwargs: Any) -> Any:
        opened.append(self)
        return real_open(self, *args, **kwargs)

    monkeypatch.setattr(Path, "open", spy_open)
    progress: list[int] = []
    with pytest.raises(BadResultFile, match="limit"):
        stream_to_file(session, FILE_URL, tmp_path / "m.glb", cancel=CancelToken(),
                       max_bytes=len(GLB) - 1, on_progress=lambda done, total: progress.append(done))
    assert opened == []
    assert progress == []
    assert files_in(tmp_path) == []


def test_body_over_max_bytes_without_content_length_is_refused(
    rsps: responses.RequestsMock, session: requests.Session, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(downloader, "CHUNK_SIZE", 64)
    rsps.add(responses.GET, FILE_PATH_URL, body=GLB, auto_calculate_content_length=False)
    with pytest.raises(BadResultFile, match="limit"):
        stream_to_file(session, FILE_URL, tmp_path / "m.glb", cancel=CancelToken(), max_bytes=100)
    assert files_in(tmp_path) == []


@pytest.mark.parametrize("status", [403, 404, 410])
def test_refused_link_is_expired_url(
    rsps: responses.RequestsMock, session: requests.Session, tmp_path: Path, status: int
) -> None:
    rsps.add(responses.GET, FILE_PATH_URL, body=b"Forbidden", status=status)
    with pytest.raises(ExpiredUrl) as caught:
        stream_to_file(session, FILE_URL, tmp_path / "m.glb", cancel=CancelToken())
    assert caught.value.retryable
    assert str(status) in str(caught.value)
    assert files_in(tmp_path) == []


@pytest.mark.parametrize("status", [500, 503])
def test_file_host_error_is_a_retryable_network_error(
    rsps: responses.RequestsMock, session: requests.Session, tmp_path: Path, status: int
) -> None:
    rsps.add(responses.GET, FILE_PATH_URL, body=b"oops", status=status)
    with pytest.raises(NetworkError) as caught:
        stream_to_file(session, FILE_URL, tmp_path / "m.glb", cancel=CancelToken())
    assert str(status) in str(caught.value)
    assert files_in(tmp_path) == []


def test_connection_error_is_a_network_error_without_the_signed_query(
    rsps: responses.RequestsMock, session: requests.Session, tmp_path: Path
) -> None:
    rsps.add(responses.GET, FILE_PATH_URL, body=requests.exceptions.ConnectionError(f"failed {FILE_URL}"))
    with pytest.raises(NetworkError) as caught:
        stream_to_file(session, FILE_URL, tmp_path / "m.glb", cancel=CancelToken())
    assert "cdn.hitem3d.example" in str(caught.value)
    assert "auth_key" not in str(caught.value)
    assert files_in(tmp_path) == []


@pytest.mark.parametrize(
    "url",
    ["file:///etc/passwd", "ftp://cdn.hitem3d.example/0.glb", "javascript:alert(1)", "//cdn.example/0.glb", "0.glb"],
)
def test_non_http_scheme_refused_without_a_request(
    rsps: responses.RequestsMock, session: requests.Session, tmp_path: Path, url: str
) -> None:
    with pytest.raises(BadResultFile, match="http"):
        stream_to_file(session, url, tmp_path / "m.glb", cancel=CancelToken())
    assert len(rsps.calls) == 0
    assert files_in(tmp_path) == []


@pytest.mark.parametrize("url", ["http://cdn.example/0.glb", "https://cdn.example/0.glb", "HTTPS://cdn.example/0.glb"])
def test_check_result_url_accepts_http_and_https(url: str) -> None:
    check_result_url(url)


def test_already_cancelled_token_sends_no_request(
    rsps: responses.RequestsMock, session: requests.Session, tmp_path: Path
) -> None:
    cancel = CancelToken()
    cancel.cancel()
    with pytest.raises(Cancelled):
        stream_to_file(session, FILE_URL, tmp_path / "m.glb", cancel=cancel)
    assert len(rsps.calls) == 0


def test_cancel_from_progress_callback_leaves_no_file(
    rsps: responses.RequestsMock, session: requests.Session, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(downloader, "CHUNK_SIZE", 64)
    rsps.add(responses.GET, FILE_PATH_URL, body=GLB, auto_calculate_content_length=True)
    cancel = CancelToken()
    with pytest.raises(Cancelled):
        stream_to_file(session, FILE_URL, tmp_path / "m.glb", cancel=cancel,
                       on_progress=lambda done, total: cancel.cancel())
    assert files_in(tmp_path) == []


# -- url_extension and check_glb --------------------------------------------------------------


@pytest.mark.parametrize(
    "url, expected",
    [
        ("https://cdn.example/target//original/0.glb?auth_key=1-2-0-abc.obj", "glb"),
        ("https://cdn.example/target/original/0.GLB", "glb"),
        ("https://cdn.example/target/original/0.obj?x=.glb", "obj"),
        ("https://cdn.example/model?file=0.glb", ""),
        ("https://cdn.example/model.glb#frag.fbx", "glb"),
        ("https://cdn.example/dir.d/model%2Efbx", "fbx"),
        ("https://cdn.example/", ""),
    ],
)
def test_url_extension_reads_the_path_only(url: str, expected: str) -> None:
    assert url_extension(url) == expected


def test_check_glb_accepts_a_minimal_glb(tmp_path: Path) -> None:
    path = tmp_path / "m.glb"
    path.write_bytes(GLB)
    check_glb(path)


@pytest.mark.parametrize("body", [b"", b"glTF", b"GLTF" + GLB[4:], b"x" * 100])
def test_check_glb_rejects_non_glb(tmp_path: Path, body: bytes) -> None:
    path = tmp_path / "m.glb"
    path.write_bytes(body)
    with pytest.raises(BadResultFile, match="not a GLB"):
        check_glb(path)


def test_check_glb_rejects_gltf_version_1(tmp_path: Path) -> None:
    path = tmp_path / "m.glb"
    path.write_bytes(GLB[:4] + struct.pack("<I", 1) + GLB[8:])
    with pytest.raises(BadResultFile, match="version 1"):
        check_glb(path)


def test_check_glb_rejects_length_shorter_than_file(tmp_path: Path) -> None:
    path = tmp_path / "m.glb"
    path.write_bytes(glb_with_declared_length(len(GLB) - 4))
    with pytest.raises(BadResultFile, match="incomplete"):
        check_glb(path)


# -- cancel from another thread, against a real socket ------------------------------------------


def _simulated_file_url(sim: Hitem3DSimulator, body: bytes) -> str:
    task_id = sim.add_task("sim-task-0001", ["success"], glb=body)
    client = Hitem3DClient(ApiSettings(sim.base_url, sim.client_id, sim.client_secret))
    try:
        url = client.query_task(task_id).model_url
    finally:
        client.close()
    assert url is not None
    return url


def _download_in_thread(session: requests.Session, url: str, dest: Path, cancel: CancelToken,
                        started: threading.Event) -> tuple[threading.Thread, list[BaseException]]:
    raised: list[BaseException] = []

    def run() -> None:
        try:
            stream_to_file(session, url, dest, cancel=cancel, validate=None, timeout_s=10,
                           on_progress=lambda done, total: started.set())
        except BaseException as exc:  # noqa: BLE001 - handed to the test
            raised.append(exc)

    thread = threading.Thread(target=run, name="test-download", daemon=True)
    thread.start()
    return thread, raised


def _assert_cancel_is_prompt(sim: Hitem3DSimulator, tmp_path: Path) -> None:
    body = os.urandom(512 * 1024)
    dest = tmp_path / "big.bin"
    with requests.Session() as session:
        url = _simulated_file_url(sim, body)
        cancel, started = CancelToken(), threading.Event()
        thread, raised = _download_in_thread(session, url, dest, cancel, started)
        assert started.wait(3), "the download never started"
        time.sleep(0.1)  # let the reader block on the socket
        assert list(tmp_path.glob("big.bin.*.part"))
        begun = time.monotonic()
        cancel.cancel()
        thread.join(3)
        elapsed = time.monotonic() - begun
    assert not thread.is_alive()
    assert elapsed < 1.0, f"cancel took {elapsed:.2f} s"
    assert len(raised) == 1 and isinstance(raised[0], Cancelled), raised
    assert files_in(tmp_path) == []


def test_cancel_during_a_stalled_download_is_prompt_and_leaves_no_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(downloader, "CHUNK_SIZE", 16 * 1024)
    with Hitem3DSimulator() as sim:
        sim.inject("/files/", Fault.stall(after_bytes=64 * 1024, seconds=5))
        _assert_cancel_is_prompt(sim, tmp_path)


def test_cancel_during_a_slow_download_is_prompt_and_leaves_no_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(downloader, "CHUNK_SIZE", 16 * 1024)
    with Hitem3DSimulator() as sim:
        sim.file_rate_limit = 64 * 1024  # eight seconds for the whole body
        _assert_cancel_is_prompt(sim, tmp_path)


def test_cancel_token_wait_returns_early_when_cancelled() -> None:
    cancel = CancelToken()
    threading.Timer(0.05, cancel.cancel).start()
    begun = time.monotonic()
    assert cancel.wait(5) is True
    assert time.monotonic() - begun < 1.0
    assert cancel.cancelled


def test_cancel_token_wait_times_out_false() -> None:
    assert CancelToken().wait(0.01) is False


def test_cancel_token_raise_if_cancelled() -> None:
    cancel = CancelToken()
    cancel.raise_if_cancelled()
    cancel.cancel()
    with pytest.raises(Cancelled):
        cancel.raise_if_cancelled()
