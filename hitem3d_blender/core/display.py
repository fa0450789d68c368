"""How the sidebar names, times and lays out text, as plain functions.

The panels measure text with Blender's font (``blf``) and hand the measure in;
everything here is plain Python, tested without Blender.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import PurePath
from typing import NamedTuple

from .messages import Message, msg
from .submission import Submission
from .tasks import TaskRecord

# Characters of a name in a task row before it is shortened in the middle: the
# row gives the name about half of a default-width sidebar.
NAME_CHARS = 24
# Images smaller than this (a 1 x 1 placeholder) are not worth a 130 px box.
MIN_COVER_PX = 16

# A line may break after a space, before or after a CJK character (Chinese has
# no spaces), and inside a long ID or path after ".", "-", "_" or "/".
# Punctuation stays with the character it opens or closes.
_CJK = "\u2e80-\u9fff\uac00-\ud7af\uf900-\ufaff"
_OPENING = "\uff08\u300c\u300e\u201c("
_CLOSING = "\u3001\u3002\uff0c\uff1a\uff1b\uff09\u300d\u300f\u201d\uff01\uff1f\u2026,.:;!?)"
_BREAKS = "./_\\-"
_TOKEN = re.compile(rf"[{_OPENING}]*[{_CJK}][{_CLOSING}]*\s*"
                    rf"|[^\s{_CJK}{_BREAKS}]*[{_BREAKS}]+(?=[^\s{_BREAKS}])"
                    rf"|[^\s{_CJK}]+?(?=[{_OPENING}]*[{_CJK}]|\s|$)\s*"
                    rf"|\s+")


def middle_ellipsis(text: str, limit: int = NAME_CHARS) -> str:
    """``text`` at most ``limit`` characters, its middle replaced by "…"."""
    if len(text) <= limit:
        return text
    head = limit // 2
    tail = limit - 1 - head
    return text[:head] + "…" + (text[-tail:] if tail else "")


def task_name(record: TaskRecord) -> str:
    """What a task row is called: the mesh a texturing was made for (Texture
    Selection: the picture only shows how), the picture a generation was made
    from (without its extension), what a split, relief or colouring was made
    from, else the short form of the task ID."""
    if record.generation.get("kind"):  # a newer kind (``core.kind_requests``): its source
        source_name, source_path = record.generation.get("source_name"), record.generation.get("source_path")
        name = source_name if isinstance(source_name, str) and source_name.strip() else (
            PurePath(source_path).stem if isinstance(source_path, str) else "")
        return middle_ellipsis(name.strip()) if name.strip() else record.short_id
    made = Submission.from_dict(record.generation) if record.generation else None
    if made is not None:
        picture = made.views.get("front", "") if made.views else made.image
        name = made.mesh_name or (PurePath(picture).stem if picture else "")
        if name.strip():
            return middle_ellipsis(name.strip())
    return record.short_id


def duration(seconds: float, units: int = 2) -> Message:
    """Every time we show, in one style: ``45s``, ``12m 05s``, ``2h 05m`` (two
    units), or ``45s``, ``12m``, ``2h`` (``units=1``: a task row's time). A
    second unit of zero is left out, so a timeout of an hour reads ``1h``."""
    total = max(0, int(seconds))
    if 0 < seconds < 1:  # a test's time limit, say: never "0s"
        return msg("{seconds}s", seconds=f"{seconds:.1f}")
    if total < 60:
        return msg("{seconds}s", seconds=total)
    if total < 3600:
        minutes, rest = divmod(total, 60)
        if units == 1 or not rest:
            return msg("{minutes}m", minutes=minutes)
        return msg("{minutes}m {seconds}s", minutes=minutes, seconds=f"{rest:02d}")
    hours, rest = divmod(total, 3600)
    if units == 1 or rest < 60:
        return msg("{hours}h", hours=hours)
    return msg("{hours}h {minutes}m", hours=hours, minutes=f"{rest // 60:02d}")


def wrap(text: str, width: float, measure: Callable[[str], float]) -> list[str]:
    """``text`` in lines no wider than ``width`` as ``measure`` sees them.

    Breaks between words (and between CJK characters); a single word wider
    than a line is split between characters. Nothing is dropped: the lines
    joined give the text back, but for the spaces at the line breaks.
    """
    lines: list[str] = []
    line = ""
    for token in _tokens(" ".join(text.split()), width, measure):
        candidate = line + token
        if not line or measure(candidate.rstrip()) <= width:
            line = candidate
            continue
        lines.append(line.rstrip())
        line = token.lstrip()
    if line.strip() or not lines:
        lines.append(line.rstrip())
    return lines


def _tokens(text: str, width: float, measure: Callable[[str], float]) -> list[str]:
    """The pieces a line may break between; a piece wider than ``width`` (a
    long ID) is split between characters, its trailing "." or "-" kept with it."""
    tokens: list[str] = []
    for token in _TOKEN.findall(text):
        if measure(token.rstrip()) <= width:
            tokens.append(token)
            continue
        core = token.rstrip().rstrip(_BREAKS.replace("\\", ""))
        tail = token[len(core):]
        chunks = _split_long(core, width - measure(tail.rstrip()), measure) if core else [""]
        tokens.extend([*chunks[:-1], chunks[-1] + tail])
    return tokens


def _split_long(line: str, width: float, measure: Callable[[str], float]) -> list[str]:
    """A word too wide for ``width``, split between characters."""
    pieces: list[str] = []
    piece = ""
    for char in line:
        if piece and measure(piece + char) > width:
            pieces.append(piece)
            piece = char.lstrip()
        else:
            piece += char
    if piece:
        pieces.append(piece)
    return pieces


def fit(text: str, width: float, measure: Callable[[str], float]) -> str:
    """``text`` if it fits ``width``, else its start and end around "…" (the
    most that fits): an ID or a file name stays recognisable by both ends."""
    if measure(text) <= width:
        return text
    low, high = 0, len(text) - 1  # characters kept, around the ellipsis
    while low < high:
        keep = (low + high + 1) // 2
        if measure(middle_ellipsis(text, keep + 1)) <= width:
            low = keep
        else:
            high = keep - 1
    return middle_ellipsis(text, low + 1) if low else "…"


class RowLayout(NamedTuple):
    """How a task row splits: the name as shown, the name's share of the row,
    the share of the rest that the bar (or state) takes, and whether the time
    fits after it."""

    name: str
    name_factor: float
    middle_factor: float
    show_time: bool = True


# The widest text a row's bar shows as a percentage.
WIDEST_PERCENTAGE = "100%"


def fit_row(width: float, name: str, middle: str, elapsed: str, measure: Callable[[str], float], *,
            icon: float, padding: float, bar_padding: float | None = None) -> RowLayout:
    """Widths for a row of ``width`` pixels: the bar (or state) and the time
    get what their text needs, the name the rest. When all three do not fit,
    the time goes first (the details show it), then the name is shortened in
    the middle. With ``bar_padding`` the middle is a progress bar: it keeps
    its text further from its rounded ends than a label does, and it is never
    narrower than "100%", so it does not jump as the number grows."""
    if bar_padding is None:
        middle_width = measure(middle) + padding
    else:
        middle_width = max(measure(middle), measure(WIDEST_PERCENTAGE)) + bar_padding
    time_width = measure(elapsed) + padding
    show_time = icon + measure(name) + padding + middle_width + time_width <= width
    if not show_time:
        time_width = 0.0
    name_width = max(icon + padding, width - time_width - middle_width)
    shown = fit(name, name_width - icon - padding, measure)
    rest = max(1.0, width - name_width)
    middle_factor = (rest - time_width) / rest if show_time else 0.95
    return RowLayout(shown, _share(name_width / width), _share(middle_factor), show_time)


def _share(value: float) -> float:
    return min(0.95, max(0.05, value))


def cover_worth_showing(size: tuple[int, int] | None) -> bool:
    """A cover gets its 130 px box only when it is a picture, not a placeholder."""
    return size is not None and min(size) >= MIN_COVER_PX
