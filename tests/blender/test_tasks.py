"""Many tasks at once, the journal, thumbnails, the cache and import options,
in real Blender against the simulator."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from types import ModuleType
from typing import Any, Iterator

import bpy
import pytest

from tests.support.blender_helpers import (
    OTHER_ID,
    TASK_ID,
    THIRD_ID,
    glb_downloads,
    imported_objects,
    record_of,
    run_ticks,
)
from tests.conftest import ADDON_MODULE, enable_addon, point_prefs_at
from tests.support.glb_factory import cached_webp
from tests.support.simulator import Fault, Hitem3DSimulator


@pytest.fixture
def interactive(addon: ModuleType, monkeypatch: pytest.MonkeyPatch) -> ModuleType:
    """Operators return at once, as in Blender's UI; tests drive the timer."""
    monkeypatch.setattr(addon.engine.state, "runs_to_end", lambda: False)
    return addon


@pytest.fixture
def cover() -> bytes:
    return cached_webp(64).read_bytes()


def journal_entries(addon: ModuleType) -> dict[str, dict[str, Any]]:
    data = json.loads(addon.engine.files.journal_path().read_text())
    return {entry["task_id"]: entry for entry in data["tasks"]}


@pytest.fixture
def restart() -> Iterator[Any]:
    """Disable and enable the add-on, as a Blender restart would."""
    import addon_utils

    def do_restart() -> ModuleType:
        addon_utils.disable(ADDON_MODULE, default_set=True)
        return enable_addon()

    yield do_restart


# -- several tasks -----------------------------------------------------------------------


def test_pasting_several_ids_adds_each_once_and_imports_all(addon: ModuleType, prefs: Any,
                                                            sim: Hitem3DSimulator, sample_glb: Path) -> None:
    for task_id in (TASK_ID, OTHER_ID, THIRD_ID):
        sim.add_task(task_id, ["processing", "success"], glb=sample_glb)
    bpy.context.window_manager.hitem3d.task_id = f"{TASK_ID}, {OTHER_ID}\n{THIRD_ID} {TASK_ID}"

    assert bpy.ops.hitem3d.import_task() == {"FINISHED"}

    assert len(addon.engine.history.book()) == 3
    for task_id in (TASK_ID, OTHER_ID, THIRD_ID):
        assert len(imported_objects(task_id)) == 2
    assert [item.task_id for item in bpy.context.window_manager.hitem3d.tasks] == [TASK_ID, OTHER_ID, THIRD_ID]  # in the order pasted


def test_tasks_finishing_in_another_order_each_import(interactive: ModuleType, prefs: Any,
                                                      sim: Hitem3DSimulator, sample_glb: Path) -> None:
    sim.add_task(TASK_ID, ["processing"] * 8 + ["success"], glb=sample_glb)
    sim.add_task(OTHER_ID, ["success"], glb=sample_glb)
    bpy.ops.hitem3d.import_task(task_id=f"{TASK_ID} {OTHER_ID}")

    run_ticks(interactive, OTHER_ID)
    assert record_of(interactive, TASK_ID).state.is_active  # the slow one is still running
    run_ticks(interactive, TASK_ID)

    assert record_of(interactive, OTHER_ID).finished_at < record_of(interactive, TASK_ID).finished_at
    assert len(imported_objects(TASK_ID)) == 2 and len(imported_objects(OTHER_ID)) == 2


def test_each_running_task_polls_once_per_interval(interactive: ModuleType, prefs: Any,
                                                   sim: Hitem3DSimulator) -> None:
    import time

    prefs.poll_interval = 0.2
    sim.add_task(TASK_ID, ["processing"])
    sim.add_task(OTHER_ID, ["processing"])
    bpy.ops.hitem3d.import_task(task_id=f"{TASK_ID} {OTHER_ID}")

    def queries(task_id: str) -> list[Any]:
        return [r for r in sim.requests if r.query.get("task_id") == task_id]

    # The timer's calls, as Blender makes them: the first starts the workers.
    deadline = time.monotonic() + 20
    while not (queries(TASK_ID) and queries(OTHER_ID)) and time.monotonic() < deadline:
        interactive.engine.timer.tick()
        time.sleep(0.05)
    first = {task_id: len(queries(task_id)) for task_id in (TASK_ID, OTHER_ID)}
    time.sleep(1.0)
    interactive.engine.timer.tick()

    for task_id in (TASK_ID, OTHER_ID):
        assert 3 <= len(queries(task_id)) - first[task_id] <= 7


# -- journal ---------------------------------------------------------------------------------


def test_journal_records_each_task_and_its_state(addon: ModuleType, prefs: Any, sim: Hitem3DSimulator,
                                                 sample_glb: Path) -> None:
    sim.add_task(TASK_ID, ["success"], glb=sample_glb)
    sim.add_task(OTHER_ID, ["failed"])
    bpy.ops.hitem3d.import_task(task_id=TASK_ID)
    with pytest.raises(RuntimeError):
        bpy.ops.hitem3d.import_task(task_id=OTHER_ID)

    entries = journal_entries(addon)

    assert entries[TASK_ID]["state"] == "done"
    assert entries[TASK_ID]["imported_objects"] == ["Hitem3D_Sample", "Hitem3D_Sample_2"]
    assert entries[OTHER_ID]["state"] == "failed"
    assert "Generation failed" in entries[OTHER_ID]["message"]


def test_restart_shows_history_and_resumes_unfinished_tasks(interactive: ModuleType, prefs: Any,
                                                            sim: Hitem3DSimulator, sample_glb: Path,
                                                            restart: Any,
                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    sim.add_task(OTHER_ID, ["success"], glb=sample_glb)
    bpy.ops.hitem3d.import_task(task_id=OTHER_ID)
    run_ticks(interactive, OTHER_ID)
    sim.add_task(TASK_ID, ["processing"] * 4 + ["success"], glb=sample_glb)
    bpy.ops.hitem3d.import_task(task_id=TASK_ID)
    run_ticks(interactive, TASK_ID, until=lambda rec: rec.state.value == "processing")

    addon = restart()
    point_prefs_at(sim)
    monkeypatch.setattr(addon.engine.state, "runs_to_end", lambda: False)

    assert record_of(addon, OTHER_ID).state.value == "done"  # history
    assert record_of(addon, TASK_ID).state.value == "pending"  # waiting to resume
    addon.engine.control.resume_unfinished()
    assert run_ticks(addon, TASK_ID).state.value == "done"
    assert len(imported_objects(TASK_ID)) == 2


def test_background_sessions_do_not_resume_old_tasks(addon: ModuleType, prefs: Any, sim: Hitem3DSimulator,
                                                     restart: Any) -> None:
    journal = addon.engine.files.journal_path()
    journal.write_text(json.dumps({"version": 1, "tasks": [{"task_id": TASK_ID, "state": "processing"}]}))
    sim.add_task(TASK_ID, ["success"])

    addon = restart()
    addon.engine.timer.tick()

    assert record_of(addon, TASK_ID).state.value == "pending"
    assert sim.requests == []


def test_corrupt_journal_is_survived_and_set_aside(addon: ModuleType, restart: Any) -> None:
    journal = addon.engine.files.journal_path()
    journal.write_text("{ this is not json")

    addon = restart()

    assert len(addon.engine.history.book()) == 0
    assert list(journal.parent.glob("journal.json.corrupt-*"))
    assert ADDON_MODULE in bpy.context.preferences.addons


# -- thumbnails and cache ------------------------------------------------------------------------


def test_cover_is_downloaded_and_shown_as_a_preview(addon: ModuleType, prefs: Any, sim: Hitem3DSimulator,
                                                    sample_glb: Path, cover: bytes) -> None:
    sim.add_task(TASK_ID, ["success"], glb=sample_glb, cover=cover)
    bpy.ops.hitem3d.import_task(task_id=TASK_ID)

    rec = record_of(addon)
    assert Path(rec.cover_path).read_bytes() == cover
    preview = addon.ui.ui_sync.cover_preview(rec)
    assert tuple(preview.image_size) != (0, 0)  # the image really loaded
    assert len(preview.image_pixels_float) > 0


def test_import_again_uses_the_cache(addon: ModuleType, prefs: Any, sim: Hitem3DSimulator,
                                     sample_glb: Path) -> None:
    sim.add_task(TASK_ID, ["success"], glb=sample_glb)
    bpy.ops.hitem3d.import_task(task_id=TASK_ID)
    requests_before = len(sim.requests)

    assert bpy.ops.hitem3d.import_again(task_id=TASK_ID) == {"FINISHED"}

    assert len(imported_objects()) == 4
    assert len(sim.requests) == requests_before  # not even a query
    assert glb_downloads(sim) == 1


def test_cache_size_and_clear_cache(addon: ModuleType, prefs: Any, sim: Hitem3DSimulator,
                                    sample_glb: Path) -> None:
    sim.add_task(TASK_ID, ["success"], glb=sample_glb)
    bpy.ops.hitem3d.import_task(task_id=TASK_ID)
    assert addon.engine.files.cache_size() == sample_glb.stat().st_size

    bpy.ops.hitem3d.clear_cache()

    assert addon.engine.files.cache_size() == 0
    assert record_of(addon).result_path == ""
    # The model is still in the Hitem3D asset library: no download.
    assert bpy.ops.hitem3d.import_again(task_id=TASK_ID) == {"FINISHED"}
    assert glb_downloads(sim) == 1
    # Neither in the library nor in the cache: downloaded again.
    addon.scene.asset_library.remove_entry(addon.engine.files.file_stem(TASK_ID))
    assert bpy.ops.hitem3d.import_again(task_id=TASK_ID) == {"FINISHED"}
    assert glb_downloads(sim) == 2


def test_an_expired_result_link_is_refreshed_without_the_user_noticing(addon: ModuleType, prefs: Any,
                                                                       sim: Hitem3DSimulator,
                                                                       sample_glb: Path) -> None:
    sim.add_task(TASK_ID, ["success"], glb=sample_glb)
    sim.inject("/files/", Fault.status(403), times=2)  # the cover, then the model

    assert bpy.ops.hitem3d.import_task(task_id=TASK_ID) == {"FINISHED"}

    assert sim.count("/open-api/v1/query-task") == 2
    assert len(imported_objects()) == 2


# -- cancel, remove, clear -----------------------------------------------------------------------------


def test_cancel_mid_download_stops_at_once_and_leaves_no_partial(interactive: ModuleType, prefs: Any,
                                                                 sim: Hitem3DSimulator,
                                                                 sample_glb: Path) -> None:
    sim.file_rate_limit = 20_000
    sim.add_task(TASK_ID, ["success"], glb=sample_glb)
    bpy.ops.hitem3d.import_task(task_id=TASK_ID)
    results = interactive.engine.files.results_dir()
    run_ticks(interactive, TASK_ID, until=lambda rec: rec.bytes_done > 0)
    assert list(results.glob("*.part"))

    bpy.ops.hitem3d.cancel_task(task_id=TASK_ID)
    rec = run_ticks(interactive, TASK_ID, limit=100)

    assert rec.state.value == "cancelled"
    assert not list(results.glob("*.part")) and not list(results.glob("*.glb"))
    sim.file_rate_limit = None
    bpy.ops.hitem3d.retry_task(task_id=TASK_ID)
    assert run_ticks(interactive, TASK_ID).state.value == "done"


def test_remove_and_clear_finished(addon: ModuleType, prefs: Any, sim: Hitem3DSimulator,
                                   sample_glb: Path) -> None:
    for task_id in (TASK_ID, OTHER_ID, THIRD_ID):
        sim.add_task(task_id, ["success"], glb=sample_glb)
    bpy.ops.hitem3d.import_task(task_id=f"{TASK_ID} {OTHER_ID} {THIRD_ID}")

    bpy.ops.hitem3d.remove_task(task_id=OTHER_ID)
    assert OTHER_ID not in addon.engine.history.book()
    assert OTHER_ID not in journal_entries(addon)

    bpy.ops.hitem3d.clear_finished()
    assert len(addon.engine.history.book()) == 0
    assert len(bpy.context.window_manager.hitem3d.tasks) == 0


def test_copy_task_id_puts_the_full_id_on_the_clipboard(addon: ModuleType) -> None:
    wm = bpy.context.window_manager
    wm.clipboard = "probe"
    if wm.clipboard != "probe":
        pytest.skip("this Blender has no clipboard (no window system)")
    bpy.ops.hitem3d.copy_task_id(task_id=TASK_ID)
    assert bpy.context.window_manager.clipboard == TASK_ID


# -- import options -------------------------------------------------------------------------------------


def test_import_options_from_a_script_take_effect(addon: ModuleType, prefs: Any, sim: Hitem3DSimulator,
                                                  sample_glb: Path) -> None:
    sim.add_task(TASK_ID, ["success"], glb=sample_glb)
    bpy.context.scene.cursor.location = (3.0, 0.0, 0.0)

    bpy.ops.hitem3d.import_task(task_id=TASK_ID, collection="Props", scale_to_size=True, target_size=2.0)

    objects = imported_objects()
    assert all(obj.users_collection[0].name == "Props" for obj in objects)
    assert "Props" in bpy.context.scene.collection.children
    assert all("hitem3d_imported_at" in obj for obj in objects)
    longest = max(max(obj.dimensions) for obj in objects)
    assert longest == pytest.approx(2.0, rel=1e-3) or longest <= 2.0 + 1e-3
    assert record_of(addon).options.target_size == 2.0


def test_defaults_put_the_model_in_the_hitem3d_collection(addon: ModuleType, prefs: Any,
                                                          sim: Hitem3DSimulator, sample_glb: Path) -> None:
    sim.add_task(TASK_ID, ["success"], glb=sample_glb)
    bpy.ops.hitem3d.import_task(task_id=TASK_ID)
    assert {obj.users_collection[0].name for obj in imported_objects()} == {"Hitem3D"}


def test_with_auto_import_off_a_finished_task_waits_for_a_click(interactive: ModuleType, prefs: Any,
                                                                sim: Hitem3DSimulator,
                                                                sample_glb: Path) -> None:
    prefs.auto_import = False
    try:
        sim.add_task(TASK_ID, ["success"], glb=sample_glb)
        bpy.ops.hitem3d.import_task(task_id=TASK_ID)
        run_ticks(interactive, TASK_ID, until=lambda rec: rec.state.value == "downloaded")
        for _ in range(5):
            interactive.engine.timer.tick()
        assert not imported_objects()

        assert bpy.ops.hitem3d.import_again(task_id=TASK_ID) == {"FINISHED"}

        assert record_of(interactive).state.value == "done"
        assert len(imported_objects()) == 2
    finally:
        prefs.auto_import = True


def test_file_load_rebuilds_the_task_list(interactive: ModuleType, prefs: Any, sim: Hitem3DSimulator,
                                          sample_glb: Path) -> None:
    sim.add_task(TASK_ID, ["success"], glb=sample_glb)
    bpy.ops.hitem3d.import_task(task_id=TASK_ID)
    run_ticks(interactive, TASK_ID)

    bpy.ops.wm.read_homefile(use_empty=True)

    assert [item.task_id for item in bpy.context.window_manager.hitem3d.tasks] == [TASK_ID]
    assert sys.modules[ADDON_MODULE].engine.timer.tick() is None  # idle: nothing left running
