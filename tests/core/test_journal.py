"""The task journal: atomic, forgiving, bounded."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from hitem3d_blender.core import journal
from hitem3d_blender.core.import_options import ImportOptions
from hitem3d_blender.core.messages import msg
from hitem3d_blender.core.tasks import TaskRecord, TaskState


def record(task_id: str, state: TaskState = TaskState.DONE, **fields: object) -> TaskRecord:
    rec = TaskRecord(task_id, state=state)
    for name, value in fields.items():
        setattr(rec, name, value)
    return rec


def test_missing_journal_is_empty(tmp_path: Path) -> None:
    loaded = journal.load(tmp_path / "journal.json")
    assert loaded.records == [] and not loaded.warning


def test_round_trip_keeps_every_field(tmp_path: Path) -> None:
    path = tmp_path / "journal.json"
    options = ImportOptions(collection="Props", at_cursor=False, scale_to_size=True, target_size=2.5)
    failure = msg("Task {short}: {reason}", short="task-000", reason=msg("The download was cut short: retry"))
    # File paths inside the journal's folder: any other is dropped on load.
    original = record("task-0001", TaskState.FAILED, message=failure,
                      result_path=str(tmp_path / "results" / "a.glb"),
                      cover_path=str(tmp_path / "results" / "a.cover"), bytes_total=1234, started_at=10.0, finished_at=20.0,
                      imported_objects=["A", "B"], model="hitem3dv2.0", options=options)
    journal.save(path, [original])

    (restored,) = journal.load(path).records

    assert restored.to_dict() == original.to_dict()
    assert restored.options == options
    assert restored.message == failure  # still a template and values: shown translated after a restart


def test_a_message_from_a_journal_without_message_ids_is_shown_as_it_was(tmp_path: Path) -> None:
    path = tmp_path / "journal.json"
    path.write_text('{"version": 1, "tasks": [{"task_id": "task-0001", "state": "failed", '
                    '"message": "Generation failed {code}", "message_id": {"template": 5}}]}', "utf-8")
    (restored,) = journal.load(path).records
    assert str(restored.message) == "Generation failed {code}"


def test_order_is_kept_oldest_first(tmp_path: Path) -> None:
    path = tmp_path / "journal.json"
    journal.save(path, [record("task-0001"), record("task-0002"), record("task-0003")])
    assert [r.task_id for r in journal.load(path).records] == ["task-0001", "task-0002", "task-0003"]


def test_save_leaves_no_temporary_file(tmp_path: Path) -> None:
    journal.save(tmp_path / "journal.json", [record("task-0001")])
    assert [p.name for p in tmp_path.iterdir()] == ["journal.json"]


def test_a_failed_write_keeps_the_previous_journal(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "journal.json"
    journal.save(path, [record("task-0001")])
    before = path.read_bytes()

    def broken_fsync(*args: object, **kwargs: object) -> None:
        raise OSError("disk full")

    # The temporary file is written, then the disk gives up.
    monkeypatch.setattr(journal.os, "fsync", broken_fsync)
    with pytest.raises(OSError):
        journal.save(path, [record("task-0002")])

    assert path.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["journal.json"]


@pytest.mark.parametrize("content", [b"{not json", b"[]", b'{"tasks": 3}', b"\xff\xfe\x00"])
def test_corrupt_journal_is_moved_aside_with_a_warning(tmp_path: Path, content: bytes) -> None:
    path = tmp_path / "journal.json"
    path.write_bytes(content)

    loaded = journal.load(path)

    assert loaded.records == []
    assert "set aside" in str(loaded.warning)
    assert not path.exists()
    (aside,) = tmp_path.glob("journal.json.corrupt-*")
    assert aside.read_bytes() == content


def test_bad_entries_are_skipped_and_good_ones_kept(tmp_path: Path) -> None:
    path = tmp_path / "journal.json"
    good = record("task-0001").to_dict()
    path.write_text(json.dumps({"version": 1, "tasks": [
        {"state": "done"}, {"task_id": "task-0002", "state": "exploded"}, "junk", good]}))

    loaded = journal.load(path)

    assert [r.task_id for r in loaded.records] == ["task-0001"]
    assert not loaded.warning


def test_wrongly_typed_fields_fall_back_to_defaults(tmp_path: Path) -> None:
    path = tmp_path / "journal.json"
    path.write_text(json.dumps({"tasks": [{
        "task_id": "task-0001", "state": "done", "message": 5, "bytes_total": "big",
        "imported_objects": "A", "options": {"at_cursor": "yes", "target_size": -1, "collection": 7}}]}))

    (rec,) = journal.load(path).records

    assert not rec.message and rec.bytes_total is None and rec.imported_objects == []
    assert rec.options == ImportOptions()


def test_history_is_bounded_but_unfinished_tasks_are_never_dropped(tmp_path: Path,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(journal, "MAX_ENTRIES", 3)
    path = tmp_path / "journal.json"
    records = [record("task-run1", TaskState.PROCESSING)] + [record(f"task-{i:04d}") for i in range(5)]

    journal.save(path, records)

    kept = [r.task_id for r in journal.load(path).records]
    assert kept == ["task-run1", "task-0003", "task-0004"]


def test_snapshots_convert_only_records_that_changed(monkeypatch: pytest.MonkeyPatch) -> None:
    records = [TaskRecord(f"t{n}") for n in range(5)]
    snapshots = journal.Snapshots()
    first = journal.snapshot(records, snapshots)
    converted: list[str] = []
    original = TaskRecord.to_dict

    def counting(self: TaskRecord) -> dict[str, object]:
        converted.append(self.task_id)
        return original(self)

    monkeypatch.setattr(TaskRecord, "to_dict", counting)
    records[2].move_to(TaskState.FAILED)
    second = journal.snapshot(records, snapshots)
    assert converted == ["t2"]
    assert second[2]["state"] == "failed" and second[0] is first[0]
    assert second == [record.to_dict() for record in records]


def test_a_big_snapshot_is_made_over_several_calls_then_taken_whole() -> None:
    records = [TaskRecord(f"t{n}") for n in range(10)]
    snapshots = journal.Snapshots(max_fresh=4)
    assert journal.snapshot(records, snapshots) == [] and not snapshots.complete
    assert journal.snapshot(records, snapshots) == [] and not snapshots.complete
    records[0].move_to(TaskState.FAILED)  # changed meanwhile: the last call converts it again
    entries = journal.snapshot(records, snapshots)
    assert snapshots.complete and entries == [record.to_dict() for record in records]
