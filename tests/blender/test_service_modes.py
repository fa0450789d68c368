"""The command line against the simulator in each mode of issue 20 (the facts:
docs/hitem3d-api.md): every spending command, end to end, whether Hitem3D
takes the schemes its pages show or only Bearer; every unpublished query path
served at its own path, only at query-task, or nowhere; an account at its limit
of running tasks. What a user pays for is always followed or kept, never lost."""

from __future__ import annotations

import io
import json
from pathlib import Path
from types import ModuleType
from typing import Any

import bpy
import pytest

from tests.blender.test_cli import png_file
from tests.blender.test_kinds import clean  # noqa: F401 - a fixture
from tests.support.simulator import (
    API,
    DOCUMENTED_MAX_RUNNING,
    GENERIC_ONLY,
    OWN_PATH,
    UNSERVED,
    Hitem3DSimulator,
)

# The spending commands, with what each one sends (its source written by the test).
COMMANDS: dict[str, tuple[str, ...]] = {
    "generate": ("submit", "{picture}", "--model", "hitem3dv2.1", "--resolution", "1536fast"),
    "texture": ("submit", "--texture-mesh", "{mesh}", "{picture}"),
    "split": ("split", "{mesh}", "--template", "c"),
    "segment": ("segment", "{mesh}"),
    "multicolour": ("multicolor", "{mesh}", "--colors", "3"),
    "relief": ("relief", "{picture}"),
}
UNPUBLISHED = {"split": "split", "segment": "segmentation", "multicolour": "multicolor"}


def run(addon: ModuleType, *argv: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    code = addon.ui.cli.main(list(argv), out=out, err=err)
    return code, out.getvalue(), err.getvalue()


def argv_of(command: str, tmp_path: Path, sample_glb: Path) -> list[str]:
    picture = png_file(tmp_path / "front.png")
    return [arg.format(picture=picture, mesh=sample_glb) for arg in COMMANDS[command]]


@pytest.mark.parametrize("auth_mode", ["documented", "bearer"])
@pytest.mark.parametrize("command", list(COMMANDS))
def test_every_spending_command_arrives_whichever_scheme_hitem3d_takes(
        addon: ModuleType, prefs: Any, sim: Hitem3DSimulator, sample_glb: Path, tmp_path: Path, clean: None,
        command: str, auth_mode: str) -> None:
    sim.auth_mode = auth_mode  # type: ignore[assignment]
    before = set(bpy.data.objects)

    code, out, err = run(addon, *argv_of(command, tmp_path, sample_glb), "--wait")

    assert code == 0, err
    [sent] = sim.submissions
    assert out.splitlines()[0] == sent.task_id and ": done, " in out
    assert set(bpy.data.objects) - before
    assert sim.balance < 1000.0 and "credentials" not in err
    if auth_mode == "bearer":  # a scheme that was refused is asked once per path, then remembered
        refused = [r for r in sim.requests if (r.header("Authorization") or "").startswith("Token ")]
        assert len(refused) == len({r.path for r in refused}) * 2


@pytest.mark.parametrize("served", [OWN_PATH, GENERIC_ONLY, UNSERVED])
@pytest.mark.parametrize("command", list(UNPUBLISHED))
def test_a_task_of_an_unpublished_query_path_is_followed_or_kept_never_failed(
        addon: ModuleType, prefs: Any, sim: Hitem3DSimulator, sample_glb: Path, tmp_path: Path, clean: None,
        command: str, served: str) -> None:
    sim.query_routes[UNPUBLISHED[command]] = served

    code, out, err = run(addon, *argv_of(command, tmp_path, sample_glb), "--wait")

    [sent] = sim.submissions
    assert out.splitlines()[0] == sent.task_id
    if served == UNSERVED:
        assert code == 4, err
        assert f"{sent.task_id}: unfollowed: Created on Hitem3D: this version cannot follow it yet" in err
        assert "failed" not in err.lower() and "API base URL" not in err
        saved = json.loads(addon.engine.files.journal_path().read_text())["tasks"]
        assert {entry["task_id"]: entry["state"] for entry in saved}[sent.task_id] == "unfollowed"
    else:
        assert code == 0, err
        assert f"{sent.task_id}: done, " in out


def test_a_batch_against_an_account_at_its_limit_sends_everything_without_a_refusal(
        addon: ModuleType, prefs: Any, sim: Hitem3DSimulator, tmp_path: Path) -> None:
    sim.max_running_tasks = DOCUMENTED_MAX_RUNNING
    sim.default_states = ("queueing", "processing", "processing", "success")
    pictures = [str(png_file(tmp_path / f"p{number:02d}.png")) for number in range(12)]

    code, out, err = run(addon, "submit", *pictures, "--model", "hitem3dv2.1", "--resolution", "1536fast")

    assert code == 0, err
    assert len(out.splitlines()) == 12 == len(sim.submissions) and sim.too_many_refusals == 0
    assert max(sim.running_at_create) == DOCUMENTED_MAX_RUNNING - 1
    assert sim.count(f"{API}/submit-task") == 12  # each sent once
