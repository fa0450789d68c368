"""Everything that can go wrong, as exceptions that carry a user-facing message.

Each error carries a ``Message`` (``error.message``), the short sentence the
panel and the Info log show, translated where it is shown; ``str(error)`` is
its English text. It says what happened and what to do next, and never
contains a secret.
"""

from __future__ import annotations

from .logs import clean_text, one_line
from .messages import MAX_OUTSIDE_CHARS, N_, Message, msg, msg_own, verbatim

# Our own messages are one sentence; this only bounds what a server sent.
MAX_MESSAGE_CHARS = MAX_OUTSIDE_CHARS

# Server codes whose meaning the API documents. Unknown codes are shown verbatim.
CODE_UNAUTHORIZED = "401"
CODE_INVALID_CREDENTIALS = "40010000"
CODE_SYSTEM_ERROR = "10000000"
CODE_BALANCE_NOT_ENOUGH = "30010000"
CODE_GENERATE_FAILED = "50010001"
# The newer task kinds document the refund code as 5001001: both mean the same.
GENERATE_FAILED_CODES = frozenset({CODE_GENERATE_FAILED, "5001001"})

# Messages for documented codes, keyed by the code as a string (the API documents
# codes as strings and sends numbers: we always compare strings). Only the
# official pages' codes: our words replace the server's.
CODE_MESSAGES: dict[str, str] = {
    CODE_SYSTEM_ERROR: N_("Hitem3D server error: retry in a few minutes"),
}


# Codes only third parties describe (docs/hitem3d-api.md, "Codes"): the server's
# own words are shown, and our reading of the code as a likely cause, never as
# a fact. 30010000, 10031001, 5, 7 and 9 are in several third-party clients;
# the others in one alone.
LIKELY_CAUSES: dict[str, str] = {
    CODE_BALANCE_NOT_ENOUGH: N_("not enough credits: top up on the Hitem3D platform, then refresh the balance "
                                "and try again"),
    "10031001": N_("a file larger than Hitem3D takes (20 MB a picture, 200 MB a mesh): use a smaller one"),
    "10031002": N_("a face count out of range for this model (100,000 to 2,000,000; 5,000,000 for v3.0)"),
    "10031003": N_("a resolution this model does not offer: choose one from the list"),
    "10031004": N_("a file format Hitem3D does not take: update the extension, or report it with the code"),
    "10031005": N_("a picture that is not PNG, JPEG or WebP: save it as PNG and try again"),
    "10031006": N_("a model version Hitem3D does not know: choose another model, or update the extension"),
    "10031007": N_("one picture and views sent together: update the extension, or report it with the code"),
    "10031008": N_("no picture sent: add one and try again"),
    "10031009": N_("too many views: at most 4 (front, back, left, right), one picture each"),
    "10031010": N_("an empty file: choose another file"),
    "10031011": N_("no model to texture: choose a finished geometry-only task"),
    "10031012": N_("a model link that does not start with http: update the extension, or report it with the code"),
}


class Hitem3DError(Exception):
    """Base class: ``message`` is the user-facing message, ``str(error)`` its English.

    ``retryable`` says whether trying the same thing again may succeed; every
    failed task can be retried, this only decides whether workers retry on
    their own before giving up.
    """

    retryable: bool = False

    def __init__(self, message: Message, *, code: str | None = None) -> None:
        # Every message may quote a server: its text values are one clean,
        # redacted line, always (see ``clean_message``).
        message = clean_message(message)
        super().__init__(str(message))
        self.message = message
        self.code = code

    def reword(self, message: Message) -> None:
        """Say the same failure in other words (a note on where a setting came
        from, added where that is known); the type and code stay."""
        self.message = clean_message(message)
        self.args = (str(self.message),)


class OnlineAccessDisabled(Hitem3DError):
    def __init__(self) -> None:
        super().__init__(
            msg("Online access is off: enable Preferences > System > Network > Allow Online Access")
        )


class CredentialsMissing(Hitem3DError):
    # NOTE: the message names where the credentials were looked for when some
    # came from the environment (``settings.Sources.missing``).
    def __init__(self, message: Message | None = None) -> None:
        super().__init__(
            message or msg("No Hitem3D credentials: set Client ID and Client Secret in the add-on preferences")
        )


class InvalidCredentials(Hitem3DError):
    # NOTE: the message names where the rejected pair came from when that is
    # known (``settings.Sources.rejected``): preferences, environment or both.
    def __init__(self, message: Message | None = None) -> None:
        super().__init__(
            message or msg("Hitem3D rejected the Client ID or Client Secret: check them in the add-on preferences"),
            code=CODE_INVALID_CREDENTIALS,
        )


class InvalidTaskId(Hitem3DError):
    """The text is not shaped like a task ID; nothing was sent."""


class TaskNotFound(Hitem3DError):
    pass


class GenerationFailed(Hitem3DError):
    pass


class NotFollowable(Hitem3DError):
    """The task was created on Hitem3D, but neither its kind's query path nor
    the documented query-task answers for it (a path Hitem3D has not
    published). Not a failure: the task is kept with its ID, to try again."""

    def __init__(self) -> None:
        super().__init__(msg("Created on Hitem3D: this version cannot follow it yet; its ID is kept, "
                             "retry after an update"))


class ServerError(Hitem3DError):
    """The service answered with a fault (HTTP 5xx or a system error code)."""

    retryable = True

    def __init__(self, message: Message, *, code: str | None = None,
                 retry_after: float | None = None) -> None:
        super().__init__(message, code=code)
        self.retry_after = retry_after


class ApiError(Hitem3DError):
    """A code the service sent that we do not handle specially: shown verbatim."""


class NetworkError(Hitem3DError):
    """The host could not be reached or the connection broke."""

    retryable = True


class TaskTimeout(Hitem3DError):
    pass


class BadResultFile(Hitem3DError):
    """The downloaded result is not a usable GLB."""


class ExpiredUrl(Hitem3DError):
    """The file host refused a result URL (it lives one hour): query again."""

    retryable = True


class Cancelled(Hitem3DError):
    def __init__(self) -> None:
        super().__init__(msg_own("Cancelled"))  # the state's own word


class ImportFailed(Hitem3DError):
    pass


def clean_message(message: Message | str) -> Message:
    """``message`` with every text value shortened, stripped of control
    characters and redacted: values are what came from outside (the server's
    words, paths, URLs). A plain string is text from outside too
    (``verbatim``). Templates are ours and are never masked: a mask in one
    garbles our words and takes them out of the catalogue; they only lose
    control characters, which ours never hold (a planted journal's may)."""
    if isinstance(message, str):
        message = verbatim(message)
    values = {name: clean_text(value, MAX_MESSAGE_CHARS) if isinstance(value, str)
              else clean_message(value) if isinstance(value, Message) else value
              for name, value in message.values}
    template = one_line(message.template, MAX_MESSAGE_CHARS)
    return Message(template, values, message.context)


def message_for_code(code: str, server_message: str) -> Message:
    """The user message for a server ``code``: our wording for documented codes,
    the server's own words with the code for anything else."""
    known = CODE_MESSAGES.get(code)
    if known is not None:
        return msg("{message} (code {code})", message=msg(known), code=code)
    text: str | Message = clean_text(server_message) or msg("no message")
    cause = LIKELY_CAUSES.get(code)
    if cause is not None:
        return msg("Hitem3D answered: {text} (code {code}); likely cause: {cause}", text=text, code=code,
                   cause=msg(cause))
    return msg("Hitem3D answered: {text} (code {code})", text=text, code=code)
