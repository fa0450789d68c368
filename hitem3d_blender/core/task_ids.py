"""Reading task IDs out of what people paste.

Real IDs look like ``2c2ad20cb3204697ba7f80351c3e8606.jjewelry-aigc-api.1NraEb5ohU``.
We do not insist on that exact shape (the service may change it) but accept only
characters that are safe in a URL and a file name, so nothing odd is ever sent.
"""

from __future__ import annotations

import re
from urllib.parse import parse_qs, urlsplit

from .errors import ApiError, InvalidTaskId
from .messages import Message, msg
from .task_kinds import kind_of

MAX_TASK_ID_LENGTH = 200
_TASK_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{7,%d}" % (MAX_TASK_ID_LENGTH - 1))
_SEPARATORS = re.compile(r"[\s,;]+")


def _shorten(text: str, limit: int = 40) -> str:
    printable = "".join(ch if ch.isprintable() else "?" for ch in text)
    return printable if len(printable) <= limit else printable[: limit - 1] + "…"


def parse_task_id(text: str) -> str:
    """One task ID from pasted text: trimmed, or taken from a URL's ``task_id=``.

    Raises ``InvalidTaskId`` with a message that quotes (a shortened form of)
    what was pasted.
    """
    candidate = text.strip()
    if not candidate:
        raise InvalidTaskId(msg("Enter a Hitem3D task ID"))
    if "task_id=" in candidate:
        query = urlsplit(candidate).query or candidate.split("?", 1)[-1]
        values = parse_qs(query).get("task_id")
        if values:
            candidate = values[0].strip()
    if not _TASK_ID.fullmatch(candidate):
        raise InvalidTaskId(msg("Not a task ID: {text} ({problem})", text=_shorten(candidate),
                                problem=_problem(candidate)))
    return candidate


def _problem(text: str) -> Message:
    """What is wrong with ``text`` as a task ID, in a few words."""
    if len(text) > MAX_TASK_ID_LENGTH:
        return msg("too long: {length} characters, at most {limit}", length=f"{len(text):,}", limit=MAX_TASK_ID_LENGTH)
    if any(ch.isspace() for ch in text):
        return msg("it contains a space")
    if any(not ch.isprintable() for ch in text):
        return msg("it contains a control character")
    if not text.isascii():
        return msg("it contains a non-ASCII character")
    bad = next((ch for ch in text if not (ch.isalnum() or ch in "._-")), None)
    if bad is not None:
        return msg("'{char}' is not allowed: use letters, digits, '.', '-', '_'", char=bad)
    if len(text) < 8:
        return msg("too short")
    return msg("it must start with a letter or digit")


def is_task_id(text: object) -> bool:
    """Whether ``text`` is shaped like a task ID (what a journal entry must hold)."""
    return isinstance(text, str) and _TASK_ID.fullmatch(text) is not None


def from_server(value: object) -> str:
    """The ID of a task Hitem3D has just created, as it sent it. An ID is
    shown, stored in the journal and the asset's metadata and sent back: one
    with a right-to-left override, an escape, a new line or 20 KB is refused
    as a pasted one would be (``ApiError``, never quoting it); so is none.
    The request may have been accepted and paid for: the message says to look
    on the platform before sending again."""
    text = value.strip() if isinstance(value, str) else ""
    if not text:
        raise ApiError(msg("Hitem3D sent no task ID: check your tasks on the Hitem3D platform before "
                           "sending again"))
    if not _TASK_ID.fullmatch(text):
        raise ApiError(msg("Hitem3D sent a task ID that is not one ({problem}): check your tasks on the "
                           "Hitem3D platform before sending again", problem=_problem(text)))
    return text


def parse_task_ids(text: str) -> list[str]:
    """Every task ID in text separated by spaces, commas or new lines, in order,
    without duplicates. Raises ``InvalidTaskId`` on the first bad entry."""
    ids: list[str] = []
    for part in _SEPARATORS.split(text.strip()):
        if not part:
            continue
        task_id = parse_task_id(part)
        if task_id not in ids:
            ids.append(task_id)
    if not ids:
        raise InvalidTaskId(msg("Enter a Hitem3D task ID"))
    return ids


def short_id(task_id: str) -> str:
    """The first 8 characters, as shown in lists and messages; after the kind's
    prefix for the newer kinds (``split_8f1c2d3e``), which alone says too little."""
    prefix = kind_of(task_id).id_prefix
    return task_id[: len(prefix) + 8]
