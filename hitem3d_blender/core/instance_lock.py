"""One Blender at a time owns the extension's folder.

Two Blender instances share one user folder. Without coordination one deletes
the other's partial downloads at start-up, their journals overwrite each
other, and both resume the same tasks. The first instance takes the lock; while
it lives it alone resumes unfinished tasks, removes leftover partial files and
writes the journal.

The lock is the operating system's (``fcntl.flock``, ``msvcrt.locking`` on
Windows) on the file ``instance.lock``, held for the whole session: exactly
one process holds it however many start at once, and the system gives it back
when that process ends, a crash or a kill included, so no PID is ever judged
alive or dead. The file itself names the holder (PID, host, the process's start
time, a random owner token, when it took the lock) for people and for the one
case the OS lock cannot tell: this very process, whose earlier session (before
a disable and enable) still holds it. The file is never deleted: a process that
deleted it while another had it open would let two processes lock two files.

Where the file system has no locks at all (some network shares), the file's
content decides, with the process's start time: a reused PID is not its holder.

Any other instance is a *guest*: it shows the history as it was when it
started, imports and pastes task IDs as usual (its downloads use partial
files named with its PID, so nothing collides), but keeps its own tasks for
this session only and resumes nothing.
"""

from __future__ import annotations

import errno
import hashlib
import json
import logging
import os
import secrets
import socket
import stat
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from . import safe_files

log = logging.getLogger(__name__)

LOCK_NAME = "instance.lock"
# The holder's description is small; a larger file is not one of ours.
MAX_LOCK_BYTES = 4096
# Windows locks byte ranges, and a locked range cannot be read: the lock sits
# far past the text, which anyone may read.
_WINDOWS_LOCK_OFFSET = 1 << 30
# What a file system without locks answers.
_NO_LOCKS = frozenset({errno.ENOLCK, errno.EOPNOTSUPP, getattr(errno, "ENOTSUP", errno.EOPNOTSUPP),
                       getattr(errno, "ENOSYS", errno.EOPNOTSUPP), errno.EINVAL})


@dataclass(frozen=True)
class Holder:
    pid: int
    host: str
    token: str
    started: str = ""  # the process's start time (``process_start_time``), '' where unknown

    def is_process(self, pid: int, host: str, started: str) -> bool:
        """Whether this names the process ``pid`` on ``host`` that started at
        ``started`` (a reused PID started later)."""
        return self.pid == pid and self.host == host and bool(started) and self.started == started


def pid_alive(pid: int) -> bool:
    """Whether a process with ``pid`` runs on this machine."""
    if pid <= 0:
        return False
    if sys.platform == "win32":
        return _windows_pid_alive(pid)
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # alive, but another user's
        return True
    except OSError:
        return False
    return True


def _windows_pid_alive(pid: int) -> bool:
    import ctypes  # noqa: PLC0415 - Windows only

    kernel32 = ctypes.windll.kernel32  # type: ignore[attr-defined,unused-ignore]
    handle = kernel32.OpenProcess(0x1000, False, pid)  # PROCESS_QUERY_LIMITED_INFORMATION
    if not handle:
        return False
    try:
        code = ctypes.c_ulong()
        kernel32.GetExitCodeProcess(handle, ctypes.byref(code))
        return bool(code.value == 259)  # STILL_ACTIVE
    finally:
        kernel32.CloseHandle(handle)


def process_start_time(pid: int) -> str:
    """When ``pid`` started, as text that differs for a later process with the
    same PID; '' where the system does not say."""
    if sys.platform.startswith("linux"):
        try:
            with open(f"/proc/{pid}/stat", "rb") as file:
                # The command name may hold spaces and brackets: fields after the last ')'.
                fields = file.read().rsplit(b")", 1)[1].split()
            with open("/proc/sys/kernel/random/boot_id", "rb") as file:
                boot = file.read().strip().decode("ascii", "replace")
            return f"{boot}:{int(fields[19])}"  # starttime, clock ticks after boot
        except (OSError, IndexError, ValueError):
            return ""
    if sys.platform == "win32":
        return _windows_start_time(pid)
    return ""


def _windows_start_time(pid: int) -> str:
    try:
        import ctypes  # noqa: PLC0415 - Windows only

        kernel32 = ctypes.windll.kernel32  # type: ignore[attr-defined,unused-ignore]
        handle = kernel32.OpenProcess(0x1000, False, pid)  # PROCESS_QUERY_LIMITED_INFORMATION
        if not handle:
            return ""
        try:
            created, ended, kernel, user = (ctypes.c_ulonglong() for _ in range(4))
            if not kernel32.GetProcessTimes(handle, ctypes.byref(created), ctypes.byref(ended),
                                            ctypes.byref(kernel), ctypes.byref(user)):
                return ""
            return str(created.value)
        finally:
            kernel32.CloseHandle(handle)
    except Exception:  # noqa: BLE001 - a missing API costs the check, never the lock
        return ""


def _os_lock(fd: int) -> bool:
    """Take the OS lock on ``fd`` without waiting: True if taken, False if
    another holds it; ``OSError`` where the file system has no locks."""
    try:
        if os.name == "nt":
            import msvcrt  # noqa: PLC0415 - Windows only

            os.lseek(fd, _WINDOWS_LOCK_OFFSET, os.SEEK_SET)
            msvcrt.locking(fd, msvcrt.LK_NBLCK, 1)  # type: ignore[attr-defined,unused-ignore]
        else:
            import fcntl  # noqa: PLC0415 - POSIX only

            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except (BlockingIOError, PermissionError):
        return False
    except OSError as exc:
        if exc.errno in (errno.EAGAIN, errno.EACCES, getattr(errno, "EDEADLOCK", errno.EACCES)):
            return False
        raise
    return True


def _os_unlock(fd: int) -> None:
    try:
        if os.name == "nt":
            import msvcrt  # noqa: PLC0415 - Windows only

            os.lseek(fd, _WINDOWS_LOCK_OFFSET, os.SEEK_SET)
            msvcrt.locking(fd, msvcrt.LK_UNLCK, 1)  # type: ignore[attr-defined,unused-ignore]
        else:
            import fcntl  # noqa: PLC0415 - POSIX only

            fcntl.flock(fd, fcntl.LOCK_UN)
    except OSError:
        pass  # closing the file gives it back anyway


class InstanceLock:
    """The lock file in ``folder``. ``acquire`` says whether this instance owns
    the folder; ``release`` gives it up. ``pid`` and ``host`` stand for
    another process in tests."""

    def __init__(self, folder: Path, *, pid: int | None = None, host: str | None = None) -> None:
        self.path = folder / LOCK_NAME
        own_pid = os.getpid() if pid is None else pid
        self.me = Holder(own_pid, host or socket.gethostname(), secrets.token_hex(16),
                         process_start_time(own_pid))
        self.owned = False
        self._fd: int | None = None  # the locked file, open for the whole session
        self._without_os_lock = False  # the file system has no locks: the file's content decides

    def acquire(self) -> bool:
        """Take the lock unless another live instance holds it."""
        if self.owned:
            return True
        fd = self._open()
        if fd is None:
            return False
        try:
            taken = _os_lock(fd)
        except OSError as exc:
            if exc.errno not in _NO_LOCKS:
                log.info("Could not lock the Hitem3D folder (%s): this Blender is a guest", exc.strerror or exc)
                os.close(fd)
                return False
            os.close(fd)
            return self._acquire_without_os_lock()
        if taken:
            self._fd = fd
            self.owned = True
            self._write(fd)
            return True
        os.close(fd)
        holder = self.holder()
        if holder is not None and holder.is_process(self.me.pid, self.me.host, self.me.started):
            # This process holds it from a session that was not closed (a
            # disable that failed half-way): still this Blender.
            log.info("This Blender already holds the Hitem3D folder's lock")
            self.owned = True
            return True
        log.info("Another Blender%s owns the Hitem3D folder: this one is a guest",
                 f" (PID {holder.pid})" if holder is not None else "")
        return False

    def release(self) -> None:
        """Give the lock back (the file stays: see the module's NOTE)."""
        fd, self._fd = self._fd, None
        if fd is not None:
            try:
                os.ftruncate(fd, 0)  # nobody holds it now
            except OSError:
                pass
            _os_unlock(fd)
            os.close(fd)
        elif self.owned and self._without_os_lock:
            holder = self.holder()
            if holder is not None and holder.token == self.me.token:
                safe_files.remove_quietly(self.path)
        self.owned = False

    def holder(self) -> Holder | None:
        """Who holds the lock, as its file says; None when it says nothing usable."""
        try:
            data = json.loads(safe_files.read_bytes(self.path, max_bytes=MAX_LOCK_BYTES).decode("utf-8"))
            return Holder(int(data["pid"]), str(data["host"]), str(data["token"]), str(data.get("started", "")))
        except (OSError, ValueError, KeyError, TypeError, AttributeError):
            return None

    def _text(self) -> bytes:
        return json.dumps({"pid": self.me.pid, "host": self.me.host, "token": self.me.token,
                           "started": self.me.started, "since": time.strftime("%Y-%m-%dT%H:%M:%S")}).encode("utf-8")

    def _open(self) -> int | None:
        """The lock file, opened for writing without following a link or
        blocking on a FIFO; None (a guest) if it cannot be a lock file."""
        flags = os.O_RDWR | os.O_CREAT | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NONBLOCK", 0) \
            | getattr(os, "O_BINARY", 0)
        for _ in range(2):
            try:
                safe_files.ensure_folder(self.path.parent)
                fd = os.open(self.path, flags, 0o644)
            except OSError as exc:
                if safe_files.is_link(self.path):
                    safe_files.remove_quietly(self.path)  # planted: never written through
                    continue
                log.info("Could not open the Hitem3D lock file (%s): this Blender is a guest", exc.strerror or exc)
                return None
            if not stat.S_ISREG(os.fstat(fd).st_mode):
                os.close(fd)
                log.info("The Hitem3D lock file is not a file: this Blender is a guest")
                return None
            return fd
        return None

    def _write(self, fd: int) -> None:
        try:
            os.ftruncate(fd, 0)
            os.lseek(fd, 0, os.SEEK_SET)
            os.write(fd, self._text())
        except OSError as exc:  # the lock holds all the same; only its description is missing
            log.info("Could not describe the Hitem3D lock: %s", exc)

    def _acquire_without_os_lock(self) -> bool:
        """A file system without locks: the file's holder decides. A holder
        that is gone, or a PID now used by a later process, is stale."""
        self._without_os_lock = True
        holder = self.holder()
        if holder is not None and holder.token != self.me.token and not self._stale(holder):
            log.info("Another Blender (PID %d) owns the Hitem3D folder: this one is a guest", holder.pid)
            return False
        try:
            safe_files.write_atomic(self.path, self._text(), fsync=False)
        except OSError as exc:
            log.info("Could not write the Hitem3D lock file (%s): this Blender is a guest", exc.strerror or exc)
            return False
        # Two instances may have written at once: the file's last word wins.
        time.sleep(0.05)
        holder = self.holder()
        self.owned = holder is not None and holder.token == self.me.token
        return self.owned

    def _stale(self, holder: Holder) -> bool:
        if holder.host != self.me.host:
            # A shared folder used from another machine: its PIDs mean nothing here.
            return False
        if holder.pid == self.me.pid:
            return not holder.started or holder.started == self.me.started or not self.me.started
        if not pid_alive(holder.pid):
            return True
        started = process_start_time(holder.pid)
        return bool(started and holder.started and started != holder.started)  # the PID was reused


def process_tag(pid: int | None = None) -> str:
    """A short tag of a process's start time: with its PID, it names one
    process, never a later one that got the same PID ('x' where unknown)."""
    started = process_start_time(os.getpid() if pid is None else pid)
    return hashlib.sha256(started.encode("utf-8")).hexdigest()[:8] if started else "x"


def partial_owner(path: Path) -> tuple[int, str | None]:
    """The writer named in a partial file's name ``<name>.<pid>-<tag>-<n>.part``:
    its PID and process tag; ``(pid, None)`` for the older ``<name>.<pid>.part``
    and ``(0, None)`` for a name without one."""
    parts = path.name.split(".")
    writer = parts[-2] if len(parts) >= 3 else ""
    if writer.isdigit():
        return int(writer), None
    pieces = writer.split("-")
    if len(pieces) == 3 and pieces[0].isdigit():
        return int(pieces[0]), pieces[1]
    return 0, None


def leftover_partials(folder: Path, suffix: str = ".part") -> list[Path]:
    """Partial downloads in ``folder`` whose writer is gone: its process ended,
    or its PID now belongs to another process (a later Blender, this one
    included, that got the same PID). Only the folder's owner removes them;
    a live guest's are kept."""
    mine = (os.getpid(), process_tag())
    tags: dict[int, str] = {}
    leftovers = []
    try:
        found = list(folder.glob("*" + suffix))
    except OSError:
        return []
    for path in found:
        pid, tag = partial_owner(path)
        if (pid, tag) == mine:
            continue  # this process is writing it
        if pid == mine[0] or not pid_alive(pid):
            leftovers.append(path)  # an earlier process with our PID, or one that is gone
            continue
        if tag is not None and tag != "x":
            if pid not in tags:
                tags[pid] = process_tag(pid)
            if tags[pid] not in ("x", tag):
                leftovers.append(path)  # the PID was reused
    return leftovers
