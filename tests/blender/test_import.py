"""Import a task by ID, end to end, in real Blender against the simulator."""

from __future__ import annotations

import sys
import threading
from pathlib import Path
from types import ModuleType
from typing import Any

import bpy
import pytest

from tests.support.blend_scan import find
from tests.support.glb_factory import cached_webp
from tests.support.simulator import Fault, Hitem3DSimulator

from tests.support.blender_helpers import (
    OTHER_ID,
    TASK_ID,
    import_error,
    imported_objects,
    record_of,
    run_ticks,
    threads_running_addon_code,
)


# -- registration -----------------------------------------------------------------


def test_installed_zip_registers_operator_panel_and_preferences(addon: ModuleType) -> None:
    assert hasattr(bpy.types, "HITEM3D_PT_main")
    assert bpy.types.HITEM3D_PT_main.bl_category == "Hitem3D"
    assert bpy.ops.hitem3d.import_task.get_rna_type().properties["timeout"].default == 3600.0
    prefs = bpy.context.preferences.addons[addon.__name__].preferences
    assert prefs.bl_rna.properties["base_url"].default == "https://api.hitem3d.ai"
    assert prefs.bl_rna.properties["client_secret"].subtype == "PASSWORD"


# -- the happy path ----------------------------------------------------------------


def test_background_import_brings_selected_tagged_objects(prefs: Any, sim: Hitem3DSimulator,
                                                           sample_glb: Path) -> None:
    sim.add_task(TASK_ID, ["queueing", {"state": "processing", "progress": 40}, "success"], glb=sample_glb)

    assert bpy.ops.hitem3d.import_task(task_id=TASK_ID) == {"FINISHED"}

    objects = imported_objects()
    assert sorted(obj.name for obj in objects) == ["Hitem3D_Sample", "Hitem3D_Sample_2"]
    assert all(obj.select_get() for obj in objects)
    assert bpy.context.view_layer.objects.active in objects


def test_pasted_id_with_whitespace_or_link_is_understood(prefs: Any, sim: Hitem3DSimulator,
                                                         sample_glb: Path) -> None:
    sim.add_task(TASK_ID, ["success"], glb=sample_glb)
    bpy.context.window_manager.hitem3d.task_id = f"  https://hitem3d.ai/result?task_id={TASK_ID}&lang=en \n"

    assert bpy.ops.hitem3d.import_task() == {"FINISHED"}
    assert imported_objects()
    assert [r for r in sim.requests if r.path.endswith("/query-task")][0].query["task_id"] == TASK_ID


def test_result_is_kept_in_the_extension_user_folder_without_partials(addon: ModuleType, prefs: Any,
                                                                      sim: Hitem3DSimulator,
                                                                      sample_glb: Path) -> None:
    sim.add_task(TASK_ID, ["success"], glb=sample_glb)
    bpy.ops.hitem3d.import_task(task_id=TASK_ID)

    folder = Path(bpy.utils.extension_path_user(addon.__name__, path="results"))
    result = addon.engine.files.result_path(TASK_ID)
    assert sorted(folder.iterdir()) == sorted([result, addon.engine.files.cover_path(TASK_ID)])
    assert result.read_bytes() == sample_glb.read_bytes()
    # Named from a hash of the ID: never a path the server or the user chose.
    assert result.name.startswith("task-") and TASK_ID not in result.name


def test_interactive_path_returns_at_once_and_the_timer_imports(addon: ModuleType, prefs: Any,
                                                                sim: Hitem3DSimulator, sample_glb: Path,
                                                                monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(addon.engine.state, "runs_to_end", lambda: False)
    sim.add_task(TASK_ID, ["queueing", "processing", "processing", "success"], glb=sample_glb)

    assert bpy.ops.hitem3d.import_task(task_id=TASK_ID) == {"FINISHED"}
    # Returned before any result: nothing imported, the timer is armed.
    assert not imported_objects()
    assert bpy.app.timers.is_registered(addon.engine.timer.tick)

    seen: list[str] = []
    original_apply = addon.engine.timer.apply_update

    def spy(update: Any) -> None:
        assert threading.current_thread() is threading.main_thread()
        seen.append(update.state.value)
        original_apply(update)

    monkeypatch.setattr(addon.engine.timer, "apply_update", spy)
    record = run_ticks(addon, TASK_ID)

    assert record.state.value == "done"
    assert {"queueing", "processing", "downloading", "downloaded"} <= set(seen)
    assert len(imported_objects()) == 2
    # Idle again: the timer stops asking to be called.
    assert addon.engine.timer.tick() is None


def test_no_thread_of_ours_runs_beside_blenders_importer(addon: ModuleType, prefs: Any, sim: Hitem3DSimulator,
                                                          sample_glb: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # Blender releases the GIL around operator calls; with Python 3.11 a
    # Python thread running meanwhile can crash it (docs/threads-in-blender.md).
    monkeypatch.setattr(addon.engine.state, "runs_to_end", lambda: False)
    sim.add_task(TASK_ID, ["success"], glb=sample_glb)
    sim.add_task(OTHER_ID, ["processing"])  # checked all along
    bpy.ops.hitem3d.import_task(task_id=f"{TASK_ID} {OTHER_ID}")
    threads_during_import: list[list[str]] = []
    original = addon.scene.importer.import_glb

    def spy(*args: Any, **kwargs: Any) -> Any:
        threads_during_import.append(threads_running_addon_code(addon))
        return original(*args, **kwargs)

    monkeypatch.setattr(addon.scene.importer, "import_glb", spy)
    assert run_ticks(addon, TASK_ID).state.value == "done"
    assert threads_during_import == [[]]


def test_two_tasks_run_at_once(addon: ModuleType, prefs: Any, sim: Hitem3DSimulator, sample_glb: Path,
                               monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(addon.engine.state, "runs_to_end", lambda: False)
    sim.add_task(TASK_ID, ["processing"] * 3 + ["success"], glb=sample_glb)
    sim.add_task(OTHER_ID, ["success"], glb=sample_glb)
    bpy.ops.hitem3d.import_task(task_id=TASK_ID)
    bpy.ops.hitem3d.import_task(task_id=OTHER_ID)

    run_ticks(addon, TASK_ID)
    run_ticks(addon, OTHER_ID)

    assert len(imported_objects(TASK_ID)) == 2 and len(imported_objects(OTHER_ID)) == 2


# -- online access and credentials --------------------------------------------------------------


def test_online_access_off_sends_nothing_and_says_how_to_allow_it(addon: ModuleType, prefs: Any,
                                                                   sim: Hitem3DSimulator) -> None:
    bpy.context.preferences.system.use_online_access = False
    sim.add_task(TASK_ID, ["success"])

    message = import_error()

    assert "Preferences > System > Network > Allow Online Access" in message
    assert sim.requests == []
    record = record_of(addon)
    assert record.state.value == "failed" and "Allow Online Access" in str(record.message)


def test_missing_credentials_point_to_the_preferences(addon: ModuleType, prefs: Any,
                                                      sim: Hitem3DSimulator) -> None:
    prefs.client_secret = ""
    assert "set Client ID and Client Secret" in import_error()
    assert sim.requests == []


def test_credentials_from_environment_when_preferences_are_empty(prefs: Any, sim: Hitem3DSimulator,
                                                                 sample_glb: Path,
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    prefs.base_url = ""
    prefs.client_id = ""
    prefs.client_secret = ""
    monkeypatch.setenv("HITEM3D_API_BASE", sim.base_url)
    monkeypatch.setenv("HITEM3D_CLIENT_ID", sim.client_id)
    monkeypatch.setenv("HITEM3D_CLIENT_SECRET", sim.client_secret)
    sim.add_task(TASK_ID, ["success"], glb=sample_glb)

    assert bpy.ops.hitem3d.import_task(task_id=TASK_ID) == {"FINISHED"}


def test_invalid_credentials_are_named(prefs: Any, sim: Hitem3DSimulator) -> None:
    prefs.client_secret = "wrong-secret"
    sim.add_task(TASK_ID, ["success"])
    assert "rejected the Client ID or Client Secret" in import_error()


def test_test_connection_reports_success_and_failure(addon: ModuleType, prefs: Any) -> None:
    assert bpy.ops.hitem3d.test_connection() == {"FINISHED"}
    assert addon.ui.connection.connection_status().ok

    prefs.client_secret = "wrong-secret"
    with pytest.raises(RuntimeError, match="rejected the Client ID or Client Secret"):
        bpy.ops.hitem3d.test_connection()
    assert not addon.ui.connection.connection_status().ok


# -- failures end with a message and a retryable task ------------------------------------------------


def test_malformed_task_id_is_refused_before_any_request(addon: ModuleType, prefs: Any,
                                                         sim: Hitem3DSimulator) -> None:
    assert "Not a task ID" in import_error("../../etc/passwd")
    assert "Not a task ID" in str(addon.ui.ui_sync.notice())
    assert "Enter a Hitem3D task ID" in import_error("   ")
    assert sim.requests == []


def test_unknown_task_id_says_so(addon: ModuleType, prefs: Any) -> None:
    assert "no task with this ID" in import_error()
    assert record_of(addon).state.value == "failed"


@pytest.mark.parametrize("failure", [
    "failed",
    {"code": 50010001, "msg": "generate failed", "data": {}},
])
def test_generation_failure_says_credits_are_refunded(addon: ModuleType, prefs: Any, sim: Hitem3DSimulator,
                                                      failure: Any) -> None:
    sim.add_task(TASK_ID, ["processing", failure])
    assert "Generation failed on Hitem3D (credits are refunded)" in import_error()


def test_server_errors_are_retried_then_reported(prefs: Any, sim: Hitem3DSimulator) -> None:
    sim.add_task(TASK_ID, ["success"])
    sim.inject("/open-api/v1/query-task", Fault.status(503, b"busy"), times=20)
    assert "Hitem3D is unavailable (HTTP 503)" in import_error()
    assert sim.count("/open-api/v1/query-task") >= 2


def test_a_short_server_outage_is_survived(prefs: Any, sim: Hitem3DSimulator, sample_glb: Path) -> None:
    sim.add_task(TASK_ID, ["success"], glb=sample_glb)
    sim.inject("/open-api/v1/query-task", Fault.status(500), times=2)
    assert bpy.ops.hitem3d.import_task(task_id=TASK_ID) == {"FINISHED"}


def test_unreachable_host_is_named(prefs: Any, sim: Hitem3DSimulator) -> None:
    import socket

    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    prefs.base_url = f"http://127.0.0.1:{port}"
    assert f"Cannot reach 127.0.0.1:{port}" in import_error()


def test_timeout_ends_waiting_with_a_retry_hint(prefs: Any, sim: Hitem3DSimulator) -> None:
    sim.add_task(TASK_ID, ["processing"])
    assert "Task not finished after" in import_error(timeout=1.0)


def test_a_result_that_is_not_glb_is_refused(addon: ModuleType, prefs: Any, sim: Hitem3DSimulator) -> None:
    sim.add_task(TASK_ID, ["success"], glb=b"<html>Access denied</html>")
    assert "not a GLB file" in import_error()
    results = Path(addon.engine.files.results_dir())
    assert not list(results.glob("*.glb")) and not list(results.glob("*.part"))


def test_an_obj_result_names_its_format(prefs: Any, sim: Hitem3DSimulator) -> None:
    sim.add_task(TASK_ID, ["success"], extension="obj")
    assert "result is OBJ, not GLB" in import_error()


def test_retry_after_a_failure_imports(addon: ModuleType, prefs: Any, sim: Hitem3DSimulator,
                                       sample_glb: Path) -> None:
    sim.add_task(TASK_ID, [{"code": 50010001, "msg": "generate failed", "data": {}}, "success"], glb=sample_glb)
    import_error()
    assert record_of(addon).state.value == "failed"

    assert bpy.ops.hitem3d.retry_task(task_id=TASK_ID) == {"FINISHED"}

    assert record_of(addon).state.value == "done"
    assert imported_objects()


# -- secrets ------------------------------------------------------------------------------------------------


def test_secret_never_reaches_a_saved_blend_file(prefs: Any, sim: Hitem3DSimulator, sample_glb: Path,
                                                 tmp_path: Path) -> None:
    sim.add_task(TASK_ID, ["success"], glb=sample_glb)
    bpy.ops.hitem3d.import_task(task_id=TASK_ID)
    path = tmp_path / "scene.blend"

    bpy.ops.wm.save_as_mainfile(filepath=str(path), compress=False, copy=True)

    data = path.read_bytes()
    # Where it is, if it is: the block, the struct and the field that hold it.
    assert find(path, sim.client_secret.encode()) == []
    assert TASK_ID.encode() in data  # the file was really written, with our objects


def spray_heap(*secrets: bytes) -> None:
    """Leave ``secrets`` in freed heap memory, in blocks of every size
    Blender's allocations take, as freed request buffers and settings texts
    do in a real session."""
    import ctypes

    libc = ctypes.CDLL(None)
    libc.malloc.restype = ctypes.c_void_p
    libc.free.argtypes = [ctypes.c_void_p]
    pattern = b"".join(secret + b"\0" for secret in secrets)
    blocks = []
    for size in [*range(16, 2049, 8)] * 8 + [4096, 8192, 16384, 65536] * 8:
        block = libc.malloc(size)
        ctypes.memmove(block, (pattern * (size // len(pattern) + 1))[:size], size)
        blocks.append(block)
    for block in blocks:
        libc.free(block)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="the heap is sprayed through glibc")
def test_freed_memory_that_held_a_secret_never_reaches_a_saved_blend_file(prefs: Any, sim: Hitem3DSimulator,
                                                                        sample_glb: Path, tmp_path: Path) -> None:
    """Blender 4.2 to 4.5 write an image's packed file with 1 KB of whatever
    the heap held before (``scene/save_scrub.py``): a secret freed earlier in
    this process must not be in it."""
    token = b"leaked-token-0123456789abcdef"
    sim.add_task(TASK_ID, ["success"], glb=sample_glb)
    spray_heap(sim.client_secret.encode(), token)
    bpy.ops.hitem3d.import_task(task_id=TASK_ID)  # packs the model's textures in this process
    spray_heap(sim.client_secret.encode(), token)
    picture = bpy.data.images.load(str(cached_webp(64)))
    picture.use_fake_user = True
    picture.pack()  # as the artist's File > External Data > Pack Resources
    path = tmp_path / "scene.blend"

    bpy.ops.wm.save_as_mainfile(filepath=str(path), compress=False, copy=True)

    assert find(path, sim.client_secret.encode()) == [] and find(path, token) == []
    assert TASK_ID.encode() in path.read_bytes()
    bpy.data.images.remove(picture)


def test_credentials_go_to_the_api_host_only(prefs: Any, sim: Hitem3DSimulator, sample_glb: Path) -> None:
    sim.reject_auth_on_files = True
    sim.add_task(TASK_ID, ["success"], glb=sample_glb)
    assert bpy.ops.hitem3d.import_task(task_id=TASK_ID) == {"FINISHED"}
    assert sim.auth_on_files == []


# -- lifecycle ------------------------------------------------------------------------------------------------


def test_disabling_mid_download_stops_workers_timer_and_partials(addon: ModuleType, prefs: Any,
                                                                 sim: Hitem3DSimulator, sample_glb: Path,
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    import addon_utils
    import time

    monkeypatch.setattr(addon.engine.state, "runs_to_end", lambda: False)
    sim.file_rate_limit = 20_000  # bytes/s: the download takes a while
    sim.add_task(TASK_ID, ["success"], glb=sample_glb)
    bpy.ops.hitem3d.import_task(task_id=TASK_ID)
    results = Path(addon.engine.files.results_dir())
    deadline = time.monotonic() + 10
    while not list(results.glob("*.part")) and time.monotonic() < deadline:
        addon.engine.timer.tick()
        time.sleep(0.01)
    assert list(results.glob("*.part")), "download never started"
    tick = addon.engine.timer.tick

    started = time.monotonic()
    addon_utils.disable(addon.__name__, default_set=True)

    assert time.monotonic() - started < 1.5
    assert not bpy.app.timers.is_registered(tick)
    assert not [t for t in threading.enumerate() if t.name.startswith("hitem3d-") and t.name != "hitem3d-simulator"]
    assert not list(results.glob("*.part"))
    assert not list(results.glob("*.glb"))


def test_loading_another_file_keeps_the_timer_and_imports_there(addon: ModuleType, prefs: Any,
                                                                sim: Hitem3DSimulator, sample_glb: Path,
                                                                monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(addon.engine.state, "runs_to_end", lambda: False)
    sim.add_task(TASK_ID, ["processing", "processing", "success"], glb=sample_glb)
    bpy.ops.hitem3d.import_task(task_id=TASK_ID)

    bpy.ops.wm.read_homefile(use_empty=True)

    assert bpy.app.timers.is_registered(addon.engine.timer.tick)
    assert run_ticks(addon, TASK_ID).state.value == "done"
    assert len(imported_objects()) == 2
