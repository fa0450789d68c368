"""Shared fixtures. Core tests need none of this; Blender tests use ``addon``.

NOTE: ``BLENDER_USER_RESOURCES`` must point at a throwaway folder before the
first ``import bpy`` anywhere in the process, so no test ever reads or writes
the developer's real Blender configuration.
"""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
import threading
from pathlib import Path
from types import ModuleType
from typing import Any, Iterator

import pytest

_USER_RESOURCES = Path(tempfile.mkdtemp(prefix="hitem3d-blender-user-"))
os.environ["BLENDER_USER_RESOURCES"] = str(_USER_RESOURCES)
# Blender writes image thumbnails (covers) to $XDG_CACHE_HOME/thumbnails.
os.environ["XDG_CACHE_HOME"] = str(_USER_RESOURCES / "cache")
for _name in ("HITEM3D_API_BASE", "HITEM3D_CLIENT_ID", "HITEM3D_CLIENT_SECRET", "HITEM3D_UPLOAD_ENDPOINT",
              "HITEM3D_UPLOAD_PUBLIC_BASE"):
    os.environ.pop(_name, None)

REPO_ROOT = Path(__file__).resolve().parents[1]
ADDON_MODULE = "bl_ext.user_default.hitem3d_blender"

from tests.support.glb_factory import cached_glb  # noqa: E402
from tests.support.simulator import Hitem3DSimulator  # noqa: E402


_exit_status = 0


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    global _exit_status
    _exit_status = int(exitstatus)
    shutil.rmtree(_USER_RESOURCES, ignore_errors=True)


@pytest.hookimpl(trylast=True)
def pytest_unconfigure(config: pytest.Config) -> None:
    # NOTE: bpy 4.2 as a Python module segfaults while the process exits, once
    # its glTF exporter has run (4.5 and later do not): after Python has shut
    # down, so faulthandler shows nothing. Every result is reported by now, so
    # on 4.2 the process ends here with pytest's exit code, skipping the C-level
    # teardown that crashes. tests/blender/test_versions.py checks the exit code.
    bpy = sys.modules.get("bpy")
    if bpy is not None and tuple(bpy.app.version[:2]) == (4, 2):
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(_exit_status)


@pytest.fixture(scope="session")
def built_zip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The extension zip built from the current source by ``build.py``."""
    sys.path.insert(0, str(REPO_ROOT))
    import build

    return build.build_zip(tmp_path_factory.mktemp("dist"))


@pytest.fixture(scope="session")
def blender_session(built_zip: Path) -> Iterator[ModuleType]:
    """Real Blender with the zip installed the way Blender installs extensions."""
    import bpy

    bpy.context.preferences.system.use_online_access = True
    result = bpy.ops.extensions.package_install_files(
        repo="user_default", filepath=str(built_zip), enable_on_install=True
    )
    assert result == {"FINISHED"}, result
    yield sys.modules[ADDON_MODULE]
    import addon_utils

    addon_utils.disable(ADDON_MODULE, default_set=True)


def enable_addon() -> ModuleType:
    import addon_utils

    addon_utils.enable(ADDON_MODULE, default_set=True)
    return sys.modules[ADDON_MODULE]


@pytest.fixture
def addon(blender_session: ModuleType, request: pytest.FixtureRequest) -> Iterator[ModuleType]:
    """The enabled add-on module; after each test no worker, timer, converter
    process or object is left and online access is back on.

    Interactive imports run in-process unless the test is marked
    ``child_process``: each converter start costs Blender's start-up."""
    import bpy

    module = sys.modules.get(ADDON_MODULE) or enable_addon()
    if ADDON_MODULE not in bpy.context.preferences.addons:
        module = enable_addon()
    module.engine.conversions.USE_CHILD_PROCESS = request.node.get_closest_marker("child_process") is not None
    bpy.context.preferences.system.use_online_access = True
    for obj in list(bpy.data.objects):
        bpy.data.objects.remove(obj)
    # Each test starts with no cached results and no journal (the open log
    # file stays: the add-on keeps writing to it).
    for child in Path(bpy.utils.extension_path_user(ADDON_MODULE, create=True)).iterdir():
        if child.is_dir():
            shutil.rmtree(child, ignore_errors=True)
        elif not child.name.startswith("hitem3d.log"):
            child.unlink()
    yield module
    module = sys.modules[ADDON_MODULE]
    if ADDON_MODULE in bpy.context.preferences.addons:
        # Tests that run later expect the default API address.
        preferences = bpy.context.preferences.addons[ADDON_MODULE].preferences
        preferences.base_url = preferences.bl_rna.properties["base_url"].default
        module.ui.session.shutdown()
        assert not bpy.app.timers.is_registered(module.engine.timer.tick)
    assert not module.engine.conversions.busy()
    assert not [t.name for t in threading.enumerate() if t.name.startswith("hitem3d-") and t.name != "hitem3d-simulator"]


@pytest.fixture(scope="session")
def sample_glb() -> Path:
    """A textured GLB made by Blender's own exporter (objects Hitem3D_Sample*)."""
    return cached_glb(objects=2)


@pytest.fixture
def sim(sample_glb: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Hitem3DSimulator]:
    with Hitem3DSimulator() as simulator:
        simulator.default_glb = sample_glb
        # A mesh to texture is uploaded to the simulator's storage, never to Hitem3D's.
        for name, value in simulator.upload_environment().items():
            monkeypatch.setenv(name, value)
        yield simulator


def point_prefs_at(sim: Hitem3DSimulator) -> Any:
    """The add-on's preferences pointed at the simulator, with fast polling."""
    import bpy

    preferences = bpy.context.preferences.addons[ADDON_MODULE].preferences
    preferences.base_url = sim.base_url
    preferences.client_id = sim.client_id
    preferences.client_secret = sim.client_secret
    preferences.poll_interval = 0.1
    return preferences


@pytest.fixture
def prefs(addon: ModuleType, sim: Hitem3DSimulator) -> Iterator[Any]:
    preferences = point_prefs_at(sim)
    yield preferences
    import bpy

    addon_entry = bpy.context.preferences.addons.get(ADDON_MODULE)
    if addon_entry is not None:  # (a test may have disabled the add-on)
        current = addon_entry.preferences
        for name in ("base_url", "client_id", "client_secret", "poll_interval"):
            setattr(current, name, current.bl_rna.properties[name].default)
