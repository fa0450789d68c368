"""One Blender at a time owns the extension's folder.

Two Blender instances share one user folder. Without coordination one deletes
the other's partial downloads at start-up, their journals overwrite each
other, and both resume the same tasks. The first instance takes a lock file
(its PID, host and a random session cookie); while it lives it alone resumes
unfinished tasks, removes leftover partial files and writes the journal.

Any other instance is a *guest*: it shows the history as it was when it
started, imports and pastes task IDs as usual (its downloads use partial
files named with its PID, so nothing collides), but keeps its own tasks for
this session only and resumes nothing. A lock whose process is gone (a crash,
a kill) is stale and taken over.
"""

from __future__ import annotations

import json
import logging
import os
import secrets
import socket
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from . import safe_files

log = logging.getLogger(__name__)

LOCK_NAME = "instance.lock"


@dataclass(frozen=True)
class Holder:
    pid: int
    host: str
    cookie: str


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


class InstanceLock:
    """The lock file in ``folder``. ``acquire`` says whether this instance owns
    the folder; ``release`` gives it up (only if it is still ours)."""

    def __init__(self, folder: Path, *, pid: int | None = None, host: str | None = None) -> None:
        self.path = folder / LOCK_NAME
        self.me = Holder(os.getpid() if pid is None else pid, host or socket.gethostname(),
                         secrets.token_hex(8))
        self.owned = False

    def acquire(self) -> bool:
        """Take the lock unless a live instance holds it; a stale one is taken over."""
        if safe_files.is_link(self.path):
            safe_files.remove(self.path)  # planted: never read or written through
        for _ in range(2):
            if self._create():
                self.owned = True
                return True
            holder = self.holder()
            if holder == self.me:
                self.owned = True
                return True
            if holder is None and self._young():
                # Another instance is between creating the file and writing it.
                return False
            if holder is not None and not self._stale(holder):
                log.info("Another Blender (PID %d) owns the Hitem3D folder: this one is a guest", holder.pid)
                self.owned = False
                return False
            log.info("Taking over a stale Hitem3D lock%s", f" of PID {holder.pid}" if holder else "")
            safe_files.remove(self.path)
        self.owned = False
        return False

    def release(self) -> None:
        if self.owned and self.holder() == self.me:
            safe_files.remove(self.path)
        self.owned = False

    def holder(self) -> Holder | None:
        """Who holds the lock now; None when there is no (readable) lock."""
        try:
            data = json.loads(safe_files.read_bytes(self.path).decode("utf-8"))
            return Holder(int(data["pid"]), str(data["host"]), str(data["cookie"]))
        except (OSError, ValueError, KeyError, TypeError):
            return None

    def _create(self) -> bool:
        text = json.dumps({"pid": self.me.pid, "host": self.me.host, "cookie": self.me.cookie,
                           "since": time.strftime("%Y-%m-%dT%H:%M:%S")})
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0), 0o644)
        except FileExistsError:
            return False
        except OSError:
            log.info("Could not create the Hitem3D lock file", exc_info=True)
            return False
        with os.fdopen(fd, "w", encoding="utf-8") as file:
            file.write(text)
        return True

    def _young(self) -> bool:
        try:
            return time.time() - os.lstat(self.path).st_mtime < 5.0
        except OSError:
            return False

    def _stale(self, holder: Holder) -> bool:
        if holder.pid == self.me.pid and holder.host == self.me.host:
            return True  # this process, before the add-on was disabled and enabled again
        if holder.host != self.me.host:
            # A shared (network) folder used from another machine: its PIDs
            # mean nothing here, so the lock is respected.
            return False
        return not pid_alive(holder.pid)


def leftover_partials(folder: Path, suffix: str = ".part") -> list[Path]:
    """Partial downloads in ``folder`` whose writer is gone: named
    ``<name>.<pid>.part`` with a PID that no longer runs (or with no PID, as
    older versions named them). Only the folder's owner removes them."""
    leftovers = []
    for path in folder.glob("*" + suffix):
        parts = path.name.split(".")
        pid = int(parts[-2]) if len(parts) >= 3 and parts[-2].isdigit() else 0
        if pid != os.getpid() and not pid_alive(pid):
            leftovers.append(path)
    return leftovers
