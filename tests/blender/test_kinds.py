"""Every task kind end to end in real Blender against the simulator: a pasted
ID of each kind is imported the way its kind wants (parts, relief, colours),
and parts, reliefs and multicolour are sent from Blender."""

from __future__ import annotations

import io
import json
import re
import time
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import bpy
import pytest
from mathutils import Vector

from hitem3d_blender.core.glb_names import neutral_glb
from tests.support.blender_helpers import TASK_ID, import_error, record_of, run_ticks
from tests.support.kind_assets import colour_glb_bytes, depth_png_bytes, parts_glb_bytes, stl_bytes
from tests.support.simulator import API, BAD_MESH_MARK, Hitem3DSimulator
from tests.support.worker_patch import patch_workers

SPLIT_ID = "split_8f1c2d3e4b5a69788796a5b4c3d2e1f0"
SEG_ID = "segmentation_0a1b2c3d4e5f60718293a4b5c6d7e8f9"
DEPTH_ID = "depth_77aa66bb55cc44dd33ee22ff11009988"
COLOUR_ID = "multicolor_1234567890abcdef1234567890abcdef"


@pytest.fixture
def clean() -> Iterator[None]:
    """No collection, image, texture or material made by a test outlives it."""
    before = {name: set(getattr(bpy.data, name).keys()) for name in ("collections", "images", "textures",
                                                                      "materials", "meshes")}
    yield
    for name, existing in before.items():
        data = getattr(bpy.data, name)
        for key in set(data.keys()) - existing:
            if key in data:
                data.remove(data[key])


@pytest.fixture
def kinds(addon: ModuleType, clean: None) -> Iterator[Any]:
    """The scene's Parts / Relief settings, back to their defaults."""
    props = bpy.context.scene.hitem3d_kinds
    for name in props.bl_rna.properties.keys():
        if name not in ("rna_type", "name"):
            props.property_unset(name)
    for panel in ("generate", "parts", "relief"):
        addon.ui.submit_calls.set_notice(panel, addon.core.messages.NONE)
    yield props


def world_low_x(obj: bpy.types.Object) -> float:
    bpy.context.view_layer.update()
    return min((obj.matrix_world @ Vector(v.co)).x for v in obj.data.vertices)


def by_task(task_id: str) -> list[bpy.types.Object]:
    return [obj for obj in bpy.data.objects if obj.get("hitem3d_task_id") == task_id]


# -- a pasted ID of each kind --------------------------------------------------------------------


def test_a_split_task_arrives_as_parts_in_their_own_collection_named_in_order(
        prefs: Any, sim: Hitem3DSimulator, clean: None) -> None:
    sim.add_task(SPLIT_ID, ["processing", "success"], glb=parts_glb_bytes(11))

    assert bpy.ops.hitem3d.import_task(task_id=SPLIT_ID) == {"FINISHED"}

    parts = bpy.data.collections["split_8f1c2d3e parts"]
    assert parts.name in bpy.data.collections["Hitem3D"].children
    names = sorted(obj.name for obj in parts.objects)
    assert names == [f"split_8f1c2d3e part {n:02d}" for n in range(1, 12)]
    # In the service's order: part_10 came after part_9, not after part_1.
    lows = [world_low_x(parts.objects[name]) for name in names]
    assert lows == sorted(lows)
    assert all(obj.get("hitem3d_task_id") == SPLIT_ID for obj in parts.objects)
    assert [r.path for r in sim.requests if r.method == "GET" and not r.path.startswith("/files/")] == [
        f"{API}/split/query-task"] * 2


def test_a_segmentation_task_arrives_as_parts_too(addon: ModuleType, prefs: Any, sim: Hitem3DSimulator,
                                                  clean: None, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(addon.engine.state, "runs_to_end", lambda: False)
    sim.add_task(SEG_ID, ["queueing", "success"], glb=parts_glb_bytes(4))

    assert bpy.ops.hitem3d.import_task(task_id=SEG_ID) == {"FINISHED"}
    rec = run_ticks(addon, SEG_ID)

    assert rec.state.value == "done"
    assert sorted(rec.imported_objects) == [f"segmentation_0a1b2c3d part {n:02d}" for n in range(1, 5)]
    assert sim.count(f"{API}/segmentation/query-task") == 2


@pytest.mark.child_process
def test_parts_converted_in_a_child_blender_are_arranged_after_the_append(
        addon: ModuleType, prefs: Any, sim: Hitem3DSimulator, clean: None, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(addon.engine.state, "runs_to_end", lambda: False)
    sim.add_task(SPLIT_ID, ["success"], glb=parts_glb_bytes(3))

    bpy.ops.hitem3d.import_task(task_id=SPLIT_ID)
    rec = run_ticks(addon, SPLIT_ID, limit=6000)

    assert rec.state.value == "done", str(rec.message)
    assert sorted(rec.imported_objects) == [f"split_8f1c2d3e part {n:02d}" for n in range(1, 4)]
    parts = bpy.data.collections["split_8f1c2d3e parts"]
    assert sorted(obj.name for obj in parts.objects) == sorted(rec.imported_objects)
    assert parts.name in bpy.data.collections["Hitem3D"].children


def test_parts_that_fail_to_arrange_leave_no_collection_mesh_or_object(
        addon: ModuleType, prefs: Any, sim: Hitem3DSimulator, clean: None, monkeypatch: pytest.MonkeyPatch) -> None:
    # The parts' collection is made, then naming fails: the import and the
    # arrangement are one all-or-nothing block, so nothing of either stays.
    sim.add_task(SPLIT_ID, ["success"], glb=parts_glb_bytes(3))
    real = addon.scene.kind_import.arrange_parts

    def arrange_then_fail(names: list[str], name: str) -> None:
        real(names, name)
        raise RuntimeError("naming failed")

    monkeypatch.setitem(addon.scene.kind_import._FINISHERS, addon.core.task_kinds.ResultStyle.PARTS,
                        arrange_then_fail)
    before = {name: set(getattr(bpy.data, name)) for name in ("objects", "meshes", "collections", "materials")}

    assert "Unexpected error while importing" in import_error(SPLIT_ID)

    assert record_of(addon, SPLIT_ID).state.value == "failed"
    assert {name: set(getattr(bpy.data, name)) for name in before} == before


def test_a_depth_task_becomes_a_relief_sized_from_the_pictures_aspect(prefs: Any, sim: Hitem3DSimulator,
                                                                      clean: None) -> None:
    sim.add_task(DEPTH_ID, ["success"], glb=depth_png_bytes(32, 16), extension="png")

    assert bpy.ops.hitem3d.import_task(task_id=DEPTH_ID) == {"FINISHED"}

    [relief] = by_task(DEPTH_ID)
    assert [m.type for m in relief.modifiers] == ["SUBSURF", "DISPLACE"]
    subdivision, displace = relief.modifiers
    assert subdivision.subdivision_type == "SIMPLE" and subdivision.render_levels == 5  # 2^5 = 32 pixels
    assert displace.texture.type == "IMAGE" and tuple(displace.texture.image.size) == (32, 16)
    assert displace.texture.image.colorspace_settings.name == "Non-Color"
    assert displace.texture_coords == "UV" and displace.strength == pytest.approx(0.1)
    assert tuple(round(d, 4) for d in relief.dimensions[:2]) == (1.0, 0.5)
    assert relief.name in bpy.data.collections["Hitem3D"].objects


def test_a_depth_task_with_a_mesh_result_imports_the_mesh(prefs: Any, sim: Hitem3DSimulator, clean: None) -> None:
    sim.add_task(DEPTH_ID, ["success"], glb=stl_bytes(4), extension="stl")

    assert bpy.ops.hitem3d.import_task(task_id=DEPTH_ID) == {"FINISHED"}

    [mesh] = by_task(DEPTH_ID)
    assert len(mesh.data.polygons) == 4 and not mesh.modifiers


def test_a_multicolour_task_shows_its_colours(prefs: Any, sim: Hitem3DSimulator, clean: None) -> None:
    sim.add_task(COLOUR_ID, ["success"], glb=colour_glb_bytes())

    assert bpy.ops.hitem3d.import_task(task_id=COLOUR_ID) == {"FINISHED"}

    [obj] = by_task(COLOUR_ID)
    attribute = obj.data.color_attributes.active_color
    assert attribute is not None
    tree = obj.active_material.node_tree
    bsdf = next(node for node in tree.nodes if node.type == "BSDF_PRINCIPLED")
    [link] = bsdf.inputs["Base Color"].links
    # Ours, or the glTF importer's own (newer Blenders wire an Attribute node).
    node = link.from_node
    read = node.layer_name if node.type == "VERTEX_COLOR" else getattr(node, "attribute_name", None)
    assert (node.type, read) in (("VERTEX_COLOR", attribute.name), ("VERTEX_COLOR", ""),  # "": the active one
                                 ("ATTRIBUTE", attribute.name))


def test_a_failed_kind_with_the_refund_code_is_retryable(addon: ModuleType, prefs: Any,
                                                         sim: Hitem3DSimulator) -> None:
    sim.add_task(COLOUR_ID, ["queueing", {"code": 5001001, "msg": "generate failed", "data": {}}])

    assert "credits are refunded" in import_error(COLOUR_ID)
    assert record_of(addon, COLOUR_ID).state.value == "failed"
    assert by_task(COLOUR_ID) == []


def test_a_depth_map_blender_cannot_read_leaves_nothing_behind(addon: ModuleType, prefs: Any,
                                                              sim: Hitem3DSimulator, clean: None) -> None:
    # A PNG header, then no picture: it passes the download's check, Blender cannot read it.
    broken = depth_png_bytes()[:33] + b"garbage" * 10
    sim.add_task(DEPTH_ID, ["success"], glb=broken, extension="png")
    images = set(bpy.data.images.keys())

    assert "The depth map is empty" in import_error(DEPTH_ID)

    assert by_task(DEPTH_ID) == [] and set(bpy.data.images.keys()) == images
    assert record_of(addon, DEPTH_ID).state.value == "failed"


def test_import_again_of_a_relief_uses_the_cached_depth_map(addon: ModuleType, prefs: Any, sim: Hitem3DSimulator,
                                                           clean: None) -> None:
    sim.add_task(DEPTH_ID, ["success"], glb=depth_png_bytes(), extension="png")
    bpy.ops.hitem3d.import_task(task_id=DEPTH_ID)
    downloads = sim.count("/files/")

    assert bpy.ops.hitem3d.import_again(task_id=DEPTH_ID) == {"FINISHED"}

    assert len(by_task(DEPTH_ID)) == 2 and sim.count("/files/") == downloads


def test_every_kind_lives_in_the_journal(addon: ModuleType, prefs: Any, sim: Hitem3DSimulator, clean: None) -> None:
    for task_id, result, extension in ((SPLIT_ID, parts_glb_bytes(2), "glb"), (DEPTH_ID, depth_png_bytes(), "png")):
        sim.add_task(task_id, ["success"], glb=result, extension=extension)
        bpy.ops.hitem3d.import_task(task_id=task_id)

    saved = json.loads(addon.engine.files.journal_path().read_text())["tasks"]

    assert {entry["task_id"]: entry["state"] for entry in saved} == {SPLIT_ID: "done", DEPTH_ID: "done"}
    assert {Path(entry["result_path"]).suffix for entry in saved} == {".glb", ".png"}
    assert addon.engine.files.cache_size() == sum(Path(entry["result_path"]).stat().st_size for entry in saved)


# -- the command line ------------------------------------------------------------------------------


def test_the_command_line_imports_and_checks_every_kind(addon: ModuleType, prefs: Any, sim: Hitem3DSimulator,
                                                        clean: None) -> None:
    sim.add_task(SPLIT_ID, ["success"], glb=parts_glb_bytes(3))
    sim.add_task(DEPTH_ID, ["processing"])
    sim.add_task(COLOUR_ID, ["success"], glb=colour_glb_bytes())
    out, err = io.StringIO(), io.StringIO()

    code = addon.ui.cli.main(["import", SPLIT_ID, COLOUR_ID], out=out, err=err)

    assert code == 0, err.getvalue()
    assert f"{SPLIT_ID}: done, 3 object(s) imported" in out.getvalue()
    assert f"{COLOUR_ID}: done, 1 object(s) imported" in out.getvalue()
    out = io.StringIO()
    assert addon.ui.cli.main(["status", SPLIT_ID, DEPTH_ID, "--json"], out=out, err=err) == 0
    rows = json.loads(out.getvalue())
    assert [(row["kind"], row["state"]) for row in rows] == [("split", "success"), ("depth", "processing")]


# -- sending from Blender ------------------------------------------------------------------------


def _finished_model(addon: ModuleType, sim: Hitem3DSimulator) -> Any:
    """An image-to-3D task imported and selected in the task list."""
    sim.add_task(TASK_ID, ["success"])
    assert bpy.ops.hitem3d.import_task(task_id=TASK_ID) == {"FINISHED"}
    addon.ui.ui_sync.select(TASK_ID)
    return record_of(addon, TASK_ID)


def test_splitting_a_finished_task_sends_its_cached_model(addon: ModuleType, prefs: Any, sim: Hitem3DSimulator,
                                                          kinds: Any) -> None:
    rec = _finished_model(addon, sim)
    kinds.split_model, kinds.split_part, kinds.split_joint = "character", "c", "ball"

    assert bpy.ops.hitem3d.split_parts() == {"FINISHED"}

    [sent] = sim.submissions
    assert sent.path == f"{API}/split/create-task"
    assert sent.fields == {"model": "character", "part": "c", "joint": "ball", "format": "2"}
    [(field, _, _, data)] = sent.files
    assert field == "mesh" and data == neutral_glb(Path(rec.result_path).read_bytes(), "result")
    new = record_of(addon, sent.task_id)
    assert new.state.value == "done" and new.generation["kind"] == "split"
    name = rec.imported_objects[0]
    assert sorted(new.imported_objects) == [f"{name} part {n:02d}" for n in range(1, 4)]
    assert f"{name} parts" in bpy.data.collections


def test_a_finished_task_without_a_cached_file_sends_a_fresh_link(addon: ModuleType, prefs: Any,
                                                                  sim: Hitem3DSimulator, kinds: Any) -> None:
    _finished_model(addon, sim)
    addon.engine.control.clear_cache()
    kinds.multicolor_number_color = 4

    assert bpy.ops.hitem3d.multicolour() == {"FINISHED"}

    [sent] = sim.submissions
    assert sent.path == f"{API}/muilticolor/create-task" and sent.files == []
    assert sent.fields["number_color"] == "4" and sent.fields["mesh_url"].startswith(sim.base_url)
    [obj] = record_of(addon, sent.task_id).imported_objects
    assert bpy.data.objects[obj].data.color_attributes.active_color is not None


def test_segmenting_a_mesh_file(addon: ModuleType, prefs: Any, sim: Hitem3DSimulator, kinds: Any,
                                tmp_path: Path, sample_glb: Path) -> None:
    kinds.source, kinds.mesh_path, kinds.segmentation_seg_level = "FILE", str(sample_glb), "high"

    assert bpy.ops.hitem3d.segment_parts() == {"FINISHED"}

    [sent] = sim.submissions
    assert sent.fields == {"seg_level": "high", "format": "2"}
    assert sent.files[0][1] == "mesh.glb" and b"Hitem3D_Sample" not in sent.files[0][3]  # no names leave
    assert len(record_of(addon, sent.task_id).imported_objects) == 4


def test_a_relief_from_a_picture_with_its_height(addon: ModuleType, prefs: Any, sim: Hitem3DSimulator,
                                                 kinds: Any, tmp_path: Path) -> None:
    picture = tmp_path / "coin.png"
    picture.write_bytes(depth_png_bytes(20, 40))
    kinds.image_path, kinds.relief_height, kinds.depth_rmbg = str(picture), 0.25, False

    assert bpy.ops.hitem3d.make_relief() == {"FINISHED"}

    [sent] = sim.submissions
    assert sent.path == f"{API}/depth/create-task"
    # The height is Blender's own: no height field is documented, none is sent.
    assert sent.fields == {"model_type": "pro", "rmbg": "0", "format": "2"}
    [relief] = by_task(sent.task_id)
    assert relief.name == "coin relief"
    assert relief.modifiers["Displace"].strength == pytest.approx(0.25)
    assert sim.balance == 990.0


def test_a_bad_mesh_fails_with_credits_refunded_and_nothing_imported(addon: ModuleType, prefs: Any,
                                                                     sim: Hitem3DSimulator, kinds: Any,
                                                                     tmp_path: Path) -> None:
    bad = tmp_path / "broken.stl"  # a GLB that cannot be followed is refused here, before sending
    bad.write_bytes(b"solid " + BAD_MESH_MARK)
    kinds.source, kinds.mesh_path = "FILE", str(bad)

    with pytest.raises(RuntimeError, match="credits are refunded"):
        bpy.ops.hitem3d.split_parts()

    [sent] = sim.submissions
    assert record_of(addon, sent.task_id).state.value == "failed"
    assert by_task(sent.task_id) == [] and sim.balance == 1000.0


def test_a_task_that_is_not_finished_is_not_sent(addon: ModuleType, prefs: Any, sim: Hitem3DSimulator,
                                                 kinds: Any) -> None:
    addon.ui.ui_sync.select("")

    with pytest.raises(RuntimeError, match="Select a finished task"):
        bpy.ops.hitem3d.split_parts()

    assert sim.submissions == []
    assert str(addon.ui.submit_calls.notice("parts")) == "Select a finished task in the Hitem3D list first"
    assert not addon.ui.submit_calls.notice("generate")  # its own panel's notice, not New Generation's


def test_a_depth_map_is_not_a_mesh_to_split(addon: ModuleType, prefs: Any, sim: Hitem3DSimulator,
                                            kinds: Any) -> None:
    sim.add_task(DEPTH_ID, ["success"], glb=depth_png_bytes(), extension="png")
    bpy.ops.hitem3d.import_task(task_id=DEPTH_ID)
    addon.ui.ui_sync.select(DEPTH_ID)

    with pytest.raises(RuntimeError, match="not a mesh"):
        bpy.ops.hitem3d.multicolour()
    assert sim.submissions == []


def test_splitting_the_selected_mesh_sends_it_as_one_glb_and_keeps_no_copy(addon: ModuleType, prefs: Any,
                                                                           sim: Hitem3DSimulator,
                                                                           kinds: Any) -> None:
    mesh = bpy.data.meshes.new("Knight")
    mesh.from_pydata([(0, 0, 0), (1, 0, 0), (0, 1, 0), (0, 0, 1)], [], [(0, 1, 2), (0, 1, 3), (0, 2, 3), (1, 2, 3)])
    knight = bpy.data.objects.new("Knight", mesh)
    bpy.context.scene.collection.objects.link(knight)
    bpy.context.view_layer.objects.active = knight
    knight.select_set(True)
    kinds.source, kinds.split_model, kinds.split_level = "SELECTION", "general", "high"

    assert bpy.ops.hitem3d.split_parts() == {"FINISHED"}

    [sent] = sim.submissions
    assert sent.fields == {"model": "general", "level": "high", "format": "2"}
    [(field, filename, _, data)] = sent.files
    assert field == "mesh" and filename == "mesh.glb" and data[:4] == b"glTF" and b"Knight" not in data
    assert list(addon.scene.mesh_export.exports_dir().iterdir()) == []
    assert sorted(record_of(addon, sent.task_id).imported_objects) == [f"Knight part {n:02d}" for n in range(1, 4)]


# -- the panels ---------------------------------------------------------------------------------------


def _draw(panel: Any) -> list[tuple[str, str]]:
    from tests.blender.test_generate import FakeLayout

    drawn: list[tuple[str, str]] = []
    panel.draw(type("Panel", (), {"layout": FakeLayout(drawn)})(), bpy.context)
    return drawn


def test_the_parts_panel_offers_each_kind_with_its_own_settings(addon: ModuleType, kinds: Any) -> None:
    drawn = _draw(bpy.types.HITEM3D_PT_parts)
    assert [name for kind, name in drawn if kind == "prop"] == [
        "source", "split_model", "split_part", "split_joint", "segmentation_seg_level", "multicolor_number_color"]
    assert [name for kind, name in drawn if kind == "operator"] == [
        "hitem3d.split_parts", "hitem3d.segment_parts", "hitem3d.multicolour"]
    assert ("label", "Task: no task selected") in drawn
    kinds.source, kinds.split_model = "FILE", "general"
    props = [name for kind, name in _draw(bpy.types.HITEM3D_PT_parts) if kind == "prop"]
    assert props[:3] == ["source", "mesh_path", "split_model"] and "split_level" in props
    assert "split_part" not in props


def _said_before_each_button(drawn: list[tuple[str, str]]) -> dict[str, str]:
    """The labels of each kind's box up to its button, by the button."""
    said: dict[str, str] = {}
    words: list[str] = []
    for kind, text in drawn:
        if kind == "operator":
            said[text], words = " ".join(words), []
        elif kind == "label":
            words.append(text)
    return said


def test_a_kind_resting_on_unconfirmed_facts_says_so_before_its_button(addon: ModuleType, kinds: Any) -> None:
    parts = _said_before_each_button(_draw(bpy.types.HITEM3D_PT_parts))
    relief = _said_before_each_button(_draw(bpy.types.HITEM3D_PT_relief))

    for button in ("hitem3d.split_parts", "hitem3d.segment_parts"):
        assert "Unconfirmed: following the task is not published; its ID is kept" in parts[button]
    assert "Unconfirmed: not on Hitem3D's published pages" in parts["hitem3d.multicolour"]
    assert "Unconfirmed" not in relief["hitem3d.make_relief"]  # depth maps are documented


def test_a_kind_request_on_its_way_is_shown_in_its_own_box(addon: ModuleType, prefs: Any, sim: Hitem3DSimulator,
                                                           kinds: Any, sample_glb: Path,
                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    """Under its button, not at the end of the panel, below the other kinds' boxes."""
    from tests.support.simulator import Fault

    monkeypatch.setattr(addon.engine.state, "runs_to_end", lambda: False)
    sim.inject(f"{API}/balance", Fault.delay(1.0))
    kinds.source, kinds.mesh_path = "FILE", str(sample_glb)
    assert bpy.ops.hitem3d.split_parts() == {"FINISHED"}

    drawn = _draw(bpy.types.HITEM3D_PT_parts)
    line = next(index for index, (_, text) in enumerate(drawn) if text.startswith("Checking the balance"))
    assert drawn.index(("operator", "hitem3d.split_parts")) < line < drawn.index(("operator", "hitem3d.segment_parts"))
    for _ in range(500):
        if not addon.ui.submit_calls.pending_submissions():
            break
        addon.engine.timer.tick()
        time.sleep(0.01)
    assert sim.submissions


SPLIT_QUERY = f"{API}/split/query-task"


def test_a_split_no_known_path_answers_for_is_kept_not_failed(addon: ModuleType, prefs: Any,
                                                              sim: Hitem3DSimulator, kinds: Any,
                                                              sample_glb: Path,
                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    from tests.blender.test_generate import FakeLayout
    from tests.support.simulator import UNSERVED

    monkeypatch.setattr(addon.engine.state, "runs_to_end", lambda: False)
    sim.query_routes["split"] = UNSERVED
    kinds.source, kinds.mesh_path = "FILE", str(sample_glb)

    assert bpy.ops.hitem3d.split_parts() == {"FINISHED"}
    for _ in range(500):
        addon.engine.timer.tick()
        if sim.submissions and addon.engine.history.record(sim.submissions[0].task_id) is not None:
            break
        time.sleep(0.01)
    task_id = sim.submissions[0].task_id
    rec = run_ticks(addon, task_id)

    assert rec.state.value == "unfollowed" and rec.task_id.startswith("split_")
    assert str(rec.message).startswith("Created on Hitem3D: this version cannot follow it yet")
    assert sim.balance == 980.0  # spent: the task exists on Hitem3D
    drawn: list[tuple[str, str]] = []
    addon.ui.panels.draw_details(FakeLayout(drawn), rec, 300)
    assert ("label", "Not followed") in drawn and ("operator", "hitem3d.retry_task") in drawn

    # Retry asks again, and once Hitem3D answers at query-task the task goes on.
    sim.query_routes["split"] = "generic"
    monkeypatch.setattr(addon.engine.state, "runs_to_end", lambda: True)
    assert bpy.ops.hitem3d.retry_task(task_id=task_id) == {"FINISHED"}
    assert record_of(addon, task_id).state.value == "done"


def test_the_command_line_keeps_a_task_it_cannot_follow_with_exit_code_4(addon: ModuleType, prefs: Any,
                                                                        sim: Hitem3DSimulator,
                                                                        clean: None) -> None:
    from tests.support.simulator import UNSERVED

    sim.query_routes["segmentation"] = UNSERVED
    sim.add_task(SEG_ID, ["success"], glb=parts_glb_bytes(4))

    code, out, err = _cli(addon, "import", SEG_ID)
    assert code == 4, err
    assert f"{SEG_ID}: unfollowed: Created on Hitem3D: this version cannot follow it yet" in err
    assert "failed" not in err and "API base URL" not in err
    saved = json.loads(addon.engine.files.journal_path().read_text())["tasks"]
    assert {entry["task_id"]: entry["state"] for entry in saved}[SEG_ID] == "unfollowed"  # kept, with its ID

    code, out, err = _cli(addon, "status", SEG_ID, "--json")
    assert code == 4
    assert json.loads(out)[0]["state"] == "unfollowed"


def test_the_relief_panel_offers_the_picture_and_the_height(addon: ModuleType, kinds: Any) -> None:
    drawn = _draw(bpy.types.HITEM3D_PT_relief)
    assert [name for kind, name in drawn if kind == "prop"] == [
        "picture_source", "image_path", "depth_rmbg", "relief_height"]
    kinds.picture_source = "IMAGE"
    assert [name for kind, name in _draw(bpy.types.HITEM3D_PT_relief) if kind == "prop"][:2] == [
        "picture_source", "image"]
    assert ("operator", "hitem3d.make_relief") in drawn


def test_task_details_say_the_kind(addon: ModuleType, prefs: Any, sim: Hitem3DSimulator, clean: None) -> None:
    from tests.blender.test_generate import FakeLayout

    sim.add_task(SPLIT_ID, ["success"], glb=parts_glb_bytes(2))
    bpy.ops.hitem3d.import_task(task_id=SPLIT_ID)
    drawn: list[tuple[str, str]] = []

    addon.ui.panels.draw_details(FakeLayout(drawn), record_of(addon, SPLIT_ID), 300)

    assert ("label", "Kind: Split into parts") in drawn


def test_a_relief_sent_from_the_panel_follows_the_timer_like_any_task(addon: ModuleType, prefs: Any,
                                                                     sim: Hitem3DSimulator, kinds: Any,
                                                                     tmp_path: Path,
                                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(addon.engine.state, "runs_to_end", lambda: False)
    picture = tmp_path / "medal.png"
    picture.write_bytes(depth_png_bytes())
    kinds.image_path = str(picture)

    assert bpy.ops.hitem3d.make_relief() == {"FINISHED"}  # returns at once
    for _ in range(500):
        addon.engine.timer.tick()
        if sim.submissions and addon.engine.history.record(sim.submissions[0].task_id) is not None:
            break
        time.sleep(0.01)
    rec = run_ticks(addon, sim.submissions[0].task_id)

    assert rec.state.value == "done" and rec.cover_path == str(picture)  # the picture stands for it
    assert [bpy.data.objects[name].name for name in rec.imported_objects] == ["medal relief"]


def _cli(addon: ModuleType, *argv: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    code = addon.ui.cli.main(list(argv), out=out, err=err)
    return code, out.getvalue(), err.getvalue()


def test_the_command_line_splits_a_mesh_file_and_saves_the_parts(addon: ModuleType, prefs: Any,
                                                                 sim: Hitem3DSimulator, clean: None,
                                                                 sample_glb: Path, tmp_path: Path) -> None:
    code, out, err = _cli(addon, "split", str(sample_glb), "--template", "e", "--joint", "dovetail", "--wait",
                          "--output", str(tmp_path / "parts.blend"))

    assert code == 0, err
    [sent] = sim.submissions
    assert sent.fields == {"model": "character", "part": "e", "joint": "dovetail", "format": "2"}
    assert out.splitlines()[0] == sent.task_id
    assert f"{sent.task_id}: done, 3 object(s) imported" in out
    assert (tmp_path / "parts.blend").is_file()
    assert f"{sample_glb.stem} parts" in bpy.data.collections


def test_the_command_line_colours_a_finished_task_and_makes_reliefs(addon: ModuleType, prefs: Any,
                                                                    sim: Hitem3DSimulator, clean: None,
                                                                    tmp_path: Path) -> None:
    sim.add_task(TASK_ID, ["success"])
    picture = tmp_path / "coin.png"
    picture.write_bytes(depth_png_bytes())

    code, out, err = _cli(addon, "multicolor", TASK_ID, "--colors", "3")
    assert code == 0, err
    assert sim.submissions[0].fields["number_color"] == "3" and "mesh_url" in sim.submissions[0].fields
    assert out.strip().startswith("multicolor_")
    code, out, err = _cli(addon, "relief", str(picture), "--height", "0.3", "--keep-background", "--wait")
    assert code == 0, err
    assert sim.submissions[1].fields["rmbg"] == "0"
    [relief] = by_task(sim.submissions[1].task_id)
    assert relief.modifiers["Displace"].strength == pytest.approx(0.3)


@pytest.mark.parametrize("argv, words", [
    (["multicolor", "x.glb", "--colors", "9"], "Colours must be from 0 to 8"),
    (["split", "missing.glb"], "Mesh: file not found"),
    (["relief", "photo.gif"], "is not a PNG, JPEG or WebP file"),
    (["split", "not/an id"], "Not a task ID"),
])
def test_the_command_line_refuses_bad_kind_requests_before_sending(addon: ModuleType, prefs: Any,
                                                                   sim: Hitem3DSimulator, argv: list[str],
                                                                   words: str) -> None:
    code, _, err = _cli(addon, *argv)

    assert code == 2 and words in err
    assert sim.submissions == []


def test_the_kinds_speak_chinese(addon: ModuleType, tmp_path: Path) -> None:
    from tests.blender.test_translations import chinese

    core = addon.core
    mesh = tmp_path / "Chair.glb"
    mesh.write_bytes(b"glTF")
    request = core.kind_requests.KindRequest("multicolor", {"number_color": "9"}, source_path=str(mesh),
                                             source_name="Chair")
    with pytest.raises(core.errors.Hitem3DError) as info:
        core.kind_requests.validate(request)

    assert chinese(info.value.message) == "颜色数 必须在 0 到 8 之间，而不是 9"
    assert chinese(request.describe()) == "Chair 的多色"
    assert chinese(core.messages.msg("Kind: {kind}", kind=core.task_kinds.DEPTH.title)) == "类型：深度图／浮雕"
    assert chinese(core.task_kinds.SPLIT.failed_message()) == "拆分为部件在 Hitem3D 上失败（积分已退还）：请重试，或换一个网格"
    for kind in core.task_kinds.KINDS:
        assert chinese(kind.failed_message()) != str(kind.failed_message())
        note = kind.unconfirmed()
        assert note is None or chinese(note).startswith("未经确认")


def test_colours_get_a_material_that_reads_them_when_the_model_has_none(addon: ModuleType, clean: None) -> None:
    mesh = bpy.data.meshes.new("painted")
    mesh.from_pydata([(0, 0, 0), (1, 0, 0), (0, 1, 0)], [], [(0, 1, 2)])
    mesh.color_attributes.new("Col", "BYTE_COLOR", "CORNER")
    obj = bpy.data.objects.new("painted", mesh)
    bare = bpy.data.objects.new("bare", bpy.data.meshes.new("bare"))

    addon.scene.kind_import.show_colours([obj.name])

    tree = obj.active_material.node_tree
    bsdf = next(node for node in tree.nodes if node.type == "BSDF_PRINCIPLED")
    [link] = bsdf.inputs["Base Color"].links
    assert (link.from_node.type, link.from_node.layer_name) == ("VERTEX_COLOR", "Col")
    assert mesh.color_attributes.active_color.name == "Col"
    with pytest.raises(addon.core.errors.ImportFailed, match="no vertex colours"):
        addon.scene.kind_import.show_colours([bare.name])
    bpy.data.objects.remove(obj)
    bpy.data.objects.remove(bare)


def test_a_relief_from_an_image_in_blender_sends_it_as_png(addon: ModuleType, prefs: Any, sim: Hitem3DSimulator,
                                                          kinds: Any) -> None:
    image = bpy.data.images.new("Sketch", 16, 8)
    kinds.picture_source, kinds.image = "IMAGE", image

    assert bpy.ops.hitem3d.make_relief() == {"FINISHED"}

    [sent] = sim.submissions
    [(field, filename, _, data)] = sent.files
    assert field == "image" and filename == "image.png"
    assert data.startswith(b"\x89PNG")
    [relief] = by_task(sent.task_id)
    assert relief.name.startswith("Sketch") and relief.name.endswith("relief")


def test_import_again_of_parts_makes_a_second_set_in_its_own_collection(addon: ModuleType, prefs: Any,
                                                                        sim: Hitem3DSimulator,
                                                                        clean: None) -> None:
    sim.add_task(SPLIT_ID, ["success"], glb=parts_glb_bytes(2))
    bpy.ops.hitem3d.import_task(task_id=SPLIT_ID)

    assert bpy.ops.hitem3d.import_again(task_id=SPLIT_ID) == {"FINISHED"}

    sets = [bpy.data.collections["split_8f1c2d3e parts"], bpy.data.collections["split_8f1c2d3e 2 parts"]]
    assert all(len(c.objects) == 2 for c in sets)
    assert sorted(record_of(addon, SPLIT_ID).imported_objects) == sorted(obj.name for obj in sets[1].objects)


SUFFIX = re.compile(r"\.\d{3}$")  # what Blender adds to a name already taken


def test_splitting_the_same_model_twice_names_each_run_alike_in_its_own_collection(
        addon: ModuleType, prefs: Any, sim: Hitem3DSimulator, kinds: Any, sample_glb: Path) -> None:
    kinds.source, kinds.mesh_path = "FILE", str(sample_glb)
    stem = sample_glb.stem

    for _ in range(3):
        assert bpy.ops.hitem3d.split_parts() == {"FINISHED"}

    runs = [record_of(addon, sent.task_id).imported_objects for sent in sim.submissions]
    for base, names in zip((stem, f"{stem} 2", f"{stem} 3"), runs):
        assert sorted(names) == [f"{base} part {n:02d}" for n in range(1, 4)]
        assert sorted(obj.name for obj in bpy.data.collections[f"{base} parts"].objects) == sorted(names)
        assert all(bpy.data.objects[name].data.name == name for name in names)
    shown = [name for names in runs for name in names] + [c.name for c in bpy.data.collections]
    assert not [name for name in shown if SUFFIX.search(name)]


# -- a kind is one row of the table ------------------------------------------------------------------


# A kind as a row of the table: evaluated here and in the worker process.
RETOPO = """tk.TaskKind(
    id="retopo", label="Retopology", id_prefix="retopo_",
    create=tk.Endpoint("/retopo/create-task", tk.Auth.TOKEN, community, community),
    query=tk.Endpoint("/retopo/query-task", tk.Auth.TOKEN, community, community),
    result_style=tk.ResultStyle.MODEL, result_extensions=("glb",),
    source_field="mesh", source_url_field="mesh_url", source_extensions=("glb",), max_source_bytes=10 * tk.MB,
    formats={"2": "glb"}, request_format="2",
    fields=(
        tk.FieldSpec("density", "Level", "medium", (("low", "Low"), ("medium", "Medium"), ("high", "High"))),
        tk.FieldSpec("symmetry", "Symmetry", "1", (("1", "Yes"), ("0", "No")), cli=None,
                     cli_flag=("--no-symmetry", "0")),
        tk.FieldSpec("target", "Faces", "5000", minimum=100, maximum=100_000, integer=True),
    ),
    operator="retopologise", button="Retopologise", tooltip="Retopologise the mesh on Hitem3D",
    icon="MOD_REMESH", command="retopo",
)"""


def test_a_kind_added_to_the_table_gets_its_settings_button_command_request_and_price(
        addon: ModuleType, prefs: Any, clean: None, sample_glb: Path, tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    """Nothing but the kinds' table and the price table changes here: the
    sidebar's settings and box, the operator, the command with its options, the
    request, the endpoints, the estimate and the import all follow."""
    from tests.blender.test_generate import FakeLayout
    from tests.conftest import point_prefs_at
    from tests.support import simulator

    tk = addon.core.task_kinds
    retopo = eval(RETOPO, {"tk": tk, "community": addon.core.sources.Source.COMMUNITY})
    # The worker process checks and sends the request: the kind is added there too.
    patch_workers(addon, tmp_path, "tk = core.task_kinds\ncommunity = core.sources.Source.COMMUNITY\n"
                  f"tk.KINDS = (*tk.KINDS, {RETOPO})", modules=("task_kinds", "sources"))
    monkeypatch.setattr(tk, "KINDS", (*tk.KINDS, retopo))
    monkeypatch.setitem(addon.core.prices.PER_TASK, "retopo", 30)

    # The sidebar: a setting per field, a box with them, the note, the button and the estimate.
    kinds_ui = addon.ui.kinds_ui
    properties = kinds_ui.field_properties(retopo)
    assert list(properties) == ["retopo_density", "retopo_symmetry", "retopo_target"]
    group = type("HITEM3D_TestRetopoSettings", (bpy.types.PropertyGroup,), {"__annotations__": properties})
    operator = kinds_ui.operator_class(retopo)
    for cls in (group, operator):
        bpy.utils.register_class(cls)
        monkeypatch.setattr(bpy.types, cls.__name__, cls, raising=False)  # unregistered below
    try:
        bpy.types.Scene.hitem3d_test_retopo = bpy.props.PointerProperty(type=group)
        props = bpy.context.scene.hitem3d_test_retopo
        props.retopo_density, props.retopo_symmetry, props.retopo_target = "high", False, 8000
        assert kinds_ui.values_of(retopo, props) == {"density": "high", "symmetry": "0", "target": "8000"}
        drawn: list[tuple[str, str]] = []
        kinds_ui.draw_kind(FakeLayout(drawn), props, retopo, 1000)
        assert [name for kind, name in drawn if kind in ("prop", "operator")] == [
            "retopo_density", "retopo_symmetry", "retopo_target", "hitem3d.retopologise"]
        labels = " ".join(name for kind, name in drawn if kind == "label")
        assert "Unconfirmed: not on Hitem3D's published pages" in labels and "Estimated cost: 30 credits" in labels
    finally:
        del bpy.types.Scene.hitem3d_test_retopo
        bpy.utils.unregister_class(operator)
        bpy.utils.unregister_class(group)

    # The command line, against a simulator that serves the new kind.
    monkeypatch.setitem(simulator.KIND_ROUTES, "retopo", simulator.KindRoute(
        "retopo_", f"{API}/retopo/create-task", f"{API}/retopo/query-task", simulator.TOKEN, simulator.TOKEN,
        "mesh", "mesh_url", frozenset({"glb"}), 10_000_000, {"2": "glb"},
        {"density": frozenset({"low", "medium", "high"}), "symmetry": frozenset({"0", "1"})},
        numbers={"target": (100, 100_000)}, required=("density", "format"), cost=30.0))
    with simulator.Hitem3DSimulator() as sim:
        sim.kind_results["retopo"] = sample_glb
        point_prefs_at(sim)
        code, out, err = _cli(addon, "retopo", str(sample_glb), "--density", "low", "--no-symmetry", "--target", "900",
                              "--wait")

        assert code == 0, err
        assert "Estimated cost: 30 credits" in err and "Unconfirmed" in err
        [sent] = sim.submissions
        assert sent.path == f"{API}/retopo/create-task"
        assert sent.fields == {"density": "low", "symmetry": "0", "target": "900", "format": "2"}
        assert sim.count(f"{API}/retopo/query-task") >= 1
        assert len(record_of(addon, sent.task_id).imported_objects) == 2
        code, _, err = _cli(addon, "retopo", str(sample_glb), "--target", "7")
        assert code == 2 and "Faces must be from 100 to 100000" in err
