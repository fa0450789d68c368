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

from hitem3d_blender.core import downloader, journal, safe_files
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


def test_a_symlink_planted_at_the_partial_file_is_not_written_through(rsps: responses.RequestsMock, tmp_path: Path,
                                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    rsps.add(responses.GET, URL, body=GLB)
    victim = tmp_path / "victim.txt"
    victim.write_text("precious")
    results = tmp_path / "results"
    results.mkdir()
    # The name is random; the planter guessed it anyway.
    guessed = partial_path(results / "task.glb")
    guessed.symlink_to(victim)
    monkeypatch.setattr(downloader, "partial_path", lambda dest: guessed)

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


# -- hostile and failing folders (issue 21.2, 21.3, 21.7, 21.12) ----------------------------------


def special_files(tmp_path: Path) -> list[Path]:
    """A FIFO, a socket and a folder where a file of ours should be."""
    import socket

    fifo = tmp_path / "journal.json"
    os.mkfifo(fifo)
    sock = tmp_path / "settings.json"
    server = socket.socket(socket.AF_UNIX)
    server.bind(str(sock))
    folder = tmp_path / "result.json"
    folder.mkdir()
    return [fifo, sock, folder]


@pytest.mark.skipif(os.name != "posix", reason="FIFOs and sockets are POSIX")
def test_a_fifo_socket_or_folder_is_never_read_and_never_blocks(tmp_path: Path) -> None:
    import threading

    done: list[Path] = []

    def read_all() -> None:
        for path in special_files(tmp_path):
            with pytest.raises(OSError):
                safe_files.read_bytes(path)
            done.append(path)

    reader = threading.Thread(target=read_all, daemon=True)
    reader.start()
    reader.join(5.0)
    release_readers(tmp_path / "journal.json", reader)
    assert len(done) == 3, "reading a FIFO blocked"
    with pytest.raises(safe_files.NotAFile):
        safe_files.read_bytes(Path("/dev/zero"), follow=True)  # a device: endless


def test_a_file_larger_than_ours_can_be_is_not_read(tmp_path: Path) -> None:
    path = tmp_path / "settings.json"
    path.write_bytes(b"x" * 2000)
    with pytest.raises(OSError):
        safe_files.read_bytes(path, max_bytes=1000)
    assert safe_files.read_bytes(path, max_bytes=2000) == b"x" * 2000


def test_nothing_to_delete_is_never_an_error_even_on_a_read_only_disk(tmp_path: Path,
                                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    # Linux answers EROFS before ENOENT: deleting what is not there fails on a read-only mount.
    present = tmp_path / "present"
    present.write_bytes(b"x")

    def read_only_unlink(path: Any, *args: Any, **kwargs: Any) -> None:
        raise OSError(errno.EROFS, "Read-only file system", str(path))

    monkeypatch.setattr(safe_files.os, "unlink", read_only_unlink)
    safe_files.remove(tmp_path / "missing")
    with pytest.raises(OSError):
        safe_files.remove(present)
    assert safe_files.remove_quietly(present) is False  # logged, never raised


def test_a_read_only_folder_is_named_once_and_nothing_is_left(tmp_path: Path) -> None:
    from tests.support.read_only import read_only

    folder = tmp_path / "library"
    with read_only(folder):
        with pytest.raises(safe_files.FolderUnusable) as caught:
            safe_files.write_atomic(folder / "blender_assets.cats.txt", b"VERSION 1\n")
        assert str(caught.value) == (f"Cannot write in {folder}: it is read-only, missing or not yours; fix it, "
                                     "then retry")
        with pytest.raises(safe_files.FolderUnusable):
            safe_files.check_writable(folder)
        with pytest.raises(safe_files.FolderUnusable):
            safe_files.create_new(folder / "task.glb.part")
    assert list(folder.iterdir()) == []


def test_temporary_names_are_random_so_no_link_can_wait_for_them(tmp_path: Path,
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    names: list[str] = []
    real = safe_files.tempfile.mkstemp

    def spy(*args: Any, **kwargs: Any) -> Any:
        fd, name = real(*args, **kwargs)
        names.append(Path(name).name)
        return fd, name

    monkeypatch.setattr(safe_files.tempfile, "mkstemp", spy)
    for _ in range(3):
        safe_files.write_atomic(tmp_path / "blender_assets.cats.txt", b"VERSION 1\n")
    assert len(set(names)) == 3 and all(name.startswith(".blender_assets.cats.txt.") for name in names)


def test_a_link_at_the_destination_is_replaced_not_written_through(tmp_path: Path) -> None:
    victim = tmp_path / "bashrc"
    victim.write_text("mine")
    library = tmp_path / "library"
    library.mkdir()
    (library / "blender_assets.cats.txt").symlink_to(victim)
    (library / "task.blend").symlink_to(victim)
    staged = safe_files.private_folder(tmp_path / "work") / "task.blend"
    staged.write_bytes(b"BLENDER-v405")

    safe_files.write_atomic(library / "blender_assets.cats.txt", b"VERSION 1\n")
    seal = safe_files.publish(staged, library / "task.blend")

    assert victim.read_text() == "mine"
    assert not (library / "task.blend").is_symlink() and (library / "task.blend").read_bytes() == b"BLENDER-v405"
    assert safe_files.seal_holds(library / "task.blend", seal)


def test_publishing_to_another_file_system_copies_under_a_random_name(tmp_path: Path,
                                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    real_replace = os.replace

    def across_devices(source: Any, dest: Any) -> None:
        if Path(source).parent.name != "library":
            raise OSError(errno.EXDEV, "Invalid cross-device link")
        real_replace(source, dest)

    monkeypatch.setattr(safe_files.os, "replace", across_devices)
    staged = safe_files.private_folder(tmp_path / "work") / "task.blend"
    staged.write_bytes(b"x" * 3_000_000)
    library = tmp_path / "library"
    seal = safe_files.publish(staged, library / "task.blend")
    assert [p.name for p in library.iterdir()] == ["task.blend"]
    assert safe_files.seal_holds(library / "task.blend", seal)


def test_a_seal_holds_only_for_what_was_written(tmp_path: Path) -> None:
    staged = safe_files.private_folder(tmp_path / "work") / "task.blend"
    staged.write_bytes(b"ours")
    entry = tmp_path / "library" / "task.blend"
    seal = safe_files.publish(staged, entry)
    assert seal.digest.startswith("sha256:") and safe_files.seal_holds(entry, seal)
    # Copied back unchanged (a restore from backup): another identity, hashed again, still ours.
    copy = tmp_path / "copy.blend"
    copy.write_bytes(b"ours")
    os.replace(copy, entry)
    assert safe_files.seal_holds(entry, seal)
    # Other content, even with the identity forged as far as a user can (size, mtime).
    info = entry.stat()
    entry.write_bytes(b"evil")
    os.utime(entry, ns=(info.st_atime_ns, info.st_mtime_ns))
    assert not safe_files.seal_holds(entry, seal)
    assert not safe_files.seal_holds(entry, safe_files.Seal())  # no seal: nothing holds
    entry.unlink()
    entry.symlink_to(copy)
    assert not safe_files.seal_holds(entry, seal)


def test_a_program_writing_elsewhere_leaves_nothing_when_it_fails(tmp_path: Path) -> None:
    folder = tmp_path / "uploads"
    with safe_files.written_elsewhere(folder / "picture.png") as staged:
        assert staged.parent.parent == folder and staged.parent.stat().st_mode & 0o077 == 0
        staged.write_bytes(b"png")
    assert [p.name for p in folder.iterdir()] == ["picture.png"]
    with pytest.raises(RuntimeError):
        with safe_files.written_elsewhere(folder / "other.png") as staged:
            staged.write_bytes(b"half")
            raise RuntimeError("the exporter failed")
    assert [p.name for p in folder.iterdir()] == ["picture.png"]


def test_only_private_folders_of_gone_blenders_are_leftovers(tmp_path: Path) -> None:
    from tests.core.test_instance_lock import dead_pid
    from hitem3d_blender.core.instance_lock import pid_alive

    mine = safe_files.private_folder(tmp_path)
    live = tmp_path / f"{safe_files.staging_prefix(os.getppid())}abc"
    dead = tmp_path / f"{safe_files.staging_prefix(dead_pid())}abc"
    live.mkdir()
    dead.mkdir()
    assert safe_files.leftover_staging(tmp_path, pid_alive) == [dead]
    assert mine.exists()


@pytest.mark.skipif(os.name != "posix", reason="FIFOs are POSIX")
def test_result_and_picture_checks_never_wait_on_a_fifo(tmp_path: Path) -> None:
    import threading

    from hitem3d_blender.core import glb_check, image_header, result_files

    fifo = tmp_path / "task.glb"
    os.mkfifo(fifo)
    done: list[str] = []

    def check_all() -> None:
        with pytest.raises(BadResultFile):
            glb_check.check_glb(fifo)
        done.append("glb")
        with pytest.raises(OSError):
            image_header.file_image_size(fifo)
        done.append("picture")
        with pytest.raises(OSError):
            result_files.check_stl(fifo)
        done.append("stl")

    checker = threading.Thread(target=check_all, daemon=True)
    checker.start()
    checker.join(5.0)
    release_readers(fifo, checker)
    assert done == ["glb", "picture", "stl"], "a check waited on the FIFO"


def release_readers(fifo: Path, reader: Any) -> None:
    """Should a reader wait on ``fifo`` (the defect these tests catch), a
    writer comes and goes until it ends: the test fails, it never hangs."""
    while reader.is_alive():
        try:
            os.close(os.open(fifo, os.O_WRONLY | os.O_NONBLOCK))
        except OSError:
            pass
        reader.join(0.05)
