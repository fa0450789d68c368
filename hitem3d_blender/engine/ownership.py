"""Whether this Blender owns the extension's folder (``core.instance_lock``),
and what only the owner does to it here: remove leftover partial files.

Only the owner resumes unfinished tasks, removes leftover partial files and
writes the journal; a second Blender on the same folder is a guest that still
imports, keeping its own tasks for the session.
"""

from __future__ import annotations

from .. import identity
from ..core import safe_files
from ..core.downloader import PARTIAL_SUFFIX
from ..core.instance_lock import InstanceLock, leftover_partials, pid_alive
from ..core.messages import msg
from . import files, state


def owns_folder() -> bool:
    """Take the folder's lock on first use in a session; whether it is ours."""
    session = state.current
    if session.lock is None:
        session.lock = InstanceLock(files.user_dir())
        if not session.lock.acquire():
            state.hooks.post_report(msg("Another Blender is following the Hitem3D tasks: here they are "
                                        "imported, but not kept after you quit"), "WARNING")
    return session.lock.owned


def remove_partial_files() -> None:
    """Leftovers of a Blender that was killed mid-download: never imported,
    never shown, just removed, by the folder's owner only (a live instance's
    partial files carry its PID and are left alone)."""
    if not owns_folder():
        return
    for partial in leftover_partials(files.results_dir(), PARTIAL_SUFFIX):
        safe_files.remove_quietly(partial)
    # The private folders where Blender wrote an upload or an export (the
    # converters' own are pruned by ``conversions``).
    for name in (identity.UPLOADS, identity.EXPORTS):
        for folder in safe_files.leftover_staging(identity.user_dir() / name, pid_alive):
            safe_files.remove_folder(folder)


def release(session: state.Session) -> None:
    if session.lock is not None:
        session.lock.release()
