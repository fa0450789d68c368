"""File operations in the extension's folders that never follow a symlink.

Anything can be planted in a user folder: a symlink at ``<task>.glb.part``
would make a download overwrite its target, one at ``<task>.glb`` would make
Import Again read it. Every read, write and delete of our files goes through
here: entries are checked with ``lstat`` and opened with ``O_NOFOLLOW``, and a
symlink is removed (the link, never its target) rather than followed.

A full disk becomes ``DiskFull``, whose message names the folder: the generic
"unexpected error, see the log" helps nobody when the log is on that disk.
"""

from __future__ import annotations

import errno
import os
import stat
import tempfile
from pathlib import Path
from typing import BinaryIO

from .errors import Hitem3DError
from .messages import msg

_NOFOLLOW = getattr(os, "O_NOFOLLOW", 0)
_BINARY = getattr(os, "O_BINARY", 0)
_DISK_FULL = frozenset({errno.ENOSPC, getattr(errno, "EDQUOT", errno.ENOSPC)})


class DiskFull(Hitem3DError, OSError):
    """No room left where we write: retryable by hand once space is freed.
    An ``OSError`` too, so code that copes with a failed write copes with it."""

    def __init__(self, folder: Path) -> None:
        super().__init__(msg("Not enough disk space in {folder}: free some space and retry", folder=str(folder)))
        self.folder = folder


def is_disk_full(exc: BaseException) -> bool:
    return isinstance(exc, OSError) and exc.errno in _DISK_FULL


def is_link(path: Path) -> bool:
    try:
        return stat.S_ISLNK(os.lstat(path).st_mode)
    except OSError:
        return False


def is_regular_file(path: Path) -> bool:
    """A plain file (not a symlink, folder or device)."""
    try:
        return stat.S_ISREG(os.lstat(path).st_mode)
    except OSError:
        return False


def inside(folder: Path, path: str | os.PathLike[str]) -> bool:
    """Whether ``path`` names an entry inside ``folder`` by its text alone
    (``..`` resolved, symlinks not): paths from a journal are input."""
    try:
        target = os.path.normpath(os.path.abspath(os.fspath(path)))
        base = os.path.normpath(os.path.abspath(os.fspath(folder)))
        return os.path.commonpath([target, base]) == base and target != base
    except (ValueError, TypeError):  # another drive on Windows, a NUL byte
        return False


def open_read(path: Path) -> BinaryIO:
    """Open a file of ours for reading; ``OSError`` (ELOOP) for a symlink."""
    fd = os.open(path, os.O_RDONLY | _NOFOLLOW | _BINARY)
    return os.fdopen(fd, "rb")


def read_bytes(path: Path) -> bytes:
    with open_read(path) as file:
        return file.read()


def create_new(path: Path, mode: int = 0o644) -> BinaryIO:
    """A new, empty file at ``path`` for writing. Whatever was there (an old
    partial file, a planted symlink) is removed first, never followed;
    ``O_EXCL`` refuses a symlink planted between the two steps."""
    remove(path)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | _NOFOLLOW | _BINARY, mode)
    except OSError as exc:
        if is_disk_full(exc):
            raise DiskFull(path.parent) from None
        raise
    return os.fdopen(fd, "wb")


def remove(path: Path) -> None:
    """Delete ``path`` if it exists; a symlink loses the link, never its target."""
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass


def write_atomic(path: Path, data: bytes, *, mode: int = 0o644, fsync: bool = True) -> None:
    """Replace ``path`` with ``data`` in one step (a temporary file, then
    ``os.replace``, which replaces a symlink rather than writing through it).
    A full disk raises ``DiskFull`` and leaves the old file as it was."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=path.name + ".", suffix=".tmp", dir=path.parent)
    try:
        try:
            os.fchmod(fd, mode)
        except (AttributeError, OSError):  # Windows: no POSIX modes
            pass
        with os.fdopen(fd, "wb") as file:
            file.write(data)
            file.flush()
            if fsync:
                os.fsync(file.fileno())
        os.replace(tmp_name, path)
    except BaseException as exc:
        Path(tmp_name).unlink(missing_ok=True)
        if is_disk_full(exc):
            raise DiskFull(path.parent) from None
        raise
