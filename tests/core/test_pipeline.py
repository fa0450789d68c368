"""run_import_job driven directly: what it emits, how it retries, how it ends."""

from __future__ import annotations

import random
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
import responses

from hitem3d_blender.core.api import Hitem3DClient
from hitem3d_blender.core.downloader import CancelToken
from hitem3d_blender.core.errors import ExpiredUrl, TaskTimeout
from hitem3d_blender.core.pipeline import (
    BACKOFF_CAP_S,
    MAX_RETRIES_IN_A_ROW,
    MAX_URL_REFRESHES,
    ImportJob,
    backoff_delay,
    run_import_job,
)
from hitem3d_blender.core.settings import ApiSettings
from hitem3d_blender.core.tasks import TaskRecord, TaskState, TaskUpdate
from tests.support.glb_factory import minimal_glb_bytes

S = TaskState
BASE = "https://api.hitem3d.ai"
TOKEN_URL = f"{BASE}/open-api/v1/auth/token"
QUERY_URL = f"{BASE}/open-api/v1/query-task"
TASK_ID = "2c2ad20cb3204697ba7f80351c3e8606.jjewelry-aigc-api.1NraEb5ohU"
CDN = "https://cdn.hitem3d.example/target//original"
GLB = minimal_glb_bytes()
POLL = 0.01


class FakeTime:
    """A clock that only moves when the job waits."""

    def __init__(self) -> None:
        self.now = 5000.0

    def __call__(self) -> float:
        return self.now


class RecordingCancel(CancelToken):
    """A CancelToken whose waits return at once, advance the fake clock and are recorded."""

    def __init__(self, clock: FakeTime) -> None:
        super().__init__()
        self.clock = clock
        self.waits: list[float] = []

    def wait(self, seconds: float) -> bool:
        self.waits.append(seconds)
        self.clock.now += max(0.0, seconds)
        return self.cancelled


class Harness:
    def __init__(self, rsps: responses.RequestsMock, tmp_path: Path) -> None:
        self.rsps = rsps
        self.clock = FakeTime()
        self.cancel = RecordingCancel(self.clock)
        self.updates: list[TaskUpdate] = []
        self.dest = tmp_path / "results" / f"{TASK_ID}.glb"
        self.client = Hitem3DClient(ApiSettings(BASE, "id", "secret"))
        self.downloads = requests.Session()
        rsps.add(responses.POST, TOKEN_URL,
                 json={"code": 200, "message": "success", "data": {"accessToken": "tok"}})

    def job(self, **overrides: Any) -> ImportJob:
        values: dict[str, Any] = {"task_id": TASK_ID, "dest": self.dest, "poll_interval_s": POLL, "timeout_s": 3600.0}
        values.update(overrides)
        return ImportJob(**values)

    def run(self, **overrides: Any) -> list[TaskUpdate]:
        run_import_job(self.job(**overrides), self.client, self.downloads, self.cancel, self.updates.append,
                       clock=self.clock)
        return self.updates

    def answer(self, *entries: Any) -> None:
        """Queue query-task answers in order: a state name, a dict of data, or a full body."""
        for entry in entries:
            if isinstance(entry, str):
                body: Any = {"code": 200, "msg": "success", "data": {"task_id": TASK_ID, "state": entry}}
                self.rsps.add(responses.GET, QUERY_URL, json=body)
            elif isinstance(entry, dict) and "code" in entry:
                self.rsps.add(responses.GET, QUERY_URL, json=entry)
            elif isinstance(entry, dict):
                self.rsps.add(responses.GET, QUERY_URL, json={"code": 200, "msg": "success", "data": {"task_id": TASK_ID, **entry}})
            elif isinstance(entry, responses.Response):
                self.rsps.add(entry)
            else:  # an exception the transport raises
                self.rsps.add(responses.GET, QUERY_URL, body=entry)

    def success(self, url: str) -> dict[str, Any]:
        return {"state": "success", "url": url, "cover_url": f"{CDN}/../cover/webp/0.webp"}

    def file(self, url: str, body: bytes = GLB, status: int = 200, **kwargs: Any) -> None:
        self.rsps.add(responses.GET, url.split("?")[0], body=body, status=status, **kwargs)

    def count(self, url: str) -> int:
        return sum(1 for c in self.rsps.calls if str(c.request.url).split("?")[0] == url.split("?")[0])

    @property
    def states(self) -> list[TaskState]:
        """Emitted states with consecutive repeats folded."""
        folded: list[TaskState] = []
        for update in self.updates:
            if not folded or folded[-1] is not update.state:
                folded.append(update.state)
        return folded

    @property
    def last(self) -> TaskUpdate:
        return self.updates[-1]


@pytest.fixture
def rsps() -> Iterator[responses.RequestsMock]:
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        yield mock


@pytest.fixture
def h(rsps: responses.RequestsMock, tmp_path: Path) -> Iterator[Harness]:
    harness = Harness(rsps, tmp_path)
    yield harness
    harness.client.close()
    harness.downloads.close()


def replay(updates: list[TaskUpdate]) -> TaskRecord:
    """Apply updates the way the main thread does; raises on an illegal move."""
    record = TaskRecord(TASK_ID)
    for update in updates:
        record.apply(update)
    return record


# -- the happy path ----------------------------------------------------------------------


def test_happy_path_emits_remote_states_then_downloading_then_downloaded(h: Harness) -> None:
    url = f"{CDN}/0.glb?auth_key=1-2-0-abc"
    h.answer("created", "queueing", {"state": "processing", "progress": 40}, h.success(url))
    h.file(url, auto_calculate_content_length=True)
    updates = h.run()
    assert h.states == [S.CREATED, S.QUEUEING, S.PROCESSING, S.DOWNLOADING, S.DOWNLOADED]
    assert h.last.result_path == str(h.dest)
    assert h.last.progress == 1.0
    assert (h.last.bytes_done, h.last.bytes_total) == (len(GLB), len(GLB))
    assert h.dest.read_bytes() == GLB
    assert [u.progress for u in updates if u.state is S.PROCESSING] == [pytest.approx(0.4)]


def test_happy_path_polls_at_the_poll_interval(h: Harness) -> None:
    url = f"{CDN}/0.glb"
    h.answer("queueing", "processing", h.success(url))
    h.file(url)
    h.run(poll_interval_s=2.5)
    assert h.cancel.waits == [2.5, 2.5]
    assert h.count(QUERY_URL) == 3


def test_happy_path_updates_are_legal_transitions(h: Harness) -> None:
    url = f"{CDN}/0.glb"
    h.answer("created", "queueing", "processing", h.success(url))
    h.file(url)
    record = replay(h.run())
    assert record.state is S.DOWNLOADED
    assert record.result_path == str(h.dest)


def test_already_finished_task_downloads_on_the_first_query(h: Harness) -> None:
    url = f"{CDN}/0.glb"
    h.answer(h.success(url))
    h.file(url)
    h.run()
    assert h.states == [S.DOWNLOADING, S.DOWNLOADED]
    assert h.count(QUERY_URL) == 1
    assert h.cancel.waits == []


def test_cached_result_short_circuits_without_http(h: Harness) -> None:
    h.dest.parent.mkdir(parents=True)
    h.dest.write_bytes(GLB)
    updates = h.run()
    assert len(h.rsps.calls) == 0
    assert [u.state for u in updates] == [S.DOWNLOADED]
    assert updates[0].result_path == str(h.dest)
    assert updates[0].bytes_done == len(GLB)


def test_broken_cached_file_is_downloaded_again(h: Harness) -> None:
    h.dest.parent.mkdir(parents=True)
    h.dest.write_bytes(GLB[:30])
    url = f"{CDN}/0.glb"
    h.answer(h.success(url))
    h.file(url)
    h.run()
    assert h.last.state is S.DOWNLOADED
    assert h.dest.read_bytes() == GLB


# -- retries -----------------------------------------------------------------------------------


def test_retryable_errors_back_off_and_recover(h: Harness) -> None:
    url = f"{CDN}/0.glb"
    h.answer(responses.Response(responses.GET, QUERY_URL, status=503),
             responses.Response(responses.GET, QUERY_URL, status=502),
             h.success(url))
    h.file(url)
    h.run()
    assert h.last.state is S.DOWNLOADED
    assert h.count(QUERY_URL) == 3
    first, second = h.cancel.waits
    assert POLL <= first <= 2 * POLL
    assert 2 * POLL <= second <= 4 * POLL


def test_retry_notices_say_which_attempt_comes_next(h: Harness) -> None:
    url = f"{CDN}/0.glb"
    h.answer(responses.Response(responses.GET, QUERY_URL, status=503),
             responses.Response(responses.GET, QUERY_URL, status=503),
             h.success(url))
    h.file(url)
    h.run()
    notices = [str(u.message) for u in h.updates if u.message]
    assert len(notices) == 2
    assert notices[0].startswith(f"Retrying (2 of {MAX_RETRIES_IN_A_ROW}): ")
    assert notices[1].startswith(f"Retrying (3 of {MAX_RETRIES_IN_A_ROW}): ")
    assert "503" in notices[0]


def test_retry_after_is_honoured(h: Harness) -> None:
    url = f"{CDN}/0.glb"
    h.answer(responses.Response(responses.GET, QUERY_URL, status=429, headers={"Retry-After": "7"}), h.success(url))
    h.file(url)
    h.run()
    assert h.cancel.waits == [7.0]
    assert h.last.state is S.DOWNLOADED


def test_error_count_resets_after_a_good_answer(h: Harness) -> None:
    url = f"{CDN}/0.glb"
    bad = [responses.Response(responses.GET, QUERY_URL, status=503)] * (MAX_RETRIES_IN_A_ROW - 1)
    h.answer(*bad, "processing", *bad, h.success(url))
    h.file(url)
    h.run()
    assert h.last.state is S.DOWNLOADED
    assert h.count(QUERY_URL) == 2 * MAX_RETRIES_IN_A_ROW


def test_too_many_errors_in_a_row_fail_with_the_last_message(h: Harness) -> None:
    bad = [responses.Response(responses.GET, QUERY_URL, status=503)] * (MAX_RETRIES_IN_A_ROW - 1)
    h.answer(*bad, requests.exceptions.ConnectionError("refused"))
    h.run()
    assert h.last.state is S.FAILED
    assert str(h.last.message).startswith("Cannot reach api.hitem3d.ai")
    assert h.count(QUERY_URL) == MAX_RETRIES_IN_A_ROW
    assert len(h.cancel.waits) == MAX_RETRIES_IN_A_ROW - 1


def test_non_retryable_error_fails_at_once(h: Harness) -> None:
    h.answer({"code": 50010001, "msg": "generate failed", "data": {}})
    h.run()
    assert [u.state for u in h.updates] == [S.FAILED]
    assert "refunded" in str(h.last.message)
    assert h.count(QUERY_URL) == 1
    assert h.cancel.waits == []


def test_failed_state_fails_at_once(h: Harness) -> None:
    h.answer("processing", "failed")
    h.run()
    assert h.states == [S.PROCESSING, S.FAILED]
    assert h.count(QUERY_URL) == 2


def test_invalid_credentials_fail_without_querying(h: Harness) -> None:
    h.rsps.replace(responses.POST, TOKEN_URL, json={"code": 40010000, "msg": "client credentials are invalid"})
    h.run()
    assert [u.state for u in h.updates] == [S.FAILED]
    assert "Client ID" in str(h.last.message)
    assert h.count(QUERY_URL) == 0


def test_unknown_task_fails_with_the_code(h: Harness) -> None:
    h.answer({"code": 40040000, "msg": "task not exist", "data": {}})
    h.run()
    assert h.last.state is S.FAILED
    assert "40040000" in str(h.last.message)


def test_retries_stop_at_the_deadline(h: Harness) -> None:
    h.answer(responses.Response(responses.GET, QUERY_URL, status=503, headers={"Retry-After": "100"}))
    h.run(timeout_s=150.0)
    assert h.last.state is S.FAILED
    assert "503" in str(h.last.message)
    # Retry-After is capped at a minute; the last wait ends at the deadline.
    assert h.cancel.waits == [60.0, 60.0, 30.0]
    assert h.count(QUERY_URL) == 4


# -- result links --------------------------------------------------------------------------------


def test_expired_url_is_queried_again_and_succeeds(h: Harness) -> None:
    old = f"{CDN}/old/0.glb?auth_key=old"
    new = f"{CDN}/new/0.glb?auth_key=new"
    h.answer(h.success(old), h.success(new))
    h.file(old, body=b"Forbidden", status=403)
    h.file(new)
    h.run()
    assert h.last.state is S.DOWNLOADED
    assert h.count(QUERY_URL) == 2
    assert h.dest.read_bytes() == GLB
    assert h.cancel.waits == []  # a fresh link is asked for at once


def test_expired_url_refresh_updates_are_legal_transitions(h: Harness) -> None:
    old = f"{CDN}/old/0.glb"
    new = f"{CDN}/new/0.glb"
    h.answer("processing", h.success(old), h.success(new))
    h.file(old, body=b"Gone", status=410)
    h.file(new)
    assert replay(h.run()).state is S.DOWNLOADED


def test_url_that_keeps_expiring_fails(h: Harness) -> None:
    url = f"{CDN}/0.glb"
    h.answer(h.success(url))
    h.file(url, body=b"Forbidden", status=403)
    h.run()
    assert h.last.state is S.FAILED
    assert "expired" in str(h.last.message)
    assert h.count(url) == MAX_URL_REFRESHES + 1


@pytest.mark.parametrize("extension, kind", [("obj", "OBJ"), ("fbx", "FBX"), ("usdz", "USDZ")])
def test_non_glb_result_fails_naming_the_format(h: Harness, extension: str, kind: str) -> None:
    url = f"{CDN}/0.{extension}?auth_key=1-2-0-x.glb"
    h.answer(h.success(url))
    h.file(url)
    h.run()
    assert h.last.state is S.FAILED
    assert kind in str(h.last.message)
    assert "GLB" in str(h.last.message)
    assert h.count(url) == 0


def test_result_without_extension_fails_as_unknown_format(h: Harness) -> None:
    url = f"{CDN}/model?format=glb"
    h.answer(h.success(url))
    h.run()
    assert h.last.state is S.FAILED
    assert "unknown format" in str(h.last.message)


def test_success_without_a_model_link_retries_then_fails(h: Harness) -> None:
    h.answer({"state": "success"})
    h.run()
    assert h.last.state is S.FAILED
    assert "no model link" in str(h.last.message)
    assert h.count(QUERY_URL) == MAX_RETRIES_IN_A_ROW


@pytest.mark.parametrize("before", [[], ["created"], ["queueing"], ["processing"]],
                         ids=["finished_before_import", "after_created", "after_queueing", "after_processing"])
def test_cut_download_retry_updates_are_legal_transitions(h: Harness, before: list[str]) -> None:
    url = f"{CDN}/0.glb"
    h.answer(*before, h.success(url))
    h.file(url, body=GLB[:20], headers={"Content-Length": str(len(GLB))})
    h.file(url)
    updates = h.run()
    assert updates[-1].state is S.DOWNLOADED
    assert replay(updates).state is S.DOWNLOADED


# -- timeout and cancel ----------------------------------------------------------------------------


def test_timeout_fails_with_task_timeout_message(h: Harness) -> None:
    h.answer("processing")
    h.run(timeout_s=600.0, poll_interval_s=60.0)
    assert h.last.state is S.FAILED
    assert str(h.last.message) == "Task not finished after 10m: retry to keep waiting"
    assert h.count(QUERY_URL) == 11
    assert h.clock.now == pytest.approx(5000.0 + 600.0)


def test_last_wait_before_the_deadline_is_shortened(h: Harness) -> None:
    h.answer("processing")
    h.run(timeout_s=100.0, poll_interval_s=60.0)
    assert h.cancel.waits == [60.0, 40.0]


def test_cancel_before_start_emits_cancelled_without_http(h: Harness) -> None:
    h.cancel.cancel()
    h.run()
    assert [u.state for u in h.updates] == [S.CANCELLED]
    assert len(h.rsps.calls) == 0


def test_cancel_while_polling_emits_cancelled_and_stops_querying(h: Harness) -> None:
    h.answer("processing")

    def emit(update: TaskUpdate) -> None:
        h.updates.append(update)
        if update.state is S.PROCESSING:
            h.cancel.cancel()

    run_import_job(h.job(), h.client, h.downloads, h.cancel, emit, clock=h.clock)
    assert h.states == [S.PROCESSING, S.CANCELLED]
    assert h.count(QUERY_URL) == 1


def test_cancel_during_backoff_emits_cancelled(h: Harness) -> None:
    h.answer(responses.Response(responses.GET, QUERY_URL, status=503))

    def emit(update: TaskUpdate) -> None:
        h.updates.append(update)
        if update.message:
            h.cancel.cancel()

    run_import_job(h.job(), h.client, h.downloads, h.cancel, emit, clock=h.clock)
    assert h.last.state is S.CANCELLED
    assert h.count(QUERY_URL) == 1


def test_cancel_during_download_emits_cancelled_and_leaves_no_file(h: Harness) -> None:
    url = f"{CDN}/0.glb"
    h.answer(h.success(url))
    h.file(url)

    def emit(update: TaskUpdate) -> None:
        h.updates.append(update)
        if update.state is S.DOWNLOADING:
            h.cancel.cancel()

    run_import_job(h.job(), h.client, h.downloads, h.cancel, emit, clock=h.clock)
    assert h.last.state is S.CANCELLED
    assert not h.dest.exists()
    assert list(h.dest.parent.parent.rglob("*.glb*")) == []


# -- never raises --------------------------------------------------------------------------------


class ExplodingClient:
    def query_task(self, task_id: str) -> Any:
        raise RuntimeError("bug in the client")


def test_never_raises_on_an_unexpected_error(h: Harness) -> None:
    run_import_job(h.job(), ExplodingClient(), h.downloads, h.cancel, h.updates.append,  # type: ignore[arg-type]
                   clock=h.clock)
    assert [u.state for u in h.updates] == [S.FAILED]
    assert "Unexpected error" in str(h.last.message)
    assert "bug in the client" not in str(h.last.message)


class ClientTornDownByCancel:
    """What a socket shut down under a read can look like inside http.client."""

    def __init__(self, cancel: Any) -> None:
        self.cancel = cancel

    def query_task(self, task_id: str) -> Any:
        self.cancel.cancel()
        raise AttributeError("'NoneType' object has no attribute 'close'")


def test_an_odd_error_after_cancel_is_a_cancel_not_a_bug(h: Harness, caplog: pytest.LogCaptureFixture) -> None:
    run_import_job(h.job(), ClientTornDownByCancel(h.cancel), h.downloads, h.cancel,  # type: ignore[arg-type]
                   h.updates.append, clock=h.clock)
    assert [u.state for u in h.updates] == [S.CANCELLED]
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]


def test_last_update_is_always_terminal_or_downloaded(h: Harness) -> None:
    h.answer(requests.exceptions.ReadTimeout("slow"))
    h.run()
    assert h.last.state in (S.DOWNLOADED, S.FAILED, S.CANCELLED)
    assert sum(1 for u in h.updates if u.state in (S.DOWNLOADED, S.FAILED, S.CANCELLED)) == 1


# -- backoff_delay ---------------------------------------------------------------------------------


def test_backoff_grows_exponentially() -> None:
    delays = [backoff_delay(n, 2.0, rng=lambda: 1.0) for n in range(1, 6)]
    assert delays == [4.0, 8.0, 16.0, 32.0, 60.0]


def test_backoff_is_capped() -> None:
    assert backoff_delay(7, 2.0, rng=lambda: 1.0) == BACKOFF_CAP_S
    assert backoff_delay(60, 2.0, rng=lambda: 1.0) == BACKOFF_CAP_S


def test_backoff_attempt_zero_or_less_uses_the_base() -> None:
    assert backoff_delay(0, 3.0, rng=lambda: 1.0) == 3.0


def test_retry_after_is_a_floor() -> None:
    assert backoff_delay(1, 1.0, retry_after=30.0, rng=lambda: 1.0) == 30.0
    assert backoff_delay(1, 1.0, retry_after=300.0, rng=lambda: 1.0) == 300.0


def test_retry_after_below_the_backoff_does_not_shorten_it() -> None:
    assert backoff_delay(3, 1.0, retry_after=0.5, rng=lambda: 1.0) == 8.0


def test_jitter_bounds_are_half_and_all_of_the_ceiling() -> None:
    assert backoff_delay(3, 1.0, rng=lambda: 0.0) == 4.0
    assert backoff_delay(3, 1.0, rng=lambda: 0.999999) == pytest.approx(8.0, rel=1e-5)


def test_no_retry_comes_sooner_than_the_poll_interval() -> None:
    # Polling asks once per interval; an outage must not make it ask more often.
    assert backoff_delay(1, 3.0, rng=lambda: 0.0) == 3.0
    assert backoff_delay(1, 3.0, rng=lambda: 1.0) == 6.0
    assert backoff_delay(1, 90.0, rng=lambda: 0.0) == 90.0  # interval above the cap


def test_jitter_stays_within_half_to_full_ceiling() -> None:
    rng = random.Random(1234)
    for attempt in range(1, 10):
        ceiling = min(BACKOFF_CAP_S, 1.5 * 2 ** attempt)
        for _ in range(200):
            delay = backoff_delay(attempt, 1.5, rng=rng.random)
            assert max(1.5, 0.5 * ceiling) <= delay <= ceiling


def test_jitter_actually_varies_with_the_default_rng() -> None:
    assert len({backoff_delay(4, 1.0) for _ in range(20)}) > 1


def test_expired_url_error_is_retryable() -> None:
    assert ExpiredUrl("x").retryable
