"""Reading task IDs out of pasted text."""

from __future__ import annotations

from pathlib import Path

import pytest

from hitem3d_blender.core.errors import InvalidTaskId
from hitem3d_blender.core.task_ids import MAX_TASK_ID_LENGTH, parse_task_id, parse_task_ids, short_id

REAL_ID = "2c2ad20cb3204697ba7f80351c3e8606.jjewelry-aigc-api.1NraEb5ohU"
MERCHANT_ID = "0f1e2d3c4b5a69788796a5b4c3d2e1f0.jjewelry-aigc-merchant-api.Zx9_y-8"
# The most of a rejected text a message may quote.
MAX_ECHO = 40


def _rejection(text: str) -> str:
    with pytest.raises(InvalidTaskId) as caught:
        parse_task_id(text)
    return str(caught.value)


def test_accepts_a_real_task_id_unchanged() -> None:
    assert parse_task_id(REAL_ID) == REAL_ID


def test_accepts_a_merchant_task_id_unchanged() -> None:
    assert parse_task_id(MERCHANT_ID) == MERCHANT_ID


def test_trims_surrounding_whitespace() -> None:
    assert parse_task_id(f"  \t{REAL_ID}\r\n ") == REAL_ID


def test_extracts_task_id_from_a_url() -> None:
    url = f"https://www.hitem3d.ai/tasks?foo=1&task_id={REAL_ID}&tab=model"
    assert parse_task_id(url) == REAL_ID


def test_extracts_task_id_from_a_bare_query() -> None:
    assert parse_task_id(f"task_id={REAL_ID}") == REAL_ID


def test_extracts_url_encoded_task_id_from_a_url() -> None:
    encoded = REAL_ID.replace(".", "%2E")
    assert parse_task_id(f"https://api.hitem3d.ai/open-api/v1/query-task?task_id={encoded}") == REAL_ID


def test_task_id_taken_from_a_url_is_still_validated() -> None:
    with pytest.raises(InvalidTaskId):
        parse_task_id("https://www.hitem3d.ai/?task_id=../../etc/passwd")


# Each bad input, and words of which at least one must appear in its message:
# the message names the problem, not only "this is not a task ID".
BAD_IDS = {
    "space_inside": (REAL_ID[:20] + " " + REAL_ID[20:], ("space",)),
    "dot_dot_slash": ("../" + REAL_ID, ("character", "letters", "allowed")),
    "ampersand": (REAL_ID + "&x=1", ("character", "letters", "allowed")),
    "hash": (REAL_ID + "#frag", ("character", "letters", "allowed")),
    "percent": (REAL_ID[:20] + "%2F" + REAL_ID[20:], ("character", "letters", "allowed")),
    "control_char": (REAL_ID[:20] + "\x1b[31m" + REAL_ID[20:], ("control", "invisible", "character")),
    "nul_char": (REAL_ID[:20] + "\x00" + REAL_ID[20:], ("control", "invisible", "character")),
    "ten_thousand_chars": ("a" * 10_000, ("long",)),
    "non_ascii": ("2c2ad20cb3204697ba7f80351c3e8606.tâche.1NraEb5ohU", ("ascii", "character", "letters")),
}


@pytest.mark.parametrize("text", [v[0] for v in BAD_IDS.values()], ids=list(BAD_IDS))
def test_rejects_bad_task_id(text: str) -> None:
    with pytest.raises(InvalidTaskId):
        parse_task_id(text)


@pytest.mark.parametrize("text, words", list(BAD_IDS.values()), ids=list(BAD_IDS))
def test_rejection_message_names_the_problem(text: str, words: tuple[str, ...]) -> None:
    message = _rejection(text).lower()
    assert any(word in message for word in words), message


@pytest.mark.parametrize("text", [v[0] for v in BAD_IDS.values()], ids=list(BAD_IDS))
def test_rejection_message_quotes_at_most_a_short_prefix(text: str) -> None:
    message = _rejection(text)
    assert len(message) <= 160
    # Never the whole pasted text when it is longer than a short prefix.
    if len(text) > MAX_ECHO:
        assert text not in message
        assert text[MAX_ECHO:] not in message


@pytest.mark.parametrize("text", ["\x1b[31mred", "abc\x00def", "abc\x7fdef", "abc\u202eevil"])
def test_rejection_message_never_contains_control_characters(text: str) -> None:
    message = _rejection(text)
    assert all(ch.isprintable() for ch in message), repr(message)


def test_ten_thousand_chars_message_is_short() -> None:
    message = _rejection("a" * 10_000)
    assert len(message) < 120
    assert "a" * (MAX_ECHO + 1) not in message


def test_longest_allowed_task_id_is_accepted() -> None:
    text = "a" * MAX_TASK_ID_LENGTH
    assert parse_task_id(text) == text


def test_one_over_the_longest_is_rejected() -> None:
    with pytest.raises(InvalidTaskId):
        parse_task_id("a" * (MAX_TASK_ID_LENGTH + 1))


@pytest.mark.parametrize("text", ["", "   ", "\n\t"])
def test_empty_input_asks_for_a_task_id(text: str) -> None:
    assert _rejection(text) == "Enter a Hitem3D task ID"


def test_parse_task_ids_splits_on_spaces_commas_and_newlines() -> None:
    text = f"{REAL_ID} {MERCHANT_ID},abcdef0123456789\nfedcba9876543210"
    assert parse_task_ids(text) == [REAL_ID, MERCHANT_ID, "abcdef0123456789", "fedcba9876543210"]


def test_parse_task_ids_drops_duplicates_keeping_first_order() -> None:
    text = f"{MERCHANT_ID}\n{REAL_ID}, {MERCHANT_ID}\r\n{REAL_ID}"
    assert parse_task_ids(text) == [MERCHANT_ID, REAL_ID]


def test_parse_task_ids_ignores_empty_entries() -> None:
    assert parse_task_ids(f",, \n{REAL_ID},,\n\n") == [REAL_ID]


def test_parse_task_ids_rejects_a_bad_entry() -> None:
    with pytest.raises(InvalidTaskId):
        parse_task_ids(f"{REAL_ID}, ../../etc")


def test_parse_task_ids_of_only_separators_asks_for_a_task_id() -> None:
    with pytest.raises(InvalidTaskId, match="Enter a Hitem3D task ID"):
        parse_task_ids(" ,\n, ")


def test_short_id_is_the_first_eight_characters() -> None:
    assert short_id(REAL_ID) == "2c2ad20c"


def test_a_journal_entry_whose_id_is_not_a_task_id_is_skipped(tmp_path: Path) -> None:
    from hitem3d_blender.core import journal
    from hitem3d_blender.core.tasks import TaskRecord

    good = TaskRecord("2c2ad20cb3204697ba7f80351c3e8606.jjewelry-aigc-api.1NraEb5ohU")
    path = tmp_path / "journal.json"
    journal.save(path, [good])
    text = path.read_text().replace('"tasks": [', '"tasks": [{"task_id": "2c2ad20c\\u202eexe.evil", "state": "done"},')
    path.write_text(text)
    assert [rec.task_id for rec in journal.load(path).records] == [good.task_id]
