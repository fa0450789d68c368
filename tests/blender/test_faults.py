"""The fault-injection suite: every fault ends with a finished import or a
specific message and a retryable task, no partial file, no thread or timer
left, nothing on Blender's console but our one-line messages, and a valid
journal. Runs in real Blender against the simulator."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path
from types import ModuleType
from typing import Any, Callable, Iterator

import bpy
import pytest

from tests.blender.test_kinds import clean  # noqa: F401 - a fixture
from tests.support.blender_helpers import TASK_ID, glb_downloads, imported_objects, record_of
from tests.support.simulator import Fault, Hitem3DSimulator
from tests.support.worker_patch import patch_workers

QUERY = "/open-api/v1/query-task"
TOKEN = "/open-api/v1/auth/token"


@pytest.fixture
def quiet_console(capfd: pytest.CaptureFixture[str]) -> Iterator[None]:
    """Nothing may reach Blender's console as a traceback."""
    yield
    out, err = capfd.readouterr()
    assert "Traceback" not in out + err


@pytest.fixture
def fast_retries(addon: ModuleType, tmp_path: Path) -> None:
    """Retries keep their shape (exponential, jittered, capped) but start small."""
    patch_workers(addon, tmp_path, "core.pipeline.BACKOFF_CAP_S = 0.5", modules=("pipeline",))


def outcome(addon: ModuleType) -> tuple[str, str]:
    """Run the import to its end: ("done", "") or ("failed", message)."""
    try:
        bpy.ops.hitem3d.import_task(task_id=TASK_ID)
    except RuntimeError as exc:
        return "failed", str(exc)
    return record_of(addon).state.value, ""


def assert_clean(addon: ModuleType) -> None:
    """No partial file, and a journal that loads without a warning and agrees
    with the task's state."""
    results = addon.engine.files.results_dir()
    assert not list(results.glob("*.part"))
    journal = addon.engine.files.journal_path()
    data = json.loads(journal.read_text())
    entries = {entry["task_id"]: entry for entry in data["tasks"]}
    assert entries[TASK_ID]["state"] == record_of(addon).state.value
    assert not list(journal.parent.glob("journal.json.corrupt-*"))


def success_data(sim: Hitem3DSimulator, url: str) -> dict[str, Any]:
    return {"task_id": TASK_ID, "state": "success", "id": TASK_ID + "_0", "url": url,
            "cover_url": sim.base_url + "/files/none/cover.webp"}


# -- faults that are survived -------------------------------------------------------------------------

SURVIVED: dict[str, Callable[[Hitem3DSimulator], None]] = {
    "slow answer": lambda sim: sim.inject(QUERY, Fault.delay(0.5)),
    "burst of 5xx": lambda sim: sim.inject(QUERY, Fault.status(503, b"busy"), times=3),
    "502 from a proxy, as HTML": lambda sim: sim.inject(QUERY, Fault.raw(b"<html>Bad gateway</html>",
                                                                          "text/html", status=502)),
    "malformed JSON": lambda sim: sim.inject(QUERY, Fault.raw(b'{"code": 200, "data": {', "application/json")),
    "HTML instead of JSON": lambda sim: sim.inject(QUERY, Fault.raw(b"<html>login</html>", "text/html")),
    "string code": lambda sim: sim.inject(QUERY, Fault.json({"code": "200", "msg": "success", "data": {
        "task_id": TASK_ID, "state": "Processing", "progress": "40"}})),
    "message instead of msg": lambda sim: sim.inject(QUERY, Fault.json({"code": 200, "message": "success", "data": {
        "task_id": TASK_ID, "state": "QUEUEING"}})),
    "reset in the middle of the body": lambda sim: sim.inject("/files/", Fault.reset(after_bytes=4096),
                                                              suffix=".glb"),
    "body shorter than its Content-Length": lambda sim: sim.inject("/files/", Fault.truncate(4096), suffix=".glb"),
    "file host 503": lambda sim: sim.inject("/files/", Fault.status(503), suffix=".glb"),
    "expired result link": lambda sim: sim.inject("/files/", Fault.status(403), suffix=".glb"),
    "broken cover": lambda sim: sim.inject("/files/", Fault.raw(b"not an image", "image/webp"), suffix=".webp"),
}


@pytest.mark.parametrize("setup", list(SURVIVED.values()), ids=list(SURVIVED))
def test_transient_fault_is_survived(addon: ModuleType, prefs: Any, sim: Hitem3DSimulator, sample_glb: Path,
                                     fast_retries: None, quiet_console: None,
                                     setup: Callable[[Hitem3DSimulator], None]) -> None:
    sim.add_task(TASK_ID, ["processing", "success"], glb=sample_glb)
    setup(sim)

    assert outcome(addon) == ("done", "")

    assert len(imported_objects()) == 2
    assert sim.pending_faults == 0  # the fault really happened
    assert_clean(addon)


def test_retry_after_is_honoured(addon: ModuleType, prefs: Any, sim: Hitem3DSimulator, sample_glb: Path) -> None:
    sim.add_task(TASK_ID, ["success"], glb=sample_glb)
    sim.inject(QUERY, Fault.status(503, headers={"Retry-After": "1.5"}))

    assert outcome(addon) == ("done", "")

    first, second = [r.time for r in sim.requests if r.path == QUERY][:2]
    assert second - first >= 1.5


@pytest.mark.parametrize("style", ["http", "code"])
def test_token_expiring_mid_task_is_renewed(addon: ModuleType, prefs: Any, sample_glb: Path, style: str) -> None:
    with Hitem3DSimulator(token_lifetime_s=0.25, auth_failure_style=style) as sim:  # type: ignore[arg-type]
        prefs.base_url = sim.base_url
        sim.add_task(TASK_ID, ["processing"] * 4 + ["success"], glb=sample_glb)
        prefs.poll_interval = 0.3  # every poll meets an expired token

        assert outcome(addon) == ("done", "")

        assert sim.count(TOKEN) >= 3


@pytest.mark.parametrize("mode", ["documented", "bearer"])
def test_a_kind_is_followed_whichever_scheme_its_endpoint_takes(addon: ModuleType, prefs: Any, mode: str,
                                                                 quiet_console: None, clean: None) -> None:
    """The split pages show Token; a service that takes only Bearer costs a
    few requests once, then the task goes on as usual."""
    from tests.support.kind_assets import parts_glb_bytes

    split_id = "split_8f1c2d3e4b5a69788796a5b4c3d2e1f0"
    with Hitem3DSimulator(auth_mode=mode) as sim:  # type: ignore[arg-type]
        prefs.base_url = sim.base_url
        sim.add_task(split_id, ["processing", "processing", "success"], glb=parts_glb_bytes(2))

        bpy.ops.hitem3d.import_task(task_id=split_id)

        assert record_of(addon, split_id).state.value == "done"
        schemes = [(r.header("Authorization") or "").split(" ")[0] for r in sim.requests
                   if r.path == "/open-api/v1/split/query-task"]
        assert schemes == (["Token"] * 3 if mode == "documented" else ["Token", "Token"] + ["Bearer"] * 3)
        assert not list(addon.engine.files.results_dir().glob("*.part"))


def test_a_stalled_download_is_dropped_and_retried(addon: ModuleType, prefs: Any, sim: Hitem3DSimulator,
                                                   sample_glb: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(addon.engine.control, "DOWNLOAD_STALL_S", 1.0)  # 30 s in real use
    sim.add_task(TASK_ID, ["success"], glb=sample_glb)
    sim.inject("/files/", Fault.stall(after_bytes=4096, seconds=20), suffix=".glb")
    started = time.monotonic()

    assert outcome(addon) == ("done", "")

    assert time.monotonic() - started < 10
    assert glb_downloads(sim) == 2
    assert_clean(addon)


# -- faults that end in a message -----------------------------------------------------------------------

FATAL: dict[str, tuple[Callable[[Hitem3DSimulator, Path], None], str]] = {
    "HTML where a GLB should be": (
        lambda sim, glb: sim.add_task(TASK_ID, ["success"], glb=b"<html><body>Forbidden</body></html>"),
        "not a GLB file"),
    "JSON where a GLB should be": (
        lambda sim, glb: sim.add_task(TASK_ID, ["success"], glb=b'{"code": 403, "msg": "denied"}'),
        "not a GLB file"),
    "unknown code": (
        lambda sim, glb: sim.add_task(TASK_ID, [{"code": 77770001, "msg": "quota frozen", "data": {}}]),
        "Hitem3D answered: quota frozen (code 77770001)"),
    "unknown code with message key": (
        lambda sim, glb: sim.add_task(TASK_ID, [{"code": "77770002", "message": "region closed", "data": {}}]),
        "region closed (code 77770002)"),
    "unknown task state": (
        lambda sim, glb: sim.add_task(TASK_ID, [{"state": "paused"}]),
        "unknown task state"),
    "5xx that never ends": (
        lambda sim, glb: (sim.add_task(TASK_ID, ["success"]), sim.inject(QUERY, Fault.status(500), times=50)),
        "Hitem3D is unavailable (HTTP 500)"),
    "enormous Content-Length": (
        lambda sim, glb: (sim.add_task(TASK_ID, ["success"], glb=glb),
                          sim.inject("/files/", Fault.content_length(10**11), suffix=".glb")),
        "over the 2.0 GB download limit"),
    "a file:// result link": (
        lambda sim, glb: (sim.add_task(TASK_ID, ["success"]), sim.inject(QUERY, Fault.json({
            "code": 200, "msg": "success", "data": success_data(sim, "file:///etc/passwd.glb")}))),
        "not http(s)"),
    "an ftp:// result link": (
        lambda sim, glb: (sim.add_task(TASK_ID, ["success"]), sim.inject(QUERY, Fault.json({
            "code": 200, "msg": "success", "data": success_data(sim, "ftp://example.com/0.glb")}))),
        "not http(s)"),
    "a cut-off download that keeps being cut": (
        lambda sim, glb: (sim.add_task(TASK_ID, ["success"], glb=glb),
                          sim.inject("/files/", Fault.truncate(4096), times=50, suffix=".glb")),
        "stalled or was cut off"),
}


@pytest.mark.parametrize("setup, message", list(FATAL.values()), ids=list(FATAL))
def test_fault_ends_in_a_specific_message_and_a_retryable_task(addon: ModuleType, prefs: Any,
                                                               sim: Hitem3DSimulator, sample_glb: Path,
                                                               fast_retries: None, quiet_console: None,
                                                               setup: Callable[[Hitem3DSimulator, Path], None],
                                                               message: str) -> None:
    setup(sim, sample_glb)

    state, error = outcome(addon)

    assert state == "failed"
    assert message in error
    assert message in str(record_of(addon).message)
    assert not imported_objects()
    assert not list(addon.engine.files.results_dir().glob("*.glb"))
    assert_clean(addon)


def test_failed_task_retries_once_the_fault_is_gone(addon: ModuleType, prefs: Any, sim: Hitem3DSimulator,
                                                    sample_glb: Path, fast_retries: None) -> None:
    sim.add_task(TASK_ID, ["success"], glb=sample_glb)
    sim.inject(QUERY, Fault.status(500), times=50)
    assert outcome(addon)[0] == "failed"
    sim.clear_faults()  # the outage ends

    assert bpy.ops.hitem3d.retry_task(task_id=TASK_ID) == {"FINISHED"}
    assert len(imported_objects()) == 2


def test_download_limit_comes_from_the_preferences(addon: ModuleType, prefs: Any, sim: Hitem3DSimulator,
                                                   sample_glb: Path) -> None:
    prefs.max_download_gb = 0.0001  # 100 kB, below the sample
    try:
        sim.add_task(TASK_ID, ["success"], glb=sample_glb)
        state, error = outcome(addon)
    finally:
        prefs.max_download_gb = 2.0
    assert state == "failed" and "download limit in the add-on preferences" in error
    assert not list(addon.engine.files.results_dir().glob("*.glb"))


# -- bad input --------------------------------------------------------------------------------------------

# NOTE: a space is not here: it separates several pasted IDs, each checked alone.
BAD_IDS = {
    "dot dot slash": "../../../../etc/passwd",
    "ampersand": "2c2ad20cb3204697&state=success",
    "hash": "2c2ad20cb3204697#fragment",
    "percent": "2c2ad20cb3204697%2e%2e",
    # (no NUL: Blender's string properties end at it, so it never reaches us)
    "control character": "2c2ad20cb3204697\x1b[31m\x07",
    "ten thousand characters": "a" * 10_000,
    "non-ASCII": "2c2ad20cb3204697模型",
}


@pytest.mark.parametrize("text", list(BAD_IDS.values()), ids=list(BAD_IDS))
def test_bad_task_ids_are_refused_before_any_request(addon: ModuleType, prefs: Any, sim: Hitem3DSimulator,
                                                     text: str) -> None:
    with pytest.raises(RuntimeError, match="Not a task ID"):
        bpy.ops.hitem3d.import_task(task_id=text)
    assert sim.requests == []
    assert len(addon.engine.history.book()) == 0


# -- secrets ----------------------------------------------------------------------------------------------


def test_secrets_reach_no_console_report_log_or_exception(addon: ModuleType, prefs: Any, sim: Hitem3DSimulator,
                                                          sample_glb: Path, fast_retries: None,
                                                          capfd: pytest.CaptureFixture[str]) -> None:
    sim.add_task(TASK_ID, ["processing", "success"], glb=sample_glb)
    bpy.ops.hitem3d.import_task(task_id=TASK_ID)
    bpy.ops.hitem3d.test_connection()
    errors: list[str] = []
    prefs.client_secret = "wrong-secret-value-123"
    for call in (lambda: bpy.ops.hitem3d.test_connection(), lambda: bpy.ops.hitem3d.retry_task(task_id=TASK_ID)):
        try:
            call()
        except RuntimeError as exc:
            errors.append(str(exc))
    diagnostics = sys.modules[addon.__name__ + ".ui.diagnostics"]
    report = diagnostics.report(bpy.context)

    out, err = capfd.readouterr()
    log_text = diagnostics.log_path().read_text()
    tokens = {r.header("Authorization").split()[-1] for r in sim.requests
              if (r.header("Authorization") or "").startswith("Bearer")}
    assert tokens and errors
    for secret in (sim.client_secret, "wrong-secret-value-123", *tokens):
        for where, text in (("stdout", out), ("stderr", err), ("log", log_text), ("diagnostics", report),
                            ("exceptions", "\n".join(errors))):
            assert secret not in text, f"a secret reached the {where}"
    assert "Client Secret: set in preferences" in report


def test_log_file_records_failures_with_secrets_masked(addon: ModuleType, prefs: Any, sim: Hitem3DSimulator) -> None:
    logger = sys.modules[addon.__name__].log
    logger.error("probe Authorization: Bearer abc.def.ghi and %s", sim.client_secret)
    addon.core.logs.register_secret(sim.client_secret)
    logger.error("again %s", sim.client_secret)
    for handler in logger.handlers:
        handler.flush()

    log_text = sys.modules[addon.__name__ + ".ui.diagnostics"].log_path().read_text()
    assert "abc.def.ghi" not in log_text
    assert "again ***" in log_text


# -- quitting Blender -----------------------------------------------------------------------------------------

QUIT_SCRIPT = textwrap.dedent("""
    import os, sys, time
    import bpy
    base_url, zip_path, task_id, phase = sys.argv[1:5]
    bpy.context.preferences.system.use_online_access = True
    if phase == "first":
        bpy.ops.extensions.package_install_files(repo="user_default", filepath=zip_path,
                                                 enable_on_install=True)
    name = "bl_ext.user_default.hitem3d_blender"
    import addon_utils
    addon_utils.enable(name, default_set=True)
    addon = sys.modules[name]
    prefs = bpy.context.preferences.addons[name].preferences
    prefs.base_url, prefs.client_id, prefs.client_secret = base_url, "sim-client-id", "sim-client-secret"
    prefs.poll_interval = 0.1
    addon.engine.state.runs_to_end = lambda: False
    if phase == "first":
        bpy.ops.hitem3d.import_task(task_id=task_id)
        results = addon.engine.files.results_dir()
        while not list(results.glob("*.part")):
            addon.engine.timer.tick()
            time.sleep(0.02)
        print("DOWNLOADING", flush=True)
        sys.exit(0)  # quit while the download runs
    else:
        rec = addon.engine.history.book().get(task_id)
        print("RESTORED", rec.state.value, flush=True)
        addon.engine.control.resume_unfinished()
        while not addon.engine.history.book().get(task_id).state.is_terminal:
            addon.engine.timer.tick()
            time.sleep(0.02)
        print("FINAL", addon.engine.history.book().get(task_id).state.value, flush=True)
        addon_utils.disable(name, default_set=True)
""")


def test_quit_mid_download_leaves_nothing_and_the_task_resumes(built_zip: Path, sample_glb: Path,
                                                              tmp_path: Path) -> None:
    env = dict(os.environ, BLENDER_USER_RESOURCES=str(tmp_path / "user"), XDG_CACHE_HOME=str(tmp_path / "cache"))
    with Hitem3DSimulator() as sim:
        sim.add_task(TASK_ID, ["success"], glb=sample_glb)
        sim.file_rate_limit = 50_000

        started = time.monotonic()
        first = subprocess.run([sys.executable, "-c", QUIT_SCRIPT, sim.base_url, str(built_zip), TASK_ID, "first"],
                               env=env, capture_output=True, text=True, timeout=120)
        assert "DOWNLOADING" in first.stdout, first.stderr
        assert first.returncode == 0, first.stderr
        assert "Traceback" not in first.stderr
        assert time.monotonic() - started < 60
        results = tmp_path / "user" / "extensions" / ".user" / "user_default" / "hitem3d_blender" / "results"
        assert not list(results.glob("*.part")), "quitting left a partial download"
        assert not list(results.glob("*.glb"))

        sim.file_rate_limit = None
        second = subprocess.run([sys.executable, "-c", QUIT_SCRIPT, sim.base_url, str(built_zip), TASK_ID,
                                 "second"], env=env, capture_output=True, text=True, timeout=120)
        assert "RESTORED pending" in second.stdout, second.stdout + second.stderr
        assert "FINAL done" in second.stdout, second.stdout + second.stderr


def test_disable_mid_download_then_enable_resumes_the_task(addon: ModuleType, prefs: Any, sim: Hitem3DSimulator,
                                                           sample_glb: Path,
                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    import addon_utils

    from tests.support.blender_helpers import run_ticks
    from tests.conftest import ADDON_MODULE, enable_addon, point_prefs_at

    monkeypatch.setattr(addon.engine.state, "runs_to_end", lambda: False)
    sim.file_rate_limit = 50_000
    sim.add_task(TASK_ID, ["success"], glb=sample_glb)
    bpy.ops.hitem3d.import_task(task_id=TASK_ID)
    run_ticks(addon, TASK_ID, until=lambda rec: rec.bytes_done > 0)

    started = time.monotonic()
    addon_utils.disable(ADDON_MODULE, default_set=True)
    assert time.monotonic() - started < 1.0
    assert not list(addon.engine.files.results_dir().glob("*.part"))

    sim.file_rate_limit = None
    addon = enable_addon()
    point_prefs_at(sim)
    monkeypatch.setattr(addon.engine.state, "runs_to_end", lambda: False)
    assert record_of(addon).state.value == "pending"
    addon.engine.control.resume_unfinished()
    assert run_ticks(addon, TASK_ID).state.value == "done"
    assert len(imported_objects()) == 2
