"""A real read-only folder for tests: a read-only bind mount of the folder
onto itself as root (root writes through any file mode), the folder's mode
otherwise. Mounts are always undone, lazily if a process still uses them."""

from __future__ import annotations

import contextlib
import os
import subprocess
from pathlib import Path
from typing import Iterator

import pytest


def _run(*args: str) -> bool:
    return subprocess.run(list(args), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL).returncode == 0


@contextlib.contextmanager
def read_only(folder: Path) -> Iterator[Path]:
    """``folder`` (made if missing) read-only inside the block."""
    if os.name != "posix":
        pytest.skip("read-only folders are made with POSIX mounts or modes")
    folder.mkdir(parents=True, exist_ok=True)
    if os.geteuid() != 0:
        mode = folder.stat().st_mode & 0o7777
        folder.chmod(0o555)
        try:
            yield folder
        finally:
            folder.chmod(mode)
        return
    if not _run("mount", "--bind", str(folder), str(folder)):
        pytest.skip("cannot bind-mount here (no CAP_SYS_ADMIN)")
    try:
        if not _run("mount", "-o", "remount,ro,bind", str(folder)):
            pytest.skip("cannot remount read-only here")
        yield folder
    finally:
        if not _run("umount", str(folder)):
            _run("umount", "-l", str(folder))


def is_read_only(folder: Path) -> bool:
    try:
        probe = folder / ".probe"
        probe.write_bytes(b"")
    except OSError:
        return True
    probe.unlink()
    return False
