"""Two Blender instances, one folder: exactly one owns it; a dead owner's lock
is taken over."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from hitem3d_blender.core.instance_lock import LOCK_NAME, InstanceLock, leftover_partials, pid_alive


def dead_pid() -> int:
    process = subprocess.Popen([sys.executable, "-c", "pass"])
    process.wait()
    return process.pid


def test_the_first_instance_owns_the_folder_and_the_second_is_a_guest(tmp_path: Path) -> None:
    first = InstanceLock(tmp_path)
    second = InstanceLock(tmp_path, pid=os.getppid())  # another live process
    assert first.acquire() is True
    assert second.acquire() is False
    assert first.holder() == first.me


def test_a_lock_left_by_a_dead_process_is_taken_over(tmp_path: Path) -> None:
    crashed = InstanceLock(tmp_path, pid=dead_pid())
    assert crashed.acquire()
    survivor = InstanceLock(tmp_path, pid=os.getppid())
    assert survivor.acquire() is True
    assert survivor.holder() == survivor.me


def test_release_removes_only_our_own_lock(tmp_path: Path) -> None:
    mine = InstanceLock(tmp_path)
    assert mine.acquire()
    (tmp_path / LOCK_NAME).unlink()
    other = InstanceLock(tmp_path, pid=os.getppid())
    assert other.acquire()
    mine.release()
    assert other.holder() == other.me


def test_a_lock_from_another_host_is_respected(tmp_path: Path) -> None:
    (tmp_path / LOCK_NAME).write_text(json.dumps({"pid": dead_pid(), "host": "render-node-7", "cookie": "x"}))
    assert InstanceLock(tmp_path).acquire() is False


def test_a_symlinked_lock_is_not_followed(tmp_path: Path) -> None:
    target = tmp_path / "target.txt"
    target.write_text("keep")
    folder = tmp_path / "user"
    folder.mkdir()
    (folder / LOCK_NAME).symlink_to(target)
    assert InstanceLock(folder).acquire() is True
    assert target.read_text() == "keep"


def test_only_partial_files_of_gone_processes_are_leftovers(tmp_path: Path) -> None:
    live = tmp_path / f"task-a.glb.{os.getppid()}.part"
    dead = tmp_path / f"task-b.glb.{dead_pid()}.part"
    old_style = tmp_path / "task-c.glb.part"
    for path in (live, dead, old_style):
        path.write_bytes(b"x")
    assert sorted(leftover_partials(tmp_path)) == sorted([dead, old_style])
    assert pid_alive(os.getpid()) and not pid_alive(dead_pid())
