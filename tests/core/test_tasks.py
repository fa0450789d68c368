"""The task state machine, records and the book."""

from __future__ import annotations

import time

import pytest

from hitem3d_blender.core.messages import NONE, msg
from hitem3d_blender.core.tasks import (
    TERMINAL_STATES,
    TRANSITIONS,
    IllegalTransition,
    TaskBook,
    TaskRecord,
    TaskState,
    TaskUpdate,
)

S = TaskState
TASK_ID = "2c2ad20cb3204697ba7f80351c3e8606.jjewelry-aigc-api.1NraEb5ohU"
LEGAL = sorted(((src, dst) for src, targets in TRANSITIONS.items() for dst in targets), key=str)
ILLEGAL_SAMPLE = [
    (S.PENDING, S.DONE),
    (S.PENDING, S.IMPORTING),
    (S.CREATED, S.PENDING),
    (S.QUEUEING, S.CREATED),
    (S.PROCESSING, S.QUEUEING),
    (S.PROCESSING, S.DOWNLOADED),
    (S.DOWNLOADED, S.PROCESSING),
    (S.DOWNLOADED, S.DONE),
    (S.IMPORTING, S.PENDING),
    (S.DONE, S.DOWNLOADING),
    (S.DONE, S.FAILED),
    (S.FAILED, S.DONE),
    (S.FAILED, S.FAILED),
    (S.CANCELLED, S.IMPORTING),
    (S.CANCELLED, S.CANCELLED),
]


def record_in(state: TaskState) -> TaskRecord:
    return TaskRecord(TASK_ID, state=state)


def test_every_state_has_a_transition_entry() -> None:
    assert set(TRANSITIONS) == set(TaskState)


def test_a_task_not_followed_is_kept_and_can_be_tried_again() -> None:
    record = TaskRecord("split_abc")
    record.move_to(S.QUEUEING)
    record.move_to(S.UNFOLLOWED)
    assert record.state.is_terminal and record.state is not S.FAILED
    assert TaskRecord.from_dict(record.to_dict()).state is S.UNFOLLOWED  # the journal keeps it
    record.move_to(S.PENDING)  # Retry


@pytest.mark.parametrize("src, dst", LEGAL, ids=[f"{a.value}->{b.value}" for a, b in LEGAL])
def test_legal_transition_works(src: TaskState, dst: TaskState) -> None:
    record = record_in(src)
    record.move_to(dst)
    assert record.state is dst


@pytest.mark.parametrize("src, dst", ILLEGAL_SAMPLE, ids=[f"{a.value}->{b.value}" for a, b in ILLEGAL_SAMPLE])
def test_illegal_transition_raises_and_keeps_the_state(src: TaskState, dst: TaskState) -> None:
    assert dst not in TRANSITIONS[src]
    record = record_in(src)
    with pytest.raises(IllegalTransition, match=f"{src.value} -> {dst.value}"):
        record.move_to(dst)
    assert record.state is src


@pytest.mark.parametrize("state", [s for s in TaskState if not s.is_terminal])
def test_every_active_state_can_fail_or_be_cancelled(state: TaskState) -> None:
    assert {S.FAILED, S.CANCELLED} <= TRANSITIONS[state]


@pytest.mark.parametrize("state", sorted(TERMINAL_STATES, key=str))
def test_terminal_state_can_only_restart_or_reimport(state: TaskState) -> None:
    assert TRANSITIONS[state] <= {S.PENDING, S.IMPORTING}
    assert S.PENDING in TRANSITIONS[state]


def test_terminal_states_are_done_failed_cancelled_and_not_followed() -> None:
    assert TERMINAL_STATES == {S.DONE, S.FAILED, S.CANCELLED, S.UNFOLLOWED}
    assert all(s.is_terminal and not s.is_active for s in TERMINAL_STATES)
    assert all(s.is_active for s in TaskState if s not in TERMINAL_STATES)


@pytest.mark.parametrize(
    "src, dst", [(S.IMPORTING, S.DONE), (S.PROCESSING, S.FAILED), (S.DOWNLOADING, S.CANCELLED)]
)
def test_terminal_state_sets_finished_at(src: TaskState, dst: TaskState) -> None:
    record = record_in(src)
    assert record.finished_at is None
    before = time.time()
    record.move_to(dst)
    assert record.finished_at is not None
    assert before <= record.finished_at <= time.time()


def test_active_state_leaves_finished_at_unset() -> None:
    record = record_in(S.PENDING)
    for state in (S.QUEUEING, S.PROCESSING, S.DOWNLOADING, S.DOWNLOADED, S.IMPORTING):
        record.move_to(state)
        assert record.finished_at is None


def test_elapsed_stops_at_finished_at() -> None:
    record = TaskRecord(TASK_ID, state=S.IMPORTING, started_at=100.0)
    record.move_to(S.DONE)
    record.finished_at = 130.0
    assert record.elapsed_s(now=1_000_000.0) == 30.0


def test_elapsed_uses_now_while_running() -> None:
    record = TaskRecord(TASK_ID, started_at=100.0)
    assert record.elapsed_s(now=145.0) == 45.0


@pytest.mark.parametrize("terminal", [S.FAILED, S.CANCELLED, S.DONE])
def test_retry_to_pending_resets_progress_and_message(terminal: TaskState) -> None:
    record = TaskRecord(TASK_ID, state=terminal, progress=0.7, message=msg("Cannot reach api.hitem3d.ai"),
                        bytes_done=500, bytes_total=1000, started_at=1.0, finished_at=2.0)
    record.move_to(S.PENDING)
    assert record.state is S.PENDING
    assert record.progress is None
    assert not record.message
    assert (record.bytes_done, record.bytes_total) == (0, None)
    assert record.finished_at is None
    assert record.started_at > 2.0


def test_apply_takes_state_progress_and_message() -> None:
    record = record_in(S.PENDING)
    record.apply(TaskUpdate(TASK_ID, S.PROCESSING, progress=0.4, message=msg("Retrying")))
    assert (record.state, record.progress, record.message) == (S.PROCESSING, 0.4, msg("Retrying"))


def test_apply_downloading_takes_byte_counts() -> None:
    record = record_in(S.PROCESSING)
    record.apply(TaskUpdate(TASK_ID, S.DOWNLOADING, progress=0.5, bytes_done=50, bytes_total=100))
    assert (record.bytes_done, record.bytes_total) == (50, 100)


def test_apply_downloaded_keeps_the_result_path() -> None:
    record = record_in(S.DOWNLOADING)
    record.apply(TaskUpdate(TASK_ID, S.DOWNLOADED, progress=1.0, result_path="/tmp/x.glb"))
    record.apply(TaskUpdate(TASK_ID, S.IMPORTING))
    assert record.result_path == "/tmp/x.glb"


def test_apply_stale_update_raises_and_changes_nothing() -> None:
    record = TaskRecord(TASK_ID, state=S.DONE, progress=1.0)
    with pytest.raises(IllegalTransition):
        record.apply(TaskUpdate(TASK_ID, S.PROCESSING, progress=0.2, message=msg("late")))
    assert (record.state, record.progress, record.message) == (S.DONE, 1.0, NONE)


def test_failed_update_carries_its_message() -> None:
    record = record_in(S.PROCESSING)
    record.apply(TaskUpdate(TASK_ID, S.FAILED, message=msg("Generation failed")))
    assert record.message == msg("Generation failed")
    assert record.finished_at is not None


def test_short_id_is_the_first_eight_characters() -> None:
    assert record_in(S.PENDING).short_id == "2c2ad20c"


def test_every_state_has_a_label() -> None:
    assert all(state.label for state in TaskState)
    assert str(S.DOWNLOADED.label) == "Ready to import"


def test_new_record_is_pending() -> None:
    assert TaskBook().add(TASK_ID).state is S.PENDING


def test_book_orders_newest_first() -> None:
    book = TaskBook()
    for task_id in ("first", "second", "third"):
        book.add(task_id)
    assert [r.task_id for r in book] == ["third", "second", "first"]
    latest = book.latest()
    assert latest is not None and latest.task_id == "third"


def test_book_readding_moves_to_front_without_duplicating() -> None:
    book = TaskBook()
    first = book.add("first")
    book.add("second")
    again = book.add("first")
    assert again is first
    assert len(book) == 2
    assert [r.task_id for r in book] == ["first", "second"]


def test_book_readding_keeps_the_record_state() -> None:
    book = TaskBook()
    record = book.add("a")
    record.move_to(S.FAILED)
    assert book.add("a").state is S.FAILED


def test_book_get_contains_and_remove() -> None:
    book = TaskBook()
    record = book.add("a")
    assert "a" in book and book.get("a") is record
    book.remove("a")
    book.remove("never-added")
    assert "a" not in book and book.get("a") is None and len(book) == 0


def test_book_active_lists_only_running_tasks_newest_first() -> None:
    book = TaskBook()
    book.add("old-running")
    book.add("failed").move_to(S.FAILED)
    book.add("new-running").move_to(S.PROCESSING)
    assert [r.task_id for r in book.active()] == ["new-running", "old-running"]


def test_book_knows_its_unfinished_tasks_as_they_move() -> None:
    book = TaskBook()
    book.add("done").move_to(S.FAILED)
    running = book.add("running")
    assert [r.task_id for r in book.unfinished()] == ["running"] and book.finished_count == 1
    running.move_to(S.CANCELLED)
    assert list(book.unfinished()) == [] and book.finished_count == 2
    running.move_to(S.PENDING)  # a retry
    assert list(book.unfinished()) == [running]
    book.remove("running")
    assert list(book.unfinished()) == [] and len(book) == 1


def test_book_hands_out_the_tasks_that_changed_once() -> None:
    book = TaskBook()
    first, second = book.add("a"), book.add("b")
    assert book.take_changes() == {"a", "b"}
    assert book.take_changes() == set()
    second.progress = 0.5
    assert book.take_changes() == {"b"}
    first.message = msg("Hitem3D is busy")
    book.remove("b")
    assert book.take_changes() == {"a"}
    loose = TaskRecord("c")
    loose.progress = 0.1  # a record in no book tells no book
    assert book.take_changes() == set()


def test_a_record_removed_from_the_book_no_longer_reports_to_it() -> None:
    book = TaskBook()
    record = book.add("a")
    book.remove("a")
    record.move_to(S.FAILED)
    assert book.take_changes() == set() and list(book.unfinished()) == []


def test_book_order_version_moves_only_with_the_order() -> None:
    book = TaskBook()
    book.add("a")
    book.add("b")
    version = book.order_version
    book.get("a").progress = 0.3  # type: ignore[union-attr]
    assert book.order_version == version
    book.bring_to_top(["a"])
    assert book.order_version > version and book.ids_newest_first() == ["a", "b"]


def test_trim_drops_the_oldest_finished_tasks_and_never_an_unfinished_one() -> None:
    book = TaskBook()
    book.add("old-running")
    for n in range(5):
        book.add(f"done-{n}").move_to(S.FAILED)
    book.add("new-running")
    assert book.trim(5) == []
    assert book.trim(2) == ["done-0", "done-1", "done-2"]
    assert book.ids_oldest_first() == ["old-running", "done-3", "done-4", "new-running"]


def test_empty_book_has_no_latest() -> None:
    assert TaskBook().latest() is None


def test_a_retry_notice_before_the_first_answer_keeps_the_elapsed_time() -> None:
    record = TaskRecord("a")
    record.started_at -= 30.0  # the task has been waiting for 30 s
    record.apply(TaskUpdate("a", S.PENDING, message=msg("Retrying ({attempt} of {limit}): {reason}",
                                                          attempt=2, limit=6, reason=msg("Hitem3D is busy"))))
    assert record.elapsed_s() >= 30.0
    assert "Retrying" in str(record.message)


def test_a_retry_by_the_user_starts_the_clock_again() -> None:
    record = TaskRecord("a")
    record.move_to(S.FAILED)
    record.started_at -= 30.0
    record.move_to(S.PENDING)
    assert record.elapsed_s() < 5.0


def test_a_downloaded_task_whose_file_went_away_can_start_again() -> None:
    record = TaskRecord("a", state=S.DOWNLOADED)
    record.move_to(S.PENDING)  # Clear Cache, then Import: it downloads again
    assert record.state is S.PENDING


def test_every_assignment_changes_the_change_count() -> None:
    record = TaskRecord("a")
    seen = record.changes
    record.message = msg("Hitem3D is busy")
    assert record.changes != seen
