"""Import without freezing Blender: the headless converter, the append on the
main thread, the "Hitem3D" asset library, undo and the converter's failures,
in real Blender against the simulator.

Tests marked ``child_process`` start real converter processes (a second
Blender each); the others import in-process, which gives the same result.
"""

from __future__ import annotations

import os
import sys
import threading
import time
from pathlib import Path
from types import ModuleType
from typing import Any

import bpy
import pytest
from mathutils import Vector

from tests.support.blender_helpers import (OTHER_ID, TASK_ID, THIRD_ID, glb_downloads, imported_objects, record_of,
                                           run_ticks, threads_running_addon_code)
from tests.support.glb_factory import cached_webp
from tests.support.simulator import Hitem3DSimulator

child_process = pytest.mark.child_process


@pytest.fixture
def interactive(addon: ModuleType, monkeypatch: pytest.MonkeyPatch) -> ModuleType:
    """Operators return at once, as in Blender's UI; tests drive the timer."""
    monkeypatch.setattr(addon.engine.state, "runs_to_end", lambda: False)
    for collection in list(bpy.data.collections):
        bpy.data.collections.remove(collection)
    bpy.context.scene.cursor.location = (0.0, 0.0, 0.0)
    return addon


@pytest.fixture
def glb_imports(addon: ModuleType, monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Every run of Blender's glTF importer in this process."""
    calls: list[str] = []
    original = addon.scene.importer.run_gltf

    def spy(path: Path) -> Any:
        calls.append(path.name)
        return original(path)

    monkeypatch.setattr(addon.scene.importer, "run_gltf", spy)
    return calls


def entry_of(addon: ModuleType, task_id: str = TASK_ID) -> Path:
    return Path(addon.scene.asset_library.entry_path(addon.engine.files.file_stem(task_id)))


def converter_pids() -> list[int]:
    """Processes running this test session's converter script (its spec lives
    in this session's user folder), from the process table: orphans included."""
    ours = os.environ["BLENDER_USER_RESOURCES"].encode()
    found = []
    for status in Path("/proc").glob("[0-9]*/cmdline"):
        try:
            command = status.read_bytes()
        except OSError:
            continue
        if b"convert_child.py" in command and ours in command:
            found.append(int(status.parent.name))
    return found


def converter_sessions() -> set[int]:
    """Converters running, each counted once: a converter is a session of its
    own, with any helper process it starts (Blender forks one now and then)."""
    sessions = set()
    for pid in converter_pids():
        try:
            sessions.add(os.getsid(pid))
        except ProcessLookupError:
            pass
    return sessions


def dead(pid: int, within_s: float = 1.0) -> bool:
    """Gone, or a zombie (it runs no more and holds no memory; only its exit
    code waits to be read) within ``within_s``, the timer not called meanwhile."""
    deadline = time.monotonic() + within_s
    while True:
        try:
            if ") Z " in Path(f"/proc/{pid}/stat").read_text():
                return True
        except OSError:
            return True
        if time.monotonic() > deadline:
            return False
        time.sleep(0.01)


def tick_until_reaped(addon: ModuleType, *pids: int) -> None:
    """Killed converters are reaped by the timer's next calls, never waited
    for: the timer keeps running until they are, and then none is left."""
    for _ in range(200):
        # NOTE: a converter the worker process was still starting has no pid to list yet.
        if not addon.engine.conversions.reaping() and not len(addon.engine.conversions._reaper):
            break
        if addon.engine.timer.tick() is None:
            assert not addon.engine.conversions.reaping(), "the timer stopped with a converter unreaped"
        time.sleep(0.01)
    assert all(not Path(f"/proc/{pid}").exists() for pid in pids)  # reaped, not even a zombie
    assert not converter_pids()


def scene_summary(task_id: str = TASK_ID) -> list[tuple[Any, ...]]:
    """What an artist sees of an import: names, collections, where each
    object is, its shading, its tags; sorted by name."""
    rows = []
    for obj in sorted(imported_objects(task_id), key=lambda o: o.name):
        bpy.context.view_layer.update()
        corners = [obj.matrix_world @ Vector(c) for c in obj.bound_box]
        low = tuple(round(min(c[i] for c in corners), 4) for i in range(3))
        high = tuple(round(max(c[i] for c in corners), 4) for i in range(3))
        smooth = all(p.use_smooth for p in obj.data.polygons) if obj.type == "MESH" else None
        rows.append((obj.name.split(".")[0], sorted(c.name for c in obj.users_collection), low, high, smooth,
                     obj.select_get(), sorted(k for k in obj.keys() if k.startswith("hitem3d_")),
                     obj.asset_data is not None, len(obj.data.vertices) if obj.type == "MESH" else 0))
    return rows


def remove_imports() -> None:
    for obj in list(bpy.data.objects):
        bpy.data.objects.remove(obj)
    bpy.data.orphans_purge(do_recursive=True)


def set_options(**values: Any) -> None:
    options = bpy.context.scene.hitem3d_import
    for key, value in values.items():
        setattr(options, key, value)


# -- convert in the background, append in the foreground ----------------------------------------


@child_process
def test_the_timer_converts_in_a_child_and_appends(interactive: ModuleType, prefs: Any, sim: Hitem3DSimulator,
                                                    sample_glb: Path, glb_imports: list[str]) -> None:
    sim.add_task(TASK_ID, ["success"], glb=sample_glb)
    bpy.ops.hitem3d.import_task(task_id=TASK_ID)

    rec = run_ticks(interactive, TASK_ID, until=lambda rec: rec.state.value == "importing")
    pid = interactive.engine.conversions.pid_of(TASK_ID)
    assert str(rec.message) == "Converting in a separate Blender: keep working"  # under the task's state
    rec = run_ticks(interactive, TASK_ID)

    assert rec.state.value == "done", str(rec.message)
    assert glb_imports == []  # Blender's importer never ran on the main process
    objects = imported_objects()
    assert sorted(obj.name for obj in objects) == ["Hitem3D_Sample", "Hitem3D_Sample_2"]
    assert all(obj.select_get() for obj in objects)
    assert bpy.context.view_layer.objects.active in objects
    assert [c.name for c in objects[0].users_collection] == ["Hitem3D"]
    assert entry_of(interactive).is_file()
    assert not list(bpy.data.libraries)  # appended, not linked
    assert not converter_pids() and not Path(f"/proc/{pid}").exists()  # reaped
    assert not rec.message
    assert not any(interactive.engine.files.work_dir().glob("*.json"))


@child_process
def test_a_file_the_converter_refuses_says_why_and_blenders_main_thread_never_checks_it(
        interactive: ModuleType, prefs: Any, sim: Hitem3DSimulator, monkeypatch: pytest.MonkeyPatch) -> None:
    # Meshopt passes the download's check (extensions are the importer's
    # business) and is refused where the file is imported: by a Blender whose
    # importer cannot read it, or by the file checks of any other version.
    from tests.core.test_glb_check import glb, meshopt_document

    if "EXT_meshopt_compression" in interactive.core.glb_check.importer_extensions(bpy.app.version):
        pytest.skip("this Blender imports meshopt: the refusal needs a 4.x or 5.0/5.1 importer")
    sim.add_task(TASK_ID, ["success"], glb=glb(*meshopt_document()))
    checked_here: list[str] = []
    monkeypatch.setattr(interactive.scene.importer, "check_result", lambda path: checked_here.append(path.name))

    bpy.ops.hitem3d.import_task(task_id=TASK_ID)
    rec = run_ticks(interactive, TASK_ID)

    assert rec.state.value == "failed"
    assert "compressed with meshopt, which this version" in str(rec.message), str(rec.message)
    assert checked_here == []  # the check ran in the converter, not on Blender's main thread


@child_process
def test_a_converter_starts_while_the_task_is_made_and_takes_it(interactive: ModuleType, prefs: Any,
                                                                sim: Hitem3DSimulator, sample_glb: Path) -> None:
    sim.add_task(TASK_ID, ["queueing", "processing", "processing", "processing", "success"], glb=sample_glb)
    bpy.ops.hitem3d.import_task(task_id=TASK_ID)
    conversions = interactive.engine.conversions

    run_ticks(interactive, TASK_ID, until=lambda rec: rec.state.value in ("queueing", "processing")
              and conversions.warm_pid() is not None)
    warm = conversions.warm_pid()
    rec = run_ticks(interactive, TASK_ID, until=lambda rec: rec.state.value in ("importing", "done"))

    assert rec.state.value == "importing"
    assert conversions.pid_of(TASK_ID) == warm  # Blender had started during the download
    assert run_ticks(interactive, TASK_ID).state.value == "done"
    assert len(imported_objects()) == 2
    assert conversions.warm_pid() is None and not converter_pids()


@child_process
def test_no_converter_waits_when_no_task_is_on_its_way(interactive: ModuleType, prefs: Any,
                                                      sim: Hitem3DSimulator, sample_glb: Path) -> None:
    sim.add_task(TASK_ID, ["queueing"] * 50 + ["success"], glb=sample_glb)
    bpy.ops.hitem3d.import_task(task_id=TASK_ID)
    run_ticks(interactive, TASK_ID, until=lambda rec: interactive.engine.conversions.warm_pid() is not None)
    warm = interactive.engine.conversions.warm_pid()

    bpy.ops.hitem3d.cancel_task(task_id=TASK_ID)
    run_ticks(interactive, TASK_ID)

    assert interactive.engine.conversions.warm_pid() is None
    tick_until_reaped(interactive, warm)


@child_process
def test_no_converter_waits_for_a_task_that_waits_for_a_click(interactive: ModuleType, prefs: Any,
                                                              sim: Hitem3DSimulator, sample_glb: Path) -> None:
    prefs.auto_import = False
    try:
        sim.add_task(TASK_ID, ["queueing", "processing", "success"], glb=sample_glb)
        bpy.ops.hitem3d.import_task(task_id=TASK_ID)
        seen = []
        run_ticks(interactive, TASK_ID, until=lambda rec: seen.append(interactive.engine.conversions.warm_pid())
                  or rec.state.value == "downloaded")
        assert seen and not any(seen)  # never one started
    finally:
        prefs.auto_import = True


@child_process
def test_import_again_without_a_library_entry_converts_the_cached_glb(interactive: ModuleType, prefs: Any,
                                                                     sim: Hitem3DSimulator, sample_glb: Path,
                                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    sim.add_task(TASK_ID, ["success"], glb=sample_glb)
    bpy.ops.hitem3d.import_task(task_id=TASK_ID)
    assert run_ticks(interactive, TASK_ID).state.value == "done"
    entry_of(interactive).unlink()
    registered: list[bool] = []
    monkeypatch.setattr(interactive.engine.clock, "start", lambda: registered.append(True))

    assert bpy.ops.hitem3d.import_again(task_id=TASK_ID) == {"FINISHED"}

    assert record_of(interactive).state.value == "importing" and registered  # the timer will poll it
    assert run_ticks(interactive, TASK_ID).state.value == "done"
    assert len(imported_objects()) == 4 and entry_of(interactive).is_file()


@child_process
def test_the_child_gives_the_same_scene_as_an_import_in_blender(interactive: ModuleType, prefs: Any,
                                                                  sim: Hitem3DSimulator, sample_glb: Path) -> None:
    options = dict(scale_to_size=True, target_size=2.0, shade_smooth=True, collection="Props")
    bpy.context.scene.cursor.location = (1.0, 2.0, 3.0)
    sim.add_task(TASK_ID, ["success"], glb=sample_glb)
    sim.add_task(OTHER_ID, ["success"], glb=sample_glb)
    bpy.ops.hitem3d.import_task(task_id=TASK_ID, **options)
    assert run_ticks(interactive, TASK_ID).state.value == "done"
    through_child = scene_summary(TASK_ID)
    remove_imports()

    interactive.engine.conversions.USE_CHILD_PROCESS = False
    bpy.ops.hitem3d.import_task(task_id=OTHER_ID, **options)
    assert run_ticks(interactive, OTHER_ID).state.value == "done"

    assert scene_summary(OTHER_ID) == through_child
    assert through_child[0][1] == ["Props"] and through_child[0][4] is True
    assert through_child[0][2][2] == pytest.approx(3.0)  # standing on the cursor



# -- converters share the machine --------------------------------------------------------------------


@child_process
def test_at_most_the_chosen_number_of_converters_run_and_the_rest_wait(interactive: ModuleType, prefs: Any,
                                                                       sim: Hitem3DSimulator, sample_glb: Path,
                                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    prefs.max_converters = 1
    conversions = interactive.engine.conversions
    panels = interactive.ui.panels
    task_ids = [TASK_ID, OTHER_ID, THIRD_ID]
    for task_id in task_ids:
        sim.add_task(task_id, ["success"], glb=sample_glb)
    bpy.ops.hitem3d.import_task(task_id=" ".join(task_ids))
    most, waiting_seen = 0, set()

    def watch(rec: Any) -> bool:
        nonlocal most
        most = max(most, len(converter_sessions()))
        for task_id in task_ids:
            other = record_of(interactive, task_id)
            if conversions.is_waiting(task_id):
                waiting_seen.add(task_id)
                assert str(panels.state_label(other)) == "Waiting"
                assert str(other.message) == "Waiting for a free converter (at most 1 at once): keep working"
        return all(record_of(interactive, task_id).state.is_terminal for task_id in task_ids)

    try:
        run_ticks(interactive, TASK_ID, until=watch)
    finally:
        prefs.max_converters = prefs.bl_rna.properties["max_converters"].default

    assert [record_of(interactive, task_id).state.value for task_id in task_ids] == ["done"] * 3
    assert most == 1 and len(waiting_seen) >= 1
    assert [len(imported_objects(task_id)) for task_id in task_ids] == [2, 2, 2] and not converter_pids()


@child_process
def test_a_model_waiting_for_a_converter_can_be_cancelled_or_removed(interactive: ModuleType, prefs: Any,
                                                                     sim: Hitem3DSimulator,
                                                                     sample_glb: Path) -> None:
    prefs.max_converters = 1
    conversions = interactive.engine.conversions
    task_ids = [TASK_ID, OTHER_ID, THIRD_ID]
    for task_id in task_ids:
        sim.add_task(task_id, ["success"], glb=sample_glb)

    def waiting() -> list[str]:
        return [task_id for task_id in task_ids if conversions.is_waiting(task_id)]

    try:
        bpy.ops.hitem3d.import_task(task_id=" ".join(task_ids))
        run_ticks(interactive, TASK_ID, until=lambda rec: len(waiting()) == 2)
        cancelled, removed = waiting()
        converting = next(task_id for task_id in task_ids if task_id not in (cancelled, removed))

        bpy.ops.hitem3d.cancel_task(task_id=cancelled)
        bpy.ops.hitem3d.remove_task(task_id=removed)
        started: list[int | None] = []
        rec = run_ticks(interactive, converting, until=lambda rec: started.append(conversions.pid_of(cancelled))
                        or (rec.state.is_terminal and record_of(interactive, cancelled).state.is_terminal))
    finally:
        prefs.max_converters = prefs.bl_rna.properties["max_converters"].default

    assert rec.state.value == "done"
    assert record_of(interactive, cancelled).state.value == "cancelled" and not any(started)
    assert removed not in interactive.engine.history.book() and not imported_objects(removed)
    tick_until_reaped(interactive)
    assert not conversions.busy()


@child_process
def test_the_converters_share_one_memory_budget(interactive: ModuleType, prefs: Any) -> None:
    conversions = interactive.engine.conversions
    budget = conversions.MEMORY_BUDGET
    try:
        for at_once in (1, 2, 3, 8):
            prefs.max_converters = at_once
            limits = conversions.limits()
            assert limits.memory_bytes * at_once <= budget and limits.memory_bytes >= budget // at_once - 1
    finally:
        prefs.max_converters = prefs.bl_rna.properties["max_converters"].default
    assert prefs.max_converters == interactive.core.conversion.default_at_once(budget)


def test_the_preferences_show_each_converters_share(addon: ModuleType, prefs: Any) -> None:
    from tests.blender.test_generate import FakeLayout

    drawn: list[tuple[str, str]] = []

    class Drawn:
        """The preferences, drawn into a stand-in layout (background Blender draws nothing)."""

        layout = FakeLayout(drawn)

        def __getattr__(self, name: str) -> Any:
            return getattr(prefs, name)

    conversion, budget = addon.core.conversion, addon.engine.conversions.MEMORY_BUDGET
    prefs.max_converters = 2
    try:
        type(prefs).draw(Drawn(), bpy.context)
    finally:
        prefs.max_converters = prefs.bl_rna.properties["max_converters"].default
    assert ("prop", "max_converters") in drawn
    assert ("label", f"Each converter may use up to {conversion.size_text(budget // 2)} of memory "
                     f"({conversion.size_text(budget)} in all)") in drawn

@child_process
def test_a_background_import_converts_in_a_child_with_the_same_limits(addon: ModuleType, prefs: Any,
                                                                      sim: Hitem3DSimulator, sample_glb: Path,
                                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    """``blender -b``, the bpy module and the command line: the import runs to
    its end inside the operator, in a converter, under its memory cap."""
    assert addon.engine.state.runs_to_end()
    monkeypatch.setattr(addon.engine.conversions, "LIMITS",
                        addon.core.conversion.Limits(timeout_s=60.0, memory_bytes=40 * 1024**2))
    sim.add_task(TASK_ID, ["success"], glb=sample_glb)

    with pytest.raises(RuntimeError, match="needed more than 40 MB of memory"):
        bpy.ops.hitem3d.import_task(task_id=TASK_ID)

    assert record_of(addon).state.value == "failed"
    assert_nothing_left(addon)


@child_process
def test_a_killed_converter_leaves_nothing_in_the_temporary_folder(interactive: ModuleType, prefs: Any,
                                                                   sim: Hitem3DSimulator, sample_glb: Path,
                                                                   monkeypatch: pytest.MonkeyPatch,
                                                                   tmp_path: Path) -> None:
    system_temp = tmp_path / "temp"
    system_temp.mkdir()
    for name in ("TMPDIR", "TMP", "TEMP"):
        monkeypatch.setenv(name, str(system_temp))
    sim.add_task(TASK_ID, ["success"], glb=sample_glb)
    bpy.ops.hitem3d.import_task(task_id=TASK_ID)
    pid = converter_pid(interactive)
    time.sleep(1.0)  # Blender has started and made its session folder

    bpy.ops.hitem3d.cancel_task(task_id=TASK_ID)
    assert run_ticks(interactive, TASK_ID).state.value == "cancelled"
    tick_until_reaped(interactive, pid)

    assert not list(system_temp.iterdir())
    work = interactive.engine.files.work_dir()
    # Emptied, and kept for the next converter until Blender quits (by the
    # worker process, where that one started the converter).
    assert not [path.name for path in work.iterdir() if path.name.startswith("tmp-") and any(path.iterdir())]
    interactive.engine.control.shutdown()
    assert not [path.name for path in work.iterdir() if path.name.startswith("tmp-")]

# -- the asset library ---------------------------------------------------------------------------


def test_each_task_is_one_asset_in_the_hitem3d_library(addon: ModuleType, prefs: Any, sim: Hitem3DSimulator,
                                                      sample_glb: Path) -> None:
    sim.add_task(TASK_ID, ["success"], glb=sample_glb, cover=cached_webp(64).read_bytes())
    bpy.ops.hitem3d.import_task(task_id=TASK_ID)

    library = bpy.context.preferences.filepaths.asset_libraries["Hitem3D"]
    entry = entry_of(addon)
    assert Path(library.path) == entry.parent and entry.parent == addon.scene.asset_library.default_folder()
    with bpy.data.libraries.load(str(entry), assets_only=True) as (source, _):
        assert list(source.collections) == ["Hitem3D 2c2ad20c"]
    with bpy.data.libraries.load(str(entry), link=True) as (_, target):
        target.collections = ["Hitem3D 2c2ad20c"]
    asset = target.collections[0]
    data = asset.asset_data
    assert sorted(obj.name for obj in asset.objects) == ["Hitem3D_Sample", "Hitem3D_Sample_2"]
    assert data["hitem3d_task_id"] == TASK_ID and data["hitem3d_date"].endswith("Z")
    assert TASK_ID in data.description
    assert "Hitem3D" in [tag.name for tag in data.tags]
    assert tuple(asset.preview.image_size) == (64, 64)
    # Self-contained, so it works from a studio share with no GLB beside it.
    images = {image for obj in asset.objects for slot in obj.material_slots if slot.material
              for node in slot.material.node_tree.nodes if node.type == "TEX_IMAGE" and node.image
              for image in [node.image]}
    assert images and all(image.packed_file is not None for image in images)
    catalogs = (entry.parent / "blender_assets.cats.txt").read_text()
    assert f"{data.catalog_id}:{data['hitem3d_date'][:7]}/{data['hitem3d_date'][:10]}:" in catalogs
    for library_id in list(bpy.data.libraries):
        bpy.data.libraries.remove(library_id)


def test_the_library_folder_can_be_moved(addon: ModuleType, prefs: Any, sim: Hitem3DSimulator, sample_glb: Path,
                                         tmp_path: Path) -> None:
    prefs.asset_library_folder = str(tmp_path / "studio share")
    try:
        sim.add_task(TASK_ID, ["success"], glb=sample_glb)
        bpy.ops.hitem3d.import_task(task_id=TASK_ID)
        assert entry_of(addon).parent == tmp_path / "studio share" and entry_of(addon).is_file()
        library = bpy.context.preferences.filepaths.asset_libraries["Hitem3D"]
        assert Path(library.path) == tmp_path / "studio share"
    finally:
        prefs.asset_library_folder = ""
    assert Path(bpy.context.preferences.filepaths.asset_libraries["Hitem3D"].path) == \
        addon.scene.asset_library.default_folder()


def test_a_huge_cover_is_not_made_a_preview(addon: ModuleType, prefs: Any, sim: Hitem3DSimulator,
                                            sample_glb: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    sim.add_task(TASK_ID, ["success"], glb=sample_glb, cover=cached_webp(64).read_bytes())
    original = addon.engine.conversions.make_spec

    def small_limit(**kwargs: Any) -> Any:
        import dataclasses

        return dataclasses.replace(original(**kwargs), cover_pixel_limit=63 * 63)

    monkeypatch.setattr(addon.engine.conversions, "make_spec", small_limit)
    assert bpy.ops.hitem3d.import_task(task_id=TASK_ID) == {"FINISHED"}
    with bpy.data.libraries.load(str(entry_of(addon)), link=True) as (_, target):
        target.collections = ["Hitem3D 2c2ad20c"]
    preview = target.collections[0].preview
    assert preview is None or tuple(preview.image_size) == (0, 0)
    for library_id in list(bpy.data.libraries):
        bpy.data.libraries.remove(library_id)


def test_import_again_appends_from_the_library_without_download_or_gltf(addon: ModuleType, prefs: Any,
                                                                        sim: Hitem3DSimulator, sample_glb: Path,
                                                                        glb_imports: list[str]) -> None:
    sim.add_task(TASK_ID, ["success"], glb=sample_glb)
    bpy.ops.hitem3d.import_task(task_id=TASK_ID)
    bpy.ops.hitem3d.clear_cache()  # no GLB left: only the library has the model
    requests_before = len(sim.requests)

    assert bpy.ops.hitem3d.import_again(task_id=TASK_ID) == {"FINISHED"}

    assert len(imported_objects()) == 4
    assert len(sim.requests) == requests_before and glb_downloads(sim) == 1
    assert glb_imports == [addon.engine.files.result_path(TASK_ID).name]  # the first import only
    assert record_of(addon).state.value == "done"


def test_import_again_applies_options_the_entry_was_made_without(addon: ModuleType, prefs: Any,
                                                                 sim: Hitem3DSimulator, sample_glb: Path) -> None:
    sim.add_task(TASK_ID, ["success"], glb=sample_glb)
    bpy.ops.hitem3d.import_task(task_id=TASK_ID)
    remove_imports()
    set_options(shade_smooth=True, scale_to_size=True, target_size=3.0)
    try:
        assert bpy.ops.hitem3d.import_again(task_id=TASK_ID) == {"FINISHED"}
    finally:
        set_options(shade_smooth=False, scale_to_size=False, target_size=1.0)
    objects = imported_objects()
    assert all(p.use_smooth for obj in objects for p in obj.data.polygons)
    bpy.context.view_layer.update()
    corners = [obj.matrix_world @ Vector(c) for obj in objects for c in obj.bound_box]
    longest = max(max(c[i] for c in corners) - min(c[i] for c in corners) for i in range(3))
    assert longest == pytest.approx(3.0, abs=1e-3)
    assert not any("hitem3d_baked_options" in obj for obj in objects)


def test_remove_deletes_the_library_entry_and_says_so(addon: ModuleType, prefs: Any, sim: Hitem3DSimulator,
                                                      sample_glb: Path, capfd: pytest.CaptureFixture[str]) -> None:
    sim.add_task(TASK_ID, ["success"], glb=sample_glb)
    bpy.ops.hitem3d.import_task(task_id=TASK_ID)
    assert entry_of(addon).is_file()
    capfd.readouterr()

    bpy.ops.hitem3d.remove_task(task_id=TASK_ID)

    assert not entry_of(addon).exists() and TASK_ID not in addon.engine.history.book()
    assert "Removed task 2c2ad20c and its model in the Hitem3D asset library" in capfd.readouterr().out


def test_clear_cache_keeps_the_library_and_says_so(addon: ModuleType, prefs: Any, sim: Hitem3DSimulator,
                                                   sample_glb: Path, capfd: pytest.CaptureFixture[str]) -> None:
    sim.add_task(TASK_ID, ["success"], glb=sample_glb)
    bpy.ops.hitem3d.import_task(task_id=TASK_ID)
    capfd.readouterr()

    bpy.ops.hitem3d.clear_cache()

    size = sample_glb.stat().st_size / 1e6
    assert (f"Deleted downloaded GLB files ({size:.1f} MB); the Hitem3D asset library keeps 1 model(s)"
            in capfd.readouterr().out)
    assert entry_of(addon).is_file()



@child_process
def test_clear_cache_during_a_conversion_keeps_the_model_it_converts(interactive: ModuleType, prefs: Any,
                                                                     sim: Hitem3DSimulator, sample_glb: Path) -> None:
    sim.add_task(TASK_ID, ["success"], glb=sample_glb)
    bpy.ops.hitem3d.import_task(task_id=TASK_ID)
    converter_pid(interactive)

    bpy.ops.hitem3d.clear_cache()

    rec = run_ticks(interactive, TASK_ID)
    assert (rec.state.value, str(rec.message)) == ("done", "")
    assert len(imported_objects()) == 2

# -- undo ----------------------------------------------------------------------------------------


@pytest.fixture
def undo_ready(interactive: ModuleType) -> ModuleType:
    """A window and a first undo step, as in Blender's UI."""
    if not bpy.ops.ed.undo_push.poll():
        pytest.skip("no undo system in this Blender")
    bpy.ops.ed.undo_push(message="Before")
    return interactive


def test_an_import_from_the_timer_is_one_undo_step(undo_ready: ModuleType, prefs: Any, sim: Hitem3DSimulator,
                                                   sample_glb: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    pushed: list[str] = []
    original = undo_ready.engine.conversions.push_undo
    monkeypatch.setattr(undo_ready.engine.conversions, "push_undo", lambda task_id: (pushed.append(task_id),
                                                                             original(task_id)))
    meshes_before = {mesh.name for mesh in bpy.data.meshes}
    sim.add_task(TASK_ID, ["success"], glb=sample_glb)
    bpy.ops.hitem3d.import_task(task_id=TASK_ID)
    assert run_ticks(undo_ready, TASK_ID).state.value == "done"
    assert pushed == [TASK_ID] and len(imported_objects()) == 2

    bpy.ops.ed.undo()

    assert not imported_objects()
    assert {mesh.name for mesh in bpy.data.meshes} == meshes_before


def test_no_worker_runs_while_the_undo_step_is_pushed(interactive: ModuleType, prefs: Any,
                                                     sim: Hitem3DSimulator, sample_glb: Path,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    """The undo push writes the whole file to memory with the GIL released: a
    journal write beside it crashed bpy 4.5 once. No thread of ours is in
    Blender's process to run beside it (docs/threads-in-blender.md)."""
    threads: list[list[str]] = []
    sim.add_task(TASK_ID, ["success"], glb=sample_glb)
    sim.add_task(OTHER_ID, ["processing"])  # checked all along
    bpy.ops.hitem3d.import_task(task_id=f"{TASK_ID} {OTHER_ID}")
    assert run_ticks(interactive, TASK_ID).state.value == "done"
    monkeypatch.setattr(interactive.engine.conversions, "push_undo",
                        lambda task_id: threads.append(threads_running_addon_code(interactive)))

    # Import Again runs from the button, outside any timer call.
    assert bpy.ops.hitem3d.import_again(task_id=TASK_ID) == {"FINISHED"}

    assert threads == [[]]


def test_import_again_is_one_undo_step(undo_ready: ModuleType, prefs: Any, sim: Hitem3DSimulator,
                                       sample_glb: Path) -> None:
    sim.add_task(TASK_ID, ["success"], glb=sample_glb)
    bpy.ops.hitem3d.import_task(task_id=TASK_ID)
    run_ticks(undo_ready, TASK_ID)

    bpy.ops.hitem3d.import_again(task_id=TASK_ID)
    assert len(imported_objects()) == 4
    bpy.ops.ed.undo()

    assert len(imported_objects()) == 2


# -- failures ------------------------------------------------------------------------------------


def converter_pid(addon: ModuleType) -> int:
    """Run the timer until the task converts; the converter's process ID."""
    run_ticks(addon, TASK_ID, until=lambda rec: rec.state.value == "importing")
    # Started by the worker process (Python 3.11) or a thread: its pid comes a moment later.
    run_ticks(addon, TASK_ID, until=lambda rec: addon.engine.conversions.pid_of(TASK_ID) is not None)
    pid: int = addon.engine.conversions.pid_of(TASK_ID)
    return pid


def assert_nothing_left(addon: ModuleType) -> None:
    assert not imported_objects()
    assert not entry_of(addon).exists()
    assert not converter_pids()
    assert not addon.engine.conversions.busy()


@child_process
def test_a_converter_over_its_memory_limit_fails_cleanly_and_can_be_retried(
        interactive: ModuleType, prefs: Any, sim: Hitem3DSimulator, sample_glb: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    limits = interactive.core.conversion.Limits(timeout_s=60.0, memory_bytes=40 * 1024**2)
    monkeypatch.setattr(interactive.engine.conversions, "LIMITS", limits)
    sim.add_task(TASK_ID, ["success"], glb=sample_glb)
    bpy.ops.hitem3d.import_task(task_id=TASK_ID)

    rec = run_ticks(interactive, TASK_ID)

    assert rec.state.value == "failed"
    assert str(rec.message) == ("Converting the model needed more than 40 MB of memory, the converter's limit: "
                                "not imported; retry, or report the task")
    assert_nothing_left(interactive)
    monkeypatch.setattr(interactive.engine.conversions, "USE_CHILD_PROCESS", False)
    bpy.ops.hitem3d.retry_task(task_id=TASK_ID)
    assert run_ticks(interactive, TASK_ID).state.value == "done"


@child_process
def test_a_converter_over_its_time_limit_fails_cleanly(interactive: ModuleType, prefs: Any,
                                                       sim: Hitem3DSimulator, sample_glb: Path,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(interactive.engine.conversions, "LIMITS", interactive.core.conversion.Limits(timeout_s=0.2))
    sim.add_task(TASK_ID, ["success"], glb=sample_glb)
    bpy.ops.hitem3d.import_task(task_id=TASK_ID)

    rec = run_ticks(interactive, TASK_ID)

    assert (rec.state.value, str(rec.message)) == ("failed", "Converting the model took longer than 0.2s: "
                                                             "not imported; retry")
    assert_nothing_left(interactive)


@child_process
def test_a_converter_that_cannot_start_says_so(interactive: ModuleType, prefs: Any, sim: Hitem3DSimulator,
                                               sample_glb: Path, monkeypatch: pytest.MonkeyPatch,
                                               tmp_path: Path) -> None:
    monkeypatch.setattr(interactive.engine.conversions.sys, "executable", str(tmp_path / "missing-blender"))
    sim.add_task(TASK_ID, ["success"], glb=sample_glb)
    bpy.ops.hitem3d.import_task(task_id=TASK_ID)

    rec = run_ticks(interactive, TASK_ID)

    assert rec.state.value == "failed"
    assert str(rec.message).startswith("Could not start Blender to convert the model")
    assert_nothing_left(interactive)
    assert interactive.engine.conversions.warm_pid() is None


def test_a_converter_that_cannot_start_ahead_is_not_tried_on_every_tick(interactive: ModuleType, prefs: Any,
                                                                       sim: Hitem3DSimulator, sample_glb: Path,
                                                                       monkeypatch: pytest.MonkeyPatch,
                                                                       tmp_path: Path) -> None:
    conversions = interactive.engine.conversions
    monkeypatch.setattr(conversions, "USE_CHILD_PROCESS", True)
    monkeypatch.setattr(conversions.sys, "executable", str(tmp_path / "missing-blender"))
    starts: list[int] = []
    original = conversions.WarmChild.start
    monkeypatch.setattr(conversions.WarmChild, "start", lambda self: (starts.append(1), original(self)))
    sim.add_task(TASK_ID, ["queueing"] * 20 + ["success"], glb=sample_glb)
    bpy.ops.hitem3d.import_task(task_id=TASK_ID)

    run_ticks(interactive, TASK_ID, until=lambda rec: rec.state.value in ("downloading", "importing", "failed"))

    assert len(starts) == 1 and conversions.warm_pid() is None


def test_a_converter_starts_ahead_in_a_quiet_call_or_after_a_second(interactive: ModuleType,
                                                                   monkeypatch: pytest.MonkeyPatch,
                                                                   tmp_path: Path) -> None:
    """Without a starter thread (Python 3.11), a start costs the main thread
    about a millisecond: the timer's call that has done much already leaves
    it to a later one, for at most a second."""
    conversions = interactive.engine.conversions
    monkeypatch.setattr(conversions, "USE_CHILD_PROCESS", True)
    monkeypatch.setattr(conversions, "_starter", None)
    started: list[int] = []

    class Child:
        failed = None

        def __init__(self, command: Any, environment: Any, log_path: Any, limits: Any, starter: Any) -> None:
            self.limits, self.alive, self.pid = limits, True, 1

        def start(self) -> None:
            started.append(1)

        def abandon(self, reaper: Any) -> None:
            self.alive = False

    monkeypatch.setattr(conversions, "WarmChild", Child)
    clock = [100.0]
    monkeypatch.setattr(conversions.time, "monotonic", lambda: clock[0])
    conversions.keep_warm(False, lambda: tmp_path)  # from no task on its way, as after an earlier test
    try:
        conversions.keep_warm(True, lambda: tmp_path, may_start=False)
        clock[0] += conversions.WARM_START_WAIT_S / 2
        conversions.keep_warm(True, lambda: tmp_path, may_start=False)
        assert started == []
        conversions.keep_warm(True, lambda: tmp_path)  # a quiet call
        assert started == [1]
        conversions.keep_warm(False, lambda: tmp_path)  # none wanted any more: stopped at once
        assert conversions.warm_pid() is None
        conversions.keep_warm(True, lambda: tmp_path, may_start=False)
        clock[0] += conversions.WARM_START_WAIT_S
        conversions.keep_warm(True, lambda: tmp_path, may_start=False)  # busy calls only: not later than this
        assert started == [1, 1]
    finally:
        conversions.keep_warm(False, lambda: tmp_path)


@pytest.mark.skipif(sys.version_info < (3, 12), reason="no starter thread with Python 3.11: a thread of ours "
                    "running Python while an operator runs can crash Blender (docs/threads-in-blender.md)")
def test_a_converter_started_ahead_never_holds_up_the_timer_call(interactive: ModuleType,
                                                                  monkeypatch: pytest.MonkeyPatch,
                                                                  tmp_path: Path) -> None:
    """A spawn returns when the child reaches exec: 0.8 ms on a quiet machine,
    up to 4 ms on a busy one. Where Python threads are safe in Blender's
    process, the timer's call only asks for it; the converter starter's
    thread waits, and ends when conversions stop."""
    conversions, conversion = interactive.engine.conversions, interactive.core.conversion
    monkeypatch.setattr(conversions, "USE_CHILD_PROCESS", True)
    spawn = conversion.spawn

    def slow(*args: Any, **kwargs: Any) -> Any:
        time.sleep(0.3)  # a very busy machine
        return spawn(*args, **kwargs)

    monkeypatch.setattr(conversion, "spawn", slow)
    conversions.keep_warm(False, lambda: tmp_path)  # from no task on its way, as after an earlier test
    try:
        asked = time.perf_counter()
        conversions.keep_warm(True, lambda: tmp_path)
        assert time.perf_counter() - asked < 0.05
        assert conversions.warm_pid() is None  # still starting
        deadline = time.monotonic() + 10
        while conversions.warm_pid() is None and time.monotonic() < deadline:
            conversions.keep_warm(True, lambda: tmp_path)  # as the timer calls it
            time.sleep(0.02)
        pid = conversions.warm_pid()
        assert pid is not None
    finally:
        conversions.keep_warm(False, lambda: tmp_path)
    conversions.stop_all()
    assert not [t.name for t in threading.enumerate() if t.name == "hitem3d-converter-starter"]
    assert not Path(f"/proc/{pid}").exists()  # killed and reaped, with the thread that started it gone


@pytest.mark.skipif(sys.version_info >= (3, 12), reason="with Python 3.12 and newer a thread of ours starts "
                    "converters (the test above)")
@child_process
def test_with_python_3_11_the_worker_process_starts_converters(interactive: ModuleType, prefs: Any,
                                                               sim: Hitem3DSimulator, sample_glb: Path,
                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    """No thread of ours may run Python in Blender's process there, and a
    spawn costs the timer's call up to 4 ms: the worker process spawns, and
    Blender's side only sends it a line."""
    conversion = interactive.core.conversion
    spawns_here: list[int] = []
    spawn = conversion.spawn
    monkeypatch.setattr(conversion, "spawn", lambda *args, **kwargs: spawns_here.append(1) or spawn(*args, **kwargs))
    sim.add_task(TASK_ID, ["success"], glb=sample_glb)
    bpy.ops.hitem3d.import_task(task_id=TASK_ID)

    pid = converter_pid(interactive)

    worker = interactive.engine.state.current.runner.pid
    assert int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1]) == worker
    assert not [t.name for t in threading.enumerate() if t.name.startswith("hitem3d-converter")]
    assert run_ticks(interactive, TASK_ID).state.value == "done"
    assert spawns_here == []  # neither this converter nor one started ahead
    assert not converter_pids()


@child_process
def test_a_crashing_converter_says_so(interactive: ModuleType, prefs: Any, sim: Hitem3DSimulator,
                                      sample_glb: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    crash = tmp_path / "convert_child.py"
    crash.write_text("import os, signal\nos.kill(os.getpid(), signal.SIGSEGV)\n")
    monkeypatch.setattr(interactive.engine.conversions, "CHILD_SCRIPT", crash)
    sim.add_task(TASK_ID, ["success"], glb=sample_glb)
    bpy.ops.hitem3d.import_task(task_id=TASK_ID)

    rec = run_ticks(interactive, TASK_ID)

    assert (rec.state.value, rec.message) == ("failed", interactive.core.conversion.CRASHED)
    assert_nothing_left(interactive)


@child_process
def test_cancel_stops_the_converter_within_a_second(interactive: ModuleType, prefs: Any,
                                                    sim: Hitem3DSimulator, sample_glb: Path) -> None:
    sim.add_task(TASK_ID, ["success"], glb=sample_glb)
    bpy.ops.hitem3d.import_task(task_id=TASK_ID)
    pid = converter_pid(interactive)

    started = time.monotonic()
    bpy.ops.hitem3d.cancel_task(task_id=TASK_ID)
    rec = run_ticks(interactive, TASK_ID, limit=100)

    assert time.monotonic() - started < 1.0
    assert rec.state.value == "cancelled"
    assert not Path(f"/proc/{pid}").exists()  # reaped, not even a zombie
    assert_nothing_left(interactive)


@child_process
def test_removing_a_converting_task_stops_its_converter(interactive: ModuleType, prefs: Any,
                                                       sim: Hitem3DSimulator, sample_glb: Path) -> None:
    sim.add_task(TASK_ID, ["success"], glb=sample_glb)
    bpy.ops.hitem3d.import_task(task_id=TASK_ID)
    pid = converter_pid(interactive)

    bpy.ops.hitem3d.remove_task(task_id=TASK_ID)

    assert dead(pid)  # killed at once
    tick_until_reaped(interactive, pid)
    assert TASK_ID not in interactive.engine.history.book()
    assert_nothing_left(interactive)


@child_process
def test_disabling_the_addon_stops_the_converter(interactive: ModuleType, prefs: Any, sim: Hitem3DSimulator,
                                                 sample_glb: Path) -> None:
    import addon_utils

    sim.add_task(TASK_ID, ["success"], glb=sample_glb)
    bpy.ops.hitem3d.import_task(task_id=TASK_ID)
    run_ticks(interactive, TASK_ID, until=lambda rec: rec.state.value == "importing")
    pids = [interactive.engine.conversions.pid_of(TASK_ID)]

    started = time.monotonic()
    addon_utils.disable(interactive.__name__, default_set=True)

    assert time.monotonic() - started < 1.5
    assert not converter_pids()
    assert all(not Path(f"/proc/{pid}").exists() for pid in pids)  # reaped, not even a zombie
    assert not os.path.exists(entry_of(interactive))


@child_process
def test_quitting_blender_stops_the_converter_within_a_second(interactive: ModuleType, prefs: Any,
                                                            sim: Hitem3DSimulator, sample_glb: Path) -> None:
    sim.add_task(TASK_ID, ["success"], glb=sample_glb)
    bpy.ops.hitem3d.import_task(task_id=TASK_ID)
    pid = converter_pid(interactive)

    started = time.monotonic()
    interactive._at_exit()  # what Blender's interpreter runs when it quits

    assert time.monotonic() - started < 1.0
    assert not Path(f"/proc/{pid}").exists() and not converter_pids()
    assert not os.path.exists(entry_of(interactive))
    assert not [path.name for path in interactive.engine.files.work_dir().iterdir() if path.name.startswith("tmp-")]


def test_the_glb_checks_apply_before_any_conversion(interactive: ModuleType, prefs: Any, sim: Hitem3DSimulator,
                                                    sample_glb: Path) -> None:
    sim.add_task(TASK_ID, ["success"], glb=sample_glb)
    interactive.engine.state.current.import_requests.clear()
    prefs.auto_import = False
    try:
        bpy.ops.hitem3d.import_task(task_id=TASK_ID)
        run_ticks(interactive, TASK_ID, until=lambda rec: rec.state.value == "downloaded")
        path = interactive.engine.files.result_path(TASK_ID)
        path.write_bytes(path.read_bytes()[:-10])  # truncated after the download
        interactive.engine.control.request_import(TASK_ID)
        rec = run_ticks(interactive, TASK_ID)
    finally:
        prefs.auto_import = True
    assert (rec.state.value, str(rec.message)) == ("failed", "The downloaded GLB is incomplete: retry")
    assert_nothing_left(interactive)
