"""Distribution: releases go through CHANGELOG.md, and users get them (and their
updates) from our own extension repository inside Blender.

The Blender test publishes with ``build.build_repo`` into a temporary folder,
serves it on 127.0.0.1 and drives Blender's own extension operators the way the
Get Extensions preferences do.
"""

from __future__ import annotations

import functools
import http.server
import sys
import threading
import tomllib
from pathlib import Path
from typing import Any, Iterator

import pytest

import build


def next_patch(version: str) -> str:
    major, minor, patch = build.version_key(version)[:3]
    return f"{major}.{minor}.{patch + 1}"


REPO_MODULE = "hitem3d_test_remote"  # not user_default: conftest installs the zip there
PKG_ID = str(build.read_manifest()["id"])
VERSION = str(build.read_manifest()["version"])
NEWER = next_patch(VERSION)  # the update: the current source released as the next version
REMOTE_MODULE = f"bl_ext.{REPO_MODULE}.{PKG_ID}"
USER_DEFAULT_MODULE = f"bl_ext.user_default.{PKG_ID}"


def write_changelog(folder: Path, *versions: str) -> Path:
    entries = "".join(f"## {version} - 2026-01-0{day}\n\n- Change in {version}\n\n" for day, version in enumerate(versions, 1))
    path = folder / build.CHANGELOG_NAME
    path.write_text(f"# Changelog\n\n## [Unreleased]\n\n- Not released yet\n\n{entries}", encoding="utf-8")
    return path


# -- the changelog gate (no Blender session needed) --------------------------------------------


def test_release_of_a_version_without_changelog_entry_is_refused(tmp_path: Path) -> None:
    changelog = write_changelog(tmp_path, VERSION)
    with pytest.raises(build.BuildError) as info:
        build.build_repo(tmp_path / "repo", version_override=NEWER, changelog=changelog)
    message = str(info.value)
    assert f"no entry for version {NEWER}" in message
    assert "CHANGELOG.md" in message
    assert f"## {NEWER} - YYYY-MM-DD" in message
    assert not list((tmp_path / "repo").glob("*")), "nothing may be built for a refused release"


def test_build_py_repo_refuses_the_manifest_version_without_entry(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(build, "CHANGELOG_PATH", write_changelog(tmp_path, "0.0.1"))
    monkeypatch.setattr(build, "REPO_DIR", tmp_path / "repo")
    assert build.main(["--no-venv", "repo"]) == 1
    error = capsys.readouterr().err
    assert f"refusing to release {PKG_ID} {VERSION}: CHANGELOG.md has no entry for version {VERSION}" in error
    assert not (tmp_path / "repo").exists()


@pytest.mark.parametrize(
    "heading",
    [f"## {VERSION} - 2026-01-31", f"## [{VERSION}] - 2026-01-31"],
    ids=["plain", "keep-a-changelog"],
)
def test_dated_entry_with_changes_is_accepted(tmp_path: Path, heading: str) -> None:
    changelog = tmp_path / "CHANGELOG.md"
    changelog.write_text(f"# Changelog\n\n{heading}\n\n### Fixed\n\n- Something\n", encoding="utf-8")
    assert build.changelog_problem(VERSION, changelog) is None


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (f"## {VERSION}\n\n- Something\n", "needs its release date"),
        (f"## {VERSION} - 2026-01-31\n\n### Added\n\n", "lists no changes"),
        ("## [Unreleased]\n\n- Something\n", f"no entry for version {VERSION}"),
    ],
    ids=["undated", "empty", "only-unreleased"],
)
def test_incomplete_entry_is_refused(tmp_path: Path, text: str, expected: str) -> None:
    changelog = tmp_path / "CHANGELOG.md"
    changelog.write_text(f"# Changelog\n\n{text}", encoding="utf-8")
    problem = build.changelog_problem(VERSION, changelog)
    assert problem is not None and expected in problem and "CHANGELOG.md" in problem


def test_missing_changelog_is_refused(tmp_path: Path) -> None:
    problem = build.changelog_problem(VERSION, tmp_path / "CHANGELOG.md")
    assert problem is not None and "CHANGELOG.md not found" in problem


def test_every_entry_of_the_project_changelog_is_dated_and_lists_changes() -> None:
    sections = build.changelog_sections(build.CHANGELOG_PATH.read_text(encoding="utf-8"))
    assert sections, "CHANGELOG.md has no version sections"
    for version in sections:
        assert version == "Unreleased" or build.changelog_problem(version) is None, version


def test_dev_build_is_not_blocked_by_a_missing_entry(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(build, "CHANGELOG_PATH", write_changelog(tmp_path, "0.0.1"))
    monkeypatch.setattr(build, "DIST_DIR", tmp_path / "dist")
    assert build.main(["--no-venv", "build"]) == 0
    assert (tmp_path / "dist" / f"{PKG_ID}-{VERSION}.zip").is_file()
    assert f"note: CHANGELOG.md has no entry for version {VERSION}" in capsys.readouterr().out


def test_release_older_than_the_listed_one_is_refused(tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    repo.mkdir()
    (repo / f"{PKG_ID}-{NEWER}.zip").write_bytes(b"")
    with pytest.raises(build.BuildError, match=f"already offers {PKG_ID} {NEWER}, newer than {VERSION}"):
        build.build_repo(repo, changelog=write_changelog(tmp_path, VERSION))


# -- installs and updates from the remote repository, in real Blender ---------------


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture
def static_host(tmp_path: Path) -> Iterator[tuple[Path, str]]:
    """A folder served on loopback like a static web host: (folder, its base URL)."""
    folder = tmp_path / "repo"
    folder.mkdir()
    handler = functools.partial(_QuietHandler, directory=str(folder))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, name="hitem3d-test-static-host", daemon=True)
    thread.start()
    try:
        yield folder, f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


def repo_index() -> int:
    import bpy

    modules = [repo.module for repo in bpy.context.preferences.extensions.repos]
    assert REPO_MODULE in modules, modules
    return modules.index(REPO_MODULE)


def repo_directory() -> Path:
    import bpy

    return Path(bpy.context.preferences.extensions.repos[repo_index()].directory)


def _raise(error: Exception) -> None:
    raise error


def offered_version() -> str | None:
    """The version the synced listing offers, as Get Extensions shows it."""
    import bl_pkg

    listing = bl_pkg.repo_cache_store_ensure().refresh_remote_from_directory(
        directory=str(repo_directory()), error_fn=_raise, force=True
    )
    item = (listing or {}).get(PKG_ID)
    return None if item is None else str(item.version)


def updates_offered() -> int:
    """How many installed extensions of the repository have another version listed:
    the count behind Blender's "updates available" notice."""
    import bl_pkg

    return int(bl_pkg.repo_stats_calc_outdated_for_repo_directory(bl_pkg.repo_cache_store_ensure(), str(repo_directory())))


def installed_version() -> str | None:
    manifest = repo_directory() / PKG_ID / build.MANIFEST_NAME
    if not manifest.is_file():
        return None
    with manifest.open("rb") as handle:
        return str(tomllib.load(handle)["version"])


def assert_registered() -> None:
    import bpy

    assert REMOTE_MODULE in bpy.context.preferences.addons
    assert REMOTE_MODULE in sys.modules
    assert hasattr(bpy.types, "HITEM3D_PT_main")
    assert "timeout" in bpy.ops.hitem3d.import_task.get_rna_type().properties


@pytest.fixture
def remote_repo(static_host: tuple[Path, str]) -> Iterator[Path]:
    """Our repository added in Preferences > Get Extensions > Repositories, with the
    add-on from user_default out of the way; yields the folder to publish into.

    On the way out everything is undone: the add-on disabled and uninstalled, the
    repository and its files removed, online access and user_default as before.
    """
    import bpy

    import addon_utils  # only importable once bpy has set up Blender's module path

    folder, base_url = static_host
    prefs = bpy.context.preferences
    online_before = prefs.system.use_online_access
    active_before = prefs.extensions.active_repo
    # Two enabled copies of one add-on would register the same classes twice.
    user_default_enabled = USER_DEFAULT_MODULE in prefs.addons
    if user_default_enabled:
        addon_utils.disable(USER_DEFAULT_MODULE, default_set=True)
    prefs.system.use_online_access = True

    result = bpy.ops.preferences.extension_repo_add(
        name=REPO_MODULE, remote_url=f"{base_url}/{build.REPO_INDEX_NAME}", type="REMOTE", use_sync_on_startup=False
    )
    assert result == {"FINISHED"}, result
    directory = repo_directory()
    try:
        yield folder
    finally:
        addon_utils.disable(REMOTE_MODULE, default_set=True)
        if installed_version() is not None:
            bpy.ops.extensions.package_uninstall(repo_index=repo_index(), pkg_id=PKG_ID)
        bpy.ops.preferences.extension_repo_remove(index=repo_index(), remove_files=True)
        prefs.extensions.active_repo = active_before
        prefs.system.use_online_access = online_before
        if user_default_enabled:
            addon_utils.enable(USER_DEFAULT_MODULE, default_set=True)
    assert REPO_MODULE not in [repo.module for repo in prefs.extensions.repos]
    assert REMOTE_MODULE not in prefs.addons
    assert not directory.exists()
    user_dir = Path(bpy.utils.resource_path("USER"))
    assert not [path for path in user_dir.rglob("*") if REPO_MODULE in path.parts]


def sync() -> None:
    import bpy

    assert bpy.ops.extensions.repo_sync(repo_index=repo_index()) == {"FINISHED"}


@pytest.mark.slow
def test_users_install_and_update_from_our_remote_repository(remote_repo: Path, tmp_path: Path) -> None:
    import bpy

    changelog = write_changelog(tmp_path, VERSION, NEWER)
    index = build.build_repo(remote_repo, changelog=changelog)
    assert index == remote_repo.resolve() / "index.json"
    assert (remote_repo / "index.html").is_file()

    sync()
    assert offered_version() == VERSION
    assert bpy.ops.extensions.package_install(repo_index=repo_index(), pkg_id=PKG_ID) == {"FINISHED"}
    assert installed_version() == VERSION
    assert_registered()
    assert updates_offered() == 0

    build.build_repo(remote_repo, version_override=NEWER, changelog=changelog)
    assert sorted(path.name for path in remote_repo.glob("*.zip")) == [f"{PKG_ID}-{NEWER}.zip"]
    assert (remote_repo / build.REPO_ARCHIVE_NAME / f"{PKG_ID}-{VERSION}.zip").is_file()

    sync()
    assert offered_version() == NEWER
    assert updates_offered() == 1
    bpy.context.preferences.extensions.active_repo = repo_index()
    assert bpy.ops.extensions.package_upgrade_all(use_active_only=True) == {"FINISHED"}
    assert installed_version() == NEWER
    assert updates_offered() == 0
    assert_registered()
