"""Texture Selection, the price before you pay, pictures dropped on the
viewport, Use Current View and light removal: in real Blender against the
simulator."""

from __future__ import annotations

import importlib
import json
import struct
from pathlib import Path
from types import ModuleType
from typing import Any, Iterator

import bpy
import pytest

from tests.support.simulator import Hitem3DSimulator
from tests.blender.test_generate import draw_panel, gen, interactive, labels, pictures, png_bytes  # noqa: F401
from tests.blender.test_mesh_export import cube, select_only

SUBMIT = "/open-api/v1/submit-task"


def module(addon: ModuleType, name: str) -> ModuleType:
    return importlib.import_module(f"{addon.__name__}.{name}")


def glb_node_names(data: bytes) -> set[str]:
    length = struct.unpack_from("<I", data, 12)[0]
    return {node["name"] for node in json.loads(data[20:20 + length])["nodes"]}


def error_of(call: Any, **kwargs: Any) -> str:
    with pytest.raises(RuntimeError) as info:
        call(**kwargs)
    return str(info.value)


@pytest.fixture
def chair(addon: ModuleType) -> Iterator[bpy.types.Object]:
    obj = cube("Chair", (1.0, 2.0, 0.0), size=2.0)
    select_only(obj)
    yield obj


def exports(addon: ModuleType) -> list[Path]:
    return list(module(addon, "scene.mesh_export").exports_dir().iterdir())


# -- Texture Selection ---------------------------------------------------------------------------


def test_texture_selection_sends_the_mesh_and_imports_the_result_beside_it(
        addon: ModuleType, prefs: Any, sim: Hitem3DSimulator, gen: Any, pictures: dict[str, Path],
        chair: bpy.types.Object) -> None:
    gen.model = "hitem3dv1.5"
    gen.image_path = str(pictures["front"])
    assert bpy.ops.hitem3d.texture_selection() == {"FINISHED"}

    [sent] = sim.submissions
    assert sent.fields["request_type"] == "2" and sent.fields["model"] == "hitem3dv1.5"
    parts = {name: (filename, data) for name, filename, _, data in sent.files}
    assert list(parts) == ["images"] and parts["images"][0] == "image.png"  # not the artist's file name
    # The mesh went to the storage, as the vendor's client sends it; its link to submit-task.
    [(key, stored)] = sim.stored.items()
    assert sent.fields["mesh_url"] == sim.public_base + key and key.endswith(".glb")
    assert glb_node_names(stored) == {"node_0"} and b"Chair" not in stored  # the shape, not its name
    result = [obj for obj in bpy.data.objects if obj.get("hitem3d_task_id") == sent.task_id]
    assert sorted(obj.name for obj in result) == ["Chair textured", "Chair textured 2"]
    assert bpy.data.objects["Chair textured"].type == "MESH"
    [rec] = list(addon.engine.history.book())
    assert sorted(rec.imported_objects) == ["Chair textured", "Chair textured 2"]  # the list knows the new names
    # Beside the original: the same size, on the same ground, one width and a gap further along x.
    placement = module(addon, "scene.placement")
    box = placement.world_box(result)
    assert box.longest_side == pytest.approx(2.0, abs=1e-4)
    assert box.low.z == pytest.approx(-1.0, abs=1e-4)
    assert box.bottom_center.x == pytest.approx(1.0 + 2.0 * 1.25, abs=1e-4)
    assert box.bottom_center.y == pytest.approx(2.0, abs=1e-4)
    assert tuple(chair.location) == (1.0, 2.0, 0.0) and "Chair" in bpy.data.objects
    assert exports(addon) == []  # the exported GLB is gone once Hitem3D has it


def test_a_texture_selection_task_is_named_after_the_mesh_not_the_picture(
        addon: ModuleType, prefs: Any, sim: Hitem3DSimulator, gen: Any, pictures: dict[str, Path],
        chair: bpy.types.Object) -> None:
    gen.model, gen.image_path = "hitem3dv1.5", str(pictures["front"])
    assert bpy.ops.hitem3d.texture_selection() == {"FINISHED"}
    [rec] = list(addon.engine.history.book())
    assert module(addon, "core.display").task_name(rec) == "Chair"  # not "front", the picture


def test_both_texturing_buttons_build_their_request_in_one_place(
        addon: ModuleType, prefs: Any, sim: Hitem3DSimulator, gen: Any, pictures: dict[str, Path],
        chair: bpy.types.Object, monkeypatch: pytest.MonkeyPatch) -> None:
    core = module(addon, "core.submission")
    built: list[str] = []
    real = core.texture_request

    def spy(**values: Any) -> Any:
        built.append("task" if values.get("mesh_task_id") else "file")
        return real(**values)

    monkeypatch.setattr(core, "texture_request", spy)
    gen.model, gen.image_path = "hi3dv3.0", str(pictures["front"])
    assert bpy.ops.hitem3d.texture_selection() == {"FINISHED"}
    gen.request_type = "GEOMETRY"
    bpy.ops.hitem3d.submit_generation()
    geometry = sim.submissions[-1].task_id
    assert bpy.ops.hitem3d.texture_task(task_id=geometry) == {"FINISHED"}
    assert built == ["file", "task"]
    assert [s.fields["request_type"] for s in sim.submissions] == ["2", "1", "2"]


@pytest.mark.parametrize(("fault", "words"), [
    ("token", "Hitem3D gave no permission to upload the mesh"),
    ("xml", "Hitem3D's storage refused the mesh (NoSuchBucket: The bucket is gone)"),
    ("denied", "did not let its upload credentials store the mesh under hitem3d-blender/, comfyui/ (AccessDenied"),
    ("expired", "ExpiredToken"),
    ("cut", "Uploading the mesh failed, nothing was spent: "),
])
def test_a_failed_upload_spends_nothing_says_why_and_texture_selection_works_again(
        addon: ModuleType, prefs: Any, sim: Hitem3DSimulator, gen: Any, pictures: dict[str, Path],
        chair: bpy.types.Object, fault: str, words: str) -> None:
    from tests.support.simulator import Fault

    if fault == "token":
        sim.inject("/open-api/v1/upload/token", Fault.json({"code": 10000000, "msg": "system error", "data": {}}))
    elif fault == "xml":
        sim.storage_error_format = "xml"
        sim.inject("/hitem3d-blender/", Fault.raw(b"<Error><Code>NoSuchBucket</Code><Message>The bucket is gone"
                                                  b"</Message></Error>", "application/xml", status=404))
    elif fault == "denied":
        sim.storage_key_prefixes = ("someone-elses/",)  # the upload credentials allow neither of our names
    elif fault == "expired":
        sim.upload_credentials_lifetime_s = 0.0
    else:
        sim.inject("/hitem3d-blender/", Fault.cut_request(0))
    gen.model, gen.image_path = "hitem3dv1.5", str(pictures["front"])

    assert words in error_of(bpy.ops.hitem3d.texture_selection)
    assert sim.submissions == [] and sim.count(SUBMIT) == 0 and sim.balance == 1000.0
    assert exports(addon) == [] and list(addon.engine.history.book()) == []
    assert words in str(addon.ui.submit_calls.notice("generate"))  # in the panel too

    sim.upload_credentials_lifetime_s, sim.storage_key_prefixes = 3600.0, None
    assert bpy.ops.hitem3d.texture_selection() == {"FINISHED"}  # pressed again: it goes
    assert len(sim.submissions) == 1 and exports(addon) == []


def test_texture_selection_needs_a_model_that_textures_meshes(addon: ModuleType, prefs: Any,
                                                              sim: Hitem3DSimulator, gen: Any,
                                                              chair: bpy.types.Object) -> None:
    gen.model = "hitem3dv2.0"
    message = error_of(bpy.ops.hitem3d.texture_selection)
    assert ("Hitem3D v2.0 cannot texture an existing model: use Hitem3D v2.1, Hitem3D v1.5, Portrait v1.5 "
            "or Hi3D v3.0") in message
    assert sim.submissions == [] and exports(addon) == []


def test_texture_selection_needs_a_selected_mesh(addon: ModuleType, prefs: Any, gen: Any) -> None:
    select_only()
    assert "Select one or more mesh objects" in error_of(bpy.ops.hitem3d.texture_selection)


def test_texture_selection_needs_a_reference_picture(addon: ModuleType, prefs: Any, sim: Hitem3DSimulator,
                                                     gen: Any, chair: bpy.types.Object) -> None:
    gen.model = "hi3dv3.0"
    assert "Texturing needs a reference image" in error_of(bpy.ops.hitem3d.texture_selection)
    assert sim.submissions == [] and exports(addon) == []


def test_a_selection_over_200_mb_is_refused_before_anything_is_sent(
        addon: ModuleType, prefs: Any, sim: Hitem3DSimulator, gen: Any, pictures: dict[str, Path],
        chair: bpy.types.Object, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(module(addon, "core.mesh_files"), "MAX_MESH_BYTES", 100)
    gen.model, gen.image_path = "hi3dv3.0", str(pictures["front"])
    message = error_of(bpy.ops.hitem3d.texture_selection)
    assert "Hitem3D accepts at most 200 MB" in message
    assert sim.submissions == [] and sim.count(SUBMIT) == 0 and exports(addon) == []


def test_a_refused_texturing_leaves_no_export_and_a_retryable_notice(
        addon: ModuleType, prefs: Any, sim: Hitem3DSimulator, gen: Any, pictures: dict[str, Path],
        chair: bpy.types.Object) -> None:
    sim.balance = 5.0  # Hitem3D says no; the panel did not know the balance
    gen.model, gen.image_path = "hi3dv3.0", str(pictures["front"])
    assert "top up" in error_of(bpy.ops.hitem3d.texture_selection)
    assert exports(addon) == [] and list(addon.engine.history.book()) == []


# -- the price before you pay --------------------------------------------------------------------


def test_generate_shows_the_estimate_and_the_balance_after_it(addon: ModuleType, prefs: Any,
                                                              sim: Hitem3DSimulator, gen: Any) -> None:
    assert "Estimated cost: 25 credits" in labels(addon)  # v2.1 1536fast, balance not known yet
    assert bpy.ops.hitem3d.refresh_balance() == {"FINISHED"}
    assert "Estimated cost: 25 credits; balance after: 975 credits" in labels(addon)
    gen.model, gen.resolution = "hi3dv3.0", "2048master"
    assert "Estimated cost: 455 credits; balance after: 545 credits" in labels(addon)


def test_the_estimate_can_be_hidden_in_the_preferences(addon: ModuleType, prefs: Any, gen: Any) -> None:
    prefs.show_cost_estimate = False
    try:
        assert "Estimated cost" not in labels(addon)
    finally:
        prefs.show_cost_estimate = True


def test_a_known_balance_below_the_estimate_sends_nothing_and_says_what_is_missing(
        addon: ModuleType, prefs: Any, sim: Hitem3DSimulator, gen: Any, pictures: dict[str, Path]) -> None:
    sim.balance = 30.0
    bpy.ops.hitem3d.refresh_balance()
    gen.image_path, gen.resolution = str(pictures["front"]), "1536pro"
    message = error_of(bpy.ops.hitem3d.submit_generation)
    assert "Not enough credits: at least 45 needed, 30 left (15 missing)" in message
    assert sim.count(SUBMIT) == 0 and list(addon.engine.history.book()) == []
    assert "(15 missing)" in labels(addon)  # the panel says it too, in place of the estimate
    gen.resolution = "1536fast"  # 25 credits: within the balance
    assert bpy.ops.hitem3d.submit_generation() == {"FINISHED"}


def test_texture_selection_checks_the_balance_before_exporting(
        addon: ModuleType, prefs: Any, sim: Hitem3DSimulator, gen: Any, pictures: dict[str, Path],
        chair: bpy.types.Object) -> None:
    # Texturing a mesh has no figure of its own: refused only below the least it could cost.
    sim.balance = 3.0
    bpy.ops.hitem3d.refresh_balance()
    gen.model, gen.image_path = "hi3dv3.0", str(pictures["front"])
    assert "at least 5 needed, 3 left (2 missing)" in error_of(bpy.ops.hitem3d.texture_selection)
    assert sim.count(SUBMIT) == 0 and exports(addon) == []


def test_texture_a_result_checks_the_balance_too(addon: ModuleType, prefs: Any, sim: Hitem3DSimulator,
                                                 gen: Any, pictures: dict[str, Path]) -> None:
    gen.model, gen.request_type = "hitem3dv1.5", "GEOMETRY"
    gen.image_path = str(pictures["front"])
    bpy.ops.hitem3d.submit_generation()
    [rec] = list(addon.engine.history.book())
    sim.balance = 4.0
    bpy.ops.hitem3d.refresh_balance()
    message = error_of(bpy.ops.hitem3d.texture_task, task_id=rec.task_id)
    assert "at least 5 needed, 4 left (1 missing)" in message
    assert len(sim.submissions) == 1


def test_texture_on_a_result_shows_its_estimate_in_the_task_details(addon: ModuleType, prefs: Any,
                                                                    sim: Hitem3DSimulator, gen: Any,
                                                                    pictures: dict[str, Path]) -> None:
    from tests.blender.test_generate import FakeLayout

    gen.model, gen.resolution, gen.request_type = "hitem3dv1.5", "512", "GEOMETRY"
    gen.image_path = str(pictures["front"])
    bpy.ops.hitem3d.submit_generation()
    [rec] = list(addon.engine.history.book())
    drawn: list[tuple[str, str]] = []
    module(addon, "ui.panels").draw_details(FakeLayout(drawn), rec, 300)
    assert ("operator", "hitem3d.texture_task") in drawn
    shown = " ".join(text for kind, text in drawn if kind == "label")
    # The texture step of a staged generation has no figure of its own: from the least any
    # source quotes to the textured price. After one 20-credit task:
    assert "Estimated cost: 5 to 15 credits; balance after: 965 credits or more" in shown


# -- light removal -------------------------------------------------------------------------------


def test_light_removal_is_sent_as_the_shading_field(addon: ModuleType, prefs: Any, sim: Hitem3DSimulator,
                                                    gen: Any, pictures: dict[str, Path]) -> None:
    gen.image_path = str(pictures["front"])
    gen.remove_lighting, gen.shading = True, 0.5
    bpy.ops.hitem3d.submit_generation()
    gen.remove_lighting = False
    bpy.ops.hitem3d.submit_generation()
    first, second = sim.submissions
    assert first.fields["shading"] == "0.5" and "shading" not in second.fields


def test_light_removal_is_offered_only_where_the_model_has_it(addon: ModuleType, prefs: Any,
                                                              sim: Hitem3DSimulator, gen: Any,
                                                              pictures: dict[str, Path]) -> None:
    gen.model, gen.remove_lighting = "hitem3dv1.5", True
    assert "remove_lighting" not in [name for kind, name in draw_panel(addon) if kind == "prop"]
    gen.image_path = str(pictures["front"])
    bpy.ops.hitem3d.submit_generation()
    assert "shading" not in sim.submissions[0].fields


# -- pictures in ---------------------------------------------------------------------------------


class FakeArea:
    def __init__(self, kind: str) -> None:
        self.type = kind


def test_a_picture_drop_target_is_registered_for_the_3d_viewport(addon: ModuleType) -> None:
    if not hasattr(bpy.types, "FileHandler"):
        pytest.skip("this Blender has no file handler API")
    handler = bpy.types.HITEM3D_FH_picture
    assert handler.bl_import_operator == "hitem3d.generate_from_picture"
    assert set(handler.bl_file_extensions.split(";")) == {".png", ".jpeg", ".jpg", ".webp"}
    assert handler.poll_drop(type("Context", (), {"area": FakeArea("VIEW_3D")})())
    assert not handler.poll_drop(type("Context", (), {"area": FakeArea("IMAGE_EDITOR")})())
    assert not handler.poll_drop(type("Context", (), {"area": None})())


def test_a_dropped_picture_starts_a_new_generation_with_it(addon: ModuleType, prefs: Any,
                                                           sim: Hitem3DSimulator, gen: Any,
                                                           pictures: dict[str, Path]) -> None:
    folder = pictures["front"].parent
    result = bpy.ops.hitem3d.generate_from_picture(
        directory=str(folder), files=[{"name": "left.png"}, {"name": "front.png"}])
    assert result == {"FINISHED"}
    [sent] = sim.submissions
    assert [data for _, _, _, data in sent.files] == [(folder / "left.png").read_bytes()]
    assert gen.image_path == str(folder / "left.png") and gen.mode == "SINGLE" and gen.source == "FILE"
    assert list(addon.engine.history.book())[0].state.value == "done"


def test_a_dropped_file_that_is_not_a_picture_is_refused(addon: ModuleType, prefs: Any, sim: Hitem3DSimulator,
                                                         gen: Any, tmp_path: Path) -> None:
    text = tmp_path / "notes.txt"
    text.write_text("hello")
    assert "not a PNG, JPEG or WebP file" in error_of(bpy.ops.hitem3d.generate_from_picture, filepath=str(text))
    assert sim.count(SUBMIT) == 0


def test_use_current_view_explains_background_mode(addon: ModuleType, gen: Any) -> None:
    assert bpy.app.background
    for view in ("VIEWPORT", "CAMERA"):
        message = error_of(bpy.ops.hitem3d.use_current_view, view=view)
        assert "needs Blender's window" in message and "Render Result" in message


def test_use_current_view_makes_the_drawn_view_the_picture(addon: ModuleType, gen: Any,
                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    picture_input = module(addon, "ui.picture_input")
    drawn = bpy.data.images.new("Drawn view", 16, 8)
    drawn.pixels[:] = [0.2, 0.4, 0.6, 1.0] * (16 * 8)
    calls: list[bool] = []

    def draw_view(context: Any, *, viewport: bool) -> bpy.types.Image:
        calls.append(viewport)
        return drawn

    monkeypatch.setattr(picture_input, "can_draw", lambda: True)
    monkeypatch.setattr(picture_input, "draw_view", draw_view)
    gen.mode = "VIEWS"
    scene_camera = bpy.context.scene.camera
    bpy.context.scene.camera = None
    try:
        assert "no active camera" in error_of(bpy.ops.hitem3d.use_current_view, view="CAMERA")
    finally:
        bpy.context.scene.camera = scene_camera
    camera = bpy.data.objects.new("Cam", bpy.data.cameras.new("Cam"))
    bpy.context.scene.collection.objects.link(camera)
    bpy.context.scene.camera = camera
    try:
        assert bpy.ops.hitem3d.use_current_view(view="CAMERA") == {"FINISHED"}
    finally:
        bpy.context.scene.camera = scene_camera
        bpy.data.images.remove(drawn)
    assert calls == [False]
    saved = Path(gen.image_path)
    assert saved.parent == module(addon, "scene.picture_export").uploads_dir() and saved.suffix == ".png"
    assert saved.read_bytes()[:8] == png_bytes()[:8]
    assert (gen.mode, gen.source) == ("SINGLE", "FILE")


def test_the_panel_offers_use_current_view(addon: ModuleType, gen: Any) -> None:
    assert ("operator", "hitem3d.use_current_view") in draw_panel(addon)


# -- the new kinds' buttons spend credits too ----------------------------------------------------


@pytest.fixture
def kind_settings(addon: ModuleType) -> Iterator[Any]:
    from tests.blender.test_generate import reset_settings

    yield reset_settings(bpy.context.scene.hitem3d_kinds)


def drawn_labels(panel: Any) -> str:
    from tests.blender.test_generate import FakeLayout

    drawn: list[tuple[str, str]] = []
    panel.draw(type("Panel", (), {"layout": FakeLayout(drawn)})(), bpy.context)
    return " ".join(text for kind, text in drawn if kind == "label")


def test_the_parts_and_relief_buttons_show_their_estimates(addon: ModuleType, kind_settings: Any) -> None:
    parts = drawn_labels(bpy.types.HITEM3D_PT_parts)
    assert parts.count("Estimated cost: 20 credits") == 2  # split, multicolour
    assert "Estimated cost: unknown" in parts  # segmentation is not on the price list
    assert "Estimated cost: 10 credits" in drawn_labels(bpy.types.HITEM3D_PT_relief)


def test_a_relief_is_not_sent_when_the_known_balance_is_too_low(addon: ModuleType, prefs: Any,
                                                                 sim: Hitem3DSimulator, kind_settings: Any,
                                                                 tmp_path: Path) -> None:
    picture = tmp_path / "coin.png"
    picture.write_bytes(png_bytes())
    kind_settings.image_path = str(picture)
    sim.balance = 4.0
    bpy.ops.hitem3d.refresh_balance()
    assert "at least 10 needed, 4 left (6 missing)" in error_of(bpy.ops.hitem3d.make_relief)
    assert sim.submissions == []


def test_the_command_line_estimates_a_split_and_refuses_it_without_credits(addon: ModuleType, prefs: Any,
                                                                          sim: Hitem3DSimulator,
                                                                          sample_glb: Path) -> None:
    import io

    sim.balance = 12.0
    out, err = io.StringIO(), io.StringIO()
    code = addon.ui.cli.main(["split", str(sample_glb)], out=out, err=err)
    assert code == addon.ui.cli.EXIT_CREDITS
    assert "Estimated cost: 20 credits" in err.getvalue() and "(8 missing)" in err.getvalue()
    assert sim.submissions == []


def test_texture_selection_in_a_window_places_the_result_after_the_timer_imports_it(
        interactive: ModuleType, prefs: Any, sim: Hitem3DSimulator, gen: Any, pictures: dict[str, Path],
        chair: bpy.types.Object) -> None:
    from tests.blender.test_generate import tick_until

    gen.model, gen.image_path = "hitem3dv1.5", str(pictures["front"])
    assert bpy.ops.hitem3d.texture_selection() == {"FINISHED"}  # returns at once, as in the UI
    tick_until(interactive, lambda: any(rec.state.is_terminal for rec in interactive.engine.history.book()),
               limit=6000)
    [rec] = list(interactive.engine.history.book())
    assert rec.state.value == "done", rec.message
    assert sorted(rec.imported_objects) == ["Chair textured", "Chair textured 2"]
    box = module(interactive, "scene.placement").world_box([bpy.data.objects[name] for name in rec.imported_objects])
    assert box.bottom_center.x == pytest.approx(1.0 + 2.0 * 1.25, abs=1e-4)
    assert exports(interactive) == []
