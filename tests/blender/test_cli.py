"""The command line (``blender --command hitem3d ...``) in real Blender against
the simulator, through the same entry function Blender calls.

NOTE: the ``bpy`` module builds cannot run ``--command`` themselves, so the
tests call ``cli.main`` (what the registered callback runs) and check the
registration separately.
"""

from __future__ import annotations

import io
import sys
import json
import struct
import zlib
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import bpy
import pytest

from hitem3d_blender.core.glb_names import neutral_glb
from tests.support.blender_helpers import OTHER_ID, TASK_ID, imported_objects
from tests.conftest import ADDON_MODULE
from tests.support.network_helpers import closed_port
from tests.support.simulator import Hitem3DSimulator


class Run:
    """One command's exit code and what it printed."""

    def __init__(self, addon: ModuleType, argv: list[str]) -> None:
        out, err = io.StringIO(), io.StringIO()
        self.code: int = addon.ui.cli.main(argv, out=out, err=err)
        self.out = out.getvalue()
        self.err = err.getvalue()


@pytest.fixture
def cli(addon: ModuleType) -> Any:
    def run(*argv: str) -> Run:
        return Run(addon, list(argv))

    return run


@pytest.fixture
def clean_collections() -> Iterator[None]:
    before = set(bpy.data.collections.keys())
    yield
    for name in set(bpy.data.collections.keys()) - before:
        bpy.data.collections.remove(bpy.data.collections[name])


def png_file(path: Path, green: int = 0xFF) -> Path:
    """A valid 1x1 PNG."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", 1, 1, 8, 2, 0, 0, 0))
                     + chunk(b"IDAT", zlib.compress(bytes([0, 0xFF, green, 0]))) + chunk(b"IEND", b""))
    return path


def objects_in_blend(path: Path) -> list[str]:
    with bpy.data.libraries.load(str(path)) as (data_from, _data_to):
        return sorted(data_from.objects)


# -- registration ----------------------------------------------------------------------


def test_command_is_registered_as_hitem3d_while_enabled(addon: ModuleType, capfd: pytest.CaptureFixture[str]) -> None:
    assert len(addon._cli_commands) == 1
    probe = bpy.utils.register_cli_command("hitem3d", lambda argv: 0)
    bpy.utils.unregister_cli_command(probe)
    assert 'duplicate command "hitem3d"' in "".join(capfd.readouterr())


def test_disabling_unregisters_the_command(addon: ModuleType, capfd: pytest.CaptureFixture[str]) -> None:
    import addon_utils

    handle = addon._cli_commands[0]
    addon_utils.disable(addon.__name__, default_set=True)
    try:
        assert addon._cli_commands == []
        with pytest.raises(ValueError, match="already been removed"):
            bpy.utils.unregister_cli_command(handle)
        capfd.readouterr()
        probe = bpy.utils.register_cli_command("hitem3d", lambda argv: 0)
        bpy.utils.unregister_cli_command(probe)
        assert "duplicate" not in "".join(capfd.readouterr())
    finally:
        addon_utils.enable(addon.__name__, default_set=True)


def test_registered_callback_runs_main(addon: ModuleType) -> None:
    assert addon.ui.cli.run_registered(["definitely-not-a-command"]) == 2


# -- import ----------------------------------------------------------------------------


def test_import_brings_the_model_saves_the_file_and_exits_0(cli: Any, prefs: Any, sim: Hitem3DSimulator,
                                                            sample_glb: Path, tmp_path: Path,
                                                            clean_collections: None) -> None:
    sim.add_task(TASK_ID, ["queueing", {"state": "processing", "progress": 40}, "success"], glb=sample_glb)
    output = tmp_path / "shots" / "chair.blend"

    run = cli("import", TASK_ID, "--output", str(output), "--collection", "Props")

    assert run.code == 0, run.err
    assert run.err == ""
    assert sorted(obj.name for obj in imported_objects()) == ["Hitem3D_Sample", "Hitem3D_Sample_2"]
    assert all(obj.users_collection[0].name == "Props" for obj in imported_objects())
    assert objects_in_blend(output) == ["Hitem3D_Sample", "Hitem3D_Sample_2"]
    # The same entry in the Hitem3D asset library as an import from the window.
    addon = sys.modules[ADDON_MODULE]
    assert addon.scene.asset_library.entry_path(addon.engine.files.file_stem(TASK_ID)).is_file()
    assert bpy.data.filepath != str(output)  # saved as a copy


def test_import_prints_one_progress_line_per_change(cli: Any, prefs: Any, sim: Hitem3DSimulator,
                                                    sample_glb: Path) -> None:
    sim.add_task(TASK_ID, ["queueing", {"state": "processing", "progress": 40}, "success"], glb=sample_glb)

    lines = cli("import", TASK_ID).out.splitlines()

    assert f"{TASK_ID}: queueing" in lines
    assert f"{TASK_ID}: processing 40%" in lines
    assert f"{TASK_ID}: done, 2 object(s) imported" in lines
    assert lines[-1] == "Imported 2 object(s) from 1 of 1 task(s)"
    assert len(lines) == len(set(lines))


def test_import_of_several_tasks_takes_links_and_ids(cli: Any, prefs: Any, sim: Hitem3DSimulator,
                                                     sample_glb: Path) -> None:
    sim.add_task(TASK_ID, ["success"], glb=sample_glb)
    sim.add_task(OTHER_ID, ["success"], glb=sample_glb)

    run = cli("import", f"https://hitem3d.ai/result?task_id={TASK_ID}", OTHER_ID)

    assert run.code == 0, run.err
    assert imported_objects(TASK_ID) and imported_objects(OTHER_ID)


def test_failed_task_exits_5_with_the_reason_on_stderr_and_keeps_the_rest(
        cli: Any, prefs: Any, sim: Hitem3DSimulator, sample_glb: Path, tmp_path: Path) -> None:
    sim.add_task(TASK_ID, [{"code": 50010001, "msg": "generate failed", "data": {}}])
    sim.add_task(OTHER_ID, ["success"], glb=sample_glb)
    output = tmp_path / "partial.blend"

    run = cli("import", TASK_ID, OTHER_ID, "--output", str(output))

    assert run.code == 5
    assert f"{TASK_ID}: failed: Generation failed on Hitem3D" in run.err
    assert "Generation failed" not in run.out
    assert imported_objects(OTHER_ID)
    assert output.is_file()


@pytest.mark.child_process
def test_import_converts_in_converters_taking_turns(cli: Any, prefs: Any, sim: Hitem3DSimulator,
                                                    sample_glb: Path) -> None:
    # A farm node's imports are input from the network too: the same converters, the same limits.
    prefs.max_converters = 1
    sim.add_task(TASK_ID, ["success"], glb=sample_glb)
    sim.add_task(OTHER_ID, ["success"], glb=sample_glb)
    try:
        run = cli("import", TASK_ID, OTHER_ID)
    finally:
        prefs.max_converters = prefs.bl_rna.properties["max_converters"].default

    assert run.code == 0, run.err
    assert len(imported_objects(TASK_ID)) == 2 and len(imported_objects(OTHER_ID)) == 2


@pytest.mark.child_process
def test_import_stops_a_converter_over_its_memory_limit(cli: Any, prefs: Any, sim: Hitem3DSimulator,
                                                        sample_glb: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    addon = sys.modules[ADDON_MODULE]
    monkeypatch.setattr(addon.engine.conversions, "LIMITS",
                        addon.core.conversion.Limits(timeout_s=60.0, memory_bytes=40 * 1024**2))
    sim.add_task(TASK_ID, ["success"], glb=sample_glb)

    run = cli("import", TASK_ID)

    assert run.code == 5
    assert f"{TASK_ID}: failed: Converting the model needed more than 40 MB of memory" in run.err
    assert not imported_objects()

def test_unreachable_api_names_the_cause_on_stderr(cli: Any, prefs: Any) -> None:
    port = closed_port()
    prefs.base_url = f"http://127.0.0.1:{port}"

    run = cli("status", TASK_ID)

    assert run.code == 5
    assert f"Cannot reach 127.0.0.1:{port}: connection refused" in run.err


# -- status ----------------------------------------------------------------------------


def test_status_prints_each_state_without_importing(cli: Any, prefs: Any, sim: Hitem3DSimulator) -> None:
    sim.add_task(TASK_ID, [{"state": "processing", "progress": 40}])
    sim.add_task(OTHER_ID, ["success"])

    run = cli("status", TASK_ID, OTHER_ID)

    assert run.code == 0, run.err
    assert run.out.splitlines() == [f"{TASK_ID}: processing 40%", f"{OTHER_ID}: success"]
    assert sim.count("/files/") == 0
    assert not imported_objects(OTHER_ID)


def test_status_of_a_failed_task_exits_5(cli: Any, prefs: Any, sim: Hitem3DSimulator) -> None:
    sim.add_task(TASK_ID, ["failed"])

    run = cli("status", TASK_ID)

    assert run.code == 5
    assert run.out.splitlines() == [f"{TASK_ID}: failed"]
    assert "Generation failed" in run.err


def test_status_as_json(cli: Any, prefs: Any, sim: Hitem3DSimulator) -> None:
    sim.add_task(TASK_ID, [{"state": "processing", "progress": 40}])

    run = cli("status", "--json", TASK_ID)

    assert json.loads(run.out) == [{"task_id": TASK_ID, "kind": "image3d", "state": "processing", "progress": 40.0,
                                    "error": ""}]


def test_status_of_an_unknown_task_says_so(cli: Any, prefs: Any, sim: Hitem3DSimulator) -> None:
    run = cli("status", TASK_ID)

    assert run.code == 5
    assert "no task with this ID" in run.err


# -- submit ----------------------------------------------------------------------------


def test_submit_with_wait_generates_imports_and_saves(cli: Any, prefs: Any, sim: Hitem3DSimulator,
                                                      tmp_path: Path) -> None:
    image = png_file(tmp_path / "chair.png")
    output = tmp_path / "chair.blend"

    run = cli("submit", str(image), "--model", "hitem3dv2.1", "--resolution", "1536fast", "--wait",
              "--output", str(output))

    assert run.code == 0, run.err
    [submission] = sim.submissions
    assert submission.fields["model"] == "hitem3dv2.1"
    assert submission.fields["resolution"] == "1536fast"
    assert submission.fields["format"] == "2"
    assert submission.files[0][1] == "image.png"
    assert run.out.splitlines()[0] == submission.task_id
    assert imported_objects(submission.task_id)
    assert objects_in_blend(output)


def test_submit_without_wait_prints_task_ids_and_leaves_nothing_to_resume(
        cli: Any, addon: ModuleType, prefs: Any, sim: Hitem3DSimulator, tmp_path: Path) -> None:
    images = [str(png_file(tmp_path / f"{name}.png", green=green)) for name, green in (("a", 10), ("b", 20))]

    run = cli("submit", *images)

    assert run.code == 0, run.err
    task_of_image = {s.files[0][3]: s.task_id for s in sim.submissions}
    assert run.out.splitlines() == [task_of_image[Path(image).read_bytes()] for image in images]  # in the order given
    assert all(addon.engine.history.book().get(s.task_id) is None for s in sim.submissions)


def test_submit_views_makes_one_multi_view_generation(cli: Any, prefs: Any, sim: Hitem3DSimulator,
                                                      tmp_path: Path) -> None:
    front, left = png_file(tmp_path / "front.png"), png_file(tmp_path / "left.png")

    run = cli("submit", "--front", str(front), "--left", str(left), "--model", "hitem3dv1.5")

    assert run.code == 0, run.err
    [submission] = sim.submissions
    assert submission.fields["multi_images_bit"] == "1010"
    assert [f[0] for f in submission.files] == ["multi_images", "multi_images"]


def test_submit_checks_before_sending(cli: Any, prefs: Any, sim: Hitem3DSimulator, tmp_path: Path) -> None:
    image = png_file(tmp_path / "chair.png")

    run = cli("submit", str(image), "--model", "hitem3dv2.1", "--resolution", "2048master")

    assert run.code == 2
    assert "Resolution 2048master is not available" in run.err and "nothing was sent" in run.err
    assert sim.requests == []


def test_submit_prints_the_estimated_cost_and_the_balance_to_stderr(cli: Any, prefs: Any,
                                                                     sim: Hitem3DSimulator, tmp_path: Path) -> None:
    images = [str(png_file(tmp_path / f"{name}.png")) for name in ("a", "b")]

    run = cli("submit", *images, "--model", "hitem3dv2.1", "--resolution", "1536pro")

    assert run.code == 0, run.err
    assert "Estimated cost: 90 credits; balance after: 910 credits (an estimate from the price list of" in run.err
    assert len(run.out.splitlines()) == 2  # stdout stays task IDs only, for pipelines


def test_submit_refuses_with_exit_code_3_when_the_balance_is_too_low(cli: Any, addon: ModuleType, prefs: Any,
                                                                    sim: Hitem3DSimulator, tmp_path: Path) -> None:
    sim.balance = 100.0
    image = png_file(tmp_path / "chair.png")

    run = cli("submit", str(image), "--model", "hi3dv3.0", "--resolution", "2048quality")

    assert run.code == addon.ui.cli.EXIT_CREDITS == 3
    assert "Not enough credits: at least 105 needed, 100 left (5 missing)" in run.err and "nothing was sent" in run.err
    assert sim.count("/open-api/v1/submit-task") == 0 and run.out == ""


def test_submit_goes_on_when_the_balance_cannot_be_asked_for(cli: Any, prefs: Any, sim: Hitem3DSimulator,
                                                             tmp_path: Path) -> None:
    from tests.support.simulator import Fault

    sim.inject("/open-api/v1/balance", Fault.status(404, b"{}"), times=10)
    run = cli("submit", str(png_file(tmp_path / "chair.png")))
    assert run.code == 0, run.err
    assert "Balance unknown" in run.err and len(sim.submissions) == 1


def test_submit_texture_mesh_textures_a_glb_and_imports_it_named_after_the_file(
        cli: Any, addon: ModuleType, prefs: Any, sim: Hitem3DSimulator, sample_glb: Path, tmp_path: Path) -> None:
    mesh = tmp_path / "armchair.glb"
    mesh.write_bytes(sample_glb.read_bytes())
    image = png_file(tmp_path / "chair.png")

    run = cli("submit", "--texture-mesh", str(mesh), str(image), "--remove-lighting", "0.5", "--wait")

    assert run.code == 0, run.err
    [sent] = sim.submissions
    assert sent.fields["request_type"] == "2" and sent.fields["model"] == "hitem3dv2.1"
    assert sent.fields["shading"] == "0.5"
    assert [(name, filename) for name, filename, _, _ in sent.files] == [("images", "image.png")]
    [(key, stored)] = sim.stored.items()
    assert sent.fields["mesh_url"] == sim.public_base + key and stored == neutral_glb(mesh.read_bytes(), "armchair")
    assert b"Hitem3D_Sample" in mesh.read_bytes() and b"Hitem3D_Sample" not in stored  # the shape, not the names
    host = sim.storage_url.removeprefix("http://")
    assert f"Uploading armchair.glb (" in run.err and f"to Hitem3D's storage ({host})" in run.err
    assert sorted(obj.name for obj in imported_objects(sent.task_id)) == ["armchair textured",
                                                                          "armchair textured 2"]
    assert mesh.exists()  # the artist's own file is never removed


def test_submit_texture_mesh_uploads_where_the_credentials_allow_or_spends_nothing(
        cli: Any, prefs: Any, sim: Hitem3DSimulator, sample_glb: Path, tmp_path: Path) -> None:
    image = png_file(tmp_path / "chair.png")
    sim.storage_key_prefixes = ("comfyui/",)  # temporary credentials scoped to the vendor's folder

    run = cli("submit", "--texture-mesh", str(sample_glb), str(image))

    assert run.code == 0, run.err
    [(key, _)] = sim.stored.items()
    assert key.startswith("comfyui/mesh/") and sim.submissions[0].fields["mesh_url"] == sim.public_base + key

    sim.storage_key_prefixes = ("elsewhere/",)
    run = cli("submit", "--texture-mesh", str(sample_glb), str(image))

    assert run.code == 5
    assert "did not let its upload credentials store the mesh under comfyui/, hitem3d-blender/" in run.err
    assert len(sim.submissions) == 1 and len(sim.stored) == 1  # nothing more sent, nothing spent


@pytest.mark.parametrize("extra, words", [
    (["--model", "hitem3dv2.0"], "cannot texture an existing model"),
    (["--geometry-only"], "cannot be --geometry-only"),
    (["b.png"], "one IMAGE"),
    (["--model", "hitem3dv1.5", "--remove-lighting", "1"], "does not offer light removal"),
])
def test_submit_texture_mesh_checks_before_sending(cli: Any, prefs: Any, sim: Hitem3DSimulator, tmp_path: Path,
                                                   sample_glb: Path, extra: list[str], words: str) -> None:
    image = png_file(tmp_path / "chair.png")
    png_file(tmp_path / "b.png")
    run = cli("submit", "--texture-mesh", str(sample_glb), str(image),
              *[str(tmp_path / arg) if arg.endswith(".png") else arg for arg in extra])
    assert run.code == 2 and words in run.err
    assert sim.requests == []


# -- usage, help, access ------------------------------------------------------------------


@pytest.mark.parametrize("argv, words", [
    ([], "required"),
    (["frobnicate"], "invalid choice"),
    (["import"], "TASK_ID"),
    (["import", "not/a task id"], "Not a task ID"),
    (["import", TASK_ID, "--output", "scene.txt"], ".blend"),
    (["import", TASK_ID, "--timeout", "soon"], "not a number"),
    (["submit"], "at least one IMAGE"),
    (["submit", "a.png", "--output", "x.blend"], "--output needs --wait"),
    (["submit", "a.png", "--model", "hitem3dv9"], "invalid choice"),
    (["status"], "TASK_ID"),
], ids=["nothing", "unknown", "no-ids", "bad-id", "not-blend", "bad-timeout", "no-image", "output-no-wait",
        "bad-model", "status-no-ids"])
def test_bad_usage_exits_2_with_a_message_and_sends_nothing(cli: Any, prefs: Any, sim: Hitem3DSimulator,
                                                            argv: list[str], words: str) -> None:
    run = cli(*argv)

    assert run.code == 2
    assert words in run.err
    assert run.out == ""
    assert sim.requests == []


@pytest.mark.parametrize("argv, words", [
    (["--help"], ["import", "submit", "status", "exit codes"]),
    (["import", "--help"], ["TASK_ID", "--output", "--collection", "--timeout"]),
    (["submit", "--help"], ["IMAGE", "--model", "--resolution", "--wait", "hi3dv3.0", "--front"]),
    (["status", "--help"], ["TASK_ID", "--json"]),
])
def test_help_explains_each_command(cli: Any, argv: list[str], words: list[str]) -> None:
    run = cli(*argv)

    assert run.code == 0
    assert all(word in run.out for word in words), run.out
    assert "blender --command hitem3d" in run.out


def test_online_access_off_exits_5_and_says_how_to_turn_it_on(cli: Any, prefs: Any,
                                                              sim: Hitem3DSimulator) -> None:
    bpy.context.preferences.system.use_online_access = False

    run = cli("import", TASK_ID)

    assert run.code == 5
    assert "--online-mode" in run.err and "Allow Online Access" in run.err
    assert sim.requests == []


def test_missing_credentials_exit_5_with_the_message(cli: Any, prefs: Any, sim: Hitem3DSimulator) -> None:
    prefs.client_secret = ""

    run = cli("status", TASK_ID)

    assert run.code == 5
    assert "No Hitem3D credentials" in run.err
    assert sim.requests == []
