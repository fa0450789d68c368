"""File operations in the extension's folders that never follow a symlink.

Anything can be planted in a folder we write to: a symlink at a predictable
temporary name in a shared asset library would turn our write into a write
to whatever it points at (``~/.bashrc``); one at ``<task>.glb`` would make
Import Again read it; a FIFO in place of the journal would block the thread
that opens it. So every file we create is created new (``O_EXCL`` and
``O_NOFOLLOW``, a random name for temporary files) and renamed into place,
every file we read is opened without following a link, without blocking, and
only if it is a plain file, and a symlink is removed (the link, never its
target) rather than followed. What Blender itself writes (a ``.blend``) is
written in a fresh private folder of ours and moved into place (``publish``).

A full disk becomes ``DiskFull`` and a read-only, missing or forbidden folder
``FolderUnusable``; both name the folder: the generic "unexpected error, see
the log" helps nobody when the log is on that disk.
"""

from __future__ import annotations

import errno
import hashlib
import logging
import os
import shutil
import stat
import tempfile
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, Callable, Iterator

from .errors import Hitem3DError
from .messages import msg

log = logging.getLogger(__name__)

_NOFOLLOW = getattr(os, "O_NOFOLLOW", 0)
_NONBLOCK = getattr(os, "O_NONBLOCK", 0)
_BINARY = getattr(os, "O_BINARY", 0)
_DISK_FULL = frozenset({errno.ENOSPC, getattr(errno, "EDQUOT", errno.ENOSPC)})
# A folder we cannot write in: read-only (a mount, a share), forbidden, or gone.
_UNUSABLE = frozenset({errno.EROFS, errno.EACCES, errno.EPERM, errno.ENOENT, errno.ENOTDIR})
_CHUNK = 1024 * 1024


class DiskFull(Hitem3DError, OSError):
    """No room left where we write: retryable by hand once space is freed.
    An ``OSError`` too, so code that copes with a failed write copes with it."""

    def __init__(self, folder: Path) -> None:
        super().__init__(msg("Not enough disk space in {folder}: free some space and retry", folder=str(folder)))
        self.folder = folder


class FolderUnusable(Hitem3DError, OSError):
    """A folder we must write in is read-only, forbidden or gone: one message,
    and the task can be retried once the folder is fixed."""

    def __init__(self, folder: Path) -> None:
        super().__init__(msg("Cannot write in {folder}: it is read-only, missing or not yours; fix it, then retry",
                             folder=str(folder)))
        self.folder = folder


class NotAFile(OSError):
    """Something other than a plain file (a FIFO, a device, a socket, a
    folder) where we read a file of ours: never opened for reading."""

    def __init__(self, path: Path) -> None:
        super().__init__(errno.EINVAL, "not a regular file", str(path))


def is_disk_full(exc: BaseException) -> bool:
    return isinstance(exc, OSError) and exc.errno in _DISK_FULL


def write_error(exc: OSError, folder: Path) -> OSError:
    """``exc`` as the error to raise for a failed write in ``folder``: ``DiskFull``,
    ``FolderUnusable``, or ``exc`` itself."""
    if isinstance(exc, (DiskFull, FolderUnusable)):
        return exc
    if is_disk_full(exc):
        return DiskFull(folder)
    if exc.errno in _UNUSABLE:
        return FolderUnusable(folder)
    return exc


def is_link(path: Path) -> bool:
    try:
        return stat.S_ISLNK(os.lstat(path).st_mode)
    except OSError:
        return False


def is_regular_file(path: Path) -> bool:
    """A plain file (not a symlink, folder, FIFO or device)."""
    try:
        return stat.S_ISREG(os.lstat(path).st_mode)
    except OSError:
        return False


def _exists(path: Path) -> bool:
    try:
        os.lstat(path)
    except FileNotFoundError:
        return False
    except OSError:
        return True  # cannot tell: assume it is there
    return True


def inside(folder: Path, path: str | os.PathLike[str]) -> bool:
    """Whether ``path`` names an entry inside ``folder`` by its text alone
    (``..`` resolved, symlinks not): paths from a journal are input."""
    try:
        target = os.path.normpath(os.path.abspath(os.fspath(path)))
        base = os.path.normpath(os.path.abspath(os.fspath(folder)))
        return os.path.commonpath([target, base]) == base and target != base
    except (ValueError, TypeError):  # another drive on Windows, a NUL byte
        return False


def open_read(path: Path, *, follow: bool = False) -> BinaryIO:
    """Open a plain file for reading. ``OSError`` for a symlink (ELOOP, unless
    ``follow``: a file the artist chose) and ``NotAFile`` for anything that
    is not a plain file.

    NOTE: ``O_NONBLOCK``: opening a FIFO for reading otherwise waits for a
    writer, forever; on a plain file it changes nothing."""
    fd = os.open(path, os.O_RDONLY | _NONBLOCK | _BINARY | (0 if follow else _NOFOLLOW))
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise NotAFile(path)
    except BaseException:
        os.close(fd)
        raise
    return os.fdopen(fd, "rb")


def read_bytes(path: Path, *, max_bytes: int | None = None, follow: bool = False) -> bytes:
    """A plain file's bytes (see ``open_read``); ``OSError`` (EFBIG) when it
    holds more than ``max_bytes``: a file of ours is never that large."""
    with open_read(path, follow=follow) as file:
        if max_bytes is not None:
            data = file.read(max_bytes + 1)
            if len(data) > max_bytes:
                raise OSError(errno.EFBIG, f"larger than {max_bytes} bytes", str(path))
            return data
        return file.read()


def ensure_folder(folder: Path) -> Path:
    """Make ``folder`` (and its parents) if missing and check it is a folder
    we can use; ``FolderUnusable`` or ``DiskFull`` if not."""
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except FileExistsError:
        raise FolderUnusable(folder) from None  # a file where the folder (or a parent) should be
    except OSError as exc:
        raise write_error(exc, folder) from None
    if not folder.is_dir():
        raise FolderUnusable(folder)
    return folder


def check_writable(folder: Path) -> None:
    """Create and delete a file in ``folder``: ``FolderUnusable`` or
    ``DiskFull`` now rather than after minutes of work."""
    ensure_folder(folder)
    try:
        fd, name = tempfile.mkstemp(prefix=".hitem3d-probe-", dir=folder)
    except OSError as exc:
        raise write_error(exc, folder) from None
    os.close(fd)
    remove_quietly(Path(name))


def create_new(path: Path, mode: int = 0o644) -> BinaryIO:
    """A new, empty file at ``path`` for writing. Whatever was there (an old
    partial file, a planted symlink) is removed first, never followed;
    ``O_EXCL`` refuses a symlink planted between the two steps."""
    try:
        remove(path)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | _NOFOLLOW | _BINARY, mode)
    except OSError as exc:
        raise write_error(exc, path.parent) from None
    return os.fdopen(fd, "wb")


def remove(path: Path) -> None:
    """Delete ``path`` if it exists; a symlink loses the link, never its target.

    NOTE: a read-only file system refuses to delete even a file that is not
    there (EROFS before ENOENT): nothing to delete is never an error."""
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass
    except OSError:
        if _exists(path):
            raise


def remove_quietly(path: Path) -> bool:
    """``remove`` for cleaning up: a file that cannot be deleted is logged,
    never raised (a cleanup that raises leaves everything after it undone).
    True when nothing is left at ``path``."""
    try:
        remove(path)
    except OSError as exc:
        log.warning("Could not delete %s: %s", path.name, exc.strerror or exc)
        return False
    return True


def _temporary(folder: Path, name: str, mode: int) -> tuple[int, Path]:
    """A new file with a random name beside ``name``, hidden (a dot name: the
    Asset Browser skips it), created with ``O_EXCL`` (``mkstemp``)."""
    try:
        fd, tmp_name = tempfile.mkstemp(prefix=f".{name}.", suffix=".tmp", dir=folder)
    except OSError as exc:
        raise write_error(exc, folder) from None
    try:
        os.fchmod(fd, mode)
    except (AttributeError, OSError):  # Windows: no POSIX modes
        pass
    return fd, Path(tmp_name)


def write_atomic(path: Path, data: bytes, *, mode: int = 0o644, fsync: bool = True) -> None:
    """Replace ``path`` with ``data`` in one step (a new temporary file with a
    random name, then ``os.replace``, which replaces a symlink rather than
    writing through it). A full disk raises ``DiskFull``, a read-only or
    missing folder ``FolderUnusable``; either leaves the old file as it was."""
    folder = ensure_folder(path.parent)
    fd, tmp = _temporary(folder, path.name, mode)
    try:
        with os.fdopen(fd, "wb") as file:
            file.write(data)
            file.flush()
            if fsync:
                os.fsync(file.fileno())
        os.replace(tmp, path)
    except BaseException as exc:
        remove_quietly(tmp)
        if isinstance(exc, OSError):
            raise write_error(exc, folder) from None
        raise


STAGING_PREFIX = ".staging-"


def staging_prefix(pid: int | None = None) -> str:
    """Private folders carry their Blender's PID: the folder's owner removes
    those a Blender that is gone left behind (``leftover_staging``)."""
    return f"{STAGING_PREFIX}{os.getpid() if pid is None else pid}-"


def leftover_staging(folder: Path, alive: Callable[[int], bool]) -> list[Path]:
    """Private folders in ``folder`` whose Blender is gone."""
    found = []
    try:
        entries = list(folder.glob(STAGING_PREFIX + "*"))
    except OSError:
        return []
    for path in entries:
        pid_text = path.name[len(STAGING_PREFIX):].split("-", 1)[0]
        pid = int(pid_text) if pid_text.isdigit() else 0
        if pid != os.getpid() and not alive(pid):
            found.append(path)
    return found


def private_folder(parent: Path, prefix: str | None = None) -> Path:
    """A new folder only we can enter (``mkdtemp``: random name, mode 0700),
    where a program that follows links (Blender writing a ``.blend``, which
    also writes ``<name>@`` first) finds nothing planted."""
    folder = ensure_folder(parent)
    try:
        return Path(tempfile.mkdtemp(prefix=prefix or staging_prefix(), dir=folder))
    except OSError as exc:
        raise write_error(exc, folder) from None


def remove_folder(folder: Path) -> None:
    """Delete a folder of ours and what is in it; links inside are removed,
    never followed. Failures are logged, never raised."""
    if is_link(folder) or not folder.is_dir():
        remove_quietly(folder)
        return
    # NOTE: rmtree removes links inside, never their targets (and on Linux
    # works through folder handles, so a folder swapped for a link meanwhile
    # is not followed either).
    shutil.rmtree(folder, ignore_errors=True)
    if _exists(folder):
        log.warning("Could not delete the folder %s", folder.name)


# -- sealed files: what we wrote, proved before it is used again -------------------------------


@dataclass(frozen=True)
class Seal:
    """What a file we wrote held: its SHA-256 and the identity of the file on
    disk right after (device, inode, size, change times). Kept in our own
    journal, never beside the file, where whoever can replace the file could
    replace its seal too."""

    digest: str = ""
    identity: str = ""

    def __bool__(self) -> bool:
        return bool(self.digest)


def _identity(info: os.stat_result) -> str:
    return f"{info.st_dev}:{info.st_ino}:{info.st_size}:{info.st_mtime_ns}:{info.st_ctime_ns}"


def _digest(file: BinaryIO) -> str:
    hasher = hashlib.sha256()
    for block in iter(lambda: file.read(_CHUNK), b""):
        hasher.update(block)
    return "sha256:" + hasher.hexdigest()


def file_identity(path: Path) -> str:
    """The identity of the entry at ``path`` (a link as itself); '' if none."""
    try:
        return _identity(os.lstat(path))
    except OSError:
        return ""


@contextmanager
def written_elsewhere(dest: Path) -> Iterator[Path]:
    """Where a program that follows links (Blender saving an image, its glTF
    exporter) writes what becomes ``dest``: a path in a fresh private folder
    beside it. When the block ends without an error the file is moved to
    ``dest``; the folder goes either way, so a failure leaves nothing."""
    folder = private_folder(dest.parent)
    try:
        staged = folder / dest.name
        yield staged
        publish(staged, dest, seal=False)
    finally:
        remove_folder(folder)


def publish(staged: Path, dest: Path, *, mode: int = 0o644, seal: bool = True) -> Seal:
    """Move a file from a private folder of ours to ``dest`` (a shared library,
    say) and seal it. Renamed when both are on one file system, else copied
    into a new file with a random name beside ``dest`` and renamed: nothing
    is ever written through a link planted in ``dest``'s folder. Raises
    ``DiskFull``, ``FolderUnusable`` or ``OSError``; leaves no partial file."""
    folder = ensure_folder(dest.parent)
    with open_read(staged) as source:
        digest = _digest(source) if seal else ""
        try:
            os.fchmod(source.fileno(), mode)
        except (AttributeError, OSError):
            pass
        try:
            os.replace(staged, dest)
            # NOTE: the identity of the file we hashed, after the rename (which
            # changes its change time): a file swapped in meanwhile differs.
            return Seal(digest, _identity(os.fstat(source.fileno())))
        except OSError as exc:
            if exc.errno != errno.EXDEV:
                raise write_error(exc, folder) from None
        source.seek(0)
        fd, tmp = _temporary(folder, dest.name, mode)
        try:
            with os.fdopen(fd, "wb") as target:
                shutil.copyfileobj(source, target, _CHUNK)
                target.flush()
                os.fsync(target.fileno())
                os.replace(tmp, dest)
                return Seal(digest, _identity(os.fstat(target.fileno())))
        except BaseException as exc:
            remove_quietly(tmp)
            if isinstance(exc, OSError):
                raise write_error(exc, folder) from None
            raise


def seal_holds(path: Path, seal: Seal, *, trust_identity: bool = os.name == "posix") -> str:
    """Whether ``path`` still holds what ``seal`` recorded: the identity of
    the file checked ('' when it does not). The same identity as when sealed
    proves it unchanged where the system keeps a change time nobody can set
    (POSIX ``st_ctime``); otherwise the file is hashed again. A link, a FIFO
    or anything but a plain file never holds a seal."""
    if not seal:
        return ""
    try:
        with open_read(path) as file:
            identity = _identity(os.fstat(file.fileno()))
            if trust_identity and identity == seal.identity:
                return identity
            return identity if _digest(file) == seal.digest else ""
    except OSError:
        return ""
