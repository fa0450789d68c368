"""Imports on Blender's side: convert in a child Blender, append on the main thread.

The import step (``engine.import_step``) starts a conversion when a download
is ready; the timer (``engine.timer.tick``) polls it on every tick and hands
its end back. Nothing here ever waits on a child. In background
mode (``blender -b``, the command line, the ``bpy`` module) nobody waits on a
window, so the import runs in this process and gives the same scene and the
same library entry.
"""

from __future__ import annotations

import logging
import os
import sys
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable

import bpy

from ..scene import append, asset_library, importer
from ..core import asset_library as core_library
from ..core.conversion import (
    CHILD_ERRORS,
    ConversionFailed,
    ConversionOutcome,
    ConversionProcess,
    ConversionSpec,
    Limits,
    WarmChild,
    child_command,
    child_environment,
    spec_args,
    wait_args,
)
from ..core.errors import ImportFailed
from ..core.messages import msg
from ..core.import_options import ImportOptions
from ..core.task_ids import short_id

log = logging.getLogger(__package__)

# Users get the child process. Tests that are not about conversion switch it
# off to import in-process (each child start costs Blender's start-up).
USE_CHILD_PROCESS = True
LIMITS = Limits()
CHILD_SCRIPT = Path(__file__).resolve().parents[1] / "scene" / "convert_child.py"


@dataclass
class _Running:
    process: ConversionProcess
    options: ImportOptions
    provenance: dict[str, str]
    cover: Path | None


_running: dict[str, _Running] = {}
_warm: WarmChild | None = None  # at most one, while a task is on its way
_warm_failed = False  # the last start failed: no retry until no task is on its way


def in_child(runs_to_end: bool) -> bool:
    return USE_CHILD_PROCESS and not runs_to_end


def make_spec(*, task_id: str, glb: Path, file_stem: str, options: ImportOptions, provenance: dict[str, str],
              cover: Path | None, model: str, source_image: str, workdir: Path) -> ConversionSpec:
    """The conversion of one task, with its library entry registered and its
    date's catalog in the library's catalog file."""
    try:
        library = asset_library.ensure_registered()
    except OSError as exc:
        log.warning("Cannot use the asset library folder: %s", exc)
        raise ImportFailed(msg(CHILD_ERRORS["save_failed"])) from None
    now = datetime.now(timezone.utc)
    try:
        core_library.ensure_catalog(library, now)
    except (OSError, ValueError) as exc:
        # The asset still names its catalog; Blender lists it as unassigned until the file is fixed.
        log.warning("Could not add today's catalog to %s: %s", core_library.CATALOG_FILE, exc)
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
        memory_limit_bytes=LIMITS.memory_bytes,
        parent_pid=os.getpid(),
    )


def import_here(spec: ConversionSpec) -> list[str]:
    """Background mode: everything in this process. Raises ``ImportFailed``."""
    return importer.import_glb(Path(spec.glb), spec)


def start(spec: ConversionSpec, workdir: Path, cover: Path | None) -> None:
    """Start the child for ``spec``; raises ``ConversionFailed`` if it cannot start."""
    global _warm
    stem = Path(spec.entry).stem
    spec_path = workdir / f"{stem}.spec.json"
    process = ConversionProcess(spec, spec_path, _command(spec_args(spec_path)), _environment(), LIMITS,
                                workdir / f"{stem}.converter.log")
    warm, _warm = _warm, None
    process.start(warm=warm)
    log.info("Converting task %s in process %s", short_id(spec.task_id), process.pid)
    _running[spec.task_id] = _Running(process, spec.options, dict(spec.provenance), cover)


def _command(args: list[str]) -> list[str]:
    # NOTE: in Blender, sys.executable is its bundled Python, which cannot
    # import bpy: the child is Blender itself. As the bpy module, binary_path
    # is empty and this Python importing bpy is the child.
    return child_command(script=CHILD_SCRIPT, args=args, blender_binary=bpy.app.binary_path, python=sys.executable)


def _environment() -> dict[str, str]:
    return child_environment(os.environ, real_blender=bool(bpy.app.binary_path))


def keep_warm(wanted: bool, workdir: Callable[[], Path]) -> None:
    """While a task is on its way (made on Hitem3D, downloading), keep one
    converter started and waiting, so Blender's start-up is over when the
    model arrives; none otherwise. An idle converter holds about 270 MB."""
    global _warm, _warm_failed
    if not (wanted and USE_CHILD_PROCESS):
        _warm_failed = False
        if _warm is not None:
            _warm.stop()
            _warm = None
        return
    if (_warm is not None and _warm.alive) or _warm_failed:
        return
    if _warm is not None:
        _warm.stop()  # it died waiting: reap it, start another
    _warm = WarmChild(_command(wait_args(LIMITS.memory_bytes, os.getpid())), _environment(),
                      workdir() / "warm.converter.log")
    try:
        _warm.start()
    except ConversionFailed as exc:
        # The import will say so, with the same reason, when it starts a child itself.
        log.info("No converter started ahead: %s", exc)
        _warm = None
        _warm_failed = True  # not again on every tick; the import tries once more itself


def warm_pid() -> int | None:
    return _warm.pid if _warm is not None else None


def is_converting(task_id: str) -> bool:
    return task_id in _running


def files_in_use() -> set[Path]:
    """The GLBs converters read: Clear Cache keeps them."""
    return {Path(running.process.spec.glb) for running in _running.values()}


def busy() -> bool:
    return bool(_running)


def finished() -> list[tuple[str, ConversionOutcome]]:
    """The conversions that ended since the last call. Never waits."""
    done: list[tuple[str, ConversionOutcome]] = []
    for task_id, running in list(_running.items()):
        outcome = running.process.poll()
        if outcome is not None:
            done.append((task_id, outcome))
    return done


def append_result(task_id: str, outcome: ConversionOutcome) -> list[str]:
    """The main thread's share: append the entry the child wrote. Raises
    ``ImportFailed`` (and then removes the entry: the library holds only what
    was imported)."""
    running = _running.pop(task_id)
    if not outcome.ok:
        raise ImportFailed(outcome.error)
    entry = Path(running.process.spec.entry)
    try:
        return append.append_entry(entry, running.options, provenance=running.provenance, cover=running.cover)
    except ImportFailed:
        entry.unlink(missing_ok=True)
        raise


def append_from_library(entry: Path, options: ImportOptions, provenance: dict[str, str],
                        cover: Path | None) -> list[str]:
    """Import Again: no download, no glTF import."""
    return append.append_entry(entry, options, provenance=provenance, cover=cover)


def cancel(task_id: str) -> bool:
    """Kill the task's child; True when there was one. Its end comes through ``finished``."""
    running = _running.get(task_id)
    if running is None:
        return False
    running.process.cancel()
    return True


def forget(task_id: str) -> None:
    """Drop a conversion whose end was seen, or stop one nobody wants any more
    (its task was removed): killed and reaped, its files gone."""
    running = _running.pop(task_id, None)
    if running is not None:
        running.process.stop(timeout_s=1.0)


def stop_all() -> None:
    """Disable and quit: kill every child, then reap them (within a second)."""
    global _warm
    if _warm is not None:
        _warm.stop()
        _warm = None
    stopping = list(_running.values())
    _running.clear()
    for running in stopping:
        running.process.cancel()
    for running in stopping:
        running.process.stop(timeout_s=1.0)


def push_undo(task_id: str) -> None:
    """One undo step per import, named after the task, so Ctrl+Z takes the
    whole import back (the step stores the file as it is after the import)."""
    message = f"Import Hitem3D task {short_id(task_id)}"
    try:
        # NOTE: a timer runs without a window in its context; the undo stack needs one.
        with bpy.context.temp_override(**importer.window_override()):
            undo: Any = bpy.ops.ed.undo_push
            if undo.poll():
                undo(message=message)
    except RuntimeError:
        log.debug("No undo step for %s", message, exc_info=True)
