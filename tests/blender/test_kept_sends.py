"""Requests still waiting (for the balance or a free slot) when the session
ends are kept: a disable, a quit or a crash loses none, the next session shows
each as "kept, not sent", and it goes only when its Send is pressed."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from types import ModuleType
from typing import Any

import bpy

from tests.blender.test_cli import png_file
from tests.blender.test_generate import gen, interactive, pictures, tick_until  # noqa: F401
from tests.blender.test_kinds import clean, kinds  # noqa: F401
from tests.blender.test_mesh_export import cube, select_only
from tests.blender.test_spending import (  # noqa: F401 - fixtures
    SPLIT,
    SUBMIT,
    calls,
    known_balance,
    limit,
    panel_labels,
    run_cli,
    split_a_file,
)
from tests.support.simulator import Hitem3DSimulator


def kept_file(addon: ModuleType) -> Path:
    return Path(addon.identity.kept_requests_path())


def kept_entries(addon: ModuleType) -> list[dict[str, Any]]:
    addon.engine.state.runner().flush_writes()
    path = kept_file(addon)
    return json.loads(path.read_text("utf-8"))["requests"] if path.exists() else []


def next_session(addon: ModuleType) -> None:
    """The add-on disabled (or Blender quit) and a new interactive session started."""
    addon.ui.session.shutdown()
    addon.ui.session.connect()


def test_requests_waiting_when_the_session_ends_come_back_kept_and_go_only_when_sent(
        interactive: ModuleType, prefs: Any, sim: Hitem3DSimulator, gen: Any, kinds: Any,
        pictures: dict[str, Path], sample_glb: Path, limit: Callable[[int], None]) -> None:
    interactive.ui.submit_calls.restore_kept()  # what an interactive session does when it starts
    limit(1)
    known_balance(interactive, sim, 1000.0)
    sim.default_states = ("queueing",) * 1000
    gen.image_path = str(pictures["front"])
    bpy.ops.hitem3d.submit_generation()
    tick_until(interactive, lambda: sim.count(SUBMIT) == 1 and not calls(interactive).pending_submissions())
    select_only(cube("Chair", (0.0, 0.0, 0.0)))
    gen.model = "hitem3dv1.5"
    bpy.ops.hitem3d.texture_selection()
    split_a_file(kinds, sample_glb)
    bpy.ops.hitem3d.split_parts()
    assert [calls(interactive).stage_of(p.key).value for p in calls(interactive).pending_submissions()] == [
        "slot", "slot"]
    [export] = list(interactive.scene.mesh_export.exports_dir().iterdir())
    assert [entry["type"] for entry in kept_entries(interactive)] == ["generation", "kind"]

    next_session(interactive)

    assert export.exists()  # the kept request still has its selection
    pending = calls(interactive).pending_submissions()
    assert [calls(interactive).stage_of(p.key).value for p in pending] == ["kept", "kept"]
    assert "Kept from your last session, not sent: Texture Chair from front.png (Hitem3D v1.5)" in panel_labels(
        bpy.types.HITEM3D_PT_generate)
    assert "Kept from your last session, not sent: Split into parts for" in panel_labels(bpy.types.HITEM3D_PT_parts)
    assert bpy.ops.hitem3d.texture_selection.poll()  # a kept request holds no button
    for _ in range(30):
        interactive.engine.timer.tick()
    assert sim.count(SUBMIT) == 1 and sim.count(SPLIT) == 0  # never by itself

    limit(2)
    assert bpy.ops.hitem3d.resume_send(key=pending[0].key) == {"FINISHED"}
    tick_until(interactive, lambda: sim.count(SUBMIT) == 2)
    tick_until(interactive, lambda: len(calls(interactive).pending_submissions()) == 1)
    textured = sim.submissions[-1]
    assert textured.fields["request_type"] == "2" and len(sim.stored) == 1
    assert not export.exists()  # sent: the selection is not kept
    assert [entry["type"] for entry in kept_entries(interactive)] == ["kind"]

    assert bpy.ops.hitem3d.cancel_send(key=pending[1].key) == {"FINISHED"}
    assert kept_entries(interactive) == [] and not kept_file(interactive).exists()
    assert sim.count(SPLIT) == 0


def test_a_kept_request_whose_picture_is_gone_is_not_sent_and_says_so(
        interactive: ModuleType, prefs: Any, sim: Hitem3DSimulator, tmp_path: Path) -> None:
    picture = png_file(tmp_path / "gone.png")
    core = interactive.core
    request = core.submission.Submission("hitem3dv2.1", "1536fast", image=str(picture))
    kept_file(interactive).write_bytes(core.kept_sends.encode([core.kept_sends.Kept(request, "generate")]))
    picture.unlink()

    next_session(interactive)
    [pending] = calls(interactive).pending_submissions()
    assert bpy.ops.hitem3d.resume_send(key=pending.key) == {"FINISHED"}

    assert calls(interactive).pending_submissions() == []
    assert str(calls(interactive).notice("generate")).startswith("The kept request was not sent: Image: ")
    assert interactive.engine.state.runner().flush_writes()  # written off Blender's process
    assert sim.count(SUBMIT) == 0 and not kept_file(interactive).exists()


def test_the_command_line_keeps_nothing(addon: ModuleType, prefs: Any, sim: Hitem3DSimulator,
                                        tmp_path: Path) -> None:
    addon.ui.submit_calls.restore_kept()  # background mode: neither read nor written
    sim.default_states = ("queueing", "success")
    pictures = [str(png_file(tmp_path / f"p{number}.png")) for number in range(3)]

    code, _, err = run_cli(addon, "submit", *pictures, "--max-tasks", "1")

    assert code == 0, err
    assert not kept_file(addon).exists()
