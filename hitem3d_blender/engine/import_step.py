"""Where a finished download becomes objects in the scene.

``run`` takes a record in DOWNLOADED (or DONE, to import again) and leaves it
DONE with the new objects' names, or FAILED with a message saying what to do;
never half-done. It runs on the main thread, from the timer or an operator.

NOTE: this is the one place to extend how results land in the scene (another
importer per task kind, an import in a child process, a rollback): the timer
and ``control.import_now`` both come through here.
"""

from __future__ import annotations

import logging
from datetime import datetime, timezone
from pathlib import Path

from .. import importer, kind_import
from ..core.errors import ImportFailed
from ..core.messages import NONE, msg
from ..core.tasks import TaskRecord, TaskState
from . import state

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


def run(rec: TaskRecord) -> None:
    """Import ``rec``'s downloaded file into the open scene."""
    rec.move_to(TaskState.IMPORTING)
    state.current.import_requests.discard(rec.task_id)
    state.current.journal_dirty = True
    cover = Path(rec.cover_path) if rec.cover_path else None
    try:
        # Workers wait at their next checkpoint while Blender's importer runs
        # (see core.cancel.WorkerGate): downloads pause for the import.
        with state.runner().gate.held():
            names = kind_import.import_result(rec.task_id, Path(rec.result_path), rec.options, cover=cover,
                                              provenance=provenance(rec), request=rec.generation)
    except Exception as exc:  # noqa: BLE001 - any failure must leave a retryable task
        if not isinstance(exc, ImportFailed):
            log.exception("Import of task %s failed", rec.task_id)
            exc = ImportFailed(msg("Unexpected error while importing: see the Hitem3D log, then retry"))
        rec.move_to(TaskState.FAILED)
        rec.message = exc.message
        state.hooks.post_report(msg("Task {short}: {reason}", short=rec.short_id, reason=exc.message), "ERROR")
        return
    rec.imported_objects = names
    rec.move_to(TaskState.DONE)
    rec.message = NONE
    state.hooks.post_report(msg("Imported {count} object(s) from Hitem3D task {short}", count=len(names),
                                short=rec.short_id), "INFO")
