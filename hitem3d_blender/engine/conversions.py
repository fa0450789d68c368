"""Imports on Blender's side: convert in a child Blender, append on the main thread.

The import step (``engine.import_step``) hands a conversion over when a
download is ready; the timer (``engine.timer.tick``) calls ``finished`` on
every tick, which reaps killed converters, starts waiting ones and hands the
ended ones back. Nothing here ever waits on a child (only quitting does, for
at most a second).

At most ``at_once()`` converters run at once (a preference, by default from
this computer's memory; the one started ahead counts); the others wait their
turn in the order they came. They share one memory budget: each may use
``budget / at_once()`` (``core.conversion.limits_for``).

Background mode (``blender -b``, the command line, the ``bpy`` module)
converts the same way, with the same limits: its imports are input from the
network too, and one bad file must not take a farm node's memory or hang a
batch. ``batch`` drives the timer there. ``USE_CHILD_PROCESS = False`` (tests
that are not about conversion) imports in this process instead, with the same
result.
"""

from __future__ import annotations

import logging
import os
import sys
import time
from collections import deque
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable

import bpy

from ..scene import append, asset_library, importer
from ..core import asset_library as core_library
from ..core import safe_files
from ..core.conversion import (
    CHILD_ERRORS,
    ConversionFailed,
    ConversionOutcome,
    ConversionProcess,
    ConversionSpec,
    Launcher,
    Limits,
    Reaper,
    Starter,
    WarmChild,
    child_command,
    child_environment,
    limits_for,
    make_temp_folder,
    memory_budget,
    prune_temp_folders,
    release_temp_folder,
    remove_spare_temp_folders,
    spec_args,
    wait_args,
)
from ..core.converter_host import RemoteStarter
from ..core.errors import ImportFailed
from ..core.messages import Message, msg
from ..core.import_options import ImportOptions
from ..core.process_guard import alive
from ..core.safe_files import Seal
from ..core.task_ids import short_id
from . import state

log = logging.getLogger(__package__)

# Users get the child process. Tests that are not about conversion switch it
# off to import in-process (each child start costs Blender's start-up).
USE_CHILD_PROCESS = True
# Fixed limits for every converter instead of the machine's share (tests).
LIMITS: Limits | None = None
CHILD_SCRIPT = Path(__file__).resolve().parents[1] / "scene" / "convert_child.py"
MEMORY_BUDGET = memory_budget()


@dataclass
class _Conversion:
    process: ConversionProcess
    options: ImportOptions
    provenance: dict[str, str]
    cover: Path | None
    on_start: Callable[[], None]


# Every conversion handed over and not yet handed back ...
_conversions: dict[str, _Conversion] = {}
# ... those waiting for a converter, in the order they came (one removed
# meanwhile is skipped) ...
_queue: deque[str] = deque()
# ... and those ``finished`` polls: started, or ended without starting. A
# timer call costs in proportion to these, never to the queue.
_active: dict[str, None] = {}
_warm: WarmChild | None = None  # at most one, while a task is on its way
_warm_failed = False  # the last start failed: no retry until no task is on its way
_reaper = Reaper()
# A spawn waits for the child's exec, up to 4 ms on a busy machine, which no
# timer call should. Where Python threads are safe in Blender's process
# (Python 3.12 and newer: Blender 5.1 and newer), converters are started on a
# thread of their own. NOTE: with Python 3.11 (Blender 4.2 to 5.0) a thread of
# ours running Python while an operator runs can crash Blender
# (docs/threads-in-blender.md): there the worker process starts them
# (``core.converter_host``). With no worker process running (a conversion
# before any download), the timer's call starts them, ahead only in a call
# that has done little else.
THREADS_ARE_SAFE = sys.version_info >= (3, 12)
_starter: Launcher | None = (Starter() if THREADS_ARE_SAFE
                             else RemoteStarter(lambda: state.current.runner))
_warm_deferred_since: float | None = None  # time.monotonic() since a start ahead waits for a quiet call
# A start ahead waits at most this long for a timer call that has done little else.
WARM_START_WAIT_S = 1.0
_pruned = False  # the temporary folders of a crashed session were looked for


def in_child() -> bool:
    return USE_CHILD_PROCESS


def at_once() -> int:
    """How many converters may run at once (the one started ahead included)."""
    return max(1, int(state.hooks.max_converters()))


def limits() -> Limits:
    """Each converter's limits: its share of the memory budget, or the tests' own."""
    return LIMITS if LIMITS is not None else limits_for(at_once(), MEMORY_BUDGET)


def waiting_message() -> Message:
    return msg("Waiting for a free converter (at most {count} at once): keep working", count=at_once())


def make_spec(*, task_id: str, glb: Path, file_stem: str, options: ImportOptions, provenance: dict[str, str],
              cover: Path | None, model: str, source_image: str, workdir: Path) -> ConversionSpec:
    """The conversion of one task, with its library entry registered and its
    date's catalog in the library's catalog file."""
    try:
        library = asset_library.ensure_registered()
        # A read-only or vanished library says so now, before a converter
        # works for minutes on an entry it cannot save.
        safe_files.check_writable(library)
    except OSError as exc:
        log.warning("Cannot use the asset library folder: %s", exc)
        raise ImportFailed(msg(CHILD_ERRORS["save_failed"])) from None
    now = datetime.now(timezone.utc)
    try:
        core_library.ensure_catalog(library, now)
    except (OSError, ValueError) as exc:
        # The asset still names its catalog; Blender lists it as unassigned until the file is fixed.
        log.warning("Could not add today's catalog to %s: %s", core_library.CATALOG_FILE, exc)
    current = limits()
    return ConversionSpec(
        task_id=task_id,
        glb=str(glb),
        entry=str(library / core_library.entry_name(file_stem)),
        result=str(workdir / f"{file_stem}.result.json"),
        collection_name=core_library.collection_name(task_id),
        options=options,
        provenance=provenance,
        cover=str(cover) if cover is not None else "",
        asset=core_library.asset_info(task_id=task_id, model=model, when=now, source_image=source_image),
        memory_limit_bytes=current.memory_bytes,
        parent_pid=os.getpid(),
        timeout_s=current.timeout_s,
        # Blender writes the entry here and it is moved into the library: a
        # link planted in a shared library is never written through.
        staging=str(make_temp_folder(workdir)),
    )


def import_here(spec: ConversionSpec) -> tuple[list[str], Seal]:
    """Everything in this process (``USE_CHILD_PROCESS`` off). Returns the
    objects' names and the entry's seal; raises ``ImportFailed``."""
    try:
        return importer.import_glb(Path(spec.glb), spec)
    finally:
        release_temp_folder(Path(spec.staging))


def start(spec: ConversionSpec, workdir: Path, cover: Path | None, on_start: Callable[[], None]) -> None:
    """Hand a conversion over. It starts now if fewer than ``at_once()`` run
    and none waits before it, else when its turn comes; ``on_start`` is called
    when it starts. A converter that cannot start ends with that error, seen
    by ``finished``."""
    stem = Path(spec.entry).stem
    spec_path = workdir / f"{stem}.spec.json"
    process = ConversionProcess(spec, spec_path, _command(spec_args(spec_path)), _environment(), limits(),
                                workdir / f"{stem}.converter.log", starter=_starter)
    _conversions[spec.task_id] = _Conversion(process, spec.options, dict(spec.provenance), cover, on_start)
    _queue.append(spec.task_id)
    _start_waiting()
    if is_waiting(spec.task_id):
        log.info("Task %s waits for a converter (%s at once)", short_id(spec.task_id), at_once())


def _start(task_id: str) -> bool:
    """Start one conversion (with the converter started ahead, if there is
    one); False if it could not start (its end then says why)."""
    global _warm, _pruned
    conversion = _conversions[task_id]
    _active[task_id] = None
    warm, _warm = _warm, None
    if not _pruned:
        _pruned = True
        prune_temp_folders(conversion.process.spec_path.parent, alive)
    try:
        conversion.process.start(warm=warm, limits=limits())
    except ConversionFailed as exc:
        conversion.process.fail_to_start(exc.message)
        return False
    pid = conversion.process.pid  # None while it starts on the starter's thread or in the worker process
    log.info("Converting task %s%s", short_id(task_id), f" in process {pid}" if pid is not None else "")
    return True


def _running() -> int:
    """Converters started and not seen to end (the one started ahead not included)."""
    return sum(1 for task_id in _active if _conversions[task_id].process.running)


def _waiting() -> int:
    return len(_conversions) - len(_active)


def _start_waiting() -> None:
    """Start waiting conversions, in the order they came, while there is room."""
    room = at_once() - _running() if _queue else 0
    while room > 0 and _queue:
        task_id = _queue.popleft()
        conversion = _conversions.get(task_id)
        if conversion is None or not conversion.process.waiting:
            continue  # removed or cancelled while it waited
        room -= 1
        if _start(task_id):
            conversion.on_start()


def _command(args: list[str]) -> list[str]:
    # NOTE: in Blender, sys.executable is its bundled Python, which cannot
    # import bpy: the child is Blender itself. As the bpy module, binary_path
    # is empty and this Python importing bpy is the child.
    return child_command(script=CHILD_SCRIPT, args=args, blender_binary=bpy.app.binary_path, python=sys.executable)


def _environment() -> dict[str, str]:
    return child_environment(os.environ, real_blender=bool(bpy.app.binary_path))


def keep_warm(wanted: bool, workdir: Callable[[], Path], *, may_start: bool = True) -> None:
    """While a task is on its way (made on Hitem3D, downloading) and a
    converter may start, keep one started and waiting, so Blender's start-up
    is over when the model arrives; none otherwise. An idle converter holds
    about 270 MB. A converter not needed after all is killed, never waited for.
    With a starter thread or the worker process its start runs there, and
    this call never waits for it. Without, ``may_start`` False: one that
    would start waits for a later call (the timer's call has done much already; a start costs
    about a millisecond), for at most WARM_START_WAIT_S."""
    global _warm, _warm_failed, _warm_deferred_since
    room = at_once() - _running() - _waiting()
    current = limits()
    if not (wanted and USE_CHILD_PROCESS and room > 0):
        _warm_deferred_since = None
        if not wanted:
            _warm_failed = False
        if _warm is not None:
            _warm.abandon(_reaper)
            _warm = None
        return
    if _warm is not None and _warm.alive and _warm.limits == current:
        return
    if _warm is not None and _warm.failed is not None:
        # The import will say so, with the same reason, when it starts a child itself.
        log.info("No converter started ahead: %s", _warm.failed)
        _warm.abandon(_reaper)
        _warm = None
        _warm_failed = True  # not again on every tick; the import tries once more itself
    if _warm_failed:
        return
    now = time.monotonic()
    if not may_start and (_starter is None or not _starter.ready):
        if _warm_deferred_since is None:
            _warm_deferred_since = now
        if now - _warm_deferred_since < WARM_START_WAIT_S:
            return
    _warm_deferred_since = None
    if _warm is not None:
        _warm.abandon(_reaper)  # it died waiting, or its limits changed: start another
    _warm = WarmChild(_command(wait_args(current.memory_bytes, os.getpid())), _environment(),
                      workdir() / "warm.converter.log", current, starter=_starter)
    try:
        _warm.start()
    except ConversionFailed as exc:
        # The import will say so, with the same reason, when it starts a child itself.
        log.info("No converter started ahead: %s", exc)
        _warm = None
        _warm_failed = True  # not again on every tick; the import tries once more itself


def pid_of(task_id: str) -> int | None:
    """The process ID of the task's converter, None while it waits or after it ended."""
    conversion = _conversions.get(task_id)
    return conversion.process.pid if conversion is not None else None


def warm_pid() -> int | None:
    return _warm.pid if _warm is not None else None


def is_converting(task_id: str) -> bool:
    return task_id in _conversions


def is_waiting(task_id: str) -> bool:
    """Handed over, waiting for a free converter."""
    conversion = _conversions.get(task_id)
    return conversion is not None and conversion.process.waiting


def files_in_use() -> set[Path]:
    """The GLBs converters read or will read: Clear Cache keeps them."""
    return {Path(conversion.process.spec.glb) for conversion in _conversions.values()}


def busy() -> bool:
    """Conversions running or waiting, or killed converters not reaped yet:
    the timer keeps polling."""
    return bool(_conversions) or bool(len(_reaper))


def finished() -> list[tuple[str, ConversionOutcome]]:
    """The conversions that ended and were not handed back yet. Never waits.
    Reaps killed converters and starts waiting ones where there is room."""
    _reaper.poll()
    _start_waiting()
    done: list[tuple[str, ConversionOutcome]] = []
    for task_id in list(_active):
        conversion = _conversions[task_id]
        try:
            outcome = conversion.process.poll()
        except Exception:  # noqa: BLE001 - one failure, one message: never again on every tick
            log.exception("Could not finish the conversion of task %s", short_id(task_id))
            conversion.process.cancel()
            outcome = ConversionOutcome(error=msg("Unexpected error while importing: see the Hitem3D log, then retry"))
        if outcome is not None:
            done.append((task_id, outcome))
    return done


def append_result(task_id: str, outcome: ConversionOutcome) -> list[str]:
    """The main thread's share: append the entry the child wrote. Raises
    ``ImportFailed`` (and then removes the entry: the library holds only what
    was imported)."""
    conversion = _conversions.pop(task_id)
    _active.pop(task_id, None)
    if not outcome.ok:
        raise ImportFailed(outcome.error)
    entry = Path(conversion.process.spec.entry)
    try:
        return append.append_entry(entry, conversion.options, provenance=conversion.provenance,
                                   cover=conversion.cover, seal=outcome.seal)
    except ImportFailed:
        if safe_files.seal_holds(entry, outcome.seal):
            safe_files.remove_quietly(entry)  # ours, but not imported: the library holds only what was
        raise


def append_from_library(entry: Path, options: ImportOptions, provenance: dict[str, str],
                        cover: Path | None, seal: Seal) -> list[str]:
    """Import Again: no download, no glTF import; only an entry that still
    holds what ``seal`` says."""
    return append.append_entry(entry, options, provenance=provenance, cover=cover, seal=seal)


def cancel(task_id: str) -> bool:
    """Kill the task's child (or take it out of the queue); True when there
    was one. Its end comes through ``finished``."""
    conversion = _conversions.get(task_id)
    if conversion is None:
        return False
    conversion.process.cancel()
    _active[task_id] = None  # one that waited has ended too: finished says so
    return True


def forget(task_id: str) -> None:
    """Drop a conversion whose end was seen, or stop one nobody wants any more
    (its task was removed): killed now, reaped by a later tick, and then its
    files go."""
    conversion = _conversions.pop(task_id, None)
    _active.pop(task_id, None)
    if conversion is not None:
        conversion.process.abandon(_reaper)


def stop_all() -> None:
    """Disable and quit: kill every child, then reap them (within a second)."""
    global _warm
    if _warm is not None:
        _warm.abandon(_reaper)
        _warm = None
    stopping = list(_conversions.values())
    _conversions.clear()
    _queue.clear()
    _active.clear()
    for conversion in stopping:
        try:
            conversion.process.abandon(_reaper)
        except Exception:  # noqa: BLE001 - the others must stop too
            log.exception("Could not stop converter process %s", conversion.process.pid)
    _reaper.wait(1.0)
    if isinstance(_starter, Starter):
        _starter.stop(1.0)  # only now: a converter is killed with the thread that started it
    remove_spare_temp_folders()


def reaping() -> list[int]:
    """Process IDs of converters killed and not reaped yet."""
    return _reaper.pids


def push_undo(task_id: str) -> None:
    """One undo step per import, named after the task, so Ctrl+Z takes the
    whole import back (the step stores the file as it is after the import)."""
    message = f"Import Hitem3D task {short_id(task_id)}"
    try:
        # NOTE: a timer runs without a window in its context; the undo stack needs one.
        with importer.in_window():
            undo: Any = bpy.ops.ed.undo_push
            if undo.poll():
                undo(message=message)
    except RuntimeError:
        log.debug("No undo step for %s", message, exc_info=True)
