"""Logging that cannot leak a secret.

Every handler the add-on installs gets ``RedactingFilter``: known secrets
(the client secret, tokens) and anything shaped like an Authorization value or a
signed URL's key are masked before a record is written anywhere.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import io
import logging
import logging.handlers
import os
import re
import sys
import threading
import time
import unicodedata
from collections import deque
from pathlib import Path
from typing import Any, Iterator
from urllib.parse import quote, quote_plus

MASK = "***"
_PATTERNS = (
    re.compile(r"(?i)(bearer|basic)\s+[A-Za-z0-9._~+/=-]+"),
    re.compile(r"(?i)((?:auth_key|access_?token|client_secret|token)[\"']?\s*[=:]\s*[\"']?)[^\s&\"',}]+"),
)
# user:password@ in any URL (an API base URL, a proxy, a link in a message),
# except the literal placeholder our own help text shows.
_URL_CREDENTIALS = re.compile(r"(?i)\b([a-z][a-z0-9+.-]*://)(?!user:password@)[^/\s@]*@")
# Terminal escape sequences (colours, cursor moves, window titles), then any
# other control or direction-changing character.
_ESCAPES = re.compile(r"(?:\x1b\[|\x9b)[0-?]*[ -/]*[@-~]|(?:\x1b\]|\x9d)[^\x07\x1b\x9c]*(?:\x07|\x1b\\|\x9c)?"
                      r"|\x1b[@-_]?")
_CONTROLS = re.compile("[\x00-\x1f\x7f-\x9f\u200b-\u200f\u202a-\u202e\u2066-\u2069\ufeff]+")
# Longest piece of server text we show, log, store or raise: a real message
# is one sentence; 100 KB of it is not a message.
MAX_SERVER_TEXT = 300
_secrets: set[str] = set()
_by_length: tuple[str, ...] = ()  # _secrets, longest first; replaced whole on each change (read without the lock)
_lock = threading.Lock()


# The shortest encoded piece of a secret that is masked: shorter ones could
# be ordinary words.
_MIN_ENCODED = 8


def register_secret(value: str) -> None:
    """Mask ``value`` wherever it appears in log output from now on, and its
    encoded forms: a server may echo it percent-encoded, in base64 (the Basic
    header is base64 of "id:secret"), or in hex."""
    global _by_length
    if value in _secrets:
        return  # registered already (a paste of 1,000 IDs registers the same secret 1,000 times)
    if value and len(value) >= 4:
        forms = {value} | encoded_forms(value)
        with _lock:
            _secrets.update(forms)
            _by_length = tuple(sorted(_secrets, key=len, reverse=True))


def encoded_forms(value: str) -> set[str]:
    """How ``value`` looks percent-encoded, in hex, and in base64 (standard
    and URL-safe) wherever it starts in what was encoded: for each of the
    three byte alignments, the characters that come from its bytes alone."""
    data = value.encode("utf-8")
    forms = {quote(value, safe=""), quote_plus(value, safe="")}
    forms |= {re.sub(r"%[0-9A-F]{2}", lambda m: m.group(0).lower(), form) for form in forms}
    forms |= {binascii.hexlify(data).decode("ascii"), binascii.hexlify(data).decode("ascii").upper()}
    for shift in range(3):
        encoded = base64.b64encode(bytes(shift) + data).decode("ascii")
        # Character i holds bits 6i to 6i+6; the value's bits are 8*shift to 8*(shift+len).
        core = encoded[-(-8 * shift // 6):(8 * (shift + len(data))) // 6]
        forms |= {core, core.replace("+", "-").replace("/", "_")}
    return {form for form in forms if len(form) >= _MIN_ENCODED and form != value}


def redact(text: str) -> str:
    """``text`` with every registered secret, Authorization value, token
    parameter and URL password masked."""
    for secret in _by_length:  # longest first: a shorter one inside it never unmasks the rest
        text = text.replace(secret, MASK)
    text = _URL_CREDENTIALS.sub(lambda m: f"{m.group(1)}{MASK}@", text)
    text = _PATTERNS[0].sub(lambda m: f"{m.group(1)} {MASK}", text)
    return _PATTERNS[1].sub(lambda m: f"{m.group(1)}{MASK}", text)


def _visible(text: str) -> str:
    """``text`` without escape sequences and without any character that is
    not seen as itself: controls, direction marks and overrides (U+061C,
    U+202E, ...), invisible formatting, tag characters (U+E0000 to U+E007F),
    line separators, private-use and unassigned code points."""
    text = _CONTROLS.sub(" ", _ESCAPES.sub("", text))
    if text.isascii():
        return text
    return "".join(" " if unicodedata.category(ch)[0] == "C" or unicodedata.category(ch) in ("Zl", "Zp") else ch
                   for ch in text)


def clean_text(text: str, limit: int = MAX_SERVER_TEXT) -> str:
    """Text from outside made fit to show, log, store or raise: one line, no
    escape, control or invisible characters, at most ``limit`` characters,
    redacted. Redaction runs before shortening so no secret is cut into a
    visible part."""
    # NOTE: what lies past ten times the limit is never shown; cutting first
    # bounds the work on a 100 KB message.
    text = _visible(text[:10 * limit + 100])
    text = redact(" ".join(text.split()))
    if len(text) > limit:
        text = text[:limit - 1].rstrip() + "…"
    return text


def clean_lines(text: str, *, max_lines: int = 40, limit: int = MAX_SERVER_TEXT) -> str:
    """Output of another program (Blender's glTF importer, a converter) fit
    for the log and the console: its last ``max_lines`` lines, each cleaned
    like server text. NOTE: the importer prints names, the generator and
    extras from the GLB, which is input: an escape sequence there would drive
    the artist's terminal."""
    lines = (clean_text(line, limit) for line in text.splitlines()[-max_lines:])
    return "\n".join(line for line in lines if line)


def one_line(text: str, limit: int = MAX_SERVER_TEXT) -> str:
    """``text`` as one line without escape or control characters, at most
    ``limit`` characters, and not redacted: for our own message templates,
    which a mask would garble ("access token: *** in a few minutes") and take
    out of the catalogue their translation is looked up in."""
    text = " ".join(_visible(text).split())
    return text if len(text) <= limit else text[:limit - 1].rstrip() + "…"


class RedactingFilter(logging.Filter):
    """Rewrites each record's final message with secrets masked.

    NOTE: a record logged as ``log.info("... %s", message)`` keeps our words
    as they are: the format and each argument are masked on their own, and a
    ``Message`` argument masks only its values (``Message.masked_text``),
    never its template (our own words, which "access token: retry" would
    otherwise lose to a mask). Anything else is masked whole."""

    def filter(self, record: logging.LogRecord) -> bool:
        if getattr(record, _MASKED, False):
            return True  # another handler's filter did it: masking twice would garble our words
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        record.msg = _masked_message(record)
        record.args = None
        if record.exc_text:
            record.exc_text = redact(record.exc_text)
        setattr(record, _MASKED, True)
        return True


_MASKED = "hitem3d_masked"


def _masked_arg(arg: Any) -> Any:
    # A Message, or an error that carries one: its values masked, its template ours.
    masked_text = getattr(arg, "masked_text", None) or getattr(getattr(arg, "message", None), "masked_text", None)
    if callable(masked_text):
        return masked_text()
    return arg if isinstance(arg, (int, float)) else redact(str(arg))


def _masked_message(record: logging.LogRecord) -> str:
    """The record's text with what came from outside masked: the format and
    each argument on its own (a message's template stays whole), or the whole text."""
    args = record.args
    if isinstance(args, tuple) and args:
        try:
            return redact(str(record.msg)) % tuple(_masked_arg(arg) for arg in args)
        except (TypeError, ValueError):
            pass
    elif not args and callable(getattr(record.msg, "masked_text", None)):
        return str(_masked_arg(record.msg))
    return redact(record.getMessage())


class _OneLineFormatter(logging.Formatter):
    """No tracebacks on the console: they belong in the log file, and an
    artist reading Blender's console should see one sentence, not a stack."""

    def format(self, record: logging.LogRecord) -> str:
        record.message = record.getMessage()
        return self.formatMessage(record)


class _QuietFailures:
    """A handler that cannot write (a full disk, a closed console) drops the
    record: logging's default prints "--- Logging error ---" and a traceback
    to stderr, which is worse than the lost line."""

    failures = 0

    def handleError(self, record: logging.LogRecord) -> None:  # noqa: N802 - logging's name
        type(self).failures += 1


class _QuietRotatingFileHandler(_QuietFailures, logging.handlers.RotatingFileHandler):
    """The add-on's log file, cheap enough to write from Blender's main thread.

    NOTE: ``RotatingFileHandler`` asks for each record whether the file is
    still a file (two ``stat`` calls), formats the record a second time and
    seeks to the end: 0.3 to 0.7 ms of a timer call for one line on a busy
    machine. Here the size written is counted instead; it is read from the
    file when it is opened (after a rollover too).
    NOTE: records of Blender's main thread may wait (``hold``) and be written
    in a later, quieter timer call (``write_held``); a warning or worse, a
    record with a traceback and one of another thread are written at once,
    after those waiting, so the file keeps their order."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._size: int | None = None  # unknown until the file is opened
        self.holding = False
        self._held: deque[logging.LogRecord] = deque()
        self._batch = False  # records written together: one flush at the end

    def emit(self, record: logging.LogRecord) -> None:
        try:
            text = self.format(record) + self.terminator
            if self.stream is None:
                self.stream = self._open()
            if self._size is None:
                self._size = os.fstat(self.stream.fileno()).st_size
            # Counted in characters, a little under the bytes of non-ASCII
            # text: the file may pass its limit by a few bytes.
            if 0 < self.maxBytes <= self._size + len(text):
                self.doRollover()
                if self.stream is None:
                    self.stream = self._open()
                self._size = os.fstat(self.stream.fileno()).st_size
            self.stream.write(text)
            if not self._batch:
                self.flush()
            self._size += len(text)
        except RecursionError:
            raise
        except Exception:  # noqa: BLE001 - logging's contract: handleError decides
            self.handleError(record)

    def handle(self, record: logging.LogRecord) -> bool:
        if self.holding and record.levelno < logging.WARNING and not record.exc_info \
                and threading.current_thread() is threading.main_thread():
            self._held.append(record)
            return True
        if self._held and threading.current_thread() is threading.main_thread():
            self.write_held()
        return bool(super().handle(record))

    @property
    def held(self) -> int:
        return len(self._held)

    @property
    def oldest_held(self) -> float | None:
        """When the oldest record waiting was made (``time.time()``), if any."""
        return self._held[0].created if self._held else None

    def write_held(self) -> None:
        """Write the records waiting (Blender's main thread only)."""
        with self.batch():
            while self._held:
                self.write_oldest()

    def write_oldest(self) -> None:
        """Write the oldest record waiting (Blender's main thread only)."""
        if self._held:
            super().handle(self._held.popleft())

    @contextlib.contextmanager
    def batch(self) -> Iterator[None]:
        """Records written within go to the file with one flush, at the end."""
        self._batch = True
        try:
            yield
        finally:
            self._batch = False
            self.flush()

    def close(self) -> None:
        if threading.current_thread() is threading.main_thread():
            self.write_held()
        if self in _FILES:
            _FILES.remove(self)
        super().close()


class _StderrHandler(_QuietFailures, logging.StreamHandler):
    """Writes to whatever ``sys.stderr`` is at the time of the record.

    NOTE: ``logging.StreamHandler()`` keeps the stream it was created with; a
    host that swaps ``sys.stderr`` later (a console add-on, a test runner) and
    closes the old one would turn every warning into "--- Logging error ---".
    """

    @property
    def stream(self) -> Any:
        return sys.stderr

    @stream.setter
    def stream(self, value: Any) -> None:
        pass


def install_console_handler(logger: logging.Logger, level: int = logging.WARNING) -> logging.Handler:
    """Warnings and errors of ``logger`` to stderr (Blender's console), redacted.

    ``propagate`` is turned off so a host that configures the root logger does
    not print each line twice. Returns the handler for ``remove_handler``.
    """
    handler = _StderrHandler()
    handler.setLevel(level)
    handler.setFormatter(_OneLineFormatter("Hitem3D %(levelname)s: %(message)s"))
    handler.addFilter(RedactingFilter())
    logger.addHandler(handler)
    logger.setLevel(min(logger.level or logging.INFO, logging.INFO))
    logger.propagate = False
    return handler


# The file handlers whose main-thread records may wait for a quieter timer call.
_FILES: list[_QuietRotatingFileHandler] = []
# A record waits at most this long, and at most this many wait, whatever the calls cost.
HOLD_S = 2.0
HOLD_RECORDS = 50


@contextlib.contextmanager
def held_writes() -> Iterator[None]:
    """Within: log records of Blender's main thread wait to be written to the
    log file (``write_held``). The timer's calls run so: a line written cost
    0.3 to 0.7 ms of a call on a busy machine (0.1 to 0.3 since
    ``_QuietRotatingFileHandler.emit``), and a call that started a converter
    or read its end must stay under 1 ms."""
    for handler in _FILES:
        handler.holding = True
    try:
        yield
    finally:
        for handler in _FILES:
            handler.holding = False


def write_held(*, until: float, final: bool = False) -> None:
    """Write the records waiting while ``time.perf_counter()`` is before
    ``until`` (what is left of a timer call's budget), oldest first; one more
    however late once the oldest has waited HOLD_S or HOLD_RECORDS wait; all
    of them if ``final`` (the timer ends)."""
    for handler in _FILES:
        if not handler.held:
            continue
        forced = False
        with handler.batch():
            while handler.held:
                if not final and time.perf_counter() >= until:
                    oldest = handler.oldest_held or 0.0
                    if forced or (handler.held < HOLD_RECORDS and time.time() - oldest < HOLD_S):
                        break
                    forced = True
                handler.write_oldest()


def install_file_handler(logger: logging.Logger, path: Path, *, max_bytes: int = 1_000_000,
                         backups: int = 2) -> logging.Handler:
    """A rotating, redacted log file (INFO and up, tracebacks included) for
    support requests. Returns the handler for ``removeHandler``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    # NOTE: opened now (not at the first record): opening it took 0.3 ms of
    # the timer call that wrote the session's first line.
    handler = _QuietRotatingFileHandler(path, maxBytes=max_bytes, backupCount=backups, encoding="utf-8")
    handler.setLevel(logging.INFO)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    handler.addFilter(RedactingFilter())
    logger.addHandler(handler)
    _FILES.append(handler)
    logger.setLevel(min(logger.level or logging.INFO, logging.INFO))
    return handler


class RecentProblems(logging.Handler):
    """Keeps the last warnings and errors, redacted, for "Copy diagnostics"."""

    def __init__(self, size: int = 20) -> None:
        super().__init__(logging.WARNING)
        self.addFilter(RedactingFilter())
        self.setFormatter(logging.Formatter("%(asctime)s %(levelname)s: %(message)s"))
        self._lines: deque[str] = deque(maxlen=size)

    def emit(self, record: logging.LogRecord) -> None:
        self._lines.append(self.format(record).splitlines()[0])

    def lines(self) -> list[str]:
        return list(self._lines)


class _ThreadStream:
    """Stands in for ``sys.stdout`` or ``sys.stderr``: the capturing thread's
    writes go to a buffer, every other thread's to the real stream."""

    def __init__(self, real: Any, owner: int, buffer: io.StringIO) -> None:
        self.real = real
        self.owner = owner
        self.buffer = buffer

    def write(self, text: str) -> int:
        if threading.get_ident() == self.owner:
            return self.buffer.write(text)
        return int(self.real.write(text) or 0)

    def flush(self) -> None:
        if threading.get_ident() != self.owner:
            self.real.flush()

    def __getattr__(self, name: str) -> Any:
        return getattr(self.real, name)


@contextlib.contextmanager
def captured_output() -> Iterator[io.StringIO]:
    """What this thread writes to ``sys.stdout`` and ``sys.stderr`` in the
    block, kept out of the console. NOTE: Blender prints an operator's Python
    traceback to stderr itself (38 lines for a failed glTF import), and the
    glTF importer logs the GLB's names to stdout: the detail belongs in the
    log file, cleaned (``clean_lines``)."""
    buffer = io.StringIO()
    owner = threading.get_ident()
    real_out, real_err = sys.stdout, sys.stderr
    out, err = _ThreadStream(real_out, owner, buffer), _ThreadStream(real_err, owner, buffer)
    sys.stdout, sys.stderr = out, err
    try:
        yield buffer
    finally:
        if sys.stdout is out:
            sys.stdout = real_out
        if sys.stderr is err:
            sys.stderr = real_err
