"""Hostile result files in real Blender: refused before the importer sees them,
and a failed import leaves nothing behind."""

from __future__ import annotations

import base64
import json
import os
import struct
import subprocess
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import bpy
import pytest

from tests.support.blender_helpers import OTHER_ID, TASK_ID, record_of
from tests.support.simulator import Hitem3DSimulator
from tests.core.test_glb_check import POSITIONS, document, glb, webp_vp8x_header
from tests.conftest import point_prefs_at
from tests.core.test_instance_lock import another_blender, crashed_holder
from tests.core.test_safe_files import FullDisk
from tests.support.worker_patch import patch_workers

# In the worker process: every file the downloader creates takes nothing.
FULL_DISK = """
import errno
safe_files = core.safe_files
real_create = safe_files.create_new

class FullDisk:
    def __enter__(self):
        return self

    def __exit__(self, *args):
        pass

    def write(self, data):
        raise OSError(errno.ENOSPC, "No space left on device")

def full_disk(path, mode=0o644):
    real_create(path, mode).close()
    return FullDisk()

safe_files.create_new = full_disk
"""

DATA_KINDS = ("objects", "meshes", "materials", "images", "collections", "node_groups", "actions", "textures")


def counts() -> dict[str, int]:
    return {kind: len(getattr(bpy.data, kind)) for kind in DATA_KINDS}


def two_meshes_the_second_broken() -> bytes:
    """Passes every declared-size check; Blender's importer builds the first
    mesh, then fails on the second (an index far past its vertices)."""
    indices = struct.pack("<3I", 0, 1, 999_999)
    doc = document(
        nodes=[{"mesh": 0, "name": "First"}, {"mesh": 1, "name": "Second"}],
        scenes=[{"nodes": [0, 1]}],
        materials=[{"name": "Hostile_Material"}],
        meshes=[{"name": "FirstMesh", "primitives": [{"attributes": {"POSITION": 0}, "material": 0}]},
                {"name": "SecondMesh", "primitives": [{"attributes": {"POSITION": 0}, "indices": 1}]}],
        buffers=[{"byteLength": 48}],
        bufferViews=[{"buffer": 0, "byteLength": 36}, {"buffer": 0, "byteOffset": 36, "byteLength": 12}],
        accessors=[{"bufferView": 0, "componentType": 5126, "count": 3, "type": "VEC3"},
                   {"bufferView": 1, "componentType": 5125, "count": 3, "type": "SCALAR"}],
    )
    return glb(doc, POSITIONS + indices)


def test_a_glb_reading_a_local_file_never_reaches_blender(addon: ModuleType, tmp_path: Path) -> None:
    secret = tmp_path / "secret.bin"
    secret.write_bytes(POSITIONS)  # would become the vertices
    hostile = tmp_path / "hostile.glb"
    hostile.write_bytes(glb(document(buffers=[{"byteLength": 36, "uri": str(secret)}]), b""))
    before = counts()

    # The step every import path takes (this process, the child converter).
    with pytest.raises(addon.core.errors.ImportFailed, match="buffer 0 refers to a file outside it"):
        addon.scene.importer.run_gltf(hostile)
    assert counts() == before


def test_a_hostile_result_fails_the_task_with_a_specific_message(addon: ModuleType, prefs: Any,
                                                                  sim: Hitem3DSimulator, tmp_path: Path) -> None:
    picture = "data:image/png;base64," + base64.b64encode(b"\x89PNG\r\n\x1a\n" + struct.pack(">I", 13) + b"IHDR"
                                                         + struct.pack(">II", 40000, 40000) + bytes(9)).decode()
    sim.add_task(TASK_ID, ["success"], glb=glb(document(images=[{"uri": picture}])))

    with pytest.raises(RuntimeError, match="image 0 is 40,000 x 40,000 pixels"):
        bpy.ops.hitem3d.import_task(task_id=TASK_ID)
    assert record_of(addon).state.name == "FAILED"
    assert not addon.engine.files.result_path(TASK_ID).exists()


def test_a_failed_import_removes_everything_it_made(addon: ModuleType, prefs: Any, sim: Hitem3DSimulator,
                                                    capfd: pytest.CaptureFixture[str]) -> None:
    sim.add_task(TASK_ID, ["success"], glb=two_meshes_the_second_broken())
    before = counts()

    with pytest.raises(RuntimeError, match="Blender could not import the GLB: retry, or report it with the log"):
        bpy.ops.hitem3d.import_task(task_id=TASK_ID)

    assert counts() == before
    assert "Traceback" not in capfd.readouterr().err
    log_text = addon.ui.diagnostics.log_path().read_text(encoding="utf-8")
    assert "Traceback" in log_text and "glTF import of" in log_text


def test_import_after_a_failure_brings_one_copy(addon: ModuleType, prefs: Any, sim: Hitem3DSimulator,
                                                sample_glb: Path) -> None:
    sim.add_task(TASK_ID, ["success"], glb=two_meshes_the_second_broken())
    sim.add_task(OTHER_ID, ["success"], glb=sample_glb)
    with pytest.raises(RuntimeError):
        bpy.ops.hitem3d.import_task(task_id=TASK_ID)

    assert bpy.ops.hitem3d.import_task(task_id=OTHER_ID) == {"FINISHED"}
    assert not [obj for obj in bpy.data.objects if obj.name.startswith(("First", "Second"))]
    assert not [mesh for mesh in bpy.data.meshes if mesh.name.startswith(("FirstMesh", "SecondMesh"))]


# -- two Blender instances, one folder ------------------------------------------------------


def test_a_second_blender_is_a_guest_that_still_imports(addon: ModuleType, prefs: Any, sim: Hitem3DSimulator,
                                                        sample_glb: Path) -> None:
    addon.ui.session.shutdown()
    folder = addon.engine.files.user_dir()
    with another_blender(folder) as said:  # the owning Blender, holding the folder's lock
        assert said == "owner"
        owner_pid = json.loads((folder / "instance.lock").read_text())["pid"]
        guest_imports(addon, sim, sample_glb, owner_pid)


def guest_imports(addon: ModuleType, sim: Hitem3DSimulator, sample_glb: Path, owner_pid: int) -> None:
    running = addon.core.tasks.TaskRecord(OTHER_ID)
    running.state = addon.core.tasks.TaskState.PROCESSING
    addon.core.journal.save(addon.engine.files.journal_path(), [running])
    journal_before = addon.engine.files.journal_path().read_bytes()
    results = addon.engine.files.results_dir()
    results.mkdir(parents=True, exist_ok=True)  # the path is cached; the fixture emptied the folder
    owners_partial = results / f"task-x.glb.{owner_pid}.part"
    owners_partial.write_bytes(b"half")
    sim.add_task(TASK_ID, ["success"], glb=sample_glb)

    addon.engine.ownership.remove_partial_files()
    assert addon.engine.history.book().get(OTHER_ID) is None  # the owner runs it; not resumed here
    assert bpy.ops.hitem3d.import_task(task_id=TASK_ID) == {"FINISHED"}

    assert [obj for obj in bpy.data.objects if obj.get("hitem3d_task_id") == TASK_ID]
    assert owners_partial.read_bytes() == b"half"
    assert addon.engine.files.journal_path().read_bytes() == journal_before


def test_the_owner_takes_over_a_dead_instances_lock_and_cleans_its_partials(addon: ModuleType) -> None:
    addon.ui.session.shutdown()
    folder = addon.engine.files.user_dir()
    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()
    crashed_holder(folder, gone.pid)
    results = addon.engine.files.results_dir()
    results.mkdir(parents=True, exist_ok=True)  # the path is cached; the fixture emptied the folder
    leftover = results / f"task-x.glb.{gone.pid}.part"
    leftover.write_bytes(b"half")

    addon.engine.ownership.remove_partial_files()

    assert not leftover.exists()
    assert addon.engine.ownership.owns_folder()
    assert json.loads((folder / "instance.lock").read_text())["pid"] == os.getpid()


def test_partial_files_of_an_earlier_blender_with_this_pid_are_removed(addon: ModuleType) -> None:
    # PIDs are few (in a container, a restarted Blender often gets the crashed one's).
    addon.ui.session.shutdown()
    results = addon.engine.files.results_dir()
    results.mkdir(parents=True, exist_ok=True)
    older = results / f"task-x.glb.{os.getpid()}.part"
    earlier = results / f"task-y.glb.{os.getpid()}-0badc0de-01234567.part"
    for path in (older, earlier):
        path.write_bytes(b"half")
    addon.engine.ownership.remove_partial_files()
    assert not older.exists() and not earlier.exists()


def test_a_crashed_guests_partial_file_goes_once_the_owners_tasks_end(addon: ModuleType, prefs: Any,
                                                                     sim: Hitem3DSimulator, sample_glb: Path,
                                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    from tests.core.test_instance_lock import dead_pid
    from tests.support.blender_helpers import run_ticks

    monkeypatch.setattr(addon.engine.state, "runs_to_end", lambda: False)
    results = addon.engine.files.results_dir()
    results.mkdir(parents=True, exist_ok=True)
    assert addon.engine.ownership.owns_folder()
    guests = results / f"task-z.glb.{dead_pid()}-0badc0de-01234567.part"  # a guest killed mid-download
    guests.write_bytes(b"half")
    sim.add_task(TASK_ID, ["success"], glb=sample_glb)
    bpy.ops.hitem3d.import_task(task_id=TASK_ID)
    assert run_ticks(addon, TASK_ID).state.value == "done"
    while addon.engine.timer.tick() is not None:  # until nothing runs
        pass
    assert not list(results.glob("*.part"))


def test_a_reused_pid_in_a_crashed_blenders_lock_never_makes_a_guest(addon: ModuleType) -> None:
    addon.ui.session.shutdown()
    folder = addon.engine.files.user_dir()
    # The crashed Blender's PID now belongs to another live process.
    crashed_holder(folder, os.getppid(), started="the crashed Blender's start")
    assert addon.engine.ownership.owns_folder()


# -- settings survive disable and enable ---------------------------------------------------------


def test_settings_survive_disable_and_enable(addon: ModuleType) -> None:
    import addon_utils

    from tests.conftest import ADDON_MODULE

    prefs = bpy.context.preferences.addons[ADDON_MODULE].preferences
    prefs.client_id = "kept-client-id"
    prefs.client_secret = "kept-secret-value"
    prefs.poll_interval = 7.0
    prefs.auto_import = False
    prefs.proxy_mode = "NONE"
    assert addon.engine.ownership.owns_folder()

    addon_utils.disable(ADDON_MODULE, default_set=True)
    assert ADDON_MODULE not in bpy.context.preferences.addons
    with another_blender(addon.engine.files.user_dir()) as said:
        assert said == "owner"  # the lock was given back on disable
    addon_utils.enable(ADDON_MODULE, default_set=True)

    prefs = bpy.context.preferences.addons[ADDON_MODULE].preferences
    try:
        assert (prefs.client_id, prefs.client_secret) == ("kept-client-id", "kept-secret-value")
        assert (prefs.poll_interval, prefs.auto_import, prefs.proxy_mode) == (7.0, False, "NONE")
        stored = (addon.engine.files.user_dir() / "settings.json")
        assert stored.is_file() and (os.stat(stored).st_mode & 0o077) == 0
    finally:
        for name in ("client_id", "client_secret", "poll_interval", "auto_import", "proxy_mode"):
            prop = prefs.bl_rna.properties[name]
            setattr(prefs, name, prop.default if name != "proxy_mode" else prop.default)


def test_settings_that_are_not_usable_keep_their_defaults(addon: ModuleType, prefs: Any, sim: Hitem3DSimulator,
                                                          sample_glb: Path) -> None:
    """Issue 21.12: a NaN in settings.json broke every import (the download
    limit) or polled at 20 Hz (the interval)."""
    import addon_utils

    from tests.conftest import ADDON_MODULE

    addon_utils.disable(ADDON_MODULE, default_set=True)
    stored = addon.engine.files.user_dir() / "settings.json"
    settings = json.loads(stored.read_text())
    settings["settings"].update({"poll_interval": float("nan"), "max_download_gb": float("inf"),
                                 "request_timeout": -5.0, "max_converters": 10**12, "proxy_mode": "EVIL",
                                 "proxy_url": "http://x" * 1000})
    stored.write_text(json.dumps(settings))  # NaN and Infinity, as Python's json writes them
    addon_utils.enable(ADDON_MODULE, default_set=True)

    current = bpy.context.preferences.addons[ADDON_MODULE].preferences
    defaults = {name: current.bl_rna.properties[name].default
                for name in ("poll_interval", "max_download_gb", "request_timeout", "max_converters", "proxy_mode")}
    assert {name: getattr(current, name) for name in defaults} == defaults
    assert current.proxy_url == ""
    point_prefs_at(sim)
    sim.add_task(TASK_ID, ["success"], glb=sample_glb)
    assert bpy.ops.hitem3d.import_task(task_id=TASK_ID) == {"FINISHED"}


# -- files: no symlink followed, journal paths checked ---------------------------------------


def test_import_again_never_reads_a_symlinked_result(addon: ModuleType, prefs: Any, sim: Hitem3DSimulator,
                                                     sample_glb: Path, tmp_path: Path) -> None:
    sim.add_task(TASK_ID, ["success"], glb=sample_glb)
    assert bpy.ops.hitem3d.import_task(task_id=TASK_ID) == {"FINISHED"}
    result = addon.engine.files.result_path(TASK_ID)
    # Without its library entry, Import Again reads the downloaded GLB.
    addon.scene.asset_library.entry_path(addon.engine.files.file_stem(TASK_ID)).unlink(missing_ok=True)
    planted = tmp_path / "planted.glb"
    planted.write_bytes(sample_glb.read_bytes())
    result.unlink()
    result.symlink_to(planted)
    objects_before = len(bpy.data.objects)

    assert addon.engine.control.import_now(TASK_ID) is None  # no usable file: the caller downloads anew
    assert len(bpy.data.objects) == objects_before
    assert planted.read_bytes() == sample_glb.read_bytes()


def test_a_journal_cover_outside_the_folder_is_never_read(addon: ModuleType, tmp_path: Path,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    addon.ui.session.shutdown()
    outside = tmp_path / "photo.webp"
    outside.write_bytes(webp_vp8x_header(64, 64))
    rec = addon.core.tasks.TaskRecord(TASK_ID)
    rec.state = addon.core.tasks.TaskState.DONE
    rec.cover_path = str(outside)
    addon.core.journal.save(addon.engine.files.journal_path(), [rec])
    loaded: list[str] = []
    monkeypatch.setattr(addon.ui.ui_sync, "_usable_cover", lambda path: loaded.append(str(path)) or False)

    restored = addon.engine.history.book().get(TASK_ID)
    assert restored is not None and restored.cover_path == ""
    assert addon.ui.ui_sync.cover_preview(restored) is None and loaded == []


def test_a_background_wait_that_runs_out_says_why(addon: ModuleType, prefs: Any, sim: Hitem3DSimulator,
                                                  sample_glb: Path) -> None:
    sim.add_task(TASK_ID, ["success"], glb=sample_glb)
    sim.file_rate_limit = 20_000  # the download is still running when the wait ends
    addon.engine.control.start_import(TASK_ID, addon.ui.preferences.usable_settings())

    (rec,) = addon.engine.batch.wait_for([TASK_ID], 0.5)

    assert rec.state.name == "CANCELLED"
    assert str(rec.message).startswith("No result within ") and "Retry waits for it again" in str(rec.message)


def test_a_full_disk_fails_the_task_with_the_folder_named(addon: ModuleType, prefs: Any, sim: Hitem3DSimulator,
                                                          sample_glb: Path, tmp_path: Path,
                                                          capfd: pytest.CaptureFixture[str]) -> None:
    # The download runs in the worker process: the disk fills there.
    patch_workers(addon, tmp_path, FULL_DISK, modules=("safe_files",))
    sim.add_task(TASK_ID, ["success"], glb=sample_glb)
    results = addon.engine.files.results_dir()

    with pytest.raises(RuntimeError, match=f"Not enough disk space in {results}: free some space and retry"):
        bpy.ops.hitem3d.import_task(task_id=TASK_ID)
    assert record_of(addon).state.name == "FAILED"
    assert not [path for path in results.glob("*") if path.suffix in (".glb", ".part")]
    assert "Logging error" not in capfd.readouterr().err


def test_import_again_never_appends_from_a_symlinked_library_entry(addon: ModuleType, prefs: Any,
                                                                   sim: Hitem3DSimulator, sample_glb: Path,
                                                                   tmp_path: Path) -> None:
    sim.add_task(TASK_ID, ["success"], glb=sample_glb)
    assert bpy.ops.hitem3d.import_task(task_id=TASK_ID) == {"FINISHED"}
    entry = addon.scene.asset_library.entry_path(addon.engine.files.file_stem(TASK_ID))
    planted = tmp_path / "planted.blend"
    planted.write_bytes(entry.read_bytes())
    entry.unlink()
    entry.symlink_to(planted)
    libraries_before = len(bpy.data.libraries)

    addon.engine.control.import_now(TASK_ID)  # falls back to the downloaded GLB

    assert len(bpy.data.libraries) == libraries_before
    assert not [lib for lib in bpy.data.libraries if Path(bpy.path.abspath(lib.filepath)).name == "planted.blend"]


def test_settings_survive_installing_the_same_version_again(addon: ModuleType, built_zip: Path) -> None:
    """Installing over itself disables, replaces and enables the add-on: our
    unregister and register must leave every setting as the artist set it
    (settings.json is written on unregister and read on register)."""
    from tests.conftest import ADDON_MODULE, enable_addon

    prefs = bpy.context.preferences.addons[ADDON_MODULE].preferences
    prefs.client_id = "kept-client-id"
    prefs.poll_interval = 7.0
    try:
        result = bpy.ops.extensions.package_install_files(repo="user_default", filepath=str(built_zip),
                                                          enable_on_install=True)
        assert result == {"FINISHED"}
        if ADDON_MODULE not in bpy.context.preferences.addons:
            enable_addon()
        prefs = bpy.context.preferences.addons[ADDON_MODULE].preferences
        assert (prefs.client_id, prefs.poll_interval) == ("kept-client-id", 7.0)
    finally:
        prefs = bpy.context.preferences.addons[ADDON_MODULE].preferences
        for name in ("client_id", "poll_interval"):
            setattr(prefs, name, prefs.bl_rna.properties[name].default)


# -- text from a GLB never drives the terminal (issue 21.9) ---------------------------------------


def test_names_and_text_inside_a_glb_reach_the_console_clean(addon: ModuleType, prefs: Any, sim: Hitem3DSimulator,
                                                            capfd: pytest.CaptureFixture[str]) -> None:
    hostile = document(nodes=[{"mesh": 0, "name": "Node\x1b]0;pwned\x07\x1b[31m"}],
                       meshes=[{"name": "Mesh\x1b[2J\u202e", "primitives": [{"attributes": {"POSITION": 0}}]}],
                       asset={"version": "2.0", "generator": "Gen\x1b[5m", "extras": {"note": "\x1b[8m"}})
    sim.add_task(TASK_ID, ["success"], glb=glb(hostile))
    capfd.readouterr()
    assert bpy.ops.hitem3d.import_task(task_id=TASK_ID) == {"FINISHED"}
    out, err = capfd.readouterr()
    assert "\x1b" not in out + err and "\u202e" not in out + err
    assert "\x1b" not in addon.ui.diagnostics.log_path().read_text(encoding="utf-8")
