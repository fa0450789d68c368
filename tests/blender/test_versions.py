"""Every Blender artists run, 4.2 LTS to 5.3: each gets the Python its bpy is
built for, the manifest, README, listing and CI agree on the range, and what
differs between versions is found at run time in each of them.

The first part needs no Blender session; the last part runs in whichever bpy
this suite runs on (`python build.py test --bpy X.Y`), so in CI it runs in every
version of the matrix.
"""

from __future__ import annotations

import json
import os
import re
import stat
from pathlib import Path
from types import ModuleType

import pytest

import build

REPO_ROOT = build.REPO_ROOT
FAKE = (3, 99)  # a Python nobody has, so the running interpreter never counts


def as_version(text: str) -> tuple[int, ...]:
    return tuple(int(part) for part in text.split("."))


SUPPORTED = sorted(build.BPY_ENVS, key=as_version)
OLDEST, NEWEST = SUPPORTED[0], SUPPORTED[-1]


def next_minor(version: str) -> str:
    major, minor = as_version(version)[:2]
    return f"{major}.{minor + 1}.0"


# -- build.py: one interpreter per Blender ---------------------------------------------------


def test_each_blender_gets_the_python_its_bpy_wheels_are_built_for() -> None:
    assert SUPPORTED == ["4.2", "4.5", "5.0", "5.1", "5.2", "5.3"]
    for version, env in build.BPY_ENVS.items():
        # Blender 5.1 moved to Python 3.13; bpy wheels exist for that one Python only.
        expected = (3, 13) if as_version(version) >= (5, 1) else (3, 11)
        assert env.python == expected, version
        pins = [line.split("#")[0].strip() for line in env.requirements.read_text(encoding="utf-8").splitlines()]
        assert f"bpy=={version}.*" in pins, env.requirements.name
    venvs = [env.venv_dir for env in build.BPY_ENVS.values()]
    assert len(set(venvs)) == len(venvs), "each Blender needs its own venv"


def fake_python(path: Path, prints: str, code: int = 0) -> Path:
    """An executable that answers build.py's probe like a Python would (or fails
    like a pyenv shim of a version that is not active)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(f"#!/bin/sh\necho '{prints}'\nexit {code}\n", encoding="utf-8")
    path.chmod(path.stat().st_mode | stat.S_IXUSR)
    return path


@pytest.fixture
def no_python_anywhere(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty PATH and pyenv root; returns the pyenv root to fill."""
    empty = tmp_path / "bin"
    empty.mkdir()
    monkeypatch.setenv("PATH", str(empty))
    monkeypatch.setenv("PYENV_ROOT", str(tmp_path / "pyenv"))
    return tmp_path / "pyenv"


@pytest.mark.skipif(os.name == "nt", reason="shell-script stand-ins for interpreters")
def test_an_inactive_pyenv_shim_is_passed_over_for_pyenvs_newest_install(
    no_python_anywhere: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # As on a machine whose pyenv has 3.13 installed but not active: the shim is
    # on PATH and exits with "command not found".
    shims = tmp_path / "shims"
    fake_python(shims / "python3.99", "pyenv: python3.99: command not found", code=127)
    monkeypatch.setenv("PATH", str(shims))
    fake_python(no_python_anywhere / "versions" / "3.99.2" / "bin" / "python3.99", "3 99 0")
    newest = fake_python(no_python_anywhere / "versions" / "3.99.10" / "bin" / "python3.99", "3 99 0")
    # A free-threaded build cannot load the bpy wheels.
    fake_python(no_python_anywhere / "versions" / "3.99.11t" / "bin" / "python3.99", "3 99 1")
    assert build.find_python(FAKE, "bpy 9.9") == str(newest)


@pytest.mark.skipif(os.name == "nt", reason="shell-script stand-ins for interpreters")
def test_an_interpreter_on_path_comes_first(no_python_anywhere: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    on_path = fake_python(tmp_path / "bin" / "python3.99", "3 99 0")
    fake_python(no_python_anywhere / "versions" / "3.99.0" / "bin" / "python3.99", "3 99 0")
    assert build.find_python(FAKE, "bpy 9.9") == str(on_path)
    # ... unless it is not the Python its name says.
    fake_python(on_path, "3 98 0")
    assert build.find_python(FAKE, "bpy 9.9") == str(no_python_anywhere / "versions" / "3.99.0" / "bin" / "python3.99")


def test_a_missing_interpreter_is_named_with_how_to_get_it(no_python_anywhere: Path) -> None:
    with pytest.raises(build.BuildError) as info:
        build.find_python(FAKE, "bpy 9.9")
    message = str(info.value)
    assert message.startswith("bpy 9.9 needs Python 3.99, but no python3.99 was found on PATH or in ")
    assert str(no_python_anywhere / "versions") in message
    assert "`pyenv install 3.99`" in message


def test_a_missing_interpreter_stops_build_py_before_any_work(
    no_python_anywhere: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    requirements = tmp_path / "requirements-bpy-9.9.txt"
    requirements.write_text("bpy==9.9.*\n", encoding="utf-8")
    venv = tmp_path / ".venv-bpy9.9"
    monkeypatch.setitem(build.BPY_ENVS, "9.9", build.BpyEnv(venv, requirements, FAKE))
    assert build.main(["test", "--bpy", "9.9"]) == 1
    captured = capsys.readouterr()
    assert "build.py: error: bpy 9.9 needs Python 3.99" in captured.err
    assert "pytest" not in captured.out and "pip" not in captured.out
    assert not venv.exists()


def test_build_py_itself_runs_on_every_python_a_blender_needs() -> None:
    # The distribution tests call build.main in-process, which used to re-run
    # build.py under Python 3.11 and so lost their monkeypatches under 3.13.
    assert build.MIN_PYTHON == (3, 11)
    assert {env.python for env in build.BPY_ENVS.values()} == {(3, 11), (3, 13)}
    build.ensure_supported_python(["--help"])  # returns: nothing to re-run


def test_the_newest_stubs_are_checked_with_the_same_mypy() -> None:
    def mypy_pin(path: Path) -> list[str]:
        return re.findall(r"^mypy==\S+", path.read_text(encoding="utf-8"), re.MULTILINE)

    common = mypy_pin(REPO_ROOT / "requirements-common.txt")
    assert len(common) == 1
    assert mypy_pin(build.STUBS_LATEST_ENV.requirements) == common
    assert re.search(r"^fake-bpy-module-latest==\d{8}$", build.STUBS_LATEST_ENV.requirements.read_text(encoding="utf-8"), re.MULTILINE)


# -- one supported range everywhere ----------------------------------------------------------


def test_ci_tests_the_lts_releases_and_the_newest_blender() -> None:
    ci = (REPO_ROOT / ".ci" / "run").read_text(encoding="utf-8")
    tested = set(re.findall(r"build\.py test --bpy (\d+\.\d+)", ci))
    assert re.search(r"build\.py test\"?\s*$", ci, re.MULTILINE), "the default (4.5) suite"
    assert tested | {build.DEFAULT_BPY} == {"4.2", "4.5", "5.2", "5.3"}
    assert {OLDEST, NEWEST} <= tested
    assert "build.py typecheck" in ci


def test_manifest_and_readme_say_the_tested_range() -> None:
    manifest = build.read_manifest()
    assert manifest["blender_version_min"] == f"{OLDEST}.0"
    # Blender's maximum is exclusive: 5.4.0 means "up to every 5.3.x".
    assert manifest["blender_version_max"] == next_minor(NEWEST)
    readme = (REPO_ROOT / "README.md").read_text(encoding="utf-8")
    assert f"Blender {OLDEST} LTS to {NEWEST}" in readme
    # The contributor section names every version build.py can test.
    listed = re.search(r"`--bpy` takes((?:\s|,|and|\d+\.\d+)+)", readme)
    assert listed is not None, "README: say which versions `--bpy` takes"
    assert re.findall(r"\d+\.\d+", listed.group(1)) == SUPPORTED


@pytest.mark.slow
def test_the_repository_listing_says_the_same_range(tmp_path: Path) -> None:
    changelog = tmp_path / build.CHANGELOG_NAME
    version = str(build.read_manifest()["version"])
    changelog.write_text(f"# Changelog\n\n## {version} - 2026-01-01\n\n- Release\n", encoding="utf-8")
    index = build.build_repo(tmp_path / "repo", changelog=changelog)
    [entry] = json.loads(index.read_text(encoding="utf-8"))["data"]
    assert (entry["blender_version_min"], entry["blender_version_max"]) == (f"{OLDEST}.0", next_minor(NEWEST))
    html = (index.parent / "index.html").read_text(encoding="utf-8")
    assert f"{OLDEST}.0" in html and next_minor(NEWEST) in html


# -- in the running Blender: what differs between versions is found ---------------------------


def test_glb_importer_options_are_found_in_this_blender(addon: ModuleType, tmp_path: Path) -> None:
    import bpy

    from_rna = {prop.identifier for prop in bpy.ops.import_scene.gltf.get_rna_type().properties}
    options = addon.scene.importer.importer_options(tmp_path / "model.glb")
    assert options["filepath"] == str(tmp_path / "model.glb")
    wanted = addon.scene.importer._PREFERRED_OPTIONS
    assert {key for key in options if key != "filepath"} == set(wanted) & from_rna
    # Where each option first appears among the tested Blenders; without one, the
    # add-on does that part itself (selects what it made, places objects itself).
    needed_from = {
        "import_select_created_objects": (4, 5, 0),
        "import_scene_as_collection": (4, 5, 0),
    }
    assert set(needed_from) == set(wanted)
    for option, since in needed_from.items():
        assert (option in options) == (bpy.app.version >= since), (option, bpy.app.version_string)


@pytest.mark.parametrize("image_format", ["AUTO", "WEBP"], ids=["png-textures", "webp-only-textures"])
def test_textures_arrive_with_the_importer_options_of_this_blender(addon: ModuleType, image_format: str) -> None:
    import bpy

    from tests.support.glb_factory import cached_glb

    glb = cached_glb(objects=1, subdivisions=0, texture_size=16, image_format=image_format)
    images_before = set(bpy.data.images)
    objects = addon.scene.importer.run_gltf(glb)
    try:
        textures = [node.image for obj in objects for slot in obj.material_slots if slot.material
                    for node in slot.material.node_tree.nodes if node.type == "TEX_IMAGE"]
        assert textures and all(image is not None for image in textures), bpy.app.version_string
        assert all(tuple(image.size) == (16, 16) for image in textures)
    finally:
        for obj in objects:
            bpy.data.objects.remove(obj)
        for image in set(bpy.data.images) - images_before:
            bpy.data.images.remove(image)


def test_png_output_settings_are_found_in_this_blender(addon: ModuleType) -> None:
    import bpy

    scene = bpy.context.scene
    settings = scene.render.image_settings
    names = [name for name, _ in addon.scene.picture_export._PNG_OUTPUT]
    present = [name for name in names if hasattr(settings, name)]
    # Blender 5.0 added media_type (image, multilayer or video) in front of the format.
    expected = names if bpy.app.version >= (5, 0, 0) else [name for name in names if name != "media_type"]
    assert present == expected, bpy.app.version_string
    original = settings.file_format
    settings.file_format = "JPEG"  # an artist's output format, to be switched and put back
    try:
        before = {name: getattr(settings, name) for name in present}
        with addon.scene.picture_export._png_output(scene):
            assert {name: getattr(settings, name) for name in present} == {
                name: value for name, value in addon.scene.picture_export._PNG_OUTPUT if name in present
            }
        assert {name: getattr(settings, name) for name in present} == before
    finally:
        settings.file_format = original


def test_asset_apis_are_found_in_this_blender(addon: ModuleType) -> None:
    import bpy

    functions = bpy.types.ID.bl_rna.functions
    assert {"asset_mark", "asset_clear", "preview_ensure"} <= set(functions.keys()), bpy.app.version_string
    preview = set(bpy.types.ImagePreview.bl_rna.properties.keys())
    assert {"image_size", "image_pixels_float", "icon_size", "icon_pixels_float"} <= preview
    mesh = bpy.data.meshes.new("hitem3d-version-probe")
    obj = bpy.data.objects.new("hitem3d-version-probe", mesh)
    try:
        obj.asset_mark()
        assert obj.asset_data is not None
        assert addon.bpy_compat.image_size(bpy.data.images.new("hitem3d-probe", 4, 2)) == (4, 2)
    finally:
        bpy.data.objects.remove(obj)
        bpy.data.meshes.remove(mesh)
        for image in [image for image in bpy.data.images if image.name.startswith("hitem3d-probe")]:
            bpy.data.images.remove(image)


@pytest.mark.slow
def test_a_suite_that_exported_a_glb_exits_with_pytests_code(tmp_path: Path) -> None:
    import subprocess
    import sys

    # The export test in a pytest process of its own, as the whole suite runs.
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "tests/support/exit_probe.py",
         "--basetemp", str(tmp_path / "basetemp")],
        cwd=REPO_ROOT, capture_output=True, text=True, timeout=300, check=False,
    )
    assert "1 passed" in result.stdout, result.stdout + result.stderr
    assert result.returncode == 0, f"exit code {result.returncode}: {result.stderr[-2000:]}"
