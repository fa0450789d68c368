"""Hostile and failing folders in real Blender (issue 21.2, 21.3, 21.7): a
read-only or vanished library, cache or work folder gives one message and a
retryable task, never a loop; Cancel, Remove and disable always work; links
planted in a shared library are never written through; an entry someone
replaced is never appended."""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import threading
import time
from pathlib import Path
from types import ModuleType
from typing import Any, Iterator

import bpy
import pytest

from tests.conftest import ADDON_MODULE
from tests.support.blender_helpers import (OTHER_ID, TASK_ID, current_prefs, imported_objects, record_of,
                                          run_ticks)
from tests.support.read_only import read_only
from tests.support.simulator import Hitem3DSimulator

child_process = pytest.mark.child_process
SAVE_FAILED = ("Could not save the converted model to the Hitem3D asset library: check the folder in the add-on "
               "preferences, then retry")


@pytest.fixture
def interactive(addon: ModuleType, monkeypatch: pytest.MonkeyPatch) -> ModuleType:
    """Operators return at once, as in Blender's UI; tests drive the timer."""
    monkeypatch.setattr(addon.engine.state, "runs_to_end", lambda: False)
    return addon


@pytest.fixture
def errors_logged() -> Iterator[list[logging.LogRecord]]:
    """Every warning and error the add-on logs during the test."""
    records: list[logging.LogRecord] = []

    class Keep(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            records.append(record)

    handler = Keep(logging.WARNING)
    logger = logging.getLogger(ADDON_MODULE)
    logger.addHandler(handler)
    yield records
    logger.removeHandler(handler)


@pytest.fixture
def library(prefs: Any, tmp_path: Path) -> Iterator[Path]:
    """The asset library on a folder of the test's own (a "studio share")."""
    folder = tmp_path / "studio share"
    folder.mkdir()
    prefs.asset_library_folder = str(folder)
    yield folder
    current = current_prefs()  # not ``prefs``: a test here disables and enables the add-on
    if current is not None:
        current.asset_library_folder = ""


def entry_of(addon: ModuleType, task_id: str = TASK_ID) -> Path:
    return Path(addon.scene.asset_library.entry_path(addon.engine.files.file_stem(task_id)))


def converter_alive(addon: ModuleType, task_id: str = TASK_ID) -> bool:
    pid = addon.engine.conversions.pid_of(task_id)
    return pid is not None and Path(f"/proc/{pid}").exists()


def timer_tracebacks(records: list[logging.LogRecord]) -> int:
    return sum(1 for r in records if "Unexpected error in the Hitem3D timer" in r.getMessage())


# -- read-only and vanished folders ------------------------------------------------------------


@child_process
def test_a_read_only_library_fails_the_task_once_and_retry_works_once_fixed(
        interactive: ModuleType, library: Path, sim: Hitem3DSimulator, sample_glb: Path,
        errors_logged: list[logging.LogRecord]) -> None:
    sim.add_task(TASK_ID, ["success"], glb=sample_glb)
    with read_only(library):
        bpy.ops.hitem3d.import_task(task_id=TASK_ID)
        rec = run_ticks(interactive, TASK_ID)
        assert (rec.state.value, str(rec.message)) == ("failed", SAVE_FAILED)
        assert not interactive.engine.conversions.is_converting(TASK_ID)  # no converter worked for nothing
        for _ in range(20):  # and nothing repeats afterwards
            interactive.engine.timer.tick()
    assert timer_tracebacks(errors_logged) == 0

    bpy.ops.hitem3d.retry_task(task_id=TASK_ID)
    assert run_ticks(interactive, TASK_ID).state.value == "done"
    assert entry_of(interactive).is_file()


@child_process
def test_a_library_that_turns_read_only_while_converting_fails_once_and_stops_cleanly(
        interactive: ModuleType, library: Path, sim: Hitem3DSimulator, sample_glb: Path,
        errors_logged: list[logging.LogRecord]) -> None:
    sim.add_task(TASK_ID, ["success"], glb=sample_glb)
    bpy.ops.hitem3d.import_task(task_id=TASK_ID)
    run_ticks(interactive, TASK_ID, until=lambda rec: rec.state.value == "importing")
    with read_only(library):
        started = time.monotonic()
        rec = run_ticks(interactive, TASK_ID)
        assert (rec.state.value, str(rec.message)) == ("failed", SAVE_FAILED)
        assert time.monotonic() - started < 60
        assert not interactive.engine.conversions.is_converting(TASK_ID) and not converter_alive(interactive)
        assert timer_tracebacks(errors_logged) == 0
        # Remove works for the task, and for another one.
        assert interactive.engine.control.remove(TASK_ID) is False
        assert TASK_ID not in interactive.engine.history.book()
    assert not list(library.glob("*.blend")) and not list(library.glob(".*"))


@child_process
def test_disabling_while_every_folder_is_read_only_leaves_nothing_running(
        interactive: ModuleType, library: Path, sim: Hitem3DSimulator, sample_glb: Path) -> None:
    import addon_utils

    sim.add_task(TASK_ID, ["success"], glb=sample_glb)
    bpy.ops.hitem3d.import_task(task_id=TASK_ID)
    run_ticks(interactive, TASK_ID, until=lambda rec: rec.state.value == "importing")
    pid = interactive.engine.conversions.pid_of(TASK_ID)
    work = interactive.engine.files.work_dir()
    tick = interactive.engine.timer.tick
    session = interactive.engine.state.current
    with read_only(library), read_only(work):
        addon_utils.disable(ADDON_MODULE, default_set=True)
        assert not bpy.app.timers.is_registered(tick)
        assert not Path(f"/proc/{pid}").exists()  # killed and reaped
        assert session.lock is not None and not session.lock.owned  # the lock was given back
        assert not [t.name for t in __import__("threading").enumerate() if t.name.startswith("hitem3d-worker")]
    addon_utils.enable(ADDON_MODULE, default_set=True)


def test_a_read_only_results_folder_names_the_folder(interactive: ModuleType, prefs: Any, sim: Hitem3DSimulator,
                                                     sample_glb: Path, errors_logged: list[logging.LogRecord]) -> None:
    sim.add_task(TASK_ID, ["success"], glb=sample_glb)
    results = interactive.engine.files.results_dir()
    with read_only(results):
        bpy.ops.hitem3d.import_task(task_id=TASK_ID)
        rec = run_ticks(interactive, TASK_ID)
    assert rec.state.value == "failed"
    assert str(rec.message) == (f"Cannot write in {results}: it is read-only, missing or not yours; fix it, "
                                "then retry")
    assert not any("Traceback" in (r.exc_text or "") for r in errors_logged)
    bpy.ops.hitem3d.retry_task(task_id=TASK_ID)
    assert run_ticks(interactive, TASK_ID).state.value == "done"


@child_process
def test_a_read_only_work_folder_names_the_folder(interactive: ModuleType, prefs: Any, sim: Hitem3DSimulator,
                                                  sample_glb: Path) -> None:
    sim.add_task(TASK_ID, ["success"], glb=sample_glb)
    work = interactive.engine.files.work_dir()
    with read_only(work):
        bpy.ops.hitem3d.import_task(task_id=TASK_ID)
        rec = run_ticks(interactive, TASK_ID)
    assert (rec.state.value, str(rec.message)) == (
        "failed", f"Cannot write in {work}: it is read-only, missing or not yours; fix it, then retry")
    assert not interactive.engine.conversions.is_converting(TASK_ID)


@child_process
def test_a_vanished_library_fails_the_task_once(interactive: ModuleType, library: Path, sim: Hitem3DSimulator,
                                                sample_glb: Path) -> None:
    sim.add_task(TASK_ID, ["success"], glb=sample_glb)
    bpy.ops.hitem3d.import_task(task_id=TASK_ID)
    run_ticks(interactive, TASK_ID, until=lambda rec: rec.state.value == "importing")
    shutil.rmtree(library)
    library.write_text("not a folder any more")  # a share replaced by a file: nothing can be made there
    rec = run_ticks(interactive, TASK_ID)
    assert (rec.state.value, str(rec.message)) == ("failed", SAVE_FAILED)
    assert not interactive.engine.conversions.is_converting(TASK_ID)
    library.unlink()


def test_remove_and_cancel_work_when_the_library_is_read_only(interactive: ModuleType, library: Path,
                                                              sim: Hitem3DSimulator, sample_glb: Path) -> None:
    sim.add_task(TASK_ID, ["success"], glb=sample_glb)
    sim.add_task(OTHER_ID, ["processing"] * 1000)
    bpy.ops.hitem3d.import_task(task_id=TASK_ID)
    assert run_ticks(interactive, TASK_ID).state.value == "done"
    bpy.ops.hitem3d.import_task(task_id=OTHER_ID)
    with read_only(library):
        bpy.ops.hitem3d.cancel_task(task_id=OTHER_ID)
        assert run_ticks(interactive, OTHER_ID).state.value == "cancelled"
        assert bpy.ops.hitem3d.remove_task(task_id=TASK_ID) == {"FINISHED"}
        assert bpy.ops.hitem3d.remove_task(task_id=OTHER_ID) == {"FINISHED"}
    assert not list(interactive.engine.history.book())
    assert entry_of(interactive).is_file()  # the library refused; the task went all the same


# -- links planted in a shared library and in the work folder -----------------------------------


def plant_links(folder: Path, names: list[str], victim: Path) -> None:
    for name in names:
        link = folder / name
        if os.path.lexists(link):
            link.unlink()
        link.symlink_to(victim)


@pytest.mark.parametrize("in_child", [True, False], ids=["converter", "in-process"])
def test_links_planted_in_a_shared_library_are_never_written_through(
        interactive: ModuleType, library: Path, sim: Hitem3DSimulator, sample_glb: Path, tmp_path: Path,
        in_child: bool) -> None:
    interactive.engine.conversions.USE_CHILD_PROCESS = in_child
    victim = tmp_path / "bashrc"
    victim.write_text("# the artist's own\n")
    stem = interactive.engine.files.file_stem(TASK_ID)
    pid = os.getpid()
    # Every name an earlier version wrote at, and Blender's own "<file>@".
    library_names = [f".blender_assets.cats.txt.{pid}.partial", f".{stem}.{pid}.partial.blend",
                     f".{stem}.{pid}.partial.blend@", f"{stem}.blend@"]
    plant_links(library, library_names, victim)
    work = interactive.engine.files.work_dir()
    work_names = [f"{stem}.spec.json", f"{stem}.result.json", f"{stem}.result.json.partial",
                  f"{stem}.converter.log", "warm.converter.log"]
    plant_links(work, work_names, victim)
    sim.add_task(TASK_ID, ["success"], glb=sample_glb)

    bpy.ops.hitem3d.import_task(task_id=TASK_ID)
    rec = run_ticks(interactive, TASK_ID)

    assert rec.state.value == "done", str(rec.message)
    assert victim.read_text() == "# the artist's own\n"
    entry = entry_of(interactive)
    assert entry.is_file() and not entry.is_symlink()
    assert (library / "blender_assets.cats.txt").is_file()
    assert not [p for p in library.iterdir() if p.name.startswith(".") and not p.is_symlink()]


def test_a_linked_library_entry_is_replaced_never_written_through(interactive: ModuleType, library: Path,
                                                                 sim: Hitem3DSimulator, sample_glb: Path,
                                                                 tmp_path: Path) -> None:
    victim = tmp_path / "victim.blend"
    victim.write_bytes(b"keep")
    entry_of(interactive).symlink_to(victim)
    sim.add_task(TASK_ID, ["success"], glb=sample_glb)
    bpy.ops.hitem3d.import_task(task_id=TASK_ID)
    assert run_ticks(interactive, TASK_ID).state.value == "done"
    assert victim.read_bytes() == b"keep" and not entry_of(interactive).is_symlink()


# -- only what we wrote is appended -------------------------------------------------------------


def planted_blend(path: Path, marker: Path) -> None:
    """A .blend with an object whose Python driver writes ``marker`` when the
    scene is evaluated (it runs when Auto Run Python Scripts is on)."""
    obj = bpy.data.objects.new("Planted", None)
    fcurve = obj.driver_add("location", 0)
    fcurve.driver.type = "SCRIPTED"
    fcurve.driver.expression = f"__import__('pathlib').Path({str(marker)!r}).write_text('ran') and 0"
    bpy.data.libraries.write(str(path), {obj}, fake_user=True)
    bpy.data.objects.remove(obj)


@pytest.fixture
def scripts_run() -> Iterator[None]:
    """Auto Run Python Scripts on, as the artist of issue 21.7 had it."""
    filepaths = bpy.context.preferences.filepaths
    before = filepaths.use_scripts_auto_execute
    filepaths.use_scripts_auto_execute = True
    yield
    filepaths.use_scripts_auto_execute = before


def test_import_again_refuses_an_entry_someone_replaced(interactive: ModuleType, library: Path,
                                                       sim: Hitem3DSimulator, sample_glb: Path, tmp_path: Path,
                                                       scripts_run: None) -> None:
    sim.add_task(TASK_ID, ["success"], glb=sample_glb)
    bpy.ops.hitem3d.import_task(task_id=TASK_ID)
    assert run_ticks(interactive, TASK_ID).state.value == "done"
    for obj in imported_objects():
        bpy.data.objects.remove(obj)
    marker = tmp_path / "driver-ran"
    swapped = tmp_path / "swapped.blend"
    planted_blend(swapped, marker)
    os.replace(swapped, entry_of(interactive))  # a colleague's file at our entry's name

    interactive.engine.control.import_now(TASK_ID)
    bpy.context.view_layer.update()

    rec = record_of(interactive)
    assert rec.state.value == "failed"
    assert str(rec.message) == ("The model in the Hitem3D asset library is not the one saved here (it was changed "
                                "or replaced): press Retry to download and convert it again")
    assert "Planted" not in bpy.data.objects and not marker.exists()
    assert not list(bpy.data.libraries)
    # Retry downloads and converts it again, and Import Again then works.
    bpy.ops.hitem3d.retry_task(task_id=TASK_ID)
    assert run_ticks(interactive, TASK_ID).state.value == "done"
    assert "Planted" not in bpy.data.objects and imported_objects()


def test_an_entry_changed_in_place_is_refused_and_one_rewritten_unchanged_is_not(
        interactive: ModuleType, library: Path, sim: Hitem3DSimulator, sample_glb: Path, tmp_path: Path) -> None:
    sim.add_task(TASK_ID, ["success"], glb=sample_glb)
    bpy.ops.hitem3d.import_task(task_id=TASK_ID)
    assert run_ticks(interactive, TASK_ID).state.value == "done"
    for obj in imported_objects():
        bpy.data.objects.remove(obj)
    entry = entry_of(interactive)
    original = entry.read_bytes()
    # The same bytes written again: another change time, the same content.
    with open(entry, "r+b") as file:
        file.write(original)
    interactive.engine.control.import_now(TASK_ID)
    assert record_of(interactive).state.value == "done" and imported_objects()
    for obj in imported_objects():
        bpy.data.objects.remove(obj)

    planted_blend(tmp_path / "planted.blend", tmp_path / "marker")
    with open(entry, "r+b") as file:  # the same file, other content
        file.truncate(0)
        file.write((tmp_path / "planted.blend").read_bytes())
    interactive.engine.control.import_now(TASK_ID)
    assert record_of(interactive).state.value == "failed"
    assert "Planted" not in bpy.data.objects and not imported_objects()


def test_an_entry_swapped_while_blender_reads_it_is_taken_back_out(interactive: ModuleType, library: Path,
                                                                  sim: Hitem3DSimulator, sample_glb: Path,
                                                                  tmp_path: Path,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    sim.add_task(TASK_ID, ["success"], glb=sample_glb)
    bpy.ops.hitem3d.import_task(task_id=TASK_ID)
    assert run_ticks(interactive, TASK_ID).state.value == "done"
    for obj in imported_objects():
        bpy.data.objects.remove(obj)
    entry = entry_of(interactive)
    swapped = tmp_path / "swapped.blend"
    planted_blend(swapped, tmp_path / "marker")
    load = interactive.scene.append._load_objects

    def swap_first(path: Path) -> Any:
        # The seal was checked; now someone swaps the file before Blender opens it.
        os.replace(swapped, entry)
        return load(path)

    monkeypatch.setattr(interactive.scene.append, "_load_objects", swap_first)
    objects_before = set(bpy.data.objects)
    interactive.engine.control.import_now(TASK_ID)
    assert record_of(interactive).state.value == "failed"
    assert set(bpy.data.objects) == objects_before and not list(bpy.data.libraries)


def test_an_entry_without_a_seal_is_converted_again_never_appended(interactive: ModuleType, library: Path,
                                                                  sim: Hitem3DSimulator, sample_glb: Path,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    sim.add_task(TASK_ID, ["success"], glb=sample_glb)
    bpy.ops.hitem3d.import_task(task_id=TASK_ID)
    assert run_ticks(interactive, TASK_ID).state.value == "done"
    rec = record_of(interactive)
    rec.entry_seal = interactive.core.safe_files.Seal()  # a journal from before entries were sealed
    appended: list[Path] = []
    monkeypatch.setattr(interactive.scene.append, "_load_objects",
                        lambda path: appended.append(path) or pytest.fail("appended an unsealed entry"))
    interactive.engine.control.import_now(TASK_ID)
    rec = run_ticks(interactive, TASK_ID)
    assert rec.state.value == "done" and not appended
    assert rec.entry_seal  # sealed now


def test_the_seal_is_kept_in_the_journal(interactive: ModuleType, library: Path, sim: Hitem3DSimulator,
                                         sample_glb: Path) -> None:
    sim.add_task(TASK_ID, ["success"], glb=sample_glb)
    bpy.ops.hitem3d.import_task(task_id=TASK_ID)
    rec = run_ticks(interactive, TASK_ID)
    interactive.engine.history.save()
    interactive.engine.state.runner().flush_writes()
    text = interactive.engine.files.journal_path().read_text()
    assert rec.entry_seal.digest.startswith("sha256:") and rec.entry_seal.digest in text
    assert not (library / f"{entry_of(interactive).name}.sha256").exists()  # never beside the file


# -- a FIFO (or any non-file) where a file of ours should be (issue 21.12) ----------------------


@contextlib.contextmanager
def fifos(*paths: Path, rescue_after_s: float = 4.0) -> Iterator[None]:
    """FIFOs at ``paths``. Should anything block opening one, a writer comes
    after ``rescue_after_s`` and lets it go: the test then fails on time
    instead of hanging."""
    for path in paths:
        if os.path.lexists(path):
            path.unlink()
        os.mkfifo(path)
    stop = threading.Event()

    def rescue() -> None:
        if stop.wait(rescue_after_s):
            return
        while not stop.is_set():
            for path in paths:
                try:
                    os.close(os.open(path, os.O_WRONLY | os.O_NONBLOCK))
                except OSError:
                    pass
            time.sleep(0.05)

    rescuer = threading.Thread(target=rescue, daemon=True)
    rescuer.start()
    try:
        yield
    finally:
        stop.set()
        rescuer.join()
        for path in paths:
            if os.path.lexists(path):
                path.unlink()


def test_fifos_at_the_journal_settings_and_lock_never_hold_up_enabling(addon: ModuleType) -> None:
    import addon_utils

    folder = addon.engine.files.user_dir()
    addon_utils.disable(ADDON_MODULE, default_set=True)
    with fifos(folder / "journal.json", folder / "settings.json", folder / "instance.lock"):
        started = time.monotonic()
        addon_utils.enable(ADDON_MODULE, default_set=True)
        assert time.monotonic() - started < 2.0


def test_a_fifo_at_a_cover_never_holds_up_the_sidebar_or_import_again(interactive: ModuleType, prefs: Any,
                                                                    sim: Hitem3DSimulator, sample_glb: Path) -> None:
    sim.add_task(TASK_ID, ["success"], glb=sample_glb)
    bpy.ops.hitem3d.import_task(task_id=TASK_ID)
    rec = run_ticks(interactive, TASK_ID)
    assert rec.state.value == "done" and rec.cover_path
    for obj in imported_objects():
        bpy.data.objects.remove(obj)
    with fifos(Path(rec.cover_path)):
        started = time.monotonic()
        assert interactive.ui.panels.cover_size(rec) is None  # the sidebar measures the cover it shows
        # Marked as an asset this time: the cover becomes its preview.
        interactive.engine.control.import_now(TASK_ID, interactive.core.import_options.ImportOptions(mark_asset=True))
        assert time.monotonic() - started < 2.0
    assert record_of(interactive).state.value == "done"
