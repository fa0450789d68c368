"""The Debian 13 chroot the real-window tier runs in, built once and cached.

Debian's ``blender`` package (4.3) runs under Xvfb with Mesa's software OpenGL,
so no GPU and no display is needed. Building the chroot takes about two minutes
and 2 GB; it is cached outside the checkout (CI works from a fresh clone) and
marked complete only after every package installed, so a build that was
interrupted or failed is thrown away and made again.

Mounts (``/proc`` and ``/dev``) exist only while a run uses the chroot; a run
that was killed leaves them behind, so ``clear_leftovers`` (called first by
every run) unmounts whatever ``/proc/mounts`` still lists under the cache and
ends processes still running inside it.
"""

from __future__ import annotations

import fcntl
import hashlib
import logging
import os
import shutil
import signal
import subprocess
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

log = logging.getLogger(__name__)

SUITE = "trixie"  # Debian 13: the first with Blender 4.x
MIRROR = "http://deb.debian.org/debian"
# Debian's Blender runs on the system Python and depends on neither python3-numpy (its
# glTF importer needs it) nor python3-requests (official builds bundle it; we use it).
PACKAGES = (
    "blender", "python3-numpy", "python3-requests", "xvfb", "xauth", "libgl1-mesa-dri", "mesa-utils",
    "x11-utils", "xdotool", "imagemagick",
)
# Change the recipe and the cache key changes with it: an old chroot is never reused by mistake.
RECIPE = (f"debootstrap --variant=minbase {SUITE} {MIRROR}; ln -s /proc/self/mounts /etc/mtab; "
          f"apt-get install --no-install-recommends {' '.join(PACKAGES)}")
COMPLETE_MARK = "hitem3d-gui-complete"
MOUNTS = ("proc", "dev")


class Unavailable(Exception):
    """The tier cannot run on this machine; the message says why."""


def cache_dir() -> Path:
    """Where chroots live: $HITEM3D_GUI_CACHE, else /var/cache/hitem3d-gui as root, else ~/.cache."""
    override = os.environ.get("HITEM3D_GUI_CACHE")
    if override:
        return Path(override)
    if os.geteuid() == 0:
        return Path("/var/cache/hitem3d-gui")
    return Path.home() / ".cache" / "hitem3d-gui"


def chroot_dir() -> Path:
    key = hashlib.sha256(RECIPE.encode()).hexdigest()[:12]
    return cache_dir() / f"{SUITE}-{key}"


def is_complete(root: Path) -> bool:
    mark = root / COMPLETE_MARK
    return mark.is_file() and mark.read_text(encoding="utf-8") == RECIPE


def unavailable_reason() -> str | None:
    """Why the tier cannot run here (None: it can). Only facts of the machine count."""
    if not hasattr(os, "geteuid") or os.geteuid() != 0:
        return "needs root (chroot, mounts)"
    if not Path("/proc/mounts").is_file():
        return "needs Linux (/proc/mounts)"
    if is_complete(chroot_dir()):
        return None
    if shutil.which("debootstrap") is None and shutil.which("apt-get") is None:
        return "debootstrap is missing and there is no apt-get to install it"
    return None


@contextmanager
def exclusive(timeout_s: float = 3600) -> Iterator[None]:
    """One run at a time on this machine (CI and a developer, say): they share the
    chroot, and a run's first step ends whatever still runs inside it. The lock is
    the kernel's, so a killed run leaves none behind."""
    base = cache_dir()
    base.mkdir(parents=True, exist_ok=True)
    with open(base / "lock", "a+", encoding="utf-8") as handle:
        deadline = time.monotonic() + timeout_s
        waited = False
        while True:
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if not waited:
                    handle.seek(0)
                    log.warning("waiting for another run of the real-window tier (pid %s) to finish",
                                handle.read().strip() or "unknown")
                    waited = True
                if time.monotonic() > deadline:
                    raise Unavailable(f"another run held {base / 'lock'} for {timeout_s:.0f} s") from None
                time.sleep(1.0)
        handle.seek(0)
        handle.truncate()
        handle.write(str(os.getpid()))
        handle.flush()
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _run(cmd: Sequence[str | Path], what: str, *, timeout: float = 1800) -> None:
    words = [str(part) for part in cmd]
    log.info("$ %s", " ".join(words))
    process = subprocess.run(words, capture_output=True, text=True, timeout=timeout,
                             env=dict(os.environ, DEBIAN_FRONTEND="noninteractive", LC_ALL="C"))
    if process.returncode != 0:
        tail = "\n".join((process.stdout + process.stderr).strip().splitlines()[-15:])
        raise Unavailable(f"{what} failed (exit {process.returncode}):\n{tail}")


def _mounted_under(path: Path) -> list[str]:
    """Mount points at or below ``path``, deepest first (the order to unmount)."""
    prefix = str(path.resolve()).rstrip("/") + "/"
    points = []
    with open("/proc/mounts", encoding="utf-8") as mounts:
        for line in mounts:
            fields = line.split()
            if len(fields) > 1:
                point = fields[1].replace("\\040", " ")
                if point.startswith(prefix):
                    points.append(point)
    return sorted(points, key=len, reverse=True)


def unmount_all(path: Path) -> None:
    for point in _mounted_under(path):
        if subprocess.run(["umount", point], capture_output=True).returncode != 0:
            # NOTE: a process still holding a file there keeps it busy; detach it so
            # the next run starts clean, the kernel frees it when the process ends.
            subprocess.run(["umount", "-l", point], capture_output=True)
    left = _mounted_under(path)
    if left:
        raise RuntimeError(f"could not unmount {', '.join(left)}")


def processes_inside(path: Path) -> list[int]:
    """Processes whose root directory is at or below ``path`` (ours: nothing else chroots there)."""
    target = str(path.resolve())
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            root = os.readlink(entry / "root")
        except OSError:
            continue
        if root == target or root.startswith(target + "/"):
            found.append(int(entry.name))
    return found


def end_processes_inside(path: Path, grace_s: float = 3.0) -> None:
    pids = processes_inside(path)
    for sig in (signal.SIGTERM, signal.SIGKILL):
        for pid in pids:
            try:
                os.kill(pid, sig)
            except ProcessLookupError:
                pass
        deadline = time.monotonic() + grace_s
        while time.monotonic() < deadline:
            pids = processes_inside(path)
            if not pids:
                return
            time.sleep(0.1)


def clear_leftovers() -> None:
    """Undo what a killed run left (processes in our chroots, their mounts, half-built
    chroots) and drop chroots of an older recipe (2 GB each)."""
    base = cache_dir()
    if not base.is_dir():
        return
    end_processes_inside(base)
    unmount_all(base)
    for entry in base.iterdir():
        if entry.is_dir() and (not is_complete(entry) or entry != chroot_dir()):
            log.info("removing an unfinished or outdated chroot: %s", entry)
            shutil.rmtree(entry, ignore_errors=True)


@contextmanager
def mounted(root: Path) -> Iterator[Path]:
    """/proc and /dev bound into the chroot for the duration; always unmounted."""
    try:
        for name in MOUNTS:
            (root / name).mkdir(exist_ok=True)
            _run(["mount", "--bind", f"/{name}", root / name], f"mount /{name}")
        yield root
    finally:
        end_processes_inside(root)
        unmount_all(root)


def _ensure_debootstrap() -> None:
    if shutil.which("debootstrap") is not None:
        return
    log.info("installing debootstrap on this machine (apt-get)")
    _run(["apt-get", "update", "-q"], "apt-get update")
    _run(["apt-get", "install", "-y", "-q", "debootstrap"], "apt-get install debootstrap")
    if shutil.which("debootstrap") is None:
        raise Unavailable("debootstrap is still missing after apt-get install")


def prepare() -> Path:
    """The cached chroot, built first if needed. Raises Unavailable with the reason."""
    root = chroot_dir()
    if is_complete(root):
        return root
    _ensure_debootstrap()
    started = time.monotonic()
    shutil.rmtree(root, ignore_errors=True)
    root.parent.mkdir(parents=True, exist_ok=True)
    log.info("building the Debian 13 chroot in %s (once; about 2 minutes, 2 GB)", root)
    try:
        _run(["debootstrap", "--variant=minbase", SUITE, root, MIRROR], "debootstrap")
        # Blender asks for the mount table (a warning on every start without it).
        (root / "etc" / "mtab").unlink(missing_ok=True)
        (root / "etc" / "mtab").symlink_to("/proc/self/mounts")
        with mounted(root):
            _run(["chroot", root, "apt-get", "update", "-q"], "apt-get update in the chroot")
            _run(["chroot", root, "apt-get", "install", "-y", "-q", "--no-install-recommends", *PACKAGES],
                 "apt-get install in the chroot")
            _run(["chroot", root, "apt-get", "clean"], "apt-get clean")
        # Last, and only now: a build that stopped anywhere above is redone next time.
        (root / COMPLETE_MARK).write_text(RECIPE, encoding="utf-8")
    except BaseException:
        unmount_all(root)
        shutil.rmtree(root, ignore_errors=True)
        raise
    log.info("chroot ready in %.0f s", time.monotonic() - started)
    return root
