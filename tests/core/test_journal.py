"""The task journal: atomic, forgiving, bounded."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from hitem3d_blender.core import journal
from hitem3d_blender.core.import_options import ImportOptions
from hitem3d_blender.core.messages import msg
from hitem3d_blender.core.tasks import TaskBook, TaskRecord, TaskState


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
    assert kept == ["task-run1", "task-0002", "task-0003", "task-0004"]


def _journal_of(path: Path, count: int, *, running: tuple[int, ...] = ()) -> list[str]:
    """A journal in the line form, written whole (as no save of ours would if it is over the limit)."""
    records = [record(f"task-{n:06d}", TaskState.PROCESSING if n in running else TaskState.DONE)
               for n in range(count)]
    journal.write(path, [rec.to_dict() for rec in records])
    return [rec.task_id for rec in records]


def test_an_oversized_journal_is_read_no_further_than_what_is_kept(tmp_path: Path,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "journal.json"
    ids = _journal_of(path, 20_000, running=(7, 19_990))
    parsed: list[str] = []
    original = journal.json.loads
    monkeypatch.setattr(journal.json, "loads", lambda text: parsed.append(text) or original(text))
    read: list[int] = []
    open_read = journal.safe_files.open_read

    def counting(target: Path) -> Any:
        file = open_read(target)
        real_read = file.read
        file.read = lambda size=-1: read.append(len(data := real_read(size))) or data  # type: ignore[method-assign]
        return file

    monkeypatch.setattr(journal.safe_files, "open_read", counting)

    loaded = journal.load(path)

    # The newest finished tasks and the running one among them; the running
    # task older than all of them was in no journal this add-on wrote.
    kept = ids[-journal.MAX_ENTRIES - 1:]
    assert [r.task_id for r in loaded.records] == kept and loaded.left_unread
    assert len(parsed) == len(kept) + 1  # and the one that was one too many
    assert sum(read) < path.stat().st_size / 5  # one block from the end


def test_a_journal_this_add_on_wrote_is_read_whole(tmp_path: Path) -> None:
    path = tmp_path / "journal.json"
    records = [record(f"task-{n:04d}", TaskState.DONE) for n in range(journal.MAX_ENTRIES + 100)]
    records[3].state = TaskState.QUEUEING  # running since before the history
    journal.save(path, records)
    loaded = journal.load(path)
    assert [r.task_id for r in loaded.records] == ["task-0003"] + [r.task_id for r in records[-journal.MAX_ENTRIES:]]
    assert not loaded.left_unread


def test_an_oversized_journal_of_another_form_keeps_the_same_tasks(tmp_path: Path,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(journal, "MAX_ENTRIES", 3)
    path = tmp_path / "journal.json"
    entries = [record(f"task-{n:04d}", TaskState.QUEUEING if n in (1, 4) else TaskState.DONE).to_dict()
               for n in range(7)]
    path.write_text(json.dumps({"version": 1, "tasks": entries}, indent=2))  # as older versions wrote it

    loaded = journal.load(path)

    assert [r.task_id for r in loaded.records] == ["task-0003", "task-0004", "task-0005", "task-0006"]
    assert loaded.left_unread and loaded.lines == {}


def test_an_empty_journal_in_the_line_form_loads_empty(tmp_path: Path) -> None:
    path = tmp_path / "journal.json"
    journal.save(path, [])
    loaded = journal.load(path)
    assert loaded.records == [] and not loaded.warning and not loaded.left_unread


def test_the_journal_file_keeps_its_line_form(tmp_path: Path) -> None:
    path = tmp_path / "journal.json"
    journal.save(path, [record("task-0001"), record("task-0002")])
    lines = path.read_text().splitlines()
    assert lines[0] == '{"version": 1, "tasks": [' and lines[-1] == "]}"
    assert [json.loads(line.rstrip(","))["task_id"] for line in lines[1:-1]] == ["task-0001", "task-0002"]
    assert json.loads(path.read_text())["version"] == 1


def _saved(path: Path) -> list[dict[str, object]]:
    entries: list[dict[str, object]] = json.loads(path.read_text())["tasks"]
    return entries


def test_a_save_converts_and_encodes_only_the_tasks_that_changed(tmp_path: Path,
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "journal.json"
    _journal_of(path, 300)
    loaded = journal.load(path)
    book = TaskBook()
    for rec in loaded.records:
        book.put(rec)
    book.take_changes()  # as read: nothing to write again
    changes, target = journal.Changes(), journal.JournalFile(path, loaded.lines)
    converted: list[str] = []
    encoded: list[object] = []
    original_to_dict, original_dumps = TaskRecord.to_dict, journal.json.dumps
    monkeypatch.setattr(TaskRecord, "to_dict", lambda self: converted.append(self.task_id) or original_to_dict(self))
    monkeypatch.setattr(journal.json, "dumps", lambda value: encoded.append(value) or original_dumps(value))

    changed = book.get("task-000100")
    assert changed is not None
    changed.message = msg("Imported again")
    book.add("task-new")
    target.post(*changes.take(book))  # type: ignore[misc]
    target.write()

    assert sorted(converted) == ["task-000100", "task-new"] and len(encoded) == 2
    saved = _saved(path)
    assert [entry["task_id"] for entry in saved] == [rec.task_id for rec in loaded.records] + ["task-new"]
    assert saved[100]["message"] == "Imported again"


def test_a_save_follows_removals_and_moves(tmp_path: Path) -> None:
    path = tmp_path / "journal.json"
    book = TaskBook()
    for task_id in ("a", "b", "c"):
        book.add(task_id).move_to(TaskState.FAILED)
    changes, target = journal.Changes(), journal.JournalFile(path)
    target.post(*changes.take(book))  # type: ignore[misc]
    target.write()
    book.remove("b")
    book.bring_to_top(["a"])
    order, entries = changes.take(book)  # type: ignore[misc]
    # Moved, not changed: no line is encoded again, and only the moves go.
    assert order == journal.OrderChange((("b", False), ("a", True))) and entries == {}
    target.post(order, entries)
    target.write()
    assert [entry["task_id"] for entry in _saved(path)] == ["c", "a"]
    assert changes.take(book) == (None, {})  # nothing moved, nothing changed


def test_a_save_hands_over_what_moved_not_the_whole_history(tmp_path: Path) -> None:
    """A finished task pushing the oldest out of a full history is two moves, however long the history."""
    path = tmp_path / "journal.json"
    book = TaskBook()
    for n in range(journal.MAX_ENTRIES):
        book.add(f"old{n}").move_to(TaskState.FAILED)
    changes, target = journal.Changes(), journal.JournalFile(path)
    first = changes.take(book)
    assert first is not None and first[0] is not None and first[0].whole is not None  # copied once
    target.post(*first)
    target.write()
    book.add("new").move_to(TaskState.FAILED)
    assert book.trim(journal.MAX_ENTRIES) == ["old0"]
    order, entries = changes.take(book)  # type: ignore[misc]
    assert order == journal.OrderChange((("new", True), ("old0", False)))
    assert list(entries) == ["new"]
    target.post(order, entries)
    target.write()
    saved = [entry["task_id"] for entry in _saved(path)]
    assert saved == [f"old{n}" for n in range(1, journal.MAX_ENTRIES)] + ["new"]


def test_a_writer_read_from_the_file_is_in_step_with_the_book_read_from_it(tmp_path: Path) -> None:
    path = tmp_path / "journal.json"
    journal.save(path, [record(task_id) for task_id in ("task-0001", "task-0002", "task-0003")])
    loaded = journal.load(path)
    book = TaskBook()
    for rec in loaded.records:
        book.put(rec)
    book.take_changes()
    book.take_moves(journal.MOVES_FOLLOWER)
    writer = journal.JournalFile.read(path)  # the worker process's copy
    changes = journal.Changes(in_step=loaded.order == book.ids_oldest_first())
    book.remove("task-0001")
    order, entries = changes.take(book)  # type: ignore[misc]
    assert order == journal.OrderChange((("task-0001", False),)) and entries == {}
    writer.post(order, entries)
    writer.write()
    assert [entry["task_id"] for entry in _saved(path)] == ["task-0002", "task-0003"]
    # Out of step (a writer that never read the file): the whole order goes first.
    book.add("task-0004")
    order, _ = journal.Changes().take(book)  # type: ignore[misc]
    assert order is not None and order.whole == ("task-0002", "task-0003", "task-0004")


def test_more_moves_than_the_book_holds_copy_the_whole_order_instead() -> None:
    """A book whose journal is never saved (another Blender owns it) keeps a bounded record of moves."""
    book = TaskBook()
    book.add("a")
    changes = journal.Changes(in_step=True)
    book.take_moves(journal.MOVES_FOLLOWER)
    for _ in range(100):
        book.bring_to_top(["a"])
    assert book.take_moves(journal.MOVES_FOLLOWER) is None
    for _ in range(100):
        book.bring_to_top(["a"])
    order, _ = changes.take(book)  # type: ignore[misc]
    assert order == journal.OrderChange(whole=("a",))


@pytest.mark.parametrize("value", [
    {"moves": [["a", 2]]}, {"moves": [["a"]]}, {"moves": "a"}, {"order": [1, 2]}, {"order": "ab"},
    {"moves": [[1, 1]]},
])
def test_an_order_change_of_another_shape_is_refused(value: dict[str, object]) -> None:
    with pytest.raises(ValueError):
        journal.OrderChange.from_wire(value)


def test_an_order_change_crosses_the_wire_whole() -> None:
    change = journal.OrderChange((("x", True), ("y", False)), ("y", "z"))
    assert journal.OrderChange.from_wire(change.to_wire()) == change
    assert journal.OrderChange.from_wire({"entries": {}}) is None
    assert change.apply({}) == {"z": None, "x": None}
    assert journal.OrderChange((("a", True),)).then(journal.OrderChange((("b", False),))) == \
        journal.OrderChange((("a", True), ("b", False)))


def test_a_write_that_fails_is_made_good_by_the_next(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "journal.json"
    book = TaskBook()
    book.add("a")
    changes, target = journal.Changes(), journal.JournalFile(path)
    target.post(*changes.take(book))  # type: ignore[misc]

    def full(*args: object, **kwargs: object) -> None:
        raise OSError("disk full")

    with monkeypatch.context() as patch:
        patch.setattr(journal.safe_files, "write_atomic", full)
        with pytest.raises(OSError):
            target.write()
    target.write()
    assert [entry["task_id"] for entry in _saved(path)] == ["a"]


def test_many_changes_are_converted_over_several_calls_then_handed_over_whole() -> None:
    book = TaskBook()
    records = [book.add(f"t{n}") for n in range(10)]
    changes = journal.Changes()
    assert changes.take(book, max_fresh=4) is None
    assert changes.take(book, max_fresh=4) is None
    records[0].move_to(TaskState.FAILED)  # changed meanwhile: converted again
    taken = changes.take(book, max_fresh=4)
    assert taken is not None
    order, entries = taken
    assert order is not None and order.whole == tuple(f"t{n}" for n in range(10))
    assert entries == {rec.task_id: rec.to_dict() for rec in records}
