"""Spend once, on purpose: in real Blender against the simulator, a spending
button is inactive while its request is on its way, the balance check counts
the requests on their way, notices belong to their panel, a request can be
cancelled, and at most N tasks run on the account, in the sidebar and on the
command line."""

from __future__ import annotations

import io
from collections.abc import Callable, Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import bpy
import pytest

from tests.blender.test_generate import gen, interactive, pictures, png_bytes, tick_until  # noqa: F401
from tests.blender.test_kinds import clean, kinds  # noqa: F401
from tests.blender.test_mesh_export import cube, select_only
from tests.conftest import ADDON_MODULE
from tests.support.simulator import CODE_TOO_MANY_TASKS, DOCUMENTED_MAX_RUNNING, Fault, Hitem3DSimulator

API = "/open-api/v1"
SUBMIT = f"{API}/submit-task"
BALANCE = f"{API}/balance"
SPLIT = f"{API}/split/create-task"


@pytest.fixture
def limit(addon: ModuleType) -> Iterator[Callable[[int], None]]:
    """Set the preference Tasks at once (max); back to its default after the test."""
    preferences = bpy.context.preferences.addons[ADDON_MODULE].preferences

    def set_limit(value: int) -> None:
        preferences.max_running_tasks = value

    yield set_limit
    preferences.property_unset("max_running_tasks")


def calls(addon: ModuleType) -> Any:
    return addon.ui.submit_calls


def known_balance(addon: ModuleType, sim: Hitem3DSimulator, credits: float) -> None:
    """The balance asked for and answered, as after a press of the refresh button."""
    sim.balance = credits
    bpy.ops.hitem3d.refresh_balance()
    tick_until(addon, lambda: calls(addon).balance_status().credits == credits)


def error_of(call: Any, **kwargs: Any) -> str:
    with pytest.raises(RuntimeError) as info:
        call(**kwargs)
    return str(info.value)


def split_a_file(kinds: Any, sample_glb: Path) -> None:
    kinds.source, kinds.mesh_path = "FILE", str(sample_glb)


def panel_labels(panel: type) -> str:
    from tests.blender.test_generate import FakeLayout

    drawn: list[tuple[str, str]] = []
    panel.draw(type("Panel", (), {"layout": FakeLayout(drawn)})(), bpy.context)  # type: ignore[attr-defined]
    return " ".join(text for kind, text in drawn if kind == "label")


# -- spend once ---------------------------------------------------------------------------------------


def test_two_quick_presses_of_generate_send_one_paid_request(interactive: ModuleType, prefs: Any,
                                                              sim: Hitem3DSimulator, gen: Any,
                                                              pictures: dict[str, Path]) -> None:
    sim.default_states = ("processing",)
    sim.inject(SUBMIT, Fault.delay(0.5))
    gen.image_path = str(pictures["front"])

    assert bpy.ops.hitem3d.submit_generation() == {"FINISHED"}
    assert not bpy.ops.hitem3d.submit_generation.poll()  # the button is inactive
    assert "Already on its way to Hitem3D" in error_of(bpy.ops.hitem3d.submit_generation)

    tick_until(interactive, lambda: not calls(interactive).pending_submissions())
    assert len(sim.submissions) == 1 and len(interactive.engine.history.book()) == 1
    assert bpy.ops.hitem3d.submit_generation.poll()  # answered: it can be pressed again


def test_two_quick_presses_of_texture_selection_send_and_export_once(interactive: ModuleType, prefs: Any,
                                                                      sim: Hitem3DSimulator, gen: Any,
                                                                      pictures: dict[str, Path]) -> None:
    sim.default_states = ("processing",)
    sim.inject(SUBMIT, Fault.delay(0.5))
    select_only(cube("Chair", (0.0, 0.0, 0.0)))
    gen.model, gen.image_path = "hitem3dv1.5", str(pictures["front"])
    exports = interactive.scene.mesh_export.exports_dir()

    assert bpy.ops.hitem3d.texture_selection() == {"FINISHED"}
    assert not bpy.ops.hitem3d.texture_selection.poll()
    with pytest.raises(RuntimeError):
        bpy.ops.hitem3d.texture_selection()
    assert len(list(exports.iterdir())) == 1  # the second press exported nothing

    tick_until(interactive, lambda: not calls(interactive).pending_submissions())
    assert len(sim.submissions) == 1 and list(exports.iterdir()) == []


def test_two_quick_presses_of_a_kind_s_button_send_one_request(interactive: ModuleType, prefs: Any,
                                                                sim: Hitem3DSimulator, kinds: Any,
                                                                sample_glb: Path) -> None:
    sim.default_states = ("processing",)
    sim.inject(SPLIT, Fault.delay(0.5))
    split_a_file(kinds, sample_glb)

    assert bpy.ops.hitem3d.split_parts() == {"FINISHED"}
    assert not bpy.ops.hitem3d.split_parts.poll()
    assert bpy.ops.hitem3d.segment_parts.poll()  # another button: its own request
    tick_until(interactive, lambda: not calls(interactive).pending_submissions())
    assert sim.count(SPLIT) == 1


def test_texture_on_a_result_is_inactive_while_its_request_is_on_its_way(
        interactive: ModuleType, prefs: Any, sim: Hitem3DSimulator, gen: Any, pictures: dict[str, Path]) -> None:
    from tests.blender.test_generate import FakeLayout

    gen.model, gen.request_type, gen.image_path = "hitem3dv1.5", "GEOMETRY", str(pictures["front"])
    sim.default_states = ("success",)
    bpy.ops.hitem3d.submit_generation()
    tick_until(interactive, lambda: any(rec.state.value == "done" for rec in interactive.engine.history.book()))
    [rec] = list(interactive.engine.history.book())
    sim.inject(SUBMIT, Fault.delay(0.5))

    assert bpy.ops.hitem3d.texture_task(task_id=rec.task_id) == {"FINISHED"}

    assert "Already on its way" in error_of(bpy.ops.hitem3d.texture_task, task_id=rec.task_id)

    class Recording(FakeLayout):
        """Also records each layout made inactive."""

        def __setattr__(self, name: str, value: Any) -> None:
            if name == "enabled" and not value:
                self.drawn.append(("inactive", ""))
            object.__setattr__(self, name, value)

        def row(self, **_: Any) -> FakeLayout:
            return Recording(self.drawn)

        column = box = row

    drawn: list[tuple[str, str]] = []
    interactive.ui.panels.draw_details(Recording(drawn), rec, 300)
    assert drawn[drawn.index(("inactive", "")) + 1] == ("operator", "hitem3d.texture_task")
    tick_until(interactive, lambda: not calls(interactive).pending_submissions())
    assert len(sim.submissions) == 2


def test_the_balance_check_counts_the_requests_on_their_way(interactive: ModuleType, prefs: Any,
                                                             sim: Hitem3DSimulator, gen: Any, kinds: Any,
                                                             pictures: dict[str, Path], sample_glb: Path) -> None:
    known_balance(interactive, sim, 60.0)
    sim.default_states = ("processing",)
    sim.inject(SUBMIT, Fault.delay(0.5))
    gen.resolution, gen.image_path = "1536pro", str(pictures["front"])  # Hitem3D v2.1 1536pro: 45
    bpy.ops.hitem3d.submit_generation()
    split_a_file(kinds, sample_glb)  # 20

    message = error_of(bpy.ops.hitem3d.split_parts)

    assert ("Not enough credits: at least 20 needed, 15 left once the 1 request(s) being sent are paid "
            "(5 missing)") in message
    assert "(5 missing)" in panel_labels(bpy.types.HITEM3D_PT_parts)
    tick_until(interactive, lambda: not calls(interactive).pending_submissions())
    assert sim.count(SPLIT) == 0 and sim.count(SUBMIT) == 1


def test_an_answered_request_counts_until_a_balance_shows_its_charge(interactive: ModuleType, prefs: Any,
                                                                      sim: Hitem3DSimulator, gen: Any,
                                                                      pictures: dict[str, Path]) -> None:
    known_balance(interactive, sim, 1000.0)
    sim.default_states = ("processing",)
    gen.image_path = str(pictures["front"])
    bpy.ops.hitem3d.submit_generation()
    tick_until(interactive, lambda: sim.count(SUBMIT) == 1 and not calls(interactive).pending_submissions())
    # Answered; the balance asked for after it has not come back yet, or has:
    # either way the 45 credits are counted once.
    tick_until(interactive, lambda: not calls(interactive).balance_status().checking)
    assert calls(interactive).balance_status().credits == 1000.0 - sim.submit_cost
    assert calls(interactive).reserved() == 0.0


# -- notices ---------------------------------------------------------------------------------------------


def test_a_notice_belongs_to_its_panel_and_clears_when_the_balance_changes(
        addon: ModuleType, prefs: Any, sim: Hitem3DSimulator, gen: Any, kinds: Any,
        pictures: dict[str, Path]) -> None:
    sim.balance = 10.0
    gen.resolution, gen.image_path = "1536pro", str(pictures["front"])  # 45 credits
    error_of(bpy.ops.hitem3d.submit_generation)
    shortage = "Not enough credits: at least 45 needed, 10 left (35 missing)"
    assert shortage in str(calls(addon).notice("generate"))
    assert shortage not in panel_labels(bpy.types.HITEM3D_PT_parts)
    assert shortage not in panel_labels(bpy.types.HITEM3D_PT_relief)

    bpy.ops.hitem3d.refresh_balance()  # the same balance: the notice stays
    assert shortage in str(calls(addon).notice("generate"))

    sim.balance = 1000.0  # topped up on the platform
    bpy.ops.hitem3d.refresh_balance()

    assert not calls(addon).notice("generate")
    assert "Not enough" not in panel_labels(bpy.types.HITEM3D_PT_generate)


# -- cancel -----------------------------------------------------------------------------------------------


def test_cancel_before_the_request_leaves_sends_nothing_and_keeps_nothing(
        interactive: ModuleType, prefs: Any, sim: Hitem3DSimulator, gen: Any, pictures: dict[str, Path]) -> None:
    sim.inject(BALANCE, Fault.delay(0.5))
    select_only(cube("Chair", (0.0, 0.0, 0.0)))
    gen.model, gen.image_path = "hitem3dv1.5", str(pictures["front"])
    bpy.ops.hitem3d.texture_selection()
    [pending] = calls(interactive).pending_submissions()
    assert calls(interactive).stage_of(pending.key).value == "balance"

    assert bpy.ops.hitem3d.cancel_send(key=pending.key) == {"FINISHED"}

    assert calls(interactive).pending_submissions() == []
    assert list(interactive.scene.mesh_export.exports_dir().iterdir()) == []  # nothing remains
    tick_until(interactive, lambda: not calls(interactive).balance_status().checking)
    assert sim.count(SUBMIT) == 0 and len(interactive.engine.history.book()) == 0
    assert bpy.ops.hitem3d.texture_selection.poll()


def test_cancel_during_the_upload_says_honestly_what_is_known(interactive: ModuleType, prefs: Any,
                                                              sim: Hitem3DSimulator, gen: Any,
                                                              pictures: dict[str, Path],
                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(interactive.ui.submit_calls, "RECHECK_AFTER_STOP_S", 1.5)
    known_balance(interactive, sim, 1000.0)
    sim.inject(SUBMIT, Fault.delay(1.0))  # Hitem3D takes the upload, and answers late
    gen.resolution, gen.image_path = "1536pro", str(pictures["front"])  # 45 credits
    bpy.ops.hitem3d.submit_generation()
    [pending] = calls(interactive).pending_submissions()
    tick_until(interactive, lambda: sim.count(SUBMIT) == 1)

    bpy.ops.hitem3d.cancel_send(key=pending.key)

    assert str(calls(interactive).line_of(pending)).startswith("Stopping… Generate from front.png")
    tick_until(interactive, lambda: not calls(interactive).pending_submissions())
    assert str(calls(interactive).notice("generate")) == (
        "Sending stopped: if the upload had reached Hitem3D, a task was made and paid; the balance is checked "
        "again, and your tasks are on the Hitem3D platform")
    assert calls(interactive).reserved() == 45.0  # what it may have cost is set aside meanwhile
    tick_until(interactive, lambda: len(sim.submissions) == 1)  # it had reached Hitem3D
    # The balance asked for again a little later shows the charge.
    tick_until(interactive, lambda: calls(interactive).balance_status().credits == 1000.0 - sim.submit_cost)
    tick_until(interactive, lambda: calls(interactive).reserved() == 0.0)


# -- at most N tasks on the account -------------------------------------------------------------------------


def test_a_request_waits_for_a_free_slot_in_the_sidebar_and_goes_when_a_task_ends(
        interactive: ModuleType, prefs: Any, sim: Hitem3DSimulator, gen: Any, kinds: Any,
        pictures: dict[str, Path], sample_glb: Path, limit: Callable[[int], None]) -> None:
    limit(1)
    known_balance(interactive, sim, 1000.0)
    sim.default_states = ("queueing",) * 6 + ("success",)
    gen.image_path = str(pictures["front"])
    bpy.ops.hitem3d.submit_generation()
    tick_until(interactive, lambda: sim.count(SUBMIT) == 1 and not calls(interactive).pending_submissions())
    split_a_file(kinds, sample_glb)

    assert bpy.ops.hitem3d.split_parts() == {"FINISHED"}

    [pending] = calls(interactive).pending_submissions()
    assert calls(interactive).stage_of(pending.key).value == "slot"
    assert "Waiting for a free slot (1 of 1 tasks running on Hitem3D): Split into parts for" in panel_labels(
        bpy.types.HITEM3D_PT_parts)
    tick_until(interactive, lambda: not calls(interactive).pending_submissions())
    assert sim.count(SPLIT) == 1
    [first] = [rec for rec in interactive.engine.history.book() if not rec.task_id.startswith("split_")]
    assert first.state.value not in ("pending", "created", "queueing", "processing")  # it went once this ended
    assert sim.running_at_create == [0, 0]


def test_a_refusal_while_tasks_run_waits_and_goes_again_and_never_fails(
        interactive: ModuleType, prefs: Any, sim: Hitem3DSimulator, gen: Any, kinds: Any,
        pictures: dict[str, Path], sample_glb: Path) -> None:
    sim.max_running_tasks = 1  # the account allows fewer than our preference (10) says
    known_balance(interactive, sim, 1000.0)
    sim.default_states = ("queueing",) * 8 + ("success",)
    gen.image_path = str(pictures["front"])
    bpy.ops.hitem3d.submit_generation()
    tick_until(interactive, lambda: sim.count(SUBMIT) == 1 and not calls(interactive).pending_submissions())
    split_a_file(kinds, sample_glb)

    bpy.ops.hitem3d.split_parts()
    tick_until(interactive, lambda: sim.too_many_refusals == 1)
    tick_until(interactive, lambda: calls(interactive).pending_submissions() != []
               and calls(interactive).stage_of(calls(interactive).pending_submissions()[0].key).value == "slot")
    [pending] = calls(interactive).pending_submissions()
    assert str(calls(interactive).line_of(pending)).startswith(
        "Waiting: Hitem3D turned it down while 1 tasks ran (likely too many at once); it goes again when one ends")
    assert not calls(interactive).notice("parts")

    tick_until(interactive, lambda: not calls(interactive).pending_submissions())
    assert len(sim.submissions) == 2 and sim.submissions[1].path == SPLIT
    assert not calls(interactive).notice("parts")
    assert any(rec.task_id.startswith("split_") for rec in interactive.engine.history.book())


def test_an_unknown_refusal_with_no_task_of_ours_running_is_shown(addon: ModuleType, prefs: Any,
                                                                  sim: Hitem3DSimulator, gen: Any,
                                                                  pictures: dict[str, Path]) -> None:
    sim.add_task("elsewhere", ["processing"])  # made from another machine: not in our book
    sim.max_running_tasks = 1
    gen.image_path = str(pictures["front"])

    message = error_of(bpy.ops.hitem3d.submit_generation)

    assert f"Hitem3D answered: concurrent task limit reached (code {CODE_TOO_MANY_TASKS})" in message
    assert len(addon.engine.history.book()) == 0


# -- the command line's batch -------------------------------------------------------------------------------


CHEAP = ("--model", "hitem3dv2.1", "--resolution", "1536fast")  # 25 credits each: a dozen fit the balance


def run_cli(addon: ModuleType, *argv: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    code = addon.ui.cli.main(list(argv), out=out, err=err)
    return code, out.getvalue(), err.getvalue()


def pictures_in(folder: Path, count: int) -> list[str]:
    paths = []
    for number in range(count):
        path = folder / f"photo{number:02d}.png"
        path.write_bytes(png_bytes())
        paths.append(str(path))
    return paths


def test_a_batch_never_runs_more_than_the_documented_ten_at_once(addon: ModuleType, prefs: Any,
                                                                 sim: Hitem3DSimulator, tmp_path: Path) -> None:
    sim.max_running_tasks = DOCUMENTED_MAX_RUNNING
    sim.default_states = ("queueing", "processing", "processing", "success")

    code, out, err = run_cli(addon, "submit", *pictures_in(tmp_path, 12), *CHEAP)

    assert code == 0, err
    assert len(out.splitlines()) == 12 and len(sim.submissions) == 12
    assert sim.too_many_refusals == 0 and max(sim.running_at_create) < DOCUMENTED_MAX_RUNNING
    assert "Waiting for a free slot (10 of 10 tasks running on Hitem3D): Generate from photo10.png (" in err
    assert len(addon.engine.history.book()) == 0  # without --wait nothing is left to resume


def test_a_batch_with_wait_keeps_to_the_preference_and_imports_everything(
        addon: ModuleType, prefs: Any, sim: Hitem3DSimulator, tmp_path: Path,
        limit: Callable[[int], None]) -> None:
    limit(2)
    sim.default_states = ("queueing", "processing", "success")

    code, out, err = run_cli(addon, "submit", *pictures_in(tmp_path, 5), *CHEAP, "--wait")

    assert code == 0, err
    assert max(sim.running_at_create) < 2 and len(sim.submissions) == 5
    assert out.count(": done, ") == 5


def test_a_batch_refused_for_too_many_tasks_waits_and_resends(addon: ModuleType, prefs: Any,
                                                             sim: Hitem3DSimulator, tmp_path: Path) -> None:
    sim.max_running_tasks = 2  # the account's limit is below the preference's 10
    sim.default_states = ("queueing", "processing", "success")

    code, out, err = run_cli(addon, "submit", *pictures_in(tmp_path, 4), *CHEAP)

    assert code == 0, err
    assert len(out.splitlines()) == 4 and len(sim.submissions) == 4
    assert sim.too_many_refusals >= 1


def test_a_pipeline_sets_the_limit_with_max_tasks_or_the_variable(
        addon: ModuleType, prefs: Any, sim: Hitem3DSimulator, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        sample_glb: Path) -> None:
    sim.default_states = ("queueing", "processing", "processing", "success")

    code, out, err = run_cli(addon, "submit", *pictures_in(tmp_path, 3), *CHEAP, "--max-tasks", "1")

    assert code == 0, err
    assert sim.running_at_create == [0, 0, 0]  # each went once the one before had ended
    assert "Waiting for a free slot (1 of 1 tasks running on Hitem3D)" in err
    assert calls(addon).max_running() == 10  # the option was for that command only

    code, out, err = run_cli(addon, "split", str(sample_glb), "--max-tasks", "2")  # every sending command takes it
    assert code == 0, err

    monkeypatch.setenv("HITEM3D_MAX_TASKS", "2")
    sim.running_at_create.clear()
    left_running = sim.running_tasks()  # the last task of each command above: no longer asked about
    code, out, err = run_cli(addon, "submit", *pictures_in(tmp_path, 4), *CHEAP)

    assert code == 0, err
    assert max(sim.running_at_create) - left_running == 1 and len(out.splitlines()) == 4
    assert calls(addon).max_running() == 2  # the sidebar keeps to the variable too


@pytest.mark.parametrize("argv", [("--max-tasks", "0"), ("--max-tasks", "many")])
def test_an_unusable_max_tasks_stops_the_command_before_anything_is_sent(
        addon: ModuleType, prefs: Any, sim: Hitem3DSimulator, tmp_path: Path, argv: tuple[str, str]) -> None:
    code, _, err = run_cli(addon, "submit", *pictures_in(tmp_path, 1), *argv)

    assert code == 2 and "--max-tasks must be a whole number from 1 to 100" in err
    assert sim.count(API) == 0


def test_an_unusable_limit_variable_stops_the_command_before_anything_is_sent(
        addon: ModuleType, prefs: Any, sim: Hitem3DSimulator, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HITEM3D_MAX_TASKS", "lots")

    code, _, err = run_cli(addon, "submit", *pictures_in(tmp_path, 1), *CHEAP)

    assert code == 2
    assert "HITEM3D_MAX_TASKS must be a whole number from 1 to 100, not 'lots' (nothing was sent)" in err
    assert sim.count(API) == 0
    assert calls(addon).max_running() == 10  # the sidebar goes on with the default
