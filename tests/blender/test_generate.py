"""New Generation, in real Blender against the simulator: from an image file,
views or an image in Blender, to a model in the scene; the checks before
sending; the balance; texturing a geometry-only result."""

from __future__ import annotations

import itertools
import struct
import time
import zlib
from pathlib import Path
from types import ModuleType
from typing import Any, Callable, Iterator

import bpy
import pytest

from tests.support.blender_helpers import TASK_ID, imported_objects, record_of
from tests.support.simulator import Fault, Hitem3DSimulator

VIEWS = ("front", "back", "left", "right")
WITH_FRONT = [combo for n in range(1, 5) for combo in itertools.combinations(VIEWS, n) if "front" in combo]
SUBMIT = "/open-api/v1/submit-task"
BALANCE = "/open-api/v1/balance"


def png_bytes(width: int = 8, height: int = 8, rgba: tuple[int, int, int, int] = (51, 128, 204, 255)) -> bytes:
    """A real PNG, built by hand (what a user's file would be)."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    rows = b"".join(b"\0" + bytes(rgba) * width for _ in range(height))
    header = struct.pack(">IIBBBBB", width, height, 8, 6, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(rows)) + chunk(b"IEND", b"")


@pytest.fixture
def pictures(tmp_path: Path) -> dict[str, Path]:
    """One picture per view, each a different colour."""
    paths = {}
    for index, view in enumerate(VIEWS):
        path = tmp_path / f"{view}.png"
        path.write_bytes(png_bytes(rgba=(40 * index, 100, 200, 255)))
        paths[view] = path
    return paths


def reset_settings(props: Any) -> Any:
    """A property group back to its defaults."""
    for name in props.bl_rna.properties.keys():
        if name not in ("rna_type", "name"):
            props.property_unset(name)
    return props


@pytest.fixture
def gen(addon: ModuleType) -> Iterator[Any]:
    """The scene's New Generation settings, back to their defaults."""
    props = reset_settings(bpy.context.scene.hitem3d_generate)
    props.model = "hitem3dv2.1"  # sets the model's default resolution
    yield props


@pytest.fixture
def interactive(addon: ModuleType, monkeypatch: pytest.MonkeyPatch) -> ModuleType:
    """Operators return at once, as in Blender's UI; tests drive the timer."""
    monkeypatch.setattr(addon.engine.state, "runs_to_end", lambda: False)
    return addon


def tick_until(addon: ModuleType, condition: Callable[[], bool], limit: int = 2000) -> None:
    for _ in range(limit):
        addon.engine.timer.tick()
        if condition():
            return
        time.sleep(0.01)
    raise AssertionError("never got there")


def only_task(addon: ModuleType) -> Any:
    [rec] = list(addon.engine.history.book())
    return rec


def submit_error() -> str:
    with pytest.raises(RuntimeError) as info:
        bpy.ops.hitem3d.submit_generation()
    return str(info.value)


# -- settings ----------------------------------------------------------------------------------


def test_resolution_choices_follow_the_model(gen: Any) -> None:
    gen.model = "hitem3dv1.5"
    assert gen.resolution == "1024"
    gen.resolution = "512"
    gen.model = "hi3dv3.0"
    assert gen.resolution == "2048quality"
    with pytest.raises(TypeError):
        gen.resolution = "512"  # not a v3.0 resolution


def test_face_count_follows_the_model_range(gen: Any) -> None:
    gen.model = "hi3dv3.0"
    gen.face = 4_500_000
    gen.model = "hitem3dv2.0"
    assert gen.face == 2_000_000


# -- one image, to a model in the scene ----------------------------------------------------------


def test_one_image_runs_through_to_an_imported_model(addon: ModuleType, prefs: Any, sim: Hitem3DSimulator,
                                                     gen: Any, pictures: dict[str, Path]) -> None:
    gen.image_path = str(pictures["front"])

    assert bpy.ops.hitem3d.submit_generation() == {"FINISHED"}

    [submission] = sim.submissions
    # The defaults of the vendor's client: v2.1, its first resolution, 500,000 faces, PBR.
    # format=2 is what makes the simulator's task a GLB (its default is OBJ).
    assert submission.fields == {"request_type": "3", "model": "hitem3dv2.1", "resolution": "1536fast",
                                 "format": "2", "face": "500000", "pbr": "1"}
    # The picture under a neutral name (it has no metadata to strip).
    assert submission.files == [("images", "image.png", "image/png", pictures["front"].read_bytes())]
    rec = record_of(addon, submission.task_id)
    assert rec.state.value == "done" and rec.model == "hitem3dv2.1"
    assert rec.generation["request_type"] == 3
    objects = imported_objects(submission.task_id)
    assert len(objects) == 2 and all(obj["hitem3d_model"] == "hitem3dv2.1" for obj in objects)


def test_a_submitted_task_is_in_the_list_and_the_journal(addon: ModuleType, prefs: Any, sim: Hitem3DSimulator,
                                                         gen: Any, pictures: dict[str, Path]) -> None:
    gen.image_path = str(pictures["front"])
    bpy.ops.hitem3d.submit_generation()

    task_id = sim.submissions[0].task_id
    wm = bpy.context.window_manager.hitem3d
    assert [item.task_id for item in wm.tasks] == [task_id] and wm.active_index == 0
    assert task_id in addon.engine.files.journal_path().read_text()


# -- views ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("views", WITH_FRONT, ids="-".join)
def test_views_are_sent_in_order_with_the_matching_bit_mask(interactive: ModuleType, prefs: Any,
                                                            sim: Hitem3DSimulator, gen: Any,
                                                            pictures: dict[str, Path],
                                                            views: tuple[str, ...]) -> None:
    sim.default_states = ("processing",)
    gen.mode = "VIEWS"
    for view in views:
        setattr(gen, f"{view}_path", str(pictures[view]))

    assert bpy.ops.hitem3d.submit_generation() == {"FINISHED"}
    tick_until(interactive, lambda: len(interactive.engine.history.book()) == 1)

    [submission] = sim.submissions
    assert submission.fields["multi_images_bit"] == "".join("1" if view in views else "0" for view in VIEWS)
    assert [(name, filename, data) for name, filename, _, data in submission.files] == [
        ("multi_images", f"{view}.png", pictures[view].read_bytes()) for view in VIEWS if view in views
    ]


# -- checks before sending ---------------------------------------------------------------------------


@pytest.mark.parametrize(("setup", "message"), [
    (lambda gen, p: None, "Add an image to generate from"),
    (lambda gen, p: setattr(gen, "image_path", str(p["front"].with_name("gone.png"))), "Image: file not found"),
    (lambda gen, p: setattr(gen, "image_path", str(p["gif"])), "Image: photo.gif is not a PNG, JPEG or WebP file"),
    (lambda gen, p: setattr(gen, "image_path", str(p["big"])),
     "Image: big.png is 21.0 MB; Hitem3D accepts at most 20 MB per image"),
    (lambda gen, p: (setattr(gen, "mode", "VIEWS"), setattr(gen, "back_path", str(p["back"]))),
     "Views need a front view: add an image in the Front slot"),
    (lambda gen, p: (setattr(gen, "image_path", str(p["front"])), setattr(gen, "face", 3_000_000)),
     "Face count 3,000,000 is out of range for Hitem3D v2.1: 100,000 to 2,000,000"),
], ids=["no-image", "missing", "type", "size", "no-front", "faces"])
def test_problems_are_found_before_any_request(addon: ModuleType, prefs: Any, sim: Hitem3DSimulator, gen: Any,
                                               pictures: dict[str, Path], tmp_path: Path, setup: Any,
                                               message: str) -> None:
    gif = tmp_path / "photo.gif"
    gif.write_bytes(b"GIF89a")
    big = tmp_path / "big.png"
    with big.open("wb") as stream:
        stream.truncate(21_000_000)  # decimal megabytes, as Hitem3D's limit
    setup(gen, {**pictures, "gif": gif, "big": big})

    assert message in submit_error()

    assert sim.requests == []
    assert message in str(addon.ui.submit_calls.notice("generate"))
    assert len(addon.engine.history.book()) == 0


def test_a_text_file_named_png_is_refused_by_its_bytes_before_any_request(addon: ModuleType, prefs: Any,
                                                                          sim: Hitem3DSimulator, gen: Any,
                                                                          tmp_path: Path) -> None:
    notes = tmp_path / "notes.png"
    notes.write_text("not a picture at all\n")
    gen.image_path = str(notes)

    assert "Image: notes.png is not a PNG, JPEG or WebP file" in submit_error()

    assert sim.requests == [] and len(addon.engine.history.book()) == 0


def test_a_blender_image_whose_file_is_not_a_picture_is_refused_before_any_request(
        addon: ModuleType, prefs: Any, sim: Hitem3DSimulator, gen: Any, tmp_path: Path) -> None:
    notes = tmp_path / "notes.png"
    notes.write_text("not a picture at all\n")
    image = bpy.data.images.load(str(notes))
    gen.source = "IMAGE"
    gen.image = image
    try:
        assert "Image 'notes.png' holds no picture Blender can read: choose another image" in submit_error()
    finally:
        bpy.data.images.remove(image)

    assert sim.requests == [] and len(addon.engine.history.book()) == 0


def test_a_relief_picture_is_judged_by_its_bytes_too(addon: ModuleType, prefs: Any, sim: Hitem3DSimulator,
                                                    tmp_path: Path) -> None:
    notes = tmp_path / "coin.png"
    notes.write_text("not a picture at all\n")
    props = bpy.context.scene.hitem3d_kinds
    props.picture_source, props.image_path = "FILE", str(notes)
    try:
        with pytest.raises(RuntimeError) as info:
            bpy.ops.hitem3d.make_relief()
    finally:
        props.property_unset("image_path")
    assert "Picture: coin.png is not a PNG, JPEG or WebP file" in str(info.value)
    assert sim.requests == []


def test_the_first_spend_fetches_the_balance_and_sends_nothing_it_cannot_cover(
        addon: ModuleType, prefs: Any, sim: Hitem3DSimulator, gen: Any, pictures: dict[str, Path]) -> None:
    sim.balance = 10.0
    gen.resolution, gen.image_path = "1536pro", str(pictures["front"])  # 45 credits
    assert addon.ui.submit_calls.balance_status() is None  # not checked yet this session

    message = submit_error()

    assert "Not enough credits: at least 45 needed, 10 left (35 missing)" in message
    assert "(35 missing)" in str(addon.ui.submit_calls.notice("generate"))
    assert len(addon.engine.history.book()) == 0 and sim.submissions == []
    assert [r.path for r in sim.requests if r.path in (SUBMIT, BALANCE)] == [BALANCE]
    assert addon.ui.submit_calls.balance_status().credits == 10.0  # the balance shows how many are left


def test_the_first_spend_fetches_the_balance_without_the_main_thread_waiting(
        interactive: ModuleType, prefs: Any, sim: Hitem3DSimulator, gen: Any, pictures: dict[str, Path]) -> None:
    sim.default_states = ("processing",)
    sim.inject(BALANCE, Fault.delay(1.0))
    gen.image_path = str(pictures["front"])

    started = time.monotonic()
    assert bpy.ops.hitem3d.submit_generation() == {"FINISHED"}
    assert time.monotonic() - started < 0.5  # press: the operator returns at once

    [pending] = interactive.ui.submit_calls.pending_submissions()
    assert interactive.ui.submit_calls.stage_of(pending.key).value == "balance"
    assert sim.count(SUBMIT) == 0
    tick_until(interactive, lambda: not interactive.ui.submit_calls.pending_submissions())  # fetch, then send
    assert [r.path for r in sim.requests if r.path in (SUBMIT, BALANCE)][:2] == [BALANCE, SUBMIT]


def test_a_request_on_its_way_is_shown_under_the_button_that_sent_it(
        interactive: ModuleType, prefs: Any, sim: Hitem3DSimulator, gen: Any, pictures: dict[str, Path]) -> None:
    """Not at the end of the panel: New Generation is taller than a default
    window's sidebar, and the row was out of view (seen in the real window)."""
    sim.inject(BALANCE, Fault.delay(1.0))
    gen.image_path = str(pictures["front"])
    assert bpy.ops.hitem3d.submit_generation() == {"FINISHED"}

    drawn = draw_panel(interactive)
    line = next(index for index, (_, text) in enumerate(drawn) if text.startswith("Checking the balance"))
    assert (drawn.index(("operator", "hitem3d.submit_generation")) < line
            < drawn.index(("operator", "hitem3d.texture_selection")))
    assert [text for _, text in drawn].count(drawn[line][1]) == 1  # once: not again at the end
    tick_until(interactive, lambda: not interactive.ui.submit_calls.pending_submissions())


def test_hitem3d_refusing_for_credits_is_shown_as_a_likely_cause(addon: ModuleType, prefs: Any,
                                                                sim: Hitem3DSimulator, gen: Any,
                                                                pictures: dict[str, Path]) -> None:
    sim.balance, sim.submit_cost = 50.0, 60.0  # enough for our estimate, not for Hitem3D
    gen.image_path = str(pictures["front"])

    message = submit_error()

    assert "Hitem3D answered: balance is not enough (code 30010000); likely cause: not enough credits" in message
    assert "likely cause: not enough credits" in str(addon.ui.submit_calls.notice("generate"))
    assert len(addon.engine.history.book()) == 0


def test_a_failed_submission_shows_in_the_panel_notice(interactive: ModuleType, prefs: Any,
                                                       sim: Hitem3DSimulator, gen: Any,
                                                       pictures: dict[str, Path]) -> None:
    sim.submit_cost = 5000.0
    gen.image_path = str(pictures["front"])
    bpy.ops.hitem3d.submit_generation()

    tick_until(interactive, lambda: not interactive.ui.submit_calls.pending_submissions())

    assert "likely cause: not enough credits" in str(interactive.ui.submit_calls.notice("generate"))
    assert not interactive.ui.submit_calls.notice("parts") and not interactive.ui.submit_calls.notice("relief")


def test_offline_nothing_is_sent(addon: ModuleType, prefs: Any, sim: Hitem3DSimulator, gen: Any,
                                 pictures: dict[str, Path]) -> None:
    bpy.context.preferences.system.use_online_access = False
    gen.image_path = str(pictures["front"])
    assert "Online access is off" in submit_error()
    assert sim.requests == []


# -- pending, thumbnail --------------------------------------------------------------------------------


def test_a_pending_submission_is_visible_until_answered(interactive: ModuleType, prefs: Any,
                                                        sim: Hitem3DSimulator, gen: Any,
                                                        pictures: dict[str, Path]) -> None:
    sim.default_states = ("processing",)
    sim.inject(SUBMIT, Fault.delay(0.5))
    gen.image_path = str(pictures["front"])

    assert bpy.ops.hitem3d.submit_generation() == {"FINISHED"}

    [pending] = interactive.ui.submit_calls.pending_submissions()
    assert str(pending.submission.describe()) == "Generate from front.png (Hitem3D v2.1)"
    # The first spend of the session asks for the balance first.
    assert str(interactive.ui.generate.balance_text(interactive.ui.submit_calls.balance_status())) == "Balance: checking…"
    tick_until(interactive, lambda: interactive.ui.submit_calls.stage_of(pending.key).value == "sending")
    assert str(interactive.ui.submit_calls.line_of(pending)) == "Submitting… Generate from front.png (Hitem3D v2.1)"
    tick_until(interactive, lambda: not interactive.ui.submit_calls.pending_submissions())
    assert len(interactive.engine.history.book()) == 1


def test_the_submitted_image_is_the_thumbnail_until_the_cover_arrives(interactive: ModuleType, prefs: Any,
                                                                      sim: Hitem3DSimulator, gen: Any,
                                                                      pictures: dict[str, Path]) -> None:
    sim.default_states = ("processing",) * 5 + ("success",)
    gen.image_path = str(pictures["front"])
    bpy.ops.hitem3d.submit_generation()

    tick_until(interactive, lambda: len(interactive.engine.history.book()) == 1)
    rec = only_task(interactive)
    assert rec.cover_path == str(pictures["front"])
    preview = interactive.ui.ui_sync.cover_preview(rec)
    assert tuple(preview.image_size) == (8, 8)  # the submitted picture really loaded

    tick_until(interactive, lambda: rec.state.value == "done")
    assert rec.cover_path == str(interactive.engine.files.cover_path(rec.task_id))
    assert Path(rec.cover_path).read_bytes()[8:12] == b"WEBP"  # Hitem3D's cover replaced it


# -- images in Blender ---------------------------------------------------------------------------------


def test_an_image_in_blender_is_saved_and_sent_as_png_with_its_pixels(addon: ModuleType, prefs: Any,
                                                                      sim: Hitem3DSimulator, gen: Any,
                                                                      tmp_path: Path) -> None:
    image = bpy.data.images.new("Concept Art", 4, 4, alpha=True)
    image.pixels[:] = [0.2, 0.5, 0.8, 1.0] * 16
    gen.source = "IMAGE"
    gen.image = image

    assert bpy.ops.hitem3d.submit_generation() == {"FINISHED"}

    [(name, filename, content_type, data)] = sim.submissions[0].files
    assert name == "images" and filename == "image.png"  # not the datablock's name
    assert content_type == "image/png" and data.startswith(b"\x89PNG\r\n\x1a\n")
    sent = tmp_path / "sent.png"
    sent.write_bytes(data)
    loaded = bpy.data.images.load(str(sent))
    assert [round(v, 2) for v in loaded.pixels[:4]] == [0.2, 0.5, 0.8, 1.0]  # no view transform added
    assert bpy.context.scene.render.image_settings.file_format == "PNG"  # the artist's settings untouched
    assert len(bpy.data.scenes) == 1
    bpy.data.images.remove(loaded)
    bpy.data.images.remove(image)


def test_a_packed_image_is_sent_as_its_own_bytes(addon: ModuleType, prefs: Any, sim: Hitem3DSimulator,
                                                 gen: Any, pictures: dict[str, Path]) -> None:
    image = bpy.data.images.load(str(pictures["left"]))
    image.pack()
    gen.source = "IMAGE"
    gen.image = image

    bpy.ops.hitem3d.submit_generation()

    [(_, filename, _, data)] = sim.submissions[0].files
    assert data == pictures["left"].read_bytes() and filename.endswith(".png")
    bpy.data.images.remove(image)


def test_the_render_result_is_sent_as_png(addon: ModuleType, prefs: Any, sim: Hitem3DSimulator,
                                          gen: Any) -> None:
    scene = bpy.context.scene
    saved = (scene.render.engine, scene.render.resolution_x, scene.render.resolution_y,
             scene.render.resolution_percentage, scene.render.image_settings.file_format)
    camera = bpy.data.objects.new("Camera", bpy.data.cameras.new("Camera"))
    scene.collection.objects.link(camera)
    scene.camera = camera
    try:
        scene.render.engine = "CYCLES"
        scene.cycles.samples = 1
        scene.cycles.device = "CPU"
        scene.render.resolution_x = scene.render.resolution_y = 16
        scene.render.resolution_percentage = 100
        scene.render.image_settings.file_format = "OPEN_EXR"  # the artist renders EXR
        bpy.ops.render.render()
        gen.source = "IMAGE"
        gen.image = bpy.data.images["Render Result"]

        assert bpy.ops.hitem3d.submit_generation() == {"FINISHED"}
        assert scene.render.image_settings.file_format == "OPEN_EXR"  # put back
    finally:
        (scene.render.engine, scene.render.resolution_x, scene.render.resolution_y,
         scene.render.resolution_percentage, scene.render.image_settings.file_format) = saved
        bpy.data.objects.remove(camera)

    [(_, filename, content_type, data)] = sim.submissions[0].files
    assert filename == "image.png" and content_type == "image/png"
    assert data.startswith(b"\x89PNG\r\n\x1a\n")
    assert struct.unpack(">II", data[16:24]) == (16, 16)


def test_views_from_blender_images(addon: ModuleType, prefs: Any, sim: Hitem3DSimulator, gen: Any) -> None:
    front = bpy.data.images.new("Front", 4, 4)
    right = bpy.data.images.new("Right", 4, 4)
    gen.mode, gen.source = "VIEWS", "IMAGE"
    gen.front_image, gen.right_image = front, right

    bpy.ops.hitem3d.submit_generation()

    submission = sim.submissions[0]
    assert submission.fields["multi_images_bit"] == "1001"
    assert [filename for _, filename, _, _ in submission.files] == ["front.png", "right.png"]
    bpy.data.images.remove(front)
    bpy.data.images.remove(right)


# -- the balance ----------------------------------------------------------------------------------------


def test_balance_is_shown_after_refresh(addon: ModuleType, prefs: Any, sim: Hitem3DSimulator) -> None:
    sim.balance = 1234.5

    assert bpy.ops.hitem3d.refresh_balance() == {"FINISHED"}

    status = addon.ui.submit_calls.balance_status()
    assert status.credits == 1234.5 and not status.error
    assert str(addon.ui.generate.balance_text(status)) == "Balance: 1,234.5 credits"


def test_balance_refresh_without_credentials_says_why(addon: ModuleType, prefs: Any,
                                                      sim: Hitem3DSimulator) -> None:
    prefs.client_id = ""
    with pytest.raises(RuntimeError):
        bpy.ops.hitem3d.refresh_balance()
    assert str(addon.ui.submit_calls.balance_status().error).startswith("No Hitem3D credentials")
    assert sim.requests == []


def test_balance_is_refreshed_after_a_submission(interactive: ModuleType, prefs: Any, sim: Hitem3DSimulator,
                                                 gen: Any, pictures: dict[str, Path]) -> None:
    sim.default_states = ("processing",)
    bpy.ops.hitem3d.refresh_balance()
    tick_until(interactive, lambda: interactive.ui.submit_calls.balance_status().credits == 1000.0)
    gen.image_path = str(pictures["front"])

    bpy.ops.hitem3d.submit_generation()
    tick_until(interactive, lambda: interactive.ui.submit_calls.balance_status().credits == 1000.0 - sim.submit_cost)

    paths = [r.path for r in sim.requests if r.path in (SUBMIT, BALANCE)]
    assert paths == [BALANCE, SUBMIT, BALANCE]


# -- texturing a geometry-only result ----------------------------------------------------------------------


def test_a_geometry_only_result_can_be_textured(addon: ModuleType, prefs: Any, sim: Hitem3DSimulator, gen: Any,
                                                pictures: dict[str, Path]) -> None:
    gen.model = "hi3dv3.0"
    gen.request_type = "GEOMETRY"
    gen.image_path = str(pictures["front"])
    bpy.ops.hitem3d.submit_generation()
    first = sim.submissions[0]
    assert "pbr" not in first.fields and first.fields["request_type"] == "1"
    rec = record_of(addon, first.task_id)
    assert addon.core.submission.texture_offered(rec)
    old_urls = {r.path for r in sim.requests if r.path.endswith(".glb")}
    sim.expire_urls()  # an hour later: the first link is dead

    assert bpy.ops.hitem3d.texture_task(task_id=first.task_id) == {"FINISHED"}

    second = sim.submissions[1]
    assert second.fields["request_type"] == "2" and second.fields["model"] == "hi3dv3.0"
    assert "face" not in second.fields
    mesh_path = second.fields["mesh_url"].split("://", 1)[1].split("/", 1)[1].split("?")[0]
    assert "/" + mesh_path not in old_urls  # a fresh link, from a query just before sending
    queries = [r for r in sim.requests if r.query.get("task_id") == first.task_id]
    assert queries[-1].time <= [r for r in sim.requests if r.path == SUBMIT][-1].time
    assert second.files == [("images", "image.png", "image/png", pictures["front"].read_bytes())]
    textured = record_of(addon, second.task_id)
    assert textured.state.value == "done" and textured.generation["request_type"] == 2
    assert not addon.core.submission.texture_offered(textured)


def test_texture_is_refused_for_a_task_imported_by_id(addon: ModuleType, prefs: Any, sim: Hitem3DSimulator,
                                                      sample_glb: Path) -> None:
    sim.add_task(TASK_ID, ["success"], glb=sample_glb)
    bpy.ops.hitem3d.import_task(task_id=TASK_ID)

    with pytest.raises(RuntimeError) as info:
        bpy.ops.hitem3d.texture_task(task_id=TASK_ID)

    assert "Only a finished geometry-only task" in str(info.value)
    assert sim.count(SUBMIT) == 0


# -- what the panel draws ---------------------------------------------------------------------------------


class FakeLayout:
    """Stands in for ``UILayout`` (background Blender draws no panels): records
    what is drawn and fails on a property, operator or icon that does not exist."""

    ICONS = frozenset(bpy.types.UILayout.bl_rna.functions["label"].parameters["icon"].enum_items.keys())

    def __init__(self, drawn: list[tuple[str, str]]) -> None:
        self.drawn = drawn

    def _icon(self, icon: str) -> None:
        assert icon in self.ICONS, icon

    def row(self, **_: Any) -> FakeLayout:
        return FakeLayout(self.drawn)

    column = box = row

    def label(self, text: str = "", icon: str = "NONE", **_: Any) -> None:
        self._icon(icon)
        self.drawn.append(("label", text))

    def prop(self, data: Any, name: str, icon: str = "NONE", **_: Any) -> None:
        assert name in data.bl_rna.properties, name
        self._icon(icon)
        self.drawn.append(("prop", name))

    def operator(self, idname: str, icon: str = "NONE", **_: Any) -> Any:
        module, name = idname.split(".")
        getattr(getattr(bpy.ops, module), name).get_rna_type()  # raises for an unknown operator
        self._icon(icon)
        self.drawn.append(("operator", idname))
        return type("OperatorProperties", (), {})()

    def __getattr__(self, name: str) -> Any:  # template_icon, progress, separator...
        return lambda *args, **kwargs: self.drawn.append((name, ""))


def draw_panel(addon: ModuleType) -> list[tuple[str, str]]:
    drawn: list[tuple[str, str]] = []
    panel = type("Panel", (), {"layout": FakeLayout(drawn)})()
    bpy.types.HITEM3D_PT_generate.draw(panel, bpy.context)
    return drawn


def labels(addon: ModuleType) -> str:
    """Every label of the panel as one text (long ones wrap over several)."""
    return " ".join(text for kind, text in draw_panel(addon) if kind == "label")


def test_the_panel_offers_one_image_and_the_options(addon: ModuleType, gen: Any) -> None:
    drawn = draw_panel(addon)
    props = [name for kind, name in drawn if kind == "prop"]
    assert props == ["mode", "source", "image_path", "model", "resolution", "request_type", "pbr",
                     "remove_lighting", "shading", "face"]
    assert ("label", "Balance: not checked yet") in drawn
    assert ("operator", "hitem3d.refresh_balance") in drawn and ("operator", "hitem3d.submit_generation") in drawn


def test_the_panel_offers_four_labelled_view_slots(addon: ModuleType, gen: Any) -> None:
    gen.mode, gen.source = "VIEWS", "IMAGE"
    gen.request_type = "GEOMETRY"
    props = [name for kind, name in draw_panel(addon) if kind == "prop"]
    assert props[2:6] == ["front_image", "back_image", "left_image", "right_image"]
    assert "pbr" not in props  # no texture, no PBR


def test_the_panel_shows_the_face_range_pending_work_and_problems(interactive: ModuleType, prefs: Any,
                                                                  sim: Hitem3DSimulator, gen: Any,
                                                                  pictures: dict[str, Path]) -> None:
    gen.face = 3_000_000
    assert ("label", "Hitem3D v2.1: 100,000 to 2,000,000 faces") in draw_panel(interactive)
    gen.face = 1_000_000
    sim.inject(SUBMIT, Fault.delay(0.3))
    gen.image_path = str(pictures["front"])
    bpy.ops.hitem3d.submit_generation()
    assert "Checking the balance before sending: Generate from front.png (Hitem3D v2.1)" in labels(interactive)
    assert ("operator", "hitem3d.cancel_send") in draw_panel(interactive)
    interactive.ui.submit_calls.set_notice("generate", interactive.core.messages.verbatim(
        "Image: x.gif is not a PNG, JPEG or WebP file"))
    assert "Image: x.gif is not a PNG, JPEG or WebP file" in labels(interactive)


def test_task_details_offer_texture_for_a_geometry_only_result(addon: ModuleType, prefs: Any,
                                                               sim: Hitem3DSimulator, gen: Any,
                                                               pictures: dict[str, Path]) -> None:
    gen.model, gen.request_type = "hitem3dv1.5", "GEOMETRY"
    gen.image_path = str(pictures["front"])
    bpy.ops.hitem3d.submit_generation()
    rec = only_task(addon)
    drawn: list[tuple[str, str]] = []

    addon.ui.panels.draw_details(FakeLayout(drawn), rec, 300)

    assert ("label", "Model: Hitem3D v1.5") in drawn  # as New Generation names it, not "hitem3dv1.5"
    assert ("operator", "hitem3d.texture_task") in drawn
