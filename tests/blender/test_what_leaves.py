"""What leaves the machine is what the artist chose, in real Blender: a picture
without its metadata decodes to the same pixels, a render leaves without the
.blend's path and the scene's name, and the first request of a session says
what goes where, once."""

from __future__ import annotations

from pathlib import Path
from types import ModuleType
from typing import Any

import bpy
import numpy as np
import pytest

from hitem3d_blender.core.picture_metadata import strip
from tests.blender.test_generate import gen, interactive, labels, pictures, tick_until  # noqa: F401
from tests.support import picture_factory
from tests.support.glb_factory import cached_webp
from tests.support.simulator import API, Fault, Hitem3DSimulator

WHAT_LEAVES = "What leaves this computer: pictures go to 127.0.0.1:"


def pixels(path: Path) -> np.ndarray:
    image = bpy.data.images.load(str(path))
    try:
        values = np.empty(len(image.pixels), dtype=np.float32)
        image.pixels.foreach_get(values)
        return values
    finally:
        bpy.data.images.remove(image)


@pytest.mark.parametrize("make", [
    picture_factory.png_with_metadata,
    lambda: picture_factory.jpeg_with_metadata(orientation=1),
    lambda: picture_factory.jpeg_with_metadata(orientation=6),
    lambda: picture_factory.webp_with_metadata(cached_webp(64).read_bytes(), orientation=1),
], ids=["png", "jpeg", "jpeg-rotated", "webp"])
def test_a_picture_without_its_metadata_is_the_same_picture_to_blender(addon: ModuleType, tmp_path: Path,
                                                                       make: Any) -> None:
    original: bytes = make()
    cleaned, kind = strip(original)
    before, after = tmp_path / f"before.{kind}", tmp_path / f"after.{kind}"
    before.write_bytes(original)
    after.write_bytes(cleaned)
    assert [s for s in picture_factory.SECRETS if s in cleaned] == []
    first, second = pixels(before), pixels(after)
    assert first.size > 0 and np.array_equal(first, second)


def test_a_render_leaves_without_the_blend_path_or_the_scene_name(addon: ModuleType, prefs: Any,
                                                                  sim: Hitem3DSimulator, gen: Any,
                                                                  tmp_path: Path) -> None:
    """Blender writes a render's metadata (file, scene, camera, date, a note) into the PNG it saves."""
    scene = bpy.context.scene
    saved = (scene.name, scene.render.engine, scene.render.resolution_x, scene.render.resolution_y,
             scene.render.resolution_percentage, scene.render.use_stamp_note, scene.camera)
    camera = bpy.data.objects.new("Hero_Cam_Client_X", bpy.data.cameras.new("Camera"))
    scene.collection.objects.link(camera)
    try:
        scene.name, scene.camera = "Unreleased_Shot", camera
        scene.render.engine = "CYCLES"
        scene.cycles.samples, scene.cycles.device = 1, "CPU"
        scene.render.resolution_x = scene.render.resolution_y = 16
        scene.render.resolution_percentage = 100
        scene.render.use_stamp_note, scene.render.stamp_note_text = True, "studio note: Client X"
        bpy.ops.render.render()
        render = bpy.data.images["Render Result"]
        written = tmp_path / "as_blender_saves_it.png"
        render.save_render(str(written), scene=scene)
        assert b"Unreleased_Shot" in written.read_bytes() and b"studio note" in written.read_bytes()
        gen.source, gen.image = "IMAGE", render
        assert bpy.ops.hitem3d.submit_generation() == {"FINISHED"}
    finally:
        (scene.name, scene.render.engine, scene.render.resolution_x, scene.render.resolution_y,
         scene.render.resolution_percentage, scene.render.use_stamp_note, scene.camera) = saved
        bpy.data.objects.remove(camera)
    [(_, filename, _, data)] = sim.submissions[0].files
    assert filename == "image.png" and data.startswith(b"\x89PNG")
    for secret in (b"Unreleased_Shot", b"studio note", b"Hero_Cam", b"tEXt", b"<untitled>"):
        assert secret not in data, secret


def test_the_first_request_of_a_session_says_what_leaves_once(interactive: ModuleType, prefs: Any,
                                                              sim: Hitem3DSimulator, gen: Any,
                                                              pictures: dict[str, Path],
                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    posted: list[str] = []
    ui_sync = interactive.ui.submit_calls.ui_sync
    real = ui_sync.post_report
    monkeypatch.setattr(ui_sync, "post_report", lambda message, level: (posted.append(str(message)),
                                                                        real(message, level)))
    assert WHAT_LEAVES in labels(interactive)  # before anything is sent: in the panel
    assert "to Hitem3D's storage (127.0.0.1:" in labels(interactive)  # where it really goes (the override)
    gen.image_path = str(pictures["front"])

    bpy.ops.hitem3d.submit_generation()
    # Answered: Generate is inactive while its request is on its way.
    tick_until(interactive, lambda: len(sim.submissions) == 1 and not interactive.ui.submit_calls.pending_submissions())
    bpy.ops.hitem3d.submit_generation()
    tick_until(interactive, lambda: len(sim.submissions) == 2)

    said = [text for text in posted if text.startswith(WHAT_LEAVES)]
    assert len(said) == 1 and "without their metadata (EXIF, GPS, text) or file names" in said[0]
    assert WHAT_LEAVES not in labels(interactive)  # said once: the panel no longer repeats it


def test_the_panel_says_what_leaves_until_the_first_request_is_answered(interactive: ModuleType, prefs: Any,
                                                                       sim: Hitem3DSimulator, gen: Any,
                                                                       pictures: dict[str, Path]) -> None:
    """Not only until it leaves: gone at the press, the statement moved what
    was below it up under the mouse, and a double click's second click landed
    there (on Texture Selection, say)."""
    calls = interactive.ui.submit_calls
    sim.inject(f"{API}/submit-task", Fault.delay(1.0))
    gen.image_path = str(pictures["front"])
    bpy.ops.hitem3d.submit_generation()
    tick_until(interactive, lambda: any(calls.stage_of(p.key).value == "sending" for p in calls.pending_submissions()))
    assert WHAT_LEAVES in labels(interactive)  # on its way: still said
    tick_until(interactive, lambda: not calls.pending_submissions())
    assert len(sim.submissions) == 1 and WHAT_LEAVES not in labels(interactive)


def test_texture_selection_says_beside_its_button_what_it_uploads_and_where(addon: ModuleType, gen: Any,
                                                                            sim: Hitem3DSimulator) -> None:
    gen.model = "hitem3dv1.5"
    host = sim.storage_url.removeprefix("http://")
    assert (f"Uploads the selected meshes as one GLB, without their names, to Hitem3D's storage ({host}); "
            f"Hitem3D reads it from 127.0.0.1:") in labels(addon)


def test_an_unusable_storage_address_is_shown_beside_the_button_and_nothing_is_exported(
        addon: ModuleType, prefs: Any, sim: Hitem3DSimulator, gen: Any, pictures: dict[str, Path],
        monkeypatch: pytest.MonkeyPatch) -> None:
    from tests.blender.test_mesh_export import cube, select_only

    monkeypatch.setenv("HITEM3D_UPLOAD_ENDPOINT", "http://storage.example.com")
    gen.model, gen.image_path = "hitem3dv1.5", str(pictures["front"])
    assert "HITEM3D_UPLOAD_ENDPOINT must use https:// (http:// only for this computer)" in labels(addon)
    select_only(cube("Chair", (0.0, 0.0, 0.0)))
    with pytest.raises(RuntimeError, match="HITEM3D_UPLOAD_ENDPOINT must use https://"):
        bpy.ops.hitem3d.texture_selection()
    assert sim.requests == [] and list(addon.scene.mesh_export.exports_dir().iterdir()) == []
