"""Where a finished download becomes objects in the scene.

``run`` takes a record in DOWNLOADED (or DONE, to import again) and leaves it
DONE with the new objects' names, or FAILED with a message saying what to do;
never half-done. It runs on the main thread, from the timer or an operator.

The glTF import runs in a child Blender (``conversions``), in a window and
in background mode alike: ``run`` hands it over and leaves the record
IMPORTING (converting, or waiting for a free converter); ``timer.tick`` polls
it and hands its outcome to ``finish_conversion``, which appends the result.

NOTE: this is the one place to extend how results land in the scene: the
timer and ``control.import_now`` both come through here.
"""

from __future__ import annotations

import logging
from datetime import datetime, timezone
from pathlib import Path
from typing import Callable

from . import conversions
from ..scene import importer, kind_import
from ..core.conversion import ConversionOutcome, ConversionSpec
from ..core.errors import Hitem3DError, ImportFailed
from ..core.messages import NONE, msg
from ..core import safe_files
from ..core.safe_files import Seal
from ..core.tasks import TaskRecord, TaskState
from . import files, state

log = logging.getLogger(__package__)


def provenance(rec: TaskRecord) -> dict[str, str]:
    """Custom properties that tie each imported object to its task."""
    tags = {
        importer.TASK_ID_PROPERTY: rec.task_id,
        "hitem3d_imported_at": datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
    }
    if rec.model:
        tags["hitem3d_model"] = rec.model
    return tags


def _source_image(rec: TaskRecord) -> str:
    image = rec.generation.get("image") or (rec.generation.get("views") or {}).get("front", "")
    return image if isinstance(image, str) else ""


def run(rec: TaskRecord) -> None:
    """Import ``rec``'s downloaded file: in a child Blender (the timer appends
    its result later), or right here for what imports itself (a depth map,
    STL parts) and where conversion is switched off (tests)."""
    rec.move_to(TaskState.IMPORTING)
    state.current.import_requests.discard(rec.task_id)
    state.current.downloaded.discard(rec.task_id)
    state.current.journal_dirty = True
    cover = Path(rec.cover_path) if rec.cover_path else None
    path = Path(rec.result_path)
    if kind_import.imports_itself(rec.task_id, path):
        # A depth map or an STL: no glTF to convert, imported here.
        try:
            names = _whole(rec, lambda: kind_import.import_result(
                rec.task_id, path, rec.options, provenance=provenance(rec), request=rec.generation))
        except Exception as exc:  # noqa: BLE001 - any failure must leave a retryable task
            _failed(rec, exc)
            return
        _done(rec, names)
        return
    try:
        # The checks on a GLB apply whoever imports it: the converter runs them
        # in its own process (and says why it refused a file), an import here
        # in ``importer.run_gltf``. Never on this thread: a hostile file's JSON
        # can take the check a second.
        if not safe_files.is_regular_file(path):
            raise ImportFailed(msg("The downloaded model is gone from the cache: retry"))
        spec = conversions.make_spec(
            task_id=rec.task_id, glb=path, file_stem=files.file_stem(rec.task_id), options=rec.options,
            provenance=provenance(rec), cover=cover, model=rec.model, source_image=_source_image(rec),
            workdir=files.work_dir())
        if conversions.in_child():
            rec.message = conversions.waiting_message()
            conversions.start(spec, files.work_dir(), cover, on_start=lambda: _converting(rec.task_id))
            state.hooks.shown_changed()
            return  # the timer polls it; see finish_conversion
        # Tests not about conversion: Blender's importer here.
        names, seal = _import_here(rec, spec)
    except Exception as exc:  # noqa: BLE001 - any failure must leave a retryable task
        _failed(rec, exc)
        return
    _done(rec, names, seal)


def _converting(task_id: str) -> None:
    """A converter took the task (at once, or when its turn came)."""
    rec = state.current.book.get(task_id)
    if rec is not None and rec.state is TaskState.IMPORTING:
        rec.message = msg("Converting in a separate Blender: keep working")
        state.hooks.shown_changed()


def finish_conversion(task_id: str, outcome: ConversionOutcome) -> None:
    """A child ended: append its result, or record why not."""
    rec = state.current.book.get(task_id)
    if rec is None or rec.state is not TaskState.IMPORTING:
        conversions.forget(task_id)  # removed meanwhile: its entry went with it
        return
    if outcome.cancelled:
        conversions.forget(task_id)
        rec.move_to(TaskState.CANCELLED)
        rec.message = NONE
        state.current.journal_dirty = True
        return
    try:
        names = _whole(rec, lambda: conversions.append_result(task_id, outcome))
    except Exception as exc:  # noqa: BLE001 - any failure must leave a retryable task
        _failed(rec, exc)
        return
    _done(rec, names, outcome.seal)


def append_from_library(rec: TaskRecord, entry: Path) -> None:
    """Import Again: append the task's library entry (no download, no glTF
    import), if it still holds what this Blender wrote (``rec.entry_seal``)."""
    rec.move_to(TaskState.IMPORTING)
    cover = Path(rec.cover_path) if rec.cover_path else None
    try:
        names = _whole(rec, lambda: conversions.append_from_library(entry, rec.options, provenance(rec), cover,
                                                                    rec.entry_seal))
    except Exception as exc:  # noqa: BLE001 - any failure must leave a retryable task
        _failed(rec, exc)
        return
    _done(rec, names)


def _import_here(rec: TaskRecord, spec: ConversionSpec) -> tuple[list[str], Seal]:
    """``conversions.import_here`` as a whole (``_whole``); the names and the entry's seal."""
    sealed = Seal()

    def bring() -> list[str]:
        nonlocal sealed
        names, sealed = conversions.import_here(spec)
        return names

    return _whole(rec, bring), sealed


def _whole(rec: TaskRecord, bring: Callable[[], list[str]]) -> list[str]:
    """Bring the result into the scene and arrange it as its kind asks (parts
    into their collection, colours shown), all or nothing: a failure anywhere
    removes every data-block either step made."""
    with kind_import.import_failures(f"import of {rec.short_id}"):
        return kind_import.arrange(rec.task_id, bring(), rec.generation)


def _failed(rec: TaskRecord, exc: Exception) -> None:
    if not isinstance(exc, Hitem3DError):
        log.exception("Import of task %s failed", rec.task_id)
        exc = ImportFailed(msg("Unexpected error while importing: see the Hitem3D log, then retry"))
    rec.move_to(TaskState.FAILED)
    rec.message = exc.message
    state.current.journal_dirty = True
    state.hooks.post_report(msg("Task {short}: {reason}", short=rec.short_id, reason=exc.message), "ERROR")


def _done(rec: TaskRecord, names: list[str], seal: Seal | None = None) -> None:
    try:
        names = state.hooks.after_import(rec, names)
    except Exception:  # noqa: BLE001 - naming and placing are extras: the import stands
        log.exception("After-import step of task %s failed", rec.task_id)
    rec.imported_objects = names
    if seal is not None:
        rec.entry_seal = seal
    rec.move_to(TaskState.DONE)
    rec.message = NONE
    state.current.journal_dirty = True
    if not state.runs_to_end():
        conversions.push_undo(rec.task_id)
    state.hooks.post_report(msg("Imported {count} object(s) from Hitem3D task {short}", count=len(names),
                                short=rec.short_id), "INFO")
