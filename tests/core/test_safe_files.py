"""Files: no symlink is followed, a full disk is named and loses nothing,
logging failures stay quiet, odd redirects and compressed bodies are handled."""

from __future__ import annotations

import errno
import gzip
import logging
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
import responses

from hitem3d_blender.core import journal, safe_files
from hitem3d_blender.core.downloader import CancelToken, partial_path, stream_to_file
from hitem3d_blender.core.errors import BadResultFile, Hitem3DError
from hitem3d_blender.core.logs import install_file_handler
from hitem3d_blender.core.safe_files import DiskFull
from hitem3d_blender.core.tasks import TaskRecord, TaskState
from tests.support.glb_factory import minimal_glb_bytes

GLB = minimal_glb_bytes()
URL = "https://cdn.example.com/target/0.glb"
TASK_ID = "2c2ad20cb3204697ba7f80351c3e8606.jjewelry-aigc-api.1NraEb5ohU"


@pytest.fixture
def rsps() -> Iterator[responses.RequestsMock]:
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        yield mock


def download(dest: Path, **kwargs: Any) -> None:
    with requests.Session() as session:
        stream_to_file(session, URL, dest, cancel=CancelToken(), **kwargs)


def enospc(*_args: Any, **_kwargs: Any) -> Any:
    raise OSError(errno.ENOSPC, "No space left on device")


# -- symlinks ------------------------------------------------------------------------------


def test_a_symlink_planted_at_the_partial_file_is_not_written_through(rsps: responses.RequestsMock,
                                                                       tmp_path: Path) -> None:
    rsps.add(responses.GET, URL, body=GLB)
    victim = tmp_path / "victim.txt"
    victim.write_text("precious")
    results = tmp_path / "results"
    results.mkdir()
    partial_path(results / "task.glb").symlink_to(victim)

    download(results / "task.glb")

    assert victim.read_text() == "precious"
    assert (results / "task.glb").read_bytes() == GLB and not (results / "task.glb").is_symlink()
    assert sorted(p.name for p in results.iterdir()) == ["task.glb"]


def test_a_symlinked_journal_is_not_read(tmp_path: Path) -> None:
    elsewhere = tmp_path / "elsewhere.json"
    rec = TaskRecord(TASK_ID)
    journal.save(elsewhere, [rec])
    folder = tmp_path / "user"
    folder.mkdir()
    (folder / "journal.json").symlink_to(elsewhere)

    assert journal.load(folder / "journal.json").records == []


def test_journal_paths_outside_its_folder_are_ignored(tmp_path: Path) -> None:
    folder = tmp_path / "user"
    rec = TaskRecord(TASK_ID)
    rec.move_to(TaskState.FAILED)
    rec.cover_path = str(tmp_path / "outside" / "photo.webp")
    rec.result_path = str(folder / "results" / ".." / ".." / "model.glb")
    inside = TaskRecord("0123456789abcdef0123456789abcdef.jjewelry-aigc-api.Q1w2E3r4T5")
    inside.cover_path = str(folder / "results" / "task.cover.webp")
    journal.save(folder / "journal.json", [rec, inside])

    loaded = {r.task_id: r for r in journal.load(folder / "journal.json").records}
    assert loaded[TASK_ID].cover_path == "" and loaded[TASK_ID].result_path == ""
    assert loaded[inside.task_id].cover_path == inside.cover_path


def test_remove_deletes_a_link_never_its_target(tmp_path: Path) -> None:
    target = tmp_path / "target"
    target.write_text("keep")
    link = tmp_path / "link"
    link.symlink_to(target)
    safe_files.remove(link)
    assert target.read_text() == "keep" and not link.is_symlink()


# -- a full disk ---------------------------------------------------------------------------


class FullDisk:
    """A file object that takes nothing."""

    def __enter__(self) -> "FullDisk":
        return self

    def __exit__(self, *args: Any) -> None:
        pass

    def write(self, data: bytes) -> int:
        raise OSError(errno.ENOSPC, "No space left on device")


def test_a_full_disk_during_a_download_is_named_and_leaves_nothing(rsps: responses.RequestsMock, tmp_path: Path,
                                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    rsps.add(responses.GET, URL, body=GLB)
    results = tmp_path / "results"
    real_create = safe_files.create_new

    def create_then_fill(path: Path, mode: int = 0o644) -> Any:
        real_create(path, mode).close()
        return FullDisk()

    monkeypatch.setattr(safe_files, "create_new", create_then_fill)
    with pytest.raises(DiskFull) as caught:
        download(results / "task.glb")
    assert str(caught.value) == f"Not enough disk space in {results}: free some space and retry"
    assert list(results.iterdir()) == []


def test_a_full_disk_keeps_the_previous_journal(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "journal.json"
    journal.save(path, [TaskRecord(TASK_ID)])
    before = path.read_bytes()
    monkeypatch.setattr(safe_files.os, "fsync", enospc)

    with pytest.raises(DiskFull, match=f"Not enough disk space in {tmp_path}"):
        journal.save(path, [TaskRecord(TASK_ID), TaskRecord("0123456789abcdef0123456789abcdef.jjewelry-aigc-api.Q1")])
    assert path.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["journal.json"]


def test_a_disk_full_error_is_also_an_os_error() -> None:
    # Code that copes with a failed write (the journal saver) copes with it too.
    assert isinstance(DiskFull(Path("/x")), OSError) and isinstance(DiskFull(Path("/x")), Hitem3DError)


def test_a_log_file_that_cannot_be_written_prints_no_logging_error(tmp_path: Path,
                                                                   capfd: pytest.CaptureFixture[str]) -> None:
    logger = logging.getLogger("hitem3d-test-quiet")
    handler = install_file_handler(logger, tmp_path / "hitem3d.log")
    try:
        logger.warning("first line")
        stream = getattr(handler, "stream")
        stream.close()  # as when the disk or the file went away
        logger.warning("second line")
    finally:
        logger.removeHandler(handler)
    assert "Logging error" not in capfd.readouterr().err


# -- redirects and compressed bodies ----------------------------------------------------------


def test_a_redirect_to_a_local_file_is_refused_by_name(rsps: responses.RequestsMock, tmp_path: Path) -> None:
    rsps.add(responses.GET, URL, status=302, headers={"Location": "file:///etc/passwd"})
    with pytest.raises(BadResultFile, match="redirected to a link that is not http"):
        download(tmp_path / "task.glb")
    assert list(tmp_path.iterdir()) == []


def test_a_redirect_loop_is_named(rsps: responses.RequestsMock, tmp_path: Path) -> None:
    rsps.add(responses.GET, URL, status=302, headers={"Location": URL})
    with pytest.raises(Hitem3DError, match="redirect loop"):
        download(tmp_path / "task.glb")


def test_a_compressed_body_writes_nothing_past_the_limit(rsps: responses.RequestsMock, tmp_path: Path,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    big = bytes(3_000_000)  # compresses to a few KB
    rsps.add(responses.GET, URL, body=gzip.compress(big), headers={"Content-Encoding": "gzip"})
    sizes: list[int] = []
    real_create = safe_files.create_new

    def recording(path: Path, mode: int = 0o644) -> Any:
        file = real_create(path, mode)
        real_write = file.write
        file.write = lambda data: sizes.append(len(data)) or real_write(data)  # type: ignore[method-assign]
        return file

    monkeypatch.setattr(safe_files, "create_new", recording)
    with pytest.raises(BadResultFile, match="larger than"):
        download(tmp_path / "task.glb", max_bytes=1_000_000)
    assert sum(sizes) <= 1_000_000
    assert os.listdir(tmp_path) == []


def test_a_symlinked_cached_result_is_never_used(tmp_path: Path) -> None:
    from hitem3d_blender.core.result_files import cached_result, path_for
    from hitem3d_blender.core.task_kinds import SPLIT

    elsewhere = tmp_path / "elsewhere.stl"
    elsewhere.write_bytes(b"solid planted\nendsolid planted\n")
    dest = tmp_path / "results" / "task-x.glb"
    dest.parent.mkdir()
    stl = path_for(dest, "stl")
    stl.symlink_to(elsewhere)
    assert cached_result(dest, SPLIT) is None
    stl.unlink()
    stl.write_bytes(elsewhere.read_bytes())
    assert cached_result(dest, SPLIT) == stl
